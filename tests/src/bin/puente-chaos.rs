//! puente-chaos: thousands of HubSpot company changes through the release binaries while faults
//! are armed at random on every side, then a verdict from observable outcomes only (Odoo
//! partners, ledger items, dead letters): applied once, parked with reason, duplicates, lost.
//!
//! Run it with `scripts/chaos` (moto, release build, this binary). Options: `--events N`
//! (2000), `--companies C` (300), `--seed S` (random; printed so a run can be replayed),
//! `--workers W` (4), `--invalid-percent P` (3), `--fault-percent F` (10 faults armed per 100
//! records received), `--drain-minutes M` (15). The exit code is
//! non-zero when a duplicate or a lost event is found.
//!
//! A seed replays the same companies, changes, batches and fault choices; the interleaving
//! with the functions is up to the scheduler, so two runs with one seed are alike, not equal.
#![allow(
    clippy::print_stdout,
    reason = "a command whose output is its progress lines and its report"
)]

use anyhow::Context;
use puente_tests::aws_local::{self, text};
use puente_tests::chaos::{self, Company, DeadLetter, Observed, Partner, PartnerState, Verdict};
use puente_tests::harness::{Options, World};
use puente_tests::platform::aws_proxy::{AwsAnswer, AwsFault};
use puente_tests::sim::faults::Fault;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// The worker's HTTP timeout; "slow" faults answer after it.
const HTTP_TIMEOUT_S: u64 = 3;
/// The worker's Lambda timeout: short, so that a record meeting two slow calls reaches the
/// deadline mid-batch (the runner stops 2 s before it), yet long enough that a batch of ten
/// on a loaded 2-core machine with moto does not reach it on its own.
const WORKER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than an invocation, so a batch waiting for a free instance is not received twice
/// merely because the local platform queued it.
const VISIBILITY_TIMEOUT_S: u32 = 30;
/// The template's `maxReceiveCount` (infra/template.yaml): a message failing this often is
/// moved to the dead-letter queue by SQS itself.
const MAX_RECEIVE_COUNT: u32 = 12;
/// Deliveries posted at once, like HubSpot's concurrent webhook senders.
const SENDERS: usize = 4;
/// Messages in the customer queue above which the sender waits.
const BACKLOG_LIMIT: u64 = 250;
const HUBSPOT_READ: &str = "GET /crm/v3/objects/companies";

#[derive(Debug, Clone)]
struct Args {
    events: usize,
    companies: usize,
    seed: u64,
    workers: usize,
    invalid_percent: u32,
    /// Faults armed per hundred records the workers receive.
    fault_percent: u64,
    drain: Duration,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        events: 2000,
        companies: 300,
        seed: fastrand::u64(..),
        workers: 4,
        invalid_percent: 3,
        fault_percent: 10,
        drain: Duration::from_secs(15 * 60),
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        let mut value = || -> anyhow::Result<u64> {
            let v = raw
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            v.parse()
                .with_context(|| format!("{flag} takes a number, not {v:?}"))
        };
        match flag.as_str() {
            "--events" => args.events = usize::try_from(value()?)?,
            "--companies" => args.companies = usize::try_from(value()?)?.max(1),
            "--seed" => args.seed = value()?,
            "--workers" => args.workers = usize::try_from(value()?)?.max(1),
            "--invalid-percent" => args.invalid_percent = u32::try_from(value()?)?.min(100),
            "--fault-percent" => args.fault_percent = value()?.clamp(1, 100),
            "--drain-minutes" => args.drain = Duration::from_secs(value()? * 60),
            "-h" | "--help" => {
                println!(
                    "usage: puente-chaos [--events N] [--companies C] [--seed S] [--workers W] \
                     [--invalid-percent P] [--fault-percent F] [--drain-minutes M]"
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown option {other:?} (try --help)"),
        }
    }
    Ok(args)
}

/// The faults the run arms, each on the operation it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FaultKind {
    HubSpot500,
    HubSpot429RetryAfter,
    HubSpotSlowerThanTimeout,
    Odoo500,
    OdooSlowWithinTimeout,
    OdooAppliedThenAnsweredLate,
    OdooValidationError,
    KillAfterTargetWrite,
    KillAfterClaim,
    /// Through the AWS fault proxy in front of moto.
    DynamoThrottlesClaim,
    DynamoFailsCompletion,
    SqsRefusesReceiverSend,
}

impl FaultKind {
    /// Relative frequency of each kind (kills and validation errors are also capped per run).
    const WEIGHTS: [(FaultKind, u32); 12] = [
        (FaultKind::HubSpot500, 15),
        (FaultKind::HubSpot429RetryAfter, 15),
        (FaultKind::HubSpotSlowerThanTimeout, 8),
        (FaultKind::Odoo500, 15),
        (FaultKind::OdooSlowWithinTimeout, 10),
        (FaultKind::OdooAppliedThenAnsweredLate, 10),
        (FaultKind::OdooValidationError, 4),
        (FaultKind::KillAfterTargetWrite, 4),
        (FaultKind::KillAfterClaim, 4),
        (FaultKind::DynamoThrottlesClaim, 8),
        (FaultKind::DynamoFailsCompletion, 6),
        (FaultKind::SqsRefusesReceiverSend, 6),
    ];

    fn label(self) -> &'static str {
        match self {
            FaultKind::HubSpot500 => "HubSpot 500",
            FaultKind::HubSpot429RetryAfter => "HubSpot 429 Retry-After 1s",
            FaultKind::HubSpotSlowerThanTimeout => "HubSpot slower than the HTTP timeout",
            FaultKind::Odoo500 => "Odoo 500",
            FaultKind::OdooSlowWithinTimeout => "Odoo slow (within the timeout)",
            FaultKind::OdooAppliedThenAnsweredLate => "Odoo applied, answered after timeout",
            FaultKind::OdooValidationError => "Odoo ValidationError (422-class)",
            FaultKind::KillAfterTargetWrite => "worker killed after the Odoo write",
            FaultKind::KillAfterClaim => "worker killed after claim, before HubSpot",
            FaultKind::DynamoThrottlesClaim => "DynamoDB throttling the ledger claim",
            FaultKind::DynamoFailsCompletion => "DynamoDB 500 on the completion",
            FaultKind::SqsRefusesReceiverSend => "SQS refusing the receiver's send",
        }
    }

    fn pick(rng: &mut fastrand::Rng) -> FaultKind {
        let total: u32 = Self::WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut roll = rng.u32(0..total);
        for (kind, weight) in Self::WEIGHTS {
            if roll < weight {
                return kind;
            }
            roll -= weight;
        }
        FaultKind::HubSpot500
    }

    fn is_kill(self) -> bool {
        matches!(
            self,
            FaultKind::KillAfterTargetWrite | FaultKind::KillAfterClaim
        )
    }
}

/// Counters shared by the tasks of the run.
#[derive(Debug, Default)]
struct Progress {
    changes_made: AtomicUsize,
    deliveries: AtomicUsize,
    webhook_events_posted: AtomicUsize,
    deliveries_refused: AtomicUsize,
    deliveries_abandoned: AtomicUsize,
    poison_sent: AtomicUsize,
    polls: AtomicUsize,
    records_received: AtomicUsize,
    records_handed_back: AtomicUsize,
    invocations_failed: AtomicUsize,
    faults: Mutex<BTreeMap<FaultKind, u32>>,
    kills_skipped: AtomicUsize,
    /// Polls between their receive and their answer, i.e. invocations asked for.
    polls_running: AtomicUsize,
    /// When an invocation last failed (a kill or a timeout restarts an instance), in
    /// milliseconds since `epoch`.
    last_invoke_failure_ms: AtomicU64,
    epoch: OnceLock<Instant>,
}

impl Progress {
    fn count(&self, kind: FaultKind) {
        if let Ok(mut faults) = self.faults.lock() {
            *faults.entry(kind).or_default() += 1;
        }
    }

    fn faults_of(&self, kind: FaultKind) -> u32 {
        self.faults
            .lock()
            .map(|f| f.get(&kind).copied().unwrap_or_default())
            .unwrap_or_default()
    }

    fn since_epoch(&self) -> Duration {
        self.epoch.get_or_init(Instant::now).elapsed()
    }

    fn faults_total(&self) -> u32 {
        self.faults
            .lock()
            .map(|f| f.values().sum())
            .unwrap_or_default()
    }
}

/// How a delivery is repeated, as HubSpot (or the network) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Once,
    AgainAfterward,
    TwiceConcurrently,
    AgainAfterApplied,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let started = Instant::now();
    println!(
        "puente-chaos: seed {} (replay with --seed {}), {} events over {} companies, {} worker instances, {} faults per 100 records",
        args.seed, args.seed, args.events, args.companies, args.workers, args.fault_percent
    );
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let mut options = Options::for_test("chaos");
    options.worker_instances = args.workers;
    options.aws_proxy = true;
    options.receiver_instances = 2;
    options.worker_timeout = WORKER_TIMEOUT;
    options.http_timeout_s = HTTP_TIMEOUT_S;
    options.queues.visibility_timeout_s = VISIBILITY_TIMEOUT_S;
    options.queues.max_receive_count = MAX_RECEIVE_COUNT;
    options.retry_base_s = 1;
    options.lease_margin_s = 1;
    // The run changes each company several times a minute on purpose; the circuit breaker,
    // which would rightly quarantine such a company, has its own test (tests/tests/two_way.rs).
    options.customer_env = vec![("PUENTE_BREAKER_MAX_WRITES".into(), "100000".into())];
    let world = Arc::new(
        World::start(options)
            .await
            .context("starting the local deployment")?,
    );
    println!(
        "stack {} up; function logs in {}",
        world.stack.names.stack,
        world.log_dir.display()
    );

    let progress = Arc::new(Progress::default());
    progress.since_epoch();
    let stop_pollers = Arc::new(AtomicBool::new(false));
    let stop_faults = Arc::new(AtomicBool::new(false));

    // More pollers than instances keep an invocation waiting for every instance, so a killed
    // process is almost always one in the middle of an invocation (the platform restarts those).
    let mut pollers = JoinSet::new();
    for _ in 0..args.workers * 2 {
        pollers.spawn(poll_until(
            world.clone(),
            progress.clone(),
            stop_pollers.clone(),
        ));
    }
    let reporter = tokio::spawn(report_progress(
        world.clone(),
        progress.clone(),
        args.events,
        started,
        stop_pollers.clone(),
    ));
    let injector = tokio::spawn(inject_faults(
        world.clone(),
        progress.clone(),
        fastrand::Rng::with_seed(rng.u64(..)),
        args.clone(),
        stop_faults.clone(),
    ));

    let mut companies: Vec<Company> = (0..args.companies)
        .map(|i| {
            let number = rng.u64(800_000_000..=999_999_999);
            let valid = rng.u32(0..100) >= args.invalid_percent;
            Company::new(10_001 + i as u64, number, valid)
        })
        .collect();
    let invalid = companies.iter().filter(|c| !c.valid_nit).count();
    println!(
        "{invalid} of {} companies carry an invalid NIT",
        companies.len()
    );

    let later = send_changes(&world, &progress, &mut rng, &args, &mut companies).await?;
    println!(
        "[{:>5.1}s] all {} changes delivered; waiting for the queue before {} provider retries",
        started.elapsed().as_secs_f64(),
        args.events,
        later.len()
    );
    if let Err(e) = wait_for_empty_queue(&world, args.drain).await {
        // The resends still go out: they then overlap the backlog instead of
        // arriving after it, which is a harder case, not an easier one.
        println!("WARNING: before the provider retries: {e:#}");
    }
    let mut resends = JoinSet::new();
    for events in later {
        let (world, progress) = (world.clone(), progress.clone());
        resends.spawn(async move { deliver(&world, &progress, &events).await });
        while resends.len() >= SENDERS {
            resends.join_next().await;
        }
    }
    while resends.join_next().await.is_some() {}
    stop_faults.store(true, Ordering::Relaxed);
    injector.await.context("fault injector")?;
    println!(
        "[{:>5.1}s] sending done, faults disarmed; draining",
        started.elapsed().as_secs_f64()
    );

    let drained = wait_for_empty_queue(&world, args.drain).await;
    stop_pollers.store(true, Ordering::Relaxed);
    while pollers.join_next().await.is_some() {}
    reporter.await.context("progress reporter")?;
    if let Err(e) = &drained {
        println!("WARNING: {e:#}");
    }

    let observed = observe(&world).await?;
    let verdict = chaos::judge(&companies, &observed);
    let still_queued = world.queued().await.unwrap_or_default();
    print_summary(
        &args,
        &progress,
        &verdict,
        &world,
        still_queued,
        started.elapsed(),
    );
    explain_duplicates(&world, &companies, &observed, &verdict);
    if verdict.duplicates() > 0 || verdict.lost() > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// Changes companies in the HubSpot simulator and delivers their webhooks in batches of 1-100
/// events, some of them repeated; returns the deliveries to repeat once their events applied.
async fn send_changes(
    world: &Arc<World>,
    progress: &Arc<Progress>,
    rng: &mut fastrand::Rng,
    args: &Args,
    companies: &mut [Company],
) -> anyhow::Result<Vec<Arc<Vec<Value>>>> {
    let mut last_occurred_at = 0;
    let mut later = Vec::new();
    let mut senders = JoinSet::new();
    let mut made = 0usize;
    let mut event_id = 1u64;
    send_poison(world, progress, rng).await?;
    while made < args.events {
        // Mostly small deliveries, now and then a full one, as HubSpot batches by time.
        let size = if rng.u32(0..100) < 70 {
            rng.usize(1..=10)
        } else {
            rng.usize(11..=100)
        }
        .min(args.events - made);
        let mut events = Vec::with_capacity(size);
        for _ in 0..size {
            let company = &mut companies[rng.usize(..companies.len())];
            company.version += 1;
            let properties = company.properties();
            let pairs: Vec<(&str, &str)> =
                properties.iter().map(|(k, v)| (*k, v.as_str())).collect();
            world.hubspot.put_company(&company.id.to_string(), &pairs);
            // As HubSpot's: the change's time, at or after the `hs_lastmodifieddate` it
            // stamped (the flow skips a change older than the version it already read), and
            // distinct per change, so every change has its own business key.
            let occurred_at = puente_tests::sim::now_ms().max(last_occurred_at + 1);
            last_occurred_at = occurred_at;
            let subscription = if company.keys.is_empty() {
                "company.creation"
            } else {
                "company.propertyChange"
            };
            let mut event =
                world
                    .hubspot
                    .company_event(event_id, subscription, company.id, occurred_at);
            if subscription == "company.propertyChange"
                && let Some(fields) = event.as_object_mut()
            {
                fields.insert("propertyName".into(), json!("name"));
                fields.insert("propertyValue".into(), json!(pairs[0].1));
            }
            company
                .keys
                .push(chaos::business_key(company.id, occurred_at));
            events.push(event);
            event_id += 1;
            made += 1;
        }
        progress.changes_made.store(made, Ordering::Relaxed);
        let events = Arc::new(events);
        let repeat = match rng.u32(0..100) {
            0..8 => Repeat::AgainAfterward,
            8..16 => Repeat::TwiceConcurrently,
            16..24 => Repeat::AgainAfterApplied,
            _ => Repeat::Once,
        };
        if repeat == Repeat::AgainAfterApplied {
            later.push(events.clone());
        }
        while senders.len() >= SENDERS {
            senders.join_next().await;
        }
        // HubSpot sends as changes happen, not all at once; and moto's SQS scans its whole
        // queue on every receive, so an unbounded backlog slows everything to a crawl.
        while world.queued().await.unwrap_or_default() > BACKLOG_LIMIT {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let (sender_world, sender_progress) = (world.clone(), progress.clone());
        senders.spawn(async move {
            let (world, progress) = (&sender_world, &sender_progress);
            match repeat {
                Repeat::TwiceConcurrently => {
                    tokio::join!(
                        deliver(world, progress, &events),
                        deliver(world, progress, &events)
                    );
                }
                Repeat::AgainAfterward => {
                    deliver(world, progress, &events).await;
                    deliver(world, progress, &events).await;
                }
                Repeat::Once | Repeat::AgainAfterApplied => {
                    deliver(world, progress, &events).await;
                }
            }
        });
        if rng.u32(0..100) < 4 {
            send_poison(world, progress, rng).await?;
        }
    }
    while senders.join_next().await.is_some() {}
    Ok(later)
}

/// Puts a message no worker can use straight on the customer queue.
async fn send_poison(
    world: &World,
    progress: &Progress,
    rng: &mut fastrand::Rng,
) -> anyhow::Result<()> {
    let body = if rng.bool() {
        "{\"not\": \"a change event\"".to_owned()
    } else {
        json!({"source": "hubspot", "entity": "deal", "subscription_type": "deal.creation",
               "object_id": "1", "event_id": "2", "account_id": "62515",
               "occurred_at_ms": 4, "change_source": null})
        .to_string()
    };
    world
        .aws
        .sqs
        .send_message()
        .queue_url(&world.stack.customer_queue_url)
        .message_body(body)
        .send()
        .await
        .context("sending a poison message")?;
    progress.poison_sent.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// One signed delivery; a refused one is retried like HubSpot retries (here within seconds).
async fn deliver(world: &World, progress: &Progress, events: &[Value]) {
    for attempt in 0..10u64 {
        progress.deliveries.fetch_add(1, Ordering::Relaxed);
        progress
            .webhook_events_posted
            .fetch_add(events.len(), Ordering::Relaxed);
        match world.deliver(events).await {
            Ok((status, _)) if (200..300).contains(&status) => return,
            Ok(_) | Err(_) => {
                progress.deliveries_refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500 * (attempt + 1))).await;
            }
        }
    }
    progress
        .deliveries_abandoned
        .fetch_add(1, Ordering::Relaxed);
}

/// One event source mapping poller; several run at once, as Lambda scales pollers.
async fn poll_until(world: Arc<World>, progress: Arc<Progress>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        progress.polls_running.fetch_add(1, Ordering::Relaxed);
        let polled = world.poller.poll_once(1).await;
        progress.polls_running.fetch_sub(1, Ordering::Relaxed);
        match polled {
            Ok(poll) => {
                if poll.received > 0 {
                    progress.polls.fetch_add(1, Ordering::Relaxed);
                    progress
                        .records_received
                        .fetch_add(poll.received, Ordering::Relaxed);
                    progress
                        .records_handed_back
                        .fetch_add(poll.retried, Ordering::Relaxed);
                    if poll.invoke_failed {
                        progress.invocations_failed.fetch_add(1, Ordering::Relaxed);
                        progress
                            .last_invoke_failure_ms
                            .store(progress.since_epoch().as_millis() as u64, Ordering::Relaxed);
                    }
                }
            }
            Err(e) => {
                println!("poller: {e:#}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// A line every five seconds, so a human watching knows the run is alive.
async fn report_progress(
    world: Arc<World>,
    progress: Arc<Progress>,
    events: usize,
    started: Instant,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (visible, in_flight) =
            aws_local::queue_depth(&world.aws, &world.stack.customer_queue_url)
                .await
                .unwrap_or_default();
        println!(
            "[{:>5.1}s] changes {}/{}  deliveries {}  queue {} visible + {} in flight  \
             records received {}  invocations failed {}  partners {}  faults armed {}",
            started.elapsed().as_secs_f64(),
            progress.changes_made.load(Ordering::Relaxed),
            events,
            progress.deliveries.load(Ordering::Relaxed),
            visible,
            in_flight,
            progress.records_received.load(Ordering::Relaxed),
            progress.invocations_failed.load(Ordering::Relaxed),
            world.odoo.partners().len(),
            progress.faults_total(),
        );
    }
}

/// Arms a random fault for every `100 / fault_percent` records the workers receive, until
/// told to stop: tied to the work done rather than to time, so a slow machine does not see
/// more faults per event.
async fn inject_faults(
    world: Arc<World>,
    progress: Arc<Progress>,
    mut rng: fastrand::Rng,
    args: Args,
    stop: Arc<AtomicBool>,
) {
    let max_kills = (args.events / 250).max(1) as u32;
    let max_refusals = (args.events / 250).max(2) as u32;
    let mut last_kill = Instant::now();
    let every = (100 / args.fault_percent).max(1) as usize;
    let mut armed_at = 0;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(rng.u64(100..=400))).await;
        let received = progress.records_received.load(Ordering::Relaxed);
        if received < armed_at + every {
            continue;
        }
        armed_at += every;
        let kind = FaultKind::pick(&mut rng);
        let kills = progress.faults_of(FaultKind::KillAfterTargetWrite)
            + progress.faults_of(FaultKind::KillAfterClaim);
        if kind.is_kill() && (kills >= max_kills || last_kill.elapsed() < Duration::from_secs(15)) {
            continue;
        }
        if kind == FaultKind::OdooValidationError && progress.faults_of(kind) >= max_refusals {
            continue;
        }
        if arm(&world, &mut rng, kind, &progress).await {
            progress.count(kind);
            if kind.is_kill() {
                last_kill = Instant::now();
            }
        }
    }
}

/// Arms one fault; `false` when it was not applied (a kill while the workers were not busy).
async fn arm(world: &World, rng: &mut fastrand::Rng, kind: FaultKind, progress: &Progress) -> bool {
    let hubspot = &world.hubspot.state.faults;
    let odoo = &world.odoo.state.faults;
    let odoo_op = match rng.u32(0..3) {
        0 => "res.partner.search_read",
        1 => "res.partner.create",
        _ => "res.partner.write",
    };
    let odoo_write = if rng.bool() {
        "res.partner.create"
    } else {
        "res.partner.write"
    };
    match kind {
        FaultKind::HubSpot500 => hubspot.inject(HUBSPOT_READ, Fault::Status(500), rng.u32(1..=3)),
        FaultKind::HubSpot429RetryAfter => hubspot.inject(
            HUBSPOT_READ,
            Fault::Throttle { retry_after_s: 1 },
            rng.u32(1..=2),
        ),
        FaultKind::HubSpotSlowerThanTimeout => hubspot.inject(
            HUBSPOT_READ,
            Fault::DelayBefore(Duration::from_millis(
                HTTP_TIMEOUT_S * 1000 + rng.u64(500..=2000),
            )),
            1,
        ),
        FaultKind::Odoo500 => odoo.inject(odoo_op, Fault::Status(500), rng.u32(1..=3)),
        FaultKind::OdooSlowWithinTimeout => odoo.inject(
            odoo_op,
            Fault::DelayBefore(Duration::from_millis(rng.u64(500..=2000))),
            1,
        ),
        FaultKind::OdooAppliedThenAnsweredLate => odoo.inject(
            odoo_write,
            Fault::DelayAfter(Duration::from_millis(
                HTTP_TIMEOUT_S * 1000 + rng.u64(500..=2000),
            )),
            1,
        ),
        FaultKind::OdooValidationError => odoo.inject(
            odoo_write,
            Fault::AppError {
                name: "odoo.exceptions.ValidationError".into(),
                message: "chaos: the partner was refused by a validation rule".into(),
            },
            1,
        ),
        FaultKind::KillAfterTargetWrite | FaultKind::KillAfterClaim => {
            return kill_mid_call(world, rng, kind, progress).await;
        }
        // More failures in a row than the SDK's three attempts absorb, some of the time.
        FaultKind::DynamoThrottlesClaim => aws_fault(
            world,
            AwsFault::new("PutItem", AwsAnswer::Throttled).when_body_contains("IDEM#"),
            rng.u32(1..=5),
        ),
        FaultKind::DynamoFailsCompletion => aws_fault(
            world,
            AwsFault::new("UpdateItem", AwsAnswer::InternalError).when_body_contains("COMPLETED"),
            rng.u32(1..=5),
        ),
        FaultKind::SqsRefusesReceiverSend => aws_fault(
            world,
            AwsFault::new("SendMessageBatch", AwsAnswer::InternalError),
            rng.u32(1..=5),
        ),
    }
    true
}

fn aws_fault(world: &World, fault: AwsFault, times: u32) {
    if let Some(proxy) = &world.aws_proxy {
        proxy.inject(fault, times);
    }
}

/// Holds one call open (Odoo applies the write and does not answer, or HubSpot does not answer
/// the read that follows the claim), then kills the worker processes while it waits.
async fn kill_mid_call(
    world: &World,
    rng: &mut fastrand::Rng,
    kind: FaultKind,
    progress: &Progress,
) -> bool {
    // `Function::kill` ends every instance's process, and the platform restarts only those
    // killed in the middle of an invocation (at their timeout): one killed while idle or while
    // starting stays dead. So kill only while every poller holds a batch (more pollers than
    // instances) and no instance restarted recently (a restarted one may still be starting).
    let (visible, _) = aws_local::queue_depth(&world.aws, &world.stack.customer_queue_url)
        .await
        .unwrap_or_default();
    let instances = world.worker.spec.instances;
    let quiet_for = progress.since_epoch().saturating_sub(Duration::from_millis(
        progress.last_invoke_failure_ms.load(Ordering::Relaxed),
    ));
    let everyone_busy = visible >= 20 * instances as u64
        && progress.polls_running.load(Ordering::Relaxed) >= 2 * instances
        && quiet_for > WORKER_TIMEOUT + Duration::from_secs(5);
    if !everyone_busy {
        progress.kills_skipped.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    let hold = Fault::DelayAfter(Duration::from_secs(30));
    let (faults, operation) = if kind == FaultKind::KillAfterTargetWrite {
        let op = if rng.bool() {
            "res.partner.create"
        } else {
            "res.partner.write"
        };
        (&world.odoo.state.faults, op)
    } else {
        (&world.hubspot.state.faults, HUBSPOT_READ)
    };
    let before = faults.count(operation);
    faults.inject(operation, hold, 1);
    let waiting = Instant::now();
    while faults.count(operation) == before {
        if waiting.elapsed() > Duration::from_secs(10) {
            progress.kills_skipped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    world.worker.kill();
    true
}

/// Waits until the customer queue has been empty (nothing visible, nothing in flight) for
/// three checks in a row.
async fn wait_for_empty_queue(world: &World, within: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut empty_checks = 0;
    while empty_checks < 3 {
        if started.elapsed() > within {
            anyhow::bail!(
                "customer queue not empty after {within:?}; logs in {}",
                world.log_dir.display()
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        empty_checks = if world.queued().await? == 0 {
            empty_checks + 1
        } else {
            0
        };
    }
    Ok(())
}

/// Reads the outcome: every ledger item, every dead letter, every Odoo partner.
async fn observe(world: &World) -> anyhow::Result<Observed> {
    let mut observed = Observed::default();
    let mut start = None;
    loop {
        let page = world
            .aws
            .dynamodb
            .scan()
            .table_name(&world.stack.names.table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .context("scanning the ledger")?;
        for item in page.items() {
            if let (Some(pk), Some(status)) = (text(item, "pk"), text(item, "status"))
                && let Some(key) = pk.strip_prefix("IDEM#")
            {
                observed.ledger.insert(key.to_owned(), status);
            }
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }

    // Received with a long visibility timeout, so each dead letter is read once.
    let mut empty = 0;
    while empty < 3 {
        let out = world
            .aws
            .sqs
            .receive_message()
            .queue_url(&world.stack.customer_dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(3600)
            .message_attribute_names("All")
            .send()
            .await
            .context("reading the dead-letter queue")?;
        if out.messages().is_empty() {
            empty += 1;
            continue;
        }
        for m in out.messages() {
            let class = m
                .message_attributes()
                .and_then(|a| a.get(shared::lambda::sqs_batch::attribute::ERROR_CLASS))
                .and_then(|v| v.string_value())
                .unwrap_or(chaos::REDRIVEN_BY_SQS)
                .to_owned();
            observed.dead_letters.push(DeadLetter {
                key: customer_key(m.body().unwrap_or_default()),
                class,
            });
        }
    }

    let text_of = |p: &serde_json::Map<String, Value>, field: &str| {
        p.get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    observed.partners = world
        .odoo
        .partners()
        .iter()
        .map(|p| Partner {
            reference: text_of(p, "ref"),
            state: PartnerState {
                name: text_of(p, "name"),
                vat: text_of(p, "vat"),
                email: text_of(p, "email"),
            },
        })
        .collect();
    Ok(observed)
}

/// The business key of a dead letter's body when it is a customer change event.
fn customer_key(body: &str) -> Option<String> {
    let event: Value = serde_json::from_str(body).ok()?;
    if event.get("entity")?.as_str()? != "customer" {
        return None;
    }
    Some(format!(
        "customer#{}#{}#{}",
        event.get("source")?.as_str()?,
        event.get("object_id")?.as_str()?,
        event.get("occurred_at_ms")?.as_i64()?
    ))
}

/// For each company with more than one partner: the partners (their name carries the version
/// each create read) and the company's changes with their ledger status, oldest first.
fn explain_duplicates(
    world: &World,
    companies: &[Company],
    observed: &Observed,
    verdict: &Verdict,
) {
    for (reference, _) in verdict.extra_partners.iter().take(5) {
        println!("\n{reference}:");
        for p in world.odoo.partners() {
            if p.get("ref").and_then(Value::as_str) == Some(reference.as_str()) {
                println!(
                    "  partner {} {:?} created {}",
                    p.get("id").cloned().unwrap_or_default(),
                    p.get("name").and_then(Value::as_str).unwrap_or_default(),
                    p.get("create_date")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                );
            }
        }
        if let Some(company) = companies
            .iter()
            .find(|c| chaos::partner_ref(c.id) == *reference)
        {
            for (version, key) in company.keys.iter().enumerate() {
                println!(
                    "  v{} {key}: {}",
                    version + 1,
                    observed.ledger.get(key).map_or("-", String::as_str)
                );
            }
        }
    }
}

/// Occurrences of `needle` in the worker instances' logs.
fn count_in_worker_logs(world: &World, needle: &str) -> usize {
    let prefix = world.worker.spec.name.clone();
    std::fs::read_dir(&world.log_dir)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .map(|log| log.matches(needle).count())
                .sum()
        })
        .unwrap_or_default()
}

fn print_summary(
    args: &Args,
    progress: &Progress,
    verdict: &Verdict,
    world: &World,
    still_queued: u64,
    wall: Duration,
) {
    let load = |a: &AtomicUsize| a.load(Ordering::Relaxed);
    let line = |label: &str, value: String| println!("  {label:<46} {value}");
    println!("\n== puente chaos run ==");
    line("seed", args.seed.to_string());
    line(
        "options",
        format!(
            "--events {} --companies {} --workers {} --invalid-percent {} --fault-percent {}",
            args.events, args.companies, args.workers, args.invalid_percent, args.fault_percent
        ),
    );
    line(
        "events sent (distinct business keys)",
        verdict.events.to_string(),
    );
    line(
        "webhook deliveries (POSTs, repeats included)",
        format!(
            "{} carrying {} events; {} refused and retried, {} abandoned",
            load(&progress.deliveries),
            load(&progress.webhook_events_posted),
            load(&progress.deliveries_refused),
            load(&progress.deliveries_abandoned)
        ),
    );
    line(
        "poison messages put on the queue",
        load(&progress.poison_sent).to_string(),
    );
    line(
        "applied once (ledger COMPLETED)",
        verdict.applied_once.to_string(),
    );
    line(
        "parked (distinct events, by reason)",
        format!(
            "{}",
            verdict.parked.values().sum::<usize>()
                + verdict.parked_without_key.values().sum::<usize>()
        ),
    );
    for (class, n) in &verdict.parked {
        line(&format!("    {class}"), n.to_string());
    }
    for (class, n) in &verdict.parked_without_key {
        line(&format!("    {class} (not a change event)"), n.to_string());
    }
    line(
        "    dead-letter messages in all",
        verdict.dead_letter_messages.to_string(),
    );
    line("duplicates", verdict.duplicates().to_string());
    line(
        "    extra Odoo partners for one company",
        verdict
            .extra_partners
            .iter()
            .map(|(_, n)| n)
            .sum::<usize>()
            .to_string(),
    );
    line(
        "    events both COMPLETED and dead-lettered",
        verdict.completed_and_parked.len().to_string(),
    );
    line("lost", verdict.lost().to_string());
    line(
        "    neither COMPLETED nor dead-lettered",
        verdict.lost_events.len().to_string(),
    );
    line(
        "    last change completed, Odoo state stale",
        verdict.stale_companies.len().to_string(),
    );
    line(
        "parked unexpectedly (not a duplicate or loss)",
        verdict.unexpected_parks.len().to_string(),
    );
    line(
        "partners for invalid-NIT companies",
        verdict.partners_for_invalid.to_string(),
    );
    line("faults armed, by kind", String::new());
    if let Ok(faults) = progress.faults.lock() {
        for (kind, n) in faults.iter() {
            line(&format!("    {}", kind.label()), n.to_string());
        }
    }
    line(
        "    kills skipped (workers not all busy)",
        load(&progress.kills_skipped).to_string(),
    );
    line(
        "observed",
        format!(
            "{} polls, {} records received, {} handed back for retry, {} invocations failed or timed out",
            load(&progress.polls),
            load(&progress.records_received),
            load(&progress.records_handed_back),
            load(&progress.invocations_failed)
        ),
    );
    line(
        "    records stopped at the deadline (worker logs)",
        count_in_worker_logs(world, "stopped before the function deadline").to_string(),
    );
    line(
        "messages left in the customer queue",
        still_queued.to_string(),
    );
    line("wall time", format!("{:.1} s", wall.as_secs_f64()));

    let show = |title: &str, rows: Vec<String>| {
        if !rows.is_empty() {
            println!("\n{title} (first 20 of {}):", rows.len());
            for row in rows.iter().take(20) {
                println!("  {row}");
            }
        }
    };
    show(
        "Extra partners",
        verdict
            .extra_partners
            .iter()
            .map(|(r, n)| format!("{r}: {n} extra"))
            .collect(),
    );
    show(
        "Completed and dead-lettered",
        verdict
            .completed_and_parked
            .iter()
            .map(|(k, c)| format!("{k}: {c}"))
            .collect(),
    );
    show(
        "Lost events",
        verdict
            .lost_events
            .iter()
            .map(|(k, s)| format!("{k}: ledger {s}"))
            .collect(),
    );
    show(
        "Stale companies",
        verdict
            .stale_companies
            .iter()
            .map(|(id, why)| format!("company {id}: {why}"))
            .collect(),
    );
    show(
        "Parked unexpectedly",
        verdict
            .unexpected_parks
            .iter()
            .map(|(k, c)| format!("{k}: {c}"))
            .collect(),
    );
    println!(
        "\nverdict: {} duplicates, {} lost (seed {})",
        verdict.duplicates(),
        verdict.lost(),
        args.seed
    );
}
