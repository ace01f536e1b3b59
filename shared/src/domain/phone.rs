//! Phone numbers, validated against each country's numbering plan (Google's libphonenumber
//! metadata, through the `phonenumber` crate) and kept in E.164 (`+576012345678`), the one form
//! every CRM, ERP and messaging API accepts and compares reliably.
//!
//! A number typed without a country code is read as a national number of the default country
//! (the record's, else the deployment's). Two numbering-plan changes that old records still
//! carry are rewritten when the number as typed is invalid and the rewritten one is valid:
//! Colombia's 2021 move to ten digits ("(1) 234 5678" in Bogotá is now "601 234 5678") and
//! Mexico's 2019 removal of the mobile "1" after +52 and of the 01/044/045 dialling prefixes.

use crate::domain::Country;
use phonenumber::country::Id;
use phonenumber::{Mode, ParseError, PhoneNumber};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A valid phone number in E.164: `+`, the country calling code and the national number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

/// Why a text is not a usable phone number. The messages complete "phone ..." and never
/// repeat the number, which is personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("is not a phone number")]
    NotANumber,
    #[error("needs a country code (such as +57) or a default country")]
    MissingCountry,
    #[error("needs a country code (such as +57): there is no numbering plan for {0}")]
    NoNumberingPlan(Country),
    #[error("starts with a country code that does not exist")]
    UnknownCountryCode,
    #[error("is too short to be a phone number")]
    TooShort,
    #[error("has too many digits for a phone number")]
    TooLong,
    /// The digits do not form a number the region's numbering plan allows. `region` is an ISO
    /// code (`CO`) or, for a calling code shared by several countries, the code (`+1`).
    #[error("is not a valid number for {region}")]
    InvalidForRegion { region: String },
    #[error("holds more than one number; keep one number per field")]
    SeveralNumbers,
    #[error("has an extension, which a phone number in E.164 cannot hold; remove it")]
    HasExtension,
}

impl Phone {
    /// Parses a number as people type it ("300 123 4567", "(601) 234-5678", "+56 9 6123 4567",
    /// "tel:+57-300-123-4567"). `default_country` is the region of numbers typed without a
    /// country code; numbers with one keep theirs.
    pub fn parse(raw: &str, default_country: Option<Country>) -> Result<Self, PhoneError> {
        if holds_several_numbers(raw) {
            return Err(PhoneError::SeveralNumbers);
        }
        let region = default_country.and_then(|c| c.code().parse::<Id>().ok());
        let number = phonenumber::parse(region, raw).map_err(|e| match e {
            ParseError::NoNumber | ParseError::MalformedInteger(_) => PhoneError::NotANumber,
            ParseError::InvalidCountryCode if !raw.contains('+') && region.is_none() => {
                match default_country {
                    Some(country) => PhoneError::NoNumberingPlan(country),
                    None => PhoneError::MissingCountry,
                }
            }
            ParseError::InvalidCountryCode => PhoneError::UnknownCountryCode,
            ParseError::TooShortAfterIdd | ParseError::TooShortNsn => PhoneError::TooShort,
            ParseError::TooLong => PhoneError::TooLong,
        })?;
        let valid = if number.is_valid() {
            number.clone()
        } else {
            modernised(&number).ok_or_else(|| PhoneError::InvalidForRegion {
                region: region_of(&number),
            })?
        };
        if number.extension().is_some() {
            return Err(PhoneError::HasExtension);
        }
        Ok(Self(valid.format().mode(Mode::E164).to_string()))
    }

    /// The number in E.164, e.g. `+576012345678`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Two or more runs of at least seven digits split by something other than the spaces, dots,
/// dashes and parentheses of one number ("300 123 4567 / 310 765 4321", "... y ...").
fn holds_several_numbers(raw: &str) -> bool {
    let is_number_part = |c: char| {
        c.is_ascii_digit() || c.is_whitespace() || matches!(c, '+' | '-' | '.' | '(' | ')')
    };
    raw.split(|c: char| !is_number_part(c))
        .filter(|part| part.chars().filter(char::is_ascii_digit).count() >= 7)
        .nth(1)
        .is_some()
}

/// The valid number an outdated national format stands for, if the plan change is known.
fn modernised(number: &PhoneNumber) -> Option<PhoneNumber> {
    let national = number.national().to_string();
    let modern = match number.country().id()? {
        // Colombia, 2021: a landline's one-digit area code N became 60N.
        Id::CO
            if national.len() == 8 && national.starts_with(['1', '2', '4', '5', '6', '7', '8']) =>
        {
            format!("60{national}")
        }
        // Mexico, 2019: no "1" before mobiles, no 044/045 (mobile) or 01 (long distance).
        Id::MX if national.len() == 11 && national.starts_with('1') => national[1..].to_owned(),
        Id::MX
            if national.len() == 13
                && (national.starts_with("044") || national.starts_with("045")) =>
        {
            national[3..].to_owned()
        }
        Id::MX if national.len() == 12 && national.starts_with("01") => national[2..].to_owned(),
        _ => return None,
    };
    let code = number.code().value();
    phonenumber::parse(None, format!("+{code}{modern}"))
        .ok()
        .filter(PhoneNumber::is_valid)
}

/// The region a number belongs to, for messages: its ISO code, or its calling code when the
/// digits match no region of a shared code such as +1.
fn region_of(number: &PhoneNumber) -> String {
    match number.country().id() {
        Some(id) => id.as_ref().to_owned(),
        None => format!("+{}", number.code().value()),
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Phone {
    type Error = PhoneError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Phone::parse(&s, None)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn country(code: &str) -> Option<Country> {
        Some(Country::parse(code).expect("a country code"))
    }

    #[test]
    fn latin_american_numbers_become_e164() {
        let cases = [
            // Colombia: mobile, Bogotá landline in every usual spelling.
            ("300 123 4567", "CO", "+573001234567"),
            ("601 234 5678", "CO", "+576012345678"),
            ("(601) 234-5678", "CO", "+576012345678"),
            ("+57 601 234 5678", "CO", "+576012345678"),
            ("+576012345678", "CO", "+576012345678"),
            ("57 601 234 5678", "CO", "+576012345678"),
            ("Tel: 300 123 4567", "CO", "+573001234567"),
            ("tel:+57-300-123-4567", "CO", "+573001234567"),
            // Colombia before 2021: Bogotá "1" and Medellín "4" area codes.
            ("(1) 234 5678", "CO", "+576012345678"),
            ("+57 4 444 5555", "CO", "+576044445555"),
            // Mexico City, today and with the prefixes dropped in 2019.
            ("55 1234 5678", "MX", "+525512345678"),
            ("+52 1 55 1234 5678", "MX", "+525512345678"),
            ("044 55 1234 5678", "MX", "+525512345678"),
            ("01 55 1234 5678", "MX", "+525512345678"),
            // Chile mobile and Santiago landline.
            ("+56 9 6123 4567", "CO", "+56961234567"),
            ("+56 2 2123 4567", "CL", "+56221234567"),
            // Peru mobile and Lima landline with its trunk prefix.
            ("987 654 321", "PE", "+51987654321"),
            ("(01) 234 5678", "PE", "+5112345678"),
            // Brazil: São Paulo mobile, landline, and with a long-distance carrier code.
            ("(11) 91234-5678", "BR", "+5511912345678"),
            ("(11) 3123-4567", "BR", "+551131234567"),
            ("0 21 11 91234-5678", "BR", "+5511912345678"),
            // Argentina: Buenos Aires mobile written nationally with 15.
            ("011 15 1234-5678", "AR", "+5491112345678"),
            // A foreign number keeps its own country whatever the default.
            ("+1 202 555 0123", "CO", "+12025550123"),
        ];
        for (typed, default, e164) in cases {
            assert_eq!(
                Phone::parse(typed, country(default)).map(|p| p.to_string()),
                Ok(e164.to_owned()),
                "{typed:?} in {default}"
            );
        }
    }

    #[test]
    fn international_numbers_need_no_default_country() {
        let phone = Phone::parse("+56 9 8765 4321", None).expect("valid");
        assert_eq!(phone.as_str(), "+56987654321");
    }

    #[test]
    fn unusable_numbers_are_rejected_with_the_reason() {
        let invalid_for = |region: &str| PhoneError::InvalidForRegion {
            region: region.to_owned(),
        };
        let cases = [
            ("call me", country("CO"), PhoneError::NotANumber),
            ("", country("CO"), PhoneError::NotANumber),
            ("300 123 4567", None, PhoneError::MissingCountry),
            (
                "300 123 4567",
                country("BV"),
                PhoneError::NoNumberingPlan(Country::parse("BV").expect("code")),
            ),
            (
                "+999 123 4567",
                country("CO"),
                PhoneError::UnknownCountryCode,
            ),
            (
                "+57 3001 2345 6789 0123 4567",
                country("CO"),
                PhoneError::TooLong,
            ),
            // A nine-digit Colombian number, a seven-digit one without its area code.
            ("601 234 567", country("CO"), invalid_for("CO")),
            ("234 5678", country("CO"), invalid_for("CO")),
            ("123", country("CO"), invalid_for("CO")),
            ("+57 123 456 7890", None, invalid_for("CO")),
            // Mexico numbers have ten digits.
            ("55 1234 567", country("MX"), invalid_for("MX")),
            // +56 9 1 is not an allocated Chilean mobile range.
            ("+56 9 1234 5678", None, invalid_for("CL")),
            // Brazilian landlines do not start with 1.
            ("(11) 1234-5678", country("BR"), invalid_for("BR")),
            ("+1 999 555 0123", None, invalid_for("+1")),
            (
                "300 123 4567 / 310 765 4321",
                country("CO"),
                PhoneError::SeveralNumbers,
            ),
            (
                "3001234567, 3107654321",
                country("CO"),
                PhoneError::SeveralNumbers,
            ),
            (
                "300 123 4567 y 310 765 4321",
                country("CO"),
                PhoneError::SeveralNumbers,
            ),
            (
                "601 234 5678 ext. 12",
                country("CO"),
                PhoneError::HasExtension,
            ),
        ];
        for (typed, default, error) in cases {
            assert_eq!(Phone::parse(typed, default), Err(error), "{typed:?}");
        }
    }

    #[test]
    fn messages_say_what_is_wrong_without_the_number() {
        let error = Phone::parse("601 234 567", country("CO")).expect_err("nine digits");
        assert_eq!(error.to_string(), "is not a valid number for CO");
        assert_eq!(
            PhoneError::MissingCountry.to_string(),
            "needs a country code (such as +57) or a default country"
        );
    }

    #[test]
    fn serde_round_trips_e164_and_rejects_the_rest() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StrDeserializer};
        let read = |text: &'static str| {
            let de: StrDeserializer<'_, Error> = text.into_deserializer();
            Phone::deserialize(de)
        };
        let phone = Phone::parse("300 123 4567", country("CO")).expect("valid");
        assert_eq!(String::from(phone.clone()), "+573001234567");
        assert_eq!(read("+573001234567").expect("E.164 reads back"), phone);
        assert!(read("300 123 4567").is_err(), "no country code");
        assert!(read("+57601234567").is_err(), "nine digits");
    }
}
