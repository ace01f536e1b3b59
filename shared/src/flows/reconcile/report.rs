//! The drift report: what one reconciler run found and did, per flow and class, with a sample
//! of the differences (record ids and field names, never values). Written to the logs as one
//! JSON record, to DynamoDB for the operator command, and counted in metrics.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many differences a report keeps as examples.
pub const SAMPLE: usize = 20;

/// Which records a run compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The records written since each side's watermark, minus an overlap for clock skew; also
    /// continues a full sweep that an earlier run left unfinished.
    #[default]
    Incremental,
    /// Also starts a sweep of every record, from the beginning, when none is under way.
    Full,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Incremental => "incremental",
            Mode::Full => "full",
        }
    }
}

/// What kind of difference a comparison found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// A record without a counterpart: the other side lacks it. Repaired (created there).
    Missing,
    /// Linked records whose fields differ where the ownership rules say they should not.
    /// Repaired from the side that owns each field.
    Drifted,
    /// A field edited on both sides since they last agreed. Repaired by the ownership rule, and
    /// the flow records a conflict notice for a person.
    Conflict,
    /// A link to a record the other side no longer has (deleted or merged away). Reported
    /// only: deletions are never propagated.
    OrphanLink,
    /// A record that does not validate (a bad tax id typed in): reported with its fields for a
    /// person to fix there.
    Invalid,
    /// A quarantined customer (circuit breaker, deletion, merge): reported, not repaired until
    /// an operator releases it.
    Quarantined,
    /// A ledger item left IN_PROGRESS by a worker that died, with no delivery coming to take it
    /// over: completed with what the probe found, and its change enqueued again.
    Stuck,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::Missing,
        Class::Drifted,
        Class::Conflict,
        Class::OrphanLink,
        Class::Invalid,
        Class::Quarantined,
        Class::Stuck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Missing => "missing",
            Class::Drifted => "drifted",
            Class::Conflict => "conflict",
            Class::OrphanLink => "orphan_link",
            Class::Invalid => "invalid",
            Class::Quarantined => "quarantined",
            Class::Stuck => "stuck",
        }
    }

    /// Whether it counts as drift between the systems (for the metric and the alarm): a
    /// quarantined customer is already known and alarmed, a stuck item is puente's own state.
    pub fn is_drift(self) -> bool {
        !matches!(self, Class::Quarantined | Class::Stuck)
    }
}

/// One difference, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub flow: String,
    pub class: Class,
    /// The record it was found on, as `system#id`.
    pub record: String,
    /// Its counterpart through the link, when linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterpart: Option<String>,
    /// The fields involved (names only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// One pass over one side of one flow (`customer hubspot incremental`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pass {
    pub flow: String,
    pub system: String,
    /// `incremental` or `sweep`.
    pub pass: String,
    pub pages: u64,
    pub records: u64,
    /// Whether the pass reached the end of what it lists (a sweep that did not continues in
    /// the next run, from its checkpoint).
    pub complete: bool,
    /// Why it stopped early, when a read failed (its watermark stayed where it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What one run found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftReport {
    pub run_id: String,
    pub mode: Mode,
    pub dry_run: bool,
    /// RFC 3339.
    pub started_at: String,
    pub duration_ms: u64,
    pub passes: Vec<Pass>,
    /// Differences by flow, then class.
    pub found: BTreeMap<String, BTreeMap<Class, u64>>,
    /// Repair events put on the flows' queues.
    pub repairs_enqueued: u64,
    /// Repairs not enqueued again because the same repair is already on its way.
    pub repairs_pending: u64,
    /// Repairs the reconciler wrote itself (the CRM's products, which no other flow writes).
    #[serde(default)]
    pub repairs_written: u64,
    /// Ledger items stuck IN_PROGRESS that were resolved.
    pub stuck_resolved: u64,
    /// Flows asked for that could not run here, each with why (`invoice: no payments queue`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    pub sample: Vec<Difference>,
}

impl DriftReport {
    pub fn record(&mut self, difference: Difference) {
        *self
            .found
            .entry(difference.flow.clone())
            .or_default()
            .entry(difference.class)
            .or_default() += 1;
        if self.sample.len() < SAMPLE {
            self.sample.push(difference);
        }
    }

    /// Differences that count as drift, all flows.
    pub fn drift(&self) -> u64 {
        self.found
            .values()
            .flat_map(|classes| classes.iter())
            .filter(|(class, _)| class.is_drift())
            .map(|(_, n)| n)
            .sum()
    }

    /// Whether every pass read what it had to (no read failed).
    pub fn healthy(&self) -> bool {
        self.passes.iter().all(|p| p.error.is_none())
    }

    /// The report as the one JSON log line a run prints.
    pub fn log_line(&self) -> String {
        serde_json::json!({ "puente_drift_report": self }).to_string()
    }

    /// The report as a table for a person (the operator command).
    pub fn table(&self) -> String {
        let mut out = format!(
            "run {} ({}{}), started {}, {} ms\n\n",
            self.run_id,
            self.mode.as_str(),
            if self.dry_run { ", dry run" } else { "" },
            self.started_at,
            self.duration_ms
        );
        out.push_str(&format!(
            "{:<10} {:<8} {:<12} {:>6} {:>8}  {}\n",
            "flow", "system", "pass", "pages", "records", "state"
        ));
        for pass in &self.passes {
            let state = match (&pass.error, pass.complete) {
                (Some(error), _) => format!("stopped: {error}"),
                (None, true) => "complete".into(),
                (None, false) => "continues next run".into(),
            };
            out.push_str(&format!(
                "{:<10} {:<8} {:<12} {:>6} {:>8}  {}\n",
                pass.flow, pass.system, pass.pass, pass.pages, pass.records, state
            ));
        }
        out.push_str(&format!(
            "\n{:<10} {:<12} {:>6}\n",
            "flow", "class", "found"
        ));
        for (flow, classes) in &self.found {
            for (class, n) in classes {
                out.push_str(&format!("{flow:<10} {:<12} {n:>6}\n", class.as_str()));
            }
        }
        if self.found.is_empty() {
            out.push_str("(no differences)\n");
        }
        out.push_str(&format!(
            "\nrepairs enqueued {}, already on their way {}, written {}, stuck items resolved {}\n",
            self.repairs_enqueued, self.repairs_pending, self.repairs_written, self.stuck_resolved
        ));
        for skipped in &self.skipped {
            out.push_str(&format!("not reconciled: {skipped}\n"));
        }
        if !self.sample.is_empty() {
            out.push_str("\nsample:\n");
            for d in &self.sample {
                out.push_str(&format!(
                    "  {:<10} {:<12} {:<16} {:<16} {}\n",
                    d.flow,
                    d.class.as_str(),
                    d.record,
                    d.counterpart.as_deref().unwrap_or("-"),
                    d.fields.join(", ")
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn difference(class: Class) -> Difference {
        Difference {
            flow: "customer".into(),
            class,
            record: "hubspot#901".into(),
            counterpart: None,
            fields: vec!["name".into()],
        }
    }

    #[test]
    fn counts_by_flow_and_class_and_keeps_a_bounded_sample() {
        let mut report = DriftReport::default();
        for _ in 0..SAMPLE {
            report.record(difference(Class::Drifted));
        }
        report.record(difference(Class::Quarantined));
        assert_eq!(report.found["customer"][&Class::Drifted], SAMPLE as u64);
        assert_eq!(report.drift(), SAMPLE as u64, "quarantined is not drift");
        assert_eq!(report.sample.len(), SAMPLE);
    }

    #[test]
    fn a_flow_that_could_not_run_is_in_the_table_and_not_in_old_reports() {
        let report = DriftReport {
            skipped: vec!["invoice: no payments queue".into()],
            ..DriftReport::default()
        };
        assert!(
            report
                .table()
                .contains("not reconciled: invoice: no payments queue")
        );
        let mut old = serde_json::to_value(DriftReport::default()).expect("JSON");
        assert!(old.get("skipped").is_none(), "left out when empty");
        old["run_id"] = serde_json::json!("saved before the field existed");
        let read: DriftReport = serde_json::from_value(old).expect("old reports still read");
        assert!(read.skipped.is_empty());
    }

    #[test]
    fn the_log_line_is_one_json_record_with_names_not_values() {
        let mut report = DriftReport::default();
        report.record(difference(Class::Missing));
        let line = report.log_line();
        assert!(!line.contains('\n'));
        let parsed: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(
            parsed["puente_drift_report"]["found"]["customer"]["missing"],
            1
        );
        assert_eq!(
            parsed["puente_drift_report"]["sample"][0]["fields"][0],
            "name"
        );
    }
}
