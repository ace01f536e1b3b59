//! Odoo's JSON-RPC errors (returned inside HTTP 200) into `ConnectorError`, by exception class.

use super::SYSTEM;
use super::wire::RpcError;
use crate::error::ConnectorError;

pub fn from_rpc(error: RpcError) -> ConnectorError {
    let data = error.data.unwrap_or_else(|| super::wire::RpcErrorData {
        name: String::new(),
        message: error.message.clone(),
    });
    let detail = format!("{} ({})", first_line(&data.message), data.name);
    match data.name.as_str() {
        "odoo.exceptions.AccessDenied" => ConnectorError::Unauthorized {
            system: SYSTEM,
            detail,
        },
        "odoo.exceptions.MissingError" => ConnectorError::NotFound {
            system: SYSTEM,
            what: detail,
        },
        // Code 100 is Odoo's "session expired", whatever the class: the client logs in again.
        "odoo.http.SessionExpiredException" => ConnectorError::SessionExpired { system: SYSTEM },
        _ if error.code == 100 => ConnectorError::SessionExpired { system: SYSTEM },
        // A database conflict: the next attempt can succeed.
        name if name.starts_with("psycopg2.") => unavailable(detail),
        // Access, user, validation and any other server-side exception: the ERP refuses this.
        _ => ConnectorError::Rejected {
            system: SYSTEM,
            detail,
        },
    }
}

fn unavailable(detail: String) -> ConnectorError {
    ConnectorError::Unavailable {
        system: SYSTEM,
        detail,
        source: None,
    }
}

/// Odoo messages can be long tracebacks: the first line says what happened. Values Odoo quotes
/// in brackets (`The VAT number [900123456-1] for partner [...]`) and long digit runs are masked:
/// this text ends up in logs, the ledger and the DLQ, which must not hold personal data.
fn first_line(message: &str) -> String {
    let line: String = message
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    let mut out = String::with_capacity(line.len());
    let mut in_brackets = false;
    let mut digits = 0;
    for c in line.chars() {
        match c {
            '[' => {
                in_brackets = true;
                out.push_str("[…");
            }
            ']' => {
                in_brackets = false;
                out.push(']');
            }
            _ if in_brackets => {}
            c if c.is_ascii_digit() => {
                digits += 1;
                out.push(if digits >= 5 { '#' } else { c });
            }
            c => {
                digits = 0;
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::odoo::wire::RpcErrorData;

    fn rpc(code: i64, name: &str) -> RpcError {
        RpcError {
            code,
            message: "Odoo Server Error".into(),
            data: Some(RpcErrorData {
                name: name.into(),
                message: "The VAT number does not seem to be valid.\nTraceback".into(),
            }),
        }
    }

    #[test]
    fn exception_classes_decide_retry_or_reject() {
        assert!(matches!(
            from_rpc(rpc(200, "odoo.exceptions.ValidationError")),
            ConnectorError::Rejected { .. }
        ));
        assert!(matches!(
            from_rpc(rpc(200, "odoo.exceptions.AccessDenied")),
            ConnectorError::Unauthorized { .. }
        ));
        assert!(matches!(
            from_rpc(rpc(100, "odoo.http.SessionExpiredException")),
            ConnectorError::SessionExpired { .. }
        ));
        assert!(matches!(
            from_rpc(RpcError {
                code: 100,
                message: "Odoo Session Expired".into(),
                data: None,
            }),
            ConnectorError::SessionExpired { .. }
        ));
        assert!(matches!(
            from_rpc(rpc(200, "psycopg2.errors.SerializationFailure")),
            ConnectorError::Unavailable { .. }
        ));
    }

    #[test]
    fn quoted_values_are_masked() {
        let mut error = rpc(200, "odoo.exceptions.ValidationError");
        if let Some(data) = error.data.as_mut() {
            data.message =
                "The VAT number [900123456-1] for partner [Ana Pérez] is invalid; id 1234567"
                    .into();
        }
        assert_eq!(
            from_rpc(error).to_string(),
            "odoo rejected the request: The VAT number […] for partner […] is invalid; id 1234### \
             (odoo.exceptions.ValidationError)"
        );
    }

    #[test]
    fn the_detail_keeps_the_first_line_only() {
        let err = from_rpc(rpc(200, "odoo.exceptions.ValidationError"));
        assert_eq!(
            err.to_string(),
            "odoo rejected the request: The VAT number does not seem to be valid. (odoo.exceptions.ValidationError)"
        );
    }
}
