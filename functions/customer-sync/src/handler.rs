//! One SQS batch of customer change events -> the customer flow, record by record.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use shared::config::CustomerSyncConfig;
use shared::domain::{ChangeEvent, Entity};
use shared::error::SyncError;
use shared::flows::sync_customer::{CustomerSync, FLOW};
use shared::lambda::sqs_batch::{
    BatchRunner, Invocation, UnreportableFailure, decode_change, redriven,
};
use shared::ports::{CustomerSink, CustomerSource, Ledger, Links, Redelivery};
use shared::telemetry::Metrics;

#[derive(Debug)]
pub struct Worker<L, K, S, T, R> {
    pub config: CustomerSyncConfig,
    pub ledger: L,
    pub links: K,
    pub crm: S,
    pub erp: T,
    pub redelivery: R,
}

impl<L, K, S, T, R> Worker<L, K, S, T, R>
where
    L: Ledger,
    K: Links,
    S: CustomerSource,
    T: CustomerSink,
    R: Redelivery,
{
    pub async fn handle(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> Result<SqsBatchResponse, UnreportableFailure> {
        let window = Invocation::until(event.context.deadline(), self.config.lease_margin);
        let flow = CustomerSync {
            ledger: &self.ledger,
            links: &self.links,
            source: &self.crm,
            sink: &self.erp,
            rules: &self.config.rules,
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
            .run(&event.payload, |message| {
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
}

/// The message body as a customer change event; anything else is poison.
fn decode(message: &SqsMessage) -> Result<ChangeEvent, SyncError> {
    decode_change(message, Entity::Customer, "customer")
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
