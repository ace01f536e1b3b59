//! `POST /webhooks/hubspot`: signature first (on the raw bytes), then parse, split into thin
//! events, route by entity, drop the events already enqueued by an earlier delivery, and enqueue
//! the rest. 2xx only once SQS accepted every message.
//!
//! `POST /webhooks/odoo`: Odoo's automation-rule notification of an invoice or partner change,
//! checked against the shared token (constant time) before anything else, then enqueued the same
//! way on the payments or the customer queue.
//!
//! HubSpot changes that our own app made through the API (`changeSource` INTEGRATION or API and
//! `sourceId` our app id, `HUBSPOT_APP_ID`) are our writes coming back: acknowledged, counted as
//! `echo_suppressed`, never enqueued.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use shared::config::ReceiverConfig;
use shared::connectors::hubspot::signature::{
    self, SIGNATURE_HEADER, SignedRequest, SigningSecrets, TIMESTAMP_HEADER,
};
use shared::connectors::hubspot::wire::{WebhookEvent, entity_of};
use shared::connectors::odoo::webhook::{
    Notice, TOKEN_HEADER, WebhookToken, notice, token_from_query,
};
use shared::domain::{ChangeEvent, Entity};
use shared::flows::poll::change_message;
use shared::ports::{DeliveryLog, OutboundMessage, Publisher};
use shared::telemetry::{Metric, Metrics, Redacted};
use std::time::{SystemTime, UNIX_EPOCH};

pub const HUBSPOT_PATH: &str = "/webhooks/hubspot";
pub const ODOO_PATH: &str = "/webhooks/odoo";

#[derive(Debug)]
pub struct Receiver<P, D> {
    pub config: ReceiverConfig,
    pub secrets: SigningSecrets,
    /// The Odoo webhook's token; without one the Odoo route does not exist.
    pub odoo_token: Option<WebhookToken>,
    pub publisher: P,
    pub deliveries: D,
    /// The customer flow's counters (echoes dropped here).
    pub metrics: Metrics,
}

impl<P: Publisher, D: DeliveryLog> Receiver<P, D> {
    pub async fn handle(
        &self,
        request: Request,
    ) -> Result<Response<Body>, std::convert::Infallible> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        Ok(self.receive(&request, now_ms).await)
    }

    pub async fn receive(&self, request: &Request, now_ms: i64) -> Response<Body> {
        let path = match request.raw_http_path() {
            "" => request.uri().path(),
            raw => raw,
        };
        let odoo = match path.trim_end_matches('/') {
            HUBSPOT_PATH => false,
            ODOO_PATH if self.odoo_token.is_some() => true,
            _ => return reply(StatusCode::NOT_FOUND, "not found"),
        };
        if request.method() != Method::POST {
            return reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        }
        let body: &[u8] = request.body().as_ref();
        if body.len() > self.config.max_body_bytes {
            return reply(StatusCode::PAYLOAD_TOO_LARGE, "payload too large");
        }
        if odoo {
            return self.receive_odoo(request, body, now_ms).await;
        }

        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        let uri = self.public_uri(request, path);
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
                tracing::warn!(
                    source = "hubspot",
                    line = e.line(),
                    column = e.column(),
                    "webhook rejected: malformed body"
                );
                return reply(
                    StatusCode::BAD_REQUEST,
                    "body must be a JSON array of HubSpot events",
                );
            }
        };

        let mut routed: Vec<(&str, Vec<ChangeEvent>)> = Vec::new();
        let mut ignored = 0usize;
        let mut echoes = 0u64;
        for event in events {
            if self.is_our_write(&event) {
                echoes += 1;
                continue;
            }
            match self.route(&event) {
                Some(queue) => {
                    let event = ChangeEvent::from(event);
                    match routed.iter_mut().find(|(url, _)| *url == queue) {
                        Some((_, events)) => events.push(event),
                        None => routed.push((queue, vec![event])),
                    }
                }
                None => {
                    tracing::info!(source = "hubspot", subscription_type = %event.subscription_type, property = event.property_name.as_deref().unwrap_or_default(), "no flow for event; ignored");
                    ignored += 1;
                }
            }
        }
        if echoes > 0 {
            // Our own writes to HubSpot coming back: never enqueued, counted for the dashboards.
            tracing::info!(
                source = "hubspot",
                echoes,
                "echoes of our own writes dropped"
            );
            self.metrics.add(Metric::EchoSuppressed, echoes);
            self.metrics.flush();
        }
        self.enqueue("hubspot", routed, ignored).await
    }

    /// Whether HubSpot reports the change as made by our app through its API: the first layer
    /// of echo suppression (the worker's hash check and compare-before-write are the others).
    fn is_our_write(&self, event: &WebhookEvent) -> bool {
        let Some(app_id) = self.config.hubspot_app_id.as_deref() else {
            return false;
        };
        matches!(event.change_source.as_deref(), Some("INTEGRATION" | "API"))
            && event.source_id.as_deref() == Some(app_id)
    }

    /// Odoo's notification: the token first (a wrong one enqueues nothing and says nothing
    /// more), then one invoice change on the payments queue; another model is acknowledged.
    async fn receive_odoo(&self, request: &Request, body: &[u8], now_ms: i64) -> Response<Body> {
        let presented = request
            .headers()
            .get(TOKEN_HEADER)
            .map(|v| v.as_bytes())
            .or_else(|| {
                request
                    .uri()
                    .query()
                    .and_then(token_from_query)
                    .map(str::as_bytes)
            })
            .unwrap_or_default();
        if !self
            .odoo_token
            .as_ref()
            .is_some_and(|t| t.matches(presented))
        {
            tracing::warn!(source = "odoo", "webhook rejected: token");
            return reply(StatusCode::UNAUTHORIZED, "unauthorized");
        }
        match notice(body, &self.config.odoo_database, now_ms) {
            Ok(Notice::Invoice(event)) => {
                let routed = vec![(self.config.payments_queue_url.as_str(), vec![event])];
                self.enqueue("odoo", routed, 0).await
            }
            Ok(Notice::Customer(event)) => {
                let routed = vec![(self.config.customer_queue_url.as_str(), vec![event])];
                self.enqueue("odoo", routed, 0).await
            }
            Ok(Notice::OtherModel(model)) => {
                tracing::info!(source = "odoo", model = %model, "no flow for model; ignored");
                self.enqueue("odoo", Vec::new(), 1).await
            }
            Err(reason) => {
                tracing::warn!(source = "odoo", reason = %reason, "webhook rejected: malformed body");
                reply(
                    StatusCode::BAD_REQUEST,
                    "body must be an Odoo webhook notification",
                )
            }
        }
    }

    /// Drops replays, enqueues each queue's events, remembers them, and answers with the counts;
    /// 503 when a queue refused, so the sender retries.
    async fn enqueue(
        &self,
        source: &'static str,
        mut routed: Vec<(&str, Vec<ChangeEvent>)>,
        ignored: usize,
    ) -> Response<Body> {
        let mut replays = 0;
        let mut enqueued = 0;
        for (queue, events) in &mut routed {
            let mut ids: Vec<String> = events.iter().map(delivery_id).collect();
            replays += self.drop_replays(events, &mut ids).await;
            if events.is_empty() {
                continue;
            }
            let messages: Vec<OutboundMessage> = events.iter().map(message).collect();
            if let Err(e) = self.publisher.publish(queue, &messages).await {
                // The queues already sent to keep their messages: the sender's retry re-sends
                // them too, and the workers' ledger applies each change once.
                tracing::error!(source, error = %Redacted(&e), events = events.len(), "enqueue failed; asking the sender to retry");
                return reply(StatusCode::SERVICE_UNAVAILABLE, "try again later");
            }
            enqueued += events.len();
            if let Err(e) = self.deliveries.remember(&ids).await {
                // Enqueued is what counts; a replay of these would be applied once by the ledger.
                tracing::warn!(source, error = %Redacted(&e), "could not remember the deliveries");
            }
        }
        tracing::info!(source, enqueued, replays, ignored, "webhook accepted");
        let body =
            serde_json::json!({"enqueued": enqueued, "replays": replays, "ignored": ignored});
        json_reply(StatusCode::OK, &body)
    }

    /// The queue of the flow that handles `event`, if any: company changes go to the customer
    /// flow; a deal's creation, a move into a won stage and an amount change go to invoicing
    /// (the worker reads the deal's current state, so a creation in an open stage costs one read
    /// and an amount change after invoicing is caught as a conflict).
    fn route(&self, event: &WebhookEvent) -> Option<&str> {
        match entity_of(&event.subscription_type) {
            Entity::Customer => Some(&self.config.customer_queue_url),
            Entity::Deal => {
                let change = event.subscription_type.split_once('.').map(|(_, c)| c);
                let property = event.property_name.as_deref();
                let value = event.property_value.as_deref().unwrap_or_default();
                let invoicing = match (change, property) {
                    (Some("creation"), _) => true,
                    (Some("propertyChange"), Some("dealstage")) => {
                        self.config.won_stages.iter().any(|won| won == value)
                    }
                    (Some("propertyChange"), Some("amount")) => true,
                    _ => false,
                };
                invoicing.then_some(self.config.invoicing_queue_url.as_str())
            }
            Entity::Contact | Entity::Product | Entity::Invoice | Entity::Other => None,
        }
    }

    /// Removes the events an earlier delivery already enqueued, with their delivery ids (`ids`,
    /// one per event); returns how many. When the log cannot be read, everything is enqueued:
    /// the worker's ledger applies a replay once, while a dropped event would be lost.
    async fn drop_replays(&self, events: &mut Vec<ChangeEvent>, ids: &mut Vec<String>) -> usize {
        if events.is_empty() {
            return 0;
        }
        let seen = match self.deliveries.seen(ids).await {
            Ok(seen) => seen,
            Err(e) => {
                tracing::warn!(error = %Redacted(&e), "delivery log unavailable; enqueuing all");
                return 0;
            }
        };
        if seen.is_empty() {
            return 0;
        }
        let before = events.len();
        (*events, *ids) = std::mem::take(events)
            .into_iter()
            .zip(std::mem::take(ids))
            .filter(|(_, id)| !seen.contains(id))
            .unzip();
        before - events.len()
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

/// What identifies one webhook event across the sender's retries. HubSpot does not promise that
/// `eventId` alone is unique, so the record and the time are part of it: a genuinely different
/// event is never mistaken for a replay.
fn delivery_id(event: &ChangeEvent) -> String {
    format!(
        "{}#{}#{}#{}#{}",
        event.source, event.account_id, event.event_id, event.object_id, event.occurred_at_ms
    )
}

/// The queue message of an event, with its webhook event id among the attributes.
fn message(event: &ChangeEvent) -> OutboundMessage {
    let mut message = change_message(event);
    message
        .attributes
        .push(("puente-event-id".into(), event.event_id.clone()));
    message
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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    use shared::error::StoreError;
    use std::sync::Mutex;

    const SECRET: &str = "test-secret";
    const ODOO_TOKEN: &str = "k3Jd9sLq0PzX7vN2mB5cR8tY1wE4uA6h";
    const NOW: i64 = 1_704_067_200_000;

    #[derive(Default)]
    struct FakeQueue {
        sent: Mutex<Vec<(String, OutboundMessage)>>,
        down: bool,
    }

    impl Publisher for FakeQueue {
        async fn publish(
            &self,
            queue_url: &str,
            messages: &[OutboundMessage],
        ) -> Result<(), StoreError> {
            if self.down {
                return Err(StoreError::Unavailable {
                    service: "sqs",
                    detail: "down".into(),
                    source: None,
                });
            }
            let mut sent = self.sent.lock().expect("lock");
            sent.extend(messages.iter().map(|m| (queue_url.to_owned(), m.clone())));
            Ok(())
        }
    }

    #[derive(Default)]
    struct FakeLog {
        ids: Mutex<std::collections::HashSet<String>>,
        down: bool,
    }

    impl DeliveryLog for FakeLog {
        async fn seen(
            &self,
            ids: &[String],
        ) -> Result<std::collections::HashSet<String>, StoreError> {
            if self.down {
                return Err(StoreError::Unavailable {
                    service: "dynamodb",
                    detail: "down".into(),
                    source: None,
                });
            }
            let known = self.ids.lock().expect("lock");
            Ok(ids
                .iter()
                .filter(|id| known.contains(*id))
                .cloned()
                .collect())
        }
        async fn remember(&self, ids: &[String]) -> Result<(), StoreError> {
            self.ids.lock().expect("lock").extend(ids.iter().cloned());
            Ok(())
        }
    }

    fn receiver(queue: FakeQueue, public_base_url: Option<&str>) -> Receiver<FakeQueue, FakeLog> {
        Receiver {
            config: ReceiverConfig {
                customer_queue_url: "http://sqs/customer".into(),
                invoicing_queue_url: "http://sqs/invoicing".into(),
                payments_queue_url: "http://sqs/payments".into(),
                odoo_database: "acme".into(),
                won_stages: vec!["closedwon".into(), "4471823".into()],
                secrets: shared::config::SecretSource::Environment,
                public_base_url: public_base_url.map(Into::into),
                max_body_bytes: 4096,
                table: "state".into(),
                delivery_horizon: std::time::Duration::from_secs(96 * 3600),
                hubspot_app_id: Some("54321".into()),
                metrics_namespace: "puente".into(),
            },
            secrets: SigningSecrets::new(SECRET, None),
            odoo_token: WebhookToken::new(ODOO_TOKEN.into()).ok(),
            publisher: queue,
            deliveries: FakeLog::default(),
            metrics: Metrics::default(),
        }
    }

    const INTERNAL_URI: &str = "https://abc.execute-api.us-east-1.amazonaws.com/webhooks/hubspot";

    #[tokio::test]
    async fn a_replayed_delivery_enqueues_nothing_and_still_gets_200() {
        let r = receiver(FakeQueue::default(), None);
        let sig = sign(INTERNAL_URI, EVENTS);
        for _ in 0..2 {
            let response = r
                .receive(&request("POST", HUBSPOT_PATH, EVENTS, &sig), NOW)
                .await;
            assert_eq!(response.status(), StatusCode::OK);
        }
        assert_eq!(r.publisher.sent.lock().expect("lock").len(), 1);
    }

    #[tokio::test]
    async fn a_delivery_that_failed_to_enqueue_is_not_remembered() {
        let mut r = receiver(
            FakeQueue {
                down: true,
                ..FakeQueue::default()
            },
            None,
        );
        let sig = sign(INTERNAL_URI, EVENTS);
        let refused = r
            .receive(&request("POST", HUBSPOT_PATH, EVENTS, &sig), NOW)
            .await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        r.publisher.down = false;
        let retried = r
            .receive(&request("POST", HUBSPOT_PATH, EVENTS, &sig), NOW)
            .await;
        assert_eq!(retried.status(), StatusCode::OK);
        assert_eq!(r.publisher.sent.lock().expect("lock").len(), 1);
    }

    #[tokio::test]
    async fn without_the_delivery_log_everything_is_enqueued() {
        let mut r = receiver(FakeQueue::default(), None);
        r.deliveries.down = true;
        let sig = sign(INTERNAL_URI, EVENTS);
        for _ in 0..2 {
            let response = r
                .receive(&request("POST", HUBSPOT_PATH, EVENTS, &sig), NOW)
                .await;
            assert_eq!(response.status(), StatusCode::OK);
        }
        assert_eq!(r.publisher.sent.lock().expect("lock").len(), 2);
    }

    fn sign(uri: &str, body: &str) -> String {
        let mut mac =
            <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(format!("POST{uri}{body}{NOW}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    fn request(method: &str, path: &str, body: &str, signature: &str) -> Request {
        http::Request::builder()
            .method(method)
            .uri(format!(
                "https://abc.execute-api.us-east-1.amazonaws.com{path}"
            ))
            .header(TIMESTAMP_HEADER, NOW.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(Body::Text(body.to_owned()))
            .expect("request")
            .with_raw_http_path(path)
    }

    const EVENTS: &str = r#"[{"eventId":1,"portalId":62515,"occurredAt":1704067199000,"subscriptionType":"company.creation","objectId":901},
        {"eventId":2,"portalId":62515,"occurredAt":1704067199000,"subscriptionType":"contact.creation","objectId":5}]"#;

    #[tokio::test]
    async fn company_events_are_enqueued_before_the_2xx() {
        let r = receiver(FakeQueue::default(), None);
        let sig = sign(
            "https://abc.execute-api.us-east-1.amazonaws.com/webhooks/hubspot",
            EVENTS,
        );
        let response = r
            .receive(&request("POST", HUBSPOT_PATH, EVENTS, &sig), NOW)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let sent = r.publisher.sent.lock().expect("lock");
        assert_eq!(sent.len(), 1, "only the company event has a flow");
        assert_eq!(sent[0].0, "http://sqs/customer");
        let event: ChangeEvent = serde_json::from_str(&sent[0].1.body).expect("thin event");
        assert_eq!(
            (event.entity, event.object_id.as_str()),
            (Entity::Customer, "901")
        );
    }

    #[tokio::test]
    async fn our_own_api_writes_coming_back_are_dropped_and_a_users_edit_is_not() {
        let r = receiver(FakeQueue::default(), None);
        let body = r#"[{"eventId":7,"portalId":62515,"occurredAt":1704067199000,"subscriptionType":"company.propertyChange","objectId":901,"propertyName":"city","changeSource":"INTEGRATION","sourceId":"54321"},
            {"eventId":8,"portalId":62515,"occurredAt":1704067199500,"subscriptionType":"company.propertyChange","objectId":901,"propertyName":"city","changeSource":"INTEGRATION","sourceId":"99999"},
            {"eventId":9,"portalId":62515,"occurredAt":1704067199600,"subscriptionType":"company.propertyChange","objectId":901,"propertyName":"name","changeSource":"CRM_UI","sourceId":"userId:45678"}]"#;
        let sig = sign(INTERNAL_URI, body);
        let response = r
            .receive(&request("POST", HUBSPOT_PATH, body, &sig), NOW)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let sent = r.publisher.sent.lock().expect("lock");
        let ids: Vec<String> = sent
            .iter()
            .map(|(_, m)| {
                serde_json::from_str::<ChangeEvent>(&m.body)
                    .expect("event")
                    .event_id
            })
            .collect();
        // Another app's write is somebody else's change: it goes through.
        assert_eq!(ids, ["8", "9"]);
    }

    #[tokio::test]
    async fn a_merge_is_routed_with_its_surviving_and_merged_records() {
        let r = receiver(FakeQueue::default(), None);
        let body = r#"[{"eventId":11,"portalId":62515,"occurredAt":1704067199000,"subscriptionType":"company.merge","objectId":901,"primaryObjectId":901,"mergedObjectIds":[902]}]"#;
        let sig = sign(INTERNAL_URI, body);
        let response = r
            .receive(&request("POST", HUBSPOT_PATH, body, &sig), NOW)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let sent = r.publisher.sent.lock().expect("lock");
        let event: ChangeEvent = serde_json::from_str(&sent[0].1.body).expect("event");
        assert_eq!(sent[0].0, "http://sqs/customer");
        assert_eq!(
            (event.object_id.as_str(), event.merged_ids),
            ("901", vec!["902".to_owned()])
        );
    }

    #[tokio::test]
    async fn a_failed_enqueue_answers_503() {
        let r = receiver(
            FakeQueue {
                down: true,
                ..FakeQueue::default()
            },
            None,
        );
        let sig = sign(
            "https://abc.execute-api.us-east-1.amazonaws.com/webhooks/hubspot",
            EVENTS,
        );
        let response = r
            .receive(&request("POST", HUBSPOT_PATH, EVENTS, &sig), NOW)
            .await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn the_configured_public_url_is_what_is_verified() {
        let r = receiver(FakeQueue::default(), Some("https://hooks.acme.co"));
        let sig = sign("https://hooks.acme.co/webhooks/hubspot", EVENTS);
        let response = r
            .receive(&request("POST", HUBSPOT_PATH, EVENTS, &sig), NOW)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let internal = sign(
            "https://abc.execute-api.us-east-1.amazonaws.com/webhooks/hubspot",
            EVENTS,
        );
        let response = r
            .receive(&request("POST", HUBSPOT_PATH, EVENTS, &internal), NOW)
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn other_paths_and_methods_are_refused_without_enqueueing() {
        let r = receiver(FakeQueue::default(), None);
        let sig = sign(
            "https://abc.execute-api.us-east-1.amazonaws.com/webhooks/hubspot",
            EVENTS,
        );
        let wrong_path = r
            .receive(&request("POST", "/webhooks/other", EVENTS, &sig), NOW)
            .await;
        assert_eq!(wrong_path.status(), StatusCode::NOT_FOUND);
        let wrong_method = r
            .receive(&request("GET", HUBSPOT_PATH, EVENTS, &sig), NOW)
            .await;
        assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
        let unsigned = r
            .receive(&request("POST", HUBSPOT_PATH, EVENTS, "AAAA"), NOW)
            .await;
        assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
        assert!(r.publisher.sent.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn deals_won_created_or_repriced_go_to_invoicing_and_other_deal_changes_are_ignored() {
        let events = r#"[
            {"eventId":10,"portalId":62515,"occurredAt":1704067199000,"subscriptionType":"deal.propertyChange","objectId":5512,"propertyName":"dealstage","propertyValue":"closedwon"},
            {"eventId":11,"portalId":62515,"occurredAt":1704067199001,"subscriptionType":"deal.propertyChange","objectId":5513,"propertyName":"dealstage","propertyValue":"4471823"},
            {"eventId":12,"portalId":62515,"occurredAt":1704067199002,"subscriptionType":"deal.propertyChange","objectId":5514,"propertyName":"dealstage","propertyValue":"appointmentscheduled"},
            {"eventId":13,"portalId":62515,"occurredAt":1704067199003,"subscriptionType":"deal.propertyChange","objectId":5515,"propertyName":"amount","propertyValue":"1200000"},
            {"eventId":14,"portalId":62515,"occurredAt":1704067199004,"subscriptionType":"deal.propertyChange","objectId":5516,"propertyName":"dealname","propertyValue":"Renovación"},
            {"eventId":15,"portalId":62515,"occurredAt":1704067199005,"subscriptionType":"deal.creation","objectId":5517},
            {"eventId":16,"portalId":62515,"occurredAt":1704067199006,"subscriptionType":"deal.deletion","objectId":5518},
            {"eventId":17,"portalId":62515,"occurredAt":1704067199007,"subscriptionType":"company.propertyChange","objectId":901,"propertyName":"name","propertyValue":"Andina"}
        ]"#;
        let r = receiver(FakeQueue::default(), None);
        let sig = sign(INTERNAL_URI, events);
        let response = r
            .receive(&request("POST", HUBSPOT_PATH, events, &sig), NOW)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let sent = r.publisher.sent.lock().expect("lock");
        let routed: Vec<(&str, String)> = sent
            .iter()
            .map(|(queue, m)| {
                let event: ChangeEvent = serde_json::from_str(&m.body).expect("event");
                (queue.as_str(), event.object_id)
            })
            .collect();
        assert_eq!(
            routed,
            [
                ("http://sqs/invoicing", "5512".to_owned()),
                ("http://sqs/invoicing", "5513".to_owned()),
                ("http://sqs/invoicing", "5515".to_owned()),
                ("http://sqs/invoicing", "5517".to_owned()),
                ("http://sqs/customer", "901".to_owned()),
            ]
        );
        let body = match response.body() {
            Body::Text(text) => text.clone(),
            other => panic!("unexpected body {other:?}"),
        };
        assert_eq!(body, r#"{"enqueued":5,"ignored":3,"replays":0}"#);
    }

    fn odoo_request(query: &str, header: Option<&str>, body: &str) -> Request {
        let mut builder = http::Request::builder().method("POST").uri(format!(
            "https://abc.execute-api.us-east-1.amazonaws.com{ODOO_PATH}{query}"
        ));
        if let Some(token) = header {
            builder = builder.header(TOKEN_HEADER, token);
        }
        builder
            .body(Body::Text(body.to_owned()))
            .expect("request")
            .with_raw_http_path(ODOO_PATH)
    }

    const INVOICE_CHANGED: &str = r#"{"_model":"account.move","_id":318,"id":318,"payment_state":"partial","write_date":"2026-03-14 16:02:11"}"#;

    #[tokio::test]
    async fn an_odoo_partner_notification_goes_to_the_customer_queue() {
        let r = receiver(FakeQueue::default(), None);
        let body =
            r#"{"_model":"res.partner","_id":42,"id":42,"write_date":"2026-03-14 16:02:11"}"#;
        let response = r
            .receive(&odoo_request("", Some(ODOO_TOKEN), body), NOW)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let sent = r.publisher.sent.lock().expect("lock");
        assert_eq!(sent[0].0, "http://sqs/customer");
        let event: ChangeEvent = serde_json::from_str(&sent[0].1.body).expect("event");
        assert_eq!(
            (event.entity, event.object_id.as_str()),
            (Entity::Customer, "42")
        );
    }

    #[tokio::test]
    async fn an_odoo_invoice_notification_with_the_token_goes_to_the_payments_queue() {
        let r = receiver(FakeQueue::default(), None);
        let by_query = r
            .receive(
                &odoo_request(&format!("?token={ODOO_TOKEN}"), None, INVOICE_CHANGED),
                NOW,
            )
            .await;
        assert_eq!(by_query.status(), StatusCode::OK);
        let by_header = r
            .receive(&odoo_request("", Some(ODOO_TOKEN), INVOICE_CHANGED), NOW)
            .await;
        assert_eq!(by_header.status(), StatusCode::OK, "the same change again");
        let sent = r.publisher.sent.lock().expect("lock");
        assert_eq!(sent.len(), 1, "the second notice of one change is a replay");
        assert_eq!(sent[0].0, "http://sqs/payments");
        let event: ChangeEvent = serde_json::from_str(&sent[0].1.body).expect("event");
        assert_eq!(
            (
                event.entity,
                event.object_id.as_str(),
                event.source.as_str()
            ),
            (Entity::Invoice, "318", "odoo")
        );
    }

    #[tokio::test]
    async fn an_odoo_notification_without_the_right_token_is_refused_and_not_enqueued() {
        let r = receiver(FakeQueue::default(), None);
        for (query, header) in [
            ("", None),
            ("?token=k3Jd9sLq0PzX7vN2mB5cR8tY1wE4uA6x", None),
            ("", Some("k3Jd9sLq0PzX7vN2mB5cR8tY1wE4uA6")),
        ] {
            let response = r
                .receive(&odoo_request(query, header, INVOICE_CHANGED), NOW)
                .await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{query} {header:?}"
            );
        }
        let garbage = r
            .receive(&odoo_request("", Some(ODOO_TOKEN), "[1]"), NOW)
            .await;
        assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
        assert!(r.publisher.sent.lock().expect("lock").is_empty());

        let mut without = receiver(FakeQueue::default(), None);
        without.odoo_token = None;
        let response = without
            .receive(&odoo_request("", Some(ODOO_TOKEN), INVOICE_CHANGED), NOW)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::NOT_FOUND,
            "no token, no route"
        );
    }
}
