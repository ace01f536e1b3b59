//! Tax identifiers. A `TaxId` can only hold a value whose form (and check digit, where the
//! country has one) is valid. Colombia's NIT is checked with the DIAN algorithm; other countries
//! are kept as a normalised foreign id until their own rules land in the model.

use crate::domain::Country;
use serde::{Deserialize, Serialize};
use std::fmt;

/// DIAN weights, applied to the NIT's digits from right to left.
const NIT_WEIGHTS: [u32; 15] = [3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxIdError {
    #[error("is empty")]
    Empty,
    #[error("has characters other than digits, dots, spaces and one hyphen")]
    InvalidCharacters,
    #[error("must have between 6 and 15 digits before the check digit")]
    InvalidLength,
    #[error("check digit does not match the NIT (DIAN modulo 11)")]
    CheckDigitMismatch,
    #[error("must be 3 to 20 letters or digits")]
    InvalidForeignId,
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
        let compact: String = raw.chars().filter(|c| !matches!(c, '.' | ' ')).collect();
        if compact.is_empty() {
            return Err(TaxIdError::Empty);
        }
        let (number, dv) = match compact.split_once('-') {
            Some((number, dv)) => (number.to_owned(), dv.to_owned()),
            None => {
                let split = compact.len().saturating_sub(1);
                (compact[..split].to_owned(), compact[split..].to_owned())
            }
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(&number) || dv.len() != 1 || !all_digits(&dv) {
            return Err(TaxIdError::InvalidCharacters);
        }
        if !(6..=15).contains(&number.len()) {
            return Err(TaxIdError::InvalidLength);
        }
        let check_digit = dv.as_bytes()[0] - b'0';
        if Self::check_digit_of(&number) != check_digit {
            return Err(TaxIdError::CheckDigitMismatch);
        }
        Ok(Self {
            number,
            check_digit,
        })
    }

    /// The DIAN check digit of a NIT's digits (without the check digit).
    pub fn check_digit_of(number: &str) -> u8 {
        let sum: u32 = number
            .bytes()
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
        let digits = self.number.as_bytes();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 2);
        for (i, d) in digits.iter().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push('.');
            }
            out.push(char::from(*d));
        }
        format!("{out}-{}", self.check_digit)
    }
}

/// A tax id that passed its country's rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaxId {
    /// Colombia: NIT with DIAN check digit.
    Nit(Nit),
    /// Any other country, upper-cased letters and digits only (separators dropped).
    Foreign {
        country: Option<Country>,
        id: String,
    },
}

impl TaxId {
    /// Parses `raw` under the rules of `country`. Colombia requires a valid NIT.
    pub fn parse(raw: &str, country: Option<Country>) -> Result<Self, TaxIdError> {
        if country == Some(Country::CO) {
            return Nit::parse(raw).map(TaxId::Nit);
        }
        let id: String = raw
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_uppercase)
            .collect();
        if id.is_empty() {
            return Err(TaxIdError::Empty);
        }
        if !(3..=20).contains(&id.chars().count()) {
            return Err(TaxIdError::InvalidForeignId);
        }
        Ok(TaxId::Foreign { country, id })
    }

    /// The form stored in the target system.
    pub fn storage(&self) -> String {
        match self {
            TaxId::Nit(nit) => nit.storage(),
            TaxId::Foreign { id, .. } => id.clone(),
        }
    }
}

impl fmt::Display for TaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaxId::Nit(nit) => f.write_str(&nit.display()),
            TaxId::Foreign { id, .. } => f.write_str(id),
        }
    }
}

impl Serialize for TaxId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.storage())
    }
}

impl<'de> Deserialize<'de> for TaxId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        // A stored NIT always carries its hyphen; anything else was stored as a foreign id.
        match Nit::parse(&raw) {
            Ok(nit) if raw.contains('-') => Ok(TaxId::Nit(nit)),
            _ => TaxId::parse(&raw, None).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn typed_forms_parse_to_the_same_nit() {
        let expected = Nit::parse("900123456-8").expect("valid");
        for typed in [
            "900.123.456-8",
            "9001234568",
            " 900 123 456 - 8 ",
            "900123456-8",
        ] {
            assert_eq!(Nit::parse(typed), Ok(expected.clone()), "{typed:?}");
        }
        assert_eq!(expected.storage(), "900123456-8");
        assert_eq!(expected.display(), "900.123.456-8");
    }

    #[test]
    fn a_wrong_check_digit_is_rejected() {
        assert_eq!(
            Nit::parse("900.123.456-7"),
            Err(TaxIdError::CheckDigitMismatch)
        );
        assert_eq!(
            Nit::parse("9001234567"),
            Err(TaxIdError::CheckDigitMismatch)
        );
    }

    #[test]
    fn malformed_nits_are_rejected_with_the_reason() {
        assert_eq!(Nit::parse(""), Err(TaxIdError::Empty));
        assert_eq!(
            Nit::parse("900A23456-8"),
            Err(TaxIdError::InvalidCharacters)
        );
        assert_eq!(Nit::parse("900123456-"), Err(TaxIdError::InvalidCharacters));
        assert_eq!(Nit::parse("12-3"), Err(TaxIdError::InvalidLength));
    }

    #[test]
    fn every_base_has_exactly_one_valid_check_digit() {
        for base in ["800197268", "123456", "999999999999999", "100000"] {
            let valid: Vec<u8> = (0..=9)
                .filter(|dv| Nit::parse(&format!("{base}-{dv}")).is_ok())
                .collect();
            // DV 10 cannot happen: r = 1 gives DV 1, so exactly one digit is valid.
            assert_eq!(valid, vec![Nit::check_digit_of(base)], "{base}");
        }
    }

    #[test]
    fn colombia_requires_a_nit_and_others_keep_a_normalised_id() {
        assert!(TaxId::parse("900123456-7", Some(Country::CO)).is_err());
        assert_eq!(
            TaxId::parse("gode-561231-gr8", Some(Country::MX)),
            Ok(TaxId::Foreign {
                country: Some(Country::MX),
                id: "GODE561231GR8".into()
            })
        );
    }

    #[test]
    fn storage_form_round_trips_through_serde() {
        let nit = TaxId::parse("900.123.456-8", Some(Country::CO)).expect("valid");
        let json = serde_json::to_string(&nit).expect("serialise");
        assert_eq!(json, "\"900123456-8\"");
        assert_eq!(serde_json::from_str::<TaxId>(&json).expect("parse"), nit);
    }
}
