//! `reconcile`: one reconciler run on demand, in this process, with the same code and state as
//! the scheduled function (its watermarks, sweep checkpoints, remembered repairs and reports),
//! and `reports`: the latest drift reports the runs saved.
//!
//! The connectors' settings come from the same variables the function reads (`HUBSPOT_*`,
//! `ODOO_URL`, `ODOO_DB`, `ODOO_USERNAME`, `PUENTE_CUSTOMER_FIELD_OWNERS`, ...); the table, the
//! customer queue and the connector secret default to the stack's.

use crate::Target;
use anyhow::Context;
use shared::aws::cursors::DynamoCursors;
use shared::aws::customer_links::DynamoCustomerLinks;
use shared::aws::deliveries::DynamoDeliveryLog;
use shared::aws::ledger::DynamoLedger;
use shared::aws::queue::SqsPublisher;
use shared::aws::reports::DynamoDriftReports;
use shared::config::{Env, ReconcilerConfig};
use shared::flows::reconcile::report::{DriftReport, Mode, Pass};
use shared::flows::reconcile::{Reconciler, Request, Stores};
use shared::ports::{CustomerSide, DriftReports};
use shared::systems::Systems;

/// What `reconcile` is asked to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileOptions {
    /// The flows (empty: all).
    pub flows: Vec<String>,
    /// Also sweep every record (from the beginning, or from an unfinished sweep's checkpoint).
    pub full: bool,
    pub dry_run: bool,
    /// Pages to read at most; `None` reads until done.
    pub max_pages: Option<usize>,
}

/// The stack's names as defaults under whatever `env` sets.
fn environment(env: Env, stack: &str, queues: &[(&str, Option<String>)]) -> Env {
    let env = queues.iter().fold(env, |env, (name, url)| match url {
        Some(url) => env.with_default(name, url),
        None => env,
    });
    env.with_default("PUENTE_TABLE", &format!("{stack}-state"))
        .with_default("PUENTE_CONNECTOR_SECRET_ID", &format!("{stack}/connectors"))
}

/// One run with the connector settings in `env` (the process environment); `progress` hears of
/// every page read, and of each pass when it is over.
pub async fn reconcile(
    sdk: &aws_config::SdkConfig,
    env: Env,
    target: &Target,
    options: &ReconcileOptions,
    progress: &(dyn Fn(&Pass, bool) + Sync),
) -> anyhow::Result<DriftReport> {
    let request = Request {
        mode: if options.full {
            Mode::Full
        } else {
            Mode::Incremental
        },
        dry_run: options.dry_run,
        flows: options.flows.clone(),
    };
    let unknown = request.unknown_flows();
    anyhow::ensure!(
        unknown.is_empty(),
        "no flow named {unknown:?}; the reconciler knows {:?}",
        shared::flows::reconcile::FLOWS
    );
    // Each flow's queue as the template names it; the customer queue must exist, a stack
    // without the others has its stuck keys of those flows reported, not resolved.
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queue = |flow: &str| format!("{}-{flow}", target.stack);
    let queues = [
        (
            "PUENTE_CUSTOMER_QUEUE_URL",
            Some(crate::resolve_queue(&sqs, &queue("customer")).await?),
        ),
        (
            "PUENTE_INVOICING_QUEUE_URL",
            crate::resolve_queue(&sqs, &queue("invoicing")).await.ok(),
        ),
        (
            "PUENTE_PAYMENTS_QUEUE_URL",
            crate::resolve_queue(&sqs, &queue("payments")).await.ok(),
        ),
    ];
    let env = environment(env, &target.stack, &queues);
    let mut config = ReconcilerConfig::from_env(&env).context("configuration")?;
    config.paging.page_budget = options.max_pages.unwrap_or(usize::MAX);
    let Systems { crm, erp } = config
        .connection()
        .open(sdk, &env)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to HubSpot and Odoo: {e}"))?;
    let erp = erp.with_documents(config.document.into(), Default::default());
    let crm = crm.with_deals(config.deal_rules, config.deal_properties.clone());
    let ledger = DynamoLedger::new(sdk, &config.table, config.ledger_retention);
    let links = DynamoCustomerLinks::new(
        sdk,
        &config.table,
        CustomerSide::system(&crm),
        CustomerSide::system(&erp),
    );
    let cursors = DynamoCursors::new(sdk, &config.table);
    let publisher = SqsPublisher::new(sdk);
    let deliveries = DynamoDeliveryLog::new(sdk, &config.table, config.repair_horizon).of_repairs();
    let stores = Stores {
        links: &links,
        ledger: &ledger,
        cursors: &cursors,
        publisher: &publisher,
        deliveries: &deliveries,
    };
    let reconciler = Reconciler::configured(&config, &crm, &erp, stores);
    // No invocation deadline here: a day is "until done".
    let stop_at = tokio::time::Instant::now() + std::time::Duration::from_secs(24 * 3600);
    let report = reconciler.run(&request, stop_at, progress).await;
    if !report.dry_run {
        DynamoDriftReports::new(sdk, &config.table, config.report_retention)
            .save(&report)
            .await
            .context("save the drift report")?;
    }
    Ok(report)
}

/// The newest drift reports, at most `max`.
pub async fn reports(
    sdk: &aws_config::SdkConfig,
    target: &Target,
    max: usize,
) -> anyhow::Result<Vec<DriftReport>> {
    let table = format!("{}-state", target.stack);
    // Retention only matters when saving.
    let store = DynamoDriftReports::new(sdk, table, std::time::Duration::ZERO);
    Ok(store.latest(max).await?)
}
