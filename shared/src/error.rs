//! Errors that say what the caller must do next. Connectors and stores map their failures into
//! these types; every error falls in one [`ErrorKind`], and [`TAXONOMY`] is the one table that
//! says how each kind is handled. The SQS runner reads it to choose between retry and dead letter.

use crate::domain::{FieldError, Rejection, System};
use std::time::Duration;

type Source = Box<dyn std::error::Error + Send + Sync>;

/// The kinds of failure, each handled one way (see [`TAXONOMY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Transient,
    Throttled,
    SessionExpired,
    Busy,
    Permanent,
    Poison,
}

/// What happens to a message whose processing failed with a kind of error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Hide the message for an exponential backoff with jitter from its receive count.
    Backoff,
    /// The same backoff, but never sooner than the system's `Retry-After`.
    BackoffAfterRetryAfter,
    /// The connector logs in again once and repeats the call inline; if the session expires
    /// again, the failure reaches the runner as transient.
    ReloginInline,
    /// Another invocation holds the key: wait until its lease can have run out.
    WaitForLease,
    /// Never retry: dead-letter with the reasons as attributes, record the failure, acknowledge.
    DeadLetter,
}

/// One row of the taxonomy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub kind: ErrorKind,
    /// What falls in this kind, for people (the README shows this table).
    pub covers: &'static str,
    pub handling: Handling,
}

/// The error taxonomy and retry policy, as data: every failure is one of these kinds.
pub const TAXONOMY: [Rule; 6] = [
    Rule {
        kind: ErrorKind::Transient,
        covers: "HTTP 5xx and 408, timeouts, connection resets, unreadable answers, \
                 DynamoDB throttling and 5xx, a lost lease",
        handling: Handling::Backoff,
    },
    Rule {
        kind: ErrorKind::Throttled,
        covers: "HTTP 429 and vendor equivalents",
        handling: Handling::BackoffAfterRetryAfter,
    },
    Rule {
        kind: ErrorKind::SessionExpired,
        covers: "Odoo `SessionExpiredException` (code 100), SAP B1 401 with code 301",
        handling: Handling::ReloginInline,
    },
    Rule {
        kind: ErrorKind::Busy,
        covers: "another invocation holds a live lease on the business key",
        handling: Handling::WaitForLease,
    },
    Rule {
        kind: ErrorKind::Permanent,
        covers: "HTTP 400/401/403/404/409/422, validation errors, a business key \
                 seen with a different payload",
        handling: Handling::DeadLetter,
    },
    Rule {
        kind: ErrorKind::Poison,
        covers: "a message that cannot be read, or has no business key",
        handling: Handling::DeadLetter,
    },
];

impl ErrorKind {
    /// This kind's row of [`TAXONOMY`].
    pub fn handling(self) -> Handling {
        TAXONOMY
            .iter()
            .find(|rule| rule.kind == self)
            .map_or(Handling::Backoff, |rule| rule.handling)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Throttled => "throttled",
            ErrorKind::SessionExpired => "session_expired",
            ErrorKind::Busy => "busy",
            ErrorKind::Permanent => "permanent",
            ErrorKind::Poison => "poison",
        }
    }
}

/// A remote system's answer, classified.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// 5xx, timeouts, connection errors, unreadable answers: retry later.
    #[error("{system} is unavailable: {detail}")]
    Unavailable {
        system: System,
        detail: String,
        #[source]
        source: Option<Source>,
    },
    /// 429 or the vendor's equivalent: retry after the given time, if any.
    #[error("{system} is throttling requests")]
    Throttled {
        system: System,
        retry_after: Option<Duration>,
    },
    /// The system refused this request (4xx, a validation error): retrying will not help.
    #[error("{system} rejected the request: {detail}")]
    Rejected { system: System, detail: String },
    /// The record does not exist (any more) in the system.
    #[error("{system} has no {what}")]
    NotFound { system: System, what: String },
    /// The login session ran out (Odoo session cookie, SAP B1 `B1SESSION`): log in again once
    /// and repeat the call inline; the connector that holds the session does that.
    #[error("{system} session expired")]
    SessionExpired { system: System },
    /// Credentials are wrong or lack access: nothing works until an operator fixes them.
    #[error("{system} refused our credentials: {detail}")]
    Unauthorized { system: System, detail: String },
    /// The system answered, but the record it holds does not validate (a deal with a line item
    /// without a price): the fields say what a person must fix there.
    #[error("{system} {what} is invalid: {rejection}")]
    Invalid {
        system: System,
        what: String,
        rejection: Rejection,
    },
}

/// A failure of puente's own state (DynamoDB, SQS).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, 5xx, network: retry later.
    #[error("{service} is unavailable: {detail}")]
    Unavailable {
        service: &'static str,
        detail: String,
        #[source]
        source: Option<Source>,
    },
    /// Our lease on a ledger item was taken over (it expired): stop, the successor owns the work.
    #[error("lease on {key} was lost to another invocation")]
    LeaseLost { key: String },
    /// A stored item does not have the shape we write: a bug or a manual edit.
    #[error("stored item {key} is malformed: {detail}")]
    Malformed { key: String, detail: String },
}

impl ConnectorError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ConnectorError::Unavailable { .. } => ErrorKind::Transient,
            ConnectorError::Throttled { .. } => ErrorKind::Throttled,
            ConnectorError::SessionExpired { .. } => ErrorKind::SessionExpired,
            ConnectorError::Rejected { .. }
            | ConnectorError::NotFound { .. }
            | ConnectorError::Unauthorized { .. }
            | ConnectorError::Invalid { .. } => ErrorKind::Permanent,
        }
    }
}

impl StoreError {
    pub fn unavailable(
        service: &'static str,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        let detail = aws_error_text(&err);
        StoreError::Unavailable {
            service,
            detail,
            source: Some(Box::new(err)),
        }
    }
}

/// The whole chain of an error, for SDK errors whose `Display` alone says "service error".
pub fn aws_error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Why a record was dead-lettered: the DLQ message and the ledger carry this class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The source record is invalid (field-level reasons attached).
    Invalid,
    /// The target system refused the write.
    TargetRejected,
    /// The record is gone from the source.
    NotFound,
    /// Configuration or credentials are wrong.
    Configuration,
    /// The business key was already claimed with a different payload.
    Conflict,
    /// The message itself cannot be read, or carries no business key.
    Poison,
}

impl FailureClass {
    pub const ALL: [FailureClass; 6] = [
        FailureClass::Invalid,
        FailureClass::TargetRejected,
        FailureClass::NotFound,
        FailureClass::Configuration,
        FailureClass::Conflict,
        FailureClass::Poison,
    ];

    pub fn parse(name: &str) -> Option<FailureClass> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Invalid => "invalid",
            FailureClass::TargetRejected => "target_rejected",
            FailureClass::NotFound => "not_found",
            FailureClass::Configuration => "configuration",
            FailureClass::Conflict => "conflict",
            FailureClass::Poison => "poison",
        }
    }
}

/// The outcome of one message that did not complete, as the SQS runner needs it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Try again later (backoff from the receive count).
    #[error("transient: {reason}")]
    Transient {
        reason: String,
        #[source]
        source: Option<Source>,
    },
    /// Try again no sooner than `retry_after`.
    #[error("throttled by {system}")]
    Throttled {
        system: System,
        retry_after: Option<Duration>,
    },
    /// Another invocation holds the lease on this key: try again once it can have expired.
    #[error("another invocation holds the lease")]
    Busy { retry_after: Duration },
    /// Never retry: dead-letter with the reason and record the failure.
    #[error("{}: {reason}", class.as_str())]
    Rejected {
        class: FailureClass,
        reason: String,
        fields: Vec<FieldError>,
    },
}

impl SyncError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SyncError::Transient { .. } => ErrorKind::Transient,
            SyncError::Throttled { .. } => ErrorKind::Throttled,
            SyncError::Busy { .. } => ErrorKind::Busy,
            SyncError::Rejected {
                class: FailureClass::Poison,
                ..
            } => ErrorKind::Poison,
            SyncError::Rejected { .. } => ErrorKind::Permanent,
        }
    }

    /// The earliest time a retry makes sense, when the error says.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SyncError::Throttled { retry_after, .. } => *retry_after,
            SyncError::Busy { retry_after } => Some(*retry_after),
            SyncError::Transient { .. } | SyncError::Rejected { .. } => None,
        }
    }

    /// The same error, its reason prefixed with the step that failed (`odoo create customer`),
    /// so the dead letter and the failure record say where it happened.
    pub fn at(self, step: &str) -> Self {
        match self {
            SyncError::Transient { reason, source } => SyncError::Transient {
                reason: format!("{step}: {reason}"),
                source,
            },
            SyncError::Rejected {
                class,
                reason,
                fields,
            } => SyncError::Rejected {
                class,
                reason: format!("{step}: {reason}"),
                fields,
            },
            other => other,
        }
    }

    pub fn rejected(class: FailureClass, reason: impl Into<String>) -> Self {
        SyncError::Rejected {
            class,
            reason: reason.into(),
            fields: Vec::new(),
        }
    }
}

impl From<Rejection> for SyncError {
    fn from(r: Rejection) -> Self {
        SyncError::Rejected {
            class: FailureClass::Invalid,
            reason: r.to_string(),
            fields: r.0,
        }
    }
}

impl From<ConnectorError> for SyncError {
    fn from(e: ConnectorError) -> Self {
        match e {
            // Reaching the flow means the inline re-login did not help: retry later.
            ConnectorError::Unavailable { .. } | ConnectorError::SessionExpired { .. } => {
                SyncError::Transient {
                    reason: e.to_string(),
                    source: Some(Box::new(e)),
                }
            }
            ConnectorError::Throttled {
                system,
                retry_after,
            } => SyncError::Throttled {
                system,
                retry_after,
            },
            ConnectorError::Rejected { .. } => {
                SyncError::rejected(FailureClass::TargetRejected, e.to_string())
            }
            ConnectorError::NotFound { .. } => {
                SyncError::rejected(FailureClass::NotFound, e.to_string())
            }
            ConnectorError::Unauthorized { .. } => {
                SyncError::rejected(FailureClass::Configuration, e.to_string())
            }
            ConnectorError::Invalid {
                system,
                what,
                rejection,
            } => SyncError::Rejected {
                class: FailureClass::Invalid,
                reason: format!("{system} {what} is invalid: {rejection}"),
                fields: rejection.0,
            },
        }
    }
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        match e {
            // A lost lease means our successor owns the key; redelivery finds its outcome.
            StoreError::Unavailable { .. } | StoreError::LeaseLost { .. } => SyncError::Transient {
                reason: e.to_string(),
                source: Some(Box::new(e)),
            },
            StoreError::Malformed { .. } => {
                SyncError::rejected(FailureClass::Configuration, e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_exactly_one_row_and_only_permanent_and_poison_dead_letter() {
        let kinds = [
            ErrorKind::Transient,
            ErrorKind::Throttled,
            ErrorKind::SessionExpired,
            ErrorKind::Busy,
            ErrorKind::Permanent,
            ErrorKind::Poison,
        ];
        for kind in kinds {
            assert_eq!(
                TAXONOMY.iter().filter(|r| r.kind == kind).count(),
                1,
                "{kind:?}"
            );
            let dead_letters = kind.handling() == Handling::DeadLetter;
            assert_eq!(
                dead_letters,
                matches!(kind, ErrorKind::Permanent | ErrorKind::Poison),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn errors_fall_in_the_kinds_the_table_names() {
        let odoo = System::named("odoo");
        let throttled = SyncError::from(ConnectorError::Throttled {
            system: odoo,
            retry_after: Some(Duration::from_secs(7)),
        });
        assert_eq!(throttled.kind(), ErrorKind::Throttled);
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(7)));
        // A session that expired again after the inline re-login is retried later.
        let expired = ConnectorError::SessionExpired { system: odoo };
        assert_eq!(expired.kind(), ErrorKind::SessionExpired);
        assert_eq!(SyncError::from(expired).kind(), ErrorKind::Transient);
        let refused = ConnectorError::Rejected {
            system: odoo,
            detail: "422".into(),
        };
        assert_eq!(SyncError::from(refused).kind(), ErrorKind::Permanent);
        let poison = SyncError::rejected(FailureClass::Poison, "not json");
        assert_eq!(poison.kind(), ErrorKind::Poison);
        let conflict = SyncError::rejected(FailureClass::Conflict, "other digest");
        assert_eq!(conflict.kind(), ErrorKind::Permanent);
    }

    #[test]
    fn the_failed_step_prefixes_the_reason() {
        let err =
            SyncError::rejected(FailureClass::TargetRejected, "422").at("odoo create customer");
        assert_eq!(
            err.to_string(),
            "target_rejected: odoo create customer: 422"
        );
    }
}
