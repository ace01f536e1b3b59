//! customer-sync: mirrors customer changes between the CRM and the ERP, both ways. Invoked by
//! the customer queue (webhook notices from either system, through the receiver) and by a
//! schedule that polls the ERP for customers written since the last poll.

mod handler;

use handler::Worker;
use lambda_runtime::{Error, service_fn};
use shared::aws::cursors::DynamoCursors;
use shared::aws::customer_links::DynamoCustomerLinks;
use shared::aws::ledger::DynamoLedger;
use shared::aws::queue::{SqsPublisher, SqsRedelivery};
use shared::config::{CustomerSyncConfig, Env};
use shared::ports::CustomerSide;
use shared::systems::Systems;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::from_process();
    let config = CustomerSyncConfig::from_env(&env)?;
    let aws = shared::aws::sdk_config(&env).await?;
    let Systems { crm, erp } = config.connection().open(&aws, &env).await?;
    let worker = Worker {
        ledger: DynamoLedger::new(&aws, &config.table, config.ledger_retention),
        links: DynamoCustomerLinks::new(
            &aws,
            &config.table,
            CustomerSide::system(&crm),
            CustomerSide::system(&erp),
        ),
        crm,
        erp,
        redelivery: SqsRedelivery::new(&aws, &config.queue_url, &config.dead_letter_url),
        cursors: DynamoCursors::new(&aws, &config.table),
        publisher: SqsPublisher::new(&aws),
        config,
    };
    lambda_runtime::run(service_fn(|event| async {
        worker.handle(event).await.map_err(Error::from)
    }))
    .await
}
