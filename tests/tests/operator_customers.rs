//! The operator command `puente-ops customers` against a whole deployment (moto, the simulators
//! and the release binaries): an edit storm trips the customer flow's circuit breaker, the
//! quarantined customer and the notices are listed, and `release` lifts the quarantine and
//! re-syncs both sides, so the edit that was held back reaches Odoo. A customer that is not
//! quarantined is refused, with nothing changed.

use puente_ops::{CustomerQuery, Release, Target, customers, release};
use puente_tests::aws_local::text;
use puente_tests::harness::{Options, World};
use shared::aws::customer_links::DynamoCustomerLinks;
use shared::connectors::{hubspot, odoo};
use shared::ports::{CustomerLinks, CustomerNotice};
use std::time::Duration;

const COMPANY: &str = "901";
const SETTLE: Duration = Duration::from_secs(90);

fn target(world: &World) -> Target {
    Target {
        stack: world.stack.names.stack.clone(),
        flow: "customer".into(),
    }
}

/// Notices as the customer flow records them, through the real link store.
async fn record_notices(world: &World) -> anyhow::Result<()> {
    let links = DynamoCustomerLinks::new(
        &world.aws.sdk,
        &world.stack.names.table,
        hubspot::SYSTEM,
        odoo::SYSTEM,
    );
    let notice = |kind: &'static str, record: &str, detail: &str| CustomerNotice {
        kind,
        record: record.into(),
        identity: format!("{kind}#{record}"),
        detail: detail.into(),
    };
    links
        .record_notice(&notice(
            "deleted",
            "hubspot#950",
            "deleted in hubspot; nothing was deleted in odoo",
        ))
        .await?;
    // Notices are timed to the second: the second one is newer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    links
        .record_notice(&notice(
            "merged",
            "hubspot#960",
            "merged into hubspot 970, which is linked to ERP record 42",
        ))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_quarantined_by_an_edit_storm_is_listed_and_released_and_its_held_back_edit_reaches_the_erp()
-> anyhow::Result<()> {
    let options = Options::for_test("opscust").with_customer_env(&[
        ("PUENTE_BREAKER_MAX_WRITES", "3"),
        ("PUENTE_BREAKER_WINDOW_MINUTES", "10"),
    ]);
    let world = World::start(options).await?;
    let target = target(&world);
    let partner = world.linked_customer(COMPANY).await?;
    // With at most 3 writes in the window, the create and two edits are written and the third
    // edit quarantines the customer (two_way.rs asserts that count); here the storm simply goes
    // on until the breaker trips, and the edit it held back is the one release must deliver.
    let mut held_back = None;
    for n in 1..=6 {
        let name = format!("Andina {n}");
        world
            .hubspot
            .edit_company_as_user(COMPANY, &[("name", &name)]);
        world.settle(SETTLE).await?;
        let link = world.customer_link(COMPANY).await?.expect("link");
        if text(&link, "quarantine_reason").is_some() {
            held_back = Some(name);
            break;
        }
    }
    let held_back = held_back.expect("the edit storm tripped the breaker");
    assert_ne!(
        world.odoo.partner(partner).expect("partner")["name"],
        held_back.as_str(),
        "the quarantined edit was not written"
    );
    let erp_writes = world.odoo.partner_writes().len();
    record_notices(&world).await?;

    // `customers` lists the quarantine with its ids, time and reason, and the notices.
    let found = customers(&world.aws.sdk, &target, CustomerQuery::default()).await?;
    assert_eq!(found.quarantined.len(), 1, "{found:#?}");
    let quarantined = &found.quarantined[0];
    assert_eq!(quarantined.crm_id, COMPANY);
    assert_eq!(quarantined.erp_id, Some(partner.to_string()));
    assert!(
        quarantined
            .reason
            .contains("more than 3 writes within 10 minutes"),
        "{quarantined:?}"
    );
    assert!(
        quarantined.quarantined_at_ms.is_some_and(|at| at > 0),
        "{quarantined:?}"
    );
    let line = quarantined.to_string();
    assert!(
        line.starts_with(&format!("crm {COMPANY}  erp {partner}  quarantined 20")),
        "{line}"
    );
    assert!(
        line.ends_with("more than 3 writes within 10 minutes"),
        "{line}"
    );
    let records: Vec<(&str, &str)> = found
        .notices
        .iter()
        .map(|n| (n.kind.as_str(), n.record.as_str()))
        .collect();
    assert_eq!(
        records,
        [("merged", "hubspot#960"), ("deleted", "hubspot#950")],
        "newest first: {found:#?}"
    );
    assert!(found.notices[0].noticed_at > found.notices[1].noticed_at);

    // A dry run says what it would do and changes nothing.
    let before = world.customer_link(COMPANY).await?.expect("link");
    let would = release(
        &world.aws.sdk,
        &target,
        &Release {
            crm_id: COMPANY.into(),
            dry_run: true,
        },
    )
    .await?;
    assert!(would.dry_run && would.message_ids.is_empty(), "{would:?}");
    assert_eq!(would.events.len(), 2, "{would:?}");
    assert_eq!(world.customer_link(COMPANY).await?, Some(before));
    assert_eq!(world.queued().await?, 0, "a dry run queues nothing");

    let released = release(
        &world.aws.sdk,
        &target,
        &Release {
            crm_id: COMPANY.into(),
            dry_run: false,
        },
    )
    .await?;
    assert_eq!(released.customer.erp_id, Some(partner.to_string()));
    assert!(
        released.customer.reason.contains("more than 3 writes"),
        "{released:?}"
    );
    let sides: Vec<(&str, &str)> = released
        .events
        .iter()
        .map(|e| (e.source.as_str(), e.object_id.as_str()))
        .collect();
    let partner_id = partner.to_string();
    assert_eq!(sides, [("hubspot", COMPANY), ("odoo", partner_id.as_str())]);
    assert_eq!(released.message_ids.len(), 2, "{released:?}");
    let link = world.customer_link(COMPANY).await?.expect("link");
    assert_eq!(text(&link, "quarantine_reason"), None, "{link:?}");
    assert_eq!(text(&link, "quarantined_at_ms"), None, "{link:?}");
    assert_eq!(text(&link, "window_writes").as_deref(), Some("0"));

    // The worker re-syncs both sides: the held-back name reaches Odoo, once.
    world.settle(SETTLE).await?;
    assert_eq!(
        world.odoo.partner(partner).expect("partner")["name"],
        held_back.as_str()
    );
    assert_eq!(
        world.odoo.partner_writes().len(),
        erp_writes + 1,
        "one write for the release"
    );
    let link = world.customer_link(COMPANY).await?.expect("link");
    assert_eq!(text(&link, "quarantine_reason"), None, "{link:?}");
    for event in &released.events {
        let key = format!(
            "customer#{}#{}#{}",
            event.source, event.object_id, event.occurred_at_ms
        );
        let item = world.ledger(&key).await?.expect("ledger item");
        assert_eq!(text(&item, "status").as_deref(), Some("COMPLETED"), "{key}");
    }
    assert!(world.dead_letters().await?.is_empty(), "nothing failed");
    let found = customers(&world.aws.sdk, &target, CustomerQuery::default()).await?;
    assert!(found.quarantined.is_empty(), "{found:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releasing_a_customer_that_is_not_quarantined_is_refused_and_changes_nothing()
-> anyhow::Result<()> {
    let world = World::start(Options::for_test("opsfree")).await?;
    let target = target(&world);
    let partner = world.linked_customer(COMPANY).await?;
    let link = world.customer_link(COMPANY).await?.expect("link");
    let writes = world.odoo.partner_writes().len();

    for (crm_id, dry_run) in [(COMPANY, false), (COMPANY, true), ("999", false)] {
        let refused = release(
            &world.aws.sdk,
            &target,
            &Release {
                crm_id: crm_id.into(),
                dry_run,
            },
        )
        .await
        .expect_err("not quarantined");
        assert_eq!(
            refused.to_string(),
            format!("customer {crm_id} is not quarantined (or not linked)")
        );
    }
    assert_eq!(world.customer_link(COMPANY).await?, Some(link));
    assert_eq!(
        world.customer_link("999").await?,
        None,
        "no link was made up"
    );
    assert_eq!(world.queued().await?, 0, "nothing was queued");
    world.settle(SETTLE).await?;
    assert_eq!(world.odoo.partner_writes().len(), writes);
    assert_eq!(
        world.odoo.partner(partner).expect("partner")["name"],
        "Distribuidora Andina SAS"
    );

    let found = customers(&world.aws.sdk, &target, CustomerQuery::default()).await?;
    assert!(
        found.quarantined.is_empty() && found.notices.is_empty(),
        "{found:#?}"
    );
    Ok(())
}
