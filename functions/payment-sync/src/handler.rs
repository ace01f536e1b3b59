//! Two invocations: an SQS batch of invoice change events (each shown on its deal by the
//! payment-status flow), or a scheduled poll that lists the invoices Odoo wrote since the cursor
//! and puts one change event per invoice on the same queue, so polled and notified changes share
//! business keys, retries and the dead-letter queue.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use shared::config::PaymentSyncConfig;
use shared::domain::{ChangeEvent, Entity, Timestamp};
use shared::flows::payment_status::{FLOW, PaymentStatus};
use shared::flows::poll::{PAGE, Poll};
use shared::lambda::sqs_batch::{
    BatchRunner, Invocation, Trigger, UnreportableFailure, decode_change, redriven,
};
use shared::ports::{
    Cursors, DealSource, InvoiceStatusSource, Ledger, Links, Publisher, Redelivery, Written,
};
use shared::telemetry::Metrics;

/// The poller's cursor name.
const CURSOR: &str = "payments#odoo";

#[derive(Debug)]
pub struct Worker<L, K, C, H, E, R, P> {
    pub config: PaymentSyncConfig,
    pub ledger: L,
    pub links: K,
    pub cursors: C,
    pub crm: H,
    pub erp: E,
    pub redelivery: R,
    pub publisher: P,
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Batch(#[from] UnreportableFailure),
    #[error("the poll failed: {0}")]
    Poll(String),
}

impl<L, K, C, H, E, R, P> Worker<L, K, C, H, E, R, P>
where
    L: Ledger,
    K: Links,
    C: Cursors,
    H: DealSource,
    E: InvoiceStatusSource,
    R: Redelivery,
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
        let flow = PaymentStatus {
            ledger: &self.ledger,
            links: &self.links,
            invoices: &self.erp,
            deals: &self.crm,
            offset: self.config.offset,
        };
        let metrics = Metrics::new(self.config.metrics_namespace.clone(), FLOW);
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
                    let change = decode_change(message, Entity::Invoice, "payments")?;
                    flow.sync(&change, window.lease, redriven(message), Timestamp::now())
                        .await
                        .map(|shown| shown.as_str())
                }
            })
            .await
    }

    /// Hands every invoice written since the cursor to the queue, page by page, advancing the
    /// cursor only past what SQS accepted. Stops at the invocation's stop time; the next
    /// schedule goes on from the cursor.
    async fn poll(&self, window: Invocation) -> Result<usize, Failure> {
        let poll = Poll {
            cursors: &self.cursors,
            publisher: &self.publisher,
            cursor: CURSOR,
            queue_url: &self.config.queue_url,
            lookback: self.config.poll_lookback,
            stop_at: window.stop_at,
        };
        let database = &self.config.odoo.database;
        poll.run(
            |after| async move { self.erp.changed_invoices(&after, PAGE).await },
            |written| polled_change(written, database),
        )
        .await
        .map_err(|e| Failure::Poll(e.0))
    }
}

/// A polled change as the webhook would have announced it: same source, record and time, so
/// both give the same business key and the ledger applies it once.
fn polled_change(written: &Written, database: &str) -> ChangeEvent {
    let occurred_at_ms = written.at.epoch_millis();
    ChangeEvent {
        source: "odoo".into(),
        entity: Entity::Invoice,
        subscription_type: "account.move.write".into(),
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

    #[test]
    fn a_polled_change_has_the_business_key_of_the_notified_one() {
        let written = Written {
            id: "318".into(),
            at: Timestamp::parse_naive_utc("2026-03-14 16:02:11").expect("time"),
        };
        let polled = polled_change(&written, "acme");
        let body = br#"{"_model":"account.move","_id":318,"write_date":"2026-03-14 16:02:11"}"#;
        let Ok(shared::connectors::odoo::webhook::Notice::Invoice(notified)) =
            shared::connectors::odoo::webhook::notice(body, "acme", 1)
        else {
            panic!("an invoice notice")
        };
        assert_eq!(
            polled.business_key(FLOW).expect("key"),
            notified.business_key(FLOW).expect("key")
        );
        assert_eq!(polled.payload_identity(), notified.payload_identity());
    }
}
