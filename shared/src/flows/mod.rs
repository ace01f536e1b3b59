//! Use cases. Each flow talks to ports only, so it reads as the architecture's steps and runs
//! against in-memory fakes in unit tests.

pub mod invoice_deal;
pub mod payment_status;
pub mod poll;
pub mod reconcile;
pub mod sync_customer;

use crate::domain::{ChangeEvent, System};
use crate::error::{FailureClass, SyncError};
use crate::ports::{Claim, FailureNote, Lease, Ledger};
use std::time::Duration;

/// How soon a change whose record is locked by another change is tried again, at most.
pub(crate) const RECORD_BUSY_RETRY: Duration = Duration::from_secs(2);

/// The ledger, as steps name it.
pub(crate) const LEDGER: System = System::named("dynamodb");

/// A short, stable digest of a payload's identifying parts, for the ledger's "same key, same
/// payload" check: SHA-256 over the parts separated by a unit separator, first 16 bytes in hex.
pub fn digest(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    // Hex by table: the customer flow takes dozens of these per change (value hashes), and a
    // `format!` per byte cost more than the hash itself.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(32);
    for b in &hasher.finalize()[..16] {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    hex
}

/// What a claim on a change's business key allows.
pub(crate) enum Claimed {
    /// This attempt applies the change.
    Lease(Lease),
    /// An earlier delivery applied it.
    Duplicate,
}

/// Claims the change's business key for `flow`. A change without a usable key is poison; a key
/// held by another invocation is busy; a key first claimed with another payload is a conflict,
/// counted on the ledger item and never applied.
pub(crate) async fn claim<L: Ledger>(
    ledger: &L,
    event: &ChangeEvent,
    flow: &str,
    lease_for: Duration,
    redriven: bool,
) -> Result<Claimed, SyncError> {
    let key = event
        .business_key(flow)
        .map_err(|rejection| SyncError::Rejected {
            class: FailureClass::Poison,
            reason: format!("no business key: {rejection}"),
            fields: rejection.0,
        })?;
    tracing::Span::current().record("key", key.as_str());
    let digest = digest(&event.payload_identity());
    match ledger.claim(&key, &digest, lease_for, redriven).await? {
        Claim::Acquired(lease) => {
            tracing::Span::current().record("attempt", lease.attempt);
            if let Some(target) = &lease.applied_target {
                tracing::info!(key = %lease.key, attempt = lease.attempt, target, "an earlier attempt already applied this change");
            }
            Ok(Claimed::Lease(lease))
        }
        Claim::Completed { .. } => Ok(Claimed::Duplicate),
        // Parked with this copy too: whether the first copy reached the dead-letter queue is
        // unknown (its invocation may have died right after recording the failure), and a
        // failure must never be acknowledged away. Redriving both is safe: the key decides.
        Claim::Failed { class, reason } => Err(SyncError::Rejected {
            class: FailureClass::parse(&class).unwrap_or(FailureClass::TargetRejected),
            reason: format!("failed earlier, waits for an operator's redrive: {reason}"),
            fields: Vec::new(),
        }),
        Claim::Held { remaining } => Err(SyncError::Busy {
            retry_after: remaining,
        }),
        Claim::Conflict { stored_digest } => {
            ledger.record_conflict(&key, &digest).await?;
            Err(SyncError::rejected(
                FailureClass::Conflict,
                format!(
                    "business key {key} was first seen with payload digest {stored_digest}, \
                     now {digest}"
                ),
            ))
        }
    }
}

/// How a change went through `once_under_lock`.
pub(crate) enum Run<T> {
    Applied(T),
    Duplicate,
}

/// The frame every flow applies a change in: claim its business key, lock its source record
/// (`{flow}#{source}#{object_id}`), `apply`, record a failure on the key (FAILED or released),
/// unlock. Changes of one record therefore never run at once, and a change runs at most once.
pub(crate) async fn once_under_lock<L, T, Fut>(
    ledger: &L,
    event: &ChangeEvent,
    flow: &str,
    lease_for: Duration,
    redriven: bool,
    apply: impl FnOnce(Lease) -> Fut,
) -> Result<Run<T>, SyncError>
where
    L: Ledger,
    Fut: std::future::Future<Output = Result<T, Failed>>,
{
    let lease = match claim(ledger, event, flow, lease_for, redriven).await? {
        Claimed::Lease(lease) => lease,
        Claimed::Duplicate => return Ok(Run::Duplicate),
    };
    let record = format!("{flow}#{}#{}", event.source, event.object_id);
    let lock = match lock_record(ledger, &record, lease_for).await {
        Ok(lock) => lock,
        Err(failed) => return Err(settle_failure(ledger, &lease, failed).await),
    };
    let result = match apply(lease.clone()).await {
        Ok(applied) => Ok(Run::Applied(applied)),
        Err(failed) => Err(settle_failure(ledger, &lease, failed).await),
    };
    unlock_record(ledger, &lock).await;
    result
}

/// The calendar date of `now` in `offset`: what "today" is for an invoice or a due date.
pub(crate) fn today(
    now: crate::domain::Timestamp,
    offset: crate::domain::ZoneOffset,
) -> crate::domain::Date {
    // Only an instant outside years 1..9999 has no date; the clock is never that wrong.
    now.date_in(offset)
        .or_else(|_| crate::domain::Date::from_ymd(1970, 1, 1))
        .unwrap_or_else(|_| unreachable!("1970-01-01 is a date"))
}

/// Takes the lock on one source record (`customer#hubspot#901`) for `lease_for`. Another change
/// of the record being applied right now usually takes well under a second, so its holder is
/// busy for at most `RECORD_BUSY_RETRY`, not for its whole lease.
pub(crate) async fn lock_record<L: Ledger>(
    ledger: &L,
    record: &str,
    lease_for: Duration,
) -> Result<Lease, Failed> {
    match ledger.lock_record(record, lease_for).await {
        Ok(Ok(lock)) => Ok(lock),
        Ok(Err(held_for)) => Err(Failed {
            step: "dynamodb lock record".into(),
            error: SyncError::Busy {
                retry_after: held_for.min(RECORD_BUSY_RETRY),
            },
        }),
        Err(store) => Err(at(&LEDGER, "lock", "record")(store)),
    }
}

/// Gives a record lock back; its lease runs out by itself if this fails.
pub(crate) async fn unlock_record<L: Ledger>(ledger: &L, lock: &Lease) {
    if let Err(store) = ledger.unlock_record(lock).await {
        tracing::warn!(record = %lock.key, error = %store, "could not unlock record");
    }
}

/// Records the failure on the key (FAILED for a rejection, released for a retry) and returns the
/// error with the failed step in its reason.
pub(crate) async fn settle_failure<L: Ledger>(
    ledger: &L,
    lease: &Lease,
    failed: Failed,
) -> SyncError {
    let Failed { step, error } = failed;
    let reason = error.to_string();
    match &error {
        SyncError::Rejected { class, .. } => {
            let note = FailureNote {
                class: class.as_str(),
                reason: &reason,
                step: &step,
            };
            if let Err(store) = ledger.fail(lease, &note).await {
                // Without the FAILED record we would rather retry than lose the reason.
                return SyncError::from(store);
            }
        }
        SyncError::Transient { .. } | SyncError::Throttled { .. } | SyncError::Busy { .. } => {
            let note = FailureNote {
                class: error.kind().as_str(),
                reason: &reason,
                step: &step,
            };
            if let Err(store) = ledger.release(lease, &note).await {
                // The lease runs out by itself; the retry only waits longer.
                tracing::warn!(key = %lease.key, error = %store, "could not release lease");
            }
        }
    }
    error.at(&step)
}

/// A failed step of a flow: which system and action, and the error.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) step: String,
    pub(crate) error: SyncError,
}

/// Names the step an error came from: `at(&odoo, "create", "customer")`.
pub(crate) fn at<'s, E: Into<SyncError>>(
    system: &'s System,
    action: &'s str,
    what: &'s str,
) -> impl FnOnce(E) -> Failed + 's {
    move |error| Failed {
        step: format!("{system} {action} {what}"),
        error: error.into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn digests_depend_on_every_part_and_its_boundaries() {
        let base = super::digest(&["customer", "62515"]);
        assert_eq!(base.len(), 32);
        assert_eq!(base, super::digest(&["customer", "62515"]));
        assert_ne!(base, super::digest(&["customer", "62516"]));
        assert_ne!(base, super::digest(&["customer6", "2515"]));
    }

    #[test]
    fn a_digest_is_the_lowercase_hex_of_the_hash_s_first_16_bytes_as_stored() {
        // The ledger and the links keep these: the text must never change.
        assert_eq!(
            super::digest(&["customer", "62515"]),
            "c76b1fb3f42475e12d0a6bfed96b658a"
        );
    }
}
