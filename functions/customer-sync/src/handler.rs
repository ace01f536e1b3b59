//! Two invocations: an SQS batch of customer change events from either system (each mirrored to
//! the other by the customer flow), or a scheduled poll that lists the ERP customers written
//! since the cursor and puts one change event per customer on the same queue, the fallback for
//! webhook notices that never came.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use shared::config::CustomerSyncConfig;
use shared::domain::{ChangeEvent, Entity};
use shared::error::SyncError;
use shared::flows::poll::{PAGE, Poll};
use shared::flows::sync_customer::{CustomerSync, FLOW};
use shared::lambda::sqs_batch::{
    BatchRunner, Invocation, Trigger, UnreportableFailure, decode_change, redriven,
};
use shared::ports::{
    Cursors, CustomerFeed, CustomerLinks, CustomerSide, Ledger, Publisher, Redelivery, Written,
};
use shared::telemetry::Metrics;

/// The poller's cursor name.
const CURSOR: &str = "customers#odoo";

#[derive(Debug)]
pub struct Worker<L, K, C, E, R, U, P> {
    pub config: CustomerSyncConfig,
    pub ledger: L,
    pub links: K,
    pub crm: C,
    pub erp: E,
    pub redelivery: R,
    pub cursors: U,
    pub publisher: P,
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Batch(#[from] UnreportableFailure),
    #[error("{0}")]
    Poll(String),
}

impl<L, K, C, E, R, U, P> Worker<L, K, C, E, R, U, P>
where
    L: Ledger,
    K: CustomerLinks,
    C: CustomerSide,
    E: CustomerSide + CustomerFeed,
    R: Redelivery,
    U: Cursors,
    P: Publisher,
{
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Failure> {
        let window = Invocation::until(event.context.deadline(), self.config.lease_margin);
        match Trigger::read(event.payload).map_err(Failure::Poll)? {
            Trigger::Queue(batch) => {
                let response = self.batch(&batch, window).await?;
                serde_json::to_value(response).map_err(|e| Failure::Poll(e.to_string()))
            }
            Trigger::Schedule => {
                let enqueued = self.poll(window).await?;
                Ok(json!({ "enqueued": enqueued }))
            }
        }
    }

    async fn batch(
        &self,
        event: &SqsEvent,
        window: Invocation,
    ) -> Result<SqsBatchResponse, UnreportableFailure> {
        let metrics = Metrics::new(self.config.metrics_namespace.clone(), FLOW);
        let flow = CustomerSync {
            ledger: &self.ledger,
            links: &self.links,
            crm: &self.crm,
            erp: &self.erp,
            rules: &self.config.rules,
            terms: self.config.terms,
            ownership: &self.config.ownership,
            breaker: self.config.breaker,
            near_miss_window: self.config.near_miss_window,
            metrics: &metrics,
        };
        let runner = BatchRunner {
            metrics: &metrics,
            flow: FLOW,
            redelivery: &self.redelivery,
            retry: self.config.retry,
            stop_at: window.stop_at,
        };
        runner
            .run(event, |message| {
                let flow = &flow;
                async move {
                    let change = decode(message)?;
                    flow.sync(&change, window.lease, redriven(message))
                        .await
                        .map(|synced| synced.as_str())
                }
            })
            .await
    }

    /// Hands every ERP customer written since the cursor to the queue.
    async fn poll(&self, window: Invocation) -> Result<usize, Failure> {
        let poll = Poll {
            cursors: &self.cursors,
            publisher: &self.publisher,
            cursor: CURSOR,
            queue_url: &self.config.queue_url,
            lookback: self.config.poll_lookback,
            stop_at: window.stop_at,
        };
        let (system, database) = (self.erp.system(), &self.config.odoo.database);
        poll.run(
            |after| async move { self.erp.changed_customers(&after, PAGE).await },
            |written| polled_change(system.name(), written, database),
        )
        .await
        .map_err(|e| Failure::Poll(e.0))
    }
}

/// The message body as a customer change event; anything else is poison.
fn decode(message: &SqsMessage) -> Result<ChangeEvent, SyncError> {
    decode_change(message, Entity::Customer, "customer")
}

/// A polled change of an ERP customer, keyed by its write date. The webhook's notice of the same
/// change is keyed by its receipt (see `connectors::odoo::webhook`), so a customer both bring is
/// read twice; the second read finds nothing to write.
fn polled_change(source: &str, written: &Written, database: &str) -> ChangeEvent {
    let occurred_at_ms = written.at.epoch_millis();
    ChangeEvent {
        source: source.to_owned(),
        entity: Entity::Customer,
        subscription_type: "res.partner.write".into(),
        object_id: written.id.clone(),
        event_id: format!("{}@{occurred_at_ms}", written.id),
        account_id: database.to_owned(),
        occurred_at_ms,
        change_source: Some("poll".into()),
        merged_ids: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::Timestamp;
    use shared::error::FailureClass;

    fn message(body: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.body = Some(body.into());
        m
    }

    #[test]
    fn an_unreadable_body_is_poison() {
        let err = decode(&message("{not json")).expect_err("poison");
        assert!(
            matches!(
                err,
                SyncError::Rejected {
                    class: FailureClass::Poison,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_misrouted_event_is_poison() {
        let body = r#"{"source":"hubspot","entity":"deal","subscription_type":"deal.creation",
            "object_id":"1","event_id":"2","account_id":"3","occurred_at_ms":4,"change_source":null}"#;
        let err = decode(&message(body)).expect_err("poison");
        assert!(
            err.to_string().contains("Deal event on the customer queue"),
            "{err}"
        );
    }

    #[test]
    fn a_customer_event_decodes() {
        let body = r#"{"source":"hubspot","entity":"customer","subscription_type":"company.creation",
            "object_id":"901","event_id":"2","account_id":"3","occurred_at_ms":4,"change_source":"CRM"}"#;
        assert_eq!(decode(&message(body)).expect("event").object_id, "901");
    }

    #[test]
    fn a_polled_partner_is_keyed_by_its_write_date() {
        let written = Written {
            id: "42".into(),
            at: Timestamp::parse_naive_utc("2026-03-14 16:02:11").expect("time"),
        };
        let polled = polled_change("odoo", &written, "acme");
        assert_eq!(
            polled.business_key(FLOW).expect("key"),
            "customer#odoo#42#1773504131000"
        );
        assert_eq!(polled.entity, Entity::Customer);
    }
}
