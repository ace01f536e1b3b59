//! customer-sync: applies customer change events from the customer queue to the ERP.

mod handler;

use handler::Worker;
use lambda_runtime::{Error, service_fn};
use shared::aws::ledger::DynamoLedger;
use shared::aws::links::DynamoLinks;
use shared::aws::queue::SqsRedelivery;
use shared::config::{CustomerSyncConfig, Env, OdooAuth};
use shared::connectors::hubspot::HubSpot;
use shared::connectors::odoo::Odoo;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::from_process();
    let config = CustomerSyncConfig::from_env(&env)?;
    let aws = shared::aws::sdk_config().await;
    let secret = config
        .secrets
        .load(
            &aws,
            &env,
            &["hubspot_access_token", "odoo_api_key", "odoo_password"],
        )
        .await?;
    let id = config.secrets.describe();
    let http = shared::connectors::http::client(config.http_timeout)?;
    let worker = Worker {
        ledger: DynamoLedger::new(&aws, &config.table, config.ledger_retention),
        links: DynamoLinks::new(&aws, &config.table),
        crm: HubSpot::new(
            http.clone(),
            config.hubspot.clone(),
            secret.require(id, "hubspot_access_token")?,
        ),
        // Odoo refuses API keys for interactive logins, so the session mode logs in with the
        // user's password (`odoo_password`); the API-key mode uses `odoo_api_key`.
        erp: Odoo::new(
            http,
            config.odoo.clone(),
            match config.odoo_auth {
                OdooAuth::ApiKey => secret.require(id, "odoo_api_key")?,
                OdooAuth::Session => secret.require(id, "odoo_password")?,
            },
        )
        .with_auth(config.odoo_auth),
        redelivery: SqsRedelivery::new(&aws, &config.queue_url, &config.dead_letter_url),
        config,
    };
    lambda_runtime::run(service_fn(|event| async {
        worker.handle(event).await.map_err(Error::from)
    }))
    .await
}
