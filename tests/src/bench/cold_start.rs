//! Cold start: each function's release binary started `runs` times as a fresh process under the
//! local Lambda Runtime API, with the environment the template gives it, against moto and the
//! simulators. Measured per start: from process start to its first `GET
//! /runtime/invocation/next` (init), and to the end of its first invocation (which builds what
//! the function builds lazily: the Odoo session, the first connections). A minimal
//! `lambda_runtime` hello-world binary runs in the same loop, interleaved, so the ratio holds on
//! a noisy machine.
//!
//! Each first invocation does real work: the receiver verifies and enqueues a signed HubSpot
//! company webhook, customer-sync creates that customer in Odoo, invoicing turns a won deal
//! into an invoice, payment-sync runs its scheduled poll, the reconciler an incremental run.

use super::{ProcessUse, Spread, ms, nit};
use crate::fixtures::DEAL_PROPERTIES;
use crate::harness::{Options, World, binary_dir};
use crate::platform::gateway::{Gateway, Route};
use crate::platform::poller::Poller;
use crate::platform::runtime::{Function, FunctionSpec};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The functions measured, in the order of the loop.
const KINDS: [&str; 6] = [
    "hello-world",
    "webhook-receiver",
    "customer-sync",
    "invoicing",
    "payment-sync",
    "reconciler",
];

/// One function's starts.
#[derive(Debug, Default)]
pub struct Starts {
    pub init: Vec<Duration>,
    pub first_invocation: Vec<Duration>,
    /// Peak resident memory after the first invocation, the largest seen.
    pub peak_rss_kib: u64,
}

/// Starts by function, in `KINDS` order.
#[derive(Debug, Default)]
pub struct Report {
    pub runs: usize,
    pub functions: BTreeMap<&'static str, Starts>,
}

pub async fn run(runs: usize) -> anyhow::Result<Report> {
    let mut options = Options::for_test("bench-cold");
    options.receiver_instances = 1;
    options.worker_instances = 1;
    options.payments = true;
    options.reconciler = true;
    let options = options.with_invoicing(&[
        ("PUENTE_WON_STAGES", "closedwon"),
        ("PUENTE_TAXES_BY_SKU", "LIC-ERP=19"),
        ("PUENTE_DEFAULT_TAXES", "19"),
        ("PUENTE_PAYMENT_TERM_DAYS", "30"),
    ]);
    let world = World::start(options).await?;
    world.define_customer_properties();
    world.define_product_properties();
    for property in DEAL_PROPERTIES {
        world.hubspot.define_property("deals", property);
    }
    world
        .odoo
        .add_product("LIC-ERP", "Licencia anual ERP", 1_500_000.0, &[]);

    let hello = FunctionSpec {
        name: format!("{}-hello-world", world.stack.names.stack),
        binary: binary_dir().join("hello-lambda"),
        env: Vec::new(),
        timeout: Duration::from_secs(10),
        memory_mb: 128,
        instances: 1,
        log_dir: world.log_dir.clone(),
    };
    let (invoicing, _) = world
        .invoicing
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("started without invoicing"))?;
    let (payments, _) = world
        .payments
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("started without payments"))?;
    let reconciler = world
        .reconciler
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("started without the reconciler"))?;
    let specs: BTreeMap<&str, FunctionSpec> = BTreeMap::from([
        ("hello-world", hello),
        ("webhook-receiver", (*world.receiver.spec).clone()),
        ("customer-sync", (*world.worker.spec).clone()),
        ("invoicing", (*invoicing.spec).clone()),
        ("payment-sync", (*payments.spec).clone()),
        ("reconciler", (*reconciler.spec).clone()),
    ]);

    let mut report = Report {
        runs,
        functions: BTreeMap::new(),
    };
    for run in 0..runs {
        for kind in KINDS {
            let mut spec = specs[kind].clone();
            spec.instances = 1;
            spec.name = format!("{}-cold-{run}", spec.name);
            let function = Arc::new(Function::start(spec).await?);
            first_invocation(&world, kind, run, &function)
                .await
                .map_err(|e| anyhow::anyhow!("{kind}, start {run}: {e}"))?;
            let timeline = function.timelines().first().copied().flatten();
            let used = function.pids().first().and_then(|pid| ProcessUse::of(*pid));
            function.kill();
            let (Some(init), Some(first)) = (
                timeline.and_then(|t| t.init()),
                timeline.and_then(|t| t.first_invocation()),
            ) else {
                anyhow::bail!("{kind}, start {run}: the runtime saw no complete first invocation");
            };
            let starts = report.functions.entry(kind).or_default();
            starts.init.push(init);
            starts.first_invocation.push(first);
            starts.peak_rss_kib = starts
                .peak_rss_kib
                .max(used.map(|u| u.peak_rss_kib).unwrap_or_default());
        }
        eprint!("\rcold start: {}/{runs} runs", run + 1);
    }
    eprintln!();
    Ok(report)
}

/// The function's first invocation, through the path it is invoked by in production; fails
/// unless the function did its work.
async fn first_invocation(
    world: &World,
    kind: &str,
    run: usize,
    function: &Arc<Function>,
) -> anyhow::Result<()> {
    let queue_poller = |url: &str, arn: &str| Poller {
        sqs: world.aws.sqs.clone(),
        queue_url: url.to_owned(),
        queue_arn: arn.to_owned(),
        function: function.clone(),
        batch_size: 1,
    };
    match kind {
        "hello-world" => {
            function.invoke(r#"{"hello":"world"}"#).await?;
        }
        "webhook-receiver" => {
            // Through an API Gateway of its own, so this process answers the webhook.
            let (listener, _) = Gateway::bind().await?;
            let gateway = Gateway::serve(
                listener,
                vec![Route {
                    method: axum::http::Method::POST,
                    path: "/webhooks/hubspot".into(),
                    function: function.clone(),
                }],
            )?;
            let company = 10_000 + run as u64;
            world.hubspot.put_company(
                &company.to_string(),
                &[
                    ("name", &format!("Cold Start {run} SAS")),
                    ("nit", &nit(run)),
                    ("email", "compras@example.co"),
                    ("city", "Bogotá"),
                    ("country", "Colombia"),
                ],
            );
            let event = world.hubspot.company_event(
                company,
                "company.creation",
                company,
                crate::sim::now_ms(),
            );
            let url = gateway.url("/webhooks/hubspot");
            let (status, body) = world.hubspot.deliver(&world.http, &url, &[event]).await?;
            anyhow::ensure!(status == 200, "webhook answered {status}: {body}");
        }
        "customer-sync" => {
            // The company the receiver's start enqueued.
            let poll = queue_poller(
                &world.stack.customer_queue_url,
                &world.stack.customer_queue_arn,
            )
            .poll_once(5)
            .await?;
            anyhow::ensure!(
                poll.received == 1 && poll.deleted == 1,
                "customer message not applied: {poll:?}"
            );
        }
        "invoicing" => {
            let deal = 20_000 + run as u64;
            won_deal(world, run, deal);
            let event = world.hubspot.deal_event(
                deal,
                "deal.propertyChange",
                deal,
                crate::sim::now_ms(),
                Some(("dealstage", "closedwon")),
            );
            let (status, body) = world.deliver(&[event]).await?;
            anyhow::ensure!(status == 200, "webhook answered {status}: {body}");
            let poll = queue_poller(
                &world.stack.invoicing_queue_url,
                &world.stack.invoicing_queue_arn,
            )
            .poll_once(5)
            .await?;
            anyhow::ensure!(
                poll.received == 1 && poll.deleted == 1,
                "won deal not invoiced: {poll:?}"
            );
        }
        "payment-sync" => {
            function.invoke(scheduled_event().to_string()).await?;
        }
        "reconciler" => {
            function
                .invoke(json!({"mode": "incremental"}).to_string())
                .await?;
        }
        other => anyhow::bail!("unknown function {other}"),
    }
    Ok(())
}

/// A won deal with one licence line, for a company of its own.
fn won_deal(world: &World, run: usize, deal: u64) {
    let company = (30_000 + run).to_string();
    world.hubspot.put_company(
        &company,
        &[
            ("name", &format!("Factura Fría {run} SAS")),
            ("nit", &nit(100_000 + run)),
            ("email", "cartera@example.co"),
            ("city", "Medellín"),
            ("country", "Colombia"),
        ],
    );
    let line = (40_000 + run).to_string();
    world.hubspot.put_line_item(
        &line,
        &[
            ("name", "Licencia anual ERP"),
            ("hs_sku", "LIC-ERP"),
            ("quantity", "1"),
            ("price", "1500000"),
        ],
    );
    world.hubspot.put_deal(
        &deal.to_string(),
        &[
            ("dealname", &format!("Licencia {run}")),
            ("dealstage", "closedwon"),
            ("pipeline", "default"),
            ("amount", "1500000"),
            ("deal_currency_code", "COP"),
        ],
        Some(&company),
        &[&line],
    );
}

fn scheduled_event() -> serde_json::Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-12-03T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/puente-bench"],
        "detail": {}
    })
}

/// The table: init and first invocation, median and p90, and init as a multiple of the
/// hello-world binary's median.
pub fn print(report: &Report, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let hello = report
        .functions
        .get("hello-world")
        .map(|s| Spread::of(&s.init).median)
        .unwrap_or_default();
    writeln!(
        out,
        "cold start, {} starts each (ms; ratio = init median / hello-world init median)",
        report.runs
    )?;
    writeln!(
        out,
        "{:<18} {:>11} {:>9} {:>7} {:>17} {:>12} {:>10}",
        "function",
        "init median",
        "init p90",
        "ratio",
        "first inv. median",
        "first inv. p90",
        "peak RSS"
    )?;
    for kind in KINDS {
        let Some(starts) = report.functions.get(kind) else {
            continue;
        };
        let init = Spread::of(&starts.init);
        let first = Spread::of(&starts.first_invocation);
        let ratio = init.median.as_secs_f64() / hello.as_secs_f64().max(f64::MIN_POSITIVE);
        writeln!(
            out,
            "{:<18} {:>11} {:>9} {:>6.2}x {:>17} {:>12} {:>7.1} MB",
            kind,
            ms(init.median),
            ms(init.p90),
            ratio,
            ms(first.median),
            ms(first.p90),
            starts.peak_rss_kib as f64 / 1024.0
        )?;
    }
    Ok(())
}
