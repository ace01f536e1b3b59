//! puente-local: the main job on one machine. Starts the simulators and the functions' release
//! binaries against moto, lets HubSpot deliver a signed company webhook, runs the queue until
//! the sync is done, and shows the Odoo partner and the DynamoDB items it produced. Then turns on
//! both systems' webhooks and lets accounting edit the customer in Odoo: the change reaches the
//! HubSpot company once, and the echoes of our own writes are suppressed. Last, with both
//! webhooks off (as if lost), a company is created in HubSpot and the customer renamed in Odoo:
//! the reconciler's next run finds both, and its repairs put things right.
//!
//! `--serve` keeps everything running afterwards, for your own webhooks and experiments.

use anyhow::Context;
use puente_tests::aws_local::{self, text};
use puente_tests::harness::{HUBSPOT_CLIENT_SECRET, Options, World};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let serve = std::env::args().any(|a| a == "--serve");
    let mut out = std::io::stdout().lock();
    let mut options = Options::for_test("local");
    options.stack = "puente-local".into();
    options.queues.visibility_timeout_s = 60;
    options.worker_timeout = Duration::from_secs(10);
    options.reconciler = true;
    let world = World::start(options)
        .await
        .context("starting the local deployment")?;
    writeln!(out, "puente running locally")?;
    writeln!(out, "  webhook URL      {}", world.webhook_url())?;
    writeln!(out, "  HubSpot sim      {}", world.hubspot.base_url())?;
    writeln!(out, "  Odoo sim         {}/jsonrpc", world.odoo.url())?;
    writeln!(out, "  function logs    {}", world.log_dir.display())?;

    let company = "901";
    world.define_customer_properties();
    world.hubspot.put_company(
        company,
        &[
            ("name", "Distribuidora Andina SAS"),
            ("nit", "900.123.456-8"),
            ("email", "Compras@Andina.co"),
            ("phone", "601 234 5678"),
            ("address", "Cra 7 # 71-21"),
            ("city", "Bogotá"),
            ("country", "Colombia"),
        ],
    );
    writeln!(
        out,
        "\n1. HubSpot company {company} \"Distribuidora Andina SAS\" (NIT 900.123.456-8) is created."
    )?;
    let event =
        world
            .hubspot
            .company_event(1, "company.creation", 901, puente_tests::sim::now_ms());
    let (status, answer) = world.deliver(&[event]).await?;
    writeln!(
        out,
        "2. HubSpot delivers the signed webhook: HTTP {status} {answer}"
    )?;
    let polls = world.drain(Duration::from_secs(60)).await?;
    let processed: usize = polls.iter().map(|p| p.received).sum();
    writeln!(
        out,
        "3. customer-sync processed {processed} message(s) from the customer queue."
    )?;

    writeln!(out, "\nOdoo res.partner records:")?;
    for partner in world.odoo.partners() {
        let mut shown = partner.clone();
        if let Some(id) = partner.get("country_id").and_then(Value::as_i64) {
            shown.insert(
                "country_id".into(),
                serde_json::json!([id, puente_tests::sim::odoo::OdooSim::country_code(id)]),
            );
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&shown)?)?;
    }
    writeln!(out, "\nDynamoDB items in {}:", world.stack.names.table)?;
    for item in world.table_items().await? {
        let fields = ["pk", "sk", "status", "target_id", "other_id", "attempts"]
            .iter()
            .filter_map(|f| text(&item, f).map(|v| format!("{f}={v}")))
            .collect::<Vec<_>>()
            .join("  ");
        writeln!(out, "  {fields}")?;
    }
    let dead = aws_local::peek(&world.aws, &world.stack.customer_dlq_url).await?;
    writeln!(out, "\nDead-letter queue: {} message(s)", dead.len())?;

    // The other direction, with both webhooks registered as in production.
    world.subscribe_both_ways();
    let partner = world
        .odoo
        .partners()
        .first()
        .and_then(|p| p.get("id").and_then(Value::as_i64))
        .context("the partner created above")?;
    puente_tests::sim::odoo::next_second().await;
    world.odoo.edit_partner_as_user(
        partner,
        serde_json::json!({"credit_limit": 15_000_000.0, "property_payment_term_id": 4}),
    );
    writeln!(
        out,
        "\n4. In Odoo, accounting sets partner {partner}'s credit limit (15.000.000) and payment terms (30 Days)."
    )?;
    world.settle(Duration::from_secs(60)).await?;
    let shown = world.hubspot.company(company).unwrap_or_default();
    writeln!(
        out,
        "5. Odoo's webhook reached customer-sync; HubSpot company {company} now shows credit limit {} and payment terms {}.",
        shown.get("puente_credit_limit").map_or("-", String::as_str),
        shown
            .get("puente_payment_terms")
            .map_or("-", String::as_str),
    )?;
    let echoes = world.log_lines("\"outcome\":\"echo_suppressed\"").len()
        + world.log_lines("echoes of our own writes dropped").len();
    writeln!(
        out,
        "6. Writes: {} to Odoo, {} to HubSpot; {echoes} echo(es) of our own writes suppressed, no ping-pong.",
        world.odoo.partner_writes().len(),
        world.hubspot.writes().len(),
    )?;

    // The safety net: changes whose webhooks never arrived.
    world.unsubscribe_both_ways();
    world.hubspot.put_company(
        "902",
        &[
            ("name", "Ferretería El Tornillo SAS"),
            ("nit", "901.234.567-7"),
            ("city", "Medellín"),
            ("country", "CO"),
        ],
    );
    puente_tests::sim::odoo::next_second().await;
    world.odoo.edit_partner_as_user(
        partner,
        serde_json::json!({"name": "ANDINA DISTRIBUIDORA (typed in Odoo)"}),
    );
    world.define_product_properties();
    world
        .odoo
        .add_product("LIC-ERP", "Licencia anual ERP", 1_500_000.0, &[12]);
    writeln!(
        out,
        "\n7. With both webhooks off (as if lost), company 902 is created in HubSpot and partner \
         {partner} is renamed in Odoo (names belong to the CRM); product LIC-ERP joins Odoo's \
         catalogue."
    )?;
    let report = world
        .reconcile(serde_json::json!({"mode": "incremental"}))
        .await?
        .map_err(|e| anyhow::anyhow!("the reconciler failed: {e:?}"))?;
    let report: shared::flows::reconcile::report::DriftReport = serde_json::from_value(report)?;
    writeln!(
        out,
        "8. The reconciler's scheduled run compares both systems. Its drift report:\n"
    )?;
    for line in report.table().lines() {
        match line {
            "" => writeln!(out)?,
            line => writeln!(out, "   {line}")?,
        }
    }
    world.drain(Duration::from_secs(60)).await?;
    let renamed = world
        .odoo
        .partner(partner)
        .and_then(|p| p.get("name").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    writeln!(
        out,
        "9. customer-sync applied the repairs: Odoo has {} partners, and partner {partner} is \
         \"{renamed}\" again.",
        world.odoo.partners().len(),
    )?;
    let price = world
        .hubspot
        .products()
        .into_iter()
        .find(|(_, p)| p.get("hs_sku").map(String::as_str) == Some("LIC-ERP"))
        .and_then(|(_, p)| p.get("price").cloned())
        .unwrap_or_else(|| "(missing)".into());
    writeln!(
        out,
        "   The reconciler itself put LIC-ERP in HubSpot's product library, at price {price}."
    )?;

    if serve {
        writeln!(
            out,
            "\nServing until Ctrl-C. Sign your own webhooks with the client secret {HUBSPOT_CLIENT_SECRET:?};\n\
             company records live in the HubSpot simulator (seeded: {company})."
        )?;
        drop(out);
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                poll = world.poller.poll_once(5) => { poll?; }
            }
        }
    }
    Ok(())
}
