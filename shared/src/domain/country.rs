//! ISO 3166-1 alpha-2 countries, parsed from the codes and the names (Spanish, English,
//! Portuguese) that CRM users type into a free-text country field.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 3166-1 alpha-2 country code (upper case, always two ASCII letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country([u8; 2]);

/// The 249 officially assigned ISO 3166-1 alpha-2 codes, sorted (binary search).
const CODES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

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

    /// Accepts an assigned alpha-2 code (`co`, `CO`) or a known country name (`Colombia`,
    /// `Perú`).
    pub fn parse(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        if trimmed.len() == 2 && trimmed.bytes().all(|b| b.is_ascii_alphabetic()) {
            let code = trimmed.to_ascii_uppercase();
            // Only assigned codes: "ZZ" or "XX" are not countries.
            CODES.binary_search(&code.as_str()).ok()?;
            let b = code.as_bytes();
            return Some(Country([b[0], b[1]]));
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
        assert_eq!(Country::parse("ZZ"), None, "not an assigned code");
        assert_eq!(Country::parse(""), None);
    }
}
