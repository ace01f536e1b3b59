//! The two-way customer flow end to end, with both systems' webhooks subscribed as in a real
//! installation: HubSpot's company subscription and Odoo's partner automation rule both call the
//! receiver, and both simulators fire them for every write, ours included. The tests count the
//! writes each side received and read the links, notices and ledger in moto.

use puente_tests::aws_local::text;
use puente_tests::harness::{Options, World};
use puente_tests::sim::odoo::next_second;
use serde_json::{Value, json};
use std::time::Duration;

const COMPANY: &str = "901";
const SETTLE: Duration = Duration::from_secs(90);

/// API writes the integration made to HubSpot companies (creates and PATCHes).
fn crm_writes(world: &World) -> usize {
    world
        .hubspot
        .writes()
        .iter()
        .filter(|(kind, _, _)| kind == "companies")
        .count()
}

fn erp_writes(world: &World) -> usize {
    world.odoo.partner_writes().len()
}

fn link_number(
    link: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    name: &str,
) -> i64 {
    link.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_edit_reaches_the_erp_once_and_its_echo_writes_nothing() -> anyhow::Result<()> {
    let world = World::start(Options::for_test("echo")).await?;
    let partner = world.linked_customer(COMPANY).await?;
    let (crm_before, erp_before) = (crm_writes(&world), erp_writes(&world));
    assert_eq!(
        (crm_before, erp_before),
        (0, 1),
        "the create, and no echo write"
    );

    world
        .hubspot
        .edit_company_as_user(COMPANY, &[("name", "Distribuidora Andina S.A.S.")]);
    world.settle(SETTLE).await?;

    let partner = world.odoo.partner(partner).expect("partner");
    assert_eq!(partner["name"], "Distribuidora Andina S.A.S.");
    // One write to the ERP for the edit; none back to the CRM, whose own echo never left the
    // receiver, and whose ERP echo (Odoo's webhook for our write) was recognised.
    assert_eq!(erp_writes(&world) - erp_before, 1);
    assert_eq!(crm_writes(&world) - crm_before, 0);
    assert!(
        world.odoo.partner_webhook_log().len() >= 2,
        "Odoo notified our writes"
    );
    assert!(
        !world
            .log_lines("\"outcome\":\"echo_suppressed\"")
            .is_empty(),
        "the ERP's echo was suppressed by the worker"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_automation_right_after_our_write_is_not_suppressed_and_reaches_the_crm()
-> anyhow::Result<()> {
    let world = World::start(Options::for_test("nearmiss")).await?;
    let partner = world.linked_customer(COMPANY).await?;

    // A user renames the company in HubSpot; half a second after our write to Odoo, an
    // automated action there sets the customer's credit limit (an ERP field).
    world
        .hubspot
        .edit_company_as_user(COMPANY, &[("name", "Andina Group")]);
    let writes = erp_writes(&world);
    let automation = async {
        while erp_writes(&world) == writes {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        world
            .odoo
            .edit_partner_as_user(partner, json!({"credit_limit": 25_000_000.0}));
    };
    let (settled, ()) = tokio::join!(world.settle(SETTLE), automation);
    settled?;
    world.settle(SETTLE).await?;

    let company = world.hubspot.company(COMPANY).expect("company");
    assert_eq!(company["name"], "Andina Group");
    assert_eq!(
        company.get("puente_credit_limit").map(String::as_str),
        Some("25000000.00"),
        "the automation's edit reached the CRM"
    );
    assert_eq!(
        crm_writes(&world),
        1,
        "one write to the CRM: the credit limit"
    );
    assert!(
        !world.log_lines("near miss").is_empty(),
        "the edit right after our write was counted as a near miss"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_field_edited_on_both_sides_ends_as_its_owner_says_with_one_conflict()
-> anyhow::Result<()> {
    let world = World::start(Options::for_test("conflict")).await?;
    let partner = world.linked_customer(COMPANY).await?;
    let (crm_before, erp_before) = (crm_writes(&world), erp_writes(&world));

    // Sales and accounting rename the customer at the same time; the name is the CRM's.
    world
        .odoo
        .edit_partner_as_user(partner, json!({"name": "ANDINA DISTRIBUCIONES"}));
    world
        .hubspot
        .edit_company_as_user(COMPANY, &[("name", "Andina Distribuciones SAS")]);
    world.settle(SETTLE).await?;

    let expected = "Andina Distribuciones SAS";
    assert_eq!(
        world.odoo.partner(partner).expect("partner")["name"],
        expected
    );
    assert_eq!(
        world.hubspot.company(COMPANY).expect("company")["name"],
        expected
    );
    let conflicts: Vec<_> = world
        .customer_notices()
        .await?
        .into_iter()
        .filter(|n| text(n, "kind").as_deref() == Some("conflict"))
        .collect();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert!(text(&conflicts[0], "sk").is_some_and(|sk| sk.starts_with("conflict#name#")));
    assert_eq!(crm_writes(&world), crm_before, "the CRM's value stood");
    assert_eq!(erp_writes(&world) - erp_before, 1);

    // Later runs (a poll of Odoo, HubSpot's retries of old notices) change nothing.
    next_second().await;
    world.poll_customers().await?;
    world.settle(SETTLE).await?;
    let retry = world.hubspot.company_event(
        77,
        "company.propertyChange",
        COMPANY.parse()?,
        puente_tests::sim::now_ms(),
    );
    world.deliver(&[retry]).await?;
    world.settle(SETTLE).await?;
    assert_eq!(
        world.odoo.partner(partner).expect("partner")["name"],
        expected
    );
    assert_eq!(
        world.hubspot.company(COMPANY).expect("company")["name"],
        expected
    );
    assert_eq!(erp_writes(&world) - erp_before, 1, "no flip");
    assert_eq!(crm_writes(&world), crm_before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_v3_v1_v2_of_one_record_in_one_batch_end_at_v3() -> anyhow::Result<()> {
    let world = World::start(Options::for_test("order")).await?;
    let partner = world.linked_customer(COMPANY).await?;
    let erp_before = erp_writes(&world);
    // Three edits with HubSpot's subscription paused, then their notices in the wrong order.
    world.hubspot.set_webhook(None);
    let mut events: Vec<Value> = Vec::new();
    for (n, name) in ["Andina v1", "Andina v2", "Andina v3"]
        .into_iter()
        .enumerate()
    {
        tokio::time::sleep(Duration::from_millis(30)).await;
        world
            .hubspot
            .edit_company_as_user(COMPANY, &[("name", name)]);
        let at = world.hubspot.company(COMPANY).expect("company")["hs_lastmodifieddate"].clone();
        let at = shared::domain::Timestamp::parse_rfc3339(&at)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .epoch_millis();
        events.push(world.hubspot.company_event(
            100 + n as u64,
            "company.propertyChange",
            COMPANY.parse()?,
            at,
        ));
    }
    let shuffled = [events[2].clone(), events[0].clone(), events[1].clone()];
    let (status, _) = world.deliver(&shuffled).await?;
    assert_eq!(status, 200);
    world.settle(SETTLE).await?;

    assert_eq!(
        world.odoo.partner(partner).expect("partner")["name"],
        "Andina v3"
    );
    assert_eq!(
        erp_writes(&world) - erp_before,
        1,
        "v3 once; v1 and v2 wrote nothing"
    );
    for event in &events {
        let key = format!("customer#hubspot#{COMPANY}#{}", event["occurredAt"]);
        let item = world.ledger(&key).await?.expect("ledger item");
        assert_eq!(text(&item, "status").as_deref(), Some("COMPLETED"), "{key}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_storm_trips_the_breaker_and_quarantines_the_customer() -> anyhow::Result<()> {
    let options = Options::for_test("storm").with_customer_env(&[
        ("PUENTE_BREAKER_MAX_WRITES", "3"),
        ("PUENTE_BREAKER_WINDOW_MINUTES", "10"),
    ]);
    let world = World::start(options).await?;
    let partner = world.linked_customer(COMPANY).await?;
    for n in 1..=5 {
        world
            .hubspot
            .edit_company_as_user(COMPANY, &[("name", &format!("Andina {n}"))]);
        world.settle(SETTLE).await?;
    }
    // The create and two edits were written; the third edit quarantined the customer.
    assert_eq!(erp_writes(&world), 3);
    assert_eq!(
        world.odoo.partner(partner).expect("partner")["name"],
        "Andina 2"
    );
    let link = world.customer_link(COMPANY).await?.expect("link");
    assert!(
        text(&link, "quarantine_reason").is_some_and(|r| r.contains("more than 3 writes")),
        "{link:?}"
    );
    assert!(link_number(&link, "quarantined_at_ms") > 0);
    assert!(
        !world.log_lines("\"quarantined\":1").is_empty(),
        "the quarantined metric (alarmed in the template) was published"
    );
    assert!(world.dead_letters().await?.is_empty(), "nothing failed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hubspot_merge_repoints_the_link_and_deletes_nothing_in_the_erp() -> anyhow::Result<()> {
    let world = World::start(Options::for_test("merge")).await?;
    let partner = world.linked_customer(COMPANY).await?;
    // A duplicate of Andina typed by another salesperson, never synced; then merged: the
    // unsynced one survives.
    world.hubspot.set_webhook(None);
    let duplicate = world
        .hubspot
        .create_company_as_user(&[("name", "Andina (duplicado)"), ("city", "Bogotá")]);
    world.subscribe_both_ways();
    world.hubspot.merge_companies(&duplicate, COMPANY);
    world.settle(SETTLE).await?;

    let link = world
        .customer_link(&duplicate)
        .await?
        .expect("re-pointed link");
    assert_eq!(text(&link, "other_id"), Some(partner.to_string()));
    assert!(
        world.customer_link(COMPANY).await?.is_none(),
        "the merged record's link is gone"
    );
    let partners = world.odoo.partners();
    assert_eq!(
        partners.len(),
        1,
        "nothing created, nothing deleted: {partners:?}"
    );
    assert_ne!(partners[0]["active"], false, "the partner was not archived");
    assert!(
        world
            .customer_notices()
            .await?
            .iter()
            .any(|n| text(n, "kind").as_deref() == Some("merged")),
        "the merge was recorded for a person"
    );

    // The surviving company now syncs into the same partner.
    world
        .hubspot
        .edit_company_as_user(&duplicate, &[("phone", "601 765 4321")]);
    world.settle(SETTLE).await?;
    assert_eq!(world.odoo.partners().len(), 1);
    assert_eq!(
        world.odoo.partner(partner).expect("partner")["phone"],
        "+576017654321"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_created_in_odoo_becomes_one_hubspot_company_with_our_reference()
-> anyhow::Result<()> {
    let world = World::start(Options::for_test("erpnew")).await?;
    world.define_customer_properties();
    world.subscribe_both_ways();
    let partner = world.odoo.create_partner_as_user(json!({
        "name": "Comercializadora del Valle SAS",
        "is_company": true,
        "vat": "800197268-4",
        "city": "Cali",
        "country_id": 49,
        "customer_rank": 1,
        "credit_limit": 5_000_000.0,
        "property_payment_term_id": 4,
    }));
    world.settle(SETTLE).await?;

    let reference = format!("odoo-partner-{partner}");
    let (id, company) = world
        .hubspot
        .company_by("puente_erp_ref", &reference)
        .expect("a company carrying our reference");
    assert_eq!(company["name"], "Comercializadora del Valle SAS");
    assert_eq!(company["nit"], "800197268-4");
    assert_eq!(company["city"], "Cali");
    assert_eq!(company["country"], "CO");
    assert_eq!(company["puente_credit_limit"], "5000000.00");
    assert_eq!(company["puente_payment_terms"], "30 Days");
    assert_eq!(world.hubspot.companies().len(), 1);
    // Its creation echo (HubSpot's webhook for our create) wrote nothing to Odoo.
    assert!(world.odoo.partner_writes().is_empty());
    let link = world.customer_link(&id).await?.expect("link");
    assert_eq!(text(&link, "other_id"), Some(partner.to_string()));

    // The poll finds the same partner again and writes nothing anywhere.
    world.poll_customers().await?;
    world.settle(SETTLE).await?;
    assert_eq!(world.hubspot.companies().len(), 1);
    assert_eq!(crm_writes(&world), 1);
    Ok(())
}
