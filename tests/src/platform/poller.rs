//! The SQS event source mapping: receive a batch, invoke the function with an `SqsEvent`,
//! delete every message it did not report in `batchItemFailures`. When the invocation itself
//! fails (error or timeout) nothing is deleted and the whole batch comes back after its
//! visibility timeout, as with Lambda.

use super::runtime::Function;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Poller {
    pub sqs: Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub function: Arc<Function>,
    pub batch_size: i32,
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    pub received: usize,
    pub deleted: usize,
    /// Messages left for redelivery (reported failures, or the whole batch on an error).
    pub retried: usize,
    pub invoke_failed: bool,
}

impl Poller {
    /// One receive-invoke-delete cycle. `wait_seconds` is the long-poll time.
    pub async fn poll_once(&self, wait_seconds: i32) -> anyhow::Result<Poll> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await?;
        let messages = received.messages();
        if messages.is_empty() {
            return Ok(Poll::default());
        }
        let event =
            json!({ "Records": messages.iter().map(|m| self.record(m)).collect::<Vec<_>>() });
        let mut poll = Poll {
            received: messages.len(),
            ..Poll::default()
        };
        let answer = match self.function.invoke(event.to_string()).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(function = %self.function.spec.name, error = %e, "invocation failed; batch returns to the queue");
                poll.retried = messages.len();
                poll.invoke_failed = true;
                return Ok(poll);
            }
        };
        let failed: HashSet<String> = serde_json::from_slice::<Value>(&answer)
            .ok()
            .and_then(|v| v.get("batchItemFailures").cloned())
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|f| {
                f.get("itemIdentifier")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        let done: Vec<&Message> = messages
            .iter()
            .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
            .collect();
        poll.retried = messages.len() - done.len();
        if !done.is_empty() {
            let mut delete = self.sqs.delete_message_batch().queue_url(&self.queue_url);
            for (i, m) in done.iter().enumerate() {
                delete = delete.entries(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()?,
                );
            }
            delete.send().await?;
            poll.deleted = done.len();
        }
        Ok(poll)
    }

    /// One record of an `SqsEvent`, shaped as Lambda delivers it.
    fn record(&self, m: &Message) -> Value {
        let attributes: Map<String, Value> = m
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                    .collect()
            })
            .unwrap_or_default();
        let message_attributes: Map<String, Value> = m
            .message_attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            json!({
                                "stringValue": v.string_value(),
                                "stringListValues": [],
                                "binaryListValues": [],
                                "dataType": v.data_type(),
                            }),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "messageId": m.message_id(),
            "receiptHandle": m.receipt_handle(),
            "body": m.body(),
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": m.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": "us-east-1",
        })
    }
}
