//! The SQS partial-batch runner every worker uses.
//!
//! Records are processed concurrently and independently; a panic in one is that record's
//! failure. A retryable failure hides the message for a backoff computed from its receive count
//! and reports it in `batchItemFailures`; a rejection moves it to the dead-letter queue with the
//! reason as attributes and acknowledges it. Only failed message ids are reported. Records still
//! running when the invocation's own stop time comes are abandoned and reported for
//! redelivery, so Lambda never kills the invocation with the whole batch in it.

use crate::config::RetryPolicy;
use crate::domain::{ChangeEvent, Entity, FieldError};
use crate::error::{FailureClass, Handling, SyncError};
use crate::ports::{OutboundMessage, Redelivery};
use crate::telemetry::{Metric, Metrics, Redacted};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::FutureExt;
use futures_util::future::join_all;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use tracing::Instrument;

/// The message attributes a dead letter carries, so the operator command and the DLQ's readers
/// use the same names the runner writes.
pub mod attribute {
    pub const FLOW: &str = "puente-flow";
    pub const ERROR_CLASS: &str = "puente-error-class";
    pub const REASON: &str = "puente-reason";
    pub const FIELDS: &str = "puente-fields";
    pub const SOURCE_MESSAGE_ID: &str = "puente-source-message-id";
    pub const RECEIVE_COUNT: &str = "puente-receive-count";
    /// Set by `puente-ops dlq redrive`: an operator asks for another try of a change whose key
    /// FAILED. Without it, a FAILED key stays parked.
    pub const REDRIVE: &str = "puente-redrive";
    /// Everything the runner adds when it dead-letters; a redrive strips exactly these.
    pub const FAILURE: [&str; 6] = [
        FLOW,
        ERROR_CLASS,
        REASON,
        FIELDS,
        SOURCE_MESSAGE_ID,
        RECEIVE_COUNT,
    ];
}

/// The outcome a flow reports for a change that an earlier delivery already applied.
pub const DUPLICATE: &str = "duplicate";
/// The outcome for our own write coming back from the system we wrote to.
pub const ECHO_SUPPRESSED: &str = "echo_suppressed";
/// The outcome for a change older than the version of its record already applied.
pub const STALE: &str = "stale";
/// The outcome for a change of a record the circuit breaker (or a person) stopped syncing.
pub const QUARANTINED: &str = "quarantined";

/// The metric an outcome counts as.
fn outcome_metric(outcome: &str) -> Metric {
    match outcome {
        DUPLICATE | STALE => Metric::Duplicate,
        ECHO_SUPPRESSED => Metric::EchoSuppressed,
        // Counted by the flow when it quarantines; later changes only wait.
        QUARANTINED => Metric::Skipped,
        _ => Metric::Synced,
    }
}

/// Longest reason carried in a message attribute.
const MAX_ATTRIBUTE_CHARS: usize = 1000;

/// The parts of a `SyncError::Rejected` that travel with the dead letter.
struct Rejected<'e> {
    class: FailureClass,
    reason: &'e str,
    fields: &'e [FieldError],
}

/// What invoked a worker that is both queue-triggered and scheduled.
#[derive(Debug)]
pub enum Trigger {
    /// Its queue's event source mapping, with a batch of messages.
    Queue(SqsEvent),
    /// Anything else: its EventBridge schedule.
    Schedule,
}

impl Trigger {
    /// Reads the invocation's payload: an SQS event has `Records`; one that has them but does
    /// not parse is an error, never taken for the schedule.
    pub fn read(payload: serde_json::Value) -> Result<Trigger, String> {
        if payload.get("Records").is_none() {
            return Ok(Trigger::Schedule);
        }
        serde_json::from_value(payload)
            .map(Trigger::Queue)
            .map_err(|e| format!("an SQS event that does not parse: {e}"))
    }
}

/// A batch had a failed record without a message id, so it could not be reported alone.
#[derive(Debug, thiserror::Error)]
#[error("a failed SQS record has no message id; failing the whole batch so nothing is lost")]
pub struct UnreportableFailure;

#[derive(Debug)]
pub struct BatchRunner<'a, R> {
    pub flow: &'static str,
    pub redelivery: &'a R,
    pub retry: RetryPolicy,
    /// When to give up on records still running: the function's deadline less a margin for
    /// reporting them.
    pub stop_at: tokio::time::Instant,
    /// Counted per outcome and written once per invocation in the embedded metric format.
    pub metrics: &'a Metrics,
}

impl<R: Redelivery> BatchRunner<'_, R> {
    /// Runs `process` on every record and reports the ones to be redelivered.
    pub async fn run<'m, F, Fut>(
        &self,
        event: &'m SqsEvent,
        process: F,
    ) -> Result<SqsBatchResponse, UnreportableFailure>
    where
        F: Fn(&'m SqsMessage) -> Fut,
        Fut: Future<Output = Result<&'static str, SyncError>>,
    {
        let outcomes = join_all(event.records.iter().map(|message| {
            // One span per message; the flow records the business key and attempt on it.
            let span = tracing::info_span!(
                "message",
                flow = self.flow,
                message_id = message.message_id.as_deref().unwrap_or_default(),
                key = tracing::field::Empty,
                attempt = tracing::field::Empty,
                outcome = tracing::field::Empty,
            );
            let processing =
                AssertUnwindSafe(process(message).instrument(span.clone())).catch_unwind();
            async move {
                let result = match tokio::time::timeout_at(self.stop_at, processing).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(_)) => Err(SyncError::Transient {
                        reason: "processing panicked".into(),
                        source: None,
                    }),
                    // Its lease runs out on its own; the redelivery takes the key over.
                    Err(_) => Err(SyncError::Transient {
                        reason: "stopped before the function deadline".into(),
                        source: None,
                    }),
                };
                self.settle(message, result).instrument(span).await
            }
        }))
        .await;
        self.metrics.flush();

        let mut response = SqsBatchResponse::default();
        for (message, redeliver) in event.records.iter().zip(outcomes) {
            if !redeliver {
                continue;
            }
            match message.message_id.as_deref().filter(|id| !id.is_empty()) {
                Some(id) => {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id.to_owned();
                    response.batch_item_failures.push(failure);
                }
                None => return Err(UnreportableFailure),
            }
        }
        Ok(response)
    }

    /// Acts on one record's result; `true` when the message must be redelivered.
    async fn settle(&self, message: &SqsMessage, result: Result<&'static str, SyncError>) -> bool {
        let receive_count: u32 = message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let err = match result {
            Ok(outcome) => {
                tracing::Span::current().record("outcome", outcome);
                tracing::info!(outcome, "processed");
                self.metrics.count(outcome_metric(outcome));
                return false;
            }
            Err(err) => err,
        };
        let kind = err.kind();
        let handling = kind.handling();
        tracing::Span::current().record("outcome", kind.as_str());
        if handling == Handling::DeadLetter
            && let SyncError::Rejected {
                class,
                reason,
                fields,
            } = &err
        {
            let rejection = Rejected {
                class: *class,
                reason,
                fields,
            };
            return !self.dead_letter(message, rejection, receive_count).await;
        }
        let at_least = match handling {
            Handling::BackoffAfterRetryAfter | Handling::WaitForLease => err.retry_after(),
            Handling::Backoff | Handling::ReloginInline | Handling::DeadLetter => None,
        };
        let delay = self.retry.delay(receive_count, at_least);
        tracing::warn!(
            receive_count,
            kind = kind.as_str(),
            retry_in_ms = delay.as_millis() as u64,
            error = %Redacted(&err),
            "will retry"
        );
        self.metrics.count(match &err {
            SyncError::Throttled { .. } => Metric::Throttled,
            _ => Metric::Retried,
        });
        // Past the stop time the invocation must answer now: the queue's own visibility timeout
        // brings the message back, a little later than the backoff would have.
        if let Some(handle) = message.receipt_handle.as_deref()
            && tokio::time::Instant::now() < self.stop_at
        {
            let set = tokio::time::timeout_at(self.stop_at, self.redelivery.delay(handle, delay));
            match set.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %Redacted(&e), "could not set retry delay");
                }
                Err(_) => tracing::warn!("no time left to set the retry delay"),
            }
        }
        true
    }

    /// Moves a rejected message to the DLQ; `false` if that failed (then it is redelivered).
    async fn dead_letter(
        &self,
        message: &SqsMessage,
        rejected: Rejected<'_>,
        receive_count: u32,
    ) -> bool {
        let Rejected {
            class,
            reason,
            fields,
        } = rejected;
        let id = message.message_id.clone().unwrap_or_default();
        let shortened: String = reason.chars().take(MAX_ATTRIBUTE_CHARS).collect();
        let fields = serde_json::to_string(fields).unwrap_or_default();
        let dead = OutboundMessage {
            body: message.body.clone().unwrap_or_default(),
            attributes: vec![
                (attribute::FLOW.into(), self.flow.into()),
                (attribute::ERROR_CLASS.into(), class.as_str().into()),
                (attribute::REASON.into(), shortened),
                (
                    attribute::FIELDS.into(),
                    if fields == "[]" {
                        String::new()
                    } else {
                        fields
                    },
                ),
                (attribute::SOURCE_MESSAGE_ID.into(), id),
                (attribute::RECEIVE_COUNT.into(), receive_count.to_string()),
            ],
        };
        match self.redelivery.dead_letter(&dead).await {
            Ok(()) => {
                tracing::error!(
                    error_class = class.as_str(),
                    reason = %Redacted(reason),
                    "rejected; moved to the dead-letter queue"
                );
                self.metrics.count(Metric::Rejected);
                self.metrics.count(Metric::DeadLettered);
                if class == FailureClass::Conflict {
                    self.metrics.count(Metric::Conflict);
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %Redacted(&e), "dead-lettering failed; will retry");
                self.metrics.count(Metric::Rejected);
                false
            }
        }
    }
}

/// Time kept at the end of an invocation to report the records that did not finish.
const REPORTING_MARGIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The time one invocation gives its batch.
#[derive(Debug, Clone, Copy)]
pub struct Invocation {
    /// How long a claim (and a record lock) lasts: what remains of the invocation plus a
    /// margin, so that if Lambda kills us at the deadline the key frees itself shortly after
    /// and a redelivery can take it over.
    pub lease: std::time::Duration,
    /// When the runner stops taking records and hands the rest back.
    pub stop_at: tokio::time::Instant,
}

impl Invocation {
    /// The window of an invocation ending at `deadline` (the Lambda context's).
    pub fn until(deadline: std::time::SystemTime, lease_margin: std::time::Duration) -> Self {
        let remaining = deadline
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        Self {
            lease: remaining + lease_margin,
            stop_at: tokio::time::Instant::now() + remaining.saturating_sub(REPORTING_MARGIN),
        }
    }
}

/// Whether an operator redrove this message (`puente-ops dlq redrive` marks it): only then
/// may a key that failed for good be tried again.
pub fn redriven(message: &SqsMessage) -> bool {
    message
        .message_attributes
        .get(attribute::REDRIVE)
        .and_then(|value| value.string_value.as_deref())
        .is_some_and(|value| !value.is_empty())
}

/// The message body as a change event of `entity`, the only kind the `queue` carries; anything
/// else is poison.
pub fn decode_change(
    message: &SqsMessage,
    entity: Entity,
    queue: &str,
) -> Result<ChangeEvent, SyncError> {
    let body = message.body.as_deref().unwrap_or_default();
    let change: ChangeEvent = serde_json::from_str(body).map_err(|e| {
        SyncError::rejected(
            FailureClass::Poison,
            format!("body is not a change event: {e}"),
        )
    })?;
    if change.entity != entity {
        return Err(SyncError::rejected(
            FailureClass::Poison,
            format!("{:?} event on the {queue} queue", change.entity),
        ));
    }
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FieldError;
    use crate::error::{FailureClass, StoreError};
    use std::sync::Mutex;
    use std::time::Duration;

    #[derive(Default)]
    struct FakeQueue {
        delayed: Mutex<Vec<(String, Duration)>>,
        dead: Mutex<Vec<OutboundMessage>>,
        dlq_down: bool,
    }

    impl Redelivery for FakeQueue {
        async fn delay(&self, handle: &str, delay: Duration) -> Result<(), StoreError> {
            self.delayed
                .lock()
                .expect("lock")
                .push((handle.into(), delay));
            Ok(())
        }
        async fn dead_letter(&self, message: &OutboundMessage) -> Result<(), StoreError> {
            if self.dlq_down {
                return Err(StoreError::Unavailable {
                    service: "sqs",
                    detail: "down".into(),
                    source: None,
                });
            }
            self.dead.lock().expect("lock").push(message.clone());
            Ok(())
        }
    }

    fn message(id: Option<&str>, body: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = id.map(Into::into);
        m.receipt_handle = id.map(|i| format!("rh-{i}"));
        m.body = Some(body.into());
        m.attributes
            .insert("ApproximateReceiveCount".into(), "2".into());
        m
    }

    fn batch(messages: Vec<SqsMessage>) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = messages;
        event
    }

    async fn run(queue: &FakeQueue, event: &SqsEvent) -> Result<Vec<String>, UnreportableFailure> {
        // Far enough that a loaded machine never reaches it, except in the test about it.
        run_until(queue, event, Duration::from_secs(30)).await
    }

    async fn run_until(
        queue: &FakeQueue,
        event: &SqsEvent,
        stop_after: Duration,
    ) -> Result<Vec<String>, UnreportableFailure> {
        let metrics = Metrics::new("puente-test", "customer");
        let runner = BatchRunner {
            metrics: &metrics,
            flow: "customer",
            redelivery: queue,
            retry: RetryPolicy {
                base: Duration::from_secs(10),
                max: Duration::from_secs(900),
            },
            stop_at: tokio::time::Instant::now() + stop_after,
        };
        let response = runner
            .run(event, |m| async move {
                match m.body.as_deref() {
                    Some("ok") => Ok("created"),
                    Some("retry") => Err(SyncError::Transient {
                        reason: "502".into(),
                        source: None,
                    }),
                    Some("busy") => Err(SyncError::Busy {
                        retry_after: Duration::from_secs(300),
                    }),
                    Some("panic") => panic!("boom"),
                    Some("slow") => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        Ok("created")
                    }
                    _ => Err(SyncError::Rejected {
                        class: FailureClass::Invalid,
                        reason: "tax_id: check digit does not match".into(),
                        fields: vec![FieldError::new("tax_id", "check digit does not match")],
                    }),
                }
            })
            .await?;
        Ok(response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect())
    }

    #[tokio::test]
    async fn only_retryable_records_are_reported() {
        let queue = FakeQueue::default();
        let event = batch(vec![
            message(Some("a"), "ok"),
            message(Some("b"), "retry"),
            message(Some("c"), "invalid"),
            message(Some("d"), "panic"),
        ]);
        assert_eq!(run(&queue, &event).await.expect("reported"), ["b", "d"]);
        let delayed = queue.delayed.lock().expect("lock");
        assert_eq!(delayed.len(), 2);
        // Second receive: between 10 and 20 seconds.
        assert!(
            delayed
                .iter()
                .all(|(_, d)| (10..=20).contains(&d.as_secs())),
            "{delayed:?}"
        );
    }

    #[tokio::test]
    async fn records_still_running_at_the_stop_time_are_reported_for_redelivery() {
        let queue = FakeQueue::default();
        let event = batch(vec![message(Some("a"), "ok"), message(Some("s"), "slow")]);
        let reported = run_until(&queue, &event, Duration::from_millis(500)).await;
        assert_eq!(reported.expect("reported"), ["s"]);
        // No SQS call after the stop time: the visibility timeout brings it back.
        assert!(queue.delayed.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn a_rejection_is_dead_lettered_with_its_reasons() {
        let queue = FakeQueue::default();
        let event = batch(vec![message(Some("c"), "invalid")]);
        assert!(run(&queue, &event).await.expect("reported").is_empty());
        let dead = queue.dead.lock().expect("lock");
        let attrs: std::collections::HashMap<_, _> = dead[0].attributes.iter().cloned().collect();
        assert_eq!(dead[0].body, "invalid");
        assert_eq!(attrs["puente-error-class"], "invalid");
        assert_eq!(
            attrs["puente-fields"],
            r#"[{"field":"tax_id","reason":"check digit does not match"}]"#
        );
        assert_eq!(attrs["puente-source-message-id"], "c");
    }

    #[tokio::test]
    async fn a_rejection_that_cannot_be_dead_lettered_is_retried() {
        let queue = FakeQueue {
            dlq_down: true,
            ..FakeQueue::default()
        };
        let event = batch(vec![message(Some("c"), "invalid")]);
        assert_eq!(run(&queue, &event).await.expect("reported"), ["c"]);
    }

    #[tokio::test]
    async fn a_busy_key_waits_at_least_for_the_lease() {
        let queue = FakeQueue::default();
        let event = batch(vec![message(Some("e"), "busy")]);
        assert_eq!(run(&queue, &event).await.expect("reported"), ["e"]);
        assert!(queue.delayed.lock().expect("lock")[0].1 >= Duration::from_secs(300));
    }

    #[tokio::test]
    async fn a_failed_record_without_an_id_fails_the_batch() {
        let queue = FakeQueue::default();
        let event = batch(vec![message(Some("a"), "ok"), message(None, "retry")]);
        assert!(run(&queue, &event).await.is_err());
    }
}
