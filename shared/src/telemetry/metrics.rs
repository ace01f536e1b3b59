//! Per-invocation counters published as one CloudWatch embedded-metric-format (EMF) line.
//!
//! CloudWatch Logs extracts the metrics from the JSON line the function prints to stdout, so
//! publishing costs no `PutMetricData` call, no extra IAM permission and no latency in the
//! invocation. One document per flush carries every counter that moved, with the flow as the
//! only dimension, which keeps the number of custom metrics (and their cost) fixed.

use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Namespace of every puente metric.
pub const DEFAULT_NAMESPACE: &str = "puente";

/// The name of the one dimension, which is also the property holding the flow.
const FLOW_DIMENSION: &str = "flow";

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Synced,
    Duplicate,
    EchoSuppressed,
    Retried,
    Throttled,
    Rejected,
    DeadLettered,
    Conflict,
    /// An inbound change right after our write that is not our echo: someone else edited.
    NearMiss,
    /// A customer quarantined by the circuit breaker, a deletion or a merge.
    Quarantined,
    /// A change acknowledged without syncing (its customer is quarantined).
    Skipped,
    /// Differences the reconciler found between the two systems.
    DriftFound,
    /// Repair events the reconciler put on a flow's queue.
    Repaired,
    /// Ledger items stuck IN_PROGRESS that the reconciler resolved.
    StuckResolved,
}

impl Metric {
    /// Every metric, in the order they appear in a rendered document.
    pub const ALL: [Metric; 14] = [
        Metric::Synced,
        Metric::Duplicate,
        Metric::EchoSuppressed,
        Metric::Retried,
        Metric::Throttled,
        Metric::Rejected,
        Metric::DeadLettered,
        Metric::Conflict,
        Metric::NearMiss,
        Metric::Quarantined,
        Metric::Skipped,
        Metric::DriftFound,
        Metric::Repaired,
        Metric::StuckResolved,
    ];

    /// The metric's name in CloudWatch.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Synced => "synced",
            Metric::Duplicate => "duplicate",
            Metric::EchoSuppressed => "echo_suppressed",
            Metric::Retried => "retried",
            Metric::Throttled => "throttled",
            Metric::Rejected => "rejected",
            Metric::DeadLettered => "dead_lettered",
            Metric::Conflict => "conflict",
            Metric::NearMiss => "near_miss",
            Metric::Quarantined => "quarantined",
            Metric::Skipped => "skipped",
            Metric::DriftFound => "drift_found",
            Metric::Repaired => "repaired",
            Metric::StuckResolved => "stuck_resolved",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The counters of one invocation of one flow. `&self` methods, so the concurrent record
/// futures of a batch can share it.
#[derive(Debug)]
pub struct Metrics {
    namespace: String,
    flow: &'static str,
    counts: Mutex<[u64; Metric::ALL.len()]>,
}

/// Counts under the default namespace for a flow named `unknown`: CloudWatch rejects an empty
/// dimension value.
impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(DEFAULT_NAMESPACE, "unknown")
    }
}

impl Metrics {
    pub fn new(namespace: impl Into<String>, flow: &'static str) -> Self {
        Metrics {
            namespace: namespace.into(),
            flow,
            counts: Mutex::new([0; Metric::ALL.len()]),
        }
    }

    pub fn count(&self, metric: Metric) {
        self.add(metric, 1);
    }

    pub fn add(&self, metric: Metric, n: u64) {
        let mut counts = self.lock();
        let count = &mut counts[metric.index()];
        *count = count.saturating_add(n);
    }

    /// The EMF document for the counters so far, stamped `timestamp_ms` (milliseconds since
    /// the epoch); `None` when nothing was counted, so an idle invocation prints nothing.
    pub fn render(&self, timestamp_ms: i64) -> Option<String> {
        let counts = *self.lock();
        self.document(&counts, timestamp_ms)
    }

    /// Prints the document for the counters so far to stdout, where the Lambda platform hands
    /// it to CloudWatch Logs, and starts counting from zero.
    pub fn flush(&self) {
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = self.flush_into(&mut stdout, now_ms()) {
            tracing::warn!(error = %e, flow = self.flow, "could not write the metrics line");
        }
    }

    fn flush_into(&self, out: &mut impl Write, timestamp_ms: i64) -> std::io::Result<()> {
        // Taken and reset under one lock, so a record counted meanwhile lands in the next flush.
        let counts = std::mem::take(&mut *self.lock());
        let Some(mut line) = self.document(&counts, timestamp_ms) else {
            return Ok(());
        };
        // One write per document: a line split across writes could interleave with a log line.
        line.push('\n');
        out.write_all(line.as_bytes())?;
        out.flush()
    }

    fn document(&self, counts: &[u64; Metric::ALL.len()], timestamp_ms: i64) -> Option<String> {
        let counted: Vec<(Metric, u64)> = Metric::ALL
            .into_iter()
            .map(|metric| (metric, counts[metric.index()]))
            .filter(|&(_, n)| n > 0)
            .collect();
        if counted.is_empty() {
            return None;
        }
        let definitions: Vec<Value> = counted
            .iter()
            .map(|(metric, _)| json!({ "Name": metric.as_str(), "Unit": "Count" }))
            .collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [[FLOW_DIMENSION]],
                    "Metrics": definitions,
                }],
            }),
        );
        root.insert(FLOW_DIMENSION.into(), self.flow.into());
        for (metric, n) in counted {
            root.insert(metric.as_str().into(), n.into());
        }
        Some(Value::Object(root).to_string())
    }

    /// The counters hold plain numbers, so a panic while one was held leaves nothing
    /// half-written; counting goes on.
    fn lock(&self) -> std::sync::MutexGuard<'_, [u64; Metric::ALL.len()]> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: i64 = 1_700_000_000_000;

    fn parse(document: &str) -> Value {
        serde_json::from_str(document).expect("the document is JSON")
    }

    #[test]
    fn names_are_snake_case_and_distinct() {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(
            names,
            [
                "synced",
                "duplicate",
                "echo_suppressed",
                "retried",
                "throttled",
                "rejected",
                "dead_lettered",
                "conflict",
                "near_miss",
                "quarantined",
                "skipped",
                "drift_found",
                "repaired",
                "stuck_resolved"
            ]
        );
        for (i, metric) in Metric::ALL.into_iter().enumerate() {
            assert_eq!(metric.index(), i);
        }
    }

    #[test]
    fn renders_the_documented_emf_shape() {
        let metrics = Metrics::new(DEFAULT_NAMESPACE, "customer");
        metrics.count(Metric::Synced);
        metrics.add(Metric::Synced, 2);
        let document = metrics.render(AT).expect("something was counted");
        let expected = json!({
            "_aws": {
                "Timestamp": 1_700_000_000_000_i64,
                "CloudWatchMetrics": [{
                    "Namespace": "puente",
                    "Dimensions": [["flow"]],
                    "Metrics": [{ "Name": "synced", "Unit": "Count" }],
                }],
            },
            "flow": "customer",
            "synced": 3,
        });
        assert_eq!(parse(&document), expected);
        assert!(!document.contains('\n'), "one log line: {document}");
    }

    #[test]
    fn only_counters_that_moved_are_published() {
        let metrics = Metrics::new("puente-test", "invoice");
        metrics.add(Metric::DeadLettered, 1);
        metrics.add(Metric::Retried, 4);
        metrics.add(Metric::Conflict, 0);
        let document = parse(&metrics.render(AT).expect("something was counted"));

        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "puente-test");
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .expect("Metrics is an array")
            .iter()
            .map(|m| m["Name"].as_str().expect("Name is a string"))
            .collect();
        assert_eq!(names, ["retried", "dead_lettered"]);
        assert_eq!(document["retried"], 4);
        assert_eq!(document["dead_lettered"], 1);
        for metric in [Metric::Synced, Metric::Conflict, Metric::Throttled] {
            assert!(
                document.get(metric.as_str()).is_none(),
                "{metric:?} published"
            );
        }
    }

    #[test]
    fn nothing_counted_renders_nothing() {
        let metrics = Metrics::default();
        assert_eq!(metrics.render(AT), None);
        let mut out = Vec::new();
        metrics.flush_into(&mut out, AT).expect("writes to a Vec");
        assert!(out.is_empty());
    }

    #[test]
    fn flush_writes_one_line_and_starts_again_from_zero() {
        let metrics = Metrics::new(DEFAULT_NAMESPACE, "customer");
        metrics.add(Metric::Throttled, 2);
        let rendered = metrics.render(AT).expect("something was counted");

        let mut out = Vec::new();
        metrics.flush_into(&mut out, AT).expect("writes to a Vec");
        let line = String::from_utf8(out).expect("UTF-8");
        assert_eq!(line, format!("{rendered}\n"));
        assert_eq!(metrics.render(AT), None, "flush resets the counters");

        metrics.count(Metric::Throttled);
        let again = parse(&metrics.render(AT).expect("counted after the flush"));
        assert_eq!(again["throttled"], 1);
    }

    #[test]
    fn flush_to_stdout_resets_the_counters() {
        let metrics = Metrics::new(DEFAULT_NAMESPACE, "customer");
        metrics.count(Metric::Rejected);
        metrics.flush();
        assert_eq!(metrics.render(AT), None);
    }

    #[test]
    fn concurrent_counts_are_all_kept() {
        let metrics = Metrics::new(DEFAULT_NAMESPACE, "customer");
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..250 {
                        metrics.count(Metric::Synced);
                    }
                });
            }
        });
        let document = parse(&metrics.render(AT).expect("something was counted"));
        assert_eq!(document["synced"], 1000);
    }
}
