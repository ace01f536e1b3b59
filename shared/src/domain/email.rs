//! Email addresses: trimmed, lower-cased and checked for the shape `local@domain.tld`, strictly
//! enough to catch what people mistype into CRMs (spaces, commas, doubled or trailing dots, a
//! missing ".com") and loosely enough to keep every deliverable address, internationalised
//! domains included ("ventas@café.co", kept in Unicode, NFC).
//!
//! Not accepted: quoted local parts (`"ana perez"@x.co`), IP-literal domains and non-ASCII
//! local parts. All are legal, but in customer records they are typos far more often than
//! real mailboxes, and most mail servers refuse the last.

use serde::{Deserialize, Serialize};
use std::fmt;
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

/// Why a text is not an email address. The messages complete "email ..." and never repeat
/// the address, which is personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("is empty")]
    Empty,
    #[error("must not contain spaces")]
    Whitespace,
    #[error("is longer than 254 characters")]
    TooLong,
    #[error("must contain exactly one @")]
    At,
    #[error("must have 1 to 64 characters before the @")]
    LocalLength,
    #[error("must not start or end with a dot before the @, nor have two dots in a row")]
    LocalDots,
    #[error("may contain before the @ only unaccented letters, digits and symbols such as . _ - +")]
    LocalCharacters,
    #[error("domain must not start or end with a dot, nor have two dots in a row")]
    DomainDots,
    #[error("domain may contain only letters, digits, hyphens and dots")]
    DomainCharacters,
    #[error("domain parts must have at most 63 characters and not start or end with a hyphen")]
    DomainLabel,
    #[error("domain needs a top-level domain such as .co or .com")]
    MissingTld,
    #[error("top-level domain must be letters, such as .co or .com")]
    InvalidTld,
}

/// RFC 5322 `atext` besides ASCII letters and digits; the dot is checked apart.
const LOCAL_SYMBOLS: &str = "!#$%&'*+/=?^_`{|}~-";

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email: String = raw.trim().to_lowercase().nfc().collect();
        if email.is_empty() {
            return Err(EmailError::Empty);
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::Whitespace);
        }
        if email.chars().count() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = match email.split_once('@') {
            Some((local, domain)) if !domain.contains('@') => (local, domain),
            _ => return Err(EmailError::At),
        };
        check_local(local)?;
        check_domain(domain)?;
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_local(local: &str) -> Result<(), EmailError> {
    if local.is_empty() || local.len() > 64 {
        return Err(EmailError::LocalLength);
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(EmailError::LocalDots);
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '.' || LOCAL_SYMBOLS.contains(c);
    if !local.chars().all(allowed) {
        return Err(EmailError::LocalCharacters);
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), EmailError> {
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.iter().any(|label| label.is_empty()) {
        return Err(EmailError::DomainDots);
    }
    if !domain
        .chars()
        .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
    {
        return Err(EmailError::DomainCharacters);
    }
    let label_ok = |label: &&str| {
        label.chars().count() <= 63 && !label.starts_with('-') && !label.ends_with('-')
    };
    if !labels.iter().all(label_ok) {
        return Err(EmailError::DomainLabel);
    }
    match labels.as_slice() {
        [_] => Err(EmailError::MissingTld),
        [.., tld] if is_tld(tld) => Ok(()),
        _ => Err(EmailError::InvalidTld),
    }
}

/// Two or more letters (any script, for internationalised TLDs), or an IDNA A-label (`xn--p1ai`).
fn is_tld(label: &str) -> bool {
    label.starts_with("xn--")
        || (label.chars().count() >= 2 && label.chars().all(char::is_alphabetic))
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
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
    fn addresses_are_trimmed_lower_cased_and_kept() {
        let cases = [
            ("  Compras@Andina.CO ", "compras@andina.co"),
            ("ana.perez@empresa.com.co", "ana.perez@empresa.com.co"),
            ("facturacion+siigo@andina.co", "facturacion+siigo@andina.co"),
            ("o'neil@example.com", "o'neil@example.com"),
            ("ventas_2024@mi-empresa.mx", "ventas_2024@mi-empresa.mx"),
            // Internationalised domains stay in Unicode, lower-cased and composed.
            ("Ventas@CAFÉ.co", "ventas@café.co"),
            ("ventas@cafe\u{301}.co", "ventas@café.co"),
            ("ventas@xn--caf-dma.co", "ventas@xn--caf-dma.co"),
            ("info@пример.рф", "info@пример.рф"),
            ("info@example.xn--p1ai", "info@example.xn--p1ai"),
        ];
        for (typed, kept) in cases {
            assert_eq!(
                Email::parse(typed).map(|e| e.to_string()),
                Ok(kept.to_owned()),
                "{typed:?}"
            );
        }
    }

    #[test]
    fn malformed_addresses_are_rejected_with_the_reason() {
        let long_local = format!("{}@x.co", "a".repeat(65));
        let long_label = format!("ana@{}.co", "a".repeat(64));
        let long_address = format!("ana@{}.co", ["abc"; 70].join("."));
        let cases = [
            ("", EmailError::Empty),
            ("ana", EmailError::At),
            ("ana@@x.co", EmailError::At),
            ("ana@x.co@y.co", EmailError::At),
            ("a na@x.co", EmailError::Whitespace),
            ("ana@x .co", EmailError::Whitespace),
            ("ana@x.co\u{a0}ana@y.co", EmailError::Whitespace),
            ("@x.co", EmailError::LocalLength),
            (long_local.as_str(), EmailError::LocalLength),
            (".ana@x.co", EmailError::LocalDots),
            ("ana.@x.co", EmailError::LocalDots),
            ("ana..perez@x.co", EmailError::LocalDots),
            ("ana,perez@x.co", EmailError::LocalCharacters),
            ("<ana@x.co>", EmailError::LocalCharacters),
            ("mailto:ana@x.co", EmailError::LocalCharacters),
            ("\"ana perez\"@x.co", EmailError::Whitespace),
            ("josé@x.co", EmailError::LocalCharacters),
            ("ana@x.co.", EmailError::DomainDots),
            ("ana@.x.co", EmailError::DomainDots),
            ("ana@x..co", EmailError::DomainDots),
            ("ana@", EmailError::DomainDots),
            ("ana@gmail,com", EmailError::DomainCharacters),
            ("ana@x_y.co", EmailError::DomainCharacters),
            ("ana@-x.co", EmailError::DomainLabel),
            ("ana@x-.co", EmailError::DomainLabel),
            (long_label.as_str(), EmailError::DomainLabel),
            ("ana@gmail", EmailError::MissingTld),
            ("ana@x.c", EmailError::InvalidTld),
            ("ana@gmail.c0m", EmailError::InvalidTld),
            ("ana@192.168.0.1", EmailError::InvalidTld),
            (long_address.as_str(), EmailError::TooLong),
        ];
        for (typed, error) in cases {
            assert_eq!(Email::parse(typed), Err(error), "{typed:?}");
        }
    }

    #[test]
    fn messages_do_not_repeat_the_address() {
        let error = Email::parse("ana..perez@x.co").expect_err("two dots");
        assert!(!error.to_string().contains("ana"), "{error}");
        assert_eq!(
            EmailError::LocalCharacters.to_string(),
            "may contain before the @ only unaccented letters, digits and symbols such as . _ - +"
        );
    }
}
