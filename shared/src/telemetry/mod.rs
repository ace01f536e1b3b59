//! What leaves a function besides its result: log text that has been stripped of personal data
//! and secrets, and the counters that become CloudWatch metrics.
//!
//! Logs are kept for weeks and read by people who have no business seeing a customer's e-mail,
//! phone or tax id, or a vendor token, so any free text (an error, a rejection reason, a vendor's
//! body) goes through [`redact`] or [`Redacted`] before it is logged. Metrics are written as
//! CloudWatch embedded-metric-format lines on stdout rather than through `PutMetricData`: the
//! platform already ships stdout to CloudWatch Logs, which extracts them, so publishing needs no
//! API call, no extra permission and no time in the invocation.

pub mod metrics;
pub mod redact;

pub use metrics::{DEFAULT_NAMESPACE, Metric, Metrics};
pub use redact::{Redacted, redact};
