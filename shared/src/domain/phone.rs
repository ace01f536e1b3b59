//! Phone numbers. Numbers typed with a `+` are kept in E.164; a 10-digit Colombian national
//! number gets the +57 prefix. Anything else is kept as national digits. Full per-country
//! numbering plans are not modelled yet.

use crate::domain::Country;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str, country: Option<Country>) -> Result<Self, &'static str> {
        let trimmed = raw.trim();
        let international = trimmed.starts_with('+');
        let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
        if !body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
        {
            return Err(
                "may contain only digits, spaces, dashes, dots, parentheses and a leading +",
            );
        }
        let digits: String = body.chars().filter(char::is_ascii_digit).collect();
        if !(7..=15).contains(&digits.len()) {
            return Err("must have between 7 and 15 digits");
        }
        let normalised = if international {
            format!("+{digits}")
        } else if country == Some(Country::CO) && digits.len() == 10 {
            format!("+57{digits}")
        } else {
            digits
        };
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colombian_numbers_become_e164() {
        for typed in [
            "+57 601 234 5678",
            "601 234 5678",
            "(601) 234-5678",
            "+576012345678",
        ] {
            assert_eq!(
                Phone::parse(typed, Some(Country::CO)).map(|p| p.to_string()),
                Ok("+576012345678".to_owned()),
                "{typed:?}"
            );
        }
    }

    #[test]
    fn letters_and_short_numbers_are_rejected() {
        assert!(Phone::parse("call me", None).is_err());
        assert!(Phone::parse("12345", None).is_err());
    }
}
