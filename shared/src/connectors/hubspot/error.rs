//! HubSpot's error body (`{status, message, correlationId, category, ...}`) into
//! `ConnectorError`. Only the category and correlation id are kept: messages can quote values.

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
        Some(body) => format!(
            "{} (correlation id {})",
            body.category.as_deref().unwrap_or("error"),
            body.correlation_id.as_deref().unwrap_or("none")
        ),
        None => "error".to_owned(),
    };
    status_error(SYSTEM, status, &headers, detail)
}
