//! What every HTTP connector shares: one client per process and the classification of HTTP
//! statuses and transport failures into `ConnectorError`.

use crate::domain::System;
use crate::error::ConnectorError;
use crate::tls::TrustRoots;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::time::Duration;

/// An HTTP client for the life of the process (its connection pool and TLS sessions are reused
/// across invocations), trusting `roots` only.
pub fn client(timeout: Duration, roots: &TrustRoots) -> Result<reqwest::Client, reqwest::Error> {
    roots
        .apply(reqwest::Client::builder())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("puente/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the systems we talk to).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A non-success status, classified by what the caller should do.
pub fn status_error(
    system: System,
    status: StatusCode,
    headers: &HeaderMap,
    detail: String,
) -> ConnectorError {
    match status.as_u16() {
        429 => ConnectorError::Throttled {
            system,
            retry_after: retry_after(headers),
        },
        401 | 403 => ConnectorError::Unauthorized { system, detail },
        404 | 410 => ConnectorError::NotFound {
            system,
            what: detail,
        },
        408 | 500..=599 => ConnectorError::Unavailable {
            system,
            detail: format!("HTTP {}: {detail}", status.as_u16()),
            source: None,
        },
        _ => ConnectorError::Rejected {
            system,
            detail: format!("HTTP {}: {detail}", status.as_u16()),
        },
    }
}

/// A request that got no usable answer: timeouts, refused connections, bodies cut short.
pub fn transport_error(system: System, err: reqwest::Error) -> ConnectorError {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_decode() {
        "answer could not be read"
    } else {
        "request failed"
    };
    ConnectorError::Unavailable {
        system,
        detail: what.to_owned(),
        source: Some(Box::new(err)),
    }
}
