//! The polling fallback of webhooks: list what a system wrote since a cursor, put one change
//! event per record on the flow's queue, and move the cursor past what the queue accepted. A
//! polled change carries the same source, record and time as the webhook's notice of it, so both
//! give the same business key and the ledger applies the change once.

use crate::domain::{ChangeEvent, Timestamp};
use crate::error::ConnectorError;
use crate::ports::{Cursors, OutboundMessage, Publisher, Written};
use std::future::Future;
use std::time::Duration;

/// Records listed per call, and sent to SQS ten at a time.
pub const PAGE: usize = 100;

/// One poller: where its cursor is kept, where its events go, how far back a first poll looks,
/// and when it must stop (the next schedule goes on from the cursor).
#[derive(Debug)]
pub struct Poll<'a, C, P> {
    pub cursors: &'a C,
    pub publisher: &'a P,
    /// The cursor's name (`customers#odoo`).
    pub cursor: &'a str,
    pub queue_url: &'a str,
    pub lookback: Duration,
    pub stop_at: tokio::time::Instant,
}

#[derive(Debug, thiserror::Error)]
#[error("the poll failed: {0}")]
pub struct PollFailed(pub String);

impl<C: Cursors, P: Publisher> Poll<'_, C, P> {
    /// Pages through `list` (records written after a position, oldest first, at most `PAGE`)
    /// and enqueues `event` of each; returns how many were enqueued. A failure leaves the cursor
    /// at the last page the queue accepted.
    pub async fn run<L, Fut>(
        &self,
        list: L,
        event: impl Fn(&Written) -> ChangeEvent,
    ) -> Result<usize, PollFailed>
    where
        L: Fn(Written) -> Fut,
        Fut: Future<Output = Result<Vec<Written>, ConnectorError>>,
    {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            tracing::error!(cursor = self.cursor, error = %e, "{what}");
            PollFailed(format!("{what}: {e}"))
        };
        let mut after = match self.cursors.read(self.cursor).await {
            Ok(Some(cursor)) => cursor,
            Ok(None) => Written {
                id: "0".into(),
                at: Timestamp::from_epoch_millis(
                    Timestamp::now().epoch_millis() - self.lookback.as_millis() as i64,
                )
                .map_err(|e| failed("no start time", &e))?,
            },
            Err(e) => return Err(failed("could not read the cursor", &e)),
        };
        let mut enqueued = 0;
        while tokio::time::Instant::now() < self.stop_at {
            let page = list(after.clone())
                .await
                .map_err(|e| failed("could not list changed records", &e))?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            let messages: Vec<OutboundMessage> =
                page.iter().map(|w| change_message(&event(w))).collect();
            for chunk in messages.chunks(10) {
                self.publisher
                    .publish(self.queue_url, chunk)
                    .await
                    .map_err(|e| failed("could not enqueue changed records", &e))?;
            }
            self.cursors
                .advance(self.cursor, &last)
                .await
                .map_err(|e| failed("could not advance the cursor", &e))?;
            enqueued += page.len();
            after = last;
            if page.len() < PAGE {
                break;
            }
        }
        tracing::info!(cursor = self.cursor, enqueued, at = %after.at.format_naive_utc(), "poll done");
        Ok(enqueued)
    }
}

/// A change event as a queue message, with the attributes operators filter dead letters by.
pub fn change_message(event: &ChangeEvent) -> OutboundMessage {
    OutboundMessage {
        body: serde_json::to_string(event).unwrap_or_default(),
        attributes: vec![
            ("puente-source".into(), event.source.clone()),
            (
                "puente-subscription-type".into(),
                event.subscription_type.clone(),
            ),
        ],
    }
}
