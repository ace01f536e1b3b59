//! payment-sync: shows ERP invoices' payment status on their CRM deals. Invoked by the payments
//! queue (Odoo's webhook notices, through the receiver) and by a schedule that polls Odoo for
//! invoices written since the last poll, the fallback for notices that never came.

mod handler;

use handler::Worker;
use lambda_runtime::{Error, service_fn};
use shared::aws::cursors::DynamoCursors;
use shared::aws::ledger::DynamoLedger;
use shared::aws::links::DynamoLinks;
use shared::aws::queue::{SqsPublisher, SqsRedelivery};
use shared::config::{Env, PaymentSyncConfig};
use shared::systems::Systems;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::from_process();
    let config = PaymentSyncConfig::from_env(&env)?;
    let aws = shared::aws::sdk_config(&env).await?;
    let Systems { crm, erp } = config.connection().open(&aws, &env).await?;
    let worker = Worker {
        ledger: DynamoLedger::new(&aws, &config.table, config.ledger_retention),
        links: DynamoLinks::new(&aws, &config.table),
        cursors: DynamoCursors::new(&aws, &config.table),
        crm: crm.with_deals(config.deal_rules, config.deal_properties.clone()),
        erp,
        redelivery: SqsRedelivery::new(&aws, &config.queue_url, &config.dead_letter_url),
        publisher: SqsPublisher::new(&aws),
        config,
    };
    lambda_runtime::run(service_fn(|event| async {
        worker.handle(event).await.map_err(Error::from)
    }))
    .await
}
