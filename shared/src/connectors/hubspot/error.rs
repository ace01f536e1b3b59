//! HubSpot's error body (`{status, message, correlationId, category, ...}`) into
//! `ConnectorError`. Only the category and correlation id are kept: messages can quote values.

use super::SYSTEM;
use crate::connectors::http::status_error;
use crate::error::ConnectorError;
use reqwest::Response;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    category: Option<String>,
    correlation_id: Option<String>,
}

pub async fn from_response(response: Response) -> ConnectorError {
    let status = response.status();
    let headers = response.headers().clone();
    let body: Option<ErrorBody> = response.json().await.ok();
    let detail = match body {
        Some(ErrorBody {
            category,
            correlation_id,
        }) => format!(
            "{} (correlation id {})",
            category.as_deref().unwrap_or("error"),
            correlation_id.as_deref().unwrap_or("none")
        ),
        None => "error".to_owned(),
    };
    status_error(SYSTEM, status, &headers, detail)
}
