//! The idempotency ledger in DynamoDB: one item per business key (`IDEM#{key}` / `IDEM`).
//!
//! A claim is one conditional `PutItem` that succeeds when the key is new, FAILED and an
//! operator's redrive asks for another try, or its holder's lease has run out, and only for the payload digest the
//! key was first claimed with; it writes a fresh random lease token. A different digest under
//! the same key is a conflict: counted on the item, never applied. When the claim replaces an
//! earlier item, one fenced update right after it numbers the attempt (previous `attempts` + 1,
//! so an attempt killed before any other write still counts) and carries the key's failure
//! record over. Every later write is conditioned on the token, so an invocation that outlived
//! its lease can neither complete nor release its successor's claim.
//!
//! States: `IN_PROGRESS -> APPLIED(target_id) -> COMPLETED`, or `FAILED(reason)`. The item is
//! also the key's failure record: `error_class`, `last_error`, `failed_step`, `attempts`,
//! `first_failure_at`, `last_failure_at`, and `conflicts` / `last_conflict_at`.

use crate::aws::epoch_seconds;
use crate::error::StoreError;
use crate::ports::{Claim, FailureNote, Lease, Ledger};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;
use std::time::Duration;

pub const IN_PROGRESS: &str = "IN_PROGRESS";
pub const APPLIED: &str = "APPLIED";
pub const COMPLETED: &str = "COMPLETED";
pub const FAILED: &str = "FAILED";

/// What a new claim keeps of the item it replaces: the key's failure and conflict record.
const CARRIED: [(&str, &str); 9] = [
    ("target_id", ":c_target"),
    ("first_failure_at", ":c_first"),
    ("last_failure_at", ":c_last"),
    ("error_class", ":c_class"),
    ("last_error", ":c_error"),
    ("failed_step", ":c_step"),
    ("conflicts", ":c_conflicts"),
    ("conflict_digest", ":c_digest"),
    ("last_conflict_at", ":c_conflict_at"),
];

/// Between the partition and sort key of a scan's page position.
const KEY_SEPARATOR: char = '\u{1f}';

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

    fn read_claim(key: &str, digest: &str, item: &Item) -> Result<Claim, StoreError> {
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
        if let Some(stored) = text("digest").filter(|stored| stored != digest) {
            return Ok(Claim::Conflict {
                stored_digest: stored,
            });
        }
        let status = text("status").ok_or_else(|| malformed("no status"))?;
        match status.as_str() {
            COMPLETED => Ok(Claim::Completed {
                target_id: text("target_id"),
            }),
            FAILED => Ok(Claim::Failed {
                class: text("error_class").unwrap_or_default(),
                reason: text("last_error").unwrap_or_default(),
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
        match written(request.send().await)? {
            true => Ok(()),
            false => Err(StoreError::LeaseLost {
                key: lease.key.clone(),
            }),
        }
    }

    /// After taking over a key, numbers this attempt after the previous one and carries the
    /// key's failure record over (the claim's `PutItem` replaced the whole item). One more write,
    /// on retries only. An attempt killed before any other write is counted this way too.
    async fn carry_over(&self, mut lease: Lease, previous: &Item) -> Lease {
        let number = |name: &str| {
            previous
                .get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        lease.attempt = number("attempts").map_or(1, |a| a.max(0) as u32 + 1);
        lease.applied_target = previous
            .get("target_id")
            .and_then(|v| v.as_s().ok())
            .cloned();
        lease.first_failure_at = number("first_failure_at");
        let mut set = vec![
            "attempts = :attempt".to_owned(),
            "updated_at = :now".to_owned(),
        ];
        let mut values = Vec::new();
        for (name, placeholder) in CARRIED {
            if let Some(value) = previous.get(name) {
                set.push(format!("{name} = {placeholder}"));
                values.push((placeholder, value.clone()));
            }
        }
        let expression = format!("SET {}", set.join(", "));
        if let Err(e) = self.fenced_update(&lease, &expression, values).await {
            // The count and history are for people; the claim itself holds.
            tracing::warn!(key = %lease.key, error = %e, "could not carry the attempt count over");
        }
        lease
    }

    fn expires_at(&self) -> AttributeValue {
        n(epoch_seconds() + self.retention.as_secs() as i64)
    }
}

impl Ledger for DynamoLedger {
    async fn claim(
        &self,
        key: &str,
        digest: &str,
        lease: Duration,
        retry_failed: bool,
    ) -> Result<Claim, StoreError> {
        let now = epoch_seconds();
        let token = uuid::Uuid::new_v4().to_string();
        // A whole-item conditional PutItem; the previous item comes back as ALL_OLD.
        // A FAILED key is taken over only for an operator's redrive.
        let takeover = if retry_failed {
            "#status IN (:failed) OR (#status IN (:in_progress, :applied) AND lease_until < :now)"
        } else {
            "#status IN (:in_progress, :applied) AND lease_until < :now"
        };
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk(key)))
            .item("sk", s("IDEM"))
            .item("status", s(IN_PROGRESS))
            .item("digest", s(digest))
            .item("lease_token", s(&token))
            .item("lease_until", n(now + lease.as_secs() as i64))
            .item("attempts", n(1))
            .item("updated_at", n(now))
            .item("expires_at", self.expires_at())
            .condition_expression(format!(
                "attribute_not_exists(pk) \
                 OR ((attribute_not_exists(digest) OR digest = :digest) AND ({takeover}))"
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":applied", s(APPLIED))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":digest", s(digest))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if retry_failed {
            request = request.expression_attribute_values(":failed", s(FAILED));
        }
        let result = request.send().await;
        match result {
            Ok(out) => {
                let lease = Lease {
                    key: key.to_owned(),
                    token,
                    attempt: 1,
                    applied_target: None,
                    first_failure_at: None,
                };
                match out.attributes() {
                    Some(previous) => Ok(Claim::Acquired(self.carry_over(lease, previous).await)),
                    None => Ok(Claim::Acquired(lease)),
                }
            }
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let old = match e.err() {
                    PutItemError::ConditionalCheckFailedException(failed) => failed.item(),
                    _ => None,
                };
                match old {
                    Some(item) => Self::read_claim(key, digest, item),
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

    async fn release(&self, lease: &Lease, failure: &FailureNote<'_>) -> Result<(), StoreError> {
        // Releasing = letting the lease run out now; the next claim takes it over.
        self.fenced_update(
            lease,
            "SET lease_until = :zero, error_class = :class, last_error = :reason, \
             failed_step = :step, attempts = :attempt, first_failure_at = :first, \
             last_failure_at = :now, updated_at = :now",
            failure_values(lease, failure, vec![(":zero", n(0))]),
        )
        .await
    }

    async fn fail(&self, lease: &Lease, failure: &FailureNote<'_>) -> Result<(), StoreError> {
        self.fenced_update(
            lease,
            "SET #status = :failed, error_class = :class, last_error = :reason, \
             failed_step = :step, attempts = :attempt, first_failure_at = :first, \
             last_failure_at = :now, updated_at = :now, expires_at = :expires",
            failure_values(
                lease,
                failure,
                vec![(":failed", s(FAILED)), (":expires", self.expires_at())],
            ),
        )
        .await
    }

    async fn lock_record(
        &self,
        record: &str,
        lease: Duration,
    ) -> Result<Result<Lease, Duration>, StoreError> {
        let now = epoch_seconds();
        let token = uuid::Uuid::new_v4().to_string();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&format!("LOCK#{record}")))
            .item("sk", s("LOCK"))
            .item("lease_token", s(&token))
            .item("lease_until", n(now + lease.as_secs() as i64))
            // A lock whose holder died and was never taken over disappears by itself.
            .item("expires_at", self.expires_at())
            .condition_expression("attribute_not_exists(pk) OR lease_until < :now")
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(Lease {
                key: record.to_owned(),
                token,
                attempt: 1,
                applied_target: None,
                first_failure_at: None,
            })),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let holder = match e.err() {
                    PutItemError::ConditionalCheckFailedException(failed) => failed.item(),
                    _ => None,
                };
                Ok(Err(remaining_lease(holder, now)))
            }
            Err(e) => Err(StoreError::unavailable("dynamodb", e)),
        }
    }

    async fn unlock_record(&self, lock: &Lease) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&format!("LOCK#{}", lock.key)))
            .key("sk", s("LOCK"))
            .condition_expression("lease_token = :mine")
            .expression_attribute_values(":mine", s(&lock.token))
            .send()
            .await;
        // Not written: our lease ran out and someone else holds the lock now; it is theirs.
        written(result).map(drop)
    }

    async fn record_conflict(&self, key: &str, digest: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk(key)))
            .key("sk", s("IDEM"))
            .update_expression(
                "SET conflicts = if_not_exists(conflicts, :zero) + :one, \
                 conflict_digest = :digest, last_conflict_at = :now",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":digest", s(digest))
            .expression_attribute_values(":now", n(epoch_seconds()))
            .send()
            .await;
        // Not written: the item expired in between, so there is nothing left to conflict with.
        written(result).map(drop)
    }
}

impl crate::ports::StuckLedger for DynamoLedger {
    /// A filtered Scan: it reads every item of the table (ledger or not) page by page, so the
    /// reconciler runs it on its nightly sweep only. The page position is the last key read,
    /// partition and sort key.
    async fn stuck(
        &self,
        before: i64,
        from: Option<String>,
        limit: usize,
    ) -> Result<(Vec<crate::ports::StuckItem>, Option<String>), StoreError> {
        let mut request = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression(
                "begins_with(pk, :idem) AND #status IN (:in_progress, :applied) \
                 AND lease_until < :before",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":idem", s("IDEM#"))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":applied", s(APPLIED))
            .expression_attribute_values(":before", n(before))
            .consistent_read(true)
            .limit(limit.clamp(1, 1000) as i32);
        if let Some((pk, sk)) = from.as_deref().and_then(|f| f.split_once(KEY_SEPARATOR)) {
            request = request
                .exclusive_start_key("pk", s(pk))
                .exclusive_start_key("sk", s(sk));
        }
        let out = request
            .send()
            .await
            .map_err(|e| StoreError::unavailable("dynamodb", e))?;
        let text = |item: &Item, name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let items = out
            .items()
            .iter()
            .filter_map(|item| {
                Some(crate::ports::StuckItem {
                    key: text(item, "pk")?.strip_prefix("IDEM#")?.to_owned(),
                    digest: text(item, "digest").unwrap_or_default(),
                    target_id: text(item, "target_id"),
                    lease_until: item
                        .get("lease_until")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_default(),
                })
            })
            .collect();
        // The last key read (of any item kind) is where the next page starts.
        let next = out.last_evaluated_key().and_then(|key| {
            let part = |name: &str| key.get(name).and_then(|v| v.as_s().ok());
            Some(format!("{}{KEY_SEPARATOR}{}", part("pk")?, part("sk")?))
        });
        Ok((items, next))
    }
}

/// The outcome of a conditional write: `Ok(true)` when it happened, `Ok(false)` when its
/// condition did not hold, an error for anything else.
pub(crate) fn written<O, E>(
    result: Result<O, SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(e))
            if e.err().code() == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(StoreError::unavailable("dynamodb", e)),
    }
}

/// How long the holder of a lock may still hold it, from the item its condition failed on
/// (`lease_until`, epoch seconds); 5 s when the item did not come back.
pub(crate) fn remaining_lease(holder: Option<&Item>, now: i64) -> Duration {
    let until = holder
        .and_then(|item| item.get("lease_until"))
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok());
    Duration::from_secs(until.map_or(5, |until| (until - now).max(1)) as u64)
}

/// The values every failure write sets, plus `extra`.
fn failure_values<'v>(
    lease: &Lease,
    failure: &FailureNote<'_>,
    mut extra: Vec<(&'v str, AttributeValue)>,
) -> Vec<(&'v str, AttributeValue)> {
    extra.extend([
        (":class", s(failure.class)),
        (":reason", s(&truncate(failure.reason))),
        (":step", s(failure.step)),
        (
            ":first",
            n(lease.first_failure_at.unwrap_or_else(epoch_seconds)),
        ),
    ]);
    extra
}
