//! puente's AWS resources on the local moto server, created under the same names the SAM
//! template gives them (`{stack}-state`, `{stack}-customer`, `{stack}-customer-dlq`,
//! `{stack}/webhook`, `{stack}/connectors`), and the reads tests assert on.

use anyhow::Context;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use std::collections::HashMap;

/// SDK clients for the local endpoint.
#[derive(Debug, Clone)]
pub struct Aws {
    pub sdk: aws_config::SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Aws {
    /// Clients for `AWS_ENDPOINT_URL`, which must point at a local server.
    pub async fn from_env() -> anyhow::Result<Self> {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
        if !(endpoint.starts_with("http://127.") || endpoint.starts_with("http://localhost")) {
            anyhow::bail!(
                "AWS_ENDPOINT_URL must point at a local moto server (it is {endpoint:?}); \
                 run the tests with scripts/test, which starts one"
            );
        }
        let sdk = shared::aws::sdk_config(&shared::config::Env::from_process()).await?;
        Ok(Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            sdk,
        })
    }
}

/// Resource names, as the template builds them from the stack name.
#[derive(Debug, Clone)]
pub struct StackNames {
    pub stack: String,
    pub table: String,
    pub customer_queue: String,
    pub customer_dlq: String,
    pub invoicing_queue: String,
    pub invoicing_dlq: String,
    pub payments_queue: String,
    pub payments_dlq: String,
    pub webhook_secret: String,
    pub connector_secret: String,
}

impl StackNames {
    pub fn new(stack: &str) -> Self {
        Self {
            stack: stack.to_owned(),
            table: format!("{stack}-state"),
            customer_queue: format!("{stack}-customer"),
            customer_dlq: format!("{stack}-customer-dlq"),
            invoicing_queue: format!("{stack}-invoicing"),
            invoicing_dlq: format!("{stack}-invoicing-dlq"),
            payments_queue: format!("{stack}-payments"),
            payments_dlq: format!("{stack}-payments-dlq"),
            webhook_secret: format!("{stack}/webhook"),
            connector_secret: format!("{stack}/connectors"),
        }
    }
}

/// The created resources.
#[derive(Debug, Clone)]
pub struct Stack {
    pub names: StackNames,
    pub customer_queue_url: String,
    pub customer_queue_arn: String,
    pub customer_dlq_url: String,
    pub invoicing_queue_url: String,
    pub invoicing_queue_arn: String,
    pub invoicing_dlq_url: String,
    pub payments_queue_url: String,
    pub payments_queue_arn: String,
    pub payments_dlq_url: String,
}

/// Queue settings; the template's production values are the defaults.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    pub visibility_timeout_s: u32,
    pub max_receive_count: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            visibility_timeout_s: 360,
            max_receive_count: 5,
        }
    }
}

/// A flow's queue and its dead-letter queue: (queue url, queue arn, dlq url).
async fn create_flow_queues(
    aws: &Aws,
    queue: &str,
    dlq: &str,
    settings: QueueSettings,
) -> anyhow::Result<(String, String, String)> {
    let dlq_url = create_queue(
        aws,
        dlq,
        &[(QueueAttributeName::MessageRetentionPeriod, "1209600".into())],
    )
    .await?;
    let dlq_arn = queue_arn(aws, &dlq_url).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": settings.max_receive_count,
    });
    let queue_url = create_queue(
        aws,
        queue,
        &[
            (
                QueueAttributeName::VisibilityTimeout,
                settings.visibility_timeout_s.to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
        ],
    )
    .await?;
    let queue_arn = queue_arn(aws, &queue_url).await?;
    Ok((queue_url, queue_arn, dlq_url))
}

/// Creates the stack's table, queues and secrets.
pub async fn provision(
    aws: &Aws,
    names: StackNames,
    queues: QueueSettings,
    webhook_secret: &serde_json::Value,
    connector_secret: &serde_json::Value,
) -> anyhow::Result<Stack> {
    create_table(aws, &names.table).await?;

    let (queue_url, queue_arn, dlq_url) =
        create_flow_queues(aws, &names.customer_queue, &names.customer_dlq, queues).await?;
    let (invoicing_url, invoicing_arn, invoicing_dlq_url) =
        create_flow_queues(aws, &names.invoicing_queue, &names.invoicing_dlq, queues).await?;
    let (payments_url, payments_arn, payments_dlq_url) =
        create_flow_queues(aws, &names.payments_queue, &names.payments_dlq, queues).await?;

    for (name, value) in [
        (&names.webhook_secret, webhook_secret),
        (&names.connector_secret, connector_secret),
    ] {
        aws.secrets
            .create_secret()
            .name(name)
            .secret_string(value.to_string())
            .send()
            .await
            .with_context(|| format!("create secret {name}"))?;
    }
    Ok(Stack {
        names,
        customer_queue_url: queue_url,
        customer_queue_arn: queue_arn,
        customer_dlq_url: dlq_url,
        invoicing_queue_url: invoicing_url,
        invoicing_queue_arn: invoicing_arn,
        invoicing_dlq_url,
        payments_queue_url: payments_url,
        payments_queue_arn: payments_arn,
        payments_dlq_url,
    })
}

/// The state table, as the template defines it (pk/sk strings, on-demand, TTL `expires_at`).
pub async fn create_table(aws: &Aws, table: &str) -> anyhow::Result<()> {
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    aws.dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .send()
        .await
        .context("create table")?;
    aws.dynamodb
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()?,
        )
        .send()
        .await
        .context("enable TTL")?;

    Ok(())
}

async fn create_queue(
    aws: &Aws,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> anyhow::Result<String> {
    let mut request = aws.sqs.create_queue().queue_name(name);
    for (k, v) in attributes {
        request = request.attributes(k.clone(), v);
    }
    let out = request
        .send()
        .await
        .with_context(|| format!("create queue {name}"))?;
    out.queue_url()
        .map(str::to_owned)
        .context("queue has no URL")
}

async fn queue_arn(aws: &Aws, url: &str) -> anyhow::Result<String> {
    let out = aws
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .context("queue has no ARN")
}

/// Messages in a queue: visible, and in flight (received or delayed, not yet deleted).
pub async fn queue_depth(aws: &Aws, url: &str) -> anyhow::Result<(u64, u64)> {
    let out = aws
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?;
    let attrs = out.attributes().cloned().unwrap_or_default();
    let count =
        |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok((
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}

/// A message read from a queue without consuming it.
#[derive(Debug, Clone)]
pub struct Peeked {
    pub body: String,
    pub attributes: HashMap<String, String>,
}

/// Reads up to 10 messages and makes them visible again at once.
pub async fn peek(aws: &Aws, url: &str) -> anyhow::Result<Vec<Peeked>> {
    let out = aws
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .message_attribute_names("All")
        .send()
        .await?;
    Ok(out
        .messages()
        .iter()
        .map(|m| Peeked {
            body: m.body().unwrap_or_default().to_owned(),
            attributes: m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect())
}

/// Every item of the table, for assertions and for showing the state.
pub async fn items(aws: &Aws, table: &str) -> anyhow::Result<Vec<HashMap<String, AttributeValue>>> {
    let out = aws.dynamodb.scan().table_name(table).send().await?;
    Ok(out.items().to_vec())
}

/// A string (or number) attribute of an item, as text.
pub fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    match item.get(name)? {
        AttributeValue::S(s) | AttributeValue::N(s) => Some(s.clone()),
        _ => None,
    }
}
