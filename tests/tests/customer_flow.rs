//! The customer flow end to end: a signed HubSpot company webhook through the release binaries
//! of webhook-receiver and customer-sync (over the Lambda Runtime API) to a partner in the Odoo
//! simulator, with moto for DynamoDB, SQS and Secrets Manager.

use puente_tests::aws_local::text;
use puente_tests::harness::{Options, World};
use puente_tests::sim::faults::Fault;
use serde_json::Value;
use std::time::Duration;

const COMPANY: u64 = 901;
const DRAIN: Duration = Duration::from_secs(60);

fn andina(world: &World) {
    world.hubspot.put_company(
        &COMPANY.to_string(),
        &[
            ("name", "  Distribuidora Andina SAS "),
            ("nit", "900.123.456-8"),
            ("email", "Compras@Andina.co"),
            ("phone", "601 234 5678"),
            ("address", "Cra 7 # 71-21"),
            ("city", "Bogota\u{301}"),
            ("country", "Colombia"),
        ],
    );
}

fn creation(world: &World, event_id: u64) -> Value {
    world.hubspot.company_event(
        event_id,
        "company.creation",
        COMPANY,
        puente_tests::sim::now_ms(),
    )
}

/// Runs one poll and kills the worker's process as soon as `reached` holds, as an OOM kill or
/// a crashed sandbox would.
async fn poll_killing_the_worker_once(
    world: &World,
    reached: impl Fn() -> bool,
) -> anyhow::Result<puente_tests::platform::poller::Poll> {
    let (poll, ()) = tokio::join!(world.poller.poll_once(1), async {
        while !reached() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        world.worker.kill();
    });
    poll
}

fn key(event: &Value) -> String {
    format!("customer#hubspot#{COMPANY}#{}", event["occurredAt"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_company_webhook_becomes_one_odoo_partner_with_the_mapped_fields()
-> anyhow::Result<()> {
    let world = World::start(Options::for_test("create")).await?;
    andina(&world);
    let event = creation(&world, 1);

    let (status, _) = world.deliver(std::slice::from_ref(&event)).await?;
    assert_eq!(status, 200);
    world.drain(DRAIN).await?;

    let partners = world.odoo.partners();
    assert_eq!(partners.len(), 1, "{partners:?}");
    let p = &partners[0];
    assert_eq!(p["name"], "Distribuidora Andina SAS");
    assert_eq!(p["vat"], "900123456-8");
    assert_eq!(p["email"], "compras@andina.co");
    assert_eq!(p["phone"], "+576012345678");
    assert_eq!(p["street"], "Cra 7 # 71-21");
    assert_eq!(p["city"], "Bogotá");
    assert_eq!(p["country_id"], 49, "Colombia's res.country id");
    assert_eq!(p["is_company"], true);
    assert_eq!(p["ref"], "hubspot-company-901");

    let ledger = world.ledger(&key(&event)).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("COMPLETED"));
    assert_eq!(
        text(&ledger, "target_id"),
        p["id"].as_i64().map(|id| id.to_string())
    );
    let links: Vec<_> = world
        .table_items()
        .await?
        .into_iter()
        .filter(|i| text(i, "pk").is_some_and(|pk| pk.starts_with("LINK#")))
        .collect();
    assert_eq!(links.len(), 2, "one link item per direction");
    assert!(links.iter().any(
        |l| text(l, "pk").as_deref() == Some("LINK#customer#hubspot#901")
            && text(l, "other_id") == p["id"].as_i64().map(|id| id.to_string())
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_webhook_three_times_two_concurrently_gives_one_partner() -> anyhow::Result<()> {
    let world = World::start(Options::for_test("dup")).await?;
    andina(&world);
    let event = creation(&world, 7);
    let events = [event.clone()];

    let (first, second) = tokio::join!(world.deliver(&events), world.deliver(&events));
    let third = world.deliver(&events).await?;
    let mut enqueued = 0;
    for (status, body) in [first?, second?, third.clone()] {
        assert_eq!(status, 200, "{body}");
        enqueued += serde_json::from_str::<Value>(&body)?["enqueued"]
            .as_u64()
            .unwrap_or_default();
    }
    // The receiver remembers what it enqueued: the sequential replay adds nothing; the two
    // concurrent deliveries may both get through, and then the worker's ledger holds.
    assert_eq!(
        serde_json::from_str::<Value>(&third.1)?["replays"],
        1,
        "{third:?}"
    );
    assert!((1..=2).contains(&enqueued), "{enqueued}");
    assert_eq!(world.queued().await?, enqueued);
    world.drain(DRAIN).await?;

    assert_eq!(world.odoo.partners().len(), 1);
    assert_eq!(
        world.odoo.state.faults.count("res.partner.create"),
        1,
        "one create call in all"
    );
    let ledger = world.ledger(&key(&event)).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("COMPLETED"));
    assert!(world.dead_letters().await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_failing_twice_with_500_is_retried_to_one_partner() -> anyhow::Result<()> {
    let world = World::start(Options::for_test("retry")).await?;
    andina(&world);
    world
        .odoo
        .state
        .faults
        .inject("res.partner.search_read", Fault::Status(500), 2);
    let event = creation(&world, 3);

    world.deliver(std::slice::from_ref(&event)).await?;
    let polls = world.drain(DRAIN).await?;

    assert!(
        polls.len() >= 3,
        "two failed attempts and a successful one: {polls:?}"
    );
    assert_eq!(polls.iter().map(|p| p.retried).sum::<usize>(), 2);
    assert_eq!(world.odoo.partners().len(), 1);
    let ledger = world.ledger(&key(&event)).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("COMPLETED"));
    assert_eq!(text(&ledger, "attempts").as_deref(), Some("3"));
    assert!(world.dead_letters().await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_nit_is_dead_lettered_with_its_field_reason_and_never_retried()
-> anyhow::Result<()> {
    let world = World::start(Options::for_test("nit")).await?;
    world.hubspot.put_company(
        &COMPANY.to_string(),
        &[
            ("name", "Distribuidora Andina SAS"),
            ("nit", "900.123.456-7"),
            ("country", "CO"),
        ],
    );
    let event = creation(&world, 4);

    world.deliver(std::slice::from_ref(&event)).await?;
    let polls = world.drain(DRAIN).await?;

    assert_eq!(polls.len(), 1, "processed once, not retried: {polls:?}");
    assert_eq!(
        world
            .hubspot
            .state
            .faults
            .count("GET /crm/v3/objects/companies"),
        1
    );
    assert!(world.odoo.partners().is_empty());
    let dead = world.dead_letters().await?;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attributes["puente-error-class"], "invalid");
    let fields: Value = serde_json::from_str(&dead[0].attributes["puente-fields"])?;
    assert_eq!(fields[0]["field"], "tax_id");
    assert_eq!(fields[0]["reason"], "check digit should be 8, got 7");
    assert_eq!(
        serde_json::from_str::<Value>(&dead[0].body)?["object_id"],
        "901"
    );
    let ledger = world.ledger(&key(&event)).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("FAILED"));
    assert!(text(&ledger, "last_error").is_some_and(|e| e.contains("tax_id")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_after_odoo_created_the_partner_does_not_create_a_second()
-> anyhow::Result<()> {
    let mut options = Options::for_test("crash");
    options.worker_timeout = Duration::from_secs(3);
    options.worker_instances = 1;
    options.queues.visibility_timeout_s = 5;
    let world = World::start(options).await?;
    andina(&world);
    // Odoo commits the create and is slow to answer; meanwhile the worker process dies.
    world.odoo.state.faults.inject(
        "res.partner.create",
        Fault::DelayAfter(Duration::from_secs(30)),
        1,
    );
    let event = creation(&world, 5);
    world.deliver(std::slice::from_ref(&event)).await?;

    let first = poll_killing_the_worker_once(&world, || !world.odoo.partners().is_empty()).await?;
    assert!(first.invoke_failed, "the killed invocation never answered");
    let ledger = world.ledger(&key(&event)).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("IN_PROGRESS"));

    world.drain(DRAIN).await?;
    assert_eq!(
        world.odoo.partners().len(),
        1,
        "the retry found the partner by its reference"
    );
    assert_eq!(world.odoo.state.faults.count("res.partner.create"), 1);
    let ledger = world.ledger(&key(&event)).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("COMPLETED"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_still_waiting_at_the_deadline_is_handed_back_and_not_duplicated()
-> anyhow::Result<()> {
    let mut options = Options::for_test("deadline");
    options.worker_timeout = Duration::from_secs(4);
    options.worker_instances = 1;
    options.queues.visibility_timeout_s = 5;
    let world = World::start(options).await?;
    andina(&world);
    // Odoo commits the create, then answers after the worker's deadline.
    world.odoo.state.faults.inject(
        "res.partner.create",
        Fault::DelayAfter(Duration::from_secs(8)),
        1,
    );
    let event = creation(&world, 8);
    world.deliver(std::slice::from_ref(&event)).await?;

    let first = world.poller.poll_once(1).await?;
    assert!(
        !first.invoke_failed,
        "the invocation answered before its deadline: {first:?}"
    );
    assert_eq!(
        (first.received, first.retried),
        (1, 1),
        "the record was handed back"
    );
    assert_eq!(
        world.odoo.partners().len(),
        1,
        "the partner exists before the retry"
    );

    world.drain(DRAIN).await?;
    assert_eq!(world.odoo.partners().len(), 1);
    assert_eq!(world.odoo.state.faults.count("res.partner.create"), 1);
    let ledger = world.ledger(&key(&event)).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("COMPLETED"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_throttling_is_retried_after_its_retry_after() -> anyhow::Result<()> {
    let world = World::start(Options::for_test("throttle")).await?;
    andina(&world);
    world.hubspot.state.faults.inject(
        "GET /crm/v3/objects/companies",
        Fault::Throttle { retry_after_s: 2 },
        1,
    );
    let event = creation(&world, 6);

    world.deliver(std::slice::from_ref(&event)).await?;
    let first = world.poller.poll_once(1).await?;
    assert_eq!((first.received, first.retried), (1, 1));
    let started = std::time::Instant::now();
    world.drain(DRAIN).await?;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "waited for Retry-After"
    );
    assert_eq!(world.odoo.partners().len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_and_an_invalid_record_in_a_batch_of_ten_fail_alone() -> anyhow::Result<()>
{
    let mut options = Options::for_test("batch");
    options.worker_instances = 1;
    let world = World::start(options).await?;
    let now = puente_tests::sim::now_ms();
    // Eight valid companies and one with a wrong NIT check digit, in one HubSpot delivery.
    let mut events = Vec::new();
    for id in 1..=9u64 {
        let nit = if id == 9 {
            "900.123.456-7"
        } else {
            "900.123.456-8"
        };
        let name = format!("Cliente {id} SAS");
        world.hubspot.put_company(
            &id.to_string(),
            &[("name", &name), ("nit", nit), ("country", "CO")],
        );
        events.push(
            world
                .hubspot
                .company_event(100 + id, "company.creation", id, now),
        );
    }
    let (status, _) = world.deliver(&events).await?;
    assert_eq!(status, 200);
    // And one message nobody can read, put on the queue directly.
    world
        .aws
        .sqs
        .send_message()
        .queue_url(&world.stack.customer_queue_url)
        .message_body("{\"not\": \"a change event\"")
        .send()
        .await?;

    let first = world.poller.poll_once(1).await?;
    assert_eq!(first.received, 10, "one batch of ten");
    assert_eq!(first.retried, 0, "rejections are not retried");
    world.drain(DRAIN).await?;

    let partners = world.odoo.partners();
    assert_eq!(partners.len(), 8, "the eight valid companies, once each");
    assert_eq!(world.odoo.state.faults.count("res.partner.create"), 8);
    let mut classes: Vec<String> = world
        .dead_letters()
        .await?
        .into_iter()
        .map(|m| m.attributes["puente-error-class"].clone())
        .collect();
    classes.sort();
    assert_eq!(classes, ["invalid", "poison"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_after_its_claim_and_before_any_call_leaves_the_key_to_the_retry()
-> anyhow::Result<()> {
    let mut options = Options::for_test("claimkill");
    options.worker_timeout = Duration::from_secs(3);
    options.worker_instances = 1;
    options.queues.visibility_timeout_s = 5;
    let world = World::start(options).await?;
    andina(&world);
    // HubSpot is slow to answer: the worker holds the claim and has written nothing yet.
    world.hubspot.state.faults.inject(
        "GET /crm/v3/objects/companies",
        Fault::DelayBefore(Duration::from_secs(30)),
        1,
    );
    let event = creation(&world, 9);
    world.deliver(std::slice::from_ref(&event)).await?;

    let first = poll_killing_the_worker_once(&world, || {
        world
            .hubspot
            .state
            .faults
            .count("GET /crm/v3/objects/companies")
            > 0
    })
    .await?;
    assert!(first.invoke_failed, "the killed invocation never answered");
    let ledger = world.ledger(&key(&event)).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("IN_PROGRESS"));
    assert!(world.odoo.partners().is_empty());

    world.drain(DRAIN).await?;
    assert_eq!(world.odoo.partners().len(), 1);
    let ledger = world.ledger(&key(&event)).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("COMPLETED"));
    Ok(())
}
