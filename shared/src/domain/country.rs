//! ISO 3166-1 alpha-2 countries, parsed from the codes and the names (Spanish, English,
//! Portuguese) that CRM users type into a free-text country field.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 3166-1 alpha-2 country code (upper case, always two ASCII letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country([u8; 2]);

/// Names accepted besides the code, compared after folding accents and case.
const NAMES: &[(&str, &str)] = &[
    ("CO", "colombia"),
    ("MX", "mexico"),
    ("MX", "estados unidos mexicanos"),
    ("CL", "chile"),
    ("PE", "peru"),
    ("BR", "brasil"),
    ("BR", "brazil"),
    ("AR", "argentina"),
    ("EC", "ecuador"),
    ("VE", "venezuela"),
    ("PA", "panama"),
    ("CR", "costa rica"),
    ("GT", "guatemala"),
    ("DO", "republica dominicana"),
    ("DO", "dominican republic"),
    ("UY", "uruguay"),
    ("PY", "paraguay"),
    ("BO", "bolivia"),
    ("US", "united states"),
    ("US", "united states of america"),
    ("US", "estados unidos"),
    ("US", "usa"),
    ("ES", "espana"),
    ("ES", "spain"),
    ("CA", "canada"),
];

impl Country {
    pub const CO: Country = Country(*b"CO");
    pub const MX: Country = Country(*b"MX");
    pub const BR: Country = Country(*b"BR");
    pub const CL: Country = Country(*b"CL");
    pub const PE: Country = Country(*b"PE");

    /// Accepts an alpha-2 code (`co`, `CO`) or a known country name (`Colombia`, `Perú`).
    pub fn parse(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        if trimmed.len() == 2 && trimmed.bytes().all(|b| b.is_ascii_alphabetic()) {
            let b = trimmed.as_bytes();
            return Some(Country([
                b[0].to_ascii_uppercase(),
                b[1].to_ascii_uppercase(),
            ]));
        }
        let folded = fold(trimmed);
        NAMES
            .iter()
            .find(|(_, name)| *name == folded)
            .and_then(|(code, _)| Country::parse(code))
    }

    pub fn code(&self) -> &str {
        // Built only from ASCII letters, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

/// Lower case with the Spanish and Portuguese accents removed, for name matching only.
fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            other => other,
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl TryFrom<String> for Country {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Country::parse(&s).ok_or_else(|| format!("unknown country {s:?}"))
    }
}

impl From<Country> for String {
    fn from(c: Country) -> String {
        c.code().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_parse() {
        for raw in ["CO", "co", "Colombia", " COLOMBIA ", "colombia"] {
            assert_eq!(Country::parse(raw), Some(Country::CO), "{raw:?}");
        }
        assert_eq!(
            Country::parse("Perú").map(|c| c.to_string()).as_deref(),
            Some("PE")
        );
        assert_eq!(Country::parse("México"), Some(Country::MX));
    }

    #[test]
    fn unknown_names_are_not_guessed() {
        assert_eq!(Country::parse("Colombiaa"), None);
        assert_eq!(Country::parse("C0"), None);
        assert_eq!(Country::parse(""), None);
    }
}
