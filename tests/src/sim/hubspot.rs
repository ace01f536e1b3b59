//! HubSpot simulator: CRM v3 object reads with bearer-token auth and HubSpot's error bodies,
//! and webhook deliveries signed the way HubSpot signs them (v1, v2 and v3 headers at once).

use super::faults::{Fault, Faults};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct HubSpotState {
    pub access_token: String,
    pub client_secret: String,
    pub portal_id: u64,
    pub app_id: u64,
    companies: Mutex<HashMap<String, BTreeMap<String, String>>>,
    pub faults: Faults,
}

/// A running HubSpot simulator.
#[derive(Debug, Clone)]
pub struct HubSpotSim {
    pub addr: SocketAddr,
    pub state: Arc<HubSpotState>,
}

impl HubSpotSim {
    pub async fn start(access_token: &str, client_secret: &str) -> std::io::Result<Self> {
        let state = Arc::new(HubSpotState {
            access_token: access_token.to_owned(),
            client_secret: client_secret.to_owned(),
            portal_id: 62515,
            app_id: 54321,
            companies: Mutex::new(HashMap::new()),
            faults: Faults::default(),
        });
        let app = Router::new()
            .route("/crm/v3/objects/{object_type}/{id}", get(read_object))
            .with_state(state.clone());
        let addr = super::serve(app).await?;
        Ok(Self { addr, state })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates or replaces a company's properties.
    pub fn put_company(&self, id: &str, properties: &[(&str, &str)]) {
        let props = properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Ok(mut companies) = self.state.companies.lock() {
            companies.insert(id.to_owned(), props);
        }
    }

    /// A webhook event for a company, as HubSpot builds it.
    pub fn company_event(
        &self,
        event_id: u64,
        subscription_type: &str,
        company_id: u64,
        occurred_at: i64,
    ) -> Value {
        json!({
            "eventId": event_id,
            "subscriptionId": 2001,
            "portalId": self.state.portal_id,
            "appId": self.state.app_id,
            "occurredAt": occurred_at,
            "subscriptionType": subscription_type,
            "attemptNumber": 0,
            "objectId": company_id,
            "changeSource": "CRM_UI",
            "changeFlag": "NEW",
            "sourceId": "userId:45678"
        })
    }

    /// Posts `events` to `url` the way HubSpot does: one JSON array, signed with v1, v2 and v3
    /// headers and the current timestamp. Returns the status and body of the answer.
    pub async fn deliver(
        &self,
        http: &reqwest::Client,
        url: &str,
        events: &[Value],
    ) -> reqwest::Result<(u16, String)> {
        let body = serde_json::to_string(events).unwrap_or_default();
        let timestamp = super::now_ms().to_string();
        let headers = signature_headers(&self.state.client_secret, "POST", url, &body, &timestamp);
        post(http, url, &body, &headers).await
    }
}

/// Sends `body` to `url` with `headers`, as a webhook sender would.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    body: &str,
    headers: &[(String, String)],
) -> reqwest::Result<(u16, String)> {
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            "HubSpot Connect 2.0 (http://dev.hubspot.com/)",
        )
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// The headers HubSpot puts on a webhook request. This is the simulator's own implementation
/// of HubSpot's documented algorithms, independent of the receiver's verifier.
pub fn signature_headers(
    secret: &str,
    method: &str,
    uri: &str,
    body: &str,
    timestamp: &str,
) -> Vec<(String, String)> {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let v1 = hex(&Sha256::digest(format!("{secret}{body}")));
    let v3 = sign_v3(secret, method, uri, body, timestamp);
    vec![
        ("X-HubSpot-Signature".into(), v1),
        ("X-HubSpot-Signature-Version".into(), "v1".into()),
        ("X-HubSpot-Signature-v3".into(), v3),
        ("X-HubSpot-Request-Timestamp".into(), timestamp.into()),
    ]
}

/// `base64(HMAC-SHA256(secret, method + uri + body + timestamp))`.
pub fn sign_v3(secret: &str, method: &str, uri: &str, body: &str, timestamp: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{method}{uri}{body}{timestamp}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn error(status: StatusCode, category: &str, message: &str) -> Response {
    let body = json!({
        "status": "error",
        "message": message,
        "correlationId": uuid::Uuid::new_v4().to_string(),
        "category": category,
    });
    (status, axum::Json(body)).into_response()
}

async fn read_object(
    State(state): State<Arc<HubSpotState>>,
    Path((object_type, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let operation = format!("GET /crm/v3/objects/{object_type}");
    let fault = state.faults.take(&operation);
    let expected = format!("Bearer {}", state.access_token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found.",
        );
    }
    match fault {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, "INTERNAL_ERROR", "internal error");
        }
        Some(Fault::Throttle { retry_after_s }) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITS",
                "You have reached your ten_secondly_rolling limit.",
            );
            if let Ok(v) = retry_after_s.to_string().parse() {
                response.headers_mut().insert("retry-after", v);
            }
            return response;
        }
        Some(Fault::DelayBefore(d) | Fault::DelayAfter(d)) => tokio::time::sleep(d).await,
        Some(Fault::AppError { .. }) | None => {}
    }
    if object_type != "companies" {
        return error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "Unknown object type",
        );
    }
    let company = state
        .companies
        .lock()
        .ok()
        .and_then(|c| c.get(&id).cloned());
    let Some(company) = company else {
        return error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "Object not found",
        );
    };
    // HubSpot returns the requested properties, null where the record has no value.
    let mut properties = Map::new();
    let requested = query
        .get("properties")
        .map(String::as_str)
        .unwrap_or("name,domain");
    for name in requested.split(',').filter(|n| !n.is_empty()) {
        let value = company.get(name).map_or(Value::Null, |v| json!(v));
        properties.insert(name.to_owned(), value);
    }
    properties.insert("hs_object_id".into(), json!(id));
    let body = json!({
        "id": id,
        "properties": properties,
        "createdAt": "2025-02-01T12:00:00.000Z",
        "updatedAt": "2025-03-14T16:02:11.356Z",
        "archived": false,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_signature_matches_the_reference_vector() {
        let body = r#"[{"eventId":100,"subscriptionId":2001,"portalId":62515,"appId":54321,"occurredAt":1704067199000,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":901,"propertyName":"email","propertyValue":"ana@example.co","changeSource":"CRM_UI"}]"#;
        let signature = sign_v3(
            "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
            "POST",
            "https://hooks.example.com/hubspot/webhooks?tenant=acme",
            body,
            "1704067200000",
        );
        assert_eq!(signature, "7ywv82IoJjNSfH6OxSjEj6R6rq04J0nSlpUzV3AegUU=");
    }

    #[test]
    fn v1_signature_matches_hubspots_documented_example() {
        let body = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;
        let headers = signature_headers(
            "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
            "POST",
            "u",
            body,
            "0",
        );
        assert_eq!(
            headers[0].1,
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
        );
    }
}
