//! The operator command `puente-ops dlq` against moto: dead letters put straight into a stack's
//! customer DLQ are listed with their class and reason, shown by id, and redriven to the customer
//! queue without their failure attributes.

use aws_sdk_sqs::types::MessageAttributeValue;
use puente_ops::{DeadLetters, FAILURE_ATTRIBUTES, RedriveOptions, Target};
use puente_tests::aws_local::{
    Aws, QueueSettings, Stack, StackNames, peek, provision, queue_depth,
};
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

async fn stack(name: &str) -> anyhow::Result<(Aws, Stack, DeadLetters)> {
    let aws = Aws::from_env().await?;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let names = StackNames::new(&format!("t-ops-{name}-{}", &suffix[..8]));
    let stack = provision(
        &aws,
        names,
        QueueSettings::default(),
        &json!({}),
        &json!({}),
    )
    .await?;
    let target = Target {
        stack: stack.names.stack.clone(),
        flow: "customer".into(),
    };
    let dead_letters = DeadLetters::connect(&aws.sdk, &target).await?;
    Ok((aws, stack, dead_letters))
}

fn text(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("a string attribute")
}

/// A rejection as the SQS batch runner dead-letters it, plus the routing attributes the webhook
/// receiver set on the original message. Returns the DLQ message id.
async fn rejected(aws: &Aws, stack: &Stack, n: usize, class: &str) -> anyhow::Result<String> {
    let out = aws
        .sqs
        .send_message()
        .queue_url(&stack.customer_dlq_url)
        .message_body(json!({ "eventId": n, "objectId": 900 + n }).to_string())
        .message_attributes("puente-source", text("hubspot"))
        .message_attributes("puente-event-id", text(&n.to_string()))
        .message_attributes("puente-flow", text("customer"))
        .message_attributes("puente-error-class", text(class))
        .message_attributes(
            "puente-reason",
            text(&format!(
                "tax id is invalid (event {n})\ncheck digit 8 expected"
            )),
        )
        .message_attributes(
            "puente-fields",
            text(r#"[{"field":"nit","reason":"bad check digit"}]"#),
        )
        .message_attributes("puente-source-message-id", text(&format!("src-{n}")))
        .message_attributes("puente-receive-count", text("1"))
        .send()
        .await?;
    Ok(out.message_id().unwrap_or_default().to_owned())
}

/// A message that exhausted maxReceiveCount: it arrives without failure attributes.
async fn exhausted(aws: &Aws, stack: &Stack) -> anyhow::Result<String> {
    let out = aws
        .sqs
        .send_message()
        .queue_url(&stack.customer_dlq_url)
        .message_body(json!({ "eventId": 99 }).to_string())
        .message_attributes("puente-source", text("hubspot"))
        .send()
        .await?;
    Ok(out.message_id().unwrap_or_default().to_owned())
}

async fn total(aws: &Aws, url: &str) -> anyhow::Result<u64> {
    let (visible, in_flight) = queue_depth(aws, url).await?;
    Ok(visible + in_flight)
}

#[tokio::test]
async fn list_shows_every_dead_letter_with_its_class_and_first_line_of_reason_and_hides_none()
-> anyhow::Result<()> {
    let (aws, stack, dead_letters) = stack("list").await?;
    let invalid = rejected(&aws, &stack, 1, "invalid").await?;
    let refused = rejected(&aws, &stack, 2, "target_rejected").await?;
    let old = exhausted(&aws, &stack).await?;

    let listed = dead_letters.list(100).await?;
    assert_eq!(listed.len(), 3, "{listed:?}");
    let by_id = |id: &str| {
        listed
            .iter()
            .find(|l| l.message_id == id)
            .unwrap_or_else(|| panic!("{id} not listed: {listed:?}"))
    };
    let first = by_id(&invalid);
    assert_eq!(first.flow, "customer");
    assert_eq!(first.error_class.as_deref(), Some("invalid"));
    assert_eq!(first.receive_count.as_deref(), Some("1"));
    assert_eq!(first.reason.as_deref(), Some("tax id is invalid (event 1)"));
    assert_eq!(
        by_id(&refused).error_class.as_deref(),
        Some("target_rejected")
    );
    let redriven = by_id(&old);
    assert_eq!(redriven.error_class, None);
    assert_eq!(redriven.flow, "customer");

    let line = first.to_string();
    assert!(
        line.contains(&invalid) && line.contains("class=invalid"),
        "{line}"
    );
    assert!(line.contains("tax id is invalid"), "{line}");
    assert!(
        !line.contains("objectId"),
        "the body must not be printed: {line}"
    );

    // Visibility 0: listing hides nothing from the next reader.
    assert_eq!(queue_depth(&aws, &stack.customer_dlq_url).await?, (3, 0));
    assert_eq!(dead_letters.list(2).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn show_finds_one_dead_letter_by_id_with_its_attributes_and_body() -> anyhow::Result<()> {
    let (aws, stack, dead_letters) = stack("show").await?;
    for n in 1..=4 {
        rejected(&aws, &stack, n, "invalid").await?;
    }
    let wanted = rejected(&aws, &stack, 5, "not_found").await?;

    let letter = dead_letters
        .show(&wanted, 100)
        .await?
        .expect("the message is found");
    assert_eq!(letter.message_id, wanted);
    assert_eq!(letter.attributes["puente-error-class"], "not_found");
    assert_eq!(letter.attributes["puente-source-message-id"], "src-5");
    assert_eq!(letter.attributes["puente-event-id"], "5");
    let body: serde_json::Value = serde_json::from_str(&letter.body)?;
    assert_eq!(body["eventId"], 5);

    assert!(dead_letters.show("no-such-id", 100).await?.is_none());
    assert_eq!(total(&aws, &stack.customer_dlq_url).await?, 5);
    Ok(())
}

#[tokio::test]
async fn redrive_moves_exactly_n_without_failure_attributes_and_leaves_the_rest()
-> anyhow::Result<()> {
    let (aws, stack, dead_letters) = stack("redrive").await?;
    for n in 1..=5 {
        rejected(&aws, &stack, n, "invalid").await?;
    }

    let started = Instant::now();
    let summary = dead_letters
        .redrive(RedriveOptions {
            max: 3,
            rate: 10.0,
            dry_run: false,
        })
        .await?;
    assert_eq!(
        (summary.moved, summary.failed, summary.not_deleted),
        (3, 0, 0)
    );
    // Three messages at 10 per second: at least two gaps of 100 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );

    assert_eq!(total(&aws, &stack.customer_dlq_url).await?, 2);
    assert_eq!(total(&aws, &stack.customer_queue_url).await?, 3);
    let moved = peek(&aws, &stack.customer_queue_url).await?;
    assert_eq!(moved.len(), 3, "{moved:?}");
    let mut events = HashSet::new();
    for message in &moved {
        for failure in FAILURE_ATTRIBUTES {
            assert!(
                !message.attributes.contains_key(failure),
                "{failure} kept: {:?}",
                message.attributes
            );
        }
        assert_eq!(message.attributes["puente-source"], "hubspot");
        // The worker may claim a FAILED key again only for a message an operator redrove.
        assert_eq!(message.attributes["puente-redrive"], "operator");
        let body: serde_json::Value = serde_json::from_str(&message.body)?;
        assert_eq!(
            message.attributes["puente-event-id"],
            body["eventId"].to_string(),
            "the body travels unchanged with its own attributes"
        );
        events.insert(body["eventId"].to_string());
    }
    assert_eq!(events.len(), 3, "three distinct messages moved");

    // The rest stay dead letters, with their reasons.
    let rest = dead_letters.list(100).await?;
    assert_eq!(rest.len(), 2);
    assert!(
        rest.iter()
            .all(|l| l.error_class.as_deref() == Some("invalid"))
    );
    Ok(())
}

#[tokio::test]
async fn redrive_also_moves_messages_that_exhausted_their_receives() -> anyhow::Result<()> {
    let (aws, stack, dead_letters) = stack("exhausted").await?;
    exhausted(&aws, &stack).await?;

    let summary = dead_letters
        .redrive(RedriveOptions {
            max: 10,
            rate: 50.0,
            dry_run: false,
        })
        .await?;
    assert_eq!((summary.moved, summary.failed), (1, 0));
    assert_eq!(total(&aws, &stack.customer_dlq_url).await?, 0);
    let moved = peek(&aws, &stack.customer_queue_url).await?;
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].attributes["puente-source"], "hubspot");
    Ok(())
}

#[tokio::test]
async fn a_dry_run_redrive_moves_nothing() -> anyhow::Result<()> {
    let (aws, stack, dead_letters) = stack("dry").await?;
    for n in 1..=3 {
        rejected(&aws, &stack, n, "invalid").await?;
    }

    let summary = dead_letters
        .redrive(RedriveOptions {
            max: 2,
            rate: 10.0,
            dry_run: true,
        })
        .await?;
    assert!(summary.dry_run);
    assert_eq!(
        summary.moved, 2,
        "reports what would move, bounded by --max"
    );
    assert_eq!(queue_depth(&aws, &stack.customer_dlq_url).await?, (3, 0));
    assert_eq!(total(&aws, &stack.customer_queue_url).await?, 0);
    Ok(())
}
