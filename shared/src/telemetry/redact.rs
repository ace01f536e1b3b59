//! Masks personal data and secrets in free text (error messages, rejection reasons, vendor
//! bodies) before it reaches the logs or a dead letter's attributes.
//!
//! One left-to-right scan over the bytes, with a short look-ahead at the start of each word, and
//! no allocation unless something is masked: this runs on every logged error in a 128 MB
//! Lambda. What it masks:
//!
//! - e-mail addresses keep the first character of the local part and the top-level domain:
//!   `ana.gomez@distribuidora.com.co` becomes `a***@***.co`;
//! - `Bearer <token>` (any case) becomes `Bearer [redacted]`; the word after `Bearer` is masked
//!   whatever it is, so `Bearer token missing` loses `token`;
//! - secrets: HubSpot private-app tokens (`pat-<region>-<uuid>`) and any run of 24 or more
//!   characters from `[A-Za-z0-9_+/-]` (plus trailing `=` padding) that mixes letters and digits
//!   become `[redacted]`; an `=` elsewhere separates, so `secret=<key>` keeps its name;
//! - tax ids, phone numbers and other numbers with 6 or more digits become `***` followed by
//!   their last two characters. A number may have a leading `+` or `(` and single or paired
//!   `.`, `-`, `/`, space or parenthesis separators between digit groups (`900.123.456-8`,
//!   `12.345.678/0001-95`, `+57 601 555 0100`, `(55) 5555-1234`), and a word that mixes letters
//!   with 6 or more digits is masked whole (the Mexican RFC `GODE561231GR8`, whose letters are
//!   the holder's initials).
//!
//! The rule errs towards masking: dates (`2025-03-14`), epoch timestamps, amounts of a million
//! or more, UUIDs and long URL paths with a digit (`/crm/v3/objects/...`) are masked as well.
//! That is acceptable because `redact` is only for free text: record ids, message ids, counts
//! and URLs that must stay readable are logged as separate structured fields, never through
//! `redact`, so an 8-digit HubSpot or Odoo id that happens to sit inside an error message is
//! masked along with everything else that looks like a tax id or a phone number.

use std::borrow::Cow;
use std::fmt;

/// Fewest digits that make a number look like a tax id or a phone number.
const MIN_ID_DIGITS: usize = 6;
/// Shortest letters-and-digits run treated as a key or token.
const MIN_SECRET_LEN: usize = 24;
/// Separators allowed between two digit groups of one number; at most two in a row, for the
/// `) ` of `(55) 5555-1234`.
const NUMBER_SEPARATORS: &[u8] = b".-/ ()";
const MAX_SEPARATORS: usize = 2;

/// Returns `text` with e-mail addresses, tokens, secrets, tax ids and phone numbers masked;
/// borrowed and unchanged when there was nothing to mask.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    // Bytes before `copied` are already in `out`, or unchanged if nothing was masked yet.
    let mut copied = 0;
    let mut i = 0;
    while i < text.len() {
        let Some((end, mask)) = mask_at(text, i, copied) else {
            i += 1;
            continue;
        };
        let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(&text[copied..i]);
        mask.write_to(out);
        copied = end;
        i = end;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
}

/// Displays (and debugs) the inner value's `Display` with [`redact`] applied, for tracing
/// fields: `tracing::warn!(error = %Redacted(&err), "...")`.
#[derive(Clone, Copy)]
pub struct Redacted<T>(pub T);

impl<T: fmt::Display> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        f.write_str(&redact(&text))
    }
}

/// The same as `Display`: a `Debug` of the inner value would print the fields the masking is
/// there to hide.
impl<T: fmt::Display> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What replaces a masked span.
enum Mask<'t> {
    Email { first: &'t str, tld: &'t str },
    Bearer { scheme: &'t str },
    Secret,
    Number { tail: &'t str },
}

impl Mask<'_> {
    fn write_to(&self, out: &mut String) {
        match self {
            Mask::Email { first, tld } => {
                out.push_str(first);
                out.push_str("***@***.");
                out.push_str(tld);
            }
            Mask::Bearer { scheme } => {
                out.push_str(scheme);
                out.push_str(" [redacted]");
            }
            Mask::Secret => out.push_str("[redacted]"),
            Mask::Number { tail } => {
                out.push_str("***");
                out.push_str(tail);
            }
        }
    }
}

/// The span starting at `i` that must be masked, if any, and where it ends. Each rule only
/// starts where its kind of word starts, so nothing is found in the middle of a word; the end
/// of the previous mask counts as a start, so an address glued to a masked number is still
/// found.
fn mask_at(text: &str, i: usize, copied: usize) -> Option<(usize, Mask<'_>)> {
    let bytes = text.as_bytes();
    let starts_word = |inside: fn(u8) -> bool| i == copied || !inside(bytes[i - 1]);
    // E-mail first: its local part may itself look like a number or a token.
    if starts_word(is_local_part)
        && let Some(found) = email_at(text, i)
    {
        return Some(found);
    }
    if starts_word(is_alphanumeric)
        && let Some(found) = bearer_at(text, i)
    {
        return Some(found);
    }
    if starts_word(is_token)
        && let Some(found) = secret_at(bytes, i)
    {
        return Some(found);
    }
    if starts_word(is_alphanumeric) {
        return number_at(text, i);
    }
    None
}

fn email_at(text: &str, i: usize) -> Option<(usize, Mask<'_>)> {
    let bytes = text.as_bytes();
    let at = i + run_len(bytes, i, is_local_part);
    if at == i || bytes.get(at) != Some(&b'@') {
        return None;
    }
    let domain_start = at + 1;
    let mut end = domain_start + run_len(bytes, domain_start, is_domain);
    // A sentence may end right after the address.
    while end > domain_start && matches!(bytes[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let (name, tld) = text[domain_start..end].rsplit_once('.')?;
    if name.is_empty() || tld.len() < 2 || !tld.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let first = text[i..].chars().next()?;
    let first = &text[i..i + first.len_utf8()];
    Some((end, Mask::Email { first, tld }))
}

fn bearer_at(text: &str, i: usize) -> Option<(usize, Mask<'_>)> {
    const SCHEME: &[u8] = b"bearer";
    let bytes = text.as_bytes();
    let scheme_end = i + SCHEME.len();
    if !bytes.get(i..scheme_end)?.eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let token = scheme_end + run_len(bytes, scheme_end, |b| b == b' ' || b == b'\t');
    let end = token + run_len(bytes, token, is_bearer_token);
    if token == scheme_end || end == token {
        return None;
    }
    let scheme = &text[i..scheme_end];
    Some((end, Mask::Bearer { scheme }))
}

fn secret_at(bytes: &[u8], i: usize) -> Option<(usize, Mask<'static>)> {
    let run_end = i + run_len(bytes, i, is_token);
    let run = &bytes[i..run_end];
    // `=` only pads the end of base64, so `secret=<key>` keeps its name.
    let end = run_end + run_len(bytes, run_end, |b| b == b'=');
    let has_digit = run.iter().any(u8::is_ascii_digit);
    let long_mixed =
        run.len() >= MIN_SECRET_LEN && has_digit && run.iter().any(u8::is_ascii_alphabetic);
    // A HubSpot private-app token: `pat-na1-<uuid>`.
    let private_app = run.len() >= 12 && has_digit && run[..4].eq_ignore_ascii_case(b"pat-");
    (long_mixed || private_app).then_some((end, Mask::Secret))
}

/// A word, then digit groups joined by separators, with 6 or more digits in all.
fn number_at(text: &str, i: usize) -> Option<(usize, Mask<'_>)> {
    let bytes = text.as_bytes();
    let mut word = i;
    if matches!(bytes[i], b'+' | b'(') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
        word += 1;
    }
    let mut end = word + run_len(bytes, word, is_alphanumeric);
    if end == word {
        return None;
    }
    let mut digits = bytes[word..end]
        .iter()
        .filter(|b| b.is_ascii_digit())
        .count();
    while bytes[end - 1].is_ascii_digit() {
        let separators =
            run_len(bytes, end, |b| NUMBER_SEPARATORS.contains(&b)).min(MAX_SEPARATORS);
        let group = end + separators;
        let group_digits = run_len(bytes, group, |b| b.is_ascii_digit());
        if separators == 0 || group_digits == 0 {
            break;
        }
        digits += group_digits;
        end = group + group_digits;
    }
    // The span is ASCII and has at least 6 digits, so the last two bytes are whole characters.
    (digits >= MIN_ID_DIGITS).then(|| {
        (
            end,
            Mask::Number {
                tail: &text[end - 2..end],
            },
        )
    })
}

fn run_len(bytes: &[u8], from: usize, inside: impl Fn(u8) -> bool) -> usize {
    bytes[from..].iter().take_while(|&&b| inside(b)).count()
}

fn is_alphanumeric(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Local-part characters; non-ASCII ones too, so `josé@...` is found from its first letter.
fn is_local_part(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-') || !b.is_ascii()
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// Characters of keys and tokens (base64, base64url, hex, UUIDs), less the `=` padding.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'/')
}

/// RFC 6750 `b64token`, which also covers JWTs.
fn is_bearer_token(b: u8) -> bool {
    is_token(b) || matches!(b, b'.' | b'~' | b'=')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn masked(text: &str) -> String {
        match redact(text) {
            Cow::Owned(out) => out,
            Cow::Borrowed(_) => panic!("nothing was masked in {text:?}"),
        }
    }

    fn digit_count(text: &str) -> usize {
        text.bytes().filter(u8::is_ascii_digit).count()
    }

    #[test]
    fn emails_keep_the_first_letter_and_the_top_level_domain() {
        let cases = [
            ("ana.gomez@distribuidora.com.co", "a***@***.co"),
            (
                "contact 'ana.gomez+crm@distribuidora.com.co' exists.",
                "contact 'a***@***.co' exists.",
            ),
            (
                "owner: <j.perez@acme.mx>, retry",
                "owner: <j***@***.mx>, retry",
            ),
            ("write to soporte@odoo.com.", "write to s***@***.com."),
            ("josé@correo.es", "j***@***.es"),
            ("900123456@facturas.co", "9***@***.co"),
        ];
        for (text, expected) in cases {
            assert_eq!(masked(text), expected, "{text}");
        }
    }

    #[test]
    fn tax_ids_keep_at_most_their_last_two_characters() {
        let cases = [
            ("NIT 900.123.456-8 rejected", "NIT ***-8 rejected"),
            ("nit=9001234568", "nit=***68"),
            ("CNPJ 12.345.678/0001-95 invalid", "CNPJ ***95 invalid"),
            (
                "RFC GODE561231GR8 already exists",
                "RFC ***R8 already exists",
            ),
            ("CUIT 20-12345678-9", "CUIT ***-9"),
            ("VATNUMBER:NIT900.123.456-8.", "VATNUMBER:***-8."),
        ];
        for (text, expected) in cases {
            assert_eq!(masked(text), expected, "{text}");
        }
    }

    #[test]
    fn phone_numbers_keep_at_most_their_last_two_digits() {
        let cases = [
            ("call +57 601 555 0100 today", "call ***00 today"),
            ("tel (55) 5555-1234.", "tel ***34."),
            ("phone=+5716015550100", "phone=***00"),
            ("móvil 300 123 4567", "móvil ***67"),
        ];
        for (text, expected) in cases {
            assert_eq!(masked(text), expected, "{text}");
        }
    }

    #[test]
    fn tokens_and_secrets_are_replaced_whole() {
        let cases = [
            (
                "Authorization: Bearer abc.def-ghi",
                "Authorization: Bearer [redacted]",
            ),
            (
                "authorization: bearer eyJhbGciOi.eyJzdWIi.sig~",
                "authorization: bearer [redacted]",
            ),
            (
                "token pat-na1-0c9e5e7d-3f4a-4b7e-9a6b-2f1d8c7e6a5b rejected",
                "token [redacted] rejected",
            ),
            ("key pat-eu1-1234abcd", "key [redacted]"),
            (
                "secret=dGhpcyBpcyBhIHNlY3JldCBrZXkgMTIz==",
                "secret=[redacted]",
            ),
            (
                "api key 3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c1e",
                "api key [redacted]",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(masked(text), expected, "{text}");
        }
    }

    #[test]
    fn ordinary_messages_come_back_borrowed_and_unchanged() {
        let texts = [
            "",
            "HTTP 429 after 3 retries; retry in 1500 ms",
            "Invalid session or session already timeout.",
            "odoo error code 301 on res.partner (id 12345)",
            "POST /b1s/v1/Login returned 401",
            "SBODEMOCO: B1SESSION expired",
            "stopped before the function deadline",
            "no flow for event contact.propertyChange; ignored",
            "Ana Gómez changed the billing address",
            "root@localhost refused",
            "@mention in a note",
        ];
        for text in texts {
            assert!(
                matches!(redact(text), Cow::Borrowed(out) if out == text),
                "{text:?} was changed to {:?}",
                redact(text)
            );
        }
    }

    #[test]
    fn long_ids_inside_free_text_are_masked_by_design() {
        // Ids that must stay readable are logged as their own fields, never through `redact`.
        assert_eq!(
            masked("contact 51234567 not found"),
            "contact ***67 not found"
        );
    }

    #[test]
    fn redacted_displays_and_debugs_the_masked_display() {
        #[derive(Debug)]
        struct Failure;
        impl fmt::Display for Failure {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("partner ana@empresa.com.co with NIT 900123456-8 exists")
            }
        }
        let expected = "partner a***@***.co with NIT ***-8 exists";
        assert_eq!(Redacted(&Failure).to_string(), expected);
        assert_eq!(format!("{:?}", Redacted(Failure)), expected);
    }

    fn email() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9._+-]{0,15}@[a-z0-9][a-z0-9-]{0,10}(\\.[a-z]{2,3})?\\.[a-z]{2,6}"
    }

    fn id_or_phone() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9]{3}\\.[0-9]{3}\\.[0-9]{3}-[0-9]",
            "[0-9]{9,10}(-[0-9])?",
            "[0-9]{2}\\.[0-9]{3}\\.[0-9]{3}/[0-9]{4}-[0-9]{2}",
            "[A-Z]{3,4}[0-9]{6}[A-Z0-9]{3}",
            "\\+57 [0-9]{3} [0-9]{3} [0-9]{4}",
            "\\([0-9]{2}\\) [0-9]{4}-[0-9]{4}",
            "\\+[1-9][0-9]{7,14}",
        ]
    }

    fn words() -> impl Strategy<Value = String> {
        prop::collection::vec("[a-zA-Z]{1,12}", 0..6).prop_map(|words| words.join(" "))
    }

    fn before() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![" ", ": ", "=", " (", " <", "\n", " '"])
    }

    fn after() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![" ", ", ", ". ", ")", ">", "\n", "'", ";"])
    }

    proptest! {
        #[test]
        fn embedded_emails_never_survive(
            head in words(), lead in before(), email in email(), trail in after(), tail in words()
        ) {
            let text = format!("{head}{lead}{email}{trail}{tail}");
            let out = redact(&text);
            let domain = &email[email.find('@').expect("generated with an @")..];
            prop_assert!(!out.contains(&email), "{out}");
            prop_assert!(!out.contains(domain), "{out}");
        }

        #[test]
        fn embedded_ids_and_phones_keep_at_most_two_digits(
            head in words(), lead in before(), id in id_or_phone(), trail in after(), tail in words()
        ) {
            let text = format!("{head}{lead}{id}{trail}{tail}");
            let out = redact(&text);
            prop_assert!(!out.contains(&id), "{out}");
            prop_assert!(digit_count(&out) <= 2, "{out}");
        }

        #[test]
        fn text_without_personal_data_is_borrowed_unchanged(
            parts in prop::collection::vec(
                ("[a-zA-Z]{1,12}", prop::option::of("[0-9]{1,5}"), prop::sample::select(vec![" ", ", ", ". ", ": ", "; "])),
                0..12,
            )
        ) {
            // Every short number follows a word, so no two of them join into a long one.
            let text: String = parts
                .iter()
                .filter(|(word, _, _)| !word.eq_ignore_ascii_case("bearer"))
                .map(|(word, number, sep)| match number {
                    Some(number) => format!("{word} {number}{sep}"),
                    None => format!("{word}{sep}"),
                })
                .collect();
            prop_assert!(matches!(redact(&text), Cow::Borrowed(out) if out == text));
        }
    }
}
