//! Reading the members of a record as `read`/`search_read` return it (`false` for empty,
//! many2one as `[id, "name"]`), and writing amounts as the floats Odoo's fields take.
//!
//! Every reader records a failure as a `FieldError` naming the Odoo field and what to do, never
//! the value, and returns `None`, so that a mapping reports every bad field at once.

use crate::domain::datetime::Date;
use crate::domain::money::{Currency, Money};
use crate::domain::{ErpId, FieldError};
use crate::mapping::field::{Field, NullStyle};
use serde_json::{Map, Number, Value};

pub(super) type Record = Map<String, Value>;

pub(super) const NOT_READ: &str = "is missing from the record: add it to the fields read";

/// The failing fields of one record.
#[derive(Debug, Default)]
pub(super) struct Problems(pub(super) Vec<FieldError>);

impl Problems {
    pub(super) fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError::new(field, reason));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A text field (`false` is no value), untrimmed: the canonical parsers clean it.
    pub(super) fn text(&mut self, record: &Record, name: &str) -> Option<String> {
        Field::from_json(record, name, NullStyle::NullOrFalse)
            .map_err(|e| self.0.push(e))
            .ok()
            .and_then(Field::into_value)
    }

    /// A text field that must have a value.
    pub(super) fn required_text(&mut self, record: &Record, name: &str) -> Option<String> {
        match Field::from_json(record, name, NullStyle::NullOrFalse) {
            Ok(Field::Value(v)) => Some(v),
            Ok(Field::Absent) => {
                self.push(name, NOT_READ);
                None
            }
            Ok(Field::Null | Field::Blank) => {
                self.push(name, "is empty in Odoo: fill it in");
                None
            }
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    /// A true boolean field, whose `false` is a value.
    pub(super) fn boolean(&mut self, record: &Record, name: &str) -> Option<bool> {
        match record.get(name) {
            Some(Value::Bool(b)) => Some(*b),
            None => {
                self.push(name, NOT_READ);
                None
            }
            Some(_) => {
                self.push(name, "is not a boolean");
                None
            }
        }
    }

    /// The record's own `id`, as an `ErpId`.
    pub(super) fn id(&mut self, record: &Record) -> Option<ErpId> {
        match record.get("id") {
            Some(Value::Number(n)) if n.as_i64().is_some_and(|id| id > 0) => {
                ErpId::parse(&n.to_string()).ok()
            }
            None => {
                self.push("id", NOT_READ);
                None
            }
            Some(_) => {
                self.push("id", "is not a positive integer record id");
                None
            }
        }
    }

    /// A many2one: `None` when empty (`false`), not read, or malformed (then also a problem).
    pub(super) fn many2one(&mut self, record: &Record, name: &str) -> Option<Many2one> {
        match record.get(name) {
            None | Some(Value::Null | Value::Bool(false)) => None,
            Some(value) => Many2one::from_json(value).or_else(|| {
                self.push(name, "is not a many2one ([id, \"name\"], an id or false)");
                None
            }),
        }
    }

    /// A many2one that must be set.
    pub(super) fn required_many2one(&mut self, record: &Record, name: &str) -> Option<Many2one> {
        let before = self.0.len();
        let value = self.many2one(record, name);
        if value.is_none() && self.0.len() == before {
            let reason = if record.contains_key(name) {
                "is empty in Odoo: set it"
            } else {
                NOT_READ
            };
            self.push(name, reason);
        }
        value
    }

    /// A currency many2one: `res.currency` records are named by their ISO 4217 code.
    pub(super) fn currency(&mut self, record: &Record, name: &str) -> Option<Currency> {
        let currency = self.required_many2one(record, name)?;
        match currency.name.as_deref().map(Currency::parse) {
            Some(Ok(c)) => Some(c),
            Some(Err(_)) => {
                self.push(name, "names a currency puente does not know");
                None
            }
            None => {
                self.push(
                    name,
                    "was read without its name: read it with the default load",
                );
                None
            }
        }
    }

    /// A monetary field in `currency`, read from Odoo's float.
    pub(super) fn amount(
        &mut self,
        record: &Record,
        name: &str,
        currency: Currency,
    ) -> Option<Money> {
        match record.get(name) {
            None => {
                self.push(name, NOT_READ);
                None
            }
            Some(value) => Money::from_json(value, currency)
                .map_err(|e| self.push(name, e.to_string()))
                .ok(),
        }
    }

    /// A date field: `false` is no date.
    pub(super) fn date(&mut self, record: &Record, name: &str) -> Option<Date> {
        Field::from_json(record, name, NullStyle::NullOrFalse)
            .map_err(|e| self.0.push(e))
            .ok()
            .and_then(Field::into_value)
            .and_then(|raw| {
                Date::parse_iso(raw.trim())
                    .map_err(|_| self.push(name, "is not a date like 2025-03-14"))
                    .ok()
            })
    }

    /// A date field that must be set.
    pub(super) fn required_date(&mut self, record: &Record, name: &str) -> Option<Date> {
        let before = self.0.len();
        let value = self.date(record, name);
        if value.is_none() && self.0.len() == before {
            let reason = if record.contains_key(name) {
                "is empty in Odoo: set it"
            } else {
                NOT_READ
            };
            self.push(name, reason);
        }
        value
    }

    /// A many2many or one2many read as a list of ids.
    pub(super) fn ids(&mut self, record: &Record, name: &str) -> Option<Vec<i64>> {
        match record.get(name) {
            None => {
                self.push(name, NOT_READ);
                None
            }
            Some(Value::Bool(false)) => Some(Vec::new()),
            Some(Value::Array(items)) => {
                let ids: Option<Vec<i64>> = items.iter().map(Value::as_i64).collect();
                if ids.is_none() {
                    self.push(name, "is not a list of record ids");
                }
                ids
            }
            Some(_) => {
                self.push(name, "is not a list of record ids");
                None
            }
        }
    }
}

/// A many2one value: the id, and the display name when read with the default load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Many2one {
    pub(super) id: i64,
    pub(super) name: Option<String>,
}

impl Many2one {
    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) => n.as_i64().map(|id| Self { id, name: None }),
            Value::Array(pair) => match pair.as_slice() {
                [Value::Number(id), Value::String(name)] => id.as_i64().map(|id| Self {
                    id,
                    name: Some(name.clone()),
                }),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A decimal (`to_decimal_string()` of an amount, a quantity or a percent) as a JSON number,
/// when the float nearest to it prints back as the same decimal: that float is what Python's
/// `float()` makes of our digits, so Odoo reads (and rounds at the currency's precision)
/// exactly our value. `None` otherwise (amounts around 2^53 minor units and up): a string would
/// not help, as Odoo's float fields convert it with `float()` to the same inexact double.
pub(super) fn exact_float(decimal: &str) -> Option<Value> {
    let float: f64 = decimal.trim().parse().ok()?;
    let shortest = format!("{float}");
    (canonical(&shortest) == canonical(decimal))
        .then(|| Number::from_f64(float).map(Value::Number))
        .flatten()
}

/// Sign, integer digits without leading zeros, fraction without trailing zeros.
fn canonical(decimal: &str) -> (bool, String, String) {
    let decimal = decimal.trim();
    let (negative, body) = match decimal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, decimal),
    };
    let (integer, fraction) = body.split_once('.').unwrap_or((body, ""));
    let integer = integer.trim_start_matches('0').to_owned();
    let fraction = fraction.trim_end_matches('0').to_owned();
    let zero = integer.is_empty() && fraction.is_empty();
    (negative && !zero, integer, fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_go_out_as_floats_only_when_exact() {
        let cases = [
            ("500000.00", Some(json!(500000.0))),
            ("1190000.00", Some(json!(1190000.0))),
            ("0.10", Some(json!(0.1))),
            ("333.33", Some(json!(333.33))),
            ("-5.00", Some(json!(-5.0))),
            ("0.00", Some(json!(0.0))),
            ("2", Some(json!(2.0))),
            ("0.414", Some(json!(0.414))),
            ("123456789012345678.00", None),
        ];
        for (decimal, expected) in cases {
            assert_eq!(exact_float(decimal), expected, "{decimal}");
        }
    }

    #[test]
    fn many2one_values_are_read_as_pairs_ids_or_false() {
        let record = json!({"a": [49, "Colombia"], "b": 49, "c": false, "d": "49", "e": [49]});
        let record = record.as_object().cloned().expect("object");
        let mut problems = Problems::default();
        assert_eq!(
            problems.many2one(&record, "a"),
            Some(Many2one {
                id: 49,
                name: Some("Colombia".into())
            })
        );
        assert_eq!(
            problems.many2one(&record, "b"),
            Some(Many2one { id: 49, name: None })
        );
        assert_eq!(problems.many2one(&record, "c"), None);
        assert_eq!(problems.many2one(&record, "missing"), None);
        assert!(problems.is_empty());
        assert_eq!(problems.many2one(&record, "d"), None);
        assert_eq!(problems.many2one(&record, "e"), None);
        let failed: Vec<&str> = problems.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(failed, ["d", "e"]);
    }
}
