//! HubSpot's error body (`{status, message, correlationId, category, ...}`) into
//! `ConnectorError`. Only the category, the error codes (`PROPERTY_DOESNT_EXIST`) and the
//! correlation id are kept: messages can quote values.

use super::SYSTEM;
use super::wire::ErrorBody;
use crate::connectors::http::status_error;
use crate::error::ConnectorError;
use reqwest::Response;

pub async fn from_response(response: Response) -> ConnectorError {
    let status = response.status();
    let headers = response.headers().clone();
    let body: Option<ErrorBody> = response.json().await.ok();
    let detail = match body {
        Some(body) => {
            let codes: Vec<&str> = body
                .errors
                .iter()
                .filter_map(|e| e.code.as_deref())
                .collect();
            let codes = if codes.is_empty() {
                String::new()
            } else {
                format!(" [{}]", codes.join(", "))
            };
            format!(
                "{}{codes} (correlation id {})",
                body.category.as_deref().unwrap_or("error"),
                body.correlation_id.as_deref().unwrap_or("none")
            )
        }
        None => "error".to_owned(),
    };
    status_error(SYSTEM, status, &headers, detail)
}
