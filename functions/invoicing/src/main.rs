//! invoicing: turns won deals from the invoicing queue into exactly one ERP sales document each.

mod handler;

use handler::Worker;
use lambda_runtime::{Error, service_fn};
use shared::aws::customer_links::DynamoCustomerLinks;
use shared::aws::ledger::DynamoLedger;
use shared::aws::links::DynamoLinks;
use shared::aws::queue::SqsRedelivery;
use shared::config::{Env, InvoicingConfig};
use shared::ports::CustomerSide;
use shared::systems::Systems;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::from_process();
    let config = InvoicingConfig::from_env(&env)?;
    let aws = shared::aws::sdk_config(&env).await?;
    let Systems { crm, erp } = config.connection().open(&aws, &env).await?;
    let customer_links = DynamoCustomerLinks::new(
        &aws,
        &config.table,
        CustomerSide::system(&crm),
        CustomerSide::system(&erp),
    );
    let hubspot = crm.with_deals(config.deal_rules, config.deal_properties.clone());
    let odoo = erp.with_documents(config.document.into(), config.odoo_tax_ids.clone());
    let worker = Worker {
        ledger: DynamoLedger::new(&aws, &config.table, config.ledger_retention),
        links: DynamoLinks::new(&aws, &config.table),
        customer_links,
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
