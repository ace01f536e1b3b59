//! The reconciler on its release binary, invoked as its schedules invoke it, against moto and
//! both simulators: it finds what the webhooks missed, repairs it through the customer queue
//! (the customer-sync worker makes the writes), and keeps its watermarks honest.

use puente_tests::aws_local::text;
use puente_tests::harness::{Options, World};
use puente_tests::sim::faults::Fault;
use puente_tests::sim::odoo::next_second;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const DRAIN: Duration = Duration::from_secs(90);

/// How many differences of `class` the report found in the customer flow.
fn found(report: &Value, class: &str) -> u64 {
    report["found"]["customer"][class].as_u64().unwrap_or(0)
}

/// The report's differences, all classes, all flows.
fn drift(report: &Value) -> u64 {
    ["missing", "drifted", "conflict", "orphan_link", "invalid"]
        .iter()
        .map(|class| found(report, class))
        .sum()
}

fn andina(id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("name", format!("Distribuidora Andina {id} SAS")),
        ("nit", "900.123.456-8".into()),
        ("city", "Bogotá".into()),
        ("country", "CO".into()),
    ]
}

fn put_company(world: &World, id: &str) {
    let properties = andina(id);
    let pairs: Vec<(&str, &str)> = properties.iter().map(|(k, v)| (*k, v.as_str())).collect();
    world.hubspot.put_company(id, &pairs);
}

/// The references of Odoo's partners, sorted.
fn partner_refs(world: &World) -> Vec<String> {
    let mut refs: Vec<String> = world
        .odoo
        .partners()
        .iter()
        .filter_map(|p| p["ref"].as_str().map(str::to_owned))
        .collect();
    refs.sort();
    refs
}

fn refs_of(ids: &[&str]) -> Vec<String> {
    ids.iter()
        .map(|id| format!("hubspot-company-{id}"))
        .collect()
}

/// A cursor's stored position (`YYYY-MM-DD HH:MM:SS.mmm#<zero-padded id>`), if any.
async fn cursor(world: &World, name: &str) -> anyhow::Result<Option<String>> {
    let pk = format!("CURSOR#{name}");
    Ok(world
        .table_items()
        .await?
        .into_iter()
        .find(|item| text(item, "pk").as_deref() == Some(pk.as_str()))
        .and_then(|item| text(&item, "position")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_created_while_webhooks_were_lost_is_synced_by_the_next_run() -> anyhow::Result<()>
{
    let world = World::start(Options::for_test("rec-lost").with_reconciler(&[])).await?;
    world.define_customer_properties();
    put_company(&world, "901");

    let report = world.reconcile(json!({"mode": "incremental"})).await??;
    assert_eq!(found(&report, "missing"), 1, "{report:#}");
    assert_eq!(report["repairs_enqueued"], 1);
    assert_eq!(report["sample"][0]["record"], "hubspot#901");
    world.drain(DRAIN).await?;

    let partners = world.odoo.partners();
    assert_eq!(partners.len(), 1, "{partners:?}");
    assert_eq!(partners[0]["ref"], "hubspot-company-901");
    assert_eq!(partners[0]["name"], "Distribuidora Andina 901 SAS");
    assert!(world.customer_link("901").await?.is_some());

    // The next run finds both systems agreeing, and the report is kept for the operator.
    let again = world.reconcile(json!({})).await??;
    assert_eq!(drift(&again), 0, "{again:#}");
    assert_eq!(again["repairs_enqueued"], 0);
    let reports = world
        .table_items()
        .await?
        .into_iter()
        .filter(|item| text(item, "pk").as_deref() == Some("REPORT#reconcile"))
        .count();
    assert_eq!(reports, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_edited_directly_in_the_erp_is_repaired_by_its_owner() -> anyhow::Result<()> {
    let world = World::start(Options::for_test("rec-owner").with_reconciler(&[])).await?;
    let partner = world.linked_customer("901").await?;
    world.unsubscribe_both_ways();
    next_second().await;
    // The name belongs to the CRM, the city to the ERP; neither edit sends a webhook.
    world.odoo.edit_partner_as_user(
        partner,
        json!({"name": "Andina (typed in Odoo)", "city": "Medellín"}),
    );

    let report = world.reconcile(json!({})).await??;
    assert_eq!(found(&report, "drifted"), 1, "{report:#}");
    assert_eq!(report["sample"][0]["fields"], json!(["city", "name"]));
    assert_eq!(report["repairs_enqueued"], 2, "one repair from each owner");
    world.drain(DRAIN).await?;

    let partner = world.odoo.partner(partner).expect("partner");
    assert_eq!(
        partner["name"], "Distribuidora Andina SAS",
        "the CRM's name"
    );
    assert_eq!(partner["city"], "Medellín", "the ERP's own edit stays");
    let company = world.hubspot.company("901").expect("company");
    assert_eq!(
        company["city"], "Medellín",
        "the ERP's city reached the CRM"
    );
    assert_eq!(company["name"], "Distribuidora Andina SAS");

    let again = world.reconcile(json!({})).await??;
    assert_eq!(drift(&again), 0, "{again:#}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reports_and_changes_nothing() -> anyhow::Result<()> {
    let world = World::start(Options::for_test("rec-dry").with_reconciler(&[])).await?;
    world.define_customer_properties();
    put_company(&world, "901");
    let before = world.table_items().await?.len();

    let report = world
        .reconcile(json!({"mode": "full", "dry_run": true}))
        .await??;
    assert_eq!(found(&report, "missing"), 1, "{report:#}");
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        report["repairs_enqueued"], 1,
        "what a real run would enqueue"
    );
    assert_eq!(world.queued().await?, 0, "nothing enqueued");
    assert_eq!(
        world.table_items().await?.len(),
        before,
        "no cursor, no report, no memory of repairs"
    );
    assert!(world.odoo.partners().is_empty());

    // The real run after it still finds the company.
    let report = world.reconcile(json!({})).await??;
    assert_eq!(report["repairs_enqueued"], 1, "{report:#}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_mid_run_keeps_the_watermark_and_the_next_run_catches_up() -> anyhow::Result<()> {
    let world = World::start(
        Options::for_test("rec-outage").with_reconciler(&[("PUENTE_RECONCILE_PAGE_SIZE", "3")]),
    )
    .await?;
    world.define_customer_properties();
    for id in ["901", "902", "903", "904", "905"] {
        put_company(&world, id);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    // HubSpot's search answers the first page (901 and 902: a page that does not reach the end
    // stops before its last instant, 903's), then fails.
    world.hubspot.state.faults.inject_after(
        "POST /crm/v3/objects/companies/search",
        Fault::Status(502),
        1,
        1,
    );

    let failed = world.reconcile(json!({})).await?;
    let error = failed.expect_err("the run reports its failure");
    assert!(
        format!("{error:?}").contains("could not list records"),
        "{error:?}"
    );
    let mark = cursor(&world, "reconcile#customer#hubspot").await?;
    assert!(
        mark.as_deref()
            .is_some_and(|m| m.ends_with("#00000000000000000902")),
        "the watermark stays after the last page read: {mark:?}"
    );
    assert_eq!(world.queued().await?, 2, "repairs of the page read");

    let report = world.reconcile(json!({})).await??;
    assert_eq!(report["repairs_enqueued"], 3, "{report:#}");
    assert_eq!(
        report["repairs_pending"], 2,
        "the first two are on their way"
    );
    world.drain(DRAIN).await?;
    assert_eq!(
        partner_refs(&world),
        refs_of(&["901", "902", "903", "904", "905"])
    );
    let mark = cursor(&world, "reconcile#customer#hubspot").await?;
    assert!(
        mark.as_deref()
            .is_some_and(|m| m.ends_with("#00000000000000000905")),
        "{mark:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_larger_than_one_run_completes_across_runs_seeing_each_record_once()
-> anyhow::Result<()> {
    let world = World::start(Options::for_test("rec-sweep").with_reconciler(&[
        ("PUENTE_RECONCILE_PAGE_SIZE", "3"),
        ("PUENTE_RECONCILE_PAGE_BUDGET", "4"),
        // Incremental passes look at nothing older than their first run: the sweep does it all.
        ("PUENTE_RECONCILE_LOOKBACK_HOURS", "0"),
        ("PUENTE_RECONCILE_OVERLAP_MINUTES", "0"),
    ]))
    .await?;
    world.define_customer_properties();
    let ids: Vec<String> = (901..911).map(|n| n.to_string()).collect();
    for id in &ids {
        put_company(&world, id);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;

    let mut swept = 0;
    let mut runs = 0;
    let mut mode = "full";
    loop {
        runs += 1;
        anyhow::ensure!(runs <= 10, "the sweep never completed");
        let report = world.reconcile(json!({"mode": mode})).await??;
        mode = "incremental";
        let pass = report["passes"]
            .as_array()
            .and_then(|passes| {
                passes
                    .iter()
                    .find(|p| p["system"] == "hubspot" && p["pass"] == "sweep")
            })
            .cloned()
            .unwrap_or_default();
        swept += pass["records"].as_u64().unwrap_or(0);
        if pass["complete"] == true {
            break;
        }
    }
    assert!(runs > 1, "the budget makes it take several runs");
    assert_eq!(swept, 10, "each company listed once by the sweep");
    assert_eq!(world.queued().await?, 10, "one repair each");
    world.drain(DRAIN).await?;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(partner_refs(&world), refs_of(&ids));
    assert_eq!(
        cursor(&world, "reconcile-sweep#customer#hubspot").await?,
        None,
        "a finished sweep forgets its checkpoint"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_reconciles_on_demand_dry_first_and_reads_the_reports() -> anyhow::Result<()> {
    let world = World::start(Options::for_test("rec-ops")).await?;
    world.define_customer_properties();
    put_company(&world, "901");
    let target = puente_ops::Target {
        stack: world.stack.names.stack.clone(),
        flow: "customer".into(),
    };
    // The function's connector variables; the token and key come from the stack's secret.
    let (hubspot_url, odoo_url) = (world.hubspot.base_url(), world.odoo.url());
    let env = || {
        shared::config::Env::from_pairs([
            ("HUBSPOT_BASE_URL", hubspot_url.as_str()),
            ("ODOO_URL", odoo_url.as_str()),
            ("ODOO_DB", puente_tests::harness::ODOO_DB),
            ("ODOO_USERNAME", puente_tests::harness::ODOO_LOGIN),
        ])
    };
    let passes_over = std::sync::Mutex::new(Vec::new());
    let progress = |pass: &shared::flows::reconcile::report::Pass, over: bool| {
        if over && let Ok(mut seen) = passes_over.lock() {
            seen.push(format!("{} {} {}", pass.flow, pass.system, pass.pass));
        }
    };
    let dry = puente_ops::ReconcileOptions {
        full: true,
        dry_run: true,
        ..Default::default()
    };
    let before = world.table_items().await?.len();
    let report = puente_ops::reconcile(&world.aws.sdk, env(), &target, &dry, &progress).await?;
    let table = report.table();
    assert!(table.contains("customer   missing"), "{table}");
    assert!(table.contains("hubspot#901"), "{table}");
    assert_eq!(report.repairs_enqueued, 1);
    assert_eq!(world.queued().await?, 0, "a dry run enqueues nothing");
    assert_eq!(
        world.table_items().await?.len(),
        before,
        "and writes nothing"
    );
    assert_eq!(
        passes_over.lock().map(|p| p.clone()).unwrap_or_default(),
        [
            "customer hubspot incremental",
            "customer odoo incremental",
            "customer hubspot sweep",
            "customer odoo sweep",
            "invoice hubspot incremental",
            "invoice odoo incremental",
            "invoice hubspot sweep",
            "invoice odoo sweep",
            "product odoo incremental",
            "product odoo sweep",
            "ledger dynamodb stuck"
        ]
    );
    assert!(
        puente_ops::reports(&world.aws.sdk, &target, 5)
            .await?
            .is_empty()
    );

    let real = puente_ops::ReconcileOptions::default();
    let report = puente_ops::reconcile(&world.aws.sdk, env(), &target, &real, &|_, _| {}).await?;
    assert_eq!(report.repairs_enqueued, 1);
    assert_eq!(world.queued().await?, 1);
    let saved = puente_ops::reports(&world.aws.sdk, &target, 5).await?;
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].run_id, report.run_id);

    let unknown = puente_ops::ReconcileOptions {
        flows: vec!["products".into()],
        ..Default::default()
    };
    let refused = puente_ops::reconcile(&world.aws.sdk, env(), &target, &unknown, &|_, _| {}).await;
    assert!(refused.is_err_and(|e| e.to_string().contains("no flow named")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_left_in_progress_by_a_dead_worker_is_resolved_without_a_duplicate()
-> anyhow::Result<()> {
    let mut options =
        Options::for_test("rec-stuck").with_reconciler(&[("PUENTE_STUCK_AFTER_MINUTES", "0")]);
    options.worker_timeout = Duration::from_secs(3);
    options.worker_instances = 1;
    options.queues.visibility_timeout_s = 5;
    let world = World::start(options).await?;
    world.define_customer_properties();
    put_company(&world, "901");
    // Odoo commits the create and is slow to answer; meanwhile the worker process dies...
    world.odoo.state.faults.inject(
        "res.partner.create",
        Fault::DelayAfter(Duration::from_secs(30)),
        1,
    );
    let event =
        world
            .hubspot
            .company_event(1, "company.creation", 901, puente_tests::sim::now_ms());
    world.deliver(std::slice::from_ref(&event)).await?;
    let (poll, ()) = tokio::join!(world.poller.poll_once(1), async {
        while world.odoo.partners().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        world.worker.kill();
    });
    assert!(poll?.invoke_failed, "the killed invocation never answered");
    // ...and its message is lost: no delivery will come back for the key.
    world
        .aws
        .sqs
        .purge_queue()
        .queue_url(&world.stack.customer_queue_url)
        .send()
        .await?;
    assert_eq!(world.queued().await?, 0);
    let key = format!("customer#hubspot#901#{}", event["occurredAt"]);
    let status =
        |item: Option<std::collections::HashMap<_, _>>| item.and_then(|item| text(&item, "status"));
    assert_eq!(
        status(world.ledger(&key).await?).as_deref(),
        Some("IN_PROGRESS")
    );
    // Its lease runs out: the invocation's 3 s plus the 1 s margin.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let report = world.reconcile(json!({"mode": "full"})).await??;
    assert_eq!(report["stuck_resolved"], 1, "{report:#}");
    let partner = world.odoo.partners()[0]["id"].to_string();
    let item = world.ledger(&key).await?.expect("ledger item");
    assert_eq!(text(&item, "status").as_deref(), Some("COMPLETED"));
    assert_eq!(
        text(&item, "target_id"),
        Some(partner),
        "the probe found the partner by our reference"
    );
    world.drain(DRAIN).await?;
    assert_eq!(world.odoo.partners().len(), 1, "no second partner");
    assert_eq!(world.odoo.state.faults.count("res.partner.create"), 1);
    assert!(
        world.customer_link("901").await?.is_some(),
        "the repair finished what the dead worker began"
    );
    Ok(())
}

/// HubSpot's product carrying Odoo product `id`'s reference: its id and properties.
fn hubspot_product(world: &World, id: i64) -> Option<(String, BTreeMap<String, String>)> {
    world
        .hubspot
        .product_by("puente_erp_ref", &format!("odoo-product-{id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_product_price_change_appears_in_hubspot() -> anyhow::Result<()> {
    let world = World::start(Options::for_test("rec-product").with_reconciler(&[])).await?;
    world.define_product_properties();
    let licence = world
        .odoo
        .add_product("LIC-ERP", "Licencia anual ERP", 500_000.0, &[12]);
    let support = world
        .odoo
        .add_product("SOP-1", "Soporte técnico mensual", 120_000.5, &[]);
    let unsold = world.odoo.add_product("", "Sin referencia", 10.0, &[]);
    let products = json!({"mode": "incremental", "flows": ["product"]});

    // The catalogue reaches HubSpot's product library; a product without its SKU is reported.
    let first = world.reconcile(products.clone()).await??;
    assert_eq!(first["found"]["product"]["missing"], 2, "{first:#}");
    assert_eq!(first["found"]["product"]["invalid"], 1, "{first:#}");
    assert_eq!(first["repairs_written"], 2);
    let Some((id, shown)) = hubspot_product(&world, licence) else {
        anyhow::bail!(
            "the licence is not in HubSpot: {:?}",
            world.hubspot.products()
        );
    };
    assert_eq!(shown["name"], "Licencia anual ERP");
    assert_eq!(shown["hs_sku"], "LIC-ERP");
    assert_eq!(shown["price"], "500000.00");
    let support_shown = hubspot_product(&world, support).map(|(_, p)| p);
    assert_eq!(
        support_shown.as_ref().map(|p| p["name"].as_str()),
        Some("Soporte técnico mensual")
    );
    assert!(hubspot_product(&world, unsold).is_none());

    // A price typed in Odoo appears in HubSpot at the next run, on the same product.
    next_second().await;
    world.odoo.set_product_price(licence, 550_000.0);
    let second = world.reconcile(products.clone()).await??;
    assert_eq!(second["found"]["product"]["drifted"], 1, "{second:#}");
    let drifted = second["sample"]
        .as_array()
        .and_then(|sample| sample.iter().find(|d| d["class"] == "drifted"));
    assert_eq!(drifted.map(|d| &d["fields"]), Some(&json!(["price"])));
    assert_eq!(second["repairs_written"], 1);
    let price = world.hubspot.product(&id).map(|p| p["price"].clone());
    assert_eq!(price.as_deref(), Some("550000.00"));
    assert_eq!(world.hubspot.products().len(), 2, "no product twice");

    // A product archived in Odoo leaves the library.
    next_second().await;
    world.odoo.archive_product(support);
    let third = world.reconcile(products.clone()).await??;
    assert_eq!(third["found"]["product"]["drifted"], 1, "{third:#}");
    assert!(hubspot_product(&world, support).is_none());
    assert_eq!(world.hubspot.products().len(), 1);

    // A price typed over in HubSpot is put back: the ERP's catalogue decides.
    world.hubspot.set_product_property(&id, "price", "1");
    let full = json!({"mode": "full", "flows": ["product"]});
    let fourth = world.reconcile(full.clone()).await??;
    assert_eq!(fourth["found"]["product"]["drifted"], 1, "{fourth:#}");
    let price = world.hubspot.product(&id).map(|p| p["price"].clone());
    assert_eq!(price.as_deref(), Some("550000.00"));

    // Nothing changed since: nothing written.
    let quiet = world.reconcile(full).await??;
    assert_eq!(
        quiet["found"]["product"]["missing"],
        Value::Null,
        "{quiet:#}"
    );
    assert_eq!(
        quiet["found"]["product"]["drifted"],
        Value::Null,
        "{quiet:#}"
    );
    assert_eq!(quiet["repairs_written"], 0);
    Ok(())
}
