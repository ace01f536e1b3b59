//! The reconciler: the safety net under the webhooks. On a schedule it pages through each
//! side's records written since a watermark (and, on a slower schedule, through every record),
//! compares each with its counterpart through the links and the canonical model, and puts a
//! repair event for each difference on the flow's normal queue, so there is one write path and
//! the same idempotency keys apply.
//!
//! A pass moves its cursor only past a page it read, compared and enqueued completely; a read
//! that fails stops the pass where it was, and the next run catches up from there. A run stops
//! taking pages when its page budget or its time is spent; a sweep left unfinished continues in
//! the next run from its checkpoint.

pub mod customers;
pub mod invoices;
pub mod products;
pub mod report;
pub mod stuck;

use crate::domain::{ChangeEvent, Timestamp};
use crate::flows::poll::change_message;
use crate::ports::{Cursors, DeliveryLog, OutboundMessage, Publisher, Written};
use report::{DriftReport, Pass};
use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What a run is asked to do.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct Request {
    pub mode: report::Mode,
    /// Reports what it finds without enqueuing a repair or moving a cursor.
    pub dry_run: bool,
    /// The flows to reconcile (`customer`, `invoice`, `product`, and `ledger` for stuck ledger
    /// items, which full runs only look for); empty for all.
    pub flows: Vec<String>,
}

/// The flows a run can reconcile.
pub const FLOWS: [&str; 4] = [customers::FLOW, invoices::FLOW, products::FLOW, stuck::FLOW];

impl Request {
    fn wants(&self, flow: &str) -> bool {
        self.flows.is_empty() || self.flows.iter().any(|f| f == flow)
    }

    /// The flows asked for that the reconciler does not know.
    pub fn unknown_flows(&self) -> Vec<&str> {
        self.flows
            .iter()
            .map(String::as_str)
            .filter(|f| !FLOWS.contains(f))
            .collect()
    }
}

/// The flows a reconciler compares, the ledger it resolves stuck items of, and what it runs
/// with.
#[derive(Debug)]
pub struct Reconciler<'a, K, C, E, L, I, U, P, D> {
    pub customers: customers::CustomerReconcile<'a, K, C, E>,
    /// `Err` with the reason when the flow cannot run here (a queue its repairs need is not
    /// configured): the report says so, and the run goes on without it.
    pub invoices: Result<invoices::InvoiceReconcile<'a, C, E>, String>,
    pub products: products::ProductReconcile<'a, E, C>,
    pub stuck: stuck::StuckWork<'a, L, C, E, I>,
    pub cursors: &'a U,
    pub publisher: &'a P,
    pub deliveries: &'a D,
    pub paging: Paging,
}

impl<K, C, E, L, I, U, P, D> Reconciler<'_, K, C, E, L, I, U, P, D>
where
    K: crate::ports::CustomerLinks,
    C: crate::ports::CustomerListing + crate::ports::DealListing + crate::ports::ProductLibrary,
    E: crate::ports::CustomerListing
        + crate::ports::DocumentListing
        + crate::ports::ProductCatalogue,
    L: crate::ports::Ledger + crate::ports::StuckLedger,
    I: crate::ports::InvoiceSink,
    U: Cursors,
    P: Publisher,
    D: DeliveryLog,
{
    /// One run, until its work, its page budget or `stop_at` ends; `progress` hears of every
    /// page read, and of each pass once more when it is over (`true`).
    pub async fn run(
        &self,
        request: &Request,
        stop_at: tokio::time::Instant,
        progress: &(dyn Fn(&Pass, bool) + Sync),
    ) -> DriftReport {
        let started = std::time::Instant::now();
        let mut report = DriftReport {
            run_id: uuid::Uuid::new_v4().simple().to_string(),
            mode: request.mode,
            dry_run: request.dry_run,
            started_at: Timestamp::now().format_rfc3339(),
            ..DriftReport::default()
        };
        let pager = Pager::new(self.cursors, self.paging, request.dry_run, stop_at);
        let repairs = Repairs {
            publisher: self.publisher,
            deliveries: self.deliveries,
            dry_run: request.dry_run,
        };
        let start_sweep = request.mode == report::Mode::Full;
        if request.wants(customers::FLOW) {
            self.customers
                .run(&pager, &repairs, start_sweep, &mut report, progress)
                .await;
        }
        if request.wants(invoices::FLOW) {
            match &self.invoices {
                Ok(flow) => {
                    flow.run(&pager, &repairs, start_sweep, &mut report, progress)
                        .await;
                }
                Err(reason) => {
                    tracing::warn!(flow = invoices::FLOW, reason = %reason, "flow not reconciled");
                    report.skipped.push(format!("{}: {reason}", invoices::FLOW));
                }
            }
        }
        if request.wants(products::FLOW) {
            self.products
                .run(&pager, start_sweep, &mut report, progress)
                .await;
        }
        // The ledger scan reads the whole table: on full runs only.
        if start_sweep && request.wants(stuck::FLOW) {
            self.stuck
                .run(&pager, &repairs, &mut report, progress)
                .await;
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        report
    }
}

/// Where a reconciler keeps its state and sends its repairs.
#[derive(Debug)]
pub struct Stores<'a, K, L, U, P, D> {
    pub links: &'a K,
    pub ledger: &'a L,
    pub cursors: &'a U,
    pub publisher: &'a P,
    pub deliveries: &'a D,
}

impl<'a, K, C, E, L, U, P, D> Reconciler<'a, K, C, E, L, E, U, P, D> {
    /// The reconciler `config` describes, over `crm` and `erp` (which also holds the documents
    /// stuck invoicing keys are probed for), with `stores`: what the scheduled function and
    /// the operator command both run.
    pub fn configured(
        config: &'a crate::config::ReconcilerConfig,
        crm: &'a C,
        erp: &'a E,
        stores: Stores<'a, K, L, U, P, D>,
    ) -> Self {
        Self {
            customers: customers::CustomerReconcile {
                links: stores.links,
                crm,
                erp,
                rules: &config.rules,
                terms: config.terms,
                ownership: &config.ownership,
                queue_url: &config.queues.customer,
            },
            invoices: invoices::InvoiceReconcile::configured(
                crm,
                erp,
                &config.won_stages,
                config.offset,
                &config.queues,
            ),
            products: products::ProductReconcile {
                catalogue: erp,
                library: crm,
                currency: config.deal_rules.default_currency,
            },
            stuck: stuck::StuckWork {
                ledger: stores.ledger,
                crm,
                erp,
                invoices: erp,
                queues: &config.queues,
                grace: config.stuck_after,
            },
            cursors: stores.cursors,
            publisher: stores.publisher,
            deliveries: stores.deliveries,
            paging: config.paging,
        }
    }
}

/// How a run pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// Records asked for per page.
    pub page_size: usize,
    /// Pages one run may read, over all passes, before it leaves the rest to the next run.
    pub page_budget: usize,
    /// How far before its watermark an incremental pass starts again: clock skew between the
    /// systems, and search indexes that lag behind writes.
    pub overlap: Duration,
    /// Where an incremental pass without a watermark starts: this long ago.
    pub lookback: Duration,
}

/// The two kinds of pass over one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    /// From the watermark (minus the overlap): what was written since the last run.
    Incremental,
    /// From the beginning, or from the checkpoint an unfinished sweep left.
    Sweep,
}

impl PassKind {
    fn as_str(self) -> &'static str {
        match self {
            PassKind::Incremental => "incremental",
            PassKind::Sweep => "sweep",
        }
    }

    /// The cursor a pass keeps: `reconcile#customer#hubspot`, `reconcile-sweep#...`.
    pub fn cursor(self, flow: &str, system: &str) -> String {
        match self {
            PassKind::Incremental => format!("reconcile#{flow}#{system}"),
            PassKind::Sweep => format!("reconcile-sweep#{flow}#{system}"),
        }
    }
}

/// What every pass of a run shares: the cursors, the page budget, the stop time.
#[derive(Debug)]
pub struct Pager<'a, U> {
    pub cursors: &'a U,
    pub paging: Paging,
    pub dry_run: bool,
    pub stop_at: tokio::time::Instant,
    pages_left: AtomicUsize,
}

impl<'a, U: Cursors> Pager<'a, U> {
    pub fn new(
        cursors: &'a U,
        paging: Paging,
        dry_run: bool,
        stop_at: tokio::time::Instant,
    ) -> Self {
        Self {
            cursors,
            paging,
            dry_run,
            stop_at,
            pages_left: AtomicUsize::new(paging.page_budget),
        }
    }

    /// Opens a pass over one side, from its cursor. A sweep that is not under way opens only
    /// when `start_sweep`; `None` then.
    pub async fn open(
        &self,
        flow: &str,
        system: &str,
        kind: PassKind,
        start_sweep: bool,
    ) -> Option<Walk> {
        let cursor = kind.cursor(flow, system);
        let mut pass = Pass {
            flow: flow.to_owned(),
            system: system.to_owned(),
            pass: kind.as_str().to_owned(),
            ..Pass::default()
        };
        let stored = match self.cursors.read(&cursor).await {
            Ok(stored) => stored,
            Err(e) => {
                pass.error = Some(format!("could not read the cursor {cursor}: {e}"));
                return Some(Walk::stopped(cursor, kind, pass));
            }
        };
        let position = match (kind, stored) {
            (PassKind::Incremental, Some(mark)) => back(mark.at, self.paging.overlap),
            (PassKind::Incremental, None) => back(Timestamp::now(), self.paging.lookback),
            (PassKind::Sweep, Some(checkpoint)) => checkpoint,
            (PassKind::Sweep, None) if start_sweep => {
                // Marked as under way at once, so the next runs continue it even if this one
                // has no budget left to read a page of it.
                let start = back(Timestamp::now(), FOREVER);
                if !self.dry_run
                    && let Err(e) = self.cursors.advance(&cursor, &start).await
                {
                    pass.error = Some(format!("could not start the sweep: {e}"));
                    return Some(Walk::stopped(cursor, kind, pass));
                }
                start
            }
            (PassKind::Sweep, None) => return None,
        };
        Some(Walk {
            cursor,
            kind,
            position: Some(position),
            pass,
        })
    }

    /// The next page of `walk`, or `None` when the pass is over: the budget or the time ran
    /// out, the listing ended, or the read failed (recorded on the pass).
    pub async fn next_page<T, Fut, E>(
        &self,
        walk: &mut Walk,
        list: impl FnOnce(Written) -> Fut,
    ) -> Option<Vec<T>>
    where
        Fut: Future<Output = Result<Vec<T>, E>>,
        E: std::fmt::Display,
    {
        let after = walk.position.clone()?;
        if !self.may_read() {
            return None;
        }
        match list(after).await {
            Ok(page) if page.is_empty() => {
                walk.pass.complete = true;
                walk.position = None;
                if walk.kind == PassKind::Sweep
                    && !self.dry_run
                    && let Err(e) = self.cursors.clear(&walk.cursor).await
                {
                    // The next run sweeps once more from the last checkpoint: harmless.
                    tracing::warn!(cursor = %walk.cursor, error = %e, "could not clear the finished sweep");
                }
                None
            }
            Ok(page) => {
                walk.pass.pages += 1;
                walk.pass.records += page.len() as u64;
                Some(page)
            }
            Err(e) => {
                walk.fail(format!("could not list records: {e}"));
                None
            }
        }
    }

    /// Moves the pass past a page it handled completely (its last record `last`).
    pub async fn commit(&self, walk: &mut Walk, last: Written) {
        if !self.dry_run
            && let Err(e) = self.cursors.advance(&walk.cursor, &last).await
        {
            walk.fail(format!("could not advance the cursor: {e}"));
            return;
        }
        walk.position = Some(last);
    }

    /// Runs a pass opened with `open`, as every flow runs its passes: reads a page at a time
    /// from `list`, hands each page to `handle` (which compares it and enqueues its repairs),
    /// and moves the cursor past each page handled; a failure stops the pass where it is.
    /// `progress` hears of every page and of the end. The pass, for the report.
    pub async fn page_through<T: Positioned, E: std::fmt::Display>(
        &self,
        mut walk: Walk,
        list: impl AsyncFn(Written) -> Result<Vec<T>, E>,
        mut handle: impl AsyncFnMut(&[T]) -> Result<(), String>,
        progress: &(dyn Fn(&Pass, bool) + Sync),
    ) -> Pass {
        loop {
            let Some(page) = self.next_page(&mut walk, |after| list(after)).await else {
                break;
            };
            let Some(last) = page.last().map(|record| record.position().clone()) else {
                break;
            };
            match handle(&page).await {
                Ok(()) => self.commit(&mut walk, last).await,
                Err(e) => walk.fail(e),
            }
            progress(&walk.pass, false);
        }
        progress(&walk.pass, true);
        walk.pass
    }

    /// Whether a pass may read one more page (time and budget left); takes it from the budget.
    pub fn may_read(&self) -> bool {
        tokio::time::Instant::now() < self.stop_at && self.take_page()
    }

    fn take_page(&self) -> bool {
        self.pages_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A record's place in its changed-since listing: where a pass stands after it.
pub trait Positioned {
    fn position(&self) -> &Written;
}

impl Positioned for Written {
    fn position(&self) -> &Written {
        self
    }
}

impl Positioned for crate::ports::Listed {
    fn position(&self) -> &Written {
        &self.written
    }
}

impl Positioned for crate::ports::ListedProduct {
    fn position(&self) -> &Written {
        &self.written
    }
}

impl Positioned for crate::ports::ListedDeal {
    fn position(&self) -> &Written {
        &self.written
    }
}

/// A far-enough past for a sweep's start: before any record.
const FOREVER: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 50);

/// The position `by` before `at`, before any record written then.
fn back(at: Timestamp, by: Duration) -> Written {
    let ms = at.epoch_millis() - by.as_millis() as i64;
    Written {
        id: "0".into(),
        at: Timestamp::from_epoch_millis(ms.max(0))
            .or_else(|_| Timestamp::from_epoch_millis(0))
            .unwrap_or(at),
    }
}

/// One pass under way: its cursor, where it stands, and what it did.
#[derive(Debug)]
pub struct Walk {
    cursor: String,
    kind: PassKind,
    /// `None` once the pass is over.
    position: Option<Written>,
    pub pass: Pass,
}

impl Walk {
    fn stopped(cursor: String, kind: PassKind, pass: Pass) -> Self {
        Self {
            cursor,
            kind,
            position: None,
            pass,
        }
    }

    /// Stops the pass where it is (its cursor stays), recording why.
    pub fn fail(&mut self, error: String) {
        tracing::error!(cursor = %self.cursor, error = %error, "reconciler pass stopped");
        self.pass.error = Some(error);
        self.position = None;
    }
}

/// Puts repair events on a flow's queue, once: a repair already enqueued within the horizon
/// (the same record in the same state, found again by the next run) is not enqueued again.
#[derive(Debug)]
pub struct Repairs<'a, P, D> {
    pub publisher: &'a P,
    pub deliveries: &'a D,
    pub dry_run: bool,
}

impl<P: Publisher, D: DeliveryLog> Repairs<'_, P, D> {
    pub async fn send(
        &self,
        queue_url: &str,
        events: &[ChangeEvent],
        report: &mut DriftReport,
    ) -> Result<(), String> {
        let ids: Vec<String> = events
            .iter()
            .map(|e| e.event_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let seen = self
            .deliveries
            .seen(&ids)
            .await
            .map_err(|e| format!("could not read the repairs already enqueued: {e}"))?;
        let mut picked = HashSet::new();
        let fresh: Vec<&ChangeEvent> = events
            .iter()
            .filter(|e| !seen.contains(&e.event_id) && picked.insert(e.event_id.as_str()))
            .collect();
        report.repairs_pending += (events.len() - fresh.len()) as u64;
        if self.dry_run {
            report.repairs_enqueued += fresh.len() as u64;
            return Ok(());
        }
        let messages: Vec<OutboundMessage> = fresh.iter().map(|e| change_message(e)).collect();
        for chunk in messages.chunks(10) {
            self.publisher
                .publish(queue_url, chunk)
                .await
                .map_err(|e| format!("could not enqueue repairs: {e}"))?;
        }
        let sent: Vec<String> = fresh.iter().map(|e| e.event_id.clone()).collect();
        if let Err(e) = self.deliveries.remember(&sent).await {
            // The next run may enqueue them once more; the flow writes nothing twice.
            tracing::warn!(error = %e, "could not remember the repairs enqueued");
        }
        report.repairs_enqueued += sent.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_names_its_flows_and_the_ledger_and_nothing_else() {
        let request = |flows: &[&str]| Request {
            flows: flows.iter().map(|f| (*f).to_owned()).collect(),
            ..Request::default()
        };
        let all = request(&[]);
        assert!(FLOWS.iter().all(|flow| all.wants(flow)));
        let ledger = request(&["ledger"]);
        assert!(ledger.unknown_flows().is_empty());
        assert!(ledger.wants(stuck::FLOW) && !ledger.wants(customers::FLOW));
        assert_eq!(request(&["product", "deals"]).unknown_flows(), ["deals"]);
    }
}
