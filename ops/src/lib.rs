//! puente-ops: what an operator does with a flow's dead letters. Lists them without hiding them
//! from anyone (visibility 0), shows one with its body, and redrives them to the flow's queue by
//! receive -> send -> delete, rate-limited, so it works on AWS and on moto alike (moto has no
//! `StartMessageMoveTask`).
//! The `failures` module lists the ledger's failure records: the keys that need a person. The
//! `customers` module lists the quarantined customers and the notices for people, and releases
//! a quarantined customer. The `reconcile` module runs the reconciler on demand and lists its
//! drift reports.

pub mod customers;
pub mod failures;
pub mod reconcile;

pub use customers::{
    CustomerQuery, Customers, Notice, QuarantinedCustomer, Release, Released, customers, release,
};
pub use failures::{FailureQuery, FailureRecord, failures};
pub use reconcile::{ReconcileOptions, reconcile, reports};

use anyhow::Context;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use shared::lambda::sqs_batch::attribute;
/// The attributes the SQS batch runner adds when it dead-letters a rejection; a redrive strips
/// them (and only them: `puente-source`, `puente-event-id`, ... are routing, not failure).
pub use shared::lambda::sqs_batch::attribute::FAILURE as FAILURE_ATTRIBUTES;

/// SQS returns at most 10 messages per receive.
const RECEIVE_BATCH: i32 = 10;
/// Receives in a row that bring no unseen message before a scan with visibility 0 gives up.
const STALE_ROUNDS: u32 = 3;
/// How long a redrive hides a message between its receive and its delete, on top of the time
/// the rate limit spends on its batch.
const REDRIVE_VISIBILITY_S: i32 = 30;
/// SQS's longest visibility timeout is 12 hours; the pacing part stays well below it.
const MAX_VISIBILITY_S: f64 = 11.0 * 60.0 * 60.0;

/// Which deployment and flow the command acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub stack: String,
    pub flow: String,
}

impl Default for Target {
    fn default() -> Self {
        Self {
            stack: "puente".into(),
            flow: "customer".into(),
        }
    }
}

impl Target {
    /// The flow's queue name, as the template builds it.
    pub fn queue_name(&self) -> String {
        format!("{}-{}", self.stack, self.flow)
    }

    /// The flow's dead-letter queue name, as the template builds it.
    pub fn dlq_name(&self) -> String {
        format!("{}-{}-dlq", self.stack, self.flow)
    }
}

/// One dead letter as `dlq list` prints it: no body, which may hold personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterSummary {
    pub message_id: String,
    pub flow: String,
    /// `None` for a message that exhausted `maxReceiveCount` and came through the redrive policy.
    pub error_class: Option<String>,
    pub receive_count: Option<String>,
    /// First line of `puente-reason`.
    pub reason: Option<String>,
}

impl fmt::Display for DeadLetterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = self.error_class.as_deref().unwrap_or("-");
        let count = self.receive_count.as_deref().unwrap_or("-");
        let reason = self
            .reason
            .as_deref()
            .unwrap_or("(no puente attributes: exhausted maxReceiveCount)");
        write!(
            f,
            "{}  flow={}  class={}  receives={}  {}",
            self.message_id, self.flow, class, count, reason
        )
    }
}

/// One dead letter with everything it carries, for `dlq show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    /// Message attributes as text (binary values are shown by length).
    pub attributes: BTreeMap<String, String>,
    pub body: String,
}

impl fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "message id: {}", self.message_id)?;
        writeln!(f, "attributes:")?;
        for (name, value) in &self.attributes {
            writeln!(f, "  {name}: {value}")?;
        }
        writeln!(f, "body:")?;
        write!(f, "{}", self.body)
    }
}

/// What a redrive should do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RedriveOptions {
    /// Stop after this many messages (moved or failed).
    pub max: usize,
    /// Messages per second, at most.
    pub rate: f64,
    /// Count what would move; send and delete nothing.
    pub dry_run: bool,
}

impl Default for RedriveOptions {
    fn default() -> Self {
        Self {
            max: 100,
            rate: 10.0,
            dry_run: false,
        }
    }
}

/// The outcome of a redrive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveSummary {
    /// Sent to the flow's queue and deleted from the DLQ (in a dry run: would be).
    pub moved: usize,
    /// Not sent; still in the DLQ, visible again after the receive's visibility timeout.
    pub failed: usize,
    /// Sent, but the delete failed: the message is in both queues and will be redriven again
    /// later, which is safe (workers are idempotent by business key).
    pub not_deleted: usize,
    pub dry_run: bool,
}

impl fmt::Display for RedriveSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            return write!(f, "dry run: would move {} (nothing sent)", self.moved);
        }
        write!(f, "moved {}, failed {}", self.moved, self.failed)?;
        if self.not_deleted > 0 {
            write!(
                f,
                ", sent but not deleted from the DLQ {} (they will be redelivered again)",
                self.not_deleted
            )?;
        }
        Ok(())
    }
}

/// A flow's queue and dead-letter queue, resolved by name.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    sqs: Client,
    flow: String,
    queue_url: String,
    dlq_url: String,
}

impl DeadLetters {
    /// Resolves the flow's queues with `GetQueueUrl`.
    pub async fn connect(sdk: &aws_config::SdkConfig, target: &Target) -> anyhow::Result<Self> {
        let sqs = Client::new(sdk);
        let queue_url = resolve_queue(&sqs, &target.queue_name()).await?;
        let dlq_url = resolve_queue(&sqs, &target.dlq_name()).await?;
        Ok(Self {
            sqs,
            flow: target.flow.clone(),
            queue_url,
            dlq_url,
        })
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    pub fn dlq_url(&self) -> &str {
        &self.dlq_url
    }

    /// Up to `max` dead letters, read with visibility 0. SQS samples its servers on each
    /// receive, so on AWS the list may be partial.
    pub async fn list(&self, max: usize) -> anyhow::Result<Vec<DeadLetterSummary>> {
        let messages = self.scan(max, |_| false).await?;
        Ok(messages.iter().map(|m| self.summary(m)).collect())
    }

    /// The dead letter with this message id, looking at up to `bound` messages.
    pub async fn show(&self, message_id: &str, bound: usize) -> anyhow::Result<Option<DeadLetter>> {
        let messages = self
            .scan(bound, |m| m.message_id() == Some(message_id))
            .await?;
        Ok(messages
            .iter()
            .find(|m| m.message_id() == Some(message_id))
            .map(|m| DeadLetter {
                message_id: message_id.to_owned(),
                attributes: attribute_text(m),
                body: m.body().unwrap_or_default().to_owned(),
            }))
    }

    /// Moves up to `options.max` dead letters back to the flow's queue: receive, send with the
    /// same body and the original attributes, then delete. Never deletes before the send
    /// succeeded; a crash between the two duplicates a message, which workers tolerate.
    pub async fn redrive(&self, options: RedriveOptions) -> anyhow::Result<RedriveSummary> {
        anyhow::ensure!(
            options.rate.is_finite() && options.rate > 0.0,
            "--rate must be a positive number"
        );
        if options.dry_run {
            let would = self.scan(options.max, |_| false).await?;
            return Ok(RedriveSummary {
                moved: would.len(),
                dry_run: true,
                ..RedriveSummary::default()
            });
        }
        let spacing = Duration::from_secs_f64(1.0 / options.rate);
        let mut summary = RedriveSummary::default();
        let mut next_slot = tokio::time::Instant::now();
        while summary.moved + summary.failed + summary.not_deleted < options.max {
            let remaining = options.max - (summary.moved + summary.failed + summary.not_deleted);
            let batch = RECEIVE_BATCH.min(i32::try_from(remaining).unwrap_or(RECEIVE_BATCH));
            // Hidden long enough for the whole batch at the rate, so no message of it comes back
            // (and is moved twice) before its delete.
            let pacing = (f64::from(batch) / options.rate)
                .ceil()
                .min(MAX_VISIBILITY_S);
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(batch)
                .visibility_timeout(REDRIVE_VISIBILITY_S + pacing as i32)
                .wait_time_seconds(1)
                .message_attribute_names("All")
                .send()
                .await
                .context("receive from the dead-letter queue")?;
            let messages = out.messages();
            if messages.is_empty() {
                break;
            }
            for message in messages {
                tokio::time::sleep_until(next_slot).await;
                next_slot = tokio::time::Instant::now() + spacing;
                match self.move_one(message).await {
                    Moved::Yes => summary.moved += 1,
                    Moved::SendFailed => summary.failed += 1,
                    Moved::DeleteFailed => summary.not_deleted += 1,
                }
            }
        }
        Ok(summary)
    }

    async fn move_one(&self, message: &Message) -> Moved {
        let id = message.message_id().unwrap_or_default();
        let mut attributes: HashMap<String, MessageAttributeValue> = message
            .message_attributes()
            .map(|a| {
                a.iter()
                    .filter(|(name, _)| !FAILURE_ATTRIBUTES.contains(&name.as_str()))
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        // Tells the worker an operator asked for this retry, so a key that FAILED may be claimed
        // again; a plain duplicate delivery of a failed change stays parked.
        if let Ok(redrive) = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("operator")
            .build()
        {
            attributes.insert(attribute::REDRIVE.to_owned(), redrive);
        }
        let sent = self
            .sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message.body().unwrap_or_default())
            .set_message_attributes((!attributes.is_empty()).then_some(attributes))
            .send()
            .await;
        if let Err(e) = sent {
            // Left in the DLQ; it becomes visible again when the receive's timeout ends.
            report_failure(id, "send", &e);
            return Moved::SendFailed;
        }
        let Some(handle) = message.receipt_handle() else {
            return Moved::DeleteFailed;
        };
        match self
            .sqs
            .delete_message()
            .queue_url(&self.dlq_url)
            .receipt_handle(handle)
            .send()
            .await
        {
            Ok(_) => Moved::Yes,
            Err(e) => {
                report_failure(id, "delete", &e);
                Moved::DeleteFailed
            }
        }
    }

    /// Receives with visibility 0 until `max` distinct messages are seen, `stop` matches one, or
    /// several receives in a row bring nothing new.
    async fn scan(
        &self,
        max: usize,
        stop: impl Fn(&Message) -> bool,
    ) -> anyhow::Result<Vec<Message>> {
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        let mut stale = 0;
        while found.len() < max && stale < STALE_ROUNDS {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(RECEIVE_BATCH)
                .visibility_timeout(0)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .context("receive from the dead-letter queue")?;
            let mut fresh = false;
            for message in out.messages() {
                let Some(id) = message.message_id() else {
                    continue;
                };
                if found.len() >= max || !seen.insert(id.to_owned()) {
                    continue;
                }
                fresh = true;
                let matched = stop(message);
                found.push(message.clone());
                if matched {
                    return Ok(found);
                }
            }
            stale = if fresh { 0 } else { stale + 1 };
        }
        Ok(found)
    }

    fn summary(&self, message: &Message) -> DeadLetterSummary {
        let text = |name: &str| {
            message
                .message_attributes()
                .and_then(|a| a.get(name))
                .and_then(|v| v.string_value())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        DeadLetterSummary {
            message_id: message.message_id().unwrap_or_default().to_owned(),
            flow: text(attribute::FLOW).unwrap_or_else(|| self.flow.clone()),
            error_class: text(attribute::ERROR_CLASS),
            receive_count: text(attribute::RECEIVE_COUNT),
            reason: text(attribute::REASON)
                .map(|r| r.lines().next().unwrap_or_default().to_owned()),
        }
    }
}

enum Moved {
    Yes,
    SendFailed,
    DeleteFailed,
}

/// Reports a failed step on stderr (no body, no attributes: they may hold personal data).
fn report_failure(message_id: &str, step: &str, error: &dyn std::error::Error) {
    eprintln!("{message_id}: {step} failed: {error}");
}

pub(crate) async fn resolve_queue(sqs: &Client, name: &str) -> anyhow::Result<String> {
    let out = sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .with_context(|| format!("find queue {name}"))?;
    out.queue_url()
        .map(str::to_owned)
        .with_context(|| format!("queue {name} has no URL"))
}

fn attribute_text(message: &Message) -> BTreeMap<String, String> {
    message
        .message_attributes()
        .map(|a| {
            a.iter()
                .map(|(name, value)| {
                    let text = match (value.string_value(), value.binary_value()) {
                        (Some(s), _) => s.to_owned(),
                        (None, Some(b)) => format!("<{} bytes of binary>", b.as_ref().len()),
                        (None, None) => String::new(),
                    };
                    (name.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_follow_the_template() {
        let target = Target {
            stack: "prod".into(),
            flow: "customer".into(),
        };
        assert_eq!(target.queue_name(), "prod-customer");
        assert_eq!(target.dlq_name(), "prod-customer-dlq");
    }

    #[test]
    fn a_summary_line_never_carries_the_body_and_marks_redrive_policy_arrivals() {
        let line = DeadLetterSummary {
            message_id: "m-1".into(),
            flow: "customer".into(),
            error_class: None,
            receive_count: None,
            reason: None,
        }
        .to_string();
        assert!(line.contains("class=-"), "{line}");
        assert!(line.contains("exhausted maxReceiveCount"), "{line}");
    }
}
