//! Tax identifiers, parsed under the rules of the customer's country, so a `TaxId` can only hold
//! a valid one: Colombia's NIT, Mexico's RFC, Brazil's CPF and CNPJ, Chile's RUT and Peru's RUC
//! with their check digits (the RFC by format and date only, see [`Rfc`]), and for any other
//! country a normalised foreign id. Each has a storage form, the compact text a target system
//! keeps (`900123456-8`, `GODE561231GR8`, `52998224725`, `11222333000181`, `12345678-5`,
//! `20123456786`), and a display form people read (`900.123.456-8`, `529.982.247-25`,
//! `11.222.333/0001-81`, `12.345.678-5`). Serde writes a tagged object, because the storage text
//! alone cannot tell an RFC from a RUT: `{"scheme":"co_nit","id":"900123456-8"}`, and for a
//! foreign id `{"scheme":"foreign","country":"US","id":"123456789"}` (no `country` when unknown).
//! Error messages say what to fix and never repeat the id.

use crate::domain::Country;
use serde::{Deserialize, Serialize};
use std::fmt;

/// DIAN weights, applied to the NIT's digits from right to left.
const NIT_WEIGHTS: [u32; 15] = [3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71];
/// Receita Federal weights for a CPF's second check digit; the first uses all but the first.
const CPF_WEIGHTS: [u32; 10] = [11, 10, 9, 8, 7, 6, 5, 4, 3, 2];
/// Receita Federal weights for a CNPJ's second check digit; the first uses all but the first.
const CNPJ_WEIGHTS: [u32; 13] = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
/// SII weights, cycled over the RUT's digits from right to left.
const RUT_WEIGHTS: [u32; 6] = [2, 3, 4, 5, 6, 7];
/// SUNAT weights over the RUC's first ten digits.
const RUC_WEIGHTS: [u32; 10] = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
/// RUC kinds: 10 natural persons (with their DNI), 20 legal entities, 15, 16 and 17 other kinds.
/// 16 is UNCONFIRMED: python-stdnum accepts only 10, 15, 17 and 20.
const RUC_PREFIXES: [&str; 5] = ["10", "15", "16", "17", "20"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxIdError {
    #[error("is empty")]
    Empty,
    #[error("may only contain {allowed}")]
    InvalidCharacters { allowed: &'static str },
    #[error("must have {expected}")]
    InvalidLength { expected: &'static str },
    #[error("must start with {expected}")]
    InvalidPrefix { expected: &'static str },
    #[error("must be {expected}")]
    InvalidLayout { expected: &'static str },
    #[error("date part {date} is not a valid date")]
    InvalidDate { date: String },
    #[error("cannot be one digit repeated")]
    RepeatedDigit,
    #[error(
        "check {} should be {expected}, got {actual}",
        if .expected.len() > 1 { "digits" } else { "digit" }
    )]
    CheckDigitMismatch { expected: String, actual: String },
}

impl TaxIdError {
    fn check_digit(expected: impl fmt::Display, actual: impl fmt::Display) -> Self {
        TaxIdError::CheckDigitMismatch {
            expected: expected.to_string(),
            actual: actual.to_string(),
        }
    }
}

/// A tax id that passed its country's rules. Every variant holds a type with private fields, so
/// the only way to get one is `TaxId::parse` (or deserialising, which parses).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "StoredTaxId", try_from = "StoredTaxId")]
pub enum TaxId {
    /// Colombia: NIT with DIAN check digit.
    Nit(Nit),
    /// Mexico: RFC of a company or a person.
    Rfc(Rfc),
    /// Brazil: CPF of a person.
    Cpf(Cpf),
    /// Brazil: CNPJ of a company, numeric or alphanumeric.
    Cnpj(Cnpj),
    /// Chile: RUT with SII check digit.
    Rut(Rut),
    /// Peru: RUC with SUNAT check digit.
    Ruc(Ruc),
    /// Any other country, or none known.
    Foreign(ForeignId),
}

/// Which rules a `TaxId` was parsed under; serialised as `co_nit`, `mx_rfc`, `br_cpf`, `br_cnpj`,
/// `cl_rut`, `pe_ruc` or `foreign`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxIdScheme {
    CoNit,
    MxRfc,
    BrCpf,
    BrCnpj,
    ClRut,
    PeRuc,
    Foreign,
}

impl TaxIdScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            TaxIdScheme::CoNit => "co_nit",
            TaxIdScheme::MxRfc => "mx_rfc",
            TaxIdScheme::BrCpf => "br_cpf",
            TaxIdScheme::BrCnpj => "br_cnpj",
            TaxIdScheme::ClRut => "cl_rut",
            TaxIdScheme::PeRuc => "pe_ruc",
            TaxIdScheme::Foreign => "foreign",
        }
    }

    /// The country whose rules the scheme is; `None` for a foreign id.
    pub fn country(self) -> Option<Country> {
        match self {
            TaxIdScheme::CoNit => Some(Country::CO),
            TaxIdScheme::MxRfc => Some(Country::MX),
            TaxIdScheme::BrCpf | TaxIdScheme::BrCnpj => Some(Country::BR),
            TaxIdScheme::ClRut => Some(Country::CL),
            TaxIdScheme::PeRuc => Some(Country::PE),
            TaxIdScheme::Foreign => None,
        }
    }
}

impl fmt::Display for TaxIdScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TaxId {
    /// Parses `raw` under the rules of `country`: CO a NIT, MX an RFC, BR a CPF (11 digits) or a
    /// CNPJ (14 characters), CL a RUT, PE a RUC, any other country or none a foreign id.
    pub fn parse(raw: &str, country: Option<Country>) -> Result<Self, TaxIdError> {
        match country {
            Some(Country::CO) => Nit::parse(raw).map(TaxId::Nit),
            Some(Country::MX) => Rfc::parse(raw).map(TaxId::Rfc),
            Some(Country::BR) => match compact(raw, &['.', '/', '-']).chars().count() {
                11 => Cpf::parse(raw).map(TaxId::Cpf),
                14 => Cnpj::parse(raw).map(TaxId::Cnpj),
                0 => Err(TaxIdError::Empty),
                _ => Err(TaxIdError::InvalidLength {
                    expected: "11 digits (CPF) or 14 characters (CNPJ)",
                }),
            },
            Some(Country::CL) => Rut::parse(raw).map(TaxId::Rut),
            Some(Country::PE) => Ruc::parse(raw).map(TaxId::Ruc),
            _ => ForeignId::parse(raw, country).map(TaxId::Foreign),
        }
    }

    pub fn scheme(&self) -> TaxIdScheme {
        match self {
            TaxId::Nit(_) => TaxIdScheme::CoNit,
            TaxId::Rfc(_) => TaxIdScheme::MxRfc,
            TaxId::Cpf(_) => TaxIdScheme::BrCpf,
            TaxId::Cnpj(_) => TaxIdScheme::BrCnpj,
            TaxId::Rut(_) => TaxIdScheme::ClRut,
            TaxId::Ruc(_) => TaxIdScheme::PeRuc,
            TaxId::Foreign(_) => TaxIdScheme::Foreign,
        }
    }

    /// The country the id was parsed for (`parse(storage, country)` gives the id back).
    pub fn country(&self) -> Option<Country> {
        match self {
            TaxId::Foreign(foreign) => foreign.country,
            other => other.scheme().country(),
        }
    }

    /// The compact form a target system stores: `900123456-8`, `GODE561231GR8`, `52998224725`,
    /// `11222333000181`, `12345678-5`, `20123456786`, a foreign id as parsed.
    pub fn storage(&self) -> String {
        match self {
            TaxId::Nit(nit) => nit.storage(),
            TaxId::Rfc(rfc) => rfc.storage(),
            TaxId::Cpf(cpf) => cpf.storage(),
            TaxId::Cnpj(cnpj) => cnpj.storage(),
            TaxId::Rut(rut) => rut.storage(),
            TaxId::Ruc(ruc) => ruc.storage(),
            TaxId::Foreign(foreign) => foreign.id.clone(),
        }
    }
}

/// The form people read: `900.123.456-8`, `529.982.247-25`, `11.222.333/0001-81`,
/// `12.345.678-5`; RFC, RUC and foreign ids as stored.
impl fmt::Display for TaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaxId::Nit(nit) => fmt::Display::fmt(nit, f),
            TaxId::Rfc(rfc) => fmt::Display::fmt(rfc, f),
            TaxId::Cpf(cpf) => fmt::Display::fmt(cpf, f),
            TaxId::Cnpj(cnpj) => fmt::Display::fmt(cnpj, f),
            TaxId::Rut(rut) => fmt::Display::fmt(rut, f),
            TaxId::Ruc(ruc) => fmt::Display::fmt(ruc, f),
            TaxId::Foreign(foreign) => f.write_str(&foreign.id),
        }
    }
}

/// The serde shape of a `TaxId`: its scheme, the country of a foreign id, the storage form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredTaxId {
    scheme: TaxIdScheme,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    country: Option<Country>,
    id: String,
}

impl From<TaxId> for StoredTaxId {
    fn from(tax_id: TaxId) -> Self {
        StoredTaxId {
            scheme: tax_id.scheme(),
            country: match &tax_id {
                TaxId::Foreign(foreign) => foreign.country,
                _ => None,
            },
            id: tax_id.storage(),
        }
    }
}

impl TryFrom<StoredTaxId> for TaxId {
    type Error = String;

    fn try_from(stored: StoredTaxId) -> Result<Self, String> {
        let scheme = stored.scheme;
        if scheme != TaxIdScheme::Foreign && stored.country.is_some() {
            return Err(format!("a {scheme} tax id must not store a country"));
        }
        let tax_id = TaxId::parse(&stored.id, scheme.country().or(stored.country))
            .map_err(|e| format!("{scheme} tax id {e}"))?;
        if tax_id.scheme() != scheme {
            return Err(format!(
                "tax id stored as {scheme} reads as {} under its country's rules",
                tax_id.scheme()
            ));
        }
        Ok(tax_id)
    }
}

/// A Colombian NIT with its verified check digit (dígito de verificación).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nit {
    number: String,
    check_digit: u8,
}

impl Nit {
    /// Parses the forms people type: `900.123.456-8`, `900123456-8`, `900 123 456 - 8`, and
    /// `9001234568` (without a hyphen the last digit is read as the check digit, never computed).
    pub fn parse(raw: &str) -> Result<Self, TaxIdError> {
        let compact = compact(raw, &['.']);
        if compact.is_empty() {
            return Err(TaxIdError::Empty);
        }
        let (number, dv) = split_check_digit(&compact);
        if !is_digits(number) || dv.len() != 1 || !is_digits(dv) {
            return Err(TaxIdError::InvalidCharacters {
                allowed: "digits, dots, spaces and one hyphen before the check digit",
            });
        }
        if !(6..=15).contains(&number.len()) {
            return Err(TaxIdError::InvalidLength {
                expected: "6 to 15 digits before the check digit",
            });
        }
        let check_digit = dv.as_bytes()[0] - b'0';
        let expected = Self::check_digit_of(number);
        if expected != check_digit {
            return Err(TaxIdError::check_digit(expected, check_digit));
        }
        Ok(Self {
            number: number.to_owned(),
            check_digit,
        })
    }

    /// The DIAN check digit of a NIT's digits (without the check digit); other characters are
    /// skipped.
    pub fn check_digit_of(number: &str) -> u8 {
        let sum: u32 = number
            .bytes()
            .filter(u8::is_ascii_digit)
            .rev()
            .zip(NIT_WEIGHTS)
            .map(|(digit, weight)| u32::from(digit - b'0') * weight)
            .sum();
        match sum % 11 {
            r @ (0 | 1) => r as u8,
            r => (11 - r) as u8,
        }
    }

    pub fn number(&self) -> &str {
        &self.number
    }

    pub fn check_digit(&self) -> u8 {
        self.check_digit
    }

    /// Storage form, as Odoo's `vat` and most ERPs take it: `900123456-8`.
    pub fn storage(&self) -> String {
        format!("{}-{}", self.number, self.check_digit)
    }

    /// Display form with thousands dots: `900.123.456-8`.
    pub fn display(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Nit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", group_thousands(&self.number), self.check_digit)
    }
}

/// A Mexican RFC: 3 letters (persona moral) or 4 (persona física) from `A-Z`, `Ñ` and `&`, the
/// date as `YYMMDD` (a real date; the century is not written), and a 3-character homoclave whose
/// last character is a digit or `A`. The generic `XAXX010101000` and `XEXX010101000` are valid.
///
/// The last character is not checked against SAT's modulo 11 check character, on purpose. The
/// algorithm is confirmed (python-stdnum `mx/rfc.py` and stdnum-js: values from
/// `0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ Ñ`, weights 13..2 over the first 12 characters
/// left-padded with a space, then `(11 − sum mod 11) mod 11`, 10 written `A`) and reproduces
/// `GODE561231GR8` and `MAB9307148T4`, but SAT issues RFCs that fail it: the generic
/// `XAXX010101000` computes `4`, and `LME060822IH5`, accepted by SAT's validator (validate-rfc's
/// known issues), computes `3`; python-stdnum estimates 1.5% of RFCs in use and disables the
/// check by default. Enforcing it would reject real customers, so the RFC is format-only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rfc(String);

impl Rfc {
    /// Parses `GODE561231GR8`, `GODE-561231-GR8`, `gode 561231 gr8`.
    pub fn parse(raw: &str) -> Result<Self, TaxIdError> {
        let rfc = compact(raw, &['-']);
        if rfc.is_empty() {
            return Err(TaxIdError::Empty);
        }
        let is_name_letter = |c: &char| c.is_ascii_uppercase() || matches!(c, 'Ñ' | '&');
        if !rfc
            .chars()
            .all(|c| c.is_ascii_digit() || is_name_letter(&c))
        {
            return Err(TaxIdError::InvalidCharacters {
                allowed: "letters, digits, Ñ, &, spaces and hyphens",
            });
        }
        let chars: Vec<char> = rfc.chars().collect();
        let name_len = match chars.len() {
            12 => 3,
            13 => 4,
            _ => {
                return Err(TaxIdError::InvalidLength {
                    expected: "12 characters (persona moral) or 13 (persona física)",
                });
            }
        };
        let (name, rest) = chars.split_at(name_len);
        let (date, homoclave) = rest.split_at(6);
        let laid_out = name.iter().all(is_name_letter)
            && date.iter().all(char::is_ascii_digit)
            && homoclave[..2].iter().all(char::is_ascii_alphanumeric)
            && matches!(homoclave[2], '0'..='9' | 'A');
        if !laid_out {
            return Err(TaxIdError::InvalidLayout {
                expected: "3 letters (persona moral) or 4 (persona física), then the date as \
                           YYMMDD, then a 3-character homoclave ending in a digit or A",
            });
        }
        let date: String = date.iter().collect();
        if !is_real_yymmdd(&date) {
            return Err(TaxIdError::InvalidDate { date });
        }
        Ok(Rfc(rfc))
    }

    /// Storage form, upper case without separators: `GODE561231GR8`.
    pub fn storage(&self) -> String {
        self.0.clone()
    }
}

/// As stored, the way SAT prints it: `GODE561231GR8`.
impl fmt::Display for Rfc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Brazilian CPF: 11 digits, the last two Receita Federal check digits (modulo 11).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cpf(String);

impl Cpf {
    /// Parses `529.982.247-25` and `52998224725`.
    pub fn parse(raw: &str) -> Result<Self, TaxIdError> {
        let cpf = compact(raw, &['.', '-']);
        if cpf.is_empty() {
            return Err(TaxIdError::Empty);
        }
        if !is_digits(&cpf) {
            return Err(TaxIdError::InvalidCharacters {
                allowed: "digits, dots, spaces and a hyphen",
            });
        }
        if cpf.len() != 11 {
            return Err(TaxIdError::InvalidLength {
                expected: "11 digits",
            });
        }
        check_receita_digits(&cpf, &CPF_WEIGHTS)?;
        Ok(Cpf(cpf))
    }

    /// Storage form, digits only: `52998224725`.
    pub fn storage(&self) -> String {
        self.0.clone()
    }
}

/// `529.982.247-25`.
impl fmt::Display for Cpf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        write!(f, "{}.{}.{}-{}", &d[..3], &d[3..6], &d[6..9], &d[9..])
    }
}

/// A Brazilian CNPJ: 12 positions (8 root, 4 order) of `A-Z0-9` (alphanumeric since IN RFB
/// 2.229/2024, issued from July 2026) and 2 numeric Receita Federal check digits, where each
/// character counts as its ASCII code − 48 (`0`→0, `A`→17), so numeric CNPJs keep their digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cnpj(String);

impl Cnpj {
    /// Parses `11.222.333/0001-81`, `11222333000181` and `12.ABC.345/01DE-35` (any case).
    pub fn parse(raw: &str) -> Result<Self, TaxIdError> {
        let cnpj = compact(raw, &['.', '/', '-']);
        if cnpj.is_empty() {
            return Err(TaxIdError::Empty);
        }
        if !cnpj.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(TaxIdError::InvalidCharacters {
                allowed: "letters, digits, dots, slashes, hyphens and spaces",
            });
        }
        if cnpj.len() != 14 {
            return Err(TaxIdError::InvalidLength {
                expected: "14 characters",
            });
        }
        if !is_digits(&cnpj[12..]) {
            return Err(TaxIdError::InvalidCharacters {
                allowed: "digits in the last two positions (the check digits)",
            });
        }
        check_receita_digits(&cnpj, &CNPJ_WEIGHTS)?;
        Ok(Cnpj(cnpj))
    }

    /// Storage form, upper case without separators: `11222333000181`, `12ABC34501DE35`.
    pub fn storage(&self) -> String {
        self.0.clone()
    }
}

/// `11.222.333/0001-81`, `12.ABC.345/01DE-35`.
impl fmt::Display for Cnpj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.0;
        write!(
            f,
            "{}.{}.{}/{}-{}",
            &c[..2],
            &c[2..5],
            &c[5..8],
            &c[8..12],
            &c[12..]
        )
    }
}

/// A Chilean RUT (or RUN): 7 or 8 digits and the SII check digit, `0-9` or `K`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rut {
    number: String,
    check_digit: char,
}

impl Rut {
    /// Parses `12.345.678-5`, `12345678-5`, `123456785` (without a hyphen the last character is
    /// the check digit) and a lower-case `k`. Leading zeros are dropped.
    pub fn parse(raw: &str) -> Result<Self, TaxIdError> {
        let compact = compact(raw, &['.']);
        if compact.is_empty() {
            return Err(TaxIdError::Empty);
        }
        let (number, dv) = split_check_digit(&compact);
        if !is_digits(number) || !matches!(dv.as_bytes(), [b'0'..=b'9' | b'K']) {
            return Err(TaxIdError::InvalidCharacters {
                allowed: "digits, dots, spaces, one hyphen and a check digit 0-9 or K",
            });
        }
        let number = number.trim_start_matches('0');
        if !(7..=8).contains(&number.len()) {
            return Err(TaxIdError::InvalidLength {
                expected: "7 or 8 digits before the check digit",
            });
        }
        let check_digit = char::from(dv.as_bytes()[0]);
        let expected = rut_check_digit(number);
        if expected != check_digit {
            return Err(TaxIdError::check_digit(expected, check_digit));
        }
        Ok(Rut {
            number: number.to_owned(),
            check_digit,
        })
    }

    /// Storage form, as SII's services take it: `12345678-5`.
    pub fn storage(&self) -> String {
        format!("{}-{}", self.number, self.check_digit)
    }
}

/// `12.345.678-5`.
impl fmt::Display for Rut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", group_thousands(&self.number), self.check_digit)
    }
}

/// A Peruvian RUC: 11 digits starting with a kind (10, 15, 16, 17, 20) and ending with the SUNAT
/// check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ruc(String);

impl Ruc {
    /// Parses `20123456786` (spaces and hyphens are ignored).
    pub fn parse(raw: &str) -> Result<Self, TaxIdError> {
        let ruc = compact(raw, &['-']);
        if ruc.is_empty() {
            return Err(TaxIdError::Empty);
        }
        if !is_digits(&ruc) {
            return Err(TaxIdError::InvalidCharacters {
                allowed: "digits and spaces",
            });
        }
        if ruc.len() != 11 {
            return Err(TaxIdError::InvalidLength {
                expected: "11 digits",
            });
        }
        if !RUC_PREFIXES.contains(&&ruc[..2]) {
            return Err(TaxIdError::InvalidPrefix {
                expected: "10, 15, 16, 17 or 20",
            });
        }
        let expected = ruc_check_digit(&ruc[..10]);
        let actual = ruc.as_bytes()[10] - b'0';
        if expected != actual {
            return Err(TaxIdError::check_digit(expected, actual));
        }
        Ok(Ruc(ruc))
    }

    /// Storage form, the 11 digits: `20123456786`.
    pub fn storage(&self) -> String {
        self.0.clone()
    }
}

/// As stored, the way SUNAT prints it: `20123456786`.
impl fmt::Display for Ruc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tax id from a country without rules here: 3 to 20 letters and digits, upper-cased, every
/// other character (separators) dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ForeignId {
    country: Option<Country>,
    id: String,
}

impl ForeignId {
    /// Private: only `TaxId::parse` decides that a country has no rules of its own.
    fn parse(raw: &str, country: Option<Country>) -> Result<Self, TaxIdError> {
        // Upper-case first: some letters upper-case to a letter and a combining mark, which
        // the filter must see to keep the normalisation idempotent.
        let id: String = raw
            .chars()
            .flat_map(char::to_uppercase)
            .filter(|c| c.is_alphanumeric())
            .collect();
        if id.is_empty() {
            return Err(TaxIdError::Empty);
        }
        if !(3..=20).contains(&id.chars().count()) {
            return Err(TaxIdError::InvalidLength {
                expected: "3 to 20 letters or digits",
            });
        }
        Ok(ForeignId { country, id })
    }

    pub fn country(&self) -> Option<Country> {
        self.country
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// `raw` upper-cased, without whitespace and the given separators.
fn compact(raw: &str, separators: &[char]) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && !separators.contains(c))
        .flat_map(char::to_uppercase)
        .collect()
}

/// Splits `number-dv`; without a hyphen the last character is the check digit.
fn split_check_digit(compact: &str) -> (&str, &str) {
    match compact.split_once('-') {
        Some(parts) => parts,
        None => compact.split_at(compact.char_indices().next_back().map_or(0, |(i, _)| i)),
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// ASCII digits with a dot every three from the right: `12345678` → `12.345.678`.
fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(d);
    }
    out
}

/// Whether `YYMMDD` is a calendar date in 19YY or 20YY (a year divisible by 4 is a leap year in
/// one of them: 2000 was).
fn is_real_yymmdd(date: &str) -> bool {
    let b = date.as_bytes();
    if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let two = |i: usize| u32::from(b[i] - b'0') * 10 + u32::from(b[i + 1] - b'0');
    let (year, month, day) = (two(0), two(2), two(4));
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// Checks a CPF's or CNPJ's two trailing check digits (all characters already `0-9A-Z`, the
/// last two digits), and refuses one digit repeated, which passes the arithmetic.
fn check_receita_digits(id: &str, weights: &[u32]) -> Result<(), TaxIdError> {
    let bytes = id.as_bytes();
    if bytes.iter().all(|&b| b == bytes[0]) {
        return Err(TaxIdError::RepeatedDigit);
    }
    let (base, given) = bytes.split_at(bytes.len() - 2);
    let expected = receita_check_digits(base, weights).map(|d| b'0' + d);
    if given != expected {
        return Err(TaxIdError::check_digit(
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(given),
        ));
    }
    Ok(())
}

/// Receita Federal's two check digits of `base` (`0-9A-Z`, each worth its ASCII code − 48): the
/// first over the base with all weights but the first, the second over the base and the first
/// digit with all of them; each is 0 when `sum mod 11 < 2`, else `11 − sum mod 11`.
fn receita_check_digits(base: &[u8], weights: &[u32]) -> [u8; 2] {
    let values: Vec<u32> = base.iter().map(|&b| u32::from(b) - 48).collect();
    let weighted =
        |weights: &[u32]| -> u32 { values.iter().zip(weights).map(|(v, w)| v * w).sum() };
    let digit = |sum: u32| match sum % 11 {
        0 | 1 => 0,
        r => (11 - r) as u8,
    };
    let first = digit(weighted(&weights[1..]));
    // The second digit weighs the first one too, with the last weight.
    let second = digit(weighted(weights) + u32::from(first) * weights[base.len()]);
    [first, second]
}

/// SII's check digit: weights 2..7 cycled from the right, `11 − sum mod 11`, 10 → `K`, 11 → `0`.
fn rut_check_digit(number: &str) -> char {
    let sum: u32 = number
        .bytes()
        .rev()
        .zip(RUT_WEIGHTS.iter().cycle())
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    match 11 - sum % 11 {
        11 => '0',
        10 => 'K',
        d => char::from(b'0' + d as u8),
    }
}

/// SUNAT's check digit: `11 − sum mod 11`, with 10 → 0 and 11 → 1.
fn ruc_check_digit(first_ten: &str) -> u8 {
    let sum: u32 = first_ten
        .bytes()
        .zip(RUC_WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    ((11 - sum % 11) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn country(code: &str) -> Option<Country> {
        Some(Country::parse(code).expect("country code"))
    }

    #[test]
    fn check_digits_match_known_nits() {
        for (number, dv) in [
            ("800197268", 4), // DIAN
            ("860034313", 7),
            ("890903938", 8),
            ("901797249", 5),
            ("900123456", 8),
        ] {
            assert_eq!(Nit::check_digit_of(number), dv, "NIT {number}");
        }
    }

    #[test]
    fn every_nit_base_has_exactly_one_valid_check_digit() {
        for base in ["800197268", "123456", "999999999999999", "100000"] {
            let valid: Vec<u8> = (0..=9)
                .filter(|dv| Nit::parse(&format!("{base}-{dv}")).is_ok())
                .collect();
            // DV 10 cannot happen: r = 1 gives DV 1, so exactly one digit is valid.
            assert_eq!(valid, vec![Nit::check_digit_of(base)], "{base}");
        }
    }

    #[test]
    fn valid_ids_parse_to_their_storage_and_display_forms() {
        // (typed, country, storage, display)
        let cases = [
            ("900.123.456-8", "CO", "900123456-8", "900.123.456-8"),
            ("900123456-8", "CO", "900123456-8", "900.123.456-8"),
            (" 900 123 456 - 8 ", "CO", "900123456-8", "900.123.456-8"),
            ("9001234568", "CO", "900123456-8", "900.123.456-8"),
            ("800.197.268-4", "CO", "800197268-4", "800.197.268-4"), // DIAN
            ("860034313-7", "CO", "860034313-7", "860.034.313-7"),
            ("890903938-8", "CO", "890903938-8", "890.903.938-8"),
            ("901797249-5", "CO", "901797249-5", "901.797.249-5"),
            ("GODE561231GR8", "MX", "GODE561231GR8", "GODE561231GR8"),
            ("gode-561231-gr8", "MX", "GODE561231GR8", "GODE561231GR8"),
            ("GODE 561231 GR8", "MX", "GODE561231GR8", "GODE561231GR8"),
            ("ABC680524P76", "MX", "ABC680524P76", "ABC680524P76"),
            ("MAB-930714-8T4", "MX", "MAB9307148T4", "MAB9307148T4"),
            ("XAXX010101000", "MX", "XAXX010101000", "XAXX010101000"), // público en general
            ("XEXX010101000", "MX", "XEXX010101000", "XEXX010101000"), // foreign residents
            ("LME060822IH5", "MX", "LME060822IH5", "LME060822IH5"),    // SAT-valid, odd check char
            ("peña000229ab1", "MX", "PEÑA000229AB1", "PEÑA000229AB1"), // format: Ñ, 29 Feb 2000
            ("&AB991231A1A", "MX", "&AB991231A1A", "&AB991231A1A"),    // format: & in the name
            ("529.982.247-25", "BR", "52998224725", "529.982.247-25"),
            ("52998224725", "BR", "52998224725", "529.982.247-25"),
            ("111.444.777-35", "BR", "11144477735", "111.444.777-35"),
            ("390.533.447-05", "BR", "39053344705", "390.533.447-05"),
            ("123.456.789-09", "BR", "12345678909", "123.456.789-09"),
            (
                "11.222.333/0001-81",
                "BR",
                "11222333000181",
                "11.222.333/0001-81",
            ),
            (
                "11222333000181",
                "BR",
                "11222333000181",
                "11.222.333/0001-81",
            ),
            (
                "11.444.777/0001-61",
                "BR",
                "11444777000161",
                "11.444.777/0001-61",
            ),
            (
                "16.727.230/0001-97",
                "BR",
                "16727230000197",
                "16.727.230/0001-97",
            ),
            (
                "00.000.000/0001-91",
                "BR",
                "00000000000191",
                "00.000.000/0001-91",
            ), // Banco do Brasil
            (
                "12.ABC.345/01DE-35",
                "BR",
                "12ABC34501DE35",
                "12.ABC.345/01DE-35",
            ),
            (
                "12.abc.345/01de-35",
                "BR",
                "12ABC34501DE35",
                "12.ABC.345/01DE-35",
            ),
            ("12.345.678-5", "CL", "12345678-5", "12.345.678-5"),
            ("12345678-5", "CL", "12345678-5", "12.345.678-5"),
            ("123456785", "CL", "12345678-5", "12.345.678-5"),
            ("76086428-5", "CL", "76086428-5", "76.086.428-5"),
            ("12.531.909-2", "CL", "12531909-2", "12.531.909-2"),
            ("60.803.000-k", "CL", "60803000-K", "60.803.000-K"), // SII
            ("5.126.663-3", "CL", "5126663-3", "5.126.663-3"),
            ("05126663-3", "CL", "5126663-3", "5.126.663-3"),
            ("20123456786", "PE", "20123456786", "20123456786"),
            ("20131312955", "PE", "20131312955", "20131312955"), // SUNAT
            ("20512333797", "PE", "20512333797", "20512333797"),
            ("10054148289", "PE", "10054148289", "10054148289"),
            ("20100070970", "PE", "20100070970", "20100070970"), // check digit 0 (11 − 11 mod 10)
            ("12-3456789", "US", "123456789", "123456789"),
            ("esb-12345678", "ES", "ESB12345678", "ESB12345678"),
        ];
        for (typed, code, storage, display) in cases {
            let id = TaxId::parse(typed, country(code))
                .unwrap_or_else(|e| panic!("{typed:?} ({code}): {e}"));
            assert_eq!(id.storage(), storage, "{typed:?}");
            assert_eq!(id.to_string(), display, "{typed:?}");
            assert_eq!(id.country(), country(code), "{typed:?}");
        }
    }

    #[test]
    fn the_country_decides_the_scheme() {
        for (typed, rules, scheme) in [
            ("900.123.456-8", country("CO"), TaxIdScheme::CoNit),
            ("GODE561231GR8", country("MX"), TaxIdScheme::MxRfc),
            ("529.982.247-25", country("BR"), TaxIdScheme::BrCpf),
            ("11.222.333/0001-81", country("BR"), TaxIdScheme::BrCnpj),
            ("12.345.678-5", country("CL"), TaxIdScheme::ClRut),
            ("20123456786", country("PE"), TaxIdScheme::PeRuc),
            ("20123456786", country("AR"), TaxIdScheme::Foreign),
            ("GODE561231GR8", None, TaxIdScheme::Foreign),
        ] {
            let id = TaxId::parse(typed, rules).expect("valid");
            assert_eq!(id.scheme(), scheme, "{typed:?}");
            assert_eq!(id.scheme().country().or(rules), id.country());
        }
    }

    #[test]
    fn invalid_ids_are_rejected_with_what_to_fix() {
        let mismatch = |expected: &str, actual: &str| TaxIdError::CheckDigitMismatch {
            expected: expected.into(),
            actual: actual.into(),
        };
        let cases = [
            ("900.123.456-7", "CO", mismatch("8", "7")),
            ("9001234567", "CO", mismatch("8", "7")),
            ("800197268-5", "CO", mismatch("4", "5")),
            ("", "CO", TaxIdError::Empty),
            (" . ", "CO", TaxIdError::Empty),
            (
                "900A23456-8",
                "CO",
                TaxIdError::InvalidCharacters {
                    allowed: "digits, dots, spaces and one hyphen before the check digit",
                },
            ),
            (
                "900123456-",
                "CO",
                TaxIdError::InvalidCharacters {
                    allowed: "digits, dots, spaces and one hyphen before the check digit",
                },
            ),
            (
                "90012345é",
                "CO",
                TaxIdError::InvalidCharacters {
                    allowed: "digits, dots, spaces and one hyphen before the check digit",
                },
            ),
            (
                "12-3",
                "CO",
                TaxIdError::InvalidLength {
                    expected: "6 to 15 digits before the check digit",
                },
            ),
            (
                "GODE991332GR8",
                "MX",
                TaxIdError::InvalidDate {
                    date: "991332".into(),
                },
            ),
            (
                "GODE560230GR8",
                "MX",
                TaxIdError::InvalidDate {
                    date: "560230".into(),
                },
            ),
            (
                "GODE010229GR8",
                "MX",
                TaxIdError::InvalidDate {
                    date: "010229".into(),
                },
            ),
            (
                "GODE561231G",
                "MX",
                TaxIdError::InvalidLength {
                    expected: "12 characters (persona moral) or 13 (persona física)",
                },
            ),
            (
                "GOD1561231GR8",
                "MX",
                TaxIdError::InvalidLayout {
                    expected: "3 letters (persona moral) or 4 (persona física), then the date \
                               as YYMMDD, then a 3-character homoclave ending in a digit or A",
                },
            ),
            (
                "GODE561231GRB",
                "MX",
                TaxIdError::InvalidLayout {
                    expected: "3 letters (persona moral) or 4 (persona física), then the date \
                               as YYMMDD, then a 3-character homoclave ending in a digit or A",
                },
            ),
            (
                "GODE.561231.GR8",
                "MX",
                TaxIdError::InvalidCharacters {
                    allowed: "letters, digits, Ñ, &, spaces and hyphens",
                },
            ),
            ("529.982.247-26", "BR", mismatch("25", "26")),
            ("529.982.247-15", "BR", mismatch("25", "15")),
            ("111.111.111-11", "BR", TaxIdError::RepeatedDigit),
            ("000.000.000-00", "BR", TaxIdError::RepeatedDigit),
            ("11.222.333/0001-82", "BR", mismatch("81", "82")),
            ("12.ABC.345/01DE-36", "BR", mismatch("35", "36")),
            ("00.000.000/0000-00", "BR", TaxIdError::RepeatedDigit),
            (
                "5299822472A",
                "BR",
                TaxIdError::InvalidCharacters {
                    allowed: "digits, dots, spaces and a hyphen",
                },
            ),
            (
                "12.ABC.345/01DE-3A",
                "BR",
                TaxIdError::InvalidCharacters {
                    allowed: "digits in the last two positions (the check digits)",
                },
            ),
            (
                "529.982.247-2",
                "BR",
                TaxIdError::InvalidLength {
                    expected: "11 digits (CPF) or 14 characters (CNPJ)",
                },
            ),
            ("12.345.678-4", "CL", mismatch("5", "4")),
            ("60.803.000-0", "CL", mismatch("K", "0")),
            (
                "12.345.678-X",
                "CL",
                TaxIdError::InvalidCharacters {
                    allowed: "digits, dots, spaces, one hyphen and a check digit 0-9 or K",
                },
            ),
            (
                "123.456-0",
                "CL",
                TaxIdError::InvalidLength {
                    expected: "7 or 8 digits before the check digit",
                },
            ),
            ("20123456785", "PE", mismatch("6", "5")),
            (
                "30123456786",
                "PE",
                TaxIdError::InvalidPrefix {
                    expected: "10, 15, 16, 17 or 20",
                },
            ),
            (
                "2012345678",
                "PE",
                TaxIdError::InvalidLength {
                    expected: "11 digits",
                },
            ),
            (
                "2012345678A",
                "PE",
                TaxIdError::InvalidCharacters {
                    allowed: "digits and spaces",
                },
            ),
            (
                "A-1",
                "US",
                TaxIdError::InvalidLength {
                    expected: "3 to 20 letters or digits",
                },
            ),
            ("- -", "US", TaxIdError::Empty),
        ];
        for (typed, code, expected) in cases {
            let error = TaxId::parse(typed, country(code)).expect_err(typed);
            assert_eq!(error, expected, "{typed:?} ({code})");
            let compact = compact(typed, &['.', '-', '/']);
            if compact.len() > 6 {
                assert!(
                    !error.to_string().contains(&compact),
                    "the message repeats the id: {error}"
                );
            }
        }
    }

    #[test]
    fn messages_say_what_to_fix() {
        let message = |typed: &str, code: &str| {
            TaxId::parse(typed, country(code))
                .expect_err(typed)
                .to_string()
        };
        assert_eq!(
            message("900.123.456-7", "CO"),
            "check digit should be 8, got 7"
        );
        assert_eq!(
            message("529.982.247-26", "BR"),
            "check digits should be 25, got 26"
        );
        assert_eq!(message("2012345678", "PE"), "must have 11 digits");
        assert_eq!(
            message("GODE991332GR8", "MX"),
            "date part 991332 is not a valid date"
        );
        assert_eq!(
            message("111.111.111-11", "BR"),
            "cannot be one digit repeated"
        );
    }

    #[test]
    fn serde_writes_a_tagged_object_per_scheme() {
        for (typed, rules, json) in [
            (
                "900.123.456-8",
                country("CO"),
                r#"{"scheme":"co_nit","id":"900123456-8"}"#,
            ),
            (
                "GODE561231GR8",
                country("MX"),
                r#"{"scheme":"mx_rfc","id":"GODE561231GR8"}"#,
            ),
            (
                "529.982.247-25",
                country("BR"),
                r#"{"scheme":"br_cpf","id":"52998224725"}"#,
            ),
            (
                "12.ABC.345/01DE-35",
                country("BR"),
                r#"{"scheme":"br_cnpj","id":"12ABC34501DE35"}"#,
            ),
            (
                "12.345.678-5",
                country("CL"),
                r#"{"scheme":"cl_rut","id":"12345678-5"}"#,
            ),
            (
                "20123456786",
                country("PE"),
                r#"{"scheme":"pe_ruc","id":"20123456786"}"#,
            ),
            (
                "12-3456789",
                country("US"),
                r#"{"scheme":"foreign","country":"US","id":"123456789"}"#,
            ),
            (
                "12-3456789",
                None,
                r#"{"scheme":"foreign","id":"123456789"}"#,
            ),
        ] {
            let id = TaxId::parse(typed, rules).expect("valid");
            assert_eq!(serde_json::to_string(&id).expect("serialise"), json);
            assert_eq!(serde_json::from_str::<TaxId>(json).expect("parse"), id);
            assert_eq!(
                serde_json::to_value(id.scheme()).expect("serialise"),
                id.scheme().as_str()
            );
        }
    }

    #[test]
    fn deserialising_applies_the_rules_of_the_stored_scheme() {
        for json in [
            r#"{"scheme":"co_nit","id":"900123456-7"}"#, // wrong check digit
            r#"{"scheme":"mx_rfc","id":"12345678-5"}"#,  // a RUT is no RFC
            r#"{"scheme":"br_cpf","id":"11222333000181"}"#, // a CNPJ is no CPF
            r#"{"scheme":"foreign","country":"CO","id":"9001234568"}"#, // CO has rules
            r#"{"scheme":"cl_rut","country":"CL","id":"12345678-5"}"#, // country is implied
            r#"{"scheme":"xx_tin","id":"123456789"}"#,   // unknown scheme
            r#""900123456-8""#,                          // the old, untagged form
        ] {
            assert!(serde_json::from_str::<TaxId>(json).is_err(), "{json}");
        }
    }

    fn receita_digits(base: &str, weights: &[u32]) -> String {
        receita_check_digits(base.as_bytes(), weights)
            .iter()
            .map(u8::to_string)
            .collect()
    }

    fn nit() -> impl Strategy<Value = TaxId> {
        "[0-9]{6,15}".prop_map(|number| {
            let id = format!("{number}-{}", Nit::check_digit_of(&number));
            TaxId::parse(&id, Some(Country::CO)).expect("generated NIT")
        })
    }

    fn rfc() -> impl Strategy<Value = TaxId> {
        (
            "[A-Z&Ñ]{3,4}",
            0u32..100,
            1u32..=12,
            1u32..=31,
            "[A-Z0-9]{2}[0-9A]",
        )
            .prop_filter_map("a real date", |(name, year, month, day, homoclave)| {
                let date = format!("{year:02}{month:02}{day:02}");
                is_real_yymmdd(&date).then(|| {
                    TaxId::parse(&format!("{name}{date}{homoclave}"), Some(Country::MX))
                        .expect("generated RFC")
                })
            })
    }

    fn cpf() -> impl Strategy<Value = TaxId> {
        "[0-9]{9}"
            .prop_filter("not one digit repeated", |base| {
                base.bytes().any(|b| b != base.as_bytes()[0])
            })
            .prop_map(|base| {
                let id = format!("{base}{}", receita_digits(&base, &CPF_WEIGHTS));
                TaxId::parse(&id, Some(Country::BR)).expect("generated CPF")
            })
    }

    fn cnpj() -> impl Strategy<Value = TaxId> {
        prop_oneof!["[0-9]{12}", "[A-Z0-9]{12}"]
            .prop_filter("not one digit repeated", |base| {
                base.bytes().any(|b| b != base.as_bytes()[0])
            })
            .prop_map(|base| {
                let id = format!("{base}{}", receita_digits(&base, &CNPJ_WEIGHTS));
                TaxId::parse(&id, Some(Country::BR)).expect("generated CNPJ")
            })
    }

    fn rut() -> impl Strategy<Value = TaxId> {
        (1_000_000u32..100_000_000).prop_map(|number| {
            let number = number.to_string();
            let id = format!("{number}-{}", rut_check_digit(&number));
            TaxId::parse(&id, Some(Country::CL)).expect("generated RUT")
        })
    }

    fn ruc() -> impl Strategy<Value = TaxId> {
        (prop::sample::select(RUC_PREFIXES.to_vec()), "[0-9]{8}").prop_map(|(prefix, rest)| {
            let first_ten = format!("{prefix}{rest}");
            let id = format!("{first_ten}{}", ruc_check_digit(&first_ten));
            TaxId::parse(&id, Some(Country::PE)).expect("generated RUC")
        })
    }

    fn foreign() -> impl Strategy<Value = TaxId> {
        (
            prop::sample::select(vec![None, country("US"), country("AR"), country("ES")]),
            "[a-zA-Z0-9 .-]{3,24}",
        )
            .prop_filter_map("3 to 20 letters or digits", |(rules, raw)| {
                TaxId::parse(&raw, rules).ok()
            })
    }

    fn any_tax_id() -> impl Strategy<Value = TaxId> {
        prop_oneof![nit(), rfc(), cpf(), cnpj(), rut(), ruc(), foreign()]
    }

    fn with_check_digit() -> impl Strategy<Value = TaxId> {
        prop_oneof![nit(), cpf(), cnpj(), rut(), ruc()]
    }

    proptest! {
        #[test]
        fn the_storage_form_parses_back_to_the_same_id(id in any_tax_id()) {
            prop_assert_eq!(TaxId::parse(&id.storage(), id.country()), Ok(id));
        }

        #[test]
        fn the_display_form_parses_back_to_the_same_id(id in any_tax_id()) {
            prop_assert_eq!(TaxId::parse(&id.to_string(), id.country()), Ok(id));
        }

        #[test]
        fn serde_round_trips_every_id(id in any_tax_id()) {
            let json = serde_json::to_string(&id).expect("serialise");
            prop_assert_eq!(serde_json::from_str::<TaxId>(&json).expect("parse"), id);
        }

        #[test]
        fn foreign_ids_normalise_once(raw in any::<String>()) {
            if let Ok(id) = TaxId::parse(&raw, None) {
                prop_assert_eq!(TaxId::parse(&id.storage(), None), Ok(id));
            }
        }

        #[test]
        fn a_changed_check_digit_is_rejected(
            id in with_check_digit(),
            from_the_end in 0usize..2,
            replacement in prop::sample::select("0123456789K".chars().collect::<Vec<_>>()),
        ) {
            let storage = id.storage();
            let check_digits = match id.scheme() {
                TaxIdScheme::BrCpf | TaxIdScheme::BrCnpj => 2,
                _ => 1,
            };
            let at = storage.len() - 1 - from_the_end % check_digits;
            prop_assume!(!storage[at..].starts_with(replacement));
            let mutated = format!("{}{replacement}{}", &storage[..at], &storage[at + 1..]);
            let result = TaxId::parse(&mutated, id.country());
            if replacement.is_ascii_digit() || id.scheme() == TaxIdScheme::ClRut {
                prop_assert!(
                    matches!(result, Err(TaxIdError::CheckDigitMismatch { .. })),
                    "{:?}", result
                );
            } else {
                prop_assert!(result.is_err(), "{:?}", result);
            }
        }
    }
}
