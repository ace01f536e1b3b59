//! The DynamoDB ledger against moto: claims are exclusive, leases expire, and every write after
//! a claim is fenced by its lease token.

use puente_tests::aws_local::{self, Aws};
use shared::aws::ledger::DynamoLedger;
use shared::error::StoreError;
use shared::ports::{Claim, Lease, Ledger};
use std::time::Duration;

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

async fn status(aws: &Aws, table: &str, key: &str) -> anyhow::Result<Option<String>> {
    let pk = format!("IDEM#{key}");
    let items = aws_local::items(aws, table).await?;
    Ok(items
        .iter()
        .find(|i| aws_local::text(i, "pk").as_deref() == Some(pk.as_str()))
        .and_then(|i| aws_local::text(i, "status")))
}

#[tokio::test]
async fn a_live_lease_makes_other_claims_wait() -> anyhow::Result<()> {
    let (_, ledger, _) = ledger().await?;
    acquired(ledger.claim("k1", Duration::from_secs(60)).await?);
    match ledger.claim("k1", Duration::from_secs(60)).await? {
        Claim::Held { remaining } => assert!(remaining > Duration::from_secs(50), "{remaining:?}"),
        other => panic!("expected Held, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_zombie_whose_lease_expired_can_neither_complete_nor_release_its_successors_claim()
-> anyhow::Result<()> {
    let (aws, ledger, table) = ledger().await?;
    let zombie = acquired(ledger.claim("k2", Duration::ZERO).await?);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let successor = acquired(ledger.claim("k2", Duration::from_secs(60)).await?);
    assert_ne!(zombie.token, successor.token);

    assert!(matches!(
        ledger.complete(&zombie, "7").await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        ledger.release(&zombie, "late").await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        ledger.fail(&zombie, "invalid", "late").await,
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
        ledger.claim("k2", Duration::from_secs(60)).await?,
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
    let first = acquired(ledger.claim("k3", Duration::from_secs(60)).await?);
    ledger.mark_applied(&first, "42").await?;
    ledger.release(&first, "link write failed").await?;
    let second = acquired(ledger.claim("k3", Duration::from_secs(60)).await?);
    assert_eq!(second.applied_target.as_deref(), Some("42"));
    Ok(())
}

#[tokio::test]
async fn a_failed_key_can_be_claimed_again_by_a_redrive() -> anyhow::Result<()> {
    let (aws, ledger, table) = ledger().await?;
    let first = acquired(ledger.claim("k4", Duration::from_secs(60)).await?);
    ledger
        .fail(&first, "invalid", "tax_id: check digit does not match")
        .await?;
    assert_eq!(status(&aws, &table, "k4").await?.as_deref(), Some("FAILED"));
    acquired(ledger.claim("k4", Duration::from_secs(60)).await?);
    assert_eq!(
        status(&aws, &table, "k4").await?.as_deref(),
        Some("IN_PROGRESS")
    );
    Ok(())
}

#[tokio::test]
async fn of_many_concurrent_claims_exactly_one_wins() -> anyhow::Result<()> {
    let (_, ledger, _) = ledger().await?;
    let claims =
        futures_util::future::join_all((0..8).map(|_| ledger.claim("k5", Duration::from_secs(60))))
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
