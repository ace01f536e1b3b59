//! SQS: publishing events in batches, delaying a retry, dead-lettering with reasons.

use crate::error::StoreError;
use crate::ports::{OutboundMessage, Publisher, Redelivery};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use std::collections::HashMap;
use std::time::Duration;

/// SQS accepts at most 10 entries per `SendMessageBatch`.
const BATCH: usize = 10;
/// SQS's longest visibility timeout (12 hours).
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

fn attributes(
    pairs: &[(String, String)],
) -> Result<HashMap<String, MessageAttributeValue>, StoreError> {
    pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map(|v| (name.clone(), v))
                .map_err(|e| StoreError::unavailable("sqs", e))
        })
        .collect()
}

/// Publishes events to any queue by URL.
#[derive(Debug, Clone)]
pub struct SqsPublisher {
    client: Client,
}

impl SqsPublisher {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::new(sdk),
        }
    }

    /// Sends one batch; returns the entries SQS did not accept.
    async fn send_chunk(
        &self,
        queue_url: &str,
        chunk: &[(usize, &OutboundMessage)],
    ) -> Result<Vec<usize>, StoreError> {
        let mut request = self.client.send_message_batch().queue_url(queue_url);
        for (index, message) in chunk {
            let entry = SendMessageBatchRequestEntry::builder()
                .id(index.to_string())
                .message_body(&message.body)
                .set_message_attributes(Some(attributes(&message.attributes)?))
                .build()
                .map_err(|e| StoreError::unavailable("sqs", e))?;
            request = request.entries(entry);
        }
        let out = request
            .send()
            .await
            .map_err(|e| StoreError::unavailable("sqs", e))?;
        Ok(out
            .failed()
            .iter()
            .filter_map(|f| f.id().parse::<usize>().ok())
            .collect())
    }
}

impl Publisher for SqsPublisher {
    async fn publish(
        &self,
        queue_url: &str,
        messages: &[OutboundMessage],
    ) -> Result<(), StoreError> {
        let indexed: Vec<(usize, &OutboundMessage)> = messages.iter().enumerate().collect();
        for chunk in indexed.chunks(BATCH) {
            let mut pending: Vec<(usize, &OutboundMessage)> = chunk.to_vec();
            // One immediate retry of the entries SQS refused (usually throttling), then give up
            // and let the caller answer 5xx so the sender retries the whole delivery.
            for attempt in 0..2 {
                let failed = self.send_chunk(queue_url, &pending).await?;
                if failed.is_empty() {
                    break;
                }
                if attempt == 1 {
                    return Err(StoreError::Unavailable {
                        service: "sqs",
                        detail: format!(
                            "{} of {} messages were not accepted",
                            failed.len(),
                            messages.len()
                        ),
                        source: None,
                    });
                }
                pending.retain(|(index, _)| failed.contains(index));
            }
        }
        Ok(())
    }
}

/// Redelivery for one worker's queue and its dead-letter queue.
#[derive(Debug, Clone)]
pub struct SqsRedelivery {
    client: Client,
    queue_url: String,
    dead_letter_url: String,
}

impl SqsRedelivery {
    pub fn new(
        sdk: &aws_config::SdkConfig,
        queue_url: impl Into<String>,
        dead_letter_url: impl Into<String>,
    ) -> Self {
        Self {
            client: Client::new(sdk),
            queue_url: queue_url.into(),
            dead_letter_url: dead_letter_url.into(),
        }
    }
}

impl Redelivery for SqsRedelivery {
    async fn delay(&self, receipt_handle: &str, delay: Duration) -> Result<(), StoreError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(delay.min(MAX_VISIBILITY).as_secs_f64().ceil() as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::unavailable("sqs", e))
    }

    async fn dead_letter(&self, message: &OutboundMessage) -> Result<(), StoreError> {
        self.client
            .send_message()
            .queue_url(&self.dead_letter_url)
            .message_body(&message.body)
            .set_message_attributes(Some(attributes(&message.attributes)?))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::unavailable("sqs", e))
    }
}
