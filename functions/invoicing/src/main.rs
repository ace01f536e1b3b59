//! invoicing: turns won deals from the invoicing queue into exactly one ERP sales document each.

mod handler;

use handler::Worker;
use lambda_runtime::{Error, service_fn};
use shared::aws::ledger::DynamoLedger;
use shared::aws::links::DynamoLinks;
use shared::aws::queue::SqsRedelivery;
use shared::config::{CONNECTOR_SECRET_KEYS, Env, ErpDocument, InvoicingConfig};
use shared::connectors::hubspot::HubSpot;
use shared::connectors::odoo::Odoo;
use shared::connectors::odoo::wire::DocumentModel;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::from_process();
    let config = InvoicingConfig::from_env(&env)?;
    let aws = shared::aws::sdk_config().await;
    let secret = config
        .secrets
        .load(&aws, &env, &CONNECTOR_SECRET_KEYS)
        .await?;
    let id = config.secrets.describe();
    let http = shared::connectors::http::client(config.http_timeout)?;
    let hubspot = HubSpot::new(
        http.clone(),
        config.hubspot.clone(),
        secret.require(id, "hubspot_access_token")?,
    )
    .with_deals(config.deal_rules, config.deal_properties.clone());
    let odoo = Odoo::new(
        http,
        config.odoo.clone(),
        secret.require(id, config.odoo_auth.secret_key())?,
    )
    .with_auth(config.odoo_auth)
    .with_documents(
        match config.document {
            ErpDocument::Invoice => DocumentModel::Invoice,
            ErpDocument::SalesOrder => DocumentModel::SalesOrder,
        },
        config.odoo_tax_ids.clone(),
    );
    let worker = Worker {
        ledger: DynamoLedger::new(&aws, &config.table, config.ledger_retention),
        links: DynamoLinks::new(&aws, &config.table),
        crm: hubspot,
        erp: odoo,
        redelivery: SqsRedelivery::new(&aws, &config.queue_url, &config.dead_letter_url),
        config,
    };
    lambda_runtime::run(service_fn(|event| async {
        worker.handle(event).await.map_err(Error::from)
    }))
    .await
}
