//! The idempotency ledger in DynamoDB: one item per business key (`IDEM#{key}` / `IDEM`).
//!
//! A claim is one conditional `PutItem` that succeeds when the key is new, FAILED (a redrive
//! asks for another try), or its holder's lease has run out; it writes a fresh random lease
//! token. The attempt number (previous item's `attempts` + 1) is written by the fenced update
//! that ends the attempt. Every later write is conditioned on that token, so an invocation that outlived its
//! lease can neither complete nor release its successor's claim.
//!
//! States: `IN_PROGRESS -> APPLIED(target_id) -> COMPLETED`, or `FAILED(reason)`.

use crate::aws::epoch_seconds;
use crate::error::StoreError;
use crate::ports::{Claim, Lease, Ledger};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;
use std::time::Duration;

pub const IN_PROGRESS: &str = "IN_PROGRESS";
pub const APPLIED: &str = "APPLIED";
pub const COMPLETED: &str = "COMPLETED";
pub const FAILED: &str = "FAILED";

/// Longest stored reason, so items stay small.
const MAX_REASON_CHARS: usize = 1000;

#[derive(Debug, Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
    /// How long completed and failed items are kept (TTL attribute `expires_at`).
    retention: Duration,
}

type Item = HashMap<String, AttributeValue>;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn pk(key: &str) -> String {
    format!("IDEM#{key}")
}

fn truncate(reason: &str) -> String {
    reason.chars().take(MAX_REASON_CHARS).collect()
}

impl DynamoLedger {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            client: Client::new(sdk),
            table: table.into(),
            retention,
        }
    }

    fn read_claim(key: &str, item: &Item) -> Result<Claim, StoreError> {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let number = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let malformed = |detail: &str| StoreError::Malformed {
            key: key.to_owned(),
            detail: detail.to_owned(),
        };
        let status = text("status").ok_or_else(|| malformed("no status"))?;
        match status.as_str() {
            COMPLETED => Ok(Claim::Completed {
                target_id: text("target_id"),
            }),
            IN_PROGRESS | APPLIED => {
                let until = number("lease_until").ok_or_else(|| malformed("no lease_until"))?;
                let remaining = (until - epoch_seconds()).max(1);
                Ok(Claim::Held {
                    remaining: Duration::from_secs(remaining as u64),
                })
            }
            other => Err(malformed(&format!("unexpected status {other}"))),
        }
    }

    /// One fenced update: `set` runs only while `lease` is still ours.
    async fn fenced_update(
        &self,
        lease: &Lease,
        set: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk(&lease.key)))
            .key("sk", s("IDEM"))
            .update_expression(set)
            .condition_expression("lease_token = :mine")
            .expression_attribute_values(":mine", s(&lease.token))
            .expression_attribute_values(":attempt", n(i64::from(lease.attempt)))
            .expression_attribute_values(":now", n(epoch_seconds()));
        // DynamoDB rejects names the expression does not use.
        if set.contains("#status") {
            request = request.expression_attribute_names("#status", "status");
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::LeaseLost {
                    key: lease.key.clone(),
                })
            }
            Err(e) => Err(StoreError::unavailable("dynamodb", e)),
        }
    }

    fn expires_at(&self) -> AttributeValue {
        n(epoch_seconds() + self.retention.as_secs() as i64)
    }
}

impl Ledger for DynamoLedger {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        let now = epoch_seconds();
        let token = uuid::Uuid::new_v4().to_string();
        // A whole-item conditional PutItem: atomic in DynamoDB (and in moto, whose UpdateItem is
        // not atomic under concurrent requests). The previous item comes back as ALL_OLD.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk(key)))
            .item("sk", s("IDEM"))
            .item("status", s(IN_PROGRESS))
            .item("lease_token", s(&token))
            .item("lease_until", n(now + lease.as_secs() as i64))
            .item("updated_at", n(now))
            .item("expires_at", self.expires_at())
            .condition_expression(
                "attribute_not_exists(pk) OR #status = :failed \
                 OR (#status IN (:in_progress, :applied) AND lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":applied", s(APPLIED))
            .expression_attribute_values(":failed", s(FAILED))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let previous = out.attributes();
                let old = |name: &str| previous.and_then(|item| item.get(name));
                let attempts = old("attempts")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(0);
                Ok(Claim::Acquired(Lease {
                    key: key.to_owned(),
                    token,
                    attempt: attempts + 1,
                    applied_target: old("target_id").and_then(|v| v.as_s().ok()).cloned(),
                }))
            }
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let old = match e.err() {
                    PutItemError::ConditionalCheckFailedException(failed) => failed.item(),
                    _ => None,
                };
                match old {
                    Some(item) => Self::read_claim(key, item),
                    // Without the old item we cannot tell; a short wait is always safe.
                    None => Ok(Claim::Held {
                        remaining: Duration::from_secs(5),
                    }),
                }
            }
            Err(e) => Err(StoreError::unavailable("dynamodb", e)),
        }
    }

    async fn mark_applied(&self, lease: &Lease, target_id: &str) -> Result<(), StoreError> {
        self.fenced_update(
            lease,
            "SET #status = :applied, target_id = :target, attempts = :attempt, updated_at = :now",
            vec![(":applied", s(APPLIED)), (":target", s(target_id))],
        )
        .await
    }

    async fn complete(&self, lease: &Lease, target_id: &str) -> Result<(), StoreError> {
        self.fenced_update(
            lease,
            "SET #status = :completed, target_id = :target, attempts = :attempt, \
             updated_at = :now, expires_at = :expires REMOVE last_error",
            vec![
                (":completed", s(COMPLETED)),
                (":target", s(target_id)),
                (":expires", self.expires_at()),
            ],
        )
        .await
    }

    async fn release(&self, lease: &Lease, reason: &str) -> Result<(), StoreError> {
        // Releasing = letting the lease run out now; the next claim takes it over.
        self.fenced_update(
            lease,
            "SET lease_until = :zero, last_error = :reason, attempts = :attempt, updated_at = :now",
            vec![(":zero", n(0)), (":reason", s(&truncate(reason)))],
        )
        .await
    }

    async fn fail(&self, lease: &Lease, class: &str, reason: &str) -> Result<(), StoreError> {
        self.fenced_update(
            lease,
            "SET #status = :failed, error_class = :class, last_error = :reason, \
             attempts = :attempt, failed_at = :now, updated_at = :now, expires_at = :expires",
            vec![
                (":failed", s(FAILED)),
                (":class", s(class)),
                (":reason", s(&truncate(reason))),
                (":expires", self.expires_at()),
            ],
        )
        .await
    }
}
