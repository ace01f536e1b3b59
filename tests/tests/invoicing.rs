//! The money path, CRM to ERP, end to end: signed HubSpot deal webhooks through the release
//! binaries of webhook-receiver and invoicing to `account.move` (or `sale.order`) records in the
//! Odoo simulator, the deal's number and status back in the HubSpot simulator, with moto for
//! DynamoDB, SQS and Secrets Manager.

use puente_tests::aws_local::text;
use puente_tests::fixtures::DEAL_PROPERTIES;
use puente_tests::harness::{Options, World};
use puente_tests::sim::faults::Fault;
use serde_json::{Map, Value, json};
use shared::aws::customer_links::DynamoCustomerLinks;
use shared::connectors::{hubspot, odoo};
use shared::mapping::ownership::Role;
use shared::ports::CustomerLinks;
use std::time::Duration;

const COMPANY: &str = "901";
const DEAL: &str = "5512";
const DRAIN: Duration = Duration::from_secs(90);

fn options(name: &str) -> Options {
    Options::for_test(name).with_invoicing(&[
        ("PUENTE_WON_STAGES", "closedwon,contractsigned"),
        ("PUENTE_TAXES_BY_SKU", "LIC-ERP=19,EXPORT-1=0"),
        ("PUENTE_DEFAULT_TAXES", "19"),
        ("PUENTE_PAYMENT_TERM_DAYS", "30"),
    ])
}

/// A company the ERP does not know yet, and the portal's deal properties and products.
fn seed(world: &World) {
    world.hubspot.put_company(
        COMPANY,
        &[
            ("name", "Distribuidora Andina SAS"),
            ("nit", "900.123.456-8"),
            ("email", "compras@andina.co"),
            ("city", "Bogotá"),
            ("country", "Colombia"),
        ],
    );
    for property in DEAL_PROPERTIES {
        world.hubspot.define_property("deals", property);
    }
    world
        .odoo
        .add_product("LIC-ERP", "Licencia anual ERP", 1_500_000.5, &[12]);
}

/// Deal 5512 in COP: two licences at 1.500.000,50 with 10% off (19% IVA from the SKU table) and
/// an implementation service without SKU (19% IVA by default).
fn won_deal(world: &World, deal: &str, stage: &str) {
    world.hubspot.put_line_item(
        "7001",
        &[
            ("name", "Licencia anual ERP"),
            ("hs_sku", "LIC-ERP"),
            ("quantity", "2"),
            ("price", "1500000.50"),
            ("hs_discount_percentage", "10"),
        ],
    );
    world.hubspot.put_line_item(
        "7002",
        &[
            ("name", "Implementación y capacitación"),
            ("quantity", "1"),
            ("price", "800000"),
        ],
    );
    world.hubspot.put_deal(
        deal,
        &[
            ("dealname", "Licencias Andina 2026"),
            ("dealstage", stage),
            ("pipeline", "default"),
            ("amount", "3500000.90"),
            ("deal_currency_code", "COP"),
        ],
        Some(COMPANY),
        &["7001", "7002"],
    );
}

fn stage_change(world: &World, event_id: u64, deal: &str, stage: &str, at: i64) -> Value {
    let id: u64 = deal.parse().expect("numeric deal id");
    world.hubspot.deal_event(
        event_id,
        "deal.propertyChange",
        id,
        at,
        Some(("dealstage", stage)),
    )
}

fn now() -> i64 {
    puente_tests::sim::now_ms()
}

fn invoices(world: &World) -> Vec<Map<String, Value>> {
    world
        .odoo
        .moves()
        .into_iter()
        .filter(|m| m["move_type"] == "out_invoice")
        .collect()
}

/// The one dead letter of the invoicing flow: its error class, reason and fields attributes.
async fn the_dead_letter(world: &World) -> anyhow::Result<(String, String, String)> {
    let dead = world.invoicing_dead_letters().await?;
    anyhow::ensure!(dead.len() == 1, "expected one dead letter: {dead:?}");
    let attribute = |name: &str| dead[0].attributes.get(name).cloned().unwrap_or_default();
    Ok((
        attribute("puente-error-class"),
        attribute("puente-reason"),
        attribute("puente-fields"),
    ))
}

fn deal_property(world: &World, deal: &str, name: &str) -> Option<String> {
    world.hubspot.deal(deal).and_then(|d| d.get(name).cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_won_deal_becomes_one_posted_invoice_with_its_customer_lines_taxes_and_number()
-> anyhow::Result<()> {
    let world = World::start(options("won")).await?;
    seed(&world);
    won_deal(&world, DEAL, "closedwon");
    let event = stage_change(&world, 1, DEAL, "closedwon", now());

    let (status, body) = world.deliver(std::slice::from_ref(&event)).await?;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"enqueued":1,"ignored":0,"replays":0}"#)
    );
    world.drain_invoicing(DRAIN).await?;

    // The customer did not exist in Odoo: it was created first, once, from the company.
    let partners = world.odoo.partners();
    assert_eq!(partners.len(), 1, "{partners:?}");
    assert_eq!(partners[0]["ref"], "hubspot-company-901");
    assert_eq!(partners[0]["vat"], "900123456-8");
    let partner_id = partners[0]["id"].clone();

    let invoices = invoices(&world);
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    let invoice = &invoices[0];
    assert_eq!(invoice["ref"], "hubspot-deal-5512");
    assert_eq!(invoice["state"], "posted");
    assert_eq!(invoice["partner_id"][0], partner_id);
    assert_eq!(invoice["currency_id"], json!([8, "COP"]));
    // 2 × 1.500.000,50 − 10% = 2.700.000,90 (+19% = 513.000,17); 800.000 (+19% = 152.000).
    assert_eq!(invoice["amount_untaxed"], json!(3_500_000.9));
    assert_eq!(invoice["amount_tax"], json!(665_000.17));
    assert_eq!(invoice["amount_total"], json!(4_165_001.07));
    let number = invoice["name"]
        .as_str()
        .expect("posted invoices have a number");
    assert!(number.starts_with("INV/"), "{number}");
    let lines = world.odoo.move_lines(invoice["id"].as_i64().expect("id"));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["product_id"][0], json!(301), "the SKU's product");
    assert_eq!(lines[0]["tax_ids"], json!([12]));
    assert_eq!(lines[1]["product_id"], json!(false));
    assert_eq!(lines[1]["name"], "Implementación y capacitación");

    // The deal shows the invoice: number, amounts with the currency's digits, due in 30 days.
    let shown = |name| deal_property(&world, DEAL, name);
    assert_eq!(shown("erp_invoice_number").as_deref(), Some(number));
    assert_eq!(shown("erp_amount_invoiced").as_deref(), Some("4165001.07"));
    assert_eq!(shown("erp_amount_paid").as_deref(), Some("0.00"));
    assert_eq!(
        shown("erp_amount_outstanding").as_deref(),
        Some("4165001.07")
    );
    assert_eq!(shown("erp_payment_state").as_deref(), Some("not_paid"));
    assert_eq!(shown("erp_overdue").as_deref(), Some("false"));
    assert_eq!(
        shown("erp_due_date"),
        invoice["invoice_date_due"].as_str().map(str::to_owned)
    );
    assert_ne!(invoice["invoice_date_due"], invoice["invoice_date"]);

    let key = format!("invoicing#hubspot#{DEAL}#{}", event["occurredAt"]);
    let ledger = world.ledger(&key).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("COMPLETED"));
    assert_eq!(
        text(&ledger, "target_id"),
        invoice["id"].as_i64().map(|id| id.to_string())
    );
    let links: Vec<String> = world
        .table_items()
        .await?
        .iter()
        .filter_map(|i| text(i, "pk"))
        .filter(|pk| pk.starts_with("LINK#"))
        .collect();
    assert!(
        links.contains(&"LINK#invoicing#hubspot#5512".to_owned()),
        "{links:?}"
    );
    assert!(
        links.contains(&"LINK#customer#hubspot#901".to_owned()),
        "{links:?}"
    );
    assert!(world.invoicing_dead_letters().await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_webhooks_and_a_deal_won_again_after_reopening_still_give_one_invoice()
-> anyhow::Result<()> {
    let world = World::start(options("again")).await?;
    seed(&world);
    won_deal(&world, DEAL, "closedwon");
    let won = stage_change(&world, 1, DEAL, "closedwon", now());

    // Three deliveries of the same event, two of them at once.
    let events = [won.clone()];
    let (first, second) = tokio::join!(world.deliver(&events), world.deliver(&events));
    let third = world.deliver(&events).await?;
    for (status, _) in [first?, second?, third] {
        assert_eq!(status, 200);
    }
    world.drain_invoicing(DRAIN).await?;
    assert_eq!(invoices(&world).len(), 1);

    // Back to an open stage (not routed), then won again in another won stage.
    world
        .hubspot
        .set_deal_property(DEAL, "dealstage", "presentationscheduled");
    let reopened = stage_change(&world, 2, DEAL, "presentationscheduled", now());
    let (_, body) = world.deliver(&[reopened]).await?;
    assert_eq!(body, r#"{"enqueued":0,"ignored":1,"replays":0}"#);
    world
        .hubspot
        .set_deal_property(DEAL, "dealstage", "contractsigned");
    let won_again = stage_change(&world, 3, DEAL, "contractsigned", now() + 1);
    world.deliver(&[won_again]).await?;
    world.drain_invoicing(DRAIN).await?;

    assert_eq!(invoices(&world).len(), 1, "{:?}", invoices(&world));
    assert_eq!(world.odoo.state.faults.count("account.move.create"), 1);
    assert_eq!(world.odoo.partners().len(), 1);
    assert!(world.invoicing_dead_letters().await?.is_empty());
    Ok(())
}

/// Runs one poll of the invoicing queue and kills the worker's process as soon as `reached`.
async fn poll_killing_invoicing_once(
    world: &World,
    reached: impl Fn() -> bool,
) -> anyhow::Result<puente_tests::platform::poller::Poll> {
    let (function, poller) = world.invoicing.as_ref().expect("invoicing started");
    let (poll, ()) = tokio::join!(poller.poll_once(1), async {
        while !reached() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        function.kill();
    });
    poll
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_between_the_erp_create_and_the_ledger_update_leaves_one_invoice()
-> anyhow::Result<()> {
    let mut options = options("crash");
    options.worker_timeout = Duration::from_secs(4);
    options.worker_instances = 1;
    options.queues.visibility_timeout_s = 6;
    let world = World::start(options).await?;
    seed(&world);
    won_deal(&world, DEAL, "closedwon");
    // Odoo commits the invoice and is slow to answer; meanwhile the worker process dies.
    world.odoo.state.faults.inject(
        "account.move.create",
        Fault::DelayAfter(Duration::from_secs(30)),
        1,
    );
    let event = stage_change(&world, 1, DEAL, "closedwon", now());
    world.deliver(std::slice::from_ref(&event)).await?;

    let first = poll_killing_invoicing_once(&world, || !world.odoo.moves().is_empty()).await?;
    assert!(first.invoke_failed, "the killed invocation never answered");
    let key = format!("invoicing#hubspot#{DEAL}#{}", event["occurredAt"]);
    let ledger = world.ledger(&key).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("IN_PROGRESS"));
    assert_eq!(invoices(&world)[0]["state"], "draft");

    world.drain_invoicing(DRAIN).await?;
    let invoices = invoices(&world);
    assert_eq!(
        invoices.len(),
        1,
        "the retry found the draft by its reference"
    );
    assert_eq!(invoices[0]["state"], "posted", "and posted it");
    assert_eq!(world.odoo.state.faults.count("account.move.create"), 1);
    assert_eq!(
        deal_property(&world, DEAL, "erp_invoice_number"),
        invoices[0]["name"].as_str().map(str::to_owned)
    );
    let ledger = world.ledger(&key).await?.expect("ledger item");
    assert_eq!(text(&ledger, "status").as_deref(), Some("COMPLETED"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amount_change_after_invoicing_is_a_conflict_not_a_second_invoice_nor_a_rewrite()
-> anyhow::Result<()> {
    let world = World::start(options("conflict")).await?;
    seed(&world);
    won_deal(&world, DEAL, "closedwon");
    world
        .deliver(&[stage_change(&world, 1, DEAL, "closedwon", now())])
        .await?;
    world.drain_invoicing(DRAIN).await?;
    let before = invoices(&world);
    assert_eq!(before.len(), 1);

    // Sales raises the implementation price after the invoice was posted.
    world.hubspot.put_line_item(
        "7002",
        &[
            ("name", "Implementación y capacitación"),
            ("quantity", "1"),
            ("price", "900000"),
        ],
    );
    world
        .hubspot
        .set_deal_property(DEAL, "amount", "3600000.90");
    let change = world.hubspot.deal_event(
        2,
        "deal.propertyChange",
        DEAL.parse()?,
        now() + 1,
        Some(("amount", "3600000.90")),
    );
    world.deliver(std::slice::from_ref(&change)).await?;
    world.drain_invoicing(DRAIN).await?;

    let after = invoices(&world);
    assert_eq!(after.len(), 1, "no second invoice");
    assert_eq!(
        after[0]["amount_total"], before[0]["amount_total"],
        "no rewrite"
    );
    assert_eq!(after[0]["write_date"], before[0]["write_date"]);
    let (class, reason, _) = the_dead_letter(&world).await?;
    assert_eq!(class, "conflict");
    assert!(reason.contains("odoo compare invoice"), "{reason}");
    assert!(reason.contains("does not match deal 5512"), "{reason}");
    let key = format!("invoicing#hubspot#{DEAL}#{}", change["occurredAt"]);
    let ledger = world.ledger(&key).await?.expect("ledger item");
    assert_eq!(text(&ledger, "error_class").as_deref(), Some("conflict"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clp_without_decimals_and_a_usd_deal_of_the_same_company_each_get_their_currency()
-> anyhow::Result<()> {
    let world = World::start(options("currencies")).await?;
    seed(&world);
    world
        .odoo
        .add_product("EXPORT-1", "Licencia exportación", 0.0, &[14]);
    world.hubspot.put_line_item(
        "8001",
        &[
            ("name", "Soporte anual"),
            ("quantity", "3"),
            ("price", "333333"),
            ("hs_discount_percentage", "10"),
        ],
    );
    world.hubspot.put_deal(
        "6001",
        &[
            ("dealname", "Soporte Santiago"),
            ("dealstage", "closedwon"),
            ("deal_currency_code", "CLP"),
        ],
        Some(COMPANY),
        &["8001"],
    );
    world.hubspot.put_line_item(
        "8002",
        &[
            ("name", "Export licence"),
            ("hs_sku", "EXPORT-1"),
            ("quantity", "1"),
            ("price", "1250.75"),
        ],
    );
    world.hubspot.put_deal(
        "6002",
        &[
            ("dealname", "Export USD"),
            ("dealstage", "closedwon"),
            ("deal_currency_code", "USD"),
            ("amount", "1250.75"),
        ],
        Some(COMPANY),
        &["8002"],
    );
    world
        .deliver(&[
            stage_change(&world, 1, "6001", "closedwon", now()),
            stage_change(&world, 2, "6002", "closedwon", now()),
        ])
        .await?;
    world.drain_invoicing(DRAIN).await?;

    assert_eq!(
        world.odoo.partners().len(),
        1,
        "one customer for both deals"
    );
    let invoices = invoices(&world);
    assert_eq!(invoices.len(), 2, "{invoices:?}");
    let by_ref = |reference: &str| {
        invoices
            .iter()
            .find(|i| i["ref"] == reference)
            .cloned()
            .unwrap_or_default()
    };
    // 3 × 333.333 − 10% = 899.999,1 -> 899.999 CLP (no decimals); +19% = 171.000 (170.999,81).
    let clp = by_ref("hubspot-deal-6001");
    assert_eq!(clp["currency_id"], json!([19, "CLP"]));
    assert_eq!(clp["amount_untaxed"], json!(899_999.0));
    assert_eq!(clp["amount_tax"], json!(171_000.0));
    assert_eq!(clp["amount_total"], json!(1_070_999.0));
    assert_eq!(
        deal_property(&world, "6001", "erp_amount_invoiced").as_deref(),
        Some("1070999")
    );
    // USD, exempt by its SKU.
    let usd = by_ref("hubspot-deal-6002");
    assert_eq!(usd["currency_id"], json!([1, "USD"]));
    assert_eq!(usd["amount_total"], json!(1250.75));
    assert_eq!(usd["amount_tax"], json!(0.0));
    assert_eq!(
        deal_property(&world, "6002", "erp_amount_outstanding").as_deref(),
        Some("1250.75")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_deal_is_dead_lettered_with_field_reasons_and_nothing_is_created()
-> anyhow::Result<()> {
    let world = World::start(options("invalid")).await?;
    seed(&world);
    world.hubspot.put_line_item(
        "9001",
        &[
            ("name", "Consultoría"),
            ("quantity", "2"),
            ("price", "100.005"),
        ],
    );
    world.hubspot.put_deal(
        "7777",
        &[
            ("dealname", "Sin empresa"),
            ("dealstage", "closedwon"),
            ("deal_currency_code", "COP"),
        ],
        None,
        &["9001"],
    );
    world
        .deliver(&[stage_change(&world, 1, "7777", "closedwon", now())])
        .await?;
    world.drain_invoicing(DRAIN).await?;

    assert!(world.odoo.moves().is_empty());
    assert!(world.odoo.partners().is_empty());
    let (class, _, fields) = the_dead_letter(&world).await?;
    assert_eq!(class, "invalid");
    assert!(fields.contains("companies"), "{fields}");
    assert!(fields.contains("line_items[9001].price"), "{fields}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_odoo_computes_differently_leave_an_unposted_draft_and_a_conflict()
-> anyhow::Result<()> {
    let world = World::start(options("totals")).await?;
    seed(&world);
    // Odoo rounds taxes on the whole invoice instead of per line.
    world.odoo.set_rounding_globally(true);
    for (id, price) in [("7101", "0.03"), ("7102", "0.03"), ("7103", "0.03")] {
        world.hubspot.put_line_item(
            id,
            &[("name", "Timbre"), ("quantity", "1"), ("price", price)],
        );
    }
    world.hubspot.put_deal(
        DEAL,
        &[
            ("dealname", "Timbres"),
            ("dealstage", "closedwon"),
            ("deal_currency_code", "COP"),
        ],
        Some(COMPANY),
        &["7101", "7102", "7103"],
    );
    world
        .deliver(&[stage_change(&world, 1, DEAL, "closedwon", now())])
        .await?;
    world.drain_invoicing(DRAIN).await?;

    let invoices = invoices(&world);
    assert_eq!(invoices.len(), 1);
    assert_eq!(
        invoices[0]["state"], "draft",
        "never posted with other totals"
    );
    let (class, reason, _) = the_dead_letter(&world).await?;
    assert_eq!(class, "conflict");
    assert!(reason.contains("tax differs"), "{reason}");
    assert_eq!(deal_property(&world, DEAL, "erp_invoice_number"), None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_sales_order_mode_a_won_deal_becomes_one_confirmed_order_with_its_number()
-> anyhow::Result<()> {
    let mut options = options("order");
    options
        .invoicing_env
        .push(("PUENTE_ERP_DOCUMENT".into(), "sales_order".into()));
    let world = World::start(options).await?;
    seed(&world);
    world
        .odoo
        .add_product("IMPL", "Implementación y capacitación", 800_000.0, &[12]);
    won_deal(&world, DEAL, "closedwon");
    world.hubspot.put_line_item(
        "7002",
        &[
            ("name", "Implementación y capacitación"),
            ("hs_sku", "IMPL"),
            ("quantity", "1"),
            ("price", "800000"),
        ],
    );
    world
        .deliver(&[stage_change(&world, 1, DEAL, "closedwon", now())])
        .await?;
    world.drain_invoicing(DRAIN).await?;

    let orders = world.odoo.sale_orders();
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0]["client_order_ref"], "hubspot-deal-5512");
    assert_eq!(orders[0]["state"], "sale");
    assert_eq!(orders[0]["amount_total"], json!(4_165_001.07));
    assert!(world.odoo.moves().is_empty());
    assert_eq!(
        deal_property(&world, DEAL, "erp_invoice_number"),
        orders[0]["name"].as_str().map(str::to_owned)
    );
    assert_eq!(deal_property(&world, DEAL, "erp_payment_state"), None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_of_a_company_created_from_an_odoo_customer_is_invoiced_to_that_customer()
-> anyhow::Result<()> {
    let world = World::start(options("erporigin")).await?;
    seed(&world);
    // The company came from Odoo (the two-way customer flow created it): it carries our
    // reference to the partner, which has no reference of HubSpot's.
    let partner = world.odoo.create_partner_as_user(json!({
        "name": "Distribuidora Andina SAS",
        "is_company": true,
        "vat": "900123456-8",
        "customer_rank": 1,
    }));
    let reference = format!("odoo-partner-{partner}");
    world.hubspot.put_company(
        COMPANY,
        &[
            ("name", "Distribuidora Andina SAS"),
            ("nit", "900123456-8"),
            ("puente_erp_ref", &reference),
        ],
    );
    won_deal(&world, DEAL, "closedwon");
    let event = stage_change(&world, 1, DEAL, "closedwon", now());
    world.deliver(std::slice::from_ref(&event)).await?;
    world.drain_invoicing(DRAIN).await?;

    assert_eq!(world.odoo.partners().len(), 1, "no second customer");
    let invoices = invoices(&world);
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    assert_eq!(invoices[0]["partner_id"][0], json!(partner));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_won_deal_waits_while_the_customer_flow_holds_its_company_and_creates_it_once()
-> anyhow::Result<()> {
    let world = World::start(options("companylock")).await?;
    seed(&world);
    won_deal(&world, DEAL, "closedwon");
    // A change of the company is being applied by customer-sync: it holds the company's link
    // item, the customer flow's lock, which invoicing must take before it creates the customer.
    let customer_links = DynamoCustomerLinks::new(
        &world.aws.sdk,
        &world.stack.names.table,
        hubspot::SYSTEM,
        odoo::SYSTEM,
    );
    let held = customer_links
        .lock(Role::Crm, COMPANY, Duration::from_secs(60))
        .await?
        .expect("the company is free");

    world
        .deliver(&[stage_change(&world, 1, DEAL, "closedwon", now())])
        .await?;
    let (_, poller) = world.invoicing.as_ref().expect("invoicing started");
    let first = poller.poll_once(1).await?;
    assert_eq!((first.received, first.retried), (1, 1), "{first:?}");
    assert!(world.odoo.partners().is_empty(), "no customer created");
    assert!(invoices(&world).is_empty(), "no invoice created");

    customer_links.unlock(&held.lock).await?;
    world.drain_invoicing(DRAIN).await?;
    let partners = world.odoo.partners();
    assert_eq!(partners.len(), 1, "{partners:?}");
    assert_eq!(invoices(&world).len(), 1);
    // The customer is linked the customer flow's way, and the lock is gone with the write.
    let link = world.customer_link(COMPANY).await?.expect("customer link");
    assert_eq!(
        text(&link, "other_id"),
        partners[0]["id"].as_i64().map(|id| id.to_string())
    );
    assert!(!link.contains_key("lease_token"), "{link:?}");
    assert!(world.invoicing_dead_letters().await?.is_empty());
    Ok(())
}
