//! reconciler: on its EventBridge schedules, compares both systems' records through the links,
//! enqueues a repair for each difference into the flow's own queue, and reports the drift.

mod handler;

use handler::Reconcile;
use lambda_runtime::{Error, service_fn};
use shared::aws::cursors::DynamoCursors;
use shared::aws::customer_links::DynamoCustomerLinks;
use shared::aws::deliveries::DynamoDeliveryLog;
use shared::aws::ledger::DynamoLedger;
use shared::aws::queue::SqsPublisher;
use shared::aws::reports::DynamoDriftReports;
use shared::config::{Env, ReconcilerConfig};
use shared::ports::CustomerSide;
use shared::systems::Systems;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::from_process();
    let config = ReconcilerConfig::from_env(&env)?;
    let aws = shared::aws::sdk_config(&env).await?;
    let Systems { crm, erp } = config.connection().open(&aws, &env).await?;
    // Stuck invoicing keys are probed for the document invoicing creates, and won deals are
    // compared with it; deals show their invoice under the configured properties.
    let erp = erp.with_documents(config.document.into(), Default::default());
    let crm = crm.with_deals(config.deal_rules, config.deal_properties.clone());
    let reconcile = Reconcile {
        ledger: DynamoLedger::new(&aws, &config.table, config.ledger_retention),
        links: DynamoCustomerLinks::new(
            &aws,
            &config.table,
            CustomerSide::system(&crm),
            CustomerSide::system(&erp),
        ),
        crm,
        erp,
        cursors: DynamoCursors::new(&aws, &config.table),
        publisher: SqsPublisher::new(&aws),
        deliveries: DynamoDeliveryLog::new(&aws, &config.table, config.repair_horizon).of_repairs(),
        reports: DynamoDriftReports::new(&aws, &config.table, config.report_retention),
        config,
    };
    lambda_runtime::run(service_fn(|event| async {
        reconcile.handle(event).await.map_err(Error::from)
    }))
    .await
}
