//! The two per-event paths of issue 8, built once and run many times: by the criterion bench
//! (`benches/per_event.rs`) for time, and by `examples/per_event.rs` under callgrind for
//! instruction counts.
//!
//! - Receiver: one signed HubSpot delivery through `Receiver::receive` (signature v3 on the raw
//!   bytes, parse, echo check, route, thin events, replay check, SQS message bodies), with a
//!   queue and a delivery log that accept everything and send nothing.
//! - Worker: the customer worker's decode and `CustomerSync::sync` for one HubSpot company
//!   change, with stores that answer at once and systems that do no I/O (HubSpot's side parses
//!   the company's JSON, Odoo's side builds the `res.partner` create's JSON-RPC body).

use aws_lambda_events::event::sqs::SqsMessage;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use lambda_http::{Body, Request, RequestExt};
use serde_json::{Value, json};
use shared::config::{BreakerRules, HubSpotConfig, ReceiverConfig, SecretSource};
use shared::connectors::hubspot::signature::{SIGNATURE_HEADER, SigningSecrets, TIMESTAMP_HEADER};
use shared::connectors::hubspot::wire::CrmObject;
use shared::connectors::odoo::wire::{RpcRequest, execute_kw, new_partner, partner_writes};
use shared::connectors::{hubspot, odoo};
use shared::domain::{ChangeEvent, Currency, CustomerKind, Entity, System};
use shared::error::{ConnectorError, StoreError};
use shared::flows::poll::change_message;
use shared::flows::sync_customer::CustomerSync;
use shared::lambda::sqs_batch::decode_change;
use shared::mapping::customer::CustomerRules;
use shared::mapping::ownership::{Ownership, Role, SyncFields, TermsRules};
use shared::ports::{
    Claim, CustomerLink, CustomerLinks, CustomerNotice, CustomerRecord, CustomerSide, DeliveryLog,
    FailureNote, Lease, Ledger, LinkLock, Locked, OutboundMessage, Publisher,
};
use shared::telemetry::Metrics;
use std::collections::HashSet;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use webhook_receiver::handler::{HUBSPOT_PATH, Receiver};

const SECRET: &str = "bench-signing-secret";
const NOW: i64 = 1_704_067_200_000;
const HOST: &str = "https://abc.execute-api.us-east-1.amazonaws.com";

/// Runs a future that never waits: the fakes below answer at once.
fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the benchmarked path waited on I/O"),
    }
}

/// A queue that accepts every message and sends nothing; counts them for the sanity check.
#[derive(Debug, Default)]
pub struct NullQueue {
    sent: AtomicUsize,
}

impl Publisher for NullQueue {
    async fn publish(&self, _queue: &str, messages: &[OutboundMessage]) -> Result<(), StoreError> {
        self.sent.fetch_add(messages.len(), Ordering::Relaxed);
        Ok(())
    }
}

/// A delivery log that has seen nothing, so every run enqueues the whole batch.
#[derive(Debug, Default)]
pub struct EmptyLog;

impl DeliveryLog for EmptyLog {
    async fn seen(&self, _ids: &[String]) -> Result<HashSet<String>, StoreError> {
        Ok(HashSet::new())
    }
    async fn remember(&self, _ids: &[String]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// One signed HubSpot delivery of `events` events and a receiver configured as in production.
#[derive(Debug)]
pub struct ReceiverPath {
    receiver: Receiver<NullQueue, EmptyLog>,
    request: Request,
    pub events: usize,
}

impl ReceiverPath {
    /// A delivery of `events` events: mostly company changes (customer queue), every fourth a
    /// deal moved to a won stage (invoicing queue), all routed, none an echo.
    pub fn new(events: usize) -> Self {
        let body = hubspot_batch(events);
        let receiver = Receiver {
            config: ReceiverConfig {
                customer_queue_url: "https://sqs.us-east-1.amazonaws.com/1/customer".into(),
                invoicing_queue_url: "https://sqs.us-east-1.amazonaws.com/1/invoicing".into(),
                payments_queue_url: "https://sqs.us-east-1.amazonaws.com/1/payments".into(),
                odoo_database: "acme".into(),
                won_stages: vec!["closedwon".into(), "4471823".into()],
                secrets: SecretSource::Environment,
                public_base_url: None,
                max_body_bytes: 1 << 20,
                table: "state".into(),
                delivery_horizon: std::time::Duration::from_secs(96 * 3600),
                hubspot_app_id: Some("54321".into()),
                metrics_namespace: "puente".into(),
            },
            secrets: SigningSecrets::new(SECRET, None),
            odoo_token: None,
            publisher: NullQueue::default(),
            deliveries: EmptyLog,
            metrics: Metrics::default(),
        };
        let signature = sign(&format!("{HOST}{HUBSPOT_PATH}"), &body);
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("{HOST}{HUBSPOT_PATH}"))
            .header(TIMESTAMP_HEADER, NOW.to_string())
            .header(SIGNATURE_HEADER, signature)
            .header("content-type", "application/json")
            .body(Body::Text(body))
            .expect("request")
            .with_raw_http_path(HUBSPOT_PATH);
        let path = Self {
            receiver,
            request,
            events,
        };
        // Measure the accepting path, not a rejection.
        let status = path.run();
        assert_eq!(status, 200, "the benchmark delivery must be accepted");
        let sent = path.receiver.publisher.sent.swap(0, Ordering::Relaxed);
        assert_eq!(
            sent, events,
            "every event of the benchmark delivery is enqueued"
        );
        path
    }

    /// One delivery through the receiver; the HTTP status it answers.
    pub fn run(&self) -> u16 {
        ready(self.receiver.receive(&self.request, NOW))
            .status()
            .as_u16()
    }
}

fn hubspot_batch(events: usize) -> String {
    let events: Vec<Value> = (0..events)
        .map(|i| {
            let at = NOW - 2_000 + i as i64;
            if i % 4 == 3 {
                json!({"eventId": 1000 + i, "subscriptionId": 2002, "portalId": 62515,
                    "appId": 54321, "occurredAt": at, "subscriptionType": "deal.propertyChange",
                    "attemptNumber": 0, "objectId": 5500 + i, "propertyName": "dealstage",
                    "propertyValue": "closedwon", "changeSource": "CRM_UI",
                    "sourceId": "userId:45678"})
            } else {
                json!({"eventId": 1000 + i, "subscriptionId": 2001, "portalId": 62515,
                    "appId": 54321, "occurredAt": at, "subscriptionType": "company.propertyChange",
                    "attemptNumber": 0, "objectId": 900 + i, "propertyName": "city",
                    "propertyValue": "Medellín", "changeSource": "CRM_UI",
                    "sourceId": "userId:45678"})
            }
        })
        .collect();
    Value::Array(events).to_string()
}

fn sign(uri: &str, body: &str) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(format!("POST{uri}{body}{NOW}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The customer worker's path for one HubSpot company change, as `customer-sync` runs it: its
/// decode of the SQS message, then `CustomerSync::sync` (ledger key and payload digest, the
/// record lock, the link lookup, validation, the echo digest, the ownership plan, the link's
/// digests and value hashes) against stores that answer at once and systems that do no I/O:
/// HubSpot's side parses the company as `GET /crm/v3/objects/companies/{id}` returns it,
/// Odoo's side builds the `res.partner` create's JSON-RPC body and sends nothing.
#[derive(Debug)]
pub struct WorkerPath {
    message: SqsMessage,
    ledger: FreshLedger,
    links: NoLinks,
    crm: HubSpotCompany,
    erp: OdooPartners,
    rules: CustomerRules,
    ownership: Ownership,
    metrics: Metrics,
}

impl WorkerPath {
    pub fn new() -> Self {
        let event = ChangeEvent {
            source: "hubspot".into(),
            entity: Entity::Customer,
            subscription_type: "company.propertyChange".into(),
            object_id: "901".into(),
            event_id: "1001".into(),
            account_id: "62515".into(),
            occurred_at_ms: NOW - 2_000,
            change_source: Some("CRM_UI".into()),
            merged_ids: Vec::new(),
        };
        let mut message = SqsMessage::default();
        message.body = Some(change_message(&event).body);
        let company = json!({
            "id": "901",
            "properties": {
                "name": "Distribuidora Andina SAS",
                "nit": "900.123.456-8",
                "billing_email": "facturacion@andina.com.co",
                "phone": "+57 604 444 1234",
                "address": "Calle 10 # 43-12",
                "city": "Medellín",
                "country": "Colombia",
                "puente_credit_limit": null,
                "puente_payment_terms": null,
                "puente_erp_ref": null,
                "hs_lastmodifieddate": "2024-01-01T00:00:00.000Z",
                "hs_object_id": "901"
            },
            "createdAt": "2023-06-01T12:00:00.000Z",
            "updatedAt": "2024-01-01T00:00:00.000Z",
            "archived": false
        });
        let path = Self {
            message,
            ledger: FreshLedger,
            links: NoLinks,
            crm: HubSpotCompany {
                config: HubSpotConfig {
                    base_url: "https://api.hubapi.com".into(),
                    tax_id_property: "nit".into(),
                    email_property: "billing_email".into(),
                    erp_ref_property: "puente_erp_ref".into(),
                    credit_limit_property: "puente_credit_limit".into(),
                    payment_terms_property: "puente_payment_terms".into(),
                },
                body: serde_json::to_vec(&company).expect("company json"),
            },
            erp: OdooPartners::default(),
            rules: CustomerRules::default(),
            ownership: Ownership::default(),
            metrics: Metrics::default(),
        };
        // Measure the path that writes, not a rejection.
        let synced = path.run().expect("the benchmark company syncs");
        assert_eq!(
            synced, "created",
            "the benchmark company is created in Odoo"
        );
        let body = path.erp.sent.swap(0, Ordering::Relaxed);
        assert!(body > 200, "the partner create carries the fields");
        path
    }

    /// One change through the worker; what the flow did (`created`).
    pub fn run(&self) -> Result<&'static str, String> {
        let flow = CustomerSync {
            ledger: &self.ledger,
            links: &self.links,
            crm: &self.crm,
            erp: &self.erp,
            rules: &self.rules,
            terms: TermsRules {
                credit_currency: Currency::COP,
            },
            ownership: &self.ownership,
            breaker: BreakerRules {
                max_writes: 10,
                window: Duration::from_secs(600),
            },
            near_miss_window: Duration::from_secs(60),
            metrics: &self.metrics,
        };
        let change = decode_change(&self.message, Entity::Customer, "customer")
            .map_err(|e| e.to_string())?;
        ready(flow.sync(&change, Duration::from_secs(60), false))
            .map(|synced| synced.as_str())
            .map_err(|e| e.to_string())
    }
}

fn lease(key: &str) -> Lease {
    Lease {
        key: key.into(),
        token: "bench".into(),
        attempt: 1,
        applied_target: None,
        first_failure_at: None,
    }
}

/// A ledger where every key is new and every record free.
#[derive(Debug)]
pub struct FreshLedger;

impl Ledger for FreshLedger {
    async fn claim(
        &self,
        key: &str,
        _digest: &str,
        _lease: Duration,
        _retry_failed: bool,
    ) -> Result<Claim, StoreError> {
        Ok(Claim::Acquired(lease(key)))
    }
    async fn mark_applied(&self, _lease: &Lease, _target: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn complete(&self, _lease: &Lease, _target: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn release(&self, _lease: &Lease, _note: &FailureNote<'_>) -> Result<(), StoreError> {
        Ok(())
    }
    async fn fail(&self, _lease: &Lease, _note: &FailureNote<'_>) -> Result<(), StoreError> {
        Ok(())
    }
    async fn lock_record(
        &self,
        record: &str,
        _lease: Duration,
    ) -> Result<Result<Lease, Duration>, StoreError> {
        Ok(Ok(lease(record)))
    }
    async fn unlock_record(&self, _lock: &Lease) -> Result<(), StoreError> {
        Ok(())
    }
    async fn record_conflict(&self, _key: &str, _digest: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Links that hold nothing yet and forget what they are given.
#[derive(Debug)]
pub struct NoLinks;

impl CustomerLinks for NoLinks {
    async fn find_link(&self, _role: Role, _id: &str) -> Result<Option<CustomerLink>, StoreError> {
        Ok(None)
    }
    async fn linked_crm_id(&self, _erp_id: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    async fn lock(
        &self,
        role: Role,
        id: &str,
        _lease: Duration,
    ) -> Result<Result<Locked, Duration>, StoreError> {
        let lock = LinkLock {
            role,
            id: id.to_owned(),
            token: "bench".to_owned(),
            kept: false,
        };
        Ok(Ok(Locked {
            lock,
            link: None,
            points_to: None,
        }))
    }
    async fn unlock(&self, _lock: &LinkLock) -> Result<(), StoreError> {
        Ok(())
    }
    async fn save_link(
        &self,
        _link: &CustomerLink,
        _new: bool,
        _held: &[LinkLock],
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn repoint_link(&self, _link: &CustomerLink, _from: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn record_notice(&self, _notice: &CustomerNotice) -> Result<bool, StoreError> {
        Ok(false)
    }
}

fn unexpected(system: System, what: &str) -> ConnectorError {
    ConnectorError::Rejected {
        system,
        detail: format!("the benchmark path does not {what}"),
    }
}

/// HubSpot's side: one company, read from the body HubSpot answers with.
#[derive(Debug)]
pub struct HubSpotCompany {
    config: HubSpotConfig,
    body: Vec<u8>,
}

impl CustomerSide for HubSpotCompany {
    fn system(&self) -> System {
        hubspot::SYSTEM
    }
    fn record_kind(&self) -> &'static str {
        "company"
    }
    async fn read_record(&self, _id: &str) -> Result<Option<CustomerRecord>, ConnectorError> {
        let company: CrmObject = serde_json::from_slice(&self.body)
            .map_err(|_| unexpected(hubspot::SYSTEM, "read malformed companies"))?;
        company
            .company_record(&self.config)
            .map(Some)
            .map_err(|_| unexpected(hubspot::SYSTEM, "read invalid companies"))
    }
    async fn find_by_origin(&self, _origin: &str) -> Result<Option<String>, ConnectorError> {
        Ok(None)
    }
    async fn create_record(
        &self,
        _fields: &SyncFields,
        _kind: CustomerKind,
        _origin: &str,
    ) -> Result<String, ConnectorError> {
        Err(unexpected(hubspot::SYSTEM, "create companies"))
    }
    async fn update_record(&self, _id: &str, _fields: &SyncFields) -> Result<(), ConnectorError> {
        Err(unexpected(hubspot::SYSTEM, "update companies"))
    }
}

/// Odoo's side: no partner carries our reference yet; a create builds the JSON-RPC body the
/// connector posts (`/jsonrpc`, API key), with Colombia's `res.country` id as its cache holds
/// it, and counts its bytes.
#[derive(Debug, Default)]
pub struct OdooPartners {
    sent: AtomicUsize,
}

impl CustomerSide for OdooPartners {
    fn system(&self) -> System {
        odoo::SYSTEM
    }
    fn record_kind(&self) -> &'static str {
        "partner"
    }
    async fn read_record(&self, _id: &str) -> Result<Option<CustomerRecord>, ConnectorError> {
        Err(unexpected(odoo::SYSTEM, "read partners"))
    }
    async fn find_by_origin(&self, _origin: &str) -> Result<Option<String>, ConnectorError> {
        Ok(None)
    }
    async fn create_record(
        &self,
        fields: &SyncFields,
        kind: CustomerKind,
        origin: &str,
    ) -> Result<String, ConnectorError> {
        let vals = new_partner(partner_writes(fields, Some(49), None), Some(kind), origin);
        let params = execute_kw(
            "acme",
            2,
            "api-key",
            "res.partner",
            "create",
            json!([vals]),
            json!({}),
        );
        let body = serde_json::to_vec(&RpcRequest::call(7, params))
            .map_err(|_| unexpected(odoo::SYSTEM, "fail to encode"))?;
        self.sent.fetch_add(body.len(), Ordering::Relaxed);
        Ok("7".into())
    }
    async fn update_record(&self, _id: &str, _fields: &SyncFields) -> Result<(), ConnectorError> {
        Err(unexpected(odoo::SYSTEM, "update partners"))
    }
}
