//! The DynamoDB ledger against moto: claims are exclusive, leases expire, and every write after
//! a claim is fenced by its lease token.

use aws_sdk_dynamodb::types::AttributeValue;
use puente_tests::aws_local::{self, Aws};
use shared::aws::ledger::DynamoLedger;
use shared::error::StoreError;
use shared::ports::{Claim, FailureNote, Lease, Ledger};
use std::time::Duration;

/// The payload digest most tests claim with.
const D: &str = "d1";

fn note<'a>(class: &'a str, reason: &'a str) -> FailureNote<'a> {
    FailureNote {
        class,
        reason,
        step: "odoo create customer",
    }
}

async fn ledger() -> anyhow::Result<(Aws, DynamoLedger, String)> {
    let aws = Aws::from_env().await?;
    let table = format!("t-ledger-{}", uuid::Uuid::new_v4().simple());
    aws_local::create_table(&aws, &table).await?;
    let ledger = DynamoLedger::new(&aws.sdk, &table, Duration::from_secs(3600));
    Ok((aws, ledger, table))
}

fn acquired(claim: Claim) -> Lease {
    match claim {
        Claim::Acquired(lease) => lease,
        other => panic!("expected to acquire the key, got {other:?}"),
    }
}

async fn item(
    aws: &Aws,
    table: &str,
    key: &str,
) -> anyhow::Result<Option<std::collections::HashMap<String, AttributeValue>>> {
    let pk = format!("IDEM#{key}");
    let items = aws_local::items(aws, table).await?;
    Ok(items
        .into_iter()
        .find(|i| aws_local::text(i, "pk").as_deref() == Some(pk.as_str())))
}

async fn status(aws: &Aws, table: &str, key: &str) -> anyhow::Result<Option<String>> {
    Ok(item(aws, table, key)
        .await?
        .and_then(|i| aws_local::text(&i, "status")))
}

fn number(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

#[tokio::test]
async fn a_live_lease_makes_other_claims_wait() -> anyhow::Result<()> {
    let (_, ledger, _) = ledger().await?;
    acquired(
        ledger
            .claim("k1", D, Duration::from_secs(60), false)
            .await?,
    );
    match ledger
        .claim("k1", D, Duration::from_secs(60), false)
        .await?
    {
        Claim::Held { remaining } => assert!(remaining > Duration::from_secs(50), "{remaining:?}"),
        other => panic!("expected Held, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_zombie_whose_lease_expired_can_neither_complete_nor_release_its_successors_claim()
-> anyhow::Result<()> {
    let (aws, ledger, table) = ledger().await?;
    let zombie = acquired(ledger.claim("k2", D, Duration::ZERO, false).await?);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let successor = acquired(
        ledger
            .claim("k2", D, Duration::from_secs(60), false)
            .await?,
    );
    assert_ne!(zombie.token, successor.token);

    assert!(matches!(
        ledger.complete(&zombie, "7").await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        ledger.release(&zombie, &note("transient", "late")).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        ledger.fail(&zombie, &note("invalid", "late")).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(
        status(&aws, &table, "k2").await?.as_deref(),
        Some("IN_PROGRESS")
    );

    ledger.mark_applied(&successor, "8").await?;
    ledger.complete(&successor, "8").await?;
    assert_eq!(
        status(&aws, &table, "k2").await?.as_deref(),
        Some("COMPLETED")
    );
    assert_eq!(
        ledger
            .claim("k2", D, Duration::from_secs(60), false)
            .await?,
        Claim::Completed {
            target_id: Some("8".into())
        }
    );
    Ok(())
}

#[tokio::test]
async fn a_released_key_is_claimed_again_at_once_and_keeps_its_applied_target() -> anyhow::Result<()>
{
    let (_, ledger, _) = ledger().await?;
    let first = acquired(
        ledger
            .claim("k3", D, Duration::from_secs(60), false)
            .await?,
    );
    ledger.mark_applied(&first, "42").await?;
    ledger
        .release(&first, &note("transient", "link write failed"))
        .await?;
    let second = acquired(
        ledger
            .claim("k3", D, Duration::from_secs(60), false)
            .await?,
    );
    assert_eq!(second.applied_target.as_deref(), Some("42"));
    Ok(())
}

#[tokio::test]
async fn a_failed_key_can_be_claimed_again_by_a_redrive() -> anyhow::Result<()> {
    let (aws, ledger, table) = ledger().await?;
    let first = acquired(
        ledger
            .claim("k4", D, Duration::from_secs(60), false)
            .await?,
    );
    ledger
        .fail(
            &first,
            &note("invalid", "tax_id: check digit does not match"),
        )
        .await?;
    assert_eq!(status(&aws, &table, "k4").await?.as_deref(), Some("FAILED"));
    // Another delivery of the same change leaves it parked; only an operator's redrive retries.
    assert_eq!(
        ledger
            .claim("k4", D, Duration::from_secs(60), false)
            .await?,
        Claim::Failed {
            class: "invalid".into(),
            reason: "tax_id: check digit does not match".into()
        }
    );
    acquired(ledger.claim("k4", D, Duration::from_secs(60), true).await?);
    assert_eq!(
        status(&aws, &table, "k4").await?.as_deref(),
        Some("IN_PROGRESS")
    );
    Ok(())
}

#[tokio::test]
async fn of_many_concurrent_claims_exactly_one_wins() -> anyhow::Result<()> {
    let (_, ledger, _) = ledger().await?;
    let claims = futures_util::future::join_all(
        (0..8).map(|_| ledger.claim("k5", D, Duration::from_secs(60), false)),
    )
    .await;
    let winners = claims
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|c| matches!(c, Claim::Acquired(_)))
        .count();
    assert_eq!(winners, 1);
    Ok(())
}

#[tokio::test]
async fn the_same_key_with_another_payload_is_a_conflict_whatever_its_state() -> anyhow::Result<()>
{
    let (aws, ledger, table) = ledger().await?;
    let first = acquired(
        ledger
            .claim("k6", D, Duration::from_secs(60), false)
            .await?,
    );
    // While held, and after completion: a different digest is never applied.
    assert_eq!(
        ledger
            .claim("k6", "d2", Duration::from_secs(60), false)
            .await?,
        Claim::Conflict {
            stored_digest: D.into()
        }
    );
    ledger.complete(&first, "7").await?;
    assert_eq!(
        ledger
            .claim("k6", "d2", Duration::from_secs(60), false)
            .await?,
        Claim::Conflict {
            stored_digest: D.into()
        }
    );
    ledger.record_conflict("k6", "d2").await?;
    ledger.record_conflict("k6", "d2").await?;
    let stored = item(&aws, &table, "k6").await?.expect("item");
    assert_eq!(
        aws_local::text(&stored, "status").as_deref(),
        Some("COMPLETED")
    );
    assert_eq!(aws_local::text(&stored, "digest").as_deref(), Some(D));
    assert_eq!(number(&stored, "conflicts"), Some(2));
    assert!(number(&stored, "last_conflict_at").is_some());
    // The original payload is still a plain duplicate.
    assert_eq!(
        ledger
            .claim("k6", D, Duration::from_secs(60), false)
            .await?,
        Claim::Completed {
            target_id: Some("7".into())
        }
    );
    Ok(())
}

#[tokio::test]
async fn the_failure_record_keeps_class_step_attempts_and_first_and_last_failure()
-> anyhow::Result<()> {
    let (aws, ledger, table) = ledger().await?;
    let first = acquired(
        ledger
            .claim("k7", D, Duration::from_secs(60), false)
            .await?,
    );
    ledger
        .release(&first, &note("transient", "odoo is unavailable: 502"))
        .await?;
    let after_first = item(&aws, &table, "k7").await?.expect("item");
    let first_failure = number(&after_first, "first_failure_at").expect("first failure");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let second = acquired(
        ledger
            .claim("k7", D, Duration::from_secs(60), false)
            .await?,
    );
    assert_eq!(second.attempt, 2);
    ledger
        .fail(
            &second,
            &note("target_rejected", "odoo rejected the request: 422"),
        )
        .await?;
    let failed = item(&aws, &table, "k7").await?.expect("item");
    assert_eq!(
        aws_local::text(&failed, "status").as_deref(),
        Some("FAILED")
    );
    assert_eq!(
        aws_local::text(&failed, "error_class").as_deref(),
        Some("target_rejected")
    );
    assert_eq!(
        aws_local::text(&failed, "failed_step").as_deref(),
        Some("odoo create customer")
    );
    assert!(aws_local::text(&failed, "last_error").is_some_and(|e| e.contains("422")));
    assert_eq!(number(&failed, "attempts"), Some(2));
    assert_eq!(number(&failed, "first_failure_at"), Some(first_failure));
    assert!(number(&failed, "last_failure_at").expect("last failure") > first_failure);
    Ok(())
}

#[tokio::test]
async fn a_record_lock_is_exclusive_and_only_its_holder_unlocks_it() -> anyhow::Result<()> {
    let (aws, ledger, table) = ledger().await?;
    let first = ledger
        .lock_record("customer#hubspot#901", Duration::from_secs(60))
        .await?
        .expect("free");
    let held_for = ledger
        .lock_record("customer#hubspot#901", Duration::from_secs(60))
        .await?
        .expect_err("held");
    assert!(held_for > Duration::from_secs(50), "{held_for:?}");

    // A stale holder's unlock does nothing to the lock.
    let stale = Lease {
        token: "not-the-holder".into(),
        ..first.clone()
    };
    ledger.unlock_record(&stale).await?;
    assert!(
        ledger
            .lock_record("customer#hubspot#901", Duration::from_secs(60))
            .await?
            .is_err()
    );
    ledger.unlock_record(&first).await?;
    let locks = aws_local::items(&aws, &table).await?;
    assert!(
        !locks
            .iter()
            .any(|i| aws_local::text(i, "pk").is_some_and(|pk| pk.starts_with("LOCK#"))),
        "unlocking removes the item"
    );
    ledger
        .lock_record("customer#hubspot#901", Duration::ZERO)
        .await?
        .expect("free again");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ledger
        .lock_record("customer#hubspot#901", Duration::from_secs(60))
        .await?
        .expect("an expired lock is taken over");
    Ok(())
}

#[tokio::test]
async fn an_attempt_killed_before_any_write_is_counted_and_the_failure_record_survives_takeovers()
-> anyhow::Result<()> {
    let (aws, ledger, table) = ledger().await?;
    let first = acquired(
        ledger
            .claim("k8", D, Duration::from_secs(60), false)
            .await?,
    );
    ledger
        .release(&first, &note("transient", "odoo is unavailable: 502"))
        .await?;
    let released = item(&aws, &table, "k8").await?.expect("item");

    // The second attempt is killed right after its claim: it writes nothing else.
    let killed = acquired(ledger.claim("k8", D, Duration::ZERO, false).await?);
    assert_eq!(killed.attempt, 2);
    let after_claim = item(&aws, &table, "k8").await?.expect("item");
    assert_eq!(number(&after_claim, "attempts"), Some(2));
    for carried in [
        "first_failure_at",
        "last_failure_at",
        "error_class",
        "last_error",
        "failed_step",
    ] {
        assert_eq!(after_claim.get(carried), released.get(carried), "{carried}");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let third = acquired(
        ledger
            .claim("k8", D, Duration::from_secs(60), false)
            .await?,
    );
    assert_eq!(third.attempt, 3, "the killed attempt counts");
    assert_eq!(
        third.first_failure_at,
        number(&released, "first_failure_at"),
        "the first failure is the first attempt's"
    );
    ledger.complete(&third, "9").await?;
    let completed = item(&aws, &table, "k8").await?.expect("item");
    assert_eq!(number(&completed, "attempts"), Some(3));
    Ok(())
}
