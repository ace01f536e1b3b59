//! HubSpot webhook signature v3, checked on the raw bytes before anything is parsed.
//!
//! `X-HubSpot-Signature-v3 = base64(HMAC-SHA256(secret, method + uri + body + timestamp))`, with
//! `X-HubSpot-Request-Timestamp` in epoch milliseconds. The timestamp must be at most 5 minutes
//! old and at most 1 minute ahead of our clock. Either of two secrets is accepted, so the app
//! secret can be rotated without dropping deliveries. v1 and v2 signatures are never accepted.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-hubspot-signature-v3";
pub const TIMESTAMP_HEADER: &str = "x-hubspot-request-timestamp";

const MAX_AGE_MS: i64 = 5 * 60 * 1000;
const MAX_AHEAD_MS: i64 = 60 * 1000;

/// Why a request was refused. Logged by kind only; the caller answers every kind the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature or timestamp header missing")]
    Missing,
    #[error("timestamp is not epoch milliseconds")]
    MalformedTimestamp,
    #[error("timestamp outside the accepted window")]
    Expired,
    #[error("signature is not base64 of 32 bytes")]
    MalformedSignature,
    #[error("signature does not match")]
    Mismatch,
}

/// The parts of a request that the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The full public URI HubSpot called: scheme, host, path and query.
    pub uri: &'a str,
    pub body: &'a [u8],
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// The webhook signing secrets: the current one and, during a rotation, the previous one.
#[derive(Clone)]
pub struct SigningSecrets {
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
}

impl std::fmt::Debug for SigningSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecrets(..)")
    }
}

impl SigningSecrets {
    pub fn new(current: impl Into<Vec<u8>>, previous: Option<Vec<u8>>) -> Self {
        Self {
            current: current.into(),
            previous: previous.filter(|p| !p.is_empty()),
        }
    }
}

/// Checks `request` against `secrets` at `now_ms`.
pub fn verify(
    request: &SignedRequest<'_>,
    secrets: &SigningSecrets,
    now_ms: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (request.timestamp, request.signature) else {
        return Err(SignatureError::Missing);
    };
    let sent_at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)?;
    if sent_at < now_ms - MAX_AGE_MS || sent_at > now_ms + MAX_AHEAD_MS {
        return Err(SignatureError::Expired);
    }
    let expected = STANDARD
        .decode(signature.trim())
        .ok()
        .filter(|bytes| bytes.len() == 32)
        .ok_or(SignatureError::MalformedSignature)?;
    let uri = decode_uri(request.uri);
    let matches = |secret: &[u8]| {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(request.method.as_bytes());
        mac.update(uri.as_bytes());
        mac.update(request.body);
        mac.update(timestamp.trim().as_bytes());
        // `verify_slice` compares in constant time.
        mac.verify_slice(&expected).is_ok()
    };
    let current = matches(&secrets.current);
    let previous = secrets.previous.as_deref().is_some_and(matches);
    if current || previous {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// HubSpot decodes these percent-escapes in the URI before signing (its "Validating requests"
/// page); every other escape stays as sent.
fn decode_uri(uri: &str) -> String {
    const DECODED: [(&str, char); 12] = [
        ("%3A", ':'),
        ("%2F", '/'),
        ("%3F", '?'),
        ("%40", '@'),
        ("%21", '!'),
        ("%24", '$'),
        ("%27", '\''),
        ("%28", '('),
        ("%29", ')'),
        ("%2A", '*'),
        ("%2C", ','),
        ("%3B", ';'),
    ];
    if !uri.contains('%') {
        return uri.to_owned();
    }
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        match DECODED
            .iter()
            .find(|(code, _)| code.eq_ignore_ascii_case(escape))
        {
            Some((_, c)) => out.push(*c),
            None => out.push_str(escape),
        }
        rest = &rest[at + escape.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The v3 vector from the connector reference (§4.7), computed with HubSpot's algorithm.
    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const URI: &str = "https://hooks.example.com/hubspot/webhooks?tenant=acme";
    const TIMESTAMP: &str = "1704067200000";
    const BODY: &str = r#"[{"eventId":100,"subscriptionId":2001,"portalId":62515,"appId":54321,"occurredAt":1704067199000,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":901,"propertyName":"email","propertyValue":"ana@example.co","changeSource":"CRM_UI"}]"#;
    const SIGNATURE: &str = "7ywv82IoJjNSfH6OxSjEj6R6rq04J0nSlpUzV3AegUU=";
    const NOW: i64 = 1_704_067_230_000;

    fn request<'a>(body: &'a str, signature: &'a str, timestamp: &'a str) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            uri: URI,
            body: body.as_bytes(),
            timestamp: Some(timestamp),
            signature: Some(signature),
        }
    }

    fn secrets() -> SigningSecrets {
        SigningSecrets::new(SECRET, None)
    }

    #[test]
    fn the_reference_vector_verifies() {
        assert_eq!(
            verify(&request(BODY, SIGNATURE, TIMESTAMP), &secrets(), NOW),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_byte_fails() {
        let tampered = BODY.replace("901", "902");
        assert_eq!(
            verify(&request(&tampered, SIGNATURE, TIMESTAMP), &secrets(), NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_previous_secret_is_accepted_during_rotation() {
        let rotating = SigningSecrets::new("new-secret", Some(SECRET.as_bytes().to_vec()));
        assert_eq!(
            verify(&request(BODY, SIGNATURE, TIMESTAMP), &rotating, NOW),
            Ok(())
        );
        let rotated = SigningSecrets::new("new-secret", None);
        assert_eq!(
            verify(&request(BODY, SIGNATURE, TIMESTAMP), &rotated, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_timestamp_window_is_five_minutes_back_and_one_ahead() {
        let sent: i64 = TIMESTAMP.parse().expect("number");
        let check = |now: i64| verify(&request(BODY, SIGNATURE, TIMESTAMP), &secrets(), now);
        assert_eq!(check(sent + MAX_AGE_MS), Ok(()));
        assert_eq!(check(sent + MAX_AGE_MS + 1), Err(SignatureError::Expired));
        assert_eq!(check(sent - MAX_AHEAD_MS), Ok(()));
        assert_eq!(check(sent - MAX_AHEAD_MS - 1), Err(SignatureError::Expired));
    }

    #[test]
    fn missing_and_malformed_headers_fail() {
        let mut r = request(BODY, SIGNATURE, TIMESTAMP);
        r.signature = None;
        assert_eq!(verify(&r, &secrets(), NOW), Err(SignatureError::Missing));
        assert_eq!(
            verify(&request(BODY, SIGNATURE, "yesterday"), &secrets(), NOW),
            Err(SignatureError::MalformedTimestamp)
        );
        assert_eq!(
            verify(&request(BODY, "not base64!", TIMESTAMP), &secrets(), NOW),
            Err(SignatureError::MalformedSignature)
        );
    }

    #[test]
    fn a_v2_style_hex_signature_is_not_accepted() {
        let hex = "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e";
        assert!(verify(&request(BODY, hex, TIMESTAMP), &secrets(), NOW).is_err());
    }

    #[test]
    fn listed_escapes_are_decoded_before_signing() {
        assert_eq!(
            decode_uri("https://h.co/hooks%3Fa%3Ab%2fc%20d%"),
            "https://h.co/hooks?a:b/c%20d%"
        );
    }
}
