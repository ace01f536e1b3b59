//! Field-level validation results: a rejected record says which fields failed and why,
//! without echoing the values (they may be personal data).

use serde::{Deserialize, Serialize};
use std::fmt;

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// A record that cannot be represented in the canonical model, with every reason found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", render(.0))]
pub struct Rejection(pub Vec<FieldError>);

fn render(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Rejection {
    pub fn fields(&self) -> &[FieldError] {
        &self.0
    }
}
