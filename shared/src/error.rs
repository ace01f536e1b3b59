//! Errors that say what the caller must do next. Connectors and stores map their failures into
//! these types; the SQS runner decides between retry and dead letter from the variant alone.

use crate::domain::{FieldError, Rejection, System};
use std::time::Duration;

type Source = Box<dyn std::error::Error + Send + Sync>;

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
    /// The message itself cannot be read.
    Poison,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Invalid => "invalid",
            FailureClass::TargetRejected => "target_rejected",
            FailureClass::NotFound => "not_found",
            FailureClass::Configuration => "configuration",
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
            ConnectorError::Unavailable { .. } | ConnectorError::SessionExpired { .. } => SyncError::Transient {
                reason: e.to_string(),
                source: Some(Box::new(e)),
            },
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
