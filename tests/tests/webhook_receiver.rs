//! The webhook receiver's answers, through the release binary behind the local HTTP API:
//! rejected requests get the right status, reveal nothing, and enqueue nothing.

use puente_tests::harness::{HUBSPOT_CLIENT_SECRET, Options, World};
use puente_tests::sim::hubspot::{post, signature_headers};
use puente_tests::sim::now_ms;
use serde_json::Value;

type Headers = Vec<(String, String)>;

async fn world(name: &str) -> anyhow::Result<World> {
    let mut options = Options::for_test(name);
    options.worker_instances = 1;
    World::start(options).await
}

fn body(world: &World) -> String {
    let event = world
        .hubspot
        .company_event(11, "company.propertyChange", 901, now_ms());
    serde_json::to_string(&[event]).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_missing_tampered_and_expired_signatures_get_401_and_enqueue_nothing()
-> anyhow::Result<()> {
    let world = world("sig").await?;
    let url = world.webhook_url();
    let body = body(&world);
    let now = now_ms().to_string();
    let signed = |secret: &str, body: &str, timestamp: &str| {
        signature_headers(secret, "POST", &url, body, timestamp)
    };
    let only_v3 = |headers: Vec<(String, String)>| -> Vec<(String, String)> {
        headers
            .into_iter()
            .filter(|(k, _)| {
                !k.starts_with("X-HubSpot-Signature-Version") && k != "X-HubSpot-Signature"
            })
            .collect()
    };

    let expired = (now_ms() - 6 * 60 * 1000).to_string();
    let future = (now_ms() + 2 * 60 * 1000).to_string();
    let cases: Vec<(&str, String, Headers)> = vec![
        (
            "wrong secret",
            body.clone(),
            signed("not-the-secret", &body, &now),
        ),
        ("no headers", body.clone(), vec![]),
        (
            "no timestamp",
            body.clone(),
            signed(HUBSPOT_CLIENT_SECRET, &body, &now)
                .into_iter()
                .filter(|(k, _)| k != "X-HubSpot-Request-Timestamp")
                .collect(),
        ),
        (
            "v1 only",
            body.clone(),
            signed(HUBSPOT_CLIENT_SECRET, &body, &now)
                .into_iter()
                .filter(|(k, _)| k != "X-HubSpot-Signature-v3")
                .collect(),
        ),
        (
            "tampered body",
            body.replace("901", "902"),
            signed(HUBSPOT_CLIENT_SECRET, &body, &now),
        ),
        (
            "expired",
            body.clone(),
            signed(HUBSPOT_CLIENT_SECRET, &body, &expired),
        ),
        (
            "from the future",
            body.clone(),
            signed(HUBSPOT_CLIENT_SECRET, &body, &future),
        ),
        (
            "signed for another URL",
            body.clone(),
            only_v3(signature_headers(
                HUBSPOT_CLIENT_SECRET,
                "POST",
                "https://evil.example/webhooks/hubspot",
                &body,
                &now,
            )),
        ),
    ];
    let mut bodies = Vec::new();
    for (case, sent, headers) in &cases {
        let (status, answer) = post(&world.http, &url, sent, headers).await?;
        assert_eq!(status, 401, "{case}: {answer}");
        bodies.push(answer);
    }
    // Every refusal reads the same: nothing tells a caller what was wrong.
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert_eq!(world.queued().await?, 0, "nothing was enqueued");

    // The same body, correctly signed, goes through.
    let headers = signed(HUBSPOT_CLIENT_SECRET, &body, &now_ms().to_string());
    let (status, _) = post(&world.http, &url, &body, &headers).await?;
    assert_eq!(status, 200);
    assert_eq!(world.queued().await?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_body_gets_400_and_an_oversized_one_413_both_enqueue_nothing()
-> anyhow::Result<()> {
    let world = world("body").await?;
    let url = world.webhook_url();
    for (case, body, expected) in [
        ("not JSON", "{not json".to_owned(), 400),
        (
            "an object, not an array",
            r#"{"eventId":1}"#.to_owned(),
            400,
        ),
        (
            "an event without objectId",
            r#"[{"eventId":1,"portalId":2,"occurredAt":3,"subscriptionType":"company.creation"}]"#
                .to_owned(),
            400,
        ),
        (
            "over the body limit",
            format!("[{}]", " ".repeat(300 * 1024)),
            413,
        ),
    ] {
        let headers = signature_headers(
            HUBSPOT_CLIENT_SECRET,
            "POST",
            &url,
            &body,
            &now_ms().to_string(),
        );
        let (status, answer) = post(&world.http, &url, &body, &headers).await?;
        assert_eq!(status, expected, "{case}: {answer}");
    }
    assert_eq!(world.queued().await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_split_and_only_company_events_are_routed_to_the_customer_queue()
-> anyhow::Result<()> {
    let world = world("split").await?;
    let now = now_ms();
    let events = [
        world
            .hubspot
            .company_event(21, "company.creation", 901, now),
        world
            .hubspot
            .company_event(22, "company.propertyChange", 902, now),
        world
            .hubspot
            .company_event(23, "contact.creation", 903, now),
        world
            .hubspot
            .company_event(24, "deal.propertyChange", 904, now),
    ];
    let (status, answer) = world.deliver(&events).await?;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&answer)?;
    assert_eq!(
        (answer["enqueued"].as_u64(), answer["ignored"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        world.hubspot.state.faults.count("GET"),
        0,
        "the receiver calls no remote system"
    );

    let queued = puente_tests::aws_local::peek(&world.aws, &world.stack.customer_queue_url).await?;
    let mut ids: Vec<String> = queued
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(&m.body)
                .map(|b| b["object_id"].as_str().unwrap_or_default().to_owned())
        })
        .collect::<Result<_, _>>()?;
    ids.sort();
    assert_eq!(ids, ["901", "902"]);
    let first: Value = serde_json::from_str(&queued[0].body)?;
    for field in [
        "source",
        "subscription_type",
        "object_id",
        "event_id",
        "account_id",
        "occurred_at_ms",
        "change_source",
    ] {
        assert!(
            first.get(field).is_some(),
            "thin event carries {field}: {first}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_sqs_refuses_the_events_the_answer_is_5xx_so_hubspot_retries() -> anyhow::Result<()> {
    let world = world("sqsdown").await?;
    world
        .aws
        .sqs
        .delete_queue()
        .queue_url(&world.stack.customer_queue_url)
        .send()
        .await?;
    let event = world
        .hubspot
        .company_event(31, "company.creation", 901, now_ms());
    let (status, answer) = world.deliver(&[event]).await?;
    assert_eq!(status, 503, "{answer}");
    Ok(())
}
