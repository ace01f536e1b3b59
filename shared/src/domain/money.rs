//! Money: ISO 4217 currencies and amounts held as an integer count of minor units (centavos),
//! never as floats. Every text or JSON amount is parsed here, with the decimal style named by the
//! caller (`1.234.567,89` or `1,234,567.89` is never guessed), and a value with more decimals than
//! its currency allows is an error, not a silent rounding: `12.345` COP is rejected, `1000.00` CLP
//! is 1000 (trailing zeros lose nothing). `Money::parse_rounded` rounds only when asked.
//!
//! Rounding rule for invoice arithmetic: `line_total` and `tax` compute the exact rational result
//! with `i128` integers and round it once, half away from zero, to the currency's minor unit, per
//! line. An invoice's tax is the sum of its lines' rounded taxes (Odoo's default, "round per
//! line"), never the rounding of a sum. `allocate` splits an amount by largest remainder, so the
//! parts always add up to the total and no minor unit is lost or created.
//!
//! Floats from JSON (Odoo and SAP send `1190000.0`): the float is read as its shortest round-trip
//! decimal, the digits Python's `repr` wrote (`1190000`, `0.30000000000000004`). If that decimal
//! has at most the currency's digits, it is the amount, exactly. Otherwise it is rounded half away
//! from zero to the currency's precision and accepted only when the float lies within noise of
//! the rounded value: at most 16 ULPs of the float or a millionth of a minor unit (cancellation
//! noise near zero, as in `0.1 + 0.2 - 0.3`), and never more than a thousandth of a minor unit.
//! So `1189999.9999999998` is 1190000.00, while `12.345` COP and `12.3400001` COP are rejected.
//! Floats of 2^50 minor units or more (about 11 trillion COP) are rejected and must be sent as
//! strings: below that limit a float's spacing is under a quarter of a minor unit, so every
//! amount written with the currency's digits comes back exactly, even through serde_json's
//! default float parser, which may land an ULP off the nearest float.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// An ISO 4217 currency with its number of minor-unit digits. Only currencies in the table exist.
/// Serialized as its code (`"COP"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    minor_units: u8,
}

impl Currency {
    /// ISO 4217 says 2; some processors use 0 for COP, but DIAN e-invoices carry 2.
    pub const COP: Currency = Currency::new("COP", 2);
    pub const CLP: Currency = Currency::new("CLP", 0);
    /// Chile's Unidad de Fomento, an indexed unit of account that contracts are priced in.
    pub const CLF: Currency = Currency::new("CLF", 4);
    pub const MXN: Currency = Currency::new("MXN", 2);
    pub const PEN: Currency = Currency::new("PEN", 2);
    pub const BRL: Currency = Currency::new("BRL", 2);
    pub const USD: Currency = Currency::new("USD", 2);
    pub const EUR: Currency = Currency::new("EUR", 2);
    pub const ARS: Currency = Currency::new("ARS", 2);
    pub const UYU: Currency = Currency::new("UYU", 2);
    pub const BOB: Currency = Currency::new("BOB", 2);
    pub const PYG: Currency = Currency::new("PYG", 0);
    pub const CRC: Currency = Currency::new("CRC", 2);
    pub const GTQ: Currency = Currency::new("GTQ", 2);
    pub const DOP: Currency = Currency::new("DOP", 2);
    pub const PAB: Currency = Currency::new("PAB", 2);
    pub const HNL: Currency = Currency::new("HNL", 2);
    pub const NIO: Currency = Currency::new("NIO", 2);
    pub const VES: Currency = Currency::new("VES", 2);
    pub const CAD: Currency = Currency::new("CAD", 2);
    pub const GBP: Currency = Currency::new("GBP", 2);
    pub const JPY: Currency = Currency::new("JPY", 0);

    const TABLE: &'static [Currency] = &[
        Currency::COP,
        Currency::CLP,
        Currency::CLF,
        Currency::MXN,
        Currency::PEN,
        Currency::BRL,
        Currency::USD,
        Currency::EUR,
        Currency::ARS,
        Currency::UYU,
        Currency::BOB,
        Currency::PYG,
        Currency::CRC,
        Currency::GTQ,
        Currency::DOP,
        Currency::PAB,
        Currency::HNL,
        Currency::NIO,
        Currency::VES,
        Currency::CAD,
        Currency::GBP,
        Currency::JPY,
    ];

    const fn new(code: &'static str, minor_units: u8) -> Currency {
        Currency { code, minor_units }
    }

    /// Every currency puente knows.
    pub fn all() -> &'static [Currency] {
        Self::TABLE
    }

    /// Accepts a code in any case, with surrounding spaces (`" cop "`).
    pub fn parse(raw: &str) -> Result<Currency, MoneyError> {
        let code = raw.trim();
        Self::TABLE
            .iter()
            .copied()
            .find(|currency| currency.code.eq_ignore_ascii_case(code))
            .ok_or_else(|| MoneyError::UnknownCurrency {
                code: excerpt(code),
            })
    }

    /// The upper-case ISO 4217 code, e.g. `COP`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Digits after the decimal mark: 2 for COP, 0 for CLP.
    pub fn minor_units(&self) -> u32 {
        u32::from(self.minor_units)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

// By hand: a derive would tie the input's lifetime to the `&'static str` code.
impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// How the sending system writes numbers. Named by the caller (per system, per file layout),
/// never guessed from the text: `1.234` is 1234 in one style and 1.234 in another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecimalStyle {
    /// `1.234.567,89` (Colombia, Chile, Argentina, Brazil, ... spreadsheets and files).
    CommaDecimal,
    /// `1,234,567.89` (Mexico, Peru, the United States).
    DotDecimal,
    /// `1234567.89`, `-12.5`: JSON numbers sent as strings; no thousands separators.
    Plain,
}

impl DecimalStyle {
    fn decimal_mark(self) -> char {
        match self {
            DecimalStyle::CommaDecimal => ',',
            DecimalStyle::DotDecimal | DecimalStyle::Plain => '.',
        }
    }

    fn thousands_separator(self) -> Option<char> {
        match self {
            DecimalStyle::CommaDecimal => Some('.'),
            DecimalStyle::DotDecimal => Some(','),
            DecimalStyle::Plain => None,
        }
    }

    /// A number written in this style, for error messages.
    pub fn example(self) -> &'static str {
        match self {
            DecimalStyle::CommaDecimal => "1.234.567,89",
            DecimalStyle::DotDecimal => "1,234,567.89",
            DecimalStyle::Plain => "1234567.89",
        }
    }
}

/// How to round digits beyond the precision, when the caller explicitly asks for rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// 0.5 goes to 1 and -0.5 to -1 (commercial rounding; what `line_total` and `tax` use).
    HalfAwayFromZero,
    /// 0.5 goes to the even neighbour (banker's rounding).
    HalfEven,
    /// Drops the extra digits (truncation).
    TowardZero,
}

impl Rounding {
    /// Whether a magnitude moves one unit away from zero, given how the dropped part compares
    /// to one half of a unit and whether the kept magnitude is odd.
    fn rounds_away(self, dropped_vs_half: Ordering, kept_is_odd: bool) -> bool {
        match self {
            Rounding::HalfAwayFromZero => dropped_vs_half != Ordering::Less,
            Rounding::HalfEven => {
                dropped_vs_half == Ordering::Greater
                    || (dropped_vs_half == Ordering::Equal && kept_is_odd)
            }
            Rounding::TowardZero => false,
        }
    }
}

/// An amount in one currency, as a count of the currency's minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "MoneyRepr", into = "MoneyRepr")]
pub struct Money {
    minor: i64,
    currency: Currency,
}

/// Serialized form: `{"amount": "1234567.89", "currency": "COP"}` (a string, never a float).
#[derive(Serialize, Deserialize)]
struct MoneyRepr {
    amount: String,
    currency: Currency,
}

impl Money {
    /// `Money::from_minor(123456789, Currency::COP)` is COP 1234567.89.
    pub const fn from_minor(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    pub const fn zero(currency: Currency) -> Money {
        Money::from_minor(0, currency)
    }

    /// The amount in minor units (centavos for COP, pesos for CLP).
    pub const fn minor(&self) -> i64 {
        self.minor
    }

    pub const fn currency(&self) -> Currency {
        self.currency
    }

    pub const fn is_negative(&self) -> bool {
        self.minor < 0
    }

    pub const fn is_zero(&self) -> bool {
        self.minor == 0
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(minor, self.currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(minor, self.currency))
    }

    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(minor, self.currency))
    }

    /// Adds amounts that must all be in `currency`; no amounts sum to zero.
    pub fn sum(
        currency: Currency,
        amounts: impl IntoIterator<Item = Money>,
    ) -> Result<Money, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), Money::checked_add)
    }

    /// Parses `text` written in `style`: an optional sign, thousands separators only in groups
    /// of three, and at most the currency's digits after the decimal mark (trailing zeros
    /// beyond them are allowed). Surrounding spaces are ignored.
    pub fn parse(text: &str, currency: Currency, style: DecimalStyle) -> Result<Money, MoneyError> {
        let minor = scaled_from_text(text, style, Subject::Amount(currency), None)?;
        Ok(Money::from_minor(minor, currency))
    }

    /// Like `parse`, but rounds extra decimals with `rounding` instead of rejecting them.
    pub fn parse_rounded(
        text: &str,
        currency: Currency,
        style: DecimalStyle,
        rounding: Rounding,
    ) -> Result<Money, MoneyError> {
        let minor = scaled_from_text(text, style, Subject::Amount(currency), Some(rounding))?;
        Ok(Money::from_minor(minor, currency))
    }

    /// Reads a JSON string (in `DecimalStyle::Plain`) or a JSON number. Integers are whole units
    /// (`1190000` COP is 1190000.00); floats follow the rule in the module documentation.
    pub fn from_json(value: &Value, currency: Currency) -> Result<Money, MoneyError> {
        let minor = scaled_from_json(value, Subject::Amount(currency))?;
        Ok(Money::from_minor(minor, currency))
    }

    /// Plain decimal with exactly the currency's digits: `1234567.89`, `-5.00`, `1000` for CLP.
    /// This is the form to write to the remote systems; `Money::parse` with
    /// `DecimalStyle::Plain` reads it back to the same value.
    pub fn to_decimal_string(&self) -> String {
        decimal_string(self.minor, self.currency.minor_units(), false)
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

impl fmt::Display for Money {
    /// `COP 1234567.89`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency, self.to_decimal_string())
    }
}

impl TryFrom<MoneyRepr> for Money {
    type Error = MoneyError;
    fn try_from(repr: MoneyRepr) -> Result<Self, Self::Error> {
        Money::parse(&repr.amount, repr.currency, DecimalStyle::Plain)
    }
}

impl From<Money> for MoneyRepr {
    fn from(money: Money) -> MoneyRepr {
        MoneyRepr {
            amount: money.to_decimal_string(),
            currency: money.currency,
        }
    }
}

/// A line quantity in fixed point with `Quantity::DECIMALS` digits (millionths of a unit).
/// Negative quantities exist (Odoo deduction lines use -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Quantity {
    micros: i64,
}

const QUANTITY_SCALE: i64 = 1_000_000;

impl Quantity {
    /// Digits after the decimal mark (Siigo's prices carry up to 6).
    pub const DECIMALS: u32 = 6;
    pub const ONE: Quantity = Quantity::from_units(1);

    pub const fn from_units(units: i32) -> Quantity {
        Quantity {
            micros: units as i64 * QUANTITY_SCALE,
        }
    }

    /// `Quantity::from_micros(2_500_000)` is 2.5.
    pub const fn from_micros(micros: i64) -> Quantity {
        Quantity { micros }
    }

    pub const fn micros(&self) -> i64 {
        self.micros
    }

    pub const fn is_negative(&self) -> bool {
        self.micros < 0
    }

    /// `2`, `2.5`, `0.333333`, `1.000,5` in `CommaDecimal`; more than 6 decimals is an error.
    pub fn parse(text: &str, style: DecimalStyle) -> Result<Quantity, MoneyError> {
        scaled_from_text(text, style, Subject::Quantity, None).map(Quantity::from_micros)
    }

    /// A JSON number (`2`, `2.0`) or string, under the same float rule as `Money::from_json`.
    pub fn from_json(value: &Value) -> Result<Quantity, MoneyError> {
        scaled_from_json(value, Subject::Quantity).map(Quantity::from_micros)
    }

    /// Without trailing zeros: `2`, `2.5`, `0.333333`.
    pub fn to_decimal_string(&self) -> String {
        decimal_string(self.micros, Self::DECIMALS, true)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal_string())
    }
}

impl TryFrom<String> for Quantity {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Quantity::parse(&s, DecimalStyle::Plain)
    }
}

impl From<Quantity> for String {
    fn from(q: Quantity) -> String {
        q.to_decimal_string()
    }
}

/// A percentage for taxes and discounts, in millionths of one (19% is 190 000), i.e. a percent
/// with up to `Rate::PERCENT_DECIMALS` decimals: 19%, 16%, 18%, 0.414% (ICA 4.14 per mil).
/// Negative rates are allowed: withholdings are often modelled as negative taxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rate {
    millionths: i64,
}

const RATE_SCALE: i64 = 1_000_000;

impl Rate {
    /// Digits a percentage may have after the decimal mark.
    pub const PERCENT_DECIMALS: u32 = 4;
    pub const ZERO: Rate = Rate::from_millionths(0);

    /// `Rate::from_percent(19)` is 19%.
    pub const fn from_percent(percent: u16) -> Rate {
        Rate::from_millionths(percent as i64 * 10_000)
    }

    /// `Rate::from_basis_points(1_900)` is 19%.
    pub const fn from_basis_points(basis_points: u32) -> Rate {
        Rate::from_millionths(basis_points as i64 * 100)
    }

    /// `Rate::from_millionths(4_140)` is 0.414%.
    pub const fn from_millionths(millionths: i64) -> Rate {
        Rate { millionths }
    }

    pub const fn millionths(&self) -> i64 {
        self.millionths
    }

    /// Parses a percent number (`19`, `0.414`, `2,5` in `CommaDecimal`), without a `%` sign.
    pub fn parse_percent(text: &str, style: DecimalStyle) -> Result<Rate, MoneyError> {
        scaled_from_text(text, style, Subject::Percentage, None).map(Rate::from_millionths)
    }

    /// A percent as a JSON number or string (Odoo's `discount: 10.0`, Siigo's `percentage: 19`).
    pub fn percent_from_json(value: &Value) -> Result<Rate, MoneyError> {
        scaled_from_json(value, Subject::Percentage).map(Rate::from_millionths)
    }

    /// The percent without trailing zeros and without the sign: `19`, `0.414`.
    pub fn to_percent_string(&self) -> String {
        decimal_string(self.millionths, Self::PERCENT_DECIMALS, true)
    }
}

impl fmt::Display for Rate {
    /// `19%`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.to_percent_string())
    }
}

impl TryFrom<String> for Rate {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let percent = s
            .trim()
            .strip_suffix('%')
            .ok_or_else(|| MoneyError::Malformed {
                text: excerpt(&s),
                example: "19%",
            })?;
        Rate::parse_percent(percent, DecimalStyle::Plain)
    }
}

impl From<Rate> for String {
    fn from(r: Rate) -> String {
        r.to_string()
    }
}

/// `unit_price × quantity × (1 − discount)`, computed exactly and rounded once, half away from
/// zero, to the currency's minor unit. The discount must be between 0% and 100%.
pub fn line_total(
    unit_price: Money,
    quantity: Quantity,
    discount: Rate,
) -> Result<Money, MoneyError> {
    if !(0..=RATE_SCALE).contains(&discount.millionths) {
        return Err(MoneyError::DiscountOutOfRange { discount });
    }
    let numerator = i128::from(unit_price.minor)
        .checked_mul(i128::from(quantity.micros))
        .and_then(|n| n.checked_mul(i128::from(RATE_SCALE - discount.millionths)))
        .ok_or(MoneyError::Overflow)?;
    let denominator = QUANTITY_SCALE.unsigned_abs() * RATE_SCALE.unsigned_abs();
    let minor = divide_rounded(
        numerator,
        u128::from(denominator),
        Rounding::HalfAwayFromZero,
    )?;
    Ok(Money::from_minor(minor, unit_price.currency))
}

/// `base × rate`, computed exactly and rounded once, half away from zero, to the currency's
/// minor unit: the tax of one line. Sum the lines' taxes for the invoice's tax.
pub fn tax(base: Money, rate: Rate) -> Result<Money, MoneyError> {
    let numerator = i128::from(base.minor)
        .checked_mul(i128::from(rate.millionths))
        .ok_or(MoneyError::Overflow)?;
    let minor = divide_rounded(
        numerator,
        u128::from(RATE_SCALE.unsigned_abs()),
        Rounding::HalfAwayFromZero,
    )?;
    Ok(Money::from_minor(minor, base.currency))
}

/// Splits `total` in proportion to `weights` (largest remainder): every part is its exact share
/// rounded down or up by less than one minor unit, the leftover units go to the largest
/// remainders (ties to the earlier part), a zero weight gets zero, and the parts always add up
/// to `total` exactly. A negative total splits its magnitude and negates every part.
pub fn allocate(total: Money, weights: &[u64]) -> Result<Vec<Money>, MoneyError> {
    let weight_sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if weight_sum == 0 {
        return Err(MoneyError::NoWeights);
    }
    let magnitude = u128::from(total.minor.unsigned_abs());
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for (index, &weight) in weights.iter().enumerate() {
        // At most 2^63 × (2^64 − 1), below 2^127: no overflow.
        let product = magnitude * u128::from(weight);
        parts.push(product / weight_sum);
        remainders.push((product % weight_sum, index));
    }
    // Each part is short of its share by less than one unit, so fewer units than parts remain.
    let leftover = magnitude - parts.iter().sum::<u128>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let leftover = usize::try_from(leftover).unwrap_or(weights.len());
    for &(_, index) in remainders.iter().take(leftover) {
        parts[index] += 1;
    }
    parts
        .into_iter()
        .map(|part| {
            let part = i128::try_from(part).map_err(|_| MoneyError::Overflow)?;
            let signed = if total.is_negative() { -part } else { part };
            let minor = i64::try_from(signed).map_err(|_| MoneyError::Overflow)?;
            Ok(Money::from_minor(minor, total.currency))
        })
        .collect()
}

/// Something went wrong reading, computing or splitting an amount. Every variant is a
/// rejection of the input (or of a computation on it): retrying will not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency {}", shown(.code))]
    UnknownCurrency { code: String },
    #[error("cannot add {left} to {right}: convert amounts to one currency first")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("out of range: the value does not fit in 64 bits at its precision")]
    Overflow,
    #[error("expected a number like {example}, got {}", shown(.text))]
    Malformed { text: String, example: &'static str },
    #[error("amount {text} has {decimals} decimal{} but {currency} allows {}", plural(.decimals), allowance(.currency))]
    TooManyDecimals {
        text: String,
        decimals: usize,
        currency: Currency,
    },
    #[error("{what} {text} has {decimals} decimal{} but at most {allowed} are allowed", plural(.decimals))]
    PrecisionExceeded {
        what: &'static str,
        text: String,
        decimals: usize,
        allowed: u32,
    },
    #[error("expected a JSON number or a string holding one, got {found}")]
    NotANumber { found: &'static str },
    #[error("{text} is too large to be exact as a JSON float; it must be sent as a decimal string")]
    FloatTooLarge { text: String },
    #[error("discount {discount} is outside 0% to 100%")]
    DiscountOutOfRange { discount: Rate },
    #[error("cannot allocate over weights that are all zero or absent")]
    NoWeights,
}

fn shown(text: &str) -> &str {
    if text.is_empty() { "nothing" } else { text }
}

fn plural(count: &usize) -> &'static str {
    if *count == 1 { "" } else { "s" }
}

fn allowance(currency: &Currency) -> String {
    match currency.minor_units() {
        0 => "none".to_owned(),
        n => n.to_string(),
    }
}

/// At most 40 characters of the (trimmed) input, so a long garbage value cannot flood a log.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    let text = text.trim();
    if text.chars().count() <= MAX_CHARS {
        text.to_owned()
    } else {
        text.chars().take(MAX_CHARS).chain(['…']).collect()
    }
}

/// What a scaled integer counts, for precision and error messages.
#[derive(Clone, Copy)]
enum Subject {
    Amount(Currency),
    Quantity,
    Percentage,
}

impl Subject {
    fn scale(self) -> u32 {
        match self {
            Subject::Amount(currency) => currency.minor_units(),
            Subject::Quantity => Quantity::DECIMALS,
            Subject::Percentage => Rate::PERCENT_DECIMALS,
        }
    }

    fn too_many_decimals(self, text: &str, decimals: usize) -> MoneyError {
        let text = excerpt(text);
        match self {
            Subject::Amount(currency) => MoneyError::TooManyDecimals {
                text,
                decimals,
                currency,
            },
            Subject::Quantity => MoneyError::PrecisionExceeded {
                what: "quantity",
                text,
                decimals,
                allowed: Quantity::DECIMALS,
            },
            Subject::Percentage => MoneyError::PrecisionExceeded {
                what: "percentage",
                text,
                decimals,
                allowed: Rate::PERCENT_DECIMALS,
            },
        }
    }
}

/// A syntactically valid decimal: sign, integer digits (separators removed), fraction digits.
struct Decimal<'a> {
    negative: bool,
    integer: String,
    fraction: &'a str,
}

enum Failure {
    TooManyDecimals(usize),
    Overflow,
}

fn split_decimal(text: &str, style: DecimalStyle) -> Option<Decimal<'_>> {
    let is_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let body = text.trim();
    let (negative, body) = match body.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, body.strip_prefix('+').unwrap_or(body)),
    };
    let (integer, fraction) = match body.split_once(style.decimal_mark()) {
        Some((integer, fraction)) if is_digits(fraction) => (integer, fraction),
        Some(_) => return None,
        None => (body, ""),
    };
    let integer = match style.thousands_separator() {
        Some(separator) if integer.contains(separator) => {
            let mut groups = integer.split(separator);
            let first = groups.next().unwrap_or("");
            if first.len() > 3 || !is_digits(first) {
                return None;
            }
            let mut digits = first.to_owned();
            for group in groups {
                if group.len() != 3 || !is_digits(group) {
                    return None;
                }
                digits.push_str(group);
            }
            digits
        }
        _ if is_digits(integer) => integer.to_owned(),
        _ => return None,
    };
    Some(Decimal {
        negative,
        integer,
        fraction,
    })
}

impl Decimal<'_> {
    /// The value times 10^scale as an integer; extra non-zero decimals are rounded with
    /// `rounding`, or rejected without it.
    fn scaled(&self, scale: u32, rounding: Option<Rounding>) -> Result<i64, Failure> {
        let scale = usize::try_from(scale).unwrap_or(usize::MAX);
        let significant = self.fraction.trim_end_matches('0').len();
        if significant > scale && rounding.is_none() {
            return Err(Failure::TooManyDecimals(significant));
        }
        let kept = self
            .fraction
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(scale);
        let mut magnitude: u128 = 0;
        for digit in self.integer.bytes().chain(kept) {
            magnitude = magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(digit - b'0')))
                .ok_or(Failure::Overflow)?;
        }
        if let Some(rounding) = rounding {
            let dropped = self.fraction.get(scale..).unwrap_or("");
            let dropped_vs_half = match dropped.bytes().next() {
                None => Ordering::Less,
                Some(b'5') if dropped.bytes().skip(1).any(|b| b != b'0') => Ordering::Greater,
                Some(first) => first.cmp(&b'5'),
            };
            if rounding.rounds_away(dropped_vs_half, magnitude % 2 == 1) {
                magnitude = magnitude.checked_add(1).ok_or(Failure::Overflow)?;
            }
        }
        let magnitude = i128::try_from(magnitude).map_err(|_| Failure::Overflow)?;
        let signed = if self.negative { -magnitude } else { magnitude };
        i64::try_from(signed).map_err(|_| Failure::Overflow)
    }
}

fn scaled_from_text(
    text: &str,
    style: DecimalStyle,
    subject: Subject,
    rounding: Option<Rounding>,
) -> Result<i64, MoneyError> {
    let decimal = split_decimal(text, style).ok_or_else(|| MoneyError::Malformed {
        text: excerpt(text),
        example: style.example(),
    })?;
    decimal
        .scaled(subject.scale(), rounding)
        .map_err(|failure| match failure {
            Failure::TooManyDecimals(decimals) => subject.too_many_decimals(text, decimals),
            Failure::Overflow => MoneyError::Overflow,
        })
}

fn scaled_from_json(value: &Value, subject: Subject) -> Result<i64, MoneyError> {
    let number = match value {
        Value::String(text) => {
            return scaled_from_text(text, DecimalStyle::Plain, subject, None);
        }
        Value::Number(number) => number,
        Value::Null => return Err(MoneyError::NotANumber { found: "null" }),
        Value::Bool(_) => return Err(MoneyError::NotANumber { found: "a boolean" }),
        Value::Array(_) => return Err(MoneyError::NotANumber { found: "an array" }),
        Value::Object(_) => return Err(MoneyError::NotANumber { found: "an object" }),
    };
    let unit = 10i64.pow(subject.scale());
    if let Some(whole) = number.as_i64() {
        return whole.checked_mul(unit).ok_or(MoneyError::Overflow);
    }
    if let Some(whole) = number.as_u64() {
        return i64::try_from(whole)
            .ok()
            .and_then(|whole| whole.checked_mul(unit))
            .ok_or(MoneyError::Overflow);
    }
    match number.as_f64() {
        Some(float) => scaled_from_float(float, subject),
        None => Err(MoneyError::NotANumber {
            found: "a number that is neither an integer nor a float",
        }),
    }
}

/// Below 2^50 units a float's spacing is under a quarter of a unit, so distinct amounts stay
/// distinct floats (even one ULP off) and the shortest representation gives back the amount.
const FLOAT_EXACT_LIMIT: u64 = 1 << 50;
/// Float noise accepted around a value at the precision (see the module documentation).
const FLOAT_NOISE_ULPS: f64 = 16.0;
const FLOAT_NOISE_FLOOR_UNITS: f64 = 1e-6;
const FLOAT_NOISE_CEILING_UNITS: f64 = 1e-3;

fn scaled_from_float(value: f64, subject: Subject) -> Result<i64, MoneyError> {
    // Display writes the shortest decimal that reads back as the same float, never an exponent.
    let text = format!("{value}");
    let too_large = || MoneyError::FloatTooLarge {
        text: excerpt(&text),
    };
    let decimal =
        split_decimal(&text, DecimalStyle::Plain).ok_or_else(|| MoneyError::Malformed {
            text: excerpt(&text),
            example: DecimalStyle::Plain.example(),
        })?;
    let scale = subject.scale();
    let scaled = match decimal.scaled(scale, None) {
        Ok(scaled) => scaled,
        Err(Failure::Overflow) => return Err(too_large()),
        Err(Failure::TooManyDecimals(decimals)) => {
            let rounded = decimal
                .scaled(scale, Some(Rounding::HalfAwayFromZero))
                .map_err(|_| too_large())?;
            if rounded.unsigned_abs() >= FLOAT_EXACT_LIMIT {
                return Err(too_large());
            }
            let exponent = i32::try_from(scale).unwrap_or(i32::MAX);
            let unit = 10f64.powi(-exponent);
            // Exact integer below 2^53, divided with one correct rounding: the float nearest to
            // the rounded decimal, so the subtraction below measures only the sender's noise.
            let nearest = rounded as f64 / 10f64.powi(exponent);
            let distance = (value - nearest).abs();
            let tolerance = (FLOAT_NOISE_ULPS * ulp(value))
                .max(FLOAT_NOISE_FLOOR_UNITS * unit)
                .min(FLOAT_NOISE_CEILING_UNITS * unit);
            if distance > tolerance {
                return Err(subject.too_many_decimals(&text, decimals));
            }
            rounded
        }
    };
    if scaled.unsigned_abs() >= FLOAT_EXACT_LIMIT {
        return Err(too_large());
    }
    Ok(scaled)
}

/// The gap between `value` and the next float away from zero.
fn ulp(value: f64) -> f64 {
    let magnitude = value.abs();
    magnitude.next_up() - magnitude
}

/// `numerator / denominator` rounded to an integer with `rounding`; `denominator` is positive.
fn divide_rounded(
    numerator: i128,
    denominator: u128,
    rounding: Rounding,
) -> Result<i64, MoneyError> {
    let magnitude = numerator.unsigned_abs();
    let quotient = magnitude / denominator;
    let remainder = magnitude % denominator;
    // remainder vs denominator / 2, without doubling (which could overflow).
    let dropped_vs_half = remainder.cmp(&(denominator - remainder));
    let quotient = if rounding.rounds_away(dropped_vs_half, quotient % 2 == 1) {
        quotient + 1
    } else {
        quotient
    };
    let quotient = i128::try_from(quotient).map_err(|_| MoneyError::Overflow)?;
    let signed = if numerator < 0 { -quotient } else { quotient };
    i64::try_from(signed).map_err(|_| MoneyError::Overflow)
}

/// `value / 10^scale` in plain decimal; `trim` drops trailing fraction zeros (and the mark).
fn decimal_string(value: i64, scale: u32, trim: bool) -> String {
    let magnitude = value.unsigned_abs();
    let unit = 10u64.pow(scale);
    let sign = if value < 0 { "-" } else { "" };
    let integer = magnitude / unit;
    let width = usize::try_from(scale).unwrap_or(0);
    // `{:00$}` still writes one digit, so a currency without decimals gets no fraction at all.
    let fraction = if width == 0 {
        String::new()
    } else {
        format!("{:0width$}", magnitude % unit)
    };
    let fraction = if trim {
        fraction.trim_end_matches('0')
    } else {
        fraction.as_str()
    };
    if fraction.is_empty() {
        format!("{sign}{integer}")
    } else {
        format!("{sign}{integer}.{fraction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const COP: Currency = Currency::COP;
    const CLP: Currency = Currency::CLP;

    fn cop(minor: i64) -> Money {
        Money::from_minor(minor, COP)
    }

    /// Result of a parse as its minor units, or the error's message.
    fn outcome(result: Result<Money, MoneyError>) -> Result<i64, String> {
        result.map(|m| m.minor()).map_err(|e| e.to_string())
    }

    #[test]
    fn currencies_parse_in_any_case_and_know_their_minor_units() {
        let table = [
            ("COP", 2),
            ("CLP", 0),
            ("MXN", 2),
            ("PEN", 2),
            ("BRL", 2),
            ("USD", 2),
            ("EUR", 2),
            ("ARS", 2),
            ("UYU", 2),
            ("BOB", 2),
            ("PYG", 0),
            ("CRC", 2),
            ("GTQ", 2),
            ("DOP", 2),
            ("CAD", 2),
            ("GBP", 2),
            ("JPY", 0),
            ("CLF", 4),
        ];
        for (code, minor_units) in table {
            let currency = Currency::parse(code).expect(code);
            assert_eq!(currency.code(), code);
            assert_eq!(currency.minor_units(), minor_units, "{code}");
        }
        for raw in ["cop", " COP ", "Cop", "\tcop\n"] {
            assert_eq!(Currency::parse(raw), Ok(COP), "{raw:?}");
        }
        assert_eq!("clp".parse::<Currency>(), Ok(CLP));
    }

    #[test]
    fn unknown_currencies_are_rejected_by_name() {
        for (raw, message) in [
            ("XYZ", "unknown currency XYZ"),
            (" xyz ", "unknown currency xyz"),
            ("", "unknown currency nothing"),
            ("CO", "unknown currency CO"),
            ("COPX", "unknown currency COPX"),
            ("$", "unknown currency $"),
        ] {
            let error = Currency::parse(raw).expect_err(raw);
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn currencies_serialize_as_their_code() {
        assert_eq!(serde_json::to_value(COP).expect("serializes"), json!("COP"));
        let back: Currency = serde_json::from_value(json!("usd")).expect("deserializes");
        assert_eq!(back, Currency::USD);
        assert!(serde_json::from_value::<Currency>(json!("XYZ")).is_err());
    }

    #[test]
    fn comma_decimal_amounts_parse_or_say_why_not() {
        let style = DecimalStyle::CommaDecimal;
        let cases: &[(&str, Currency, Result<i64, &str>)] = &[
            ("1.234.567,89", COP, Ok(123_456_789)),
            ("1234567,89", COP, Ok(123_456_789)),
            ("1.234,5", COP, Ok(123_450)),
            ("-1.234,5", COP, Ok(-123_450)),
            ("+12", COP, Ok(1_200)),
            (" 12,00 ", COP, Ok(1_200)),
            ("0,01", COP, Ok(1)),
            ("-0,01", COP, Ok(-1)),
            ("1.234", COP, Ok(123_400)),
            ("12,340", COP, Ok(1_234)),
            ("-0", COP, Ok(0)),
            ("1.000", CLP, Ok(1_000)),
            ("1.000,00", CLP, Ok(1_000)),
            (
                "12,345",
                COP,
                Err("amount 12,345 has 3 decimals but COP allows 2"),
            ),
            (
                "1.000,5",
                CLP,
                Err("amount 1.000,5 has 1 decimal but CLP allows none"),
            ),
            (
                "1,234.56",
                COP,
                Err("expected a number like 1.234.567,89, got 1,234.56"),
            ),
            (
                "1234.567,89",
                COP,
                Err("expected a number like 1.234.567,89, got 1234.567,89"),
            ),
            (
                "1.23.456",
                COP,
                Err("expected a number like 1.234.567,89, got 1.23.456"),
            ),
            (
                "1.2345,00",
                COP,
                Err("expected a number like 1.234.567,89, got 1.2345,00"),
            ),
            (
                ".234,5",
                COP,
                Err("expected a number like 1.234.567,89, got .234,5"),
            ),
            (
                ",5",
                COP,
                Err("expected a number like 1.234.567,89, got ,5"),
            ),
            (
                "1,",
                COP,
                Err("expected a number like 1.234.567,89, got 1,"),
            ),
            (
                "1,2,3",
                COP,
                Err("expected a number like 1.234.567,89, got 1,2,3"),
            ),
            (
                "1 234,5",
                COP,
                Err("expected a number like 1.234.567,89, got 1 234,5"),
            ),
            (
                "",
                COP,
                Err("expected a number like 1.234.567,89, got nothing"),
            ),
            ("-", COP, Err("expected a number like 1.234.567,89, got -")),
            (
                "--1",
                COP,
                Err("expected a number like 1.234.567,89, got --1"),
            ),
            (
                "- 1",
                COP,
                Err("expected a number like 1.234.567,89, got - 1"),
            ),
            (
                "$1",
                COP,
                Err("expected a number like 1.234.567,89, got $1"),
            ),
            (
                "1e5",
                COP,
                Err("expected a number like 1.234.567,89, got 1e5"),
            ),
            (
                "abc",
                COP,
                Err("expected a number like 1.234.567,89, got abc"),
            ),
        ];
        for (text, currency, expected) in cases {
            let expected = expected.map_err(str::to_owned);
            let got = outcome(Money::parse(text, *currency, style));
            assert_eq!(got, expected, "{text:?} in {currency}");
        }
    }

    #[test]
    fn dot_decimal_amounts_parse_or_say_why_not() {
        let style = DecimalStyle::DotDecimal;
        let cases: &[(&str, Currency, Result<i64, &str>)] = &[
            ("1,234,567.89", COP, Ok(123_456_789)),
            ("1234567.89", COP, Ok(123_456_789)),
            ("1,234.5", Currency::MXN, Ok(123_450)),
            ("-0.5", Currency::PEN, Ok(-50)),
            ("1,234", COP, Ok(123_400)),
            ("1,000", CLP, Ok(1_000)),
            ("12.3456", Currency::CLF, Ok(123_456)),
            (
                "1.234,56",
                COP,
                Err("expected a number like 1,234,567.89, got 1.234,56"),
            ),
            (
                "1,23",
                COP,
                Err("expected a number like 1,234,567.89, got 1,23"),
            ),
            (
                "1,2345",
                COP,
                Err("expected a number like 1,234,567.89, got 1,2345"),
            ),
            (
                "12.345",
                Currency::USD,
                Err("amount 12.345 has 3 decimals but USD allows 2"),
            ),
            (
                "1,000.5",
                CLP,
                Err("amount 1,000.5 has 1 decimal but CLP allows none"),
            ),
        ];
        for (text, currency, expected) in cases {
            let expected = expected.map_err(str::to_owned);
            let got = outcome(Money::parse(text, *currency, style));
            assert_eq!(got, expected, "{text:?} in {currency}");
        }
    }

    #[test]
    fn plain_amounts_parse_or_say_why_not() {
        let style = DecimalStyle::Plain;
        let cases: &[(&str, Currency, Result<i64, &str>)] = &[
            ("1234567.89", COP, Ok(123_456_789)),
            ("-12.5", COP, Ok(-1_250)),
            ("0", COP, Ok(0)),
            ("007", COP, Ok(700)),
            ("1000", CLP, Ok(1_000)),
            ("1000.00", CLP, Ok(1_000)),
            ("-5", Currency::JPY, Ok(-5)),
            ("92233720368547758.07", COP, Ok(i64::MAX)),
            ("-92233720368547758.08", COP, Ok(i64::MIN)),
            (
                "92233720368547758.08",
                COP,
                Err("out of range: the value does not fit in 64 bits at its precision"),
            ),
            (
                "1000000000000000000000000000000000000000000",
                COP,
                Err("out of range: the value does not fit in 64 bits at its precision"),
            ),
            (
                "1000.5",
                CLP,
                Err("amount 1000.5 has 1 decimal but CLP allows none"),
            ),
            (
                "12.345",
                COP,
                Err("amount 12.345 has 3 decimals but COP allows 2"),
            ),
            (
                "12.3450",
                COP,
                Err("amount 12.3450 has 3 decimals but COP allows 2"),
            ),
            (
                "1,234.56",
                COP,
                Err("expected a number like 1234567.89, got 1,234.56"),
            ),
            (
                "1.234,56",
                COP,
                Err("expected a number like 1234567.89, got 1.234,56"),
            ),
            (
                "12.",
                COP,
                Err("expected a number like 1234567.89, got 12."),
            ),
            (".5", COP, Err("expected a number like 1234567.89, got .5")),
            (
                "1e3",
                COP,
                Err("expected a number like 1234567.89, got 1e3"),
            ),
            ("١٢", COP, Err("expected a number like 1234567.89, got ١٢")),
        ];
        for (text, currency, expected) in cases {
            let expected = expected.map_err(str::to_owned);
            let got = outcome(Money::parse(text, *currency, style));
            assert_eq!(got, expected, "{text:?} in {currency}");
        }
    }

    #[test]
    fn long_garbage_is_cut_short_in_the_error() {
        let text = "x".repeat(500);
        let message = Money::parse(&text, COP, DecimalStyle::Plain)
            .expect_err("garbage")
            .to_string();
        assert!(message.len() < 100, "{message}");
    }

    #[test]
    fn parse_rounded_rounds_only_as_asked() {
        use Rounding::*;
        let cases: &[(&str, Currency, Rounding, i64)] = &[
            ("12.345", COP, HalfAwayFromZero, 1_235),
            ("-12.345", COP, HalfAwayFromZero, -1_235),
            ("12.344999", COP, HalfAwayFromZero, 1_234),
            ("12.34", COP, HalfAwayFromZero, 1_234),
            ("12.345", COP, HalfEven, 1_234),
            ("12.355", COP, HalfEven, 1_236),
            ("12.3450001", COP, HalfEven, 1_235),
            ("-12.345", COP, HalfEven, -1_234),
            ("12.349", COP, TowardZero, 1_234),
            ("-12.349", COP, TowardZero, -1_234),
            ("2.5", CLP, HalfAwayFromZero, 3),
            ("2.5", CLP, HalfEven, 2),
            ("3.5", CLP, HalfEven, 4),
            ("-0.5", CLP, HalfAwayFromZero, -1),
            ("0.4999", CLP, HalfAwayFromZero, 0),
        ];
        for (text, currency, rounding, expected) in cases {
            let got = Money::parse_rounded(text, *currency, DecimalStyle::Plain, *rounding)
                .expect(text)
                .minor();
            assert_eq!(got, *expected, "{text} {rounding:?}");
        }
        assert!(
            Money::parse_rounded(
                "1,234.5",
                COP,
                DecimalStyle::Plain,
                Rounding::HalfAwayFromZero
            )
            .is_err()
        );
    }

    #[test]
    fn json_amounts_are_read_exactly_or_rejected() {
        let cases: Vec<(Value, Currency, Result<i64, &str>)> = vec![
            (json!(1_190_000.0), COP, Ok(119_000_000)),
            (json!(1_190_000), COP, Ok(119_000_000)),
            (json!("1190000.00"), COP, Ok(119_000_000)),
            (json!(-5.25), COP, Ok(-525)),
            (json!(1_000), CLP, Ok(1_000)),
            (json!(1_000.0), CLP, Ok(1_000)),
            (json!(0.1 + 0.2), COP, Ok(30)),
            (json!(1_189_999.999_999_999_8), COP, Ok(119_000_000)),
            (json!(0.1 + 0.2 - 0.3), COP, Ok(0)),
            (json!(-0.0), COP, Ok(0)),
            (
                json!(12.345),
                COP,
                Err("amount 12.345 has 3 decimals but COP allows 2"),
            ),
            (
                json!(1_000.5),
                CLP,
                Err("amount 1000.5 has 1 decimal but CLP allows none"),
            ),
            (
                json!(12.340_000_1),
                COP,
                Err("amount 12.3400001 has 7 decimals but COP allows 2"),
            ),
            (
                json!(1e17),
                COP,
                Err(
                    "100000000000000000 is too large to be exact as a JSON float; it must be sent as a decimal string",
                ),
            ),
            (
                json!(u64::MAX),
                COP,
                Err("out of range: the value does not fit in 64 bits at its precision"),
            ),
            (
                json!("1.234,56"),
                COP,
                Err("expected a number like 1234567.89, got 1.234,56"),
            ),
            (
                json!(null),
                COP,
                Err("expected a JSON number or a string holding one, got null"),
            ),
            (
                json!(false),
                COP,
                Err("expected a JSON number or a string holding one, got a boolean"),
            ),
            (
                json!([1]),
                COP,
                Err("expected a JSON number or a string holding one, got an array"),
            ),
        ];
        for (value, currency, expected) in cases {
            let expected = expected.map_err(str::to_owned);
            let got = outcome(Money::from_json(&value, currency));
            assert_eq!(got, expected, "{value} in {currency}");
        }
    }

    #[test]
    fn json_text_from_the_systems_reads_exactly() {
        let body = r#"{"DocTotal": 1190000.0, "VatSum": 190000.0, "TransferSum": 1190000,
                       "amount_residual": 0.30000000000000004, "price": "500000.50"}"#;
        let doc: Value = serde_json::from_str(body).expect("valid JSON");
        let read = |field: &str| Money::from_json(&doc[field], COP).expect(field).minor();
        assert_eq!(read("DocTotal"), 119_000_000);
        assert_eq!(read("VatSum"), 19_000_000);
        assert_eq!(read("TransferSum"), 119_000_000);
        assert_eq!(read("amount_residual"), 30);
        assert_eq!(read("price"), 50_000_050);
    }

    #[test]
    fn amounts_are_written_with_the_currency_digits() {
        assert_eq!(cop(123_456_789).to_decimal_string(), "1234567.89");
        assert_eq!(cop(-500).to_decimal_string(), "-5.00");
        assert_eq!(cop(-5).to_decimal_string(), "-0.05");
        assert_eq!(cop(0).to_decimal_string(), "0.00");
        assert_eq!(Money::from_minor(1_000, CLP).to_decimal_string(), "1000");
        assert_eq!(
            Money::from_minor(-5, Currency::JPY).to_decimal_string(),
            "-5"
        );
        assert_eq!(
            Money::from_minor(i64::MIN, COP).to_decimal_string(),
            "-92233720368547758.08"
        );
        assert_eq!(cop(123_456_789).to_string(), "COP 1234567.89");
        assert_eq!(Money::from_minor(-5, CLP).to_string(), "CLP -5");
    }

    #[test]
    fn money_serializes_as_a_decimal_string_and_its_currency() {
        let value = serde_json::to_value(cop(123_456_789)).expect("serializes");
        assert_eq!(value, json!({"amount": "1234567.89", "currency": "COP"}));
        let back: Money = serde_json::from_value(value).expect("deserializes");
        assert_eq!(back, cop(123_456_789));
        let too_precise = json!({"amount": "1.234", "currency": "COP"});
        assert!(serde_json::from_value::<Money>(too_precise).is_err());
    }

    #[test]
    fn arithmetic_checks_currency_and_range() {
        let usd = Money::from_minor(100, Currency::USD);
        assert_eq!(cop(100).checked_add(cop(250)), Ok(cop(350)));
        assert_eq!(cop(100).checked_sub(cop(250)), Ok(cop(-150)));
        assert_eq!(cop(100).checked_neg(), Ok(cop(-100)));
        let mismatch = cop(100).checked_add(usd).expect_err("mixed currencies");
        assert_eq!(
            mismatch,
            MoneyError::CurrencyMismatch {
                left: COP,
                right: Currency::USD
            }
        );
        assert_eq!(
            mismatch.to_string(),
            "cannot add COP to USD: convert amounts to one currency first"
        );
        assert!(cop(100).checked_sub(usd).is_err());
        assert_eq!(cop(i64::MAX).checked_add(cop(1)), Err(MoneyError::Overflow));
        assert_eq!(cop(i64::MIN).checked_sub(cop(1)), Err(MoneyError::Overflow));
        assert_eq!(cop(i64::MIN).checked_neg(), Err(MoneyError::Overflow));
        assert!(cop(-1).is_negative() && !cop(0).is_negative() && cop(0).is_zero());
    }

    #[test]
    fn sums_stay_in_one_currency() {
        assert_eq!(Money::sum(COP, []), Ok(Money::zero(COP)));
        assert_eq!(Money::sum(COP, [cop(1), cop(2), cop(-10)]), Ok(cop(-7)));
        assert!(Money::sum(COP, [cop(1), Money::from_minor(1, CLP)]).is_err());
        assert!(Money::sum(CLP, [cop(1)]).is_err());
        assert_eq!(
            Money::sum(COP, [cop(i64::MAX), cop(1)]),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn quantities_parse_with_up_to_six_decimals() {
        let cases: &[(&str, DecimalStyle, Result<i64, &str>)] = &[
            ("2", DecimalStyle::Plain, Ok(2_000_000)),
            ("2.5", DecimalStyle::Plain, Ok(2_500_000)),
            ("0.333333", DecimalStyle::Plain, Ok(333_333)),
            ("-1", DecimalStyle::Plain, Ok(-1_000_000)),
            ("1.000,5", DecimalStyle::CommaDecimal, Ok(1_000_500_000)),
            (
                "0.3333333",
                DecimalStyle::Plain,
                Err("quantity 0.3333333 has 7 decimals but at most 6 are allowed"),
            ),
            (
                "2,5",
                DecimalStyle::Plain,
                Err("expected a number like 1234567.89, got 2,5"),
            ),
        ];
        for (text, style, expected) in cases {
            let expected = expected.map_err(str::to_owned);
            let got = Quantity::parse(text, *style)
                .map(|q| q.micros())
                .map_err(|e| e.to_string());
            assert_eq!(got, expected, "{text:?}");
        }
        assert_eq!(
            Quantity::from_json(&json!(2.0)),
            Ok(Quantity::from_units(2))
        );
        assert_eq!(
            Quantity::from_json(&json!(1.0 / 3.0)).map_err(|e| e.to_string()),
            Err("quantity 0.3333333333333333 has 16 decimals but at most 6 are allowed".to_owned())
        );
        assert_eq!(Quantity::from_micros(2_500_000).to_string(), "2.5");
        assert_eq!(Quantity::from_units(-3).to_string(), "-3");
        assert_eq!(
            serde_json::to_value(Quantity::from_micros(333_333)).expect("serializes"),
            json!("0.333333")
        );
    }

    #[test]
    fn rates_parse_as_percentages() {
        assert_eq!(
            Rate::parse_percent("19", DecimalStyle::Plain),
            Ok(Rate::from_percent(19))
        );
        assert_eq!(
            Rate::parse_percent("0.414", DecimalStyle::Plain),
            Ok(Rate::from_millionths(4_140))
        );
        assert_eq!(
            Rate::parse_percent("2,5", DecimalStyle::CommaDecimal),
            Ok(Rate::from_basis_points(250))
        );
        assert_eq!(
            Rate::parse_percent("0.12345", DecimalStyle::Plain).map_err(|e| e.to_string()),
            Err("percentage 0.12345 has 5 decimals but at most 4 are allowed".to_owned())
        );
        assert_eq!(
            Rate::percent_from_json(&json!(10.0)),
            Ok(Rate::from_percent(10))
        );
        assert_eq!(Rate::from_percent(16).to_string(), "16%");
        assert_eq!(Rate::from_millionths(4_140).to_string(), "0.414%");
        let value = serde_json::to_value(Rate::from_percent(18)).expect("serializes");
        assert_eq!(value, json!("18%"));
        assert_eq!(
            serde_json::from_value::<Rate>(value).expect("deserializes"),
            Rate::from_percent(18)
        );
        assert!(serde_json::from_value::<Rate>(json!("18")).is_err());
    }

    #[test]
    fn invoice_lines_and_taxes_match_the_systems_examples() {
        // The Siigo/SAP example: 2 × 500 000 COP, IVA 19%, total 1 190 000.
        let base =
            line_total(cop(50_000_000), Quantity::from_units(2), Rate::ZERO).expect("in range");
        assert_eq!(base, cop(100_000_000));
        let iva = tax(base, Rate::from_percent(19)).expect("in range");
        assert_eq!(iva, cop(19_000_000));
        assert_eq!(base.checked_add(iva), Ok(cop(119_000_000)));

        let mxn = Money::from_minor(99_999, Currency::MXN);
        assert_eq!(
            tax(mxn, Rate::from_percent(16)).map(|m| m.minor()),
            Ok(16_000)
        );
        let pen = Money::from_minor(1_005, Currency::PEN);
        assert_eq!(tax(pen, Rate::from_percent(18)).map(|m| m.minor()), Ok(181));
    }

    #[test]
    fn lines_round_once_half_away_from_zero() {
        let third = Quantity::parse("0.333333", DecimalStyle::Plain).expect("quantity");
        let cases: &[(i64, i64, i64, i64)] = &[
            // unit price (minor), quantity (micros), discount (millionths), expected (minor)
            (100, 333_333, 0, 33),
            (100, 335_000, 0, 34),
            (-100, 335_000, 0, -34),
            (100, 325_000, 0, 33),
            (1_000, 1_000_000, 100_000, 900),
            (1_005, 1_000_000, 500_000, 503),
            (-1_005, 1_000_000, 500_000, -503),
            (999, 3_000_000, 333_333, 1_998),
            (100, -1_000_000, 0, -100),
            (12_345, 1_000_000, 1_000_000, 0),
        ];
        for &(price, micros, discount, expected) in cases {
            let got = line_total(
                cop(price),
                Quantity::from_micros(micros),
                Rate::from_millionths(discount),
            )
            .expect("in range");
            assert_eq!(got, cop(expected), "{price} × {micros} − {discount}");
        }
        assert_eq!(
            line_total(cop(300), third, Rate::ZERO).map(|m| m.minor()),
            Ok(100)
        );
        assert_eq!(
            tax(cop(250), Rate::from_percent(1)).map(|m| m.minor()),
            Ok(3)
        );
        assert_eq!(
            tax(cop(-250), Rate::from_percent(1)).map(|m| m.minor()),
            Ok(-3)
        );
        assert_eq!(
            line_total(cop(100), Quantity::ONE, Rate::from_percent(101)).map_err(|e| e.to_string()),
            Err("discount 101% is outside 0% to 100%".to_owned())
        );
        assert!(line_total(cop(100), Quantity::ONE, Rate::from_millionths(-1)).is_err());
        assert_eq!(
            line_total(cop(i64::MAX), Quantity::from_micros(i64::MAX), Rate::ZERO),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn allocation_spreads_the_leftover_by_largest_remainder() {
        let minors = |parts: Vec<Money>| parts.iter().map(Money::minor).collect::<Vec<_>>();
        let split = |total: Money, weights: &[u64]| allocate(total, weights).map(minors);
        assert_eq!(
            split(cop(10_000), &[1, 1, 1]),
            Ok(vec![3_334, 3_333, 3_333])
        );
        assert_eq!(
            split(cop(-10_000), &[1, 1, 1]),
            Ok(vec![-3_334, -3_333, -3_333])
        );
        assert_eq!(
            split(Money::from_minor(100, CLP), &[1, 1, 1]),
            Ok(vec![34, 33, 33])
        );
        assert_eq!(split(cop(5), &[1, 2, 2]), Ok(vec![1, 2, 2]));
        assert_eq!(split(cop(10), &[0, 3, 7]), Ok(vec![0, 3, 7]));
        assert_eq!(split(cop(1), &[0, 1, 1]), Ok(vec![0, 1, 0]));
        assert_eq!(split(cop(0), &[1, 2]), Ok(vec![0, 0]));
        assert_eq!(
            split(cop(i64::MIN), &[1, 1]),
            Ok(vec![i64::MIN / 2, i64::MIN / 2])
        );
        assert_eq!(split(cop(i64::MIN), &[0, 5]), Ok(vec![0, i64::MIN]));
        assert_eq!(
            split(cop(i64::MAX), &[u64::MAX, u64::MAX, 1]).map(|p| p.iter().sum::<i64>()),
            Ok(i64::MAX)
        );
        assert_eq!(split(cop(100), &[]), Err(MoneyError::NoWeights));
        assert_eq!(split(cop(100), &[0, 0]), Err(MoneyError::NoWeights));
    }

    /// Writes `minor` with thousands separators in `style`, the way a spreadsheet would.
    fn written(minor: i64, currency: Currency, style: DecimalStyle) -> String {
        let plain = Money::from_minor(minor, currency).to_decimal_string();
        let (sign, unsigned) = match plain.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", plain.as_str()),
        };
        let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let separator = style.thousands_separator().unwrap_or_default();
        let mut grouped = String::new();
        for (i, digit) in integer.chars().enumerate() {
            if i > 0 && (integer.len() - i) % 3 == 0 && style != DecimalStyle::Plain {
                grouped.push(separator);
            }
            grouped.push(digit);
        }
        if fraction.is_empty() {
            format!("{sign}{grouped}")
        } else {
            format!("{sign}{grouped}{}{fraction}", style.decimal_mark())
        }
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        prop::sample::select(Currency::all().to_vec())
    }

    fn any_style() -> impl Strategy<Value = DecimalStyle> {
        prop::sample::select(vec![
            DecimalStyle::CommaDecimal,
            DecimalStyle::DotDecimal,
            DecimalStyle::Plain,
        ])
    }

    proptest! {
        #[test]
        fn decimal_strings_parse_back_to_the_same_amount(
            minor in any::<i64>(),
            currency in any_currency(),
        ) {
            let money = Money::from_minor(minor, currency);
            let text = money.to_decimal_string();
            prop_assert_eq!(Money::parse(&text, currency, DecimalStyle::Plain), Ok(money));
            prop_assert_eq!(text.parse::<i128>().is_ok(), currency.minor_units() == 0);
        }

        #[test]
        fn grouped_amounts_parse_back_in_their_style(
            minor in any::<i64>(),
            currency in any_currency(),
            style in any_style(),
        ) {
            let text = written(minor, currency, style);
            prop_assert_eq!(
                Money::parse(&text, currency, style),
                Ok(Money::from_minor(minor, currency)),
                "{}", text
            );
        }

        #[test]
        fn json_floats_of_amounts_read_back_exactly(
            minor in -(1i64 << 50) + 1..(1i64 << 50),
            currency in any_currency(),
        ) {
            let float = minor as f64 / 10f64.powi(i32::try_from(currency.minor_units()).expect("small"));
            prop_assert_eq!(
                Money::from_json(&json!(float), currency),
                Ok(Money::from_minor(minor, currency))
            );
            // Through JSON text and serde_json's own float parser, as the connectors read it.
            let text = Money::from_minor(minor, currency).to_decimal_string();
            let value: Value = serde_json::from_str(&text).expect("a JSON number");
            prop_assert_eq!(
                Money::from_json(&value, currency),
                Ok(Money::from_minor(minor, currency)),
                "{}", text
            );
        }

        #[test]
        fn adding_then_subtracting_gives_back_the_amount(a in any::<i64>(), b in any::<i64>()) {
            match cop(a).checked_add(cop(b)) {
                Ok(sum) => {
                    prop_assert_eq!(i128::from(sum.minor()), i128::from(a) + i128::from(b));
                    prop_assert_eq!(sum.checked_sub(cop(b)), Ok(cop(a)));
                }
                Err(error) => {
                    prop_assert_eq!(error, MoneyError::Overflow);
                    prop_assert!(i64::try_from(i128::from(a) + i128::from(b)).is_err());
                }
            }
        }

        #[test]
        fn allocation_adds_up_and_stays_within_one_unit_of_each_share(
            total in any::<i64>(),
            weights in prop::collection::vec(0u32..1_000_000, 1..12)
                .prop_filter("a weight above zero", |w| w.iter().any(|&x| x > 0)),
        ) {
            let weights: Vec<u64> = weights.into_iter().map(u64::from).collect();
            let parts = allocate(cop(total), &weights).expect("weights above zero");
            prop_assert_eq!(parts.len(), weights.len());
            let sum: i128 = parts.iter().map(|p| i128::from(p.minor())).sum();
            prop_assert_eq!(sum, i128::from(total));
            let weight_sum: i128 = weights.iter().map(|&w| i128::from(w)).sum();
            for (part, &weight) in parts.iter().zip(&weights) {
                // |part − total·w/W| < 1, scaled by W.
                let error = i128::from(part.minor()) * weight_sum - i128::from(total) * i128::from(weight);
                prop_assert!(error.abs() < weight_sum, "{} for weight {}", part, weight);
            }
        }

        #[test]
        fn tax_is_the_exact_product_rounded_half_away_from_zero(
            base in -(10i64.pow(15))..10i64.pow(15),
            rate in -2_000_000i64..=2_000_000,
        ) {
            let got = i128::from(
                tax(cop(base), Rate::from_millionths(rate)).expect("in range").minor(),
            );
            // exact = base·rate / 10^6; compare in units of 10^-6 minor.
            let exact = i128::from(base) * i128::from(rate);
            let scale = 1_000_000i128;
            let distance = (got * scale - exact).abs();
            prop_assert!(2 * distance <= scale, "within half a unit");
            if 2 * distance == scale {
                prop_assert!((got * scale).abs() > exact.abs(), "ties go away from zero");
            }
            // An independent formulation: floor(x + 1/2) for x ≥ 0, mirrored for x < 0.
            let reference = if exact >= 0 {
                (2 * exact + scale).div_euclid(2 * scale)
            } else {
                -((-2 * exact + scale).div_euclid(2 * scale))
            };
            prop_assert_eq!(got, reference);
        }

        #[test]
        fn line_total_is_the_exact_product_rounded_half_away_from_zero(
            price in -(10i64.pow(12))..10i64.pow(12),
            micros in -(10i64.pow(12))..10i64.pow(12),
            discount in 0i64..=1_000_000,
        ) {
            let got = i128::from(
                line_total(cop(price), Quantity::from_micros(micros), Rate::from_millionths(discount))
                    .expect("in range")
                    .minor(),
            );
            let exact = i128::from(price) * i128::from(micros) * i128::from(1_000_000 - discount);
            let scale = 1_000_000_000_000i128;
            let distance = (got * scale - exact).abs();
            prop_assert!(2 * distance <= scale, "within half a unit");
            if 2 * distance == scale {
                prop_assert!((got * scale).abs() > exact.abs(), "ties go away from zero");
            }
        }

        #[test]
        fn quantities_round_trip_through_text(micros in any::<i64>()) {
            let quantity = Quantity::from_micros(micros);
            prop_assert_eq!(
                Quantity::parse(&quantity.to_decimal_string(), DecimalStyle::Plain),
                Ok(quantity)
            );
        }
    }
}
