//! Email addresses: trimmed, lower-cased, and checked for the shape `local@domain.tld`.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let email = raw.trim().to_lowercase();
        let (local, domain) = email.split_once('@').ok_or("must contain one @")?;
        if local.is_empty() || local.len() > 64 {
            return Err("local part must have 1 to 64 characters");
        }
        if domain.contains('@') {
            return Err("must contain one @");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err("domain must be a valid host name such as example.co");
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Email::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_trimmed() {
        assert_eq!(
            Email::parse("  Compras@Andina.CO ").map(|e| e.to_string()),
            Ok("compras@andina.co".to_owned())
        );
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in [
            "ana@@x.co",
            "ana",
            "@x.co",
            "ana@x",
            "ana@-x.co",
            "a na@x.co",
            "ana@x..co",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }
}
