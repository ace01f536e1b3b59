//! The receiver's delivery log in DynamoDB: one small item per webhook event it enqueued
//! (`HOOK#{id}` / `HOOK`), expiring after the sender's retry horizon. The reconciler keeps the
//! repairs it enqueued the same way, under its own prefix (`REPAIR#{id}`). One `BatchGetItem` per
//! request finds replays; one `BatchWriteItem` per 25 events remembers what was enqueued.
//!
//! It is a first line, not the guarantee: two concurrent deliveries of one event can both pass
//! `seen` and both be enqueued, and the worker's ledger then applies the change once.

use crate::aws::epoch_seconds;
use crate::error::StoreError;
use crate::ports::DeliveryLog;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use futures_util::future::try_join_all;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// DynamoDB's limits per batch call.
const GET_BATCH: usize = 100;
const WRITE_BATCH: usize = 25;

#[derive(Debug, Clone)]
pub struct DynamoDeliveryLog {
    client: Client,
    table: String,
    /// How long a delivery is remembered (the sender's retry horizon plus a margin).
    horizon: Duration,
    /// The items' partition key prefix and sort key (`HOOK`, `REPAIR`).
    kind: &'static str,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn key(kind: &str, id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), s(&format!("{kind}#{id}"))),
        ("sk".to_owned(), s(kind)),
    ])
}

impl DynamoDeliveryLog {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>, horizon: Duration) -> Self {
        Self {
            client: Client::new(sdk),
            table: table.into(),
            horizon,
            kind: "HOOK",
        }
    }

    /// The same log for the reconciler's repairs (`REPAIR#{id}`).
    pub fn of_repairs(mut self) -> Self {
        self.kind = "REPAIR";
        self
    }

    async fn seen_batch(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let keys = KeysAndAttributes::builder()
            .set_keys(Some(ids.iter().map(|id| key(self.kind, id)).collect()))
            .projection_expression("pk")
            .build()
            .map_err(|e| StoreError::unavailable("dynamodb", e))?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys)
            .send()
            .await
            .map_err(|e| StoreError::unavailable("dynamodb", e))?;
        // Keys DynamoDB left unprocessed count as unseen: enqueuing a replay is safe (the ledger
        // applies it once), dropping a new event is not.
        let found = out
            .responses()
            .and_then(|tables| tables.get(&self.table))
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.get("pk")?.as_s().ok())
                    .filter_map(|pk| pk.strip_prefix(self.kind)?.strip_prefix('#'))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(found)
    }

    async fn remember_batch(&self, ids: &[String]) -> Result<(), StoreError> {
        let now = epoch_seconds();
        let expires = AttributeValue::N((now + self.horizon.as_secs() as i64).to_string());
        let writes = ids
            .iter()
            .map(|id| {
                let mut item = key(self.kind, id);
                item.insert("enqueued_at".into(), AttributeValue::N(now.to_string()));
                item.insert("expires_at".into(), expires.clone());
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| StoreError::unavailable("dynamodb", e))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut pending = HashMap::from([(self.table.clone(), writes)]);
        // One retry of what DynamoDB left unprocessed (throttling); after that the ledger is the
        // guard for the few left.
        for _ in 0..2 {
            let out = self
                .client
                .batch_write_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(|e| StoreError::unavailable("dynamodb", e))?;
            match out.unprocessed_items {
                Some(left) if left.values().any(|w| !w.is_empty()) => pending = left,
                _ => return Ok(()),
            }
        }
        Err(StoreError::Unavailable {
            service: "dynamodb",
            detail: "some deliveries could not be remembered".into(),
            source: None,
        })
    }
}

impl DeliveryLog for DynamoDeliveryLog {
    async fn seen(&self, ids: &[String]) -> Result<HashSet<String>, StoreError> {
        let batches = try_join_all(ids.chunks(GET_BATCH).map(|c| self.seen_batch(c))).await?;
        Ok(batches.into_iter().flatten().collect())
    }

    async fn remember(&self, ids: &[String]) -> Result<(), StoreError> {
        try_join_all(ids.chunks(WRITE_BATCH).map(|c| self.remember_batch(c))).await?;
        Ok(())
    }
}
