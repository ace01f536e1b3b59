//! webhook-receiver: verifies, splits and routes incoming webhooks onto the flows' queues.

use lambda_http::{Error, service_fn};
use shared::aws::deliveries::DynamoDeliveryLog;
use shared::aws::queue::SqsPublisher;
use shared::config::{ConfigError, Env, ReceiverConfig};
use shared::connectors::hubspot::signature::SigningSecrets;
use shared::connectors::odoo::webhook::WebhookToken;
use webhook_receiver::handler::Receiver;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let env = Env::from_process();
    let config = ReceiverConfig::from_env(&env)?;
    let aws = shared::aws::sdk_config(&env).await?;
    let secret = config
        .secrets
        .load(
            &aws,
            &env,
            &[
                "hubspot_client_secret",
                "hubspot_client_secret_previous",
                "odoo_webhook_token",
            ],
        )
        .await?;
    let id = config.secrets.describe();
    let secrets = SigningSecrets::new(
        secret.require(id, "hubspot_client_secret")?,
        secret
            .optional("hubspot_client_secret_previous")
            .map(String::into_bytes),
    );
    // Without a token the Odoo route does not exist; a short one stops the start.
    let odoo_token = secret
        .optional("odoo_webhook_token")
        .map(WebhookToken::new)
        .transpose()
        .map_err(|detail| ConfigError::Secret {
            id: id.to_owned(),
            detail,
        })?;
    let receiver = Receiver {
        odoo_token,
        metrics: shared::telemetry::Metrics::new(
            config.metrics_namespace.clone(),
            shared::flows::sync_customer::FLOW,
        ),
        deliveries: config
            .delivery_log()
            .then(|| DynamoDeliveryLog::new(&aws, &config.table, config.delivery_horizon)),
        config,
        secrets,
        publisher: SqsPublisher::new(&aws),
    };
    lambda_http::run(service_fn(|request| receiver.handle(request))).await
}
