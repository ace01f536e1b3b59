//! One SQS batch of deal change events -> the invoicing flow, record by record.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use shared::config::InvoicingConfig;
use shared::domain::{ChangeEvent, Entity, Timestamp};
use shared::error::SyncError;
use shared::flows::invoice_deal::{FLOW, InvoiceDeal};
use shared::lambda::sqs_batch::{
    BatchRunner, Invocation, UnreportableFailure, decode_change, redriven,
};
use shared::ports::{
    CustomerLinks, CustomerSink, CustomerSource, DealSource, InvoiceSink, Ledger, Links, Redelivery,
};
use shared::telemetry::Metrics;

#[derive(Debug)]
pub struct Worker<L, K, N, C, E, R> {
    pub config: InvoicingConfig,
    pub ledger: L,
    pub links: K,
    /// The customer flow's links: its lock on a deal's company.
    pub customer_links: N,
    /// The CRM: deals and companies.
    pub crm: C,
    /// The ERP: customers and sales documents.
    pub erp: E,
    pub redelivery: R,
}

impl<L, K, N, C, E, R> Worker<L, K, N, C, E, R>
where
    L: Ledger,
    K: Links,
    N: CustomerLinks,
    C: DealSource + CustomerSource,
    E: InvoiceSink + CustomerSink,
    R: Redelivery,
{
    pub async fn handle(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> Result<SqsBatchResponse, UnreportableFailure> {
        let window = Invocation::until(event.context.deadline(), self.config.lease_margin);
        let flow = InvoiceDeal {
            ledger: &self.ledger,
            links: &self.links,
            customer_links: &self.customer_links,
            deals: &self.crm,
            customers: &self.crm,
            customer_sink: &self.erp,
            invoices: &self.erp,
            customer_rules: &self.config.customer_rules,
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
                    flow.sync(&change, window.lease, redriven(message), Timestamp::now())
                        .await
                        .map(|invoiced| invoiced.as_str())
                }
            })
            .await
    }
}

/// The message body as a deal change event; anything else is poison.
fn decode(message: &SqsMessage) -> Result<ChangeEvent, SyncError> {
    decode_change(message, Entity::Deal, "invoicing")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.body = Some(body.into());
        m
    }

    #[test]
    fn a_company_event_on_the_invoicing_queue_is_poison() {
        let body = r#"{"source":"hubspot","entity":"customer","subscription_type":"company.creation",
            "object_id":"1","event_id":"2","account_id":"3","occurred_at_ms":4,"change_source":null}"#;
        let err = decode(&message(body)).expect_err("poison");
        assert!(
            err.to_string()
                .contains("Customer event on the invoicing queue"),
            "{err}"
        );
    }

    #[test]
    fn a_deal_event_decodes() {
        let body = r#"{"source":"hubspot","entity":"deal","subscription_type":"deal.propertyChange",
            "object_id":"5512","event_id":"2","account_id":"3","occurred_at_ms":4,"change_source":"CRM"}"#;
        assert_eq!(decode(&message(body)).expect("event").object_id, "5512");
    }
}
