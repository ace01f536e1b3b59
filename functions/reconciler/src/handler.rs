//! One scheduled run: read what the schedule asks (`{"mode": "incremental"}` or `"full"`; a
//! plain EventBridge scheduled event is an incremental run), reconcile until the work, the page
//! budget or the invocation's time ends, then report: one JSON log line, metrics, and the
//! report item the operator command reads.

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::config::ReconcilerConfig;
use shared::flows::reconcile::report::{DriftReport, Pass};
use shared::flows::reconcile::{Reconciler, Request, Stores};
use shared::ports::{
    Cursors, CustomerLinks, CustomerListing, DealListing, DeliveryLog, DocumentListing,
    DriftReports, InvoiceSink, Ledger, ProductCatalogue, ProductLibrary, Publisher, StuckLedger,
};
use shared::telemetry::{Metric, Metrics};

#[derive(Debug)]
pub struct Reconcile<L, K, C, E, U, P, D, R> {
    pub config: ReconcilerConfig,
    pub ledger: L,
    pub links: K,
    pub crm: C,
    pub erp: E,
    pub cursors: U,
    pub publisher: P,
    pub deliveries: D,
    pub reports: R,
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("the request is not a reconciler run: {0}")]
    Request(String),
    /// A pass could not read what it had to: the report says which, the watermark stayed,
    /// and the failed invocation counts in the function's error alarm.
    #[error("the run stopped early: {0}")]
    Incomplete(String),
}

impl<L, K, C, E, U, P, D, R> Reconcile<L, K, C, E, U, P, D, R>
where
    L: Ledger + StuckLedger,
    K: CustomerLinks,
    C: CustomerListing + DealListing + ProductLibrary,
    E: CustomerListing + DocumentListing + ProductCatalogue + InvoiceSink,
    U: Cursors,
    P: Publisher,
    D: DeliveryLog,
    R: DriftReports,
{
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Failure> {
        let request: Request =
            serde_json::from_value(event.payload).map_err(|e| Failure::Request(e.to_string()))?;
        let unknown = request.unknown_flows();
        if !unknown.is_empty() {
            return Err(Failure::Request(format!("no flow is named {unknown:?}")));
        }
        let remaining = event
            .context
            .deadline()
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        let stop_at =
            tokio::time::Instant::now() + remaining.saturating_sub(self.config.stop_margin);
        let report = self.run(&request, stop_at).await;
        self.publish(&report).await;
        let errors: Vec<&str> = report
            .passes
            .iter()
            .filter_map(|p| p.error.as_deref())
            .collect();
        if !errors.is_empty() {
            return Err(Failure::Incomplete(errors.join("; ")));
        }
        serde_json::to_value(&report).map_err(|e| Failure::Incomplete(e.to_string()))
    }

    async fn run(&self, request: &Request, stop_at: tokio::time::Instant) -> DriftReport {
        let stores = Stores {
            links: &self.links,
            ledger: &self.ledger,
            cursors: &self.cursors,
            publisher: &self.publisher,
            deliveries: &self.deliveries,
        };
        let reconciler = Reconciler::configured(&self.config, &self.crm, &self.erp, stores);
        let quiet = |_: &Pass, _: bool| {};
        reconciler.run(request, stop_at, &quiet).await
    }

    /// The report to the logs (one JSON line), to metrics (flow dimension `reconciler`), and to
    /// DynamoDB.
    async fn publish(&self, report: &DriftReport) {
        // The report line is the run's record, like the metrics document: stdout.
        #[allow(clippy::print_stdout)]
        {
            println!("{}", report.log_line());
        }
        let metrics = Metrics::new(self.config.metrics_namespace.clone(), "reconciler");
        metrics.add(Metric::DriftFound, report.drift());
        metrics.add(
            Metric::Repaired,
            report.repairs_enqueued + report.repairs_written,
        );
        metrics.add(Metric::StuckResolved, report.stuck_resolved);
        metrics.flush();
        if !report.dry_run
            && let Err(e) = self.reports.save(report).await
        {
            tracing::error!(error = %e, "could not save the drift report");
        }
    }
}
