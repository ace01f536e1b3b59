//! Fault injection shared by the simulators: the next N requests for an operation fail with an
//! HTTP status, are answered slowly, or are applied and then answered too late.

use std::sync::Mutex;
use std::time::Duration;

/// What happens to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status (and the system's error body) without applying it.
    Status(u16),
    /// Answer 429 with `Retry-After`.
    Throttle { retry_after_s: u64 },
    /// Wait before handling the request (a slow system; the client may time out first).
    DelayBefore(Duration),
    /// Apply the request, then wait before answering: the change is made even if the caller
    /// gives up or dies waiting.
    DelayAfter(Duration),
    /// Answer with the system's application error (e.g. an Odoo exception class and message).
    AppError { name: String, message: String },
}

#[derive(Debug, Clone)]
struct Rule {
    operation: String,
    fault: Fault,
    /// Matching requests served normally before the fault starts.
    spared: u32,
    remaining: u32,
}

/// The faults armed on one simulator, and the log of every operation it served.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<String>>,
}

impl Faults {
    /// Arms `fault` for the next `times` requests whose operation contains `operation`.
    pub fn inject(&self, operation: &str, fault: Fault, times: u32) {
        self.inject_after(operation, fault, 0, times);
    }

    /// Arms `fault` for `times` requests whose operation contains `operation`, after `spared`
    /// of them were served normally: an outage in the middle of a run.
    pub fn inject_after(&self, operation: &str, fault: Fault, spared: u32, times: u32) {
        if let Ok(mut rules) = self.rules.lock() {
            rules.push(Rule {
                operation: operation.to_owned(),
                fault,
                spared,
                remaining: times,
            });
        }
    }

    /// Logs the operation and takes the first armed fault that matches it, if any.
    pub fn take(&self, operation: &str) -> Option<Fault> {
        if let Ok(mut log) = self.log.lock() {
            log.push(operation.to_owned());
        }
        let mut rules = self.rules.lock().ok()?;
        let rule = rules
            .iter_mut()
            .find(|r| r.remaining > 0 && operation.contains(&r.operation))?;
        if rule.spared > 0 {
            rule.spared -= 1;
            return None;
        }
        rule.remaining -= 1;
        Some(rule.fault.clone())
    }

    /// How many requests for operations containing `operation` were received.
    pub fn count(&self, operation: &str) -> usize {
        self.log
            .lock()
            .map(|log| log.iter().filter(|op| op.contains(operation)).count())
            .unwrap_or_default()
    }
}
