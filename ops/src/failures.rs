//! `puente-ops failures`: the idempotency ledger's failure records, for the people who act on
//! them. One ledger item per business key (`IDEM#{flow}#{source}#{object_id}#{occurred_at_ms}`)
//! carries its status, attempt count, last error and conflict count; this module reads the ones
//! that need a person (FAILED, or a payload conflict) or are struggling (retried and not
//! completed) with a filtered, paginated `Scan`, and prints one line per key. The items hold ids
//! and reasons only, never record data, and nothing else is read from them.

use crate::Target;
use anyhow::Context;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use shared::aws::ledger::{COMPLETED, FAILED};
use shared::domain::Timestamp;
use std::collections::HashMap;
use std::fmt;

/// Longest error text a row shows; the ledger keeps up to 1000 characters.
const ERROR_PREVIEW_CHARS: usize = 100;

/// What `failures` should list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureQuery {
    /// Stop after this many keys. The scan stops there too, so when the limit is reached the
    /// rows are the first found, not necessarily the newest.
    pub max: usize,
    /// Also list keys that completed after more than one attempt.
    pub all: bool,
}

impl Default for FailureQuery {
    fn default() -> Self {
        Self {
            max: 100,
            all: false,
        }
    }
}

impl Target {
    /// The stack's state table (ledger, links, locks, webhook deliveries), as the template
    /// names it.
    pub fn state_table(&self) -> String {
        format!("{}-state", self.stack)
    }
}

/// One business key's failure record, as the ledger item holds it. Every field but the key is
/// optional because items written by older versions, or by an attempt killed early, lack some.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureRecord {
    /// `{flow}#{source}#{object_id}#{occurred_at_ms}`, without the `IDEM#` prefix.
    pub key: String,
    /// IN_PROGRESS, APPLIED, COMPLETED or FAILED.
    pub status: Option<String>,
    pub target_id: Option<String>,
    pub attempts: Option<u32>,
    pub error_class: Option<String>,
    pub last_error: Option<String>,
    /// The step and system that failed, e.g. `odoo create customer`.
    pub failed_step: Option<String>,
    /// Epoch seconds.
    pub first_failure_at: Option<i64>,
    /// Epoch seconds.
    pub last_failure_at: Option<i64>,
    /// Deliveries of the same key with a different payload, never applied.
    pub conflicts: Option<u32>,
    /// Epoch seconds.
    pub last_conflict_at: Option<i64>,
    /// Epoch seconds.
    pub updated_at: Option<i64>,
}

impl FailureRecord {
    /// When this key last needed attention: its last failure or its last conflict, whichever
    /// is later. A key that only ever conflicted has no failure time but still belongs in the
    /// timeline.
    pub fn last_trouble_at(&self) -> Option<i64> {
        self.last_failure_at.max(self.last_conflict_at)
    }

    fn from_item(item: &HashMap<String, AttributeValue>) -> Option<Self> {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let number = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let count = |name: &str| number(name).and_then(|v| u32::try_from(v).ok());
        let key = text("pk")?.strip_prefix("IDEM#")?.to_owned();
        Some(Self {
            key,
            status: text("status"),
            target_id: text("target_id"),
            attempts: count("attempts"),
            error_class: text("error_class"),
            last_error: text("last_error"),
            failed_step: text("failed_step"),
            first_failure_at: number("first_failure_at"),
            last_failure_at: number("last_failure_at"),
            conflicts: count("conflicts"),
            last_conflict_at: number("last_conflict_at"),
            updated_at: number("updated_at"),
        })
    }
}

impl fmt::Display for FailureRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
        let time = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), utc_seconds);
        let count = |v: Option<u32>| v.map_or_else(|| "-".to_owned(), |n| n.to_string());
        write!(
            f,
            "{}  {}  class={}  step={}  attempts={}  first={}  last={}  conflicts={}",
            self.key,
            or_dash(self.status.as_deref()),
            or_dash(self.error_class.as_deref()),
            self.failed_step
                .as_deref()
                .map_or_else(|| "-".to_owned(), |step| format!("{step:?}")),
            count(self.attempts),
            time(self.first_failure_at),
            time(self.last_failure_at),
            self.conflicts.unwrap_or(0),
        )?;
        if let Some(at) = self.last_conflict_at {
            write!(f, " (last {})", utc_seconds(at))?;
        }
        if let Some(error) = self.last_error.as_deref().filter(|e| !e.trim().is_empty()) {
            write!(f, "  error: {}", error_preview(error))?;
        }
        Ok(())
    }
}

/// The ledger keys of `target`'s flow that need a person or are struggling, newest trouble
/// first (see [`FailureRecord::last_trouble_at`]); keys without any time come last.
pub async fn failures(
    sdk: &aws_config::SdkConfig,
    target: &Target,
    options: FailureQuery,
) -> anyhow::Result<Vec<FailureRecord>> {
    let table = target.state_table();
    let dynamodb = Client::new(sdk);
    let selection = if options.all {
        "#status = :failed OR attribute_exists(conflicts) OR attempts > :one"
    } else {
        "#status = :failed OR attribute_exists(conflicts) \
         OR (attempts > :one AND #status <> :completed)"
    };
    let mut request = dynamodb
        .scan()
        .table_name(&table)
        .filter_expression(format!(
            "begins_with(pk, :prefix) AND sk = :idem AND ({selection})"
        ))
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(
            ":prefix",
            AttributeValue::S(format!("IDEM#{}#", target.flow)),
        )
        .expression_attribute_values(":idem", AttributeValue::S("IDEM".into()))
        .expression_attribute_values(":failed", AttributeValue::S(FAILED.into()))
        .expression_attribute_values(":one", AttributeValue::N("1".into()));
    if !options.all {
        request =
            request.expression_attribute_values(":completed", AttributeValue::S(COMPLETED.into()));
    }
    let mut found = Vec::new();
    let mut start = None;
    while found.len() < options.max {
        let page = request
            .clone()
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .with_context(|| format!("scan {table}"))?;
        found.extend(
            page.items()
                .iter()
                .filter_map(FailureRecord::from_item)
                .take(options.max - found.len()),
        );
        // A filtered page may be empty and still not the last: only its key says so.
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => break,
        }
    }
    found.sort_by(|a, b| {
        b.last_trouble_at()
            .cmp(&a.last_trouble_at())
            .then_with(|| a.key.cmp(&b.key))
    });
    Ok(found)
}

/// `2026-11-26T19:40:01Z`; the raw number when it is outside what a timestamp can carry.
pub fn utc_seconds(epoch_seconds: i64) -> String {
    epoch_seconds
        .checked_mul(1000)
        .and_then(|ms| Timestamp::from_epoch_millis(ms).ok())
        .map_or_else(
            || epoch_seconds.to_string(),
            |t| format!("{}Z", t.format_naive_utc().replacen(' ', "T", 1)),
        )
}

/// The first line, with control characters blanked so a row stays one line, cut to
/// [`ERROR_PREVIEW_CHARS`].
fn error_preview(error: &str) -> String {
    let line = error.trim_start().lines().next().unwrap_or_default();
    let mut preview: String = line
        .chars()
        .take(ERROR_PREVIEW_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() > ERROR_PREVIEW_CHARS || error.trim().lines().nth(1).is_some() {
        preview.push('…');
    }
    preview
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds_print_as_utc_to_the_second() {
        assert_eq!(utc_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_seconds(1_704_067_199), "2023-12-31T23:59:59Z");
        assert_eq!(utc_seconds(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_seconds(i64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn a_row_shows_the_first_line_of_the_error_shortened() {
        let record = FailureRecord {
            key: "customer#hubspot#901#1704067199000".into(),
            status: Some("FAILED".into()),
            attempts: Some(3),
            error_class: Some("invalid".into()),
            failed_step: Some("odoo create customer".into()),
            last_error: Some(format!("{}\tend\nsecond line", "x".repeat(150))),
            first_failure_at: Some(1_704_067_199),
            last_failure_at: Some(1_704_067_260),
            ..FailureRecord::default()
        };
        let line = record.to_string();
        assert!(!line.contains('\n') && !line.contains('\t'), "{line}");
        assert!(!line.contains("second line"), "{line}");
        assert!(
            line.contains(&format!("error: {}…", "x".repeat(100))),
            "{line}"
        );
        for part in [
            "customer#hubspot#901#1704067199000  FAILED",
            "class=invalid",
            "step=\"odoo create customer\"",
            "attempts=3",
            "first=2023-12-31T23:59:59Z",
            "last=2024-01-01T00:01:00Z",
            "conflicts=0",
        ] {
            assert!(line.contains(part), "{part} in {line}");
        }
    }

    #[test]
    fn only_ledger_items_become_records() {
        let item = |pk: &str| HashMap::from([("pk".to_owned(), AttributeValue::S(pk.into()))]);
        assert!(FailureRecord::from_item(&item("LOCK#customer#hubspot#1")).is_none());
        assert_eq!(
            FailureRecord::from_item(&item("IDEM#customer#hubspot#1#2")).map(|r| r.key),
            Some("customer#hubspot#1#2".to_owned())
        );
    }
}
