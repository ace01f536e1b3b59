//! Odoo 17's invoicing and sales models for the simulator: `res.currency`, `account.tax`,
//! `product.pricelist`, `account.payment.term` (fixed rows), `product.product`, `account.move`
//! with its `account.move.line`s (customer invoices and credit notes), `sale.order` with its
//! `sale.order.line`s, and `account.payment`.
//!
//! Products are priced in the company's currency and searched like partners (domains, `order`,
//! archived ones with `active_test` false or an `active` term), so the `(write_date, id)` keyset
//! of a catalogue poll pages as it does on Odoo; a user's edit of a product moves its
//! `write_date`.
//!
//! Amounts are computed like Odoo's `round_per_line` (or `round_globally`) tax rounding, half-up
//! like `float_round`, in exact integer minor units so the totals never drift. Payments and credit
//! notes are made by the accountant (test handles), which is how they reach a real Odoo. Every
//! change of an invoice's `state`, `payment_state` or `amount_residual` fires the automation
//! rule's "Send Webhook Notification" when a URL is configured: unsigned JSON, 1 s timeout.

use super::{OdooError, OdooSim, OdooState, compare, matches_domain, odoo_now};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// `account.payment.term` rows: (id, name), the terms the `account` module installs, in the
/// order its data file loads them.
const PAYMENT_TERMS: [(i64, &str); 10] = [
    (1, "Immediate Payment"),
    (2, "15 Days"),
    (3, "21 Days"),
    (4, "30 Days"),
    (5, "45 Days"),
    (6, "End of Following Month"),
    (7, "10 Days after End of Next Month"),
    (8, "30% Now, Balance 60 Days"),
    (9, "2/7 Net 30"),
    (10, "90 days, on the 10th"),
];

/// `res.currency` rows: (id, name, decimal places).
const CURRENCIES: [(i64, &str, u32); 7] = [
    (1, "USD", 2),
    (2, "EUR", 2),
    (8, "COP", 2),
    (19, "CLP", 0),
    (33, "MXN", 2),
    (6, "PEN", 2),
    (7, "BRL", 2),
];

/// The company's currency (a Colombian company): the default of invoices and pricelist-less orders.
const COMPANY_CURRENCY: i64 = 8;

/// `account.tax` rows: (id, name, percent, type_tax_use). All are `amount_type` "percent".
const TAXES: [(i64, &str, f64, &str); 5] = [
    (12, "IVA 19%", 19.0, "sale"),
    (13, "IVA 5%", 5.0, "sale"),
    (14, "IVA Excluido 0%", 0.0, "sale"),
    (15, "IVA 19% Compras", 19.0, "purchase"),
    (17, "IVA 16%", 16.0, "sale"),
];

/// `product.pricelist` rows: (id, name, currency id).
const PRICELISTS: [(i64, &str, i64); 4] = [
    (1, "Tarifa COP", 8),
    (2, "Tarifa USD", 1),
    (3, "Tarifa CLP", 19),
    (4, "Tarifa MXN", 33),
];

const CURRENCY_FIELDS: [&str; 4] = ["id", "name", "decimal_places", "active"];
const TAX_FIELDS: [&str; 6] = [
    "id",
    "name",
    "amount",
    "amount_type",
    "type_tax_use",
    "active",
];
const PRICELIST_FIELDS: [&str; 4] = ["id", "name", "currency_id", "active"];
const PAYMENT_TERM_FIELDS: [&str; 3] = ["id", "name", "active"];
const PRODUCT_FIELDS: [&str; 11] = [
    "id",
    "name",
    "default_code",
    "list_price",
    "currency_id",
    "description_sale",
    "taxes_id",
    "active",
    "type",
    "write_date",
    "create_date",
];
const MOVE_FIELDS: [&str; 22] = [
    "id",
    "name",
    "move_type",
    "state",
    "ref",
    "payment_reference",
    "invoice_origin",
    "narration",
    "partner_id",
    "currency_id",
    "invoice_date",
    "invoice_date_due",
    "amount_untaxed",
    "amount_tax",
    "amount_total",
    "amount_residual",
    "payment_state",
    "reversed_entry_id",
    "invoice_line_ids",
    "write_date",
    "create_date",
    "display_name",
];
const MOVE_LINE_FIELDS: [&str; 12] = [
    "id",
    "move_id",
    "product_id",
    "name",
    "quantity",
    "price_unit",
    "discount",
    "tax_ids",
    "price_subtotal",
    "price_total",
    "write_date",
    "create_date",
];
const ORDER_FIELDS: [&str; 16] = [
    "id",
    "name",
    "partner_id",
    "client_order_ref",
    "pricelist_id",
    "currency_id",
    "date_order",
    "validity_date",
    "state",
    "order_line",
    "amount_untaxed",
    "amount_tax",
    "amount_total",
    "write_date",
    "create_date",
    "display_name",
];
const ORDER_LINE_FIELDS: [&str; 12] = [
    "id",
    "order_id",
    "product_id",
    "name",
    "product_uom_qty",
    "price_unit",
    "discount",
    "tax_id",
    "price_subtotal",
    "price_total",
    "write_date",
    "create_date",
];
const PAYMENT_FIELDS: [&str; 14] = [
    "id",
    "name",
    "payment_type",
    "partner_type",
    "partner_id",
    "amount",
    "currency_id",
    "date",
    "memo",
    "state",
    "reconciled_invoice_ids",
    "write_date",
    "create_date",
    "display_name",
];

/// What a posted (or cancelled) move still accepts: the fields that carry no accounting.
const POSTED_WRITABLE: [&str; 5] = [
    "ref",
    "narration",
    "invoice_date_due",
    "payment_reference",
    "invoice_origin",
];

/// Real Odoo fields the simulator does not model: accepted and ignored, as a default would be.
const IGNORED_MOVE_FIELDS: [&str; 8] = [
    "journal_id",
    "company_id",
    "invoice_payment_term_id",
    "invoice_user_id",
    "fiscal_position_id",
    "partner_shipping_id",
    "date",
    "auto_post",
];
const IGNORED_LINE_FIELDS: [&str; 6] = [
    "account_id",
    "sequence",
    "product_uom_id",
    "product_uom",
    "analytic_distribution",
    "display_type",
];
/// Computed, read-only fields: Odoo's ORM recomputes them, so values sent for them do nothing.
const COMPUTED_FIELDS: [&str; 10] = [
    "id",
    "amount_untaxed",
    "amount_tax",
    "amount_total",
    "amount_residual",
    "payment_state",
    "write_date",
    "create_date",
    "display_name",
    "state",
];

/// The automation rule's action name as the webhook payload carries it.
const WEBHOOK_ACTION: &str = "puente: invoice changed(#12)";

/// The invoicing and sales records of one simulated database.
#[derive(Debug, Clone, Default)]
pub(super) struct Books {
    products: BTreeMap<i64, Product>,
    moves: BTreeMap<i64, Move>,
    move_lines: BTreeMap<i64, Line>,
    orders: BTreeMap<i64, Order>,
    order_lines: BTreeMap<i64, Line>,
    payments: BTreeMap<i64, Payment>,
    /// Last id handed out, by model: ids are never reused, as with PostgreSQL sequences.
    last_ids: BTreeMap<&'static str, i64>,
    /// Last number by (prefix, year): `INV/2025/00001`, `RINV/2025/00001`, `S00001` (year 0).
    sequences: BTreeMap<(&'static str, i64), u32>,
    /// `tax_calculation_rounding_method == "round_globally"` instead of `round_per_line`.
    round_globally: bool,
}

#[derive(Debug, Clone)]
struct Product {
    id: i64,
    name: String,
    default_code: String,
    list_price: f64,
    /// Empty when unset (read as `false`).
    description_sale: String,
    taxes_id: Vec<i64>,
    active: bool,
    write_date: String,
    create_date: String,
}

impl Product {
    /// `display_name`: `[CODE] Name`, also the default label of the lines that sell it.
    fn display_name(&self) -> String {
        if self.default_code.is_empty() {
            self.name.clone()
        } else {
            format!("[{}] {}", self.default_code, self.name)
        }
    }
}

/// An invoice line or a sale order line: the same amounts, under different field names.
#[derive(Debug, Clone)]
struct Line {
    id: i64,
    parent: i64,
    product_id: Option<i64>,
    name: String,
    quantity: f64,
    price_unit: f64,
    discount: f64,
    tax_ids: Vec<i64>,
    write_date: String,
    create_date: String,
}

#[derive(Debug, Clone)]
struct Move {
    id: i64,
    name: String,
    move_type: String,
    state: String,
    ref_: Option<String>,
    payment_reference: Option<String>,
    invoice_origin: Option<String>,
    narration: Option<String>,
    partner_id: Option<i64>,
    currency_id: i64,
    invoice_date: Option<String>,
    invoice_date_due: Option<String>,
    reversed_entry_id: Option<i64>,
    line_ids: Vec<i64>,
    /// Minor units reconciled with payments.
    paid: i128,
    /// Minor units reconciled with the reversal (credit note, or the invoice for a credit note).
    reversed: i128,
    write_date: String,
    create_date: String,
}

#[derive(Debug, Clone)]
struct Order {
    id: i64,
    name: String,
    partner_id: i64,
    client_order_ref: Option<String>,
    pricelist_id: Option<i64>,
    date_order: String,
    validity_date: Option<String>,
    state: String,
    line_ids: Vec<i64>,
    write_date: String,
    create_date: String,
}

#[derive(Debug, Clone)]
struct Payment {
    id: i64,
    name: String,
    partner_id: Option<i64>,
    amount: i128,
    currency_id: i64,
    date: String,
    memo: String,
    move_id: i64,
    create_date: String,
}

/// Which one2many a line belongs to: names of its model and fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Invoice,
    Sale,
}

impl Kind {
    fn line_model(self) -> &'static str {
        match self {
            Kind::Invoice => "account.move.line",
            Kind::Sale => "sale.order.line",
        }
    }
    fn qty_field(self) -> &'static str {
        match self {
            Kind::Invoice => "quantity",
            Kind::Sale => "product_uom_qty",
        }
    }
    fn tax_field(self) -> &'static str {
        match self {
            Kind::Invoice => "tax_ids",
            Kind::Sale => "tax_id",
        }
    }
}

/// A document's amounts in minor units of its currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Amounts {
    untaxed: i128,
    tax: i128,
    /// By line id: (price_subtotal, price_total).
    lines: BTreeMap<i64, (i128, i128)>,
}

impl Amounts {
    fn total(&self) -> i128 {
        self.untaxed + self.tax
    }
}

// ---------------------------------------------------------------------------------------------
// Exact decimal arithmetic.

/// An exact decimal `m / 10^scale`, from a float's shortest representation (what the caller
/// typed: `0.1` is one tenth, not 0.1000000000000000055…), as Odoo's `float_round` intends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dec {
    m: i128,
    scale: u32,
}

impl Dec {
    /// `None` for values beyond 38 digits (or not finite): callers fall back to floats.
    fn from_f64(x: f64) -> Option<Dec> {
        if !x.is_finite() {
            return None;
        }
        let text = format!("{x}");
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.as_str()),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        // Twelve places are beyond any price or quantity precision Odoo stores.
        let frac = &frac[..frac.len().min(12)];
        let m = format!("{int}{frac}").parse::<i128>().ok()?;
        Some(Dec {
            m: if negative { -m } else { m },
            scale: frac.len() as u32,
        })
    }

    fn minor(m: i128, digits: u32) -> Dec {
        Dec { m, scale: digits }
    }

    fn mul(self, other: Dec) -> Option<Dec> {
        Some(Dec {
            m: self.m.checked_mul(other.m)?,
            scale: self.scale + other.scale,
        })
    }

    fn sub(self, other: Dec) -> Option<Dec> {
        let scale = self.scale.max(other.scale);
        let a = self
            .m
            .checked_mul(10i128.checked_pow(scale - self.scale)?)?;
        let b = other
            .m
            .checked_mul(10i128.checked_pow(scale - other.scale)?)?;
        Some(Dec {
            m: a.checked_sub(b)?,
            scale,
        })
    }

    /// Divides by 100 (a percentage), exactly.
    fn percent(self) -> Dec {
        Dec {
            m: self.m,
            scale: self.scale + 2,
        }
    }

    /// Rounds half away from zero (Odoo's HALF-UP) to `digits` places, in minor units.
    fn round(self, digits: u32) -> Option<i128> {
        if self.scale <= digits {
            return self.m.checked_mul(10i128.checked_pow(digits - self.scale)?);
        }
        let div = 10i128.checked_pow(self.scale - digits)?;
        let (q, r) = (self.m / div, self.m % div);
        Some(if 2 * r.abs() >= div {
            q + self.m.signum()
        } else {
            q
        })
    }
}

/// Rounds `x` half-up to `digits` places in minor units (a float fallback for absurd magnitudes).
fn round_f64(x: f64, digits: u32) -> i128 {
    Dec::from_f64(x)
        .and_then(|d| d.round(digits))
        .unwrap_or_else(|| (x * 10f64.powi(digits as i32)).round() as i128)
}

fn money(minor: i128, digits: u32) -> Value {
    json!(minor as f64 / 10f64.powi(digits as i32))
}

// ---------------------------------------------------------------------------------------------
// Fixed tables.

fn currency_digits(id: i64) -> u32 {
    CURRENCIES
        .iter()
        .find(|(cid, _, _)| *cid == id)
        .map_or(2, |(_, _, d)| *d)
}

fn currency_name(id: i64) -> String {
    CURRENCIES
        .iter()
        .find(|(cid, _, _)| *cid == id)
        .map_or_else(|| id.to_string(), |(_, n, _)| (*n).to_owned())
}

fn tax_percent(id: i64) -> f64 {
    TAXES
        .iter()
        .find(|(tid, ..)| *tid == id)
        .map_or(0.0, |(_, _, amount, _)| *amount)
}

/// The name of an `account.payment.term`, `None` for an id that does not exist.
pub(super) fn payment_term_name(id: i64) -> Option<&'static str> {
    PAYMENT_TERMS
        .iter()
        .find(|(tid, _)| *tid == id)
        .map(|(_, name)| *name)
}

fn pricelist_currency(id: i64) -> Option<i64> {
    PRICELISTS
        .iter()
        .find(|(pid, _, _)| *pid == id)
        .map(|(_, _, c)| *c)
}

fn m2o(id: Option<i64>, name: impl FnOnce(i64) -> String) -> Value {
    match id {
        Some(id) => json!([id, name(id)]),
        None => Value::Bool(false),
    }
}

fn text(value: &Option<String>) -> Value {
    match value {
        Some(s) => json!(s),
        None => Value::Bool(false),
    }
}

fn row(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn fixed_rows(model: &str) -> Option<Vec<Map<String, Value>>> {
    let rows = match model {
        "res.currency" => CURRENCIES
            .iter()
            .map(|(id, name, digits)| {
                row(vec![
                    ("id", json!(id)),
                    ("name", json!(name)),
                    ("display_name", json!(name)),
                    ("decimal_places", json!(digits)),
                    ("active", json!(true)),
                ])
            })
            .collect(),
        "account.tax" => TAXES
            .iter()
            .map(|(id, name, amount, usage)| {
                row(vec![
                    ("id", json!(id)),
                    ("name", json!(name)),
                    ("display_name", json!(name)),
                    ("amount", json!(amount)),
                    ("amount_type", json!("percent")),
                    ("type_tax_use", json!(usage)),
                    ("active", json!(true)),
                ])
            })
            .collect(),
        "product.pricelist" => PRICELISTS
            .iter()
            .map(|(id, name, currency)| {
                row(vec![
                    ("id", json!(id)),
                    ("name", json!(name)),
                    (
                        "display_name",
                        json!(format!("{name} ({})", currency_name(*currency))),
                    ),
                    ("currency_id", json!([currency, currency_name(*currency)])),
                    ("active", json!(true)),
                ])
            })
            .collect(),
        "account.payment.term" => PAYMENT_TERMS
            .iter()
            .map(|(id, name)| {
                row(vec![
                    ("id", json!(id)),
                    ("name", json!(name)),
                    ("display_name", json!(name)),
                    ("active", json!(true)),
                ])
            })
            .collect(),
        _ => return None,
    };
    Some(rows)
}

// ---------------------------------------------------------------------------------------------
// Errors.

fn missing(model: &str, id: impl std::fmt::Display) -> OdooError {
    OdooError::new(
        "odoo.exceptions.MissingError",
        format!("Record does not exist or has been deleted.\n(Record: {model}({id},), User: 2)"),
    )
}

fn invalid_field(model: &str, field: &str) -> OdooError {
    OdooError::new(
        "builtins.ValueError",
        format!("Invalid field '{field}' on model '{model}'"),
    )
}

fn user_error(message: impl Into<String>) -> OdooError {
    OdooError::new("odoo.exceptions.UserError", message)
}

fn no_method(model: &str, method: &str) -> OdooError {
    OdooError::new(
        "builtins.AttributeError",
        format!("The method '{model}.{method}' does not exist"),
    )
}

fn poisoned() -> OdooError {
    OdooError::new("builtins.RuntimeError", "lock poisoned")
}

// ---------------------------------------------------------------------------------------------
// Value parsing.

fn is_empty(value: &Value) -> bool {
    matches!(value, Value::Null | Value::Bool(false))
}

fn as_number(model: &str, field: &str, value: &Value) -> Result<f64, OdooError> {
    if is_empty(value) {
        return Ok(0.0);
    }
    value.as_f64().ok_or_else(|| {
        OdooError::new(
            "builtins.ValueError",
            format!("could not convert {value} to float for field '{field}' on '{model}'"),
        )
    })
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::Null | Value::Bool(false) => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|t| t.parse::<u32>().ok());
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// A `Date` field's value: `false` or `"YYYY-MM-DD"`, checked like `Date.to_date`.
fn as_date(value: &Value) -> Result<Option<String>, OdooError> {
    match as_text(value) {
        None => Ok(None),
        Some(s) if valid_date(&s) => Ok(Some(s)),
        Some(s) => Err(OdooError::new(
            "builtins.ValueError",
            format!("time data '{s}' does not match format '%Y-%m-%d'"),
        )),
    }
}

/// A `Datetime` field's value: `"YYYY-MM-DD HH:MM:SS"` (a bare date means midnight).
fn as_datetime(value: &Value) -> Result<Option<String>, OdooError> {
    let Some(s) = as_text(value) else {
        return Ok(None);
    };
    let date_ok = s.get(..10).is_some_and(valid_date);
    let time_ok = match s.get(10..) {
        Some("") => true,
        Some(t) => {
            t.len() == 9
                && t.starts_with(' ')
                && t[1..].split(':').count() == 3
                && t[1..]
                    .split(':')
                    .all(|p| p.len() == 2 && p.parse::<u32>().is_ok())
        }
        None => false,
    };
    if date_ok && time_ok {
        Ok(Some(if s.len() == 10 {
            format!("{s} 00:00:00")
        } else {
            s
        }))
    } else {
        Err(OdooError::new(
            "builtins.ValueError",
            format!("time data '{s}' does not match format '%Y-%m-%d %H:%M:%S'"),
        ))
    }
}

fn today() -> String {
    odoo_now().get(..10).unwrap_or("1970-01-01").to_owned()
}

fn year_of(date: &str) -> i64 {
    date.get(..4).and_then(|y| y.parse().ok()).unwrap_or(1970)
}

fn ids_of(value: Option<&Value>) -> Vec<i64> {
    match value {
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_i64).collect(),
        Some(v) => v.as_i64().into_iter().collect(),
        None => Vec::new(),
    }
}

/// Applies many2many commands (`[[6, 0, ids]]`, `[[4, id]]`, `[[3, id]]`, `[[5]]`, or a bare id
/// list) to `current`, then checks every id exists in `known`.
fn apply_m2m(
    current: &mut Vec<i64>,
    value: &Value,
    model: &str,
    known: impl Fn(i64) -> bool,
) -> Result<(), OdooError> {
    let bad = || {
        OdooError::new(
            "builtins.ValueError",
            format!("Wrong value for {model}: {value}"),
        )
    };
    let items = match value {
        Value::Null | Value::Bool(false) => {
            current.clear();
            return Ok(());
        }
        Value::Array(items) => items,
        _ => return Err(bad()),
    };
    if items.iter().all(Value::is_i64) {
        *current = ids_of(Some(value));
    } else {
        for command in items {
            let c = command.as_array().ok_or_else(bad)?;
            match c.first().and_then(Value::as_i64) {
                Some(6) => *current = ids_of(c.get(2)),
                Some(4) => {
                    let id = c.get(1).and_then(Value::as_i64).ok_or_else(bad)?;
                    if !current.contains(&id) {
                        current.push(id);
                    }
                }
                Some(3) => {
                    let id = c.get(1).and_then(Value::as_i64).ok_or_else(bad)?;
                    current.retain(|t| *t != id);
                }
                Some(5) => current.clear(),
                _ => return Err(bad()),
            }
        }
    }
    match current.iter().find(|id| !known(**id)) {
        Some(id) => Err(missing(model, id)),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Generic reading: search, search_read, search_count, read over rows rendered for `read`.

/// One model's rows, every field rendered as `read` returns it, and how to query them.
struct Table<'a> {
    model: &'a str,
    fields: &'a [&'a str],
    many2one: &'a [&'a str],
    default_order: &'a str,
    rows: Vec<Map<String, Value>>,
}

/// A row as domains and `order` see it: many2one values are bare ids.
fn domain_view(row: &Map<String, Value>, many2one: &[&str]) -> Map<String, Value> {
    let mut view = row.clone();
    for field in many2one {
        if let Some(Value::Array(pair)) = row.get(*field)
            && let Some(id) = pair.first()
        {
            view.insert((*field).to_owned(), id.clone());
        }
    }
    view
}

fn active_test(kwargs: &Map<String, Value>) -> bool {
    kwargs
        .get("context")
        .and_then(|c| c.get("active_test"))
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

fn mentions_active(domain: &Value) -> bool {
    domain.as_array().is_some_and(|items| {
        items.iter().any(|leaf| {
            leaf.as_array()
                .and_then(|l| l.first())
                .and_then(Value::as_str)
                == Some("active")
        })
    })
}

/// Compares two values as PostgreSQL orders them: NULL (`false`) after everything.
pub(super) fn order_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let present = |v: Option<&Value>| v.filter(|v| !is_empty(v)).cloned();
    match (present(a), present(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => compare(&x, &y).unwrap_or(Ordering::Equal),
    }
}

/// An `order` clause (`"write_date asc, id asc"`) as (field, descending) keys, each checked
/// against the model's `fields`.
pub(super) fn parse_order(order: &str, fields: &[&str]) -> Result<Vec<(String, bool)>, OdooError> {
    order
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut words = part.split_whitespace();
            let field = words.next().unwrap_or_default().to_owned();
            let descending = match words.next().map(str::to_lowercase).as_deref() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(_) => {
                    return Err(OdooError::new(
                        "builtins.ValueError",
                        format!("Invalid \"order\" specified ({order})."),
                    ));
                }
            };
            if fields.contains(&field.as_str()) {
                Ok((field, descending))
            } else {
                Err(OdooError::new(
                    "builtins.ValueError",
                    format!("Invalid \"order\" specified ({order})."),
                ))
            }
        })
        .collect()
}

/// The fields a `read` asks for (all stored ones when none), each checked against the model.
fn requested_fields(table: &Table, fields: Option<&Value>) -> Result<Vec<String>, OdooError> {
    let asked: Vec<String> = fields
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if asked.is_empty() {
        return Ok(table
            .fields
            .iter()
            .filter(|f| **f != "display_name")
            .map(|f| (*f).to_owned())
            .collect());
    }
    match asked.iter().find(|f| !table.fields.contains(&f.as_str())) {
        Some(f) => Err(invalid_field(table.model, f)),
        None => Ok(asked),
    }
}

fn pick(row: &Map<String, Value>, fields: &[String]) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), row.get("id").cloned().unwrap_or(Value::Null));
    for f in fields {
        out.insert(f.clone(), row.get(f).cloned().unwrap_or(Value::Bool(false)));
    }
    Value::Object(out)
}

fn serve_read(
    table: Table,
    method: &str,
    args: &[Value],
    kwargs: &Map<String, Value>,
) -> Result<Value, OdooError> {
    let arg = |position: usize, name: &str| args.get(position).or_else(|| kwargs.get(name));
    match method {
        "read" => {
            let fields = requested_fields(&table, arg(1, "fields"))?;
            ids_of(arg(0, "ids"))
                .into_iter()
                .map(|id| {
                    table
                        .rows
                        .iter()
                        .find(|r| r.get("id").and_then(Value::as_i64) == Some(id))
                        .map(|r| pick(r, &fields))
                        .ok_or_else(|| missing(table.model, id))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        "search" | "search_read" | "search_count" => {
            // Positional tails: search(domain, offset, limit, order),
            // search_read(domain, fields, offset, limit, order).
            let shift = usize::from(method == "search_read");
            let domain = arg(0, "domain").cloned().unwrap_or_else(|| json!([]));
            let fields = requested_fields(&table, arg(1, "fields").filter(|_| shift == 1))?;
            let offset = arg(1 + shift, "offset")
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize;
            let limit = arg(2 + shift, "limit")
                .and_then(Value::as_u64)
                .filter(|l| *l > 0);
            let order = arg(3 + shift, "order")
                .and_then(Value::as_str)
                .filter(|o| !o.trim().is_empty())
                .unwrap_or(table.default_order);
            let keys = parse_order(order, table.fields)?;
            let hide_archived = active_test(kwargs)
                && table.fields.contains(&"active")
                && !mentions_active(&domain);
            // (the row as domains see it, the row as `read` returns it)
            type Hit<'r> = (Map<String, Value>, &'r Map<String, Value>);
            let mut hits: Vec<Hit> = table
                .rows
                .iter()
                .map(|r| (domain_view(r, table.many2one), r))
                .filter(|(view, _)| !hide_archived || view.get("active") == Some(&json!(true)))
                .filter(|(view, _)| matches_domain(view, &domain))
                .collect();
            if method == "search_count" {
                return Ok(json!(hits.len()));
            }
            hits.sort_by(|(a, _), (b, _)| {
                keys.iter()
                    .map(|(field, descending)| {
                        let o = order_values(a.get(field), b.get(field));
                        if *descending { o.reverse() } else { o }
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            });
            let page = hits
                .into_iter()
                .skip(offset)
                .take(limit.map_or(usize::MAX, |l| l as usize));
            Ok(Value::Array(if method == "search" {
                page.map(|(view, _)| view.get("id").cloned().unwrap_or_default())
                    .collect()
            } else {
                page.map(|(_, r)| pick(r, &fields)).collect()
            }))
        }
        other => Err(no_method(table.model, other)),
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch from `call_model`.

fn lock<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>, OdooError> {
    mutex.lock().map_err(|_| poisoned())
}

/// Partner display names, read before the books are locked (so the two locks never nest).
fn partner_names(state: &OdooState) -> Result<BTreeMap<i64, String>, OdooError> {
    Ok(lock(&state.partners)?
        .iter()
        .map(|(id, p)| {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            (*id, name.to_owned())
        })
        .collect())
}

/// Whether this module serves `model`.
pub(super) fn serves(model: &str) -> bool {
    matches!(
        model,
        "res.currency"
            | "account.tax"
            | "product.pricelist"
            | "account.payment.term"
            | "product.product"
            | "account.move"
            | "account.move.line"
            | "sale.order"
            | "sale.order.line"
            | "account.payment"
    )
}

/// A method of one of this module's models, for an authenticated caller.
pub(super) fn call(
    state: &OdooState,
    model: &str,
    method: &str,
    args: &[Value],
    kwargs: &Map<String, Value>,
) -> Result<Value, OdooError> {
    if let Some(rows) = fixed_rows(model) {
        let (fields, many2one): (&[&str], &[&str]) = match model {
            "res.currency" => (&CURRENCY_FIELDS, &[]),
            "account.tax" => (&TAX_FIELDS, &[]),
            "account.payment.term" => (&PAYMENT_TERM_FIELDS, &[]),
            _ => (&PRICELIST_FIELDS, &["currency_id"]),
        };
        let mut all = fields.to_vec();
        all.push("display_name");
        let table = Table {
            model,
            fields: &all,
            many2one,
            default_order: "id",
            rows,
        };
        return serve_read(table, method, args, kwargs);
    }
    let partners = partner_names(state)?;
    let mut books = lock(&state.books)?;
    let mutating = matches!(
        (model, method),
        (
            "account.move",
            "create" | "write" | "action_post" | "button_cancel" | "button_draft"
        ) | ("sale.order", "create" | "write" | "action_confirm")
    );
    if !mutating {
        return serve_read(books.table(model, &partners), method, args, kwargs);
    }
    // A transaction: the whole call applies, or nothing does.
    let before = books.watch();
    let mut work = books.clone();
    let vals_list = || -> Result<(Vec<Map<String, Value>>, bool), OdooError> {
        match args.first().or_else(|| kwargs.get("vals_list")) {
            Some(Value::Object(vals)) => Ok((vec![vals.clone()], true)),
            Some(Value::Array(list)) => Ok((
                list.iter().filter_map(|v| v.as_object().cloned()).collect(),
                false,
            )),
            _ => Err(OdooError::new(
                "builtins.TypeError",
                "create() missing 1 required positional argument: 'vals_list'",
            )),
        }
    };
    let ids = ids_of(args.first().or_else(|| kwargs.get("ids")));
    let result = match (model, method) {
        (_, "create") => {
            let (list, single) = vals_list()?;
            let ids = list
                .iter()
                .map(|vals| {
                    if model == "account.move" {
                        work.create_move(&partners, vals)
                    } else {
                        work.create_order(&partners, vals)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            if single {
                json!(ids.first())
            } else {
                json!(ids)
            }
        }
        (_, "write") => {
            let vals = args
                .get(1)
                .or_else(|| kwargs.get("vals"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for id in ids {
                if model == "account.move" {
                    work.write_move(&partners, id, &vals)?;
                } else {
                    work.write_order(&partners, id, &vals)?;
                }
            }
            json!(true)
        }
        (_, "action_post") => {
            for id in ids {
                work.post(id)?;
            }
            // Odoo returns False here, to stay XML-RPC marshallable.
            json!(false)
        }
        (_, "button_cancel") => {
            for id in ids {
                work.cancel(id)?;
            }
            Value::Null
        }
        (_, "button_draft") => {
            for id in ids {
                work.reset_to_draft(id)?;
            }
            Value::Null
        }
        _ => {
            for id in ids {
                work.confirm_order(id)?;
            }
            json!(true)
        }
    };
    *books = work;
    let payloads = books.changes(&before);
    drop(books);
    state.webhook.fire(payloads);
    Ok(result)
}

// ---------------------------------------------------------------------------------------------
// The books.

type Watch = BTreeMap<i64, (String, &'static str, i128)>;

impl Books {
    fn next_id(&mut self, model: &'static str) -> i64 {
        let base = if model == "product.product" { 300 } else { 0 };
        let id = self.last_ids.get(model).copied().unwrap_or(base) + 1;
        self.last_ids.insert(model, id);
        id
    }

    fn next_number(&mut self, prefix: &'static str, year: i64) -> u32 {
        let n = self.sequences.get(&(prefix, year)).copied().unwrap_or(0) + 1;
        self.sequences.insert((prefix, year), n);
        n
    }

    fn lines(&self, kind: Kind) -> &BTreeMap<i64, Line> {
        match kind {
            Kind::Invoice => &self.move_lines,
            Kind::Sale => &self.order_lines,
        }
    }

    fn lines_mut(&mut self, kind: Kind) -> &mut BTreeMap<i64, Line> {
        match kind {
            Kind::Invoice => &mut self.move_lines,
            Kind::Sale => &mut self.order_lines,
        }
    }

    /// A line's subtotal and its tax per tax, in minor units (`round_per_line`).
    fn line_amounts(line: &Line, digits: u32) -> (i128, Vec<(i64, i128)>) {
        let exact = || -> Option<i128> {
            let gross = Dec::from_f64(line.quantity)?.mul(Dec::from_f64(line.price_unit)?)?;
            let keep = Dec::from_f64(100.0)?.sub(Dec::from_f64(line.discount)?)?;
            gross.mul(keep)?.percent().round(digits)
        };
        let exact = exact();
        let subtotal = exact.unwrap_or_else(|| {
            round_f64(
                line.quantity * line.price_unit * (1.0 - line.discount / 100.0),
                digits,
            )
        });
        let taxes = line
            .tax_ids
            .iter()
            .map(|tax| (*tax, Self::tax_on(subtotal, *tax, digits)))
            .collect();
        (subtotal, taxes)
    }

    /// `round(base × percent / 100)` in minor units, half-up.
    fn tax_on(base: i128, tax: i64, digits: u32) -> i128 {
        let percent = tax_percent(tax);
        Dec::from_f64(percent)
            .and_then(|p| Dec::minor(base, digits).mul(p))
            .and_then(|d| d.percent().round(digits))
            .unwrap_or_else(|| {
                round_f64(
                    base as f64 / 10f64.powi(digits as i32) * percent / 100.0,
                    digits,
                )
            })
    }

    /// A document's amounts: per line always rounded per line; the document's tax per line, or
    /// once per tax on the sum of its base lines when rounding globally.
    fn amounts(&self, kind: Kind, line_ids: &[i64], currency: i64) -> Amounts {
        let digits = currency_digits(currency);
        let mut amounts = Amounts::default();
        let mut bases: BTreeMap<i64, i128> = BTreeMap::new();
        for line in line_ids.iter().filter_map(|id| self.lines(kind).get(id)) {
            let (subtotal, taxes) = Self::line_amounts(line, digits);
            let line_tax: i128 = taxes.iter().map(|(_, t)| t).sum();
            amounts
                .lines
                .insert(line.id, (subtotal, subtotal + line_tax));
            amounts.untaxed += subtotal;
            amounts.tax += line_tax;
            for tax in &line.tax_ids {
                *bases.entry(*tax).or_default() += subtotal;
            }
        }
        if self.round_globally {
            amounts.tax = bases
                .iter()
                .map(|(tax, base)| Self::tax_on(*base, *tax, digits))
                .sum();
        }
        amounts
    }

    fn move_amounts(&self, m: &Move) -> Amounts {
        self.amounts(Kind::Invoice, &m.line_ids, m.currency_id)
    }

    /// What is left to pay: the total until posted, then the total less what was reconciled.
    fn residual(&self, m: &Move) -> i128 {
        let total = self.move_amounts(m).total();
        if m.state == "posted" {
            (total - m.paid - m.reversed).max(0)
        } else {
            total
        }
    }

    fn payment_state(&self, m: &Move) -> &'static str {
        if m.state != "posted" {
            return "not_paid";
        }
        let total = self.move_amounts(m).total();
        let residual = self.residual(m);
        if residual == 0 {
            if m.paid == 0 && m.reversed > 0 {
                "reversed"
            } else {
                "paid"
            }
        } else if residual == total {
            "not_paid"
        } else {
            "partial"
        }
    }

    fn move_display_name(&self, id: i64) -> String {
        match self.moves.get(&id) {
            Some(m) if m.name != "/" => m.name.clone(),
            Some(m) if m.move_type == "out_refund" => format!("Draft Credit Note (* {id})"),
            _ => format!("Draft Invoice (* {id})"),
        }
    }

    fn product_name(&self, id: i64) -> String {
        self.products
            .get(&id)
            .map_or_else(|| id.to_string(), Product::display_name)
    }

    fn move_row(&self, m: &Move, partners: &BTreeMap<i64, String>) -> Map<String, Value> {
        let amounts = self.move_amounts(m);
        let digits = currency_digits(m.currency_id);
        let partner = |id: i64| partners.get(&id).cloned().unwrap_or_default();
        row(vec![
            ("id", json!(m.id)),
            ("name", json!(m.name)),
            ("display_name", json!(self.move_display_name(m.id))),
            ("move_type", json!(m.move_type)),
            ("state", json!(m.state)),
            ("ref", text(&m.ref_)),
            ("payment_reference", text(&m.payment_reference)),
            ("invoice_origin", text(&m.invoice_origin)),
            ("narration", text(&m.narration)),
            ("partner_id", m2o(m.partner_id, partner)),
            ("currency_id", m2o(Some(m.currency_id), currency_name)),
            ("invoice_date", text(&m.invoice_date)),
            // Without payment terms, the due date is the invoice date.
            (
                "invoice_date_due",
                text(
                    &m.invoice_date_due
                        .clone()
                        .or_else(|| m.invoice_date.clone()),
                ),
            ),
            ("amount_untaxed", money(amounts.untaxed, digits)),
            ("amount_tax", money(amounts.tax, digits)),
            ("amount_total", money(amounts.total(), digits)),
            ("amount_residual", money(self.residual(m), digits)),
            ("payment_state", json!(self.payment_state(m))),
            (
                "reversed_entry_id",
                m2o(m.reversed_entry_id, |id| self.move_display_name(id)),
            ),
            ("invoice_line_ids", json!(m.line_ids)),
            ("write_date", json!(m.write_date)),
            ("create_date", json!(m.create_date)),
        ])
    }

    fn line_row(&self, kind: Kind, line: &Line, amounts: &Amounts) -> Map<String, Value> {
        let (parent_field, parent_name, currency) = match kind {
            Kind::Invoice => (
                "move_id",
                self.move_display_name(line.parent),
                self.moves.get(&line.parent).map(|m| m.currency_id),
            ),
            Kind::Sale => (
                "order_id",
                self.orders
                    .get(&line.parent)
                    .map(|o| o.name.clone())
                    .unwrap_or_default(),
                self.orders
                    .get(&line.parent)
                    .map(|o| self.order_currency(o)),
            ),
        };
        let digits = currency_digits(currency.unwrap_or(COMPANY_CURRENCY));
        let (subtotal, total) = amounts.lines.get(&line.id).copied().unwrap_or_default();
        row(vec![
            ("id", json!(line.id)),
            (parent_field, json!([line.parent, parent_name])),
            (
                "product_id",
                m2o(line.product_id, |id| self.product_name(id)),
            ),
            ("name", json!(line.name)),
            (kind.qty_field(), json!(line.quantity)),
            ("price_unit", json!(line.price_unit)),
            ("discount", json!(line.discount)),
            (kind.tax_field(), json!(line.tax_ids)),
            ("price_subtotal", money(subtotal, digits)),
            ("price_total", money(total, digits)),
            ("write_date", json!(line.write_date)),
            ("create_date", json!(line.create_date)),
        ])
    }

    fn order_currency(&self, o: &Order) -> i64 {
        o.pricelist_id
            .and_then(pricelist_currency)
            .unwrap_or(COMPANY_CURRENCY)
    }

    fn order_row(&self, o: &Order, partners: &BTreeMap<i64, String>) -> Map<String, Value> {
        let currency = self.order_currency(o);
        let amounts = self.amounts(Kind::Sale, &o.line_ids, currency);
        let digits = currency_digits(currency);
        let pricelist = |id: i64| {
            PRICELISTS
                .iter()
                .find(|(pid, _, _)| *pid == id)
                .map(|(_, n, c)| format!("{n} ({})", currency_name(*c)))
                .unwrap_or_default()
        };
        row(vec![
            ("id", json!(o.id)),
            ("name", json!(o.name)),
            ("display_name", json!(o.name)),
            (
                "partner_id",
                m2o(Some(o.partner_id), |id| {
                    partners.get(&id).cloned().unwrap_or_default()
                }),
            ),
            ("client_order_ref", text(&o.client_order_ref)),
            ("pricelist_id", m2o(o.pricelist_id, pricelist)),
            ("currency_id", m2o(Some(currency), currency_name)),
            ("date_order", json!(o.date_order)),
            ("validity_date", text(&o.validity_date)),
            ("state", json!(o.state)),
            ("order_line", json!(o.line_ids)),
            ("amount_untaxed", money(amounts.untaxed, digits)),
            ("amount_tax", money(amounts.tax, digits)),
            ("amount_total", money(amounts.total(), digits)),
            ("write_date", json!(o.write_date)),
            ("create_date", json!(o.create_date)),
        ])
    }

    fn payment_row(&self, p: &Payment, partners: &BTreeMap<i64, String>) -> Map<String, Value> {
        let partner = |id: i64| partners.get(&id).cloned().unwrap_or_default();
        row(vec![
            ("id", json!(p.id)),
            ("name", json!(p.name)),
            ("display_name", json!(p.name)),
            ("payment_type", json!("inbound")),
            ("partner_type", json!("customer")),
            ("partner_id", m2o(p.partner_id, partner)),
            ("amount", money(p.amount, currency_digits(p.currency_id))),
            ("currency_id", m2o(Some(p.currency_id), currency_name)),
            ("date", json!(p.date)),
            ("memo", json!(p.memo)),
            ("state", json!("posted")),
            ("reconciled_invoice_ids", json!([p.move_id])),
            ("write_date", json!(p.create_date)),
            ("create_date", json!(p.create_date)),
        ])
    }

    fn product_row(p: &Product) -> Map<String, Value> {
        row(vec![
            ("id", json!(p.id)),
            ("name", json!(p.name)),
            ("display_name", json!(p.display_name())),
            (
                "default_code",
                text(&Some(p.default_code.clone()).filter(|c| !c.is_empty())),
            ),
            ("list_price", json!(p.list_price)),
            // A related field: the company's currency.
            ("currency_id", m2o(Some(COMPANY_CURRENCY), currency_name)),
            (
                "description_sale",
                text(&Some(p.description_sale.clone()).filter(|d| !d.is_empty())),
            ),
            ("taxes_id", json!(p.taxes_id)),
            ("active", json!(p.active)),
            ("type", json!("consu")),
            ("write_date", json!(p.write_date)),
            ("create_date", json!(p.create_date)),
        ])
    }

    /// Every record of a stored model, rendered for reading.
    fn table<'a>(&self, model: &'a str, partners: &BTreeMap<i64, String>) -> Table<'a> {
        let lines = |kind: Kind| -> Vec<Map<String, Value>> {
            let mut amounts: BTreeMap<i64, Amounts> = BTreeMap::new();
            self.lines(kind)
                .values()
                .map(|line| {
                    let a = amounts.entry(line.parent).or_insert_with(|| match kind {
                        Kind::Invoice => self
                            .moves
                            .get(&line.parent)
                            .map(|m| self.move_amounts(m))
                            .unwrap_or_default(),
                        Kind::Sale => self
                            .orders
                            .get(&line.parent)
                            .map(|o| self.amounts(kind, &o.line_ids, self.order_currency(o)))
                            .unwrap_or_default(),
                    });
                    self.line_row(kind, line, a)
                })
                .collect()
        };
        let (fields, many2one, default_order, rows): (&[&str], &[&str], &str, _) = match model {
            "product.product" => (
                &PRODUCT_FIELDS,
                &["currency_id"],
                "default_code, name, id",
                self.products.values().map(Self::product_row).collect(),
            ),
            "account.move" => (
                &MOVE_FIELDS,
                &["partner_id", "currency_id", "reversed_entry_id"],
                // Odoo's `date desc, name desc, id desc`, with the invoice date as the date.
                "invoice_date desc, name desc, id desc",
                self.moves
                    .values()
                    .map(|m| self.move_row(m, partners))
                    .collect(),
            ),
            "account.move.line" => (
                &MOVE_LINE_FIELDS,
                &["move_id", "product_id"],
                "id",
                lines(Kind::Invoice),
            ),
            "sale.order" => (
                &ORDER_FIELDS,
                &["partner_id", "pricelist_id", "currency_id"],
                "date_order desc, id desc",
                self.orders
                    .values()
                    .map(|o| self.order_row(o, partners))
                    .collect(),
            ),
            "sale.order.line" => (
                &ORDER_LINE_FIELDS,
                &["order_id", "product_id"],
                "order_id, id",
                lines(Kind::Sale),
            ),
            _ => (
                &PAYMENT_FIELDS,
                &["partner_id", "currency_id"],
                "date desc, name desc, id desc",
                self.payments
                    .values()
                    .map(|p| self.payment_row(p, partners))
                    .collect(),
            ),
        };
        Table {
            model,
            fields,
            many2one,
            default_order,
            rows,
        }
    }

    // --- lines -----------------------------------------------------------------------------

    /// Applies a line's `vals`; a new product fills the label, price and taxes not given.
    fn apply_line_vals(
        &self,
        kind: Kind,
        line: &mut Line,
        vals: &Map<String, Value>,
    ) -> Result<(), OdooError> {
        let model = kind.line_model();
        for (field, value) in vals {
            match field.as_str() {
                "product_id" => {
                    line.product_id = match value.as_i64() {
                        None if is_empty(value) => None,
                        Some(id) if self.products.contains_key(&id) => Some(id),
                        _ => return Err(missing("product.product", value)),
                    };
                }
                "name" => line.name = as_text(value).unwrap_or_default(),
                "price_unit" => line.price_unit = as_number(model, field, value)?,
                "discount" => line.discount = as_number(model, field, value)?,
                f if f == kind.qty_field() => line.quantity = as_number(model, f, value)?,
                f if f == kind.tax_field() => {
                    apply_m2m(&mut line.tax_ids, value, "account.tax", |id| {
                        TAXES.iter().any(|(tid, ..)| *tid == id)
                    })?;
                }
                f if IGNORED_LINE_FIELDS.contains(&f) || COMPUTED_FIELDS.contains(&f) => {}
                "price_subtotal" | "price_total" | "move_id" | "order_id" => {}
                other => return Err(invalid_field(model, other)),
            }
        }
        if vals.contains_key("product_id")
            && let Some(product) = line.product_id.and_then(|id| self.products.get(&id))
        {
            if !vals.contains_key("name") {
                line.name = product.display_name();
            }
            if !vals.contains_key("price_unit") {
                line.price_unit = product.list_price;
            }
            if !vals.contains_key(kind.tax_field()) {
                line.tax_ids = product.taxes_id.clone();
            }
        }
        match kind {
            Kind::Sale if line.product_id.is_none() => Err(OdooError::new(
                "odoo.exceptions.ValidationError",
                "The operation cannot be completed: Missing required fields on accountable sale order line. (Field: Product (product_id))",
            )),
            Kind::Invoice if line.product_id.is_none() && line.name.trim().is_empty() => {
                Err(OdooError::new(
                    "odoo.exceptions.ValidationError",
                    "The operation cannot be completed: an invoice line needs a Label (name) or a Product (product_id).",
                ))
            }
            _ => Ok(()),
        }
    }

    /// Applies one2many commands (`[0, 0, vals]`, `[1, id, vals]`, `[2, id]`, `[3, id]`, `[4, id]`,
    /// `[5]`, `[6, 0, ids]`) to the lines `ids` of document `parent`.
    fn apply_lines(
        &mut self,
        kind: Kind,
        parent: i64,
        ids: &mut Vec<i64>,
        value: &Value,
    ) -> Result<(), OdooError> {
        let model = kind.line_model();
        let bad = || {
            OdooError::new(
                "builtins.ValueError",
                format!("Wrong value for {model}: {value}"),
            )
        };
        let commands = value.as_array().ok_or_else(bad)?;
        let now = odoo_now();
        for command in commands {
            let c = command.as_array().ok_or_else(bad)?;
            let target = c.get(1).and_then(Value::as_i64);
            let vals = c
                .get(2)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let ours = |id: Option<i64>| -> Result<i64, OdooError> {
                match id {
                    Some(id) if ids.contains(&id) => Ok(id),
                    Some(id) => Err(missing(model, id)),
                    None => Err(bad()),
                }
            };
            match c.first().and_then(Value::as_i64) {
                Some(0) => {
                    let id = self.next_id(model);
                    let mut line = Line {
                        id,
                        parent,
                        product_id: None,
                        name: String::new(),
                        quantity: 1.0,
                        price_unit: 0.0,
                        discount: 0.0,
                        tax_ids: Vec::new(),
                        write_date: now.clone(),
                        create_date: now.clone(),
                    };
                    self.apply_line_vals(kind, &mut line, &vals)?;
                    self.lines_mut(kind).insert(id, line);
                    ids.push(id);
                }
                Some(1) => {
                    let id = ours(target)?;
                    let mut line = self.lines(kind).get(&id).cloned().ok_or_else(bad)?;
                    self.apply_line_vals(kind, &mut line, &vals)?;
                    line.write_date = now.clone();
                    self.lines_mut(kind).insert(id, line);
                }
                Some(2 | 3) => {
                    let id = ours(target)?;
                    ids.retain(|l| *l != id);
                    self.lines_mut(kind).remove(&id);
                }
                Some(4) => {
                    ours(target)?;
                }
                Some(5) => {
                    for id in ids.drain(..) {
                        self.lines_mut(kind).remove(&id);
                    }
                }
                Some(6) => {
                    let keep = ids_of(c.get(2));
                    for id in &keep {
                        ours(Some(*id))?;
                    }
                    for id in ids.iter().filter(|id| !keep.contains(id)) {
                        self.lines_mut(kind).remove(id);
                    }
                    ids.retain(|id| keep.contains(id));
                }
                _ => return Err(bad()),
            }
        }
        Ok(())
    }

    // --- account.move ----------------------------------------------------------------------

    fn apply_move_vals(
        &mut self,
        m: &mut Move,
        partners: &BTreeMap<i64, String>,
        vals: &Map<String, Value>,
    ) -> Result<(), OdooError> {
        for (field, value) in vals {
            match field.as_str() {
                "move_type" => match value.as_str() {
                    Some(t @ ("out_invoice" | "out_refund")) => m.move_type = t.to_owned(),
                    _ => {
                        return Err(OdooError::new(
                            "builtins.ValueError",
                            format!(
                                "Wrong value for account.move.move_type: {value} (the simulator serves out_invoice and out_refund)"
                            ),
                        ));
                    }
                },
                "partner_id" => {
                    m.partner_id = match value.as_i64() {
                        None if is_empty(value) => None,
                        Some(id) if partners.contains_key(&id) => Some(id),
                        _ => return Err(missing("res.partner", value)),
                    };
                }
                "currency_id" => match value.as_i64() {
                    Some(id) if CURRENCIES.iter().any(|(cid, _, _)| *cid == id) => {
                        m.currency_id = id;
                    }
                    _ => return Err(missing("res.currency", value)),
                },
                "reversed_entry_id" => {
                    m.reversed_entry_id = match value.as_i64() {
                        None if is_empty(value) => None,
                        Some(id) if self.moves.contains_key(&id) => Some(id),
                        _ => return Err(missing("account.move", value)),
                    };
                }
                "invoice_date" => m.invoice_date = as_date(value)?,
                "invoice_date_due" => m.invoice_date_due = as_date(value)?,
                "ref" => m.ref_ = as_text(value),
                "payment_reference" => m.payment_reference = as_text(value),
                "invoice_origin" => m.invoice_origin = as_text(value),
                "narration" => m.narration = as_text(value),
                "name" => m.name = as_text(value).unwrap_or_else(|| "/".into()),
                "invoice_line_ids" | "line_ids" => {
                    let mut ids = std::mem::take(&mut m.line_ids);
                    let applied = self.apply_lines(Kind::Invoice, m.id, &mut ids, value);
                    m.line_ids = ids;
                    applied?;
                }
                f if IGNORED_MOVE_FIELDS.contains(&f) || COMPUTED_FIELDS.contains(&f) => {}
                other => return Err(invalid_field("account.move", other)),
            }
        }
        Ok(())
    }

    fn create_move(
        &mut self,
        partners: &BTreeMap<i64, String>,
        vals: &Map<String, Value>,
    ) -> Result<i64, OdooError> {
        let id = self.next_id("account.move");
        let now = odoo_now();
        let mut m = Move {
            id,
            name: "/".into(),
            move_type: String::new(),
            state: "draft".into(),
            ref_: None,
            payment_reference: None,
            invoice_origin: None,
            narration: None,
            partner_id: None,
            currency_id: COMPANY_CURRENCY,
            invoice_date: None,
            invoice_date_due: None,
            reversed_entry_id: None,
            line_ids: Vec::new(),
            paid: 0,
            reversed: 0,
            write_date: now.clone(),
            create_date: now,
        };
        if !vals.contains_key("move_type") {
            // Odoo's default is a journal entry ("entry"), which the simulator does not model.
            return Err(OdooError::new(
                "builtins.ValueError",
                "Wrong value for account.move.move_type: 'entry' (the simulator serves out_invoice and out_refund)",
            ));
        }
        self.apply_move_vals(&mut m, partners, vals)?;
        self.moves.insert(id, m);
        Ok(id)
    }

    fn get_move(&self, id: i64) -> Result<Move, OdooError> {
        self.moves
            .get(&id)
            .cloned()
            .ok_or_else(|| missing("account.move", id))
    }

    fn write_move(
        &mut self,
        partners: &BTreeMap<i64, String>,
        id: i64,
        vals: &Map<String, Value>,
    ) -> Result<(), OdooError> {
        let mut m = self.get_move(id)?;
        if m.state != "draft"
            && let Some(field) = vals.keys().find(|f| !POSTED_WRITABLE.contains(&f.as_str()))
        {
            return Err(user_error(format!(
                "You cannot modify a posted entry: {} (id {id}) is {}, and '{field}' can only change on a draft. Reset it to draft first.",
                m.name, m.state
            )));
        }
        self.apply_move_vals(&mut m, partners, vals)?;
        m.write_date = odoo_now();
        self.moves.insert(id, m);
        Ok(())
    }

    /// `action_post`: checks the invoice, numbers it in its year's sequence, posts it.
    fn post(&mut self, id: i64) -> Result<(), OdooError> {
        let mut m = self.get_move(id)?;
        if m.state != "draft" {
            return Err(user_error(format!(
                "The entry {} (id {id}) must be in draft.",
                m.name
            )));
        }
        let document = if m.move_type == "out_refund" {
            "Customer Credit Note"
        } else {
            "Customer Invoice"
        };
        if m.partner_id.is_none() {
            return Err(user_error(format!(
                "The field 'Customer' is required, please complete it to validate the {document}."
            )));
        }
        if m.line_ids.is_empty() {
            return Err(user_error("You need to add a line before posting."));
        }
        if self.move_amounts(&m).total() < 0 {
            return Err(user_error(
                "You cannot validate an invoice with a negative total amount. You should create a credit note instead. Use the action menu to transform it into a credit note or refund.",
            ));
        }
        let date = m.invoice_date.clone().unwrap_or_else(today);
        if m.name == "/" {
            let prefix = if m.move_type == "out_refund" {
                "RINV"
            } else {
                "INV"
            };
            let year = year_of(&date);
            let n = self.next_number(prefix, year);
            m.name = format!("{prefix}/{year}/{n:05}");
        }
        m.invoice_date = Some(date);
        m.state = "posted".into();
        m.write_date = odoo_now();
        self.moves.insert(id, m);
        Ok(())
    }

    /// `button_cancel`: a posted move goes back to draft first, then any draft is cancelled.
    fn cancel(&mut self, id: i64) -> Result<(), OdooError> {
        if self.get_move(id)?.state == "posted" {
            self.reset_to_draft(id)?;
        }
        let mut m = self.get_move(id)?;
        if m.state != "draft" {
            return Err(user_error("Only draft journal entries can be cancelled."));
        }
        m.state = "cancel".into();
        m.write_date = odoo_now();
        self.moves.insert(id, m);
        Ok(())
    }

    /// `button_draft`: a posted or cancelled move back to draft, keeping its number.
    fn reset_to_draft(&mut self, id: i64) -> Result<(), OdooError> {
        let mut m = self.get_move(id)?;
        if m.state == "draft" {
            return Err(user_error(
                "Only posted/cancelled journal entries can be reset to draft.",
            ));
        }
        if m.paid > 0 || m.reversed > 0 {
            return Err(user_error(format!(
                "You cannot reset {} to draft: it is reconciled with payments or credit notes. Unreconcile them first.",
                m.name
            )));
        }
        m.state = "draft".into();
        m.write_date = odoo_now();
        self.moves.insert(id, m);
        Ok(())
    }

    // --- sale.order ------------------------------------------------------------------------

    fn apply_order_vals(
        &mut self,
        o: &mut Order,
        partners: &BTreeMap<i64, String>,
        vals: &Map<String, Value>,
    ) -> Result<(), OdooError> {
        for (field, value) in vals {
            match field.as_str() {
                "partner_id" => match value.as_i64() {
                    Some(id) if partners.contains_key(&id) => o.partner_id = id,
                    _ if is_empty(value) => o.partner_id = 0,
                    _ => return Err(missing("res.partner", value)),
                },
                "pricelist_id" => {
                    o.pricelist_id = match value.as_i64() {
                        None if is_empty(value) => None,
                        Some(id) if pricelist_currency(id).is_some() => Some(id),
                        _ => return Err(missing("product.pricelist", value)),
                    };
                }
                "client_order_ref" => o.client_order_ref = as_text(value),
                "date_order" => {
                    o.date_order = as_datetime(value)?.unwrap_or_else(odoo_now);
                }
                "validity_date" => o.validity_date = as_date(value)?,
                "order_line" => {
                    let mut ids = std::mem::take(&mut o.line_ids);
                    let applied = self.apply_lines(Kind::Sale, o.id, &mut ids, value);
                    o.line_ids = ids;
                    applied?;
                }
                // Computed from the pricelist; the ORM ignores a value sent for it.
                "currency_id" | "name" => {}
                "company_id"
                | "user_id"
                | "team_id"
                | "payment_term_id"
                | "note"
                | "partner_invoice_id"
                | "partner_shipping_id"
                | "origin" => {}
                f if COMPUTED_FIELDS.contains(&f) => {}
                other => return Err(invalid_field("sale.order", other)),
            }
        }
        if o.partner_id == 0 {
            return Err(OdooError::new(
                "odoo.exceptions.ValidationError",
                "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n- Delete: another model requires the record being deleted. If possible, archive it instead.\n\nModel: Sales Order (sale.order)\nField: Customer (partner_id)",
            ));
        }
        Ok(())
    }

    fn create_order(
        &mut self,
        partners: &BTreeMap<i64, String>,
        vals: &Map<String, Value>,
    ) -> Result<i64, OdooError> {
        let id = self.next_id("sale.order");
        let now = odoo_now();
        let mut o = Order {
            id,
            name: String::new(),
            partner_id: 0,
            client_order_ref: None,
            pricelist_id: None,
            date_order: now.clone(),
            validity_date: None,
            state: "draft".into(),
            line_ids: Vec::new(),
            write_date: now.clone(),
            create_date: now,
        };
        self.apply_order_vals(&mut o, partners, vals)?;
        o.name = format!("S{:05}", self.next_number("S", 0));
        self.orders.insert(id, o);
        Ok(id)
    }

    fn get_order(&self, id: i64) -> Result<Order, OdooError> {
        self.orders
            .get(&id)
            .cloned()
            .ok_or_else(|| missing("sale.order", id))
    }

    fn write_order(
        &mut self,
        partners: &BTreeMap<i64, String>,
        id: i64,
        vals: &Map<String, Value>,
    ) -> Result<(), OdooError> {
        let mut o = self.get_order(id)?;
        let locked_fields = ["order_line", "pricelist_id", "partner_id"];
        if !matches!(o.state.as_str(), "draft" | "sent")
            && let Some(field) = vals.keys().find(|f| locked_fields.contains(&f.as_str()))
        {
            return Err(user_error(format!(
                "You cannot change '{field}' of {}: the order is {} (only quotations can change).",
                o.name, o.state
            )));
        }
        self.apply_order_vals(&mut o, partners, vals)?;
        o.write_date = odoo_now();
        self.orders.insert(id, o);
        Ok(())
    }

    fn confirm_order(&mut self, id: i64) -> Result<(), OdooError> {
        let mut o = self.get_order(id)?;
        if !matches!(o.state.as_str(), "draft" | "sent") {
            return Err(user_error(format!(
                "The following orders are not in a state requiring confirmation: {}",
                o.name
            )));
        }
        o.state = "sale".into();
        o.write_date = odoo_now();
        self.orders.insert(id, o);
        Ok(())
    }

    // --- payments and credit notes ---------------------------------------------------------

    fn posted_invoice(&self, move_id: i64) -> Result<Move, String> {
        let m = self
            .moves
            .get(&move_id)
            .ok_or_else(|| format!("account.move {move_id} does not exist"))?;
        if m.move_type != "out_invoice" || m.state != "posted" {
            return Err(format!(
                "account.move {move_id} is a {} in state {}, not a posted out_invoice",
                m.move_type, m.state
            ));
        }
        Ok(m.clone())
    }

    fn register_payment(&mut self, move_id: i64, amount: f64, date: &str) -> Result<i64, String> {
        let mut m = self.posted_invoice(move_id)?;
        if !valid_date(date) {
            return Err(format!("date {date:?} is not YYYY-MM-DD"));
        }
        let minor = round_f64(amount, currency_digits(m.currency_id));
        if minor <= 0 {
            return Err(format!("payment amount {amount} must be positive"));
        }
        let applied = minor.min(self.residual(&m));
        m.paid += applied;
        let now = odoo_now();
        m.write_date = now.clone();
        let id = self.next_id("account.payment");
        let number = self.next_number("PBNK1", year_of(date));
        self.payments.insert(
            id,
            Payment {
                id,
                name: format!("PBNK1/{}/{number:05}", year_of(date)),
                partner_id: m.partner_id,
                amount: minor,
                currency_id: m.currency_id,
                date: date.to_owned(),
                memo: m.name.clone(),
                move_id,
                create_date: now,
            },
        );
        self.moves.insert(move_id, m);
        Ok(id)
    }

    fn refund(&mut self, move_id: i64, amount: f64) -> Result<i64, String> {
        let mut invoice = self.posted_invoice(move_id)?;
        let digits = currency_digits(invoice.currency_id);
        let minor = round_f64(amount, digits);
        if minor <= 0 {
            return Err(format!("refund amount {amount} must be positive"));
        }
        let label = format!("Reversal of: {}", invoice.name);
        let mut vals = Map::new();
        vals.insert("move_type".into(), json!("out_refund"));
        vals.insert("partner_id".into(), json!(invoice.partner_id));
        vals.insert("currency_id".into(), json!(invoice.currency_id));
        vals.insert("reversed_entry_id".into(), json!(move_id));
        vals.insert("ref".into(), json!(label));
        vals.insert("invoice_date".into(), json!(today()));
        vals.insert(
            "invoice_line_ids".into(),
            json!([[0, 0, {"name": label, "quantity": 1.0, "price_unit": minor as f64 / 10f64.powi(digits as i32), "tax_ids": []}]]),
        );
        // The partner is the invoice's, which existed when it was posted.
        let partners: BTreeMap<i64, String> = invoice
            .partner_id
            .map(|p| (p, String::new()))
            .into_iter()
            .collect();
        let refund_id = self.create_move(&partners, &vals).map_err(|e| e.message)?;
        self.post(refund_id).map_err(|e| e.message)?;
        let applied = minor.min(self.residual(&invoice));
        invoice.reversed += applied;
        invoice.write_date = odoo_now();
        self.moves.insert(move_id, invoice);
        if let Some(refund) = self.moves.get_mut(&refund_id) {
            refund.reversed += applied;
        }
        Ok(refund_id)
    }

    // --- webhook ---------------------------------------------------------------------------

    fn watch(&self) -> Watch {
        self.moves
            .values()
            .map(|m| {
                let key = (m.state.clone(), self.payment_state(m), self.residual(m));
                (m.id, key)
            })
            .collect()
    }

    /// The payloads for the moves whose state, payment state or residual changed since
    /// `before` (a move created already posted, like a credit note, counts as changed).
    fn changes(&self, before: &Watch) -> Vec<(i64, Value)> {
        let after = self.watch();
        after
            .iter()
            .filter(|(id, now)| match before.get(id) {
                Some(then) => then != *now,
                None => now.0 != "draft",
            })
            .filter_map(|(id, _)| Some((*id, self.webhook_payload(*id)?)))
            .collect()
    }

    /// The automation rule's payload: `_model`, `_id`, `_action`, then the selected fields.
    fn webhook_payload(&self, id: i64) -> Option<Value> {
        let m = self.moves.get(&id)?;
        let digits = currency_digits(m.currency_id);
        Some(json!({
            "_model": "account.move",
            "_id": id,
            "_action": WEBHOOK_ACTION,
            "id": id,
            "name": m.name,
            "move_type": m.move_type,
            "state": m.state,
            "payment_state": self.payment_state(m),
            "amount_residual": money(self.residual(m), digits),
            "write_date": m.write_date,
        }))
    }
}

/// Test handles for the invoicing models: seed products, act as the accountant, inspect.
impl OdooSim {
    /// Adds a `product.product` (type "consu", active) and returns its id.
    pub fn add_product(
        &self,
        default_code: &str,
        name: &str,
        list_price: f64,
        taxes_id: &[i64],
    ) -> i64 {
        add_product(&self.state, default_code, name, list_price, taxes_id)
    }

    /// Sets a product's sales price as a user saving the product form does. See `edit_product`
    /// for `write_date` and panics.
    pub fn set_product_price(&self, id: i64, list_price: f64) {
        self.edit_product(id, |p| p.list_price = list_price);
    }

    /// Renames a product as a user would. See `edit_product` for `write_date` and panics.
    pub fn rename_product(&self, id: i64, name: &str) {
        self.edit_product(id, |p| p.name = name.to_owned());
    }

    /// Sets a product's sales description (`description_sale`; the empty string clears it) as
    /// a user would. See `edit_product` for `write_date` and panics.
    pub fn set_product_description(&self, id: i64, description_sale: &str) {
        self.edit_product(id, |p| p.description_sale = description_sale.to_owned());
    }

    /// Archives a product as a user clicking "Archive" would: searches skip it unless they ask
    /// for archived records. See `edit_product` for `write_date` and panics.
    pub fn archive_product(&self, id: i64) {
        self.edit_product(id, |p| p.active = false);
    }

    /// Applies a user's edit to a product and moves its `write_date` to now. These are template
    /// fields, whose `write_date` Odoo carries to the variant (`_compute_write_date`). Like every
    /// `write_date`, it has whole seconds: call [`super::next_second`] first when the edit must
    /// sort after earlier writes.
    ///
    /// # Panics
    /// For an unknown id: the test is wrong.
    fn edit_product(&self, id: i64, edit: impl FnOnce(&mut Product)) {
        let Ok(mut books) = self.state.books.lock() else {
            panic!("the books' lock is poisoned");
        };
        if let Some(product) = books.products.get_mut(&id) {
            edit(product);
            product.write_date = odoo_now();
            return;
        }
        // Unlocked first: a caught panic leaves the books usable.
        drop(books);
        panic!("no product.product({id},) to edit");
    }

    /// Switches the company's tax rounding between `round_globally` (on) and `round_per_line`.
    pub fn set_rounding_globally(&self, on: bool) {
        if let Ok(mut books) = self.state.books.lock() {
            books.round_globally = on;
        }
    }

    /// Registers a customer payment on a posted invoice, as the accountant's "Register Payment"
    /// does: the payment is posted and reconciled up to the invoice's residual.
    pub fn register_payment(&self, move_id: i64, amount: f64, date: &str) -> Result<i64, String> {
        settle(&self.state, |books| {
            books.register_payment(move_id, amount, date)
        })
    }

    /// Issues and posts a credit note of `amount` (no tax) against a posted invoice and reconciles
    /// it, as "Credit Note" with a partial amount does.
    pub fn refund(&self, move_id: i64, amount: f64) -> Result<i64, String> {
        settle(&self.state, |books| books.refund(move_id, amount))
    }

    /// Every `account.move`, as `read` returns it with all fields.
    pub fn moves(&self) -> Vec<Map<String, Value>> {
        self.rows("account.move", None)
    }

    /// Every `sale.order`, as `read` returns it with all fields.
    pub fn sale_orders(&self) -> Vec<Map<String, Value>> {
        self.rows("sale.order", None)
    }

    /// The `account.move.line`s of one move, as `read` returns them.
    pub fn move_lines(&self, move_id: i64) -> Vec<Map<String, Value>> {
        self.rows("account.move.line", Some(("move_id", move_id)))
    }

    /// Configures (or removes) the automation rule's "Send Webhook Notification" URL.
    pub fn set_webhook(&self, url: Option<String>) {
        self.state.webhook.set_url(url);
    }

    /// Every webhook delivery so far: (move id, HTTP status, or `None` on error or timeout).
    pub fn webhook_log(&self) -> Vec<(i64, Option<u16>)> {
        self.state.webhook.log()
    }

    /// Sends the webhook payload for a move now (as re-running the rule would) and returns the
    /// status; `None` without a URL, for an unknown move, or when the delivery fails.
    pub async fn notify(&self, move_id: i64) -> Option<u16> {
        let payload = self.state.books.lock().ok()?.webhook_payload(move_id)?;
        self.state.webhook.send_now(move_id, payload).await
    }

    fn rows(&self, model: &str, parent: Option<(&str, i64)>) -> Vec<Map<String, Value>> {
        let Ok(partners) = partner_names(&self.state) else {
            return Vec::new();
        };
        let Ok(books) = self.state.books.lock() else {
            return Vec::new();
        };
        let table = books.table(model, &partners);
        table
            .rows
            .iter()
            .filter(|r| {
                parent.is_none_or(|(field, id)| {
                    domain_view(r, table.many2one).get(field) == Some(&json!(id))
                })
            })
            .map(|r| {
                let mut r = r.clone();
                r.remove("display_name");
                r
            })
            .collect()
    }
}

fn add_product(
    state: &OdooState,
    default_code: &str,
    name: &str,
    list_price: f64,
    taxes_id: &[i64],
) -> i64 {
    let Ok(mut books) = state.books.lock() else {
        return 0;
    };
    let id = books.next_id("product.product");
    let now = odoo_now();
    books.products.insert(
        id,
        Product {
            id,
            name: name.to_owned(),
            default_code: default_code.to_owned(),
            list_price,
            description_sale: String::new(),
            taxes_id: taxes_id.to_vec(),
            active: true,
            write_date: now.clone(),
            create_date: now,
        },
    );
    id
}

/// Runs an accountant's action on the books as one transaction and fires the webhook.
fn settle(
    state: &OdooState,
    action: impl FnOnce(&mut Books) -> Result<i64, String>,
) -> Result<i64, String> {
    let mut books = state.books.lock().map_err(|_| "lock poisoned".to_owned())?;
    let before = books.watch();
    let mut work = books.clone();
    let id = action(&mut work)?;
    *books = work;
    let payloads = books.changes(&before);
    drop(books);
    state.webhook.fire(payloads);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn state() -> OdooState {
        let state = super::super::new_state("db", "sync@example.com", "key");
        if let Ok(mut partners) = state.partners.lock() {
            let Value::Object(p) =
                json!({"id": 7, "name": "Distribuidora Andina SAS", "active": true})
            else {
                unreachable!()
            };
            partners.insert(7, p);
        }
        state
    }

    fn call_ok(state: &OdooState, model: &str, method: &str, args: Value) -> Value {
        let args = args.as_array().cloned().unwrap_or_default();
        match call(state, model, method, &args, &Map::new()) {
            Ok(v) => v,
            Err(e) => panic!("{model}.{method}: {}: {}", e.name, e.message),
        }
    }

    fn call_err(state: &OdooState, model: &str, method: &str, args: Value) -> OdooError {
        let args = args.as_array().cloned().unwrap_or_default();
        match call(state, model, method, &args, &Map::new()) {
            Ok(v) => panic!("{model}.{method} answered {v}"),
            Err(e) => e,
        }
    }

    fn invoice(state: &OdooState, currency: i64, lines: Value) -> i64 {
        let id = call_ok(
            state,
            "account.move",
            "create",
            json!([{"move_type": "out_invoice", "partner_id": 7, "currency_id": currency,
                    "invoice_date": "2025-03-14", "invoice_line_ids": lines}]),
        );
        id.as_i64().expect("create returns an id")
    }

    fn read_move(state: &OdooState, id: i64) -> Value {
        call_ok(state, "account.move", "read", json!([[id]]))[0].clone()
    }

    #[test]
    fn decimals_round_half_up_exactly() {
        assert_eq!(Dec::from_f64(2.675).and_then(|d| d.round(2)), Some(268));
        assert_eq!(Dec::from_f64(-2.675).and_then(|d| d.round(2)), Some(-268));
        assert_eq!(Dec::from_f64(0.0095).and_then(|d| d.round(2)), Some(1));
        assert_eq!(
            Dec::from_f64(1190000.0).and_then(|d| d.round(0)),
            Some(1_190_000)
        );
        assert_eq!(round_f64(0.1 + 0.2, 2), 30);
    }

    #[test]
    fn per_line_and_global_rounding_differ_by_a_minor_unit() {
        let state = state();
        // Three lines of 0.03 COP with 19%: 0.0057 rounds to 0.01 per line (0.03 in all), while
        // 19% of 0.09 is 0.0171, which rounds to 0.02.
        let line = json!([0, 0, {"name": "Tornillo", "quantity": 1, "price_unit": 0.03, "tax_ids": [[6, 0, [12]]]}]);
        let id = invoice(&state, 8, json!([line, line, line]));
        let m = read_move(&state, id);
        assert_eq!(m["amount_untaxed"], json!(0.09));
        assert_eq!(m["amount_tax"], json!(0.03));
        assert_eq!(m["amount_total"], json!(0.12));
        if let Ok(mut books) = state.books.lock() {
            books.round_globally = true;
        }
        let m = read_move(&state, id);
        assert_eq!(m["amount_tax"], json!(0.02));
        assert_eq!(m["amount_total"], json!(0.11));
    }

    #[test]
    fn clp_amounts_have_no_decimals() {
        let state = state();
        let id = invoice(
            &state,
            19,
            json!([[0, 0, {"name": "Servicio", "quantity": 3, "price_unit": 333.33, "discount": 10, "tax_ids": [[4, 12]]}]]),
        );
        let m = read_move(&state, id);
        // 3 × 333.33 × 0.9 = 899.991 → 900; 19% of 900 = 171.
        assert_eq!(m["amount_untaxed"], json!(900.0));
        assert_eq!(m["amount_tax"], json!(171.0));
        assert_eq!(m["amount_total"], json!(1071.0));
        assert_eq!(m["currency_id"], json!([19, "CLP"]));
        let lines = call_ok(
            &state,
            "account.move.line",
            "search_read",
            json!([[["move_id", "=", id]]]),
        );
        assert_eq!(lines[0]["price_subtotal"], json!(900.0));
        assert_eq!(lines[0]["price_total"], json!(1071.0));
    }

    #[test]
    fn posting_assigns_sequential_numbers_per_type_and_refuses_twice() {
        let state = state();
        let line = json!([[0, 0, {"name": "Licencia", "quantity": 2, "price_unit": 500000.0, "tax_ids": [[6, 0, [12]]]}]]);
        let a = invoice(&state, 8, line.clone());
        let b = invoice(&state, 8, line.clone());
        assert_eq!(read_move(&state, a)["name"], json!("/"));
        assert_eq!(
            call_ok(&state, "account.move", "action_post", json!([[a, b]])),
            json!(false)
        );
        assert_eq!(read_move(&state, a)["name"], json!("INV/2025/00001"));
        assert_eq!(read_move(&state, b)["name"], json!("INV/2025/00002"));
        assert_eq!(read_move(&state, a)["amount_total"], json!(1190000.0));
        let e = call_err(&state, "account.move", "action_post", json!([[a]]));
        assert_eq!(e.name, "odoo.exceptions.UserError");
        assert!(e.message.contains("must be in draft"), "{}", e.message);
        let refund = call_ok(
            &state,
            "account.move",
            "create",
            json!([{"move_type": "out_refund", "partner_id": 7, "invoice_date": "2025-04-01",
                    "invoice_line_ids": line}]),
        );
        call_ok(&state, "account.move", "action_post", json!([[refund]]));
        let refund = refund.as_i64().expect("id");
        assert_eq!(read_move(&state, refund)["name"], json!("RINV/2025/00001"));
        let found = call_ok(
            &state,
            "account.move",
            "search",
            json!([[
                ["state", "in", ["posted"]],
                ["move_type", "=", "out_invoice"]
            ]]),
        );
        assert_eq!(found, json!([b, a]));
    }

    #[test]
    fn a_posted_move_refuses_line_writes_but_takes_a_ref() {
        let state = state();
        let id = invoice(
            &state,
            8,
            json!([[0, 0, {"name": "Licencia", "price_unit": 100.0}]]),
        );
        call_ok(
            &state,
            "account.move",
            "write",
            json!([[id], {"invoice_line_ids": [[0, 0, {"name": "Soporte", "price_unit": 50.0}]]}]),
        );
        assert_eq!(read_move(&state, id)["amount_total"], json!(150.0));
        call_ok(&state, "account.move", "action_post", json!([[id]]));
        let e = call_err(
            &state,
            "account.move",
            "write",
            json!([[id], {"invoice_line_ids": [[5]]}]),
        );
        assert_eq!(e.name, "odoo.exceptions.UserError");
        assert!(e.message.starts_with("You cannot modify a posted entry"));
        call_ok(
            &state,
            "account.move",
            "write",
            json!([[id], {"ref": "HS-DEAL-1"}]),
        );
        assert_eq!(read_move(&state, id)["ref"], json!("HS-DEAL-1"));
        assert_eq!(read_move(&state, id)["amount_total"], json!(150.0));
    }

    #[test]
    fn unknown_partner_tax_or_product_is_a_missing_error() {
        let state = state();
        let e = call_err(
            &state,
            "account.move",
            "create",
            json!([{"move_type": "out_invoice", "partner_id": 999}]),
        );
        assert_eq!(e.name, "odoo.exceptions.MissingError");
        assert!(e.message.contains("res.partner(999,)"));
        let e = call_err(
            &state,
            "account.move",
            "create",
            json!([{"move_type": "out_invoice", "partner_id": 7,
                    "invoice_line_ids": [[0, 0, {"name": "x", "tax_ids": [[6, 0, [99]]]}]]}]),
        );
        assert!(e.message.contains("account.tax(99,)"));
        // Nothing was created by the failed calls.
        let count = call_ok(&state, "account.move", "search_count", json!([[]]));
        assert_eq!(count, json!(0));
    }

    #[test]
    fn payments_go_partial_then_paid_and_overpayment_stops_at_zero() {
        let state = state();
        let sim = OdooSim {
            addr: ([127, 0, 0, 1], 0).into(),
            state: Arc::new(state),
        };
        let product = sim.add_product("LIC-1", "Licencia", 100.0, &[12]);
        let id = invoice(&sim.state, 8, json!([[0, 0, {"product_id": product}]]));
        let lines = sim.move_lines(id);
        assert_eq!(lines[0]["name"], json!("[LIC-1] Licencia"));
        assert_eq!(lines[0]["tax_ids"], json!([12]));
        assert!(sim.register_payment(id, 10.0, "2025-03-20").is_err());
        call_ok(&sim.state, "account.move", "action_post", json!([[id]]));
        sim.register_payment(id, 19.0, "2025-03-20")
            .expect("payment");
        let m = read_move(&sim.state, id);
        assert_eq!(m["payment_state"], json!("partial"));
        assert_eq!(m["amount_residual"], json!(100.0));
        let pay = sim
            .register_payment(id, 500.0, "2025-03-21")
            .expect("payment");
        let m = read_move(&sim.state, id);
        assert_eq!(m["payment_state"], json!("paid"));
        assert_eq!(m["amount_residual"], json!(0.0));
        let p = call_ok(&sim.state, "account.payment", "read", json!([[pay]]));
        assert_eq!(p[0]["amount"], json!(500.0));
        assert_eq!(p[0]["memo"], json!("INV/2025/00001"));
        assert_eq!(p[0]["reconciled_invoice_ids"], json!([id]));
        let e = call_err(&sim.state, "account.move", "button_draft", json!([[id]]));
        assert_eq!(e.name, "odoo.exceptions.UserError");
    }

    #[test]
    fn a_full_refund_reverses_and_a_mix_pays() {
        let sim = OdooSim {
            addr: ([127, 0, 0, 1], 0).into(),
            state: Arc::new(state()),
        };
        let line = json!([[0, 0, {"name": "Licencia", "price_unit": 1000.0}]]);
        let a = invoice(&sim.state, 8, line.clone());
        let b = invoice(&sim.state, 8, line);
        call_ok(&sim.state, "account.move", "action_post", json!([[a, b]]));
        let r = sim.refund(a, 400.0).expect("refund");
        assert_eq!(read_move(&sim.state, a)["payment_state"], json!("partial"));
        sim.refund(a, 600.0).expect("refund");
        let m = read_move(&sim.state, a);
        assert_eq!(m["payment_state"], json!("reversed"));
        assert_eq!(m["amount_residual"], json!(0.0));
        let refund = read_move(&sim.state, r);
        assert_eq!(refund["move_type"], json!("out_refund"));
        assert_eq!(refund["state"], json!("posted"));
        assert_eq!(refund["amount_total"], json!(400.0));
        assert_eq!(refund["reversed_entry_id"], json!([a, "INV/2025/00001"]));
        assert_eq!(refund["payment_state"], json!("reversed"));
        sim.register_payment(b, 500.0, "2025-03-20")
            .expect("payment");
        sim.refund(b, 500.0).expect("refund");
        assert_eq!(read_move(&sim.state, b)["payment_state"], json!("paid"));
    }

    #[test]
    fn sale_orders_take_the_pricelist_currency_and_need_products() {
        let sim = OdooSim {
            addr: ([127, 0, 0, 1], 0).into(),
            state: Arc::new(state()),
        };
        let product = sim.add_product("LIC-1", "Licencia", 100.0, &[12]);
        let e = call_err(
            &sim.state,
            "sale.order",
            "create",
            json!([{"partner_id": 7, "order_line": [[0, 0, {"name": "x"}]]}]),
        );
        assert_eq!(e.name, "odoo.exceptions.ValidationError");
        assert!(e.message.contains("product_id"));
        let id = call_ok(
            &sim.state,
            "sale.order",
            "create",
            json!([{"partner_id": 7, "pricelist_id": 3, "client_order_ref": "HS-1",
                    "order_line": [[0, 0, {"product_id": product, "product_uom_qty": 2, "price_unit": 10.5}]]}]),
        );
        let orders = sim.sale_orders();
        assert_eq!(orders[0]["name"], json!("S00001"));
        assert_eq!(orders[0]["currency_id"], json!([19, "CLP"]));
        // 2 × 10.5 = 21 CLP; 19% = 3.99 → 4.
        assert_eq!(orders[0]["amount_total"], json!(25.0));
        call_ok(&sim.state, "sale.order", "action_confirm", json!([[id]]));
        let e = call_err(
            &sim.state,
            "sale.order",
            "write",
            json!([[id], {"order_line": [[5]]}]),
        );
        assert_eq!(e.name, "odoo.exceptions.UserError");
        let e = call_err(&sim.state, "sale.order", "action_confirm", json!([[id]]));
        assert_eq!(e.name, "odoo.exceptions.UserError");
    }

    /// Over HTTP: `execute_kw` reaches the new models, and posting then paying fires the
    /// webhook with Odoo's unsigned JSON payload.
    #[tokio::test]
    async fn the_webhook_fires_on_post_and_payment() {
        use axum::routing::post;
        // (Content-Type, whether any signature header came, body)
        type Received = Arc<Mutex<Vec<(Option<String>, bool, Value)>>>;
        let received: Received = Arc::default();
        let sink = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: axum::http::HeaderMap, body: String| {
                let sink = sink.clone();
                async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let signed = headers.keys().any(|k| k.as_str().contains("signature"));
                    let body = serde_json::from_str(&body).unwrap_or_default();
                    if let Ok(mut sink) = sink.lock() {
                        sink.push((content_type, signed, body));
                    }
                    "ok"
                }
            }),
        );
        let hook = super::super::super::serve(app).await.expect("hook server");
        let sim = OdooSim::start("db", "sync@example.com", "key")
            .await
            .expect("sim");
        if let Ok(mut partners) = sim.state.partners.lock() {
            let Value::Object(p) = json!({"id": 7, "name": "Andina", "active": true}) else {
                unreachable!()
            };
            partners.insert(7, p);
        }
        sim.set_webhook(Some(format!("http://{hook}/hook?token=s3cret")));
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let rpc = |method: &str, args: Value| {
            let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
                "service": "object", "method": "execute_kw",
                "args": ["db", 2, "key", "account.move", method, args]}});
            http.post(format!("{}/jsonrpc", sim.url()))
                .json(&body)
                .send()
        };
        let created: Value = rpc(
            "create",
            json!([{"move_type": "out_invoice", "partner_id": 7, "invoice_date": "2025-03-14",
                    "invoice_line_ids": [[0, 0, {"name": "Licencia", "quantity": 2,
                        "price_unit": 500000.0, "tax_ids": [[6, 0, [12]]]}]]}]),
        )
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
        let id = created["result"].as_i64().expect("id");
        rpc("action_post", json!([[id]])).await.expect("post");
        sim.register_payment(id, 1190000.0, "2025-03-20")
            .expect("payment");
        for _ in 0..50 {
            if sim.webhook_log().len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(sim.webhook_log(), vec![(id, Some(200)), (id, Some(200))]);
        let got = received.lock().map(|r| r.clone()).unwrap_or_default();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.as_deref(), Some("application/json"));
        assert!(!got[0].1);
        let states: Vec<_> = got.iter().map(|(_, _, b)| b["state"].clone()).collect();
        assert!(states.iter().all(|s| s == "posted"));
        let paid = got.iter().find(|(_, _, b)| b["payment_state"] == "paid");
        let paid = &paid.expect("a paid notification").2;
        assert_eq!(paid["_model"], json!("account.move"));
        assert_eq!(paid["_action"], json!(WEBHOOK_ACTION));
        assert_eq!(paid["name"], json!("INV/2025/00001"));
        assert_eq!(paid["amount_residual"], json!(0.0));
        assert_eq!(sim.notify(id).await, Some(200));
        sim.set_webhook(Some("http://127.0.0.1:9/closed".into()));
        assert_eq!(sim.notify(id).await, None);
    }

    /// `product.product.search_read(domain, **kwargs)`: the rows it answers.
    fn search_products(state: &OdooState, domain: Value, kwargs: Value) -> Vec<Value> {
        let kwargs = kwargs.as_object().cloned().unwrap_or_default();
        match call(state, "product.product", "search_read", &[domain], &kwargs) {
            Ok(Value::Array(rows)) => rows,
            Ok(other) => panic!("search_read answered {other}"),
            Err(e) => panic!("search_read: {}: {}", e.name, e.message),
        }
    }

    /// The pages of the catalogue poll's `(write_date, id)` keyset after `cursor`, two rows a
    /// page; `scope` holds the `domain` terms and `context` that every search adds.
    fn keyset_pages(state: &OdooState, scope: &Value, cursor: (&str, i64)) -> Vec<Vec<i64>> {
        let (mut at, mut last_id) = (cursor.0.to_owned(), cursor.1);
        let mut pages = Vec::new();
        loop {
            let after = json!([
                "|",
                ["write_date", ">", at],
                "&",
                ["write_date", "=", at],
                ["id", ">", last_id]
            ]);
            let mut domain = scope["domain"].as_array().cloned().unwrap_or_default();
            domain.extend(after.as_array().cloned().unwrap_or_default());
            let mut kwargs = json!({"fields": ["name", "default_code", "list_price", "active",
                                               "write_date", "currency_id", "description_sale"],
                                    "order": "write_date asc, id asc", "limit": 2});
            if let Some(context) = scope.get("context") {
                kwargs["context"] = context.clone();
            }
            let rows = search_products(state, Value::Array(domain), kwargs);
            let Some(last) = rows.last() else {
                return pages;
            };
            at = last["write_date"].as_str().unwrap_or_default().to_owned();
            last_id = last["id"].as_i64().unwrap_or_default();
            pages.push(rows.iter().filter_map(|r| r["id"].as_i64()).collect());
        }
    }

    #[test]
    fn the_product_keyset_pages_in_write_date_order_archived_ones_included() {
        let sim = OdooSim {
            addr: ([127, 0, 0, 1], 0).into(),
            state: Arc::new(state()),
        };
        let written = [
            ("LIC-1", "2025-03-14 16:00:02", true),
            ("LIC-2", "2025-03-14 16:00:01", true),
            ("LIC-3", "2025-03-14 16:00:02", false),
            ("LIC-4", "2025-03-14 16:00:01", true),
            ("LIC-5", "2025-03-14 15:59:59", true),
        ];
        for (code, at, active) in written {
            let id = sim.add_product(code, "Licencia", 100.0, &[12]);
            let mut books = sim.state.books.lock().expect("the books");
            let product = books.products.get_mut(&id).expect("the product");
            product.write_date = at.to_owned();
            product.active = active;
        }
        let since = ("2025-03-14 16:00:00", 0);
        let by_term = json!({"domain": [["active", "in", [true, false]]]});
        assert_eq!(
            keyset_pages(&sim.state, &by_term, since),
            vec![vec![302, 304], vec![301, 303]]
        );
        let by_context = json!({"context": {"active_test": false}});
        assert_eq!(
            keyset_pages(&sim.state, &by_context, since),
            vec![vec![302, 304], vec![301, 303]]
        );
        let live_only = json!({});
        assert_eq!(
            keyset_pages(&sim.state, &live_only, since),
            vec![vec![302, 304], vec![301]]
        );

        let rows = search_products(
            &sim.state,
            json!([["id", "=", 303]]),
            json!({"fields": ["name", "default_code", "list_price", "active", "write_date",
                              "currency_id", "description_sale"],
                   "context": {"active_test": false}}),
        );
        assert_eq!(
            rows,
            vec![
                json!({"id": 303, "name": "Licencia", "default_code": "LIC-3",
                        "list_price": 100.0, "active": false,
                        "write_date": "2025-03-14 16:00:02", "currency_id": [8, "COP"],
                        "description_sale": false})
            ]
        );
        let in_cop = search_products(&sim.state, json!([["currency_id", "=", 8]]), json!({}));
        assert_eq!(
            in_cop.len(),
            4,
            "the live ones, all in the company currency"
        );
    }

    #[tokio::test]
    async fn a_users_product_edit_moves_write_date_past_the_cursor() {
        let sim = OdooSim {
            addr: ([127, 0, 0, 1], 0).into(),
            state: Arc::new(state()),
        };
        let id = sim.add_product("LIC-ERP", "Licencia anual ERP", 1_500_000.5, &[12]);
        let all = json!({"context": {"active_test": false}});
        let read = || search_products(&sim.state, json!([["id", "=", id]]), all.clone());
        let before = read()[0].clone();
        let created = before["write_date"].as_str().unwrap_or_default().to_owned();
        assert_eq!(before["create_date"], json!(created));
        assert_eq!(
            keyset_pages(&sim.state, &all, (&created, id)),
            Vec::<Vec<i64>>::new(),
            "nothing after the cursor"
        );

        super::super::next_second().await;
        sim.set_product_price(id, 1_600_000.0);
        let after = read()[0].clone();
        assert_eq!(after["list_price"], json!(1_600_000.0));
        assert!(
            after["write_date"].as_str() > Some(created.as_str()),
            "{after}"
        );
        assert_eq!(after["create_date"], json!(created));
        assert_eq!(
            keyset_pages(&sim.state, &all, (&created, id)),
            vec![vec![id]]
        );

        sim.rename_product(id, "Licencia ERP 12 meses");
        sim.set_product_description(id, "Un año de uso");
        sim.archive_product(id);
        let edited = read()[0].clone();
        assert_eq!(edited["name"], json!("Licencia ERP 12 meses"));
        assert_eq!(edited["description_sale"], json!("Un año de uso"));
        assert_eq!(edited["active"], json!(false));
        assert!(search_products(&sim.state, json!([]), json!({})).is_empty());

        let unknown = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sim.set_product_price(999, 1.0);
        }));
        assert!(unknown.is_err());
        assert_eq!(read().len(), 1, "the books stay usable");
    }
}
