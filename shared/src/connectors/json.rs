//! What the JSON-speaking connectors share when they read a record: amounts read into the
//! canonical `Money` with the failing field named, never rounded.

use crate::domain::{Currency, FieldError, Money};
use serde_json::Value;

/// A required amount in `currency` (a JSON number or numeric string); absent or null is
/// "is required", more decimals than the currency allows is an error, never a rounding.
pub fn required_money(
    field: &str,
    value: Option<&Value>,
    currency: Currency,
    errors: &mut Vec<FieldError>,
) -> Option<Money> {
    match value {
        None | Some(Value::Null) => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        Some(v) => Money::from_json(v, currency)
            .map_err(|e| errors.push(FieldError::new(field, e.to_string())))
            .ok(),
    }
}
