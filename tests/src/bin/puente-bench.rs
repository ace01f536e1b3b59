//! puente-bench: the performance benchmarks of the functions' release binaries, against moto and
//! the simulators (`scripts/bench` builds them and starts moto).
//!
//!   puente-bench cold-start [--runs 20]
//!   puente-bench load [--rates 10,25,50,100] [--seconds 10] [--receivers 2] [--workers 2]
//!                     [--batch 1] [--delivery-log on|off] [--change create|update]
//!                     [--prices infra/prices.us-east-1.json]
//!
//! They print tables; nothing here asserts a time. The goals of the performance budget are
//! shown next to the measurements, as met or missed.

use anyhow::Context;
use puente_tests::bench::cost::{Prices, breakdown};
use puente_tests::bench::load::{Change, LoadOptions};
use puente_tests::bench::{Spread, cold_start, load};
use std::io::Write;

const USAGE: &str = "usage: puente-bench cold-start [--runs N]\n       puente-bench load [--rates R,R,..] [--seconds S] [--receivers N] [--workers N] [--batch EVENTS] [--delivery-log on|off] [--change create|update] [--prices FILE]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| -> Option<&str> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    let number = |name: &str, default: usize| -> anyhow::Result<usize> {
        flag(name).map_or(Ok(default), |v| {
            v.parse()
                .with_context(|| format!("{name} wants a number, got {v}"))
        })
    };
    let mut out = std::io::stdout().lock();
    match args.first().map(String::as_str) {
        Some("cold-start") => {
            let report = Box::pin(cold_start::run(number("--runs", 20)?.max(1))).await?;
            cold_start::print(&report, &mut out)?;
            let hello = report
                .functions
                .get("hello-world")
                .map(|s| Spread::of(&s.init).median)
                .unwrap_or_default();
            for (name, starts) in &report.functions {
                let ratio = Spread::of(&starts.init).median.as_secs_f64()
                    / hello.as_secs_f64().max(f64::MIN_POSITIVE);
                goal(
                    &mut out,
                    &format!("{name} init within 1.5x hello-world"),
                    ratio <= 1.5,
                )?;
            }
        }
        Some("load") => {
            let rates = flag("--rates")
                .unwrap_or("10,25,50,100")
                .split(',')
                .map(|r| r.trim().parse::<u32>())
                .collect::<Result<Vec<_>, _>>()
                .context("--rates wants numbers separated by commas")?;
            anyhow::ensure!(rates.iter().all(|r| *r > 0), "rates must be positive");
            let options = LoadOptions {
                rates,
                seconds: number("--seconds", 10)?.max(1) as u32,
                receiver_instances: number("--receivers", 2)?.max(1),
                worker_instances: number("--workers", 2)?.max(1),
                batch: number("--batch", 1)?.clamp(1, 100),
                delivery_log: match flag("--delivery-log").unwrap_or("on") {
                    "on" => true,
                    "off" => false,
                    other => anyhow::bail!("--delivery-log wants on or off, got {other}"),
                },
                change: match flag("--change").unwrap_or("create") {
                    "create" => Change::Create,
                    "update" => Change::Update,
                    other => anyhow::bail!("--change wants create or update, got {other}"),
                },
            };
            let prices_path = flag("--prices").unwrap_or(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../infra/prices.us-east-1.json"
            ));
            let prices = Prices::load(std::path::Path::new(prices_path))?;
            let report = load::run(&options).await?;
            load::print(&report, &mut out)?;

            let usage = &report.usage;
            writeln!(
                out,
                "\ncost per million synced events ({}, {} MB, {} invocations, {:.3} GB-s measured):",
                prices.region,
                usage.memory_mb,
                usage.invocations,
                usage.gb_seconds()
            )?;
            let lines = breakdown(usage, &prices);
            let mut total = 0.0;
            for line in &lines {
                total += line.per_million_events;
                writeln!(
                    out,
                    "  {:<22} {:>8.3} {:<12} ${:>7.3}",
                    line.item, line.per_event, line.unit, line.per_million_events
                )?;
            }
            writeln!(out, "  {:<43} ${total:>7.3}", "total")?;

            let events = usage.events.max(1) as f64;
            let lost: usize = report.phases.iter().map(|p| p.rejected + p.missing).sum();
            goal(&mut out, "no event lost", lost == 0)?;
            goal(
                &mut out,
                "at most 2 DynamoDB writes and 1 read per event",
                usage.dynamodb_writes as f64 / events <= 2.0
                    && usage.dynamodb_reads as f64 / events <= 1.0,
            )?;
            let peak = report
                .peak_rss_kib
                .values()
                .max()
                .copied()
                .unwrap_or_default();
            goal(&mut out, "peak RSS under 40 MB", peak < 40 * 1024)?;
            goal(
                &mut out,
                "cost per million events at most $3.00",
                total <= 3.0,
            )?;
        }
        _ => anyhow::bail!("{USAGE}"),
    }
    Ok(())
}

fn goal(out: &mut impl Write, what: &str, met: bool) -> std::io::Result<()> {
    writeln!(out, "goal: {what}: {}", if met { "met" } else { "MISSED" })
}
