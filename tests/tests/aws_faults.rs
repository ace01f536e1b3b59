//! puente's own AWS dependencies failing under the release binaries: DynamoDB throttling the
//! ledger claim, SQS refusing the receiver's batch, DynamoDB losing the completion after the Odoo
//! write. The faults come from a proxy between the functions and moto, so the SDK's own retries
//! run for real; every test ends on the targets: the change applied exactly once (one Odoo
//! partner, a COMPLETED ledger item, nothing dead-lettered).

use puente_tests::aws_local::text;
use puente_tests::harness::{Options, World};
use puente_tests::platform::aws_proxy::{AwsAnswer, AwsFault, AwsProxy};
use serde_json::Value;
use std::time::Duration;

const COMPANY: u64 = 901;
const DRAIN: Duration = Duration::from_secs(30);
/// The SDK's standard retry mode: one call is at most three attempts.
const SDK_ATTEMPTS: usize = 3;
/// The ledger's claims are the PutItems on `IDEM#` keys (record locks are PutItems too).
const CLAIM: &str = "IDEM#";
/// Only the completion writes COMPLETED; `mark_applied` and `release` are UpdateItems too.
const COMPLETION: &str = "#status = :completed";

async fn world(name: &str) -> anyhow::Result<World> {
    let mut options = Options::for_test(name);
    options.aws_proxy = true;
    options.worker_instances = 1;
    let world = World::start(options).await?;
    world.hubspot.put_company(
        &COMPANY.to_string(),
        &[
            ("name", "Distribuidora Andina SAS"),
            ("nit", "900.123.456-8"),
            ("country", "CO"),
        ],
    );
    Ok(world)
}

fn proxy(world: &World) -> &AwsProxy {
    world
        .aws_proxy
        .as_ref()
        .expect("the world was started with the AWS proxy")
}

fn creation(world: &World, event_id: u64) -> Value {
    world.hubspot.company_event(
        event_id,
        "company.creation",
        COMPANY,
        puente_tests::sim::now_ms(),
    )
}

fn key(event: &Value) -> String {
    format!("customer#hubspot#{COMPANY}#{}", event["occurredAt"])
}

/// Exactly one partner for the company, a COMPLETED ledger item pointing at it, no dead letter.
async fn assert_applied_once(world: &World, event: &Value) -> anyhow::Result<()> {
    let partners = world.odoo.partners();
    assert_eq!(partners.len(), 1, "{partners:?}");
    assert_eq!(partners[0]["ref"], format!("hubspot-company-{COMPANY}"));
    assert_eq!(world.odoo.state.faults.count("res.partner.create"), 1);
    let ledger = world.ledger(&key(event)).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("COMPLETED"));
    assert_eq!(
        text(&ledger, "target_id"),
        partners[0]["id"].as_i64().map(|id| id.to_string())
    );
    assert!(world.dead_letters().await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_ledger_claim_writes_nothing_to_odoo_and_is_retried_through_sqs()
-> anyhow::Result<()> {
    let world = world("claimthrottle").await?;
    let aws = proxy(&world);
    // One more throttle than one call's attempts: the first delivery's claim fails outright,
    // and the redelivery's claim succeeds on the SDK's second attempt.
    aws.inject(
        AwsFault::new("PutItem", AwsAnswer::Throttled).when_body_contains(CLAIM),
        SDK_ATTEMPTS as u32 + 1,
    );
    let event = creation(&world, 41);
    let (status, answer) = world.deliver(std::slice::from_ref(&event)).await?;
    assert_eq!(status, 200, "{answer}");

    let first = world.poller.poll_once(1).await?;
    assert_eq!((first.received, first.retried), (1, 1), "{first:?}");
    assert!(
        !first.invoke_failed,
        "the record failed, not the invocation"
    );
    assert_eq!(
        aws.faulted("PutItem"),
        SDK_ATTEMPTS,
        "the SDK's own retries"
    );
    assert!(
        world.odoo.partners().is_empty(),
        "nothing written without the claim"
    );
    assert_eq!(world.odoo.state.faults.count("res.partner"), 0);
    assert_eq!(
        world
            .hubspot
            .state
            .faults
            .count("GET /crm/v3/objects/companies"),
        0,
        "the claim comes before any remote call"
    );
    assert!(
        world.ledger(&key(&event)).await?.is_none(),
        "no claim was written"
    );

    world.drain(DRAIN).await?;
    assert_eq!(aws.faulted("PutItem"), SDK_ATTEMPTS + 1);
    assert_eq!(
        aws.count_containing("PutItem", CLAIM),
        SDK_ATTEMPTS + 2,
        "one claim got through"
    );
    assert_applied_once(&world, &event).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_refusing_the_receivers_batch_gets_5xx_and_hubspots_retry_is_applied_once()
-> anyhow::Result<()> {
    let world = world("sqs500").await?;
    let aws = proxy(&world);
    aws.inject(
        AwsFault::new("SendMessageBatch", AwsAnswer::InternalError),
        SDK_ATTEMPTS as u32,
    );
    let event = creation(&world, 42);
    let events = [event.clone()];

    let (status, answer) = world.deliver(&events).await?;
    assert!((500..600).contains(&status), "{status} {answer}");
    assert_eq!(aws.faulted("SendMessageBatch"), SDK_ATTEMPTS);
    assert_eq!(world.queued().await?, 0, "nothing was enqueued");

    // HubSpot retries a failed delivery with the same events.
    let (status, answer) = world.deliver(&events).await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(aws.count("SendMessageBatch"), SDK_ATTEMPTS + 1);
    assert_eq!(world.queued().await?, 1);
    world.drain(DRAIN).await?;
    assert_applied_once(&world, &event).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_completion_after_the_odoo_write_is_retried_and_finds_the_partner()
-> anyhow::Result<()> {
    let world = world("lostcomplete").await?;
    let aws = proxy(&world);
    // A 500, then connections closed without an answer: every attempt of the call fails.
    aws.inject(
        AwsFault::new("UpdateItem", AwsAnswer::InternalError).when_body_contains(COMPLETION),
        1,
    );
    aws.inject(
        AwsFault::new("UpdateItem", AwsAnswer::DropConnection).when_body_contains(COMPLETION),
        SDK_ATTEMPTS as u32 - 1,
    );
    let event = creation(&world, 43);
    world.deliver(std::slice::from_ref(&event)).await?;

    let first = world.poller.poll_once(1).await?;
    assert_eq!((first.received, first.retried), (1, 1), "{first:?}");
    assert_eq!(aws.count_containing("UpdateItem", COMPLETION), SDK_ATTEMPTS);
    assert_eq!(aws.faulted("UpdateItem"), SDK_ATTEMPTS);
    assert_eq!(world.odoo.partners().len(), 1, "Odoo has the partner");
    let ledger = world.ledger(&key(&event)).await?.expect("ledger item");
    assert_eq!(
        text(&ledger, "status").as_deref(),
        Some("IN_PROGRESS"),
        "its completion is not recorded"
    );
    assert_eq!(
        text(&ledger, "error_class").as_deref(),
        Some("transient"),
        "the key was released for the retry"
    );
    let link = world.customer_link(&COMPANY.to_string()).await?;
    assert_eq!(
        link.as_ref().and_then(|link| text(link, "other_id")),
        world.odoo.partners()[0]["id"]
            .as_i64()
            .map(|id| id.to_string()),
        "the link records the partner written"
    );

    world.drain(DRAIN).await?;
    assert_eq!(
        aws.count_containing("UpdateItem", COMPLETION),
        SDK_ATTEMPTS + 1
    );
    assert!(
        world.odoo.state.faults.count("res.partner.search_read") >= 2,
        "the retry looked the partner up by its reference"
    );
    assert_applied_once(&world, &event).await
}
