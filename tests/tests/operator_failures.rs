//! The operator command `puente-ops failures` against moto: ledger items written by the real
//! DynamoDB ledger (claims, releases, failures, completions, conflicts) are listed when they need
//! a person or are struggling, newest trouble first, with their class, step, attempts and
//! times; locks, links, webhook deliveries and other flows' keys are left out.

use aws_sdk_dynamodb::types::AttributeValue;
use puente_ops::{FailureQuery, FailureRecord, Target, failures};
use puente_tests::aws_local::{self, Aws};
use shared::aws::ledger::DynamoLedger;
use shared::ports::{Claim, FailureNote, Lease, Ledger};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const D: &str = "digest-1";
const LEASE: Duration = Duration::from_secs(60);

/// Rejected for good: needs a person.
const FAILED_KEY: &str = "customer#hubspot#901#1704067199000";
/// Released twice, still not completed: struggling.
const STRUGGLING_KEY: &str = "customer#hubspot#902#1704067200000";
/// Completed once, then delivered again with another payload.
const CONFLICTED_KEY: &str = "customer#hubspot#903#1704067201000";
/// Completed at the second attempt: listed with `--all` only.
const RETRIED_KEY: &str = "customer#hubspot#904#1704067202000";
/// Completed at the first attempt, and a first attempt still running: never listed.
const CLEAN_KEY: &str = "customer#hubspot#905#1704067203000";
const RUNNING_KEY: &str = "customer#hubspot#906#1704067204000";
/// Another flow's failure.
const INVOICE_KEY: &str = "invoice#hubspot#77#1704067205000";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}

fn acquired(claim: Claim) -> Lease {
    match claim {
        Claim::Acquired(lease) => lease,
        other => panic!("expected to acquire the key, got {other:?}"),
    }
}

fn note<'a>(class: &'a str, reason: &'a str, step: &'a str) -> FailureNote<'a> {
    FailureNote {
        class,
        reason,
        step,
    }
}

/// Moves the clock past the current second, so the ledger's epoch-second times differ.
async fn next_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

/// An item of the state table that is not a ledger item but would match the failure filter on
/// its attributes alone.
async fn put_lookalike(aws: &Aws, table: &str, pk: &str, sk: &str) -> anyhow::Result<()> {
    aws.dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(pk.into()))
        .item("sk", AttributeValue::S(sk.into()))
        .item("status", AttributeValue::S("FAILED".into()))
        .item("attempts", AttributeValue::N("4".into()))
        .item("conflicts", AttributeValue::N("1".into()))
        .item("last_failure_at", AttributeValue::N(now().to_string()))
        .send()
        .await?;
    Ok(())
}

/// Writes webhook-delivery items large enough that a Scan needs more than one page (DynamoDB
/// and moto stop a page at 1 MB, before the filter), ahead of the ledger items, so a reader that
/// ignores `LastEvaluatedKey` finds nothing. Checks that the table really pages.
async fn pad_past_one_page(aws: &Aws, table: &str) -> anyhow::Result<()> {
    let padding = "p".repeat(100_000);
    for n in 0..14 {
        aws.dynamodb
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(format!("HOOK#hubspot#pad-{n}")))
            .item("sk", AttributeValue::S("HOOK".into()))
            .item("padding", AttributeValue::S(padding.clone()))
            .send()
            .await?;
    }
    let first = aws.dynamodb.scan().table_name(table).send().await?;
    anyhow::ensure!(
        first.last_evaluated_key().is_some(),
        "the padding should take the scan past one page"
    );
    Ok(())
}

/// Times of each step, bounded from both sides by the test's clock.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: i64,
    to: i64,
}

impl Window {
    fn contains(self, at: Option<i64>) -> bool {
        at.is_some_and(|at| (self.from..=self.to).contains(&at))
    }
}

struct Seeded {
    target: Target,
    /// When the struggling and retried keys first failed.
    t0: Window,
    /// When the failed key failed.
    t1: Window,
    /// When the struggling key failed again.
    t2: Window,
    /// When the conflict arrived.
    t3: Window,
}

/// A stack's state table with one item of each kind, written through the real ledger.
async fn seeded() -> anyhow::Result<(Aws, Seeded)> {
    let aws = Aws::from_env().await?;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let target = Target {
        stack: format!("t-fail-{}", &suffix[..8]),
        flow: "customer".into(),
    };
    let table = target.state_table();
    aws_local::create_table(&aws, &table).await?;
    pad_past_one_page(&aws, &table).await?;
    let ledger = DynamoLedger::new(&aws.sdk, &table, Duration::from_secs(3600));

    let clean = acquired(ledger.claim(CLEAN_KEY, D, LEASE, false).await?);
    ledger.mark_applied(&clean, "10").await?;
    ledger.complete(&clean, "10").await?;
    acquired(ledger.claim(RUNNING_KEY, D, LEASE, false).await?);
    assert!(
        ledger
            .lock_record("customer#hubspot#902", LEASE)
            .await?
            .is_ok(),
        "the record lock is free"
    );
    put_lookalike(&aws, &table, "HOOK#hubspot#evt-1", "HOOK").await?;
    put_lookalike(&aws, &table, "LINK#customer#hubspot#903", "LINK").await?;

    let from = now();
    let struggling = acquired(ledger.claim(STRUGGLING_KEY, D, LEASE, false).await?);
    ledger
        .release(
            &struggling,
            &note("transient", "odoo timed out", "odoo search customer"),
        )
        .await?;
    let struggling = acquired(ledger.claim(STRUGGLING_KEY, D, LEASE, false).await?);
    let retried = acquired(ledger.claim(RETRIED_KEY, D, LEASE, false).await?);
    ledger
        .release(
            &retried,
            &note("transient", "connection reset", "odoo create customer"),
        )
        .await?;
    let retried = acquired(ledger.claim(RETRIED_KEY, D, LEASE, false).await?);
    let t0 = Window { from, to: now() };

    next_second().await;
    let from = now();
    let failed = acquired(ledger.claim(FAILED_KEY, D, LEASE, false).await?);
    ledger
        .fail(
            &failed,
            &note(
                "invalid",
                "tax_id: check digit does not match\nexpected 8",
                "odoo create customer",
            ),
        )
        .await?;
    let invoice = acquired(ledger.claim(INVOICE_KEY, D, LEASE, false).await?);
    ledger
        .fail(
            &invoice,
            &note("invalid", "no product", "odoo create invoice"),
        )
        .await?;
    let t1 = Window { from, to: now() };

    next_second().await;
    let from = now();
    ledger
        .release(
            &struggling,
            &note("throttled", "429 from odoo", "odoo update customer"),
        )
        .await?;
    let t2 = Window { from, to: now() };

    next_second().await;
    let from = now();
    let conflicted = acquired(ledger.claim(CONFLICTED_KEY, D, LEASE, false).await?);
    ledger.mark_applied(&conflicted, "11").await?;
    ledger.complete(&conflicted, "11").await?;
    assert!(matches!(
        ledger
            .claim(CONFLICTED_KEY, "digest-2", LEASE, false)
            .await?,
        Claim::Conflict { .. }
    ));
    ledger.record_conflict(CONFLICTED_KEY, "digest-2").await?;
    ledger.mark_applied(&retried, "12").await?;
    ledger.complete(&retried, "12").await?;
    let t3 = Window { from, to: now() };

    Ok((
        aws,
        Seeded {
            target,
            t0,
            t1,
            t2,
            t3,
        },
    ))
}

fn keys(records: &[FailureRecord]) -> Vec<&str> {
    records.iter().map(|r| r.key.as_str()).collect()
}

#[tokio::test]
async fn failures_lists_the_failed_conflicted_and_struggling_keys_newest_first()
-> anyhow::Result<()> {
    let (aws, seeded) = seeded().await?;
    let records = failures(&aws.sdk, &seeded.target, FailureQuery::default()).await?;
    assert_eq!(
        keys(&records),
        [CONFLICTED_KEY, STRUGGLING_KEY, FAILED_KEY],
        "{records:#?}"
    );

    let conflicted = &records[0];
    assert_eq!(conflicted.status.as_deref(), Some("COMPLETED"));
    assert_eq!(conflicted.conflicts, Some(1));
    assert!(
        seeded.t3.contains(conflicted.last_conflict_at),
        "{conflicted:?}"
    );
    assert_eq!(conflicted.last_failure_at, None);

    let struggling = &records[1];
    assert_eq!(struggling.status.as_deref(), Some("IN_PROGRESS"));
    assert_eq!(struggling.attempts, Some(2));
    assert_eq!(struggling.error_class.as_deref(), Some("throttled"));
    assert_eq!(
        struggling.failed_step.as_deref(),
        Some("odoo update customer")
    );
    assert_eq!(struggling.last_error.as_deref(), Some("429 from odoo"));
    assert!(
        seeded.t0.contains(struggling.first_failure_at),
        "{struggling:?}"
    );
    assert!(
        seeded.t2.contains(struggling.last_failure_at),
        "{struggling:?}"
    );

    let failed = &records[2];
    assert_eq!(failed.status.as_deref(), Some("FAILED"));
    assert_eq!(failed.attempts, Some(1));
    assert_eq!(failed.error_class.as_deref(), Some("invalid"));
    assert_eq!(failed.failed_step.as_deref(), Some("odoo create customer"));
    assert!(seeded.t1.contains(failed.first_failure_at), "{failed:?}");
    assert!(seeded.t1.contains(failed.last_failure_at), "{failed:?}");
    assert_eq!(failed.conflicts, None);

    let line = failed.to_string();
    assert!(
        line.starts_with(&format!("{FAILED_KEY}  FAILED  class=invalid")),
        "{line}"
    );
    assert!(
        line.ends_with("error: tax_id: check digit does not match…"),
        "{line}"
    );
    assert!(line.contains("step=\"odoo create customer\""), "{line}");
    Ok(())
}

#[tokio::test]
async fn failures_with_all_adds_the_keys_that_completed_after_retries() -> anyhow::Result<()> {
    let (aws, seeded) = seeded().await?;
    let records = failures(
        &aws.sdk,
        &seeded.target,
        FailureQuery {
            all: true,
            ..FailureQuery::default()
        },
    )
    .await?;
    assert_eq!(
        keys(&records),
        [CONFLICTED_KEY, STRUGGLING_KEY, FAILED_KEY, RETRIED_KEY],
        "{records:#?}"
    );
    let retried = &records[3];
    assert_eq!(retried.status.as_deref(), Some("COMPLETED"));
    assert_eq!(retried.attempts, Some(2));
    assert_eq!(retried.target_id.as_deref(), Some("12"));
    assert_eq!(retried.error_class.as_deref(), Some("transient"));
    assert!(seeded.t0.contains(retried.last_failure_at), "{retried:?}");
    Ok(())
}

#[tokio::test]
async fn failures_stop_at_max_and_keep_to_the_asked_flow() -> anyhow::Result<()> {
    let (aws, seeded) = seeded().await?;
    let one = failures(
        &aws.sdk,
        &seeded.target,
        FailureQuery { max: 1, all: false },
    )
    .await?;
    assert_eq!(one.len(), 1, "{one:#?}");
    assert!(
        [CONFLICTED_KEY, STRUGGLING_KEY, FAILED_KEY].contains(&one[0].key.as_str()),
        "{one:#?}"
    );

    let invoice = Target {
        flow: "invoice".into(),
        ..seeded.target.clone()
    };
    let records = failures(&aws.sdk, &invoice, FailureQuery::default()).await?;
    assert_eq!(keys(&records), [INVOICE_KEY], "{records:#?}");
    assert_eq!(
        records[0].failed_step.as_deref(),
        Some("odoo create invoice")
    );

    let missing = Target {
        stack: format!("{}-gone", seeded.target.stack),
        ..seeded.target.clone()
    };
    assert!(
        failures(&aws.sdk, &missing, FailureQuery::default())
            .await
            .is_err(),
        "a stack without a state table is an error, not an empty list"
    );
    Ok(())
}
