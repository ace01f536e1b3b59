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
use shared::config::{CONNECTOR_SECRET_KEYS, CustomerSyncConfig, Env};
use shared::connectors::hubspot::HubSpot;
use shared::connectors::odoo::Odoo;
use shared::ports::CustomerSide;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::from_process();
    let config = CustomerSyncConfig::from_env(&env)?;
    let aws = shared::aws::sdk_config().await;
    let secret = config
        .secrets
        .load(&aws, &env, &CONNECTOR_SECRET_KEYS)
        .await?;
    let id = config.secrets.describe();
    let http = shared::connectors::http::client(config.http_timeout)?;
    let crm = HubSpot::new(
        http.clone(),
        config.hubspot.clone(),
        secret.require(id, "hubspot_access_token")?,
    );
    let erp = Odoo::new(
        http,
        config.odoo.clone(),
        secret.require(id, config.odoo_auth.secret_key())?,
    )
    .with_auth(config.odoo_auth);
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
