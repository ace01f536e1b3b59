//! Field presence: whether a source said nothing about a field, said it has no value, sent
//! blank text, or sent a value, and what that means for the same field in a target.
//!
//! The systems tell these apart and mean different things by them. A partial update or a
//! property that was not requested leaves a field out: it says nothing, and must never clear
//! the target. An explicit `null`, an empty string, or (in an Odoo-style ORM) `false` say "this
//! record has no value here", which clears the target only where the source is the system of
//! record for that field. Collapsing them all into `Option<String>` loses exactly the
//! distinction that decides whether a sync deletes data.

use crate::domain::FieldError;
use serde_json::{Map, Value};

/// What a source record says about one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// Not sent at all (a partial update, a property not requested): says nothing.
    Absent,
    /// Sent as "no value": JSON `null`, or `false` from a source that spells null that way.
    Null,
    /// Sent as text with nothing but whitespace in it; as good as `Null` to the mapping, kept
    /// apart so that a rejection or a log can say which one the source sent.
    Blank,
    /// Sent with a value, as the source sent it (not trimmed or normalised: that is the
    /// field's own parser's job).
    Value(String),
}

/// How a source spells "no value" in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullStyle {
    /// Only `null`; `false` is the value "false" (CRMs, REST ERPs).
    Null,
    /// `null` or `false`: ORMs without a null for text, date or relation fields (Odoo's, over
    /// JSON-RPC) read an empty one back as `false`. Never use it for a true boolean field,
    /// whose `false` is a value.
    NullOrFalse,
}

impl Field {
    /// Reads member `name` of a JSON object. Strings, numbers and booleans are values (numbers
    /// and booleans as their JSON text); a list or an object is not a single field value and is
    /// reported as a `FieldError` for `name`, without the value.
    pub fn from_json(
        object: &Map<String, Value>,
        name: &str,
        nulls: NullStyle,
    ) -> Result<Self, FieldError> {
        match object.get(name) {
            None => Ok(Self::Absent),
            Some(Value::Null) => Ok(Self::Null),
            Some(Value::Bool(false)) if nulls == NullStyle::NullOrFalse => Ok(Self::Null),
            Some(Value::Bool(b)) => Ok(Self::Value(b.to_string())),
            Some(Value::Number(n)) => Ok(Self::Value(n.to_string())),
            Some(Value::String(s)) => Ok(Self::from_text(s.clone())),
            Some(Value::Array(_) | Value::Object(_)) => Err(FieldError::new(
                name,
                "is a list or an object, not a single value",
            )),
        }
    }

    /// A field the source sent as text: `Blank` when there is nothing but whitespace.
    pub fn from_text(text: String) -> Self {
        if text.trim().is_empty() {
            Self::Blank
        } else {
            Self::Value(text)
        }
    }

    /// The sent value, if the field has one.
    pub fn value(&self) -> Option<&str> {
        match self {
            Self::Value(v) => Some(v),
            Self::Absent | Self::Null | Self::Blank => None,
        }
    }

    /// The sent value, if the field has one; for mappings that only read values.
    pub fn into_value(self) -> Option<String> {
        match self {
            Self::Value(v) => Some(v),
            Self::Absent | Self::Null | Self::Blank => None,
        }
    }

    /// What to do with the target's field under `policy`:
    ///
    /// | source   | `KeepTarget` | `ClearTarget` |
    /// |----------|--------------|---------------|
    /// | Absent   | leave        | leave         |
    /// | Null     | leave        | clear         |
    /// | Blank    | leave        | clear         |
    /// | Value(v) | set v        | set v         |
    pub fn write(&self, policy: BlankPolicy) -> FieldWrite<'_> {
        match (self, policy) {
            (Self::Value(v), _) => FieldWrite::Set(v),
            (Self::Absent, _) | (Self::Null | Self::Blank, BlankPolicy::KeepTarget) => {
                FieldWrite::Leave
            }
            (Self::Null | Self::Blank, BlankPolicy::ClearTarget) => FieldWrite::Clear,
        }
    }
}

/// A field as a JSON member is read with `serde(default)` and `Option<Option<String>>`:
/// `None` is absent, `Some(None)` is null.
impl From<Option<Option<String>>> for Field {
    fn from(sent: Option<Option<String>>) -> Self {
        match sent {
            None => Self::Absent,
            Some(None) => Self::Null,
            Some(Some(text)) => Self::from_text(text),
        }
    }
}

/// What a source without a value for a field does to the target's value, chosen per target
/// field by the mapping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BlankPolicy {
    /// Keep what the target has. The default: targets hold data the source never had (a tax
    /// id typed by accounting in the ERP), and a blank in the source usually means "nobody
    /// filled it in here", not "delete it there".
    #[default]
    KeepTarget,
    /// Clear the target too: the source is the system of record for the field, and emptying
    /// it there is a real edit (a contact's email removed at the customer's request) that
    /// must reach every copy.
    ClearTarget,
}

/// The decision for one field of a target write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldWrite<'a> {
    /// Write this value.
    Set(&'a str),
    /// Write the target's empty value (`null`, `""` or `false`, as its connector spells it).
    Clear,
    /// Leave the field out of the write.
    Leave,
}

impl FieldWrite<'_> {
    /// `Leave` when the target already holds the outcome (`current` is its value, `None` or
    /// blank when empty), so that a sync writes only real changes: a no-op write still fires
    /// the target's change webhooks and can echo back to the source.
    #[must_use]
    pub fn leave_if_unchanged(self, current: Option<&str>) -> Self {
        let current = current.filter(|c| !c.trim().is_empty());
        match (self, current) {
            (Self::Set(v), Some(c)) if v == c => Self::Leave,
            (Self::Clear, None) => Self::Leave,
            (write, _) => write,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object() -> Map<String, Value> {
        json!({
            "name": "Distribuidora Andina SAS",
            "padded": "  Andina ",
            "null": null,
            "empty": "",
            "spaces": " \t",
            "false": false,
            "true": true,
            "id": 49,
            "ratio": 0.5,
            "country_id": [49, "Colombia"],
            "address": {"city": "Bogotá"},
        })
        .as_object()
        .cloned()
        .expect("a JSON object literal")
    }

    #[test]
    fn json_members_are_read_by_presence() {
        let value = |v: &str| Field::Value(v.to_owned());
        let cases = [
            ("missing", NullStyle::Null, Field::Absent),
            ("missing", NullStyle::NullOrFalse, Field::Absent),
            ("name", NullStyle::Null, value("Distribuidora Andina SAS")),
            ("padded", NullStyle::Null, value("  Andina ")),
            ("null", NullStyle::Null, Field::Null),
            ("null", NullStyle::NullOrFalse, Field::Null),
            ("empty", NullStyle::Null, Field::Blank),
            ("spaces", NullStyle::NullOrFalse, Field::Blank),
            ("false", NullStyle::Null, value("false")),
            ("false", NullStyle::NullOrFalse, Field::Null),
            ("true", NullStyle::NullOrFalse, value("true")),
            ("id", NullStyle::NullOrFalse, value("49")),
            ("ratio", NullStyle::Null, value("0.5")),
        ];
        let object = object();
        for (name, nulls, expected) in cases {
            assert_eq!(
                Field::from_json(&object, name, nulls),
                Ok(expected),
                "{name} with {nulls:?}"
            );
        }
    }

    #[test]
    fn lists_and_objects_are_not_field_values() {
        let object = object();
        for name in ["country_id", "address"] {
            let error =
                Field::from_json(&object, name, NullStyle::NullOrFalse).expect_err("not a scalar");
            assert_eq!(error.field, name);
            assert!(!error.reason.contains("Colombia"), "{error}");
        }
    }

    #[test]
    fn double_options_are_read_by_presence() {
        let cases = [
            (None, Field::Absent),
            (Some(None), Field::Null),
            (Some(Some(String::new())), Field::Blank),
            (Some(Some("\u{a0} ".to_owned())), Field::Blank),
            (Some(Some("x".to_owned())), Field::Value("x".to_owned())),
        ];
        for (sent, expected) in cases {
            assert_eq!(Field::from(sent.clone()), expected, "{sent:?}");
        }
    }

    #[test]
    fn the_policy_decides_what_a_missing_value_does_to_the_target() {
        let andina = Field::Value("Andina".to_owned());
        let cases = [
            (&Field::Absent, BlankPolicy::KeepTarget, FieldWrite::Leave),
            (&Field::Absent, BlankPolicy::ClearTarget, FieldWrite::Leave),
            (&Field::Null, BlankPolicy::KeepTarget, FieldWrite::Leave),
            (&Field::Null, BlankPolicy::ClearTarget, FieldWrite::Clear),
            (&Field::Blank, BlankPolicy::KeepTarget, FieldWrite::Leave),
            (&Field::Blank, BlankPolicy::ClearTarget, FieldWrite::Clear),
            (&andina, BlankPolicy::KeepTarget, FieldWrite::Set("Andina")),
            (&andina, BlankPolicy::ClearTarget, FieldWrite::Set("Andina")),
        ];
        for (field, policy, expected) in cases {
            assert_eq!(field.write(policy), expected, "{field:?} with {policy:?}");
        }
        assert_eq!(BlankPolicy::default(), BlankPolicy::KeepTarget);
    }

    #[test]
    fn writes_that_change_nothing_are_left_out() {
        let cases = [
            (FieldWrite::Set("Andina"), Some("Andina"), FieldWrite::Leave),
            (
                FieldWrite::Set("Andina"),
                Some("ANDINA"),
                FieldWrite::Set("Andina"),
            ),
            (FieldWrite::Set("Andina"), None, FieldWrite::Set("Andina")),
            (FieldWrite::Clear, None, FieldWrite::Leave),
            (FieldWrite::Clear, Some(" "), FieldWrite::Leave),
            (FieldWrite::Clear, Some("Andina"), FieldWrite::Clear),
            (FieldWrite::Leave, Some("Andina"), FieldWrite::Leave),
            (FieldWrite::Leave, None, FieldWrite::Leave),
        ];
        for (write, current, expected) in cases {
            assert_eq!(
                write.leave_if_unchanged(current),
                expected,
                "{write:?} over {current:?}"
            );
        }
    }

    #[test]
    fn values_are_read_out_only_when_present() {
        assert_eq!(Field::Value("x".to_owned()).value(), Some("x"));
        assert_eq!(Field::Blank.value(), None);
        assert_eq!(Field::Null.into_value(), None);
        assert_eq!(
            Field::Value("x".to_owned()).into_value().as_deref(),
            Some("x")
        );
    }
}
