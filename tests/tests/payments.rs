//! Payments, ERP to CRM, end to end: an invoice created by the invoicing flow is paid in the
//! Odoo simulator (in part, in full, too much, or credited), Odoo's automation-rule webhook
//! reaches the receiver with its token, payment-sync reads the invoice and the HubSpot deal shows
//! invoiced, paid and outstanding amounts. The schedule's poll finds what the webhook missed.

use puente_tests::fixtures::{INVOICED_COMPANY, invoicing_world};
use puente_tests::harness::{Options, World};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

const COMPANY: &str = INVOICED_COMPANY;
const DRAIN: Duration = Duration::from_secs(90);

async fn world(name: &str) -> anyhow::Result<World> {
    invoicing_world(Options::for_test(name)).await
}

/// A won deal for 1.000.000,00 COP + 19% = 1.190.000,00, invoiced through the invoicing flow;
/// returns the Odoo invoice.
async fn invoiced(world: &World, deal: &str, line: &str) -> anyhow::Result<Map<String, Value>> {
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
    let event = world.hubspot.deal_event(
        deal.parse()?,
        "deal.propertyChange",
        deal.parse()?,
        puente_tests::sim::now_ms(),
        Some(("dealstage", "closedwon")),
    );
    world.deliver(&[event]).await?;
    world.drain_invoicing(DRAIN).await?;
    let reference = format!("hubspot-deal-{deal}");
    world
        .odoo
        .moves()
        .into_iter()
        .find(|m| m["ref"] == reference.as_str())
        .ok_or_else(|| anyhow::anyhow!("no invoice for deal {deal}"))
}

/// Odoo's `write_date` has whole seconds, and a change's business key is the invoice and its
/// `write_date`: two changes of one invoice within one second are one change to puente (the
/// worker reads the state after both). Tests that change an invoice twice wait for the next
/// second, as an accountant does.
async fn next_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

fn id(invoice: &Map<String, Value>) -> i64 {
    invoice["id"].as_i64().unwrap_or_default()
}

/// Waits until Odoo delivered `count` webhooks about `move_id`, all answered 200.
async fn webhooks_delivered(world: &World, move_id: i64, count: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let log: Vec<Option<u16>> = world
            .odoo
            .webhook_log()
            .into_iter()
            .filter(|(id, _)| *id == move_id)
            .map(|(_, status)| status)
            .collect();
        if log.len() >= count {
            assert!(log.iter().all(|s| *s == Some(200)), "{log:?}");
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(20),
            "only {log:?} webhooks for move {move_id}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the deal shows: (invoiced, paid, outstanding, state).
fn shown(world: &World, deal: &str) -> (String, String, String, String) {
    let deal = world.hubspot.deal(deal).unwrap_or_default();
    let get = |name: &str| deal.get(name).cloned().unwrap_or_default();
    (
        get("erp_amount_invoiced"),
        get("erp_amount_paid"),
        get("erp_amount_outstanding"),
        get("erp_payment_state"),
    )
}

/// What the company shows: (outstanding, overdue invoices).
fn company(world: &World) -> (String, String) {
    let company = world.hubspot.company(COMPANY).unwrap_or_default();
    let get = |name: &str| company.get(name).cloned().unwrap_or_default();
    (get("erp_outstanding"), get("erp_overdue_invoices"))
}

fn amounts(
    invoiced: &str,
    paid: &str,
    outstanding: &str,
    state: &str,
) -> (String, String, String, String) {
    (
        invoiced.into(),
        paid.into(),
        outstanding.into(),
        state.into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_full_and_over_payments_and_a_credit_note_show_on_the_deal() -> anyhow::Result<()> {
    let world = world("paid").await?;
    let first = invoiced(&world, "5601", "7601").await?;
    let second = invoiced(&world, "5602", "7602").await?;
    let third = invoiced(&world, "5603", "7603").await?;
    assert_eq!(
        shown(&world, "5601"),
        amounts("1190000.00", "0.00", "1190000.00", "not_paid")
    );
    world.odoo.set_webhook(Some(world.odoo_webhook_url()));

    // Partial, then the rest.
    next_second().await;
    world
        .odoo
        .register_payment(id(&first), 400_000.0, "2026-11-20")
        .map_err(anyhow::Error::msg)?;
    webhooks_delivered(&world, id(&first), 1).await?;
    world.drain_payments(DRAIN).await?;
    assert_eq!(
        shown(&world, "5601"),
        amounts("1190000.00", "400000.00", "790000.00", "partial")
    );
    // The company shows what it owes on all three invoices.
    assert_eq!(company(&world), ("3170000.00 COP".into(), "0".into()));
    next_second().await;
    world
        .odoo
        .register_payment(id(&first), 790_000.0, "2026-11-25")
        .map_err(anyhow::Error::msg)?;
    webhooks_delivered(&world, id(&first), 2).await?;
    world.drain_payments(DRAIN).await?;
    assert_eq!(
        shown(&world, "5601"),
        amounts("1190000.00", "1190000.00", "0.00", "paid")
    );

    // Overpaid: the invoice is paid; the surplus is the customer's credit in Odoo, not the deal's.
    world
        .odoo
        .register_payment(id(&second), 1_200_000.0, "2026-11-25")
        .map_err(anyhow::Error::msg)?;
    webhooks_delivered(&world, id(&second), 1).await?;
    world.drain_payments(DRAIN).await?;
    assert_eq!(
        shown(&world, "5602"),
        amounts("1190000.00", "1190000.00", "0.00", "paid")
    );

    // Fully credited before any payment: nothing invoiced, paid or owed any more.
    world
        .odoo
        .refund(id(&third), 1_190_000.0)
        .map_err(anyhow::Error::msg)?;
    webhooks_delivered(&world, id(&third), 1).await?;
    world.drain_payments(DRAIN).await?;
    assert_eq!(
        shown(&world, "5603"),
        amounts("0.00", "0.00", "0.00", "reversed")
    );
    assert_eq!(company(&world), ("0".into(), "0".into()));
    assert!(world.payments_dead_letters().await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_without_the_token_is_refused_and_enqueues_nothing() -> anyhow::Result<()> {
    let world = world("token").await?;
    let body = r#"{"_model":"account.move","_id":318,"write_date":"2026-11-26 12:00:00"}"#;
    for url in [
        world.gateway.url("/webhooks/odoo"),
        format!(
            "{}?token=local-odoo-webhook-token-0123456789abcdeX",
            world.gateway.url("/webhooks/odoo")
        ),
    ] {
        let response = world
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 401, "{url}");
    }
    let queued =
        puente_tests::aws_local::queue_depth(&world.aws, &world.stack.payments_queue_url).await?;
    assert_eq!(queued, (0, 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poll_finds_a_payment_whose_webhook_never_came_and_a_late_webhook_changes_nothing()
-> anyhow::Result<()> {
    let world = world("poll").await?;
    let invoice = invoiced(&world, "5701", "7701").await?;
    // The first poll starts from the lookback and hands on the posted invoice.
    let first = world.poll_payments().await?;
    assert_eq!(first["enqueued"], 1, "{first}");
    world.drain_payments(DRAIN).await?;

    // Odoo's webhook is not configured: only the poll can see this payment.
    next_second().await;
    world
        .odoo
        .register_payment(id(&invoice), 190_000.0, "2026-11-26")
        .map_err(anyhow::Error::msg)?;
    let second = world.poll_payments().await?;
    assert_eq!(second["enqueued"], 1, "{second}");
    world.drain_payments(DRAIN).await?;
    assert_eq!(
        shown(&world, "5701"),
        amounts("1190000.00", "190000.00", "1000000.00", "partial")
    );
    let third = world.poll_payments().await?;
    assert_eq!(third["enqueued"], 0, "the cursor moved past it: {third}");

    // The webhook for the same change arrives late: same business key, applied once.
    let writes_before = world.hubspot.writes().len();
    world.odoo.set_webhook(Some(world.odoo_webhook_url()));
    assert_eq!(world.odoo.notify(id(&invoice)).await, Some(200));
    world.drain_payments(DRAIN).await?;
    assert_eq!(
        world.hubspot.writes().len(),
        writes_before,
        "a duplicate writes nothing"
    );
    Ok(())
}
