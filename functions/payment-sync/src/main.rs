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
use shared::config::{CONNECTOR_SECRET_KEYS, Env, PaymentSyncConfig};
use shared::connectors::hubspot::HubSpot;
use shared::connectors::odoo::Odoo;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::from_process();
    let config = PaymentSyncConfig::from_env(&env)?;
    let aws = shared::aws::sdk_config().await;
    let secret = config
        .secrets
        .load(&aws, &env, &CONNECTOR_SECRET_KEYS)
        .await?;
    let id = config.secrets.describe();
    let http = shared::connectors::http::client(config.http_timeout)?;
    let worker = Worker {
        ledger: DynamoLedger::new(&aws, &config.table, config.ledger_retention),
        links: DynamoLinks::new(&aws, &config.table),
        cursors: DynamoCursors::new(&aws, &config.table),
        crm: HubSpot::new(
            http.clone(),
            config.hubspot.clone(),
            secret.require(id, "hubspot_access_token")?,
        )
        .with_deals(config.deal_rules, config.deal_properties.clone()),
        erp: Odoo::new(
            http,
            config.odoo.clone(),
            secret.require(id, config.odoo_auth.secret_key())?,
        )
        .with_auth(config.odoo_auth),
        redelivery: SqsRedelivery::new(&aws, &config.queue_url, &config.dead_letter_url),
        publisher: SqsPublisher::new(&aws),
        config,
    };
    lambda_runtime::run(service_fn(|event| async {
        worker.handle(event).await.map_err(Error::from)
    }))
    .await
}
