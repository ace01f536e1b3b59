//! The reconciler's invoice flow on its release binary, against moto and both simulators: a won
//! deal whose webhook was lost gets its one invoice, and a payment whose webhook was lost shows
//! on the deal, each through its flow's own queue and worker.

use puente_tests::aws_local::queue_depth;
use puente_tests::fixtures::{INVOICED_COMPANY, invoicing_world};
use puente_tests::harness::{Options, World};
use puente_tests::sim::odoo::next_second;
use serde_json::{Map, Value, json};
use std::time::Duration;

const COMPANY: &str = INVOICED_COMPANY;
const DRAIN: Duration = Duration::from_secs(90);

/// Invoicing, payments and the reconciler; a company and the portal's deal properties.
async fn world(name: &str) -> anyhow::Result<World> {
    invoicing_world(Options::for_test(name).with_reconciler(&[])).await
}

/// A won deal for 1.000.000,00 COP + 19% = 1.190.000,00; no webhook tells anyone.
fn won_deal(world: &World, deal: &str, line: &str) {
    world.hubspot.put_line_item(
        line,
        &[
            ("name", "Suministro de herramientas"),
            ("quantity", "4"),
            ("price", "250000"),
        ],
    );
    world.hubspot.put_deal(
        deal,
        &[
            ("dealname", "Pedido anual"),
            ("dealstage", "closedwon"),
            ("deal_currency_code", "COP"),
        ],
        Some(COMPANY),
        &[line],
    );
}

/// The customer invoices carrying deal `deal`'s reference.
fn invoices_of(world: &World, deal: &str) -> Vec<Map<String, Value>> {
    let reference = format!("hubspot-deal-{deal}");
    world
        .odoo
        .moves()
        .into_iter()
        .filter(|m| m["move_type"] == "out_invoice" && m["ref"] == reference.as_str())
        .collect()
}

/// How many differences of `class` the report found in the invoice flow.
fn found(report: &Value, class: &str) -> u64 {
    report["found"]["invoice"][class].as_u64().unwrap_or(0)
}

/// Messages on a queue, visible or in flight.
async fn depth(world: &World, url: &str) -> anyhow::Result<u64> {
    let (visible, in_flight) = queue_depth(&world.aws, url).await?;
    Ok(visible + in_flight)
}

fn deal_property(world: &World, deal: &str, name: &str) -> String {
    world
        .hubspot
        .deal(deal)
        .and_then(|d| d.get(name).cloned())
        .unwrap_or_default()
}

const INVOICES_ONLY: &str = "invoice";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_won_while_its_webhook_was_lost_gets_one_invoice_and_a_dry_run_only_reports_it()
-> anyhow::Result<()> {
    let world = world("rec-inv-won").await?;
    won_deal(&world, "5801", "7801");

    let before = world.table_items().await?.len();
    let dry = world
        .reconcile(json!({"flows": [INVOICES_ONLY], "dry_run": true}))
        .await??;
    assert_eq!(found(&dry, "missing"), 1, "{dry:#}");
    assert_eq!(dry["sample"][0]["record"], "hubspot#5801");
    assert_eq!(depth(&world, &world.stack.invoicing_queue_url).await?, 0);
    assert_eq!(
        world.table_items().await?.len(),
        before,
        "a dry run writes nothing"
    );
    assert!(invoices_of(&world, "5801").is_empty());

    let report = world.reconcile(json!({"flows": [INVOICES_ONLY]})).await??;
    assert_eq!(found(&report, "missing"), 1, "{report:#}");
    assert_eq!(report["repairs_enqueued"], 1, "{report:#}");
    world.drain_invoicing(DRAIN).await?;
    let invoices = invoices_of(&world, "5801");
    assert_eq!(invoices.len(), 1, "exactly one invoice: {invoices:?}");
    assert_eq!(invoices[0]["state"], "posted");
    assert_eq!(
        deal_property(&world, "5801", "erp_invoice_number"),
        invoices[0]["name"].as_str().unwrap_or("?")
    );
    assert!(world.invoicing_dead_letters().await?.is_empty());

    // The deal now has its invoice and shows it: nothing to find, nothing to enqueue.
    let again = world.reconcile(json!({"flows": [INVOICES_ONLY]})).await??;
    assert_eq!(again["found"].get("invoice"), None, "{again:#}");
    assert_eq!(again["repairs_enqueued"], 0, "{again:#}");
    assert_eq!(depth(&world, &world.stack.invoicing_queue_url).await?, 0);
    assert_eq!(invoices_of(&world, "5801").len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_paid_while_its_webhook_was_lost_shows_paid_on_the_deal_after_a_run()
-> anyhow::Result<()> {
    let world = world("rec-inv-paid").await?;
    won_deal(&world, "5802", "7802");
    let event = world.hubspot.deal_event(
        1,
        "deal.propertyChange",
        5802,
        puente_tests::sim::now_ms(),
        Some(("dealstage", "closedwon")),
    );
    world.deliver(&[event]).await?;
    world.drain_invoicing(DRAIN).await?;
    let invoice = invoices_of(&world, "5802");
    anyhow::ensure!(invoice.len() == 1, "one invoice: {invoice:?}");
    let invoice_id = invoice[0]["id"].as_i64().unwrap_or_default();
    assert_eq!(
        deal_property(&world, "5802", "erp_payment_state"),
        "not_paid"
    );

    // Paid in full in Odoo; no automation-rule webhook is configured, so no one hears of it.
    next_second().await;
    world
        .odoo
        .register_payment(invoice_id, 1_190_000.0, "2026-12-03")
        .map_err(anyhow::Error::msg)?;

    let report = world.reconcile(json!({"flows": [INVOICES_ONLY]})).await??;
    assert_eq!(found(&report, "drifted"), 1, "{report:#}");
    let fields = report["sample"][0]["fields"].clone();
    assert_eq!(
        fields,
        json!(["outstanding", "payment_state"]),
        "{report:#}"
    );
    assert_eq!(report["repairs_enqueued"], 1, "{report:#}");
    assert_eq!(depth(&world, &world.stack.invoicing_queue_url).await?, 0);
    world.drain_payments(DRAIN).await?;
    assert_eq!(deal_property(&world, "5802", "erp_payment_state"), "paid");
    assert_eq!(
        deal_property(&world, "5802", "erp_amount_paid"),
        "1190000.00"
    );
    assert_eq!(
        deal_property(&world, "5802", "erp_amount_outstanding"),
        "0.00"
    );
    assert!(world.payments_dead_letters().await?.is_empty());

    let again = world.reconcile(json!({"flows": [INVOICES_ONLY]})).await??;
    assert_eq!(again["found"].get("invoice"), None, "{again:#}");
    assert_eq!(again["repairs_enqueued"], 0, "{again:#}");
    assert_eq!(invoices_of(&world, "5802").len(), 1, "no second invoice");
    Ok(())
}

/// The Odoo connector's batch reads against the simulator, over HTTP: documents found by many
/// references at once, and a credit note read as the invoice it reverses, net of it.
#[tokio::test]
async fn odoo_documents_are_found_by_many_references_and_credit_notes_lead_to_their_invoice()
-> anyhow::Result<()> {
    use puente_tests::harness::{ODOO_API_KEY, ODOO_DB, ODOO_LOGIN};
    use puente_tests::sim::odoo::OdooSim;
    use shared::domain::invoice::{InvoiceLine, PaymentState, SalesInvoice};
    use shared::domain::{Currency, Date, ErpId, Money, Quantity, Rate};
    use shared::ports::{DocumentListing, DocumentState, InvoiceSink};

    let sim = OdooSim::start(ODOO_DB, ODOO_LOGIN, ODOO_API_KEY).await?;
    let config = shared::config::OdooConfig {
        url: sim.url(),
        database: ODOO_DB.into(),
        username: ODOO_LOGIN.into(),
    };
    let http = shared::connectors::http::client(Duration::from_secs(5), &Default::default())?;
    let odoo = shared::connectors::odoo::Odoo::new(http, config, ODOO_API_KEY.into());
    let partner = sim.create_partner_as_user(json!({"name": "Ferretería El Tornillo SAS"}));
    let mut posted = Vec::new();
    for deal in ["5901", "5902"] {
        let line = InvoiceLine {
            sku: None,
            description: "Suministro".into(),
            quantity: Quantity::from_units(1),
            unit_price: Money::from_minor(100_000_000, Currency::COP),
            discount: Rate::ZERO,
            taxes: Vec::new(),
        };
        let invoice = SalesInvoice::new(
            format!("hubspot-deal-{deal}"),
            ErpId::parse(&partner.to_string())?,
            Currency::COP,
            Date::from_ymd(2026, 12, 3)?,
            None,
            vec![line],
        )?;
        let id = odoo.create_document(&invoice).await?;
        odoo.confirm_document(&id).await?;
        posted.push(id);
    }
    let credit_note = sim
        .refund(posted[1].parse()?, 400_000.0)
        .map_err(anyhow::Error::msg)?;

    let references = [
        "hubspot-deal-5901",
        "hubspot-deal-5902",
        "hubspot-deal-5903",
    ]
    .map(str::to_owned)
    .to_vec();
    let found = odoo.find_documents(&references).await?;
    let mut refs: Vec<_> = found.iter().filter_map(|d| d.reference.clone()).collect();
    refs.sort();
    assert_eq!(
        refs,
        references[..2],
        "one each, none for the deal never invoiced"
    );

    // The credit note stands for the invoice it reverses, listed once with it.
    let ids = vec![credit_note.to_string(), posted[1].clone()];
    let read = odoo.read_invoices(&ids).await?;
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!(read[0].id, posted[1]);
    let (state, status) = read[0].read.clone().map_err(|r| anyhow::anyhow!("{r:?}"))?;
    assert_eq!(state, DocumentState::Confirmed);
    let status = status.ok_or_else(|| anyhow::anyhow!("a posted invoice has a status"))?;
    assert_eq!(
        status.invoiced,
        Money::from_minor(60_000_000, Currency::COP)
    );
    assert_eq!(status.state, PaymentState::Partial);
    Ok(())
}
