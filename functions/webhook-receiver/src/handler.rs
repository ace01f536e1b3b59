//! `POST /webhooks/hubspot`: signature first (on the raw bytes), then parse, split into thin
//! events, route by entity and enqueue. 2xx only once SQS accepted every message.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use shared::config::ReceiverConfig;
use shared::connectors::hubspot::signature::{
    self, SIGNATURE_HEADER, SignedRequest, SigningSecrets, TIMESTAMP_HEADER,
};
use shared::connectors::hubspot::wire::WebhookEvent;
use shared::domain::{ChangeEvent, Entity};
use shared::ports::{OutboundMessage, Publisher};
use std::time::{SystemTime, UNIX_EPOCH};

pub const HUBSPOT_PATH: &str = "/webhooks/hubspot";

#[derive(Debug)]
pub struct Receiver<P> {
    pub config: ReceiverConfig,
    pub secrets: SigningSecrets,
    pub publisher: P,
}

impl<P: Publisher> Receiver<P> {
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, std::convert::Infallible> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        Ok(self.receive(&request, now_ms).await)
    }

    pub async fn receive(&self, request: &Request, now_ms: i64) -> Response<Body> {
        let path = request.raw_http_path();
        if path.trim_end_matches('/') != HUBSPOT_PATH {
            return reply(StatusCode::NOT_FOUND, "not found");
        }
        if request.method() != Method::POST {
            return reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        }
        let body: &[u8] = request.body().as_ref();
        if body.len() > self.config.max_body_bytes {
            return reply(StatusCode::PAYLOAD_TOO_LARGE, "payload too large");
        }

        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        let uri = self.public_uri(request, &path);
        let signed = SignedRequest {
            method: request.method().as_str(),
            uri: &uri,
            body,
            timestamp: header(TIMESTAMP_HEADER),
            signature: header(SIGNATURE_HEADER),
        };
        if let Err(why) = signature::verify(&signed, &self.secrets, now_ms) {
            // The reason is for our logs only; the caller learns nothing about it.
            tracing::warn!(source = "hubspot", reason = %why, "webhook rejected: signature");
            return reply(StatusCode::UNAUTHORIZED, "unauthorized");
        }

        let events: Vec<WebhookEvent> = match serde_json::from_slice(body) {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(source = "hubspot", line = e.line(), column = e.column(), "webhook rejected: malformed body");
                return reply(StatusCode::BAD_REQUEST, "body must be a JSON array of HubSpot events");
            }
        };

        let mut customer = Vec::new();
        let mut ignored = 0usize;
        for event in events.into_iter().map(ChangeEvent::from) {
            match event.entity {
                Entity::Customer => customer.push(message(&event)),
                Entity::Contact | Entity::Deal | Entity::Product | Entity::Other => {
                    tracing::info!(source = "hubspot", subscription_type = %event.subscription_type, "no flow for event; ignored");
                    ignored += 1;
                }
            }
        }
        if !customer.is_empty()
            && let Err(e) = self.publisher.publish(&self.config.customer_queue_url, &customer).await
        {
            tracing::error!(source = "hubspot", error = %e, events = customer.len(), "enqueue failed; asking HubSpot to retry");
            return reply(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
        tracing::info!(source = "hubspot", enqueued = customer.len(), ignored, "webhook accepted");
        let body = serde_json::json!({"enqueued": customer.len(), "ignored": ignored});
        json_reply(StatusCode::OK, &body)
    }

    /// The URI HubSpot signed: our public base (configured, or the scheme and host API Gateway
    /// saw) with the raw path and query.
    fn public_uri(&self, request: &Request, path: &str) -> String {
        let base = match &self.config.public_base_url {
            Some(base) => base.clone(),
            None => {
                let uri = request.uri();
                format!(
                    "{}://{}",
                    uri.scheme_str().unwrap_or("https"),
                    uri.authority().map(|a| a.as_str()).unwrap_or_default()
                )
            }
        };
        match request.uri().query().filter(|q| !q.is_empty()) {
            Some(query) => format!("{base}{path}?{query}"),
            None => format!("{base}{path}"),
        }
    }
}

fn message(event: &ChangeEvent) -> OutboundMessage {
    OutboundMessage {
        body: serde_json::to_string(event).unwrap_or_default(),
        attributes: vec![
            ("puente-source".into(), event.source.clone()),
            ("puente-subscription-type".into(), event.subscription_type.clone()),
            ("puente-event-id".into(), event.event_id.clone()),
        ],
    }
}

fn reply(status: StatusCode, message: &str) -> Response<Body> {
    json_reply(status, &serde_json::json!({ "message": message }))
}

fn json_reply(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .unwrap_or_default()
}
