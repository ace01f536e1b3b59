//! Throughput and latency end to end: a load driver posts signed HubSpot company webhooks (one
//! event per request by default, the costliest shape for API Gateway; HubSpot itself batches up
//! to 100 events per request, which `batch` reproduces) at increasing rates to the receiver
//! behind the local HTTP API, while the SQS event source mapping feeds customer-sync from moto
//! and customer-sync creates each customer in the Odoo simulator. Per rate: events/s applied,
//! webhook answer latency, webhook-to-ERP latency. Over the whole run: the AWS requests the
//! functions sent (counted at the AWS proxy), their invocations and billed durations, peak RSS,
//! and the CPU time spent in our processes versus moto and the simulators.

use super::cost::Usage;
use super::{ProcessUse, Spread, ms, nit};
use crate::harness::{Options, World};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Offered rates, events per second, one phase each.
    pub rates: Vec<u32>,
    /// How long each rate is offered.
    pub seconds: u32,
    pub receiver_instances: usize,
    pub worker_instances: usize,
    /// Events per webhook request (1 to 100).
    pub batch: usize,
    /// Whether the receiver keeps its delivery log (`PUENTE_DELIVERY_HORIZON_HOURS` 0 if not).
    pub delivery_log: bool,
    /// What each event is: a company's creation, or (after every company was created, which is
    /// not measured) an edit of its billing email, a field HubSpot owns.
    pub change: Change,
}

/// The kind of change the load driver sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Change {
    #[default]
    Create,
    Update,
}

/// The billing email an update gives every company.
const UPDATED_EMAIL: &str = "pagos@example.co";

/// One rate's results.
#[derive(Debug, Default)]
pub struct Phase {
    pub rate: u32,
    /// Events sent.
    pub sent: usize,
    /// Webhook requests sent (`sent` over the batch size).
    pub requests: usize,
    /// Events in webhooks answered with something other than 200.
    pub rejected: usize,
    /// Events whose customer never reached Odoo within the wait.
    pub missing: usize,
    /// One per webhook request.
    pub answer: Vec<Duration>,
    pub to_erp: Vec<Duration>,
    /// From the first webhook sent to the last customer applied.
    pub span: Duration,
}

impl Phase {
    pub fn applied_per_second(&self) -> f64 {
        self.to_erp.len() as f64 / self.span.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// CPU seconds used during the run, by who used them.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuShare {
    /// The function processes: our code (with its runtime and SDK).
    pub functions: Duration,
    /// The moto server (DynamoDB, SQS).
    pub moto: Duration,
    /// This process: the HubSpot and Odoo simulators, the local API Gateway, Runtime API and
    /// event source mapping, the AWS proxy and the driver.
    pub platform: Duration,
}

#[derive(Debug, Default)]
pub struct Report {
    pub change: Change,
    pub phases: Vec<Phase>,
    pub usage: Usage,
    /// AWS requests the functions and the event source mapping sent, by operation.
    pub requests: BTreeMap<String, u64>,
    pub peak_rss_kib: BTreeMap<&'static str, u64>,
    pub cpu: CpuShare,
}

/// What each in-flight webhook left: its companies' names, when it was sent, its answer.
type Sent = (Vec<String>, Instant, Duration, u16);

pub async fn run(options: &LoadOptions) -> anyhow::Result<Report> {
    let mut world_options = Options::for_test("bench-load");
    world_options.aws_proxy = true;
    world_options.receiver_instances = options.receiver_instances;
    world_options.worker_instances = options.worker_instances;
    world_options.queues.visibility_timeout_s = 60;
    world_options.worker_timeout = Duration::from_secs(30);
    if !options.delivery_log {
        world_options = world_options.with_receiver_env(&[("PUENTE_DELIVERY_HORIZON_HOURS", "0")]);
    }
    let world = Arc::new(World::start(world_options).await?);
    world.define_customer_properties();

    let total: usize = options
        .rates
        .iter()
        .map(|r| (*r * options.seconds) as usize)
        .sum();
    for i in 0..total {
        put_company(&world, i, "compras@example.co");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let landed = Arc::new(Mutex::new(Landed::default()));
    let watcher = tokio::spawn(watch_partners(world.clone(), landed.clone(), stop.clone()));
    let mapping = Arc::new(MappingCalls::default());
    let consumers: Vec<_> = (0..options.worker_instances)
        .map(|_| {
            let (world, stop, mapping) = (world.clone(), stop.clone(), mapping.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match world.poller.poll_once(1).await {
                        Ok(poll) => mapping.record(poll.received, poll.deleted),
                        Err(e) => {
                            tracing::warn!(error = %e, "poll failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            })
        })
        .collect();

    // Updates need the customers first: created in batches of 100 and left out of every count.
    let mut before_updates = Baseline::default();
    if options.change == Change::Update {
        let seeded = offer(&world, &landed, Change::Create, 1000, 100, 0..total).await?;
        anyhow::ensure!(
            seeded.rejected + seeded.missing == 0,
            "seeding the customers lost {} of {total}",
            seeded.rejected + seeded.missing
        );
        landed
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .name_partners(&world.odoo.partners());
        for i in 0..total {
            put_company(&world, i, UPDATED_EMAIL);
        }
        before_updates = Baseline::now(&world, &mapping)?;
    }

    let before = cpu_now(&world);
    let mut report = Report {
        change: options.change,
        ..Report::default()
    };
    let mut next = 0;
    for &rate in &options.rates {
        let count = (rate * options.seconds) as usize;
        let phase = offer(
            &world,
            &landed,
            options.change,
            rate,
            options.batch,
            next..next + count,
        )
        .await?;
        eprintln!(
            "load: {rate}/s offered, {:.1}/s applied, answer p99 {} ms, to ERP p99 {} ms",
            phase.applied_per_second(),
            ms(Spread::of(&phase.answer).p99),
            ms(Spread::of(&phase.to_erp).p99)
        );
        report.phases.push(phase);
        next += count;
    }
    let after = cpu_now(&world);
    stop.store(true, Ordering::Relaxed);
    for consumer in consumers {
        let _ = consumer.await;
    }
    let _ = watcher.await;

    report.cpu = CpuShare {
        functions: after.functions.saturating_sub(before.functions),
        moto: after.moto.saturating_sub(before.moto),
        platform: after.platform.saturating_sub(before.platform),
    };
    for (name, function) in [
        ("webhook-receiver", &world.receiver),
        ("customer-sync", &world.worker),
    ] {
        let peak = function
            .pids()
            .into_iter()
            .filter_map(ProcessUse::of)
            .map(|u| u.peak_rss_kib)
            .max()
            .unwrap_or_default();
        report.peak_rss_kib.insert(name, peak);
    }

    let mut usage = Usage {
        events: report.phases.iter().map(|p| p.to_erp.len() as u64).sum(),
        http_requests: report.phases.iter().map(|p| p.requests as u64).sum(),
        memory_mb: world.receiver.spec.memory_mb,
        ..Usage::default()
    };
    usage.add_invocations(&world.receiver.durations());
    usage.add_invocations(&world.worker.durations());
    usage.invocations -= before_updates.invocations;
    usage.billed_ms -= before_updates.billed_ms;
    for (operation, body) in proxy(&world)?
        .requests()
        .into_iter()
        .skip(before_updates.requests)
    {
        usage.add_request(&operation, &body);
        *report.requests.entry(operation).or_default() += 1;
    }
    // The event source mapping's own calls: the receives that returned messages and the deletes
    // (its empty long polls cost a fixed amount per month, not per event).
    let receives = mapping.receives.load(Ordering::Relaxed) - before_updates.receives;
    let deletes = mapping.deletes.load(Ordering::Relaxed) - before_updates.deletes;
    usage.sqs_requests += receives + deletes;
    report
        .requests
        .insert("ReceiveMessage (event source mapping)".into(), receives);
    report
        .requests
        .insert("DeleteMessageBatch (event source mapping)".into(), deletes);
    report.usage = usage;
    Ok(report)
}

/// Offers `rate` events per second for the companies `range`, `batch` events per webhook, then
/// waits for their changes to reach Odoo.
async fn offer(
    world: &Arc<World>,
    landed: &Arc<Mutex<Landed>>,
    change: Change,
    rate: u32,
    batch: usize,
    range: std::ops::Range<usize>,
) -> anyhow::Result<Phase> {
    let batch = batch.clamp(1, 100);
    let every = Duration::from_secs_f64(batch as f64 / f64::from(rate));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut sending = Vec::with_capacity(range.len().div_ceil(batch));
    let companies: Vec<usize> = range.collect();
    for chunk in companies.chunks(batch) {
        ticks.tick().await;
        let world = world.clone();
        let chunk = chunk.to_vec();
        sending.push(tokio::spawn(async move {
            let events: Vec<_> = chunk
                .iter()
                .map(|&i| match change {
                    Change::Create => world.hubspot.company_event(
                        company_id(i),
                        "company.creation",
                        company_id(i),
                        crate::sim::now_ms(),
                    ),
                    Change::Update => world.hubspot.company_event(
                        company_id(i) + 1_000_000,
                        "company.propertyChange",
                        company_id(i),
                        crate::sim::now_ms(),
                    ),
                })
                .collect();
            let sent = Instant::now();
            let status = match world.deliver(&events).await {
                Ok((status, _)) => status,
                Err(_) => 0,
            };
            let names = chunk.into_iter().map(company_name).collect();
            (names, sent, sent.elapsed(), status) as Sent
        }));
    }
    let mut phase = Phase {
        rate,
        ..Phase::default()
    };
    let mut waiting = Vec::new();
    for task in sending {
        let (names, sent, answer, status) = task.await?;
        phase.requests += 1;
        phase.sent += names.len();
        phase.answer.push(answer);
        if status == 200 {
            waiting.extend(names.into_iter().map(|name| (name, sent)));
        } else {
            phase.rejected += names.len();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = {
            let landed = landed.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            waiting
                .iter()
                .all(|(name, _)| landed.at(change, name).is_some())
        };
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let landed = landed.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut last = started;
    for (name, sent) in &waiting {
        match landed.at(change, name) {
            Some(at) => {
                phase.to_erp.push(at.saturating_duration_since(*sent));
                last = last.max(at);
            }
            None => phase.missing += 1,
        }
    }
    phase.span = last - started;
    Ok(phase)
}

/// When each change reached Odoo: a customer's creation by its name, an update (the new email
/// written) by the partner's id, named once the seeding created them.
#[derive(Debug, Default)]
struct Landed {
    created: HashMap<String, Instant>,
    updated: HashMap<i64, Instant>,
    partner_of: HashMap<String, i64>,
}

impl Landed {
    fn note(&mut self, id: i64, values: &serde_json::Map<String, serde_json::Value>, at: Instant) {
        if let Some(name) = values.get("name").and_then(|n| n.as_str()) {
            self.created.entry(name.to_owned()).or_insert(at);
        }
        if values.get("email").and_then(|c| c.as_str()) == Some(UPDATED_EMAIL) {
            self.updated.entry(id).or_insert(at);
        }
    }

    fn name_partners(&mut self, partners: &[serde_json::Map<String, serde_json::Value>]) {
        for partner in partners {
            if let (Some(name), Some(id)) = (
                partner.get("name").and_then(|n| n.as_str()),
                partner.get("id").and_then(|i| i.as_i64()),
            ) {
                self.partner_of.insert(name.to_owned(), id);
            }
        }
    }

    fn at(&self, change: Change, name: &str) -> Option<Instant> {
        match change {
            Change::Create => self.created.get(name).copied(),
            Change::Update => self
                .partner_of
                .get(name)
                .and_then(|id| self.updated.get(id))
                .copied(),
        }
    }
}

/// Notes when each change reaches Odoo, every 2 ms.
async fn watch_partners(world: Arc<World>, landed: Arc<Mutex<Landed>>, stop: Arc<AtomicBool>) {
    let mut seen = 0;
    while !stop.load(Ordering::Relaxed) {
        let writes = world.odoo.partner_writes_from(seen);
        if !writes.is_empty() {
            let now = Instant::now();
            seen += writes.len();
            if let Ok(mut landed) = landed.lock() {
                for (id, values) in &writes {
                    landed.note(*id, values, now);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// What the seeding used, taken off the totals of an update run.
#[derive(Debug, Default, Clone, Copy)]
struct Baseline {
    invocations: u64,
    billed_ms: u64,
    requests: usize,
    receives: u64,
    deletes: u64,
}

impl Baseline {
    fn now(world: &World, mapping: &MappingCalls) -> anyhow::Result<Self> {
        let mut usage = Usage::default();
        usage.add_invocations(&world.receiver.durations());
        usage.add_invocations(&world.worker.durations());
        Ok(Self {
            invocations: usage.invocations,
            billed_ms: usage.billed_ms,
            requests: proxy(world)?.requests().len(),
            receives: mapping.receives.load(Ordering::Relaxed),
            deletes: mapping.deletes.load(Ordering::Relaxed),
        })
    }
}

fn proxy(world: &World) -> anyhow::Result<&crate::platform::aws_proxy::AwsProxy> {
    world
        .aws_proxy
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("started without the AWS proxy"))
}

fn put_company(world: &World, i: usize, email: &str) {
    world.hubspot.put_company(
        &company_id(i).to_string(),
        &[
            ("name", &company_name(i)),
            ("nit", &nit(200_000 + i)),
            ("email", email),
            ("city", "Bogotá"),
            ("country", "Colombia"),
        ],
    );
}

#[derive(Debug, Default)]
struct MappingCalls {
    receives: AtomicU64,
    deletes: AtomicU64,
}

impl MappingCalls {
    fn record(&self, received: usize, deleted: usize) {
        if received > 0 {
            self.receives.fetch_add(1, Ordering::Relaxed);
        }
        if deleted > 0 {
            self.deletes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn company_id(i: usize) -> u64 {
    500_000 + i as u64
}

fn company_name(i: usize) -> String {
    format!("Carga {i} SAS")
}

fn cpu_now(world: &World) -> CpuShare {
    let cpu = |pids: Vec<u32>| -> Duration {
        pids.into_iter()
            .filter_map(ProcessUse::of)
            .map(|u| u.cpu)
            .sum()
    };
    let moto = std::env::var("MOTO_PID")
        .ok()
        .and_then(|p| p.parse().ok())
        .and_then(ProcessUse::of)
        .map(|u| u.cpu)
        .unwrap_or_default();
    CpuShare {
        functions: cpu(world.receiver.pids()) + cpu(world.worker.pids()),
        moto,
        platform: ProcessUse::of_self().map(|u| u.cpu).unwrap_or_default(),
    }
}

pub fn print(report: &Report, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let per_request = report
        .phases
        .iter()
        .map(|p| p.sent as f64 / p.requests.max(1) as f64)
        .fold(0.0, f64::max);
    writeln!(
        out,
        "throughput and latency ({}, {per_request:.0} event(s) per webhook; latencies in ms)",
        match report.change {
            Change::Create => "customer creations",
            Change::Update => "customer updates",
        }
    )?;
    writeln!(
        out,
        "{:>9} {:>6} {:>10} {:>11} {:>11} {:>11} {:>11} {:>8}",
        "offered/s",
        "sent",
        "applied/s",
        "answer p50",
        "answer p99",
        "to ERP p50",
        "to ERP p99",
        "lost"
    )?;
    for phase in &report.phases {
        let answer = Spread::of(&phase.answer);
        let to_erp = Spread::of(&phase.to_erp);
        writeln!(
            out,
            "{:>9} {:>6} {:>10.1} {:>11} {:>11} {:>11} {:>11} {:>8}",
            phase.rate,
            phase.sent,
            phase.applied_per_second(),
            ms(answer.median),
            ms(answer.p99),
            ms(to_erp.median),
            ms(to_erp.p99),
            phase.rejected + phase.missing
        )?;
    }
    let cpu = report.cpu;
    let all = (cpu.functions + cpu.moto + cpu.platform)
        .as_secs_f64()
        .max(f64::MIN_POSITIVE);
    let share = |d: Duration| 100.0 * d.as_secs_f64() / all;
    writeln!(
        out,
        "\nCPU time during the run: our functions {:.1} s ({:.0}%), moto {:.1} s ({:.0}%), simulators and local platform {:.1} s ({:.0}%)",
        cpu.functions.as_secs_f64(),
        share(cpu.functions),
        cpu.moto.as_secs_f64(),
        share(cpu.moto),
        cpu.platform.as_secs_f64(),
        share(cpu.platform)
    )?;
    for (name, kib) in &report.peak_rss_kib {
        writeln!(
            out,
            "peak RSS under load: {name} {:.1} MB",
            *kib as f64 / 1024.0
        )?;
    }
    let events = report.usage.events.max(1) as f64;
    writeln!(
        out,
        "\nAWS requests per applied event ({} events):",
        report.usage.events
    )?;
    for (operation, count) in &report.requests {
        writeln!(out, "  {operation:<42} {:>7.3}", *count as f64 / events)?;
    }
    Ok(())
}
