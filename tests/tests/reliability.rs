//! The reliability core end to end, on the release binaries with moto and the simulators: replays
//! from the sender, duplicates across many workers, a target's validation refusal, the same
//! business key with another payload, an unkeyed message, and a dead-letter redrive of hundreds
//! of messages while live traffic for the same records continues. Each test ends by checking the
//! Odoo simulator, the ledger and the dead-letter queue.

use aws_sdk_dynamodb::types::AttributeValue;
use puente_ops::{DeadLetters, RedriveOptions, Target};
use puente_tests::aws_local::{self, text};
use puente_tests::harness::{Options, World};
use puente_tests::sim::faults::Fault;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const DRAIN: Duration = Duration::from_secs(90);
const NIT: &str = "900.123.456-8";

fn company(world: &World, id: u64, name: &str) {
    world.hubspot.put_company(
        &id.to_string(),
        &[("name", name), ("nit", NIT), ("country", "CO")],
    );
}

fn event(world: &World, event_id: u64, kind: &str, id: u64, at: i64) -> Value {
    world.hubspot.company_event(event_id, kind, id, at)
}

fn key(event: &Value) -> String {
    format!(
        "customer#hubspot#{}#{}",
        event["objectId"], event["occurredAt"]
    )
}

/// The thin change event the receiver would queue for a HubSpot company event.
fn thin(world: &World, event: &Value) -> String {
    json!({
        "source": "hubspot",
        "entity": "customer",
        "subscription_type": event["subscriptionType"],
        "object_id": event["objectId"].to_string(),
        "event_id": event["eventId"].to_string(),
        "account_id": world.hubspot.state.portal_id.to_string(),
        "occurred_at_ms": event["occurredAt"],
        "change_source": "CRM_UI",
    })
    .to_string()
}

async fn enqueue(world: &World, bodies: &[String]) -> anyhow::Result<()> {
    for chunk in bodies.chunks(10) {
        let mut batch = world
            .aws
            .sqs
            .send_message_batch()
            .queue_url(&world.stack.customer_queue_url);
        for (i, body) in chunk.iter().enumerate() {
            batch = batch.entries(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()?,
            );
        }
        let out = batch.send().await?;
        anyhow::ensure!(out.failed().is_empty(), "refused: {:?}", out.failed());
    }
    Ok(())
}

fn odoo_writes(world: &World) -> usize {
    let faults = &world.odoo.state.faults;
    faults.count("res.partner.create") + faults.count("res.partner.write")
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

async fn dlq_depth(world: &World) -> anyhow::Result<u64> {
    let (visible, in_flight) =
        aws_local::queue_depth(&world.aws, &world.stack.customer_dlq_url).await?;
    Ok(visible + in_flight)
}

/// A company's creation webhook, delivered, drained and applied once, then the same delivery
/// sent again (freshly signed, as HubSpot retries): the event, Odoo's writes after the first
/// delivery, and the receiver's answer to the second.
async fn created_then_delivered_again(
    world: &World,
    event_id: u64,
    company_id: u64,
    name: &str,
) -> anyhow::Result<(Value, usize, Value)> {
    company(world, company_id, name);
    let created = event(
        world,
        event_id,
        "company.creation",
        company_id,
        puente_tests::sim::now_ms(),
    );
    let (status, _) = world.deliver(std::slice::from_ref(&created)).await?;
    assert_eq!(status, 200);
    world.drain(DRAIN).await?;
    assert_eq!(world.odoo.partners().len(), 1);
    let writes = odoo_writes(world);
    let (status, body) = world.deliver(std::slice::from_ref(&created)).await?;
    assert_eq!(status, 200, "{body}");
    Ok((created, writes, serde_json::from_str(&body)?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_webhook_enqueues_nothing_and_a_late_duplicate_writes_nothing()
-> anyhow::Result<()> {
    let world = World::start(Options::for_test("replay")).await?;
    let (created, writes, answer) =
        created_then_delivered_again(&world, 11, 901, "Distribuidora Andina SAS").await?;
    // HubSpot retried the same delivery later (freshly signed): 2xx, nothing enqueued.
    assert_eq!(
        (answer["enqueued"].as_u64(), answer["replays"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(world.queued().await?, 0);
    let remembered = world
        .table_items()
        .await?
        .into_iter()
        .find(|i| text(i, "pk").is_some_and(|pk| pk.starts_with("HOOK#hubspot#")))
        .expect("the delivery is remembered");
    let horizon = number(&remembered, "expires_at").expect("expiry")
        - number(&remembered, "enqueued_at").expect("enqueued");
    assert!(
        horizon >= 3 * 24 * 3600,
        "kept {horizon} s, less than HubSpot retries"
    );

    // Past the delivery log's horizon the same change reaches the worker: the ledger holds.
    enqueue(&world, &[thin(&world, &created)]).await?;
    world.drain(DRAIN).await?;
    assert_eq!(odoo_writes(&world), writes, "no second write");
    assert_eq!(world.odoo.partners().len(), 1);
    assert!(world.dead_letters().await?.is_empty());
    Ok(())
}

/// The delivery log is a first line that costs one DynamoDB write and one read per event; with
/// it turned off (`PUENTE_DELIVERY_HORIZON_HOURS=0`) a replay is enqueued again and the
/// worker's ledger alone keeps it from being applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_delivery_log_a_replay_is_enqueued_and_still_applied_once() -> anyhow::Result<()>
{
    let world = World::start(
        Options::for_test("nolog").with_receiver_env(&[("PUENTE_DELIVERY_HORIZON_HOURS", "0")]),
    )
    .await?;
    let (_, writes, answer) =
        created_then_delivered_again(&world, 13, 903, "Papelería La Pluma SAS").await?;
    assert_eq!(
        (answer["enqueued"].as_u64(), answer["replays"].as_u64()),
        (Some(1), Some(0)),
        "no log, so the replay is not recognised at the door"
    );
    world.drain(DRAIN).await?;
    assert_eq!(odoo_writes(&world), writes, "no second write");
    assert_eq!(world.odoo.partners().len(), 1);
    assert!(world.dead_letters().await?.is_empty());
    let items = world.table_items().await?;
    assert!(
        !items
            .iter()
            .any(|i| text(i, "pk").is_some_and(|pk| pk.starts_with("HOOK#"))),
        "nothing remembered"
    );
    assert!(
        items.iter().any(|i| {
            text(i, "pk").is_some_and(|pk| pk.starts_with("IDEM#"))
                && text(i, "status").as_deref() == Some("COMPLETED")
        }),
        "the ledger holds the change, completed"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_copies_of_one_change_on_six_workers_apply_once() -> anyhow::Result<()> {
    let mut options = Options::for_test("six");
    options.worker_instances = 6;
    let mut world = World::start(options).await?;
    world.poller.batch_size = 1;
    company(&world, 902, "Ferretería El Tornillo");
    let created = event(
        &world,
        12,
        "company.creation",
        902,
        puente_tests::sim::now_ms(),
    );
    enqueue(&world, &vec![thin(&world, &created); 12]).await?;

    let polls = futures_util::future::join_all((0..6).map(|_| async {
        let mut received = 0;
        while world.queued().await? > 0 {
            received += world.poller.poll_once(1).await?.received;
        }
        anyhow::Ok(received)
    }))
    .await;
    let received: usize = polls
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .sum();
    world.drain(DRAIN).await?;

    assert!(received >= 12, "every copy was delivered ({received})");
    assert_eq!(world.odoo.state.faults.count("res.partner.create"), 1);
    assert_eq!(world.odoo.partners().len(), 1);
    let ledger = world.ledger(&key(&created)).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("COMPLETED"));
    assert!(world.dead_letters().await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_refusing_the_write_parks_the_change_with_its_step_and_failure_record()
-> anyhow::Result<()> {
    let world = World::start(Options::for_test("refused")).await?;
    company(&world, 903, "Comercializadora Sur Ltda");
    world.odoo.state.faults.inject(
        "res.partner.create",
        Fault::AppError {
            name: "odoo.exceptions.ValidationError".into(),
            message: "The VAT number does not seem to be valid.".into(),
        },
        1,
    );
    let created = event(
        &world,
        13,
        "company.creation",
        903,
        puente_tests::sim::now_ms(),
    );
    world.deliver(std::slice::from_ref(&created)).await?;
    let polls = world.drain(DRAIN).await?;

    assert_eq!(polls.len(), 1, "a refusal is never retried: {polls:?}");
    assert_eq!(world.odoo.state.faults.count("res.partner.create"), 1);
    assert!(world.odoo.partners().is_empty());
    let dead = world.dead_letters().await?;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attributes["puente-error-class"], "target_rejected");
    assert!(
        dead[0].attributes["puente-reason"].contains("odoo create partner"),
        "{:?}",
        dead[0].attributes
    );
    let ledger = world.ledger(&key(&created)).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("FAILED"));
    assert_eq!(
        text(&ledger, "error_class").as_deref(),
        Some("target_rejected")
    );
    assert_eq!(
        text(&ledger, "failed_step").as_deref(),
        Some("odoo create partner")
    );
    assert_eq!(number(&ledger, "attempts"), Some(1));
    assert!(number(&ledger, "first_failure_at").is_some());
    assert_eq!(
        number(&ledger, "first_failure_at"),
        number(&ledger, "last_failure_at")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_with_another_payload_is_parked_as_a_conflict_and_changes_nothing()
-> anyhow::Result<()> {
    let world = World::start(Options::for_test("conflict")).await?;
    company(&world, 904, "Textiles del Valle SAS");
    let created = event(
        &world,
        14,
        "company.creation",
        904,
        puente_tests::sim::now_ms(),
    );
    world.deliver(std::slice::from_ref(&created)).await?;
    world.drain(DRAIN).await?;
    let writes = odoo_writes(&world);

    // Same record and instant (so the same business key) from another portal.
    let mut other = created.clone();
    other["portalId"] = json!(99999);
    other["eventId"] = json!(15);
    let (status, _) = world.deliver(&[other]).await?;
    assert_eq!(status, 200);
    world.drain(DRAIN).await?;

    assert_eq!(
        odoo_writes(&world),
        writes,
        "the conflicting change wrote nothing"
    );
    assert_eq!(world.odoo.partners().len(), 1);
    let dead = world.dead_letters().await?;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attributes["puente-error-class"], "conflict");
    let ledger = world.ledger(&key(&created)).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("COMPLETED"));
    assert_eq!(number(&ledger, "conflicts"), Some(1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_without_a_business_key_is_parked_as_poison_and_claims_nothing()
-> anyhow::Result<()> {
    let world = World::start(Options::for_test("unkeyed")).await?;
    let created = event(&world, 16, "company.creation", 905, 0);
    let mut unkeyed: Value = serde_json::from_str(&thin(&world, &created))?;
    unkeyed["object_id"] = json!("");
    enqueue(&world, &[unkeyed.to_string()]).await?;
    world.drain(DRAIN).await?;

    let dead = world.dead_letters().await?;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attributes["puente-error-class"], "poison");
    let fields: Value = serde_json::from_str(&dead[0].attributes["puente-fields"])?;
    let named: HashSet<&str> = fields
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(named, HashSet::from(["object_id", "occurred_at_ms"]));
    assert_eq!(
        world
            .hubspot
            .state
            .faults
            .count("GET /crm/v3/objects/companies"),
        0
    );
    assert!(
        !world
            .table_items()
            .await?
            .iter()
            .any(|i| text(i, "pk").is_some_and(|pk| pk.starts_with("IDEM#"))),
        "nothing was claimed"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_of_two_hundred_under_live_traffic_applies_every_change_once()
-> anyhow::Result<()> {
    const COMPANIES: u64 = 200;
    let world = World::start(Options::for_test("redrive")).await?;
    let ids: Vec<u64> = (1..=COMPANIES).map(|n| 10_000 + n).collect();
    for id in &ids {
        company(&world, *id, &format!("Cliente {id} SAS"));
    }
    // Odoo refuses every create for a while: all two hundred creations are parked.
    world.odoo.state.faults.inject(
        "res.partner.create",
        Fault::AppError {
            name: "odoo.exceptions.ValidationError".into(),
            message: "Fiscal position is being reconfigured.".into(),
        },
        COMPANIES as u32,
    );
    let at = puente_tests::sim::now_ms();
    let creations: Vec<Value> = ids
        .iter()
        .map(|id| event(&world, *id, "company.creation", *id, at))
        .collect();
    for chunk in creations.chunks(100) {
        let (status, body) = world.deliver(chunk).await?;
        assert_eq!(status, 200, "{body}");
    }
    world.drain(Duration::from_secs(180)).await?;
    assert_eq!(dlq_depth(&world).await?, COMPANIES);
    assert!(world.odoo.partners().is_empty());

    // The operator redrives while HubSpot keeps sending changes of the same companies.
    let target = Target {
        stack: world.stack.names.stack.clone(),
        flow: "customer".into(),
    };
    let dead_letters = DeadLetters::connect(&world.aws.sdk, &target).await?;
    let sending = AtomicBool::new(true);
    let later = at + 1000;
    let changes: Vec<Value> = ids
        .iter()
        .map(|id| event(&world, 100_000 + id, "company.propertyChange", *id, later))
        .collect();
    let redrive = async {
        let mut moved = 0;
        while moved < COMPANIES as usize {
            let summary = dead_letters
                .redrive(RedriveOptions {
                    max: 50,
                    rate: 200.0,
                    dry_run: false,
                })
                .await?;
            moved += summary.moved;
        }
        anyhow::Ok(moved)
    };
    let live = async {
        for chunk in changes.chunks(25) {
            for change in chunk {
                let id = change["objectId"].as_u64().unwrap_or_default();
                company(&world, id, &format!("Cliente {id} SAS (actualizado)"));
            }
            let (status, body) = world.deliver(chunk).await?;
            anyhow::ensure!(status == 200, "{body}");
        }
        sending.store(false, Ordering::SeqCst);
        anyhow::Ok(())
    };
    let consume = futures_util::future::join_all((0..2).map(|_| async {
        while sending.load(Ordering::SeqCst) || world.queued().await? > 0 {
            world.poller.poll_once(1).await?;
        }
        anyhow::Ok(())
    }));
    let (moved, sent, consumed) = tokio::join!(redrive, live, consume);
    assert_eq!(moved?, COMPANIES as usize);
    sent?;
    consumed.into_iter().collect::<Result<Vec<_>, _>>()?;
    world.drain(Duration::from_secs(180)).await?;

    let partners = world.odoo.partners();
    let refs: HashSet<String> = partners
        .iter()
        .filter_map(|p| p.get("ref")?.as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        partners.len(),
        COMPANIES as usize,
        "one partner per company"
    );
    assert_eq!(refs.len(), COMPANIES as usize);
    assert!(
        partners.iter().all(|p| p["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("(actualizado)"))),
        "every partner holds its company's latest name"
    );
    assert_eq!(dlq_depth(&world).await?, 0);
    let items = world.table_items().await?;
    let status_of: HashMap<String, String> = items
        .iter()
        .filter_map(|i| Some((text(i, "pk")?, text(i, "status")?)))
        .collect();
    for change in creations.iter().chain(&changes) {
        assert_eq!(
            status_of
                .get(&format!("IDEM#{}", key(change)))
                .map(String::as_str),
            Some("COMPLETED"),
            "{}",
            key(change)
        );
    }
    Ok(())
}
