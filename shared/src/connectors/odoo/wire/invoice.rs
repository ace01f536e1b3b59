//! `account.move` customer invoices (`move_type: "out_invoice"`): the create values for a
//! canonical `SalesInvoice`, and the totals and payment status read back from a move.
//!
//! Amounts, quantities and percentages go out as JSON floats, because Odoo's `price_unit`,
//! `quantity` and `discount` are float fields, but only when the float prints back as exactly
//! our decimal (`500000.00` COP is sent as `500000.0`); otherwise the invoice is rejected rather
//! than sent approximately (see `record::exact_float`).

use super::record::{NOT_READ, Problems, Record, exact_float};
use crate::domain::invoice::{InvoiceTotals, PaymentState, SalesInvoice};
use crate::domain::money::Rate;
use crate::domain::payment::InvoiceStatus;
use crate::domain::{Rejection, Sku};
use serde_json::{Map, Value, json};

/// The `move_type` of a customer invoice.
pub const OUT_INVOICE: &str = "out_invoice";

/// Fields to read for `invoice_totals` and `invoice_status`.
pub const INVOICE_FIELDS: &[&str] = &[
    "id",
    "name",
    "move_type",
    "state",
    "ref",
    "currency_id",
    "invoice_date_due",
    "amount_untaxed",
    "amount_tax",
    "amount_total",
    "amount_residual",
    "payment_state",
];

/// The `account.move` create values for `invoice`. The caller resolves Odoo ids: `currency_id`
/// (the `res.currency` of `invoice.currency`), `product_id` (the `product.product` with a
/// line's SKU) and `tax_id` (the sales `account.tax` for a rate). A customer id that is not an
/// Odoo id, a SKU or rate without an Odoo record, or an amount a float cannot carry exactly
/// rejects the invoice, naming the line.
pub fn invoice_values(
    invoice: &SalesInvoice,
    currency_id: i64,
    product_id: impl Fn(&Sku) -> Option<i64>,
    tax_id: impl Fn(Rate) -> Option<i64>,
) -> Result<Map<String, Value>, Rejection> {
    let mut problems = Problems::default();
    let partner_id = partner_id(invoice, &mut problems);
    let lines = line_commands(invoice, &INVOICE_LINES, product_id, tax_id, &mut problems);
    if !problems.is_empty() {
        return Err(Rejection(problems.0));
    }
    let mut vals = Map::new();
    vals.insert("move_type".into(), json!(OUT_INVOICE));
    vals.insert("partner_id".into(), json!(partner_id));
    vals.insert(
        "invoice_date".into(),
        json!(invoice.issue_date.format_iso()),
    );
    if let Some(due) = invoice.due_date {
        vals.insert("invoice_date_due".into(), json!(due.format_iso()));
    }
    vals.insert("currency_id".into(), json!(currency_id));
    vals.insert("ref".into(), json!(invoice.reference));
    vals.insert("invoice_line_ids".into(), Value::Array(lines));
    Ok(vals)
}

/// The invoice's customer as an Odoo partner id.
pub(super) fn partner_id(invoice: &SalesInvoice, problems: &mut Problems) -> i64 {
    match invoice.customer.as_str().parse::<i64>() {
        Ok(id) if id > 0 => id,
        _ => {
            problems.push("partner_id", "the customer id is not an Odoo record id");
            0
        }
    }
}

/// How a document model names its lines' fields.
pub(super) struct LineFields {
    /// The one2many holding the lines (`invoice_line_ids`, `order_line`).
    pub(super) one2many: &'static str,
    pub(super) quantity: &'static str,
    pub(super) taxes: &'static str,
    /// Sales order lines need a product; invoice lines may be text only.
    pub(super) product_required: bool,
}

const INVOICE_LINES: LineFields = LineFields {
    one2many: "invoice_line_ids",
    quantity: "quantity",
    taxes: "tax_ids",
    product_required: false,
};

/// The `(0, 0, vals)` create commands of a document's lines, recording every line that cannot
/// be sent: a SKU without an Odoo product, a rate without a sales tax, an inexact float.
pub(super) fn line_commands(
    invoice: &SalesInvoice,
    fields: &LineFields,
    product_id: impl Fn(&Sku) -> Option<i64>,
    tax_id: impl Fn(Rate) -> Option<i64>,
    problems: &mut Problems,
) -> Vec<Value> {
    let mut lines = Vec::with_capacity(invoice.lines.len());
    for (index, line) in invoice.lines.iter().enumerate() {
        let at = |field: &str| format!("{}[{}].{field}", fields.one2many, index + 1);
        let mut vals = Map::new();
        match &line.sku {
            Some(sku) => match product_id(sku) {
                Some(id) => {
                    vals.insert("product_id".into(), json!(id));
                }
                None => problems.push(at("product_id"), "no Odoo product has the line's SKU"),
            },
            None if fields.product_required => problems.push(
                at("product_id"),
                "the line has no SKU, and an Odoo order line needs a product",
            ),
            None => {}
        }
        vals.insert("name".into(), json!(line.description));
        let numbers = [
            (fields.quantity, line.quantity.to_decimal_string()),
            ("price_unit", line.unit_price.to_decimal_string()),
            ("discount", line.discount.to_percent_string()),
        ];
        for (field, decimal) in numbers {
            match exact_float(&decimal) {
                Some(number) => {
                    vals.insert(field.into(), number);
                }
                None => problems.push(
                    at(field),
                    "cannot be sent exactly as an Odoo float: split the line",
                ),
            }
        }
        let mut taxes = Vec::with_capacity(line.taxes.len());
        for rate in &line.taxes {
            match tax_id(*rate) {
                Some(id) => taxes.push(id),
                None => problems.push(
                    at(fields.taxes),
                    format!("no Odoo sales tax is mapped for {rate}: add it to the tax table"),
                ),
            }
        }
        // (6, 0, ids) replaces the line's taxes with exactly these, instead of adding them to
        // the product's default taxes.
        vals.insert(fields.taxes.into(), json!([[6, 0, taxes]]));
        lines.push(json!([0, 0, vals]));
    }
    lines
}

/// What Odoo computed for a move read with `INVOICE_FIELDS`, in the move's currency.
pub fn invoice_totals(record: &Map<String, Value>) -> Result<InvoiceTotals, Rejection> {
    let mut problems = Problems::default();
    let totals = read_totals(&mut problems, record);
    match totals {
        Some(totals) if problems.is_empty() => Ok(totals),
        _ => Err(Rejection(problems.0)),
    }
}

pub(super) fn read_totals(problems: &mut Problems, record: &Record) -> Option<InvoiceTotals> {
    let currency = problems.currency(record, "currency_id")?;
    let untaxed = problems.amount(record, "amount_untaxed", currency);
    let tax = problems.amount(record, "amount_tax", currency);
    let total = problems.amount(record, "amount_total", currency);
    Some(InvoiceTotals {
        untaxed: untaxed?,
        tax: tax?,
        total: total?,
    })
}

/// Where a posted invoice stands, read with `INVOICE_FIELDS`. A draft (no number yet, `false`
/// or `/`) is rejected: post it first.
pub fn invoice_status(record: &Map<String, Value>) -> Result<InvoiceStatus, Rejection> {
    let mut problems = Problems::default();
    let number = match record.get("name") {
        Some(Value::String(name)) if !matches!(name.trim(), "" | "/") => {
            Some(name.trim().to_owned())
        }
        Some(Value::String(_) | Value::Bool(false)) => {
            problems.push("name", "the invoice has no number yet: post it first");
            None
        }
        None => {
            problems.push("name", NOT_READ);
            None
        }
        Some(_) => {
            problems.push("name", "is not text");
            None
        }
    };
    let currency = problems.currency(record, "currency_id");
    let invoiced = currency.and_then(|c| problems.amount(record, "amount_total", c));
    let outstanding = currency.and_then(|c| problems.amount(record, "amount_residual", c));
    let due_date = problems.date(record, "invoice_date_due");
    let state = problems
        .required_text(record, "payment_state")
        .and_then(|raw| {
            payment_state(&raw).or_else(|| {
                problems.push(
                    "payment_state",
                    "is not one of not_paid, partial, in_payment, paid, reversed: map it first",
                );
                None
            })
        });
    match (number, invoiced, outstanding, state) {
        (Some(invoice_number), Some(invoiced), Some(outstanding), Some(state))
            if problems.is_empty() =>
        {
            Ok(InvoiceStatus {
                invoice_number,
                invoiced,
                outstanding,
                due_date,
                state,
            })
        }
        _ => Err(Rejection(problems.0)),
    }
}

/// Odoo's `payment_state` as the CRM shows it. `in_payment` (paid, waiting for the bank
/// statement to match the payment) is paid for the customer. Others (`invoicing_legacy`,
/// states added by later versions or modules) are `None`: a state we do not know must not be
/// shown as one we do.
pub fn payment_state(raw: &str) -> Option<PaymentState> {
    match raw.trim() {
        "not_paid" => Some(PaymentState::NotPaid),
        "partial" => Some(PaymentState::Partial),
        "in_payment" | "paid" => Some(PaymentState::Paid),
        "reversed" => Some(PaymentState::Reversed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::datetime::Date;
    use crate::domain::invoice::InvoiceLine;
    use crate::domain::money::{Currency, Money, Quantity};
    use crate::domain::{ErpId, FieldError};

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("a JSON object literal")
    }

    fn cop(minor: i64) -> Money {
        Money::from_minor(minor, Currency::COP)
    }

    fn line(sku: Option<&str>, price: Money, quantity: Quantity, discount: Rate) -> InvoiceLine {
        InvoiceLine {
            sku: sku.map(|s| Sku::parse(s).expect("sku")),
            description: "Licencia anual ERP".into(),
            quantity,
            unit_price: price,
            discount,
            taxes: vec![Rate::from_percent(19)],
        }
    }

    fn invoice(lines: Vec<InvoiceLine>) -> SalesInvoice {
        SalesInvoice::new(
            "hubspot-deal-5512".into(),
            ErpId::parse("42").expect("id"),
            Currency::COP,
            Date::from_ymd(2025, 3, 14).expect("date"),
            Date::from_ymd(2025, 4, 13).ok(),
            lines,
        )
        .expect("valid invoice")
    }

    fn products(sku: &Sku) -> Option<i64> {
        (sku.as_str() == "LIC-ERP").then_some(311)
    }

    /// The caller's tax table: `account.tax` 19 is IVA 19%, 20 is IVA 5%.
    fn taxes(rate: Rate) -> Option<i64> {
        [(Rate::from_percent(19), 19), (Rate::from_percent(5), 20)]
            .into_iter()
            .find_map(|(r, id)| (r == rate).then_some(id))
    }

    fn rate_of(id: i64) -> Rate {
        match id {
            19 => Rate::from_percent(19),
            20 => Rate::from_percent(5),
            _ => panic!("unknown tax {id}"),
        }
    }

    #[test]
    fn an_invoice_becomes_out_invoice_create_values() {
        let vals = invoice_values(
            &invoice(vec![line(
                Some("LIC-ERP"),
                cop(50_000_000),
                Quantity::from_units(2),
                Rate::ZERO,
            )]),
            8,
            products,
            taxes,
        )
        .expect("mappable");
        assert_eq!(
            Value::Object(vals.clone()),
            json!({"move_type": "out_invoice", "partner_id": 42, "invoice_date": "2025-03-14",
                   "invoice_date_due": "2025-04-13", "currency_id": 8, "ref": "hubspot-deal-5512",
                   "invoice_line_ids": [[0, 0, {"product_id": 311, "name": "Licencia anual ERP",
                       "quantity": 2.0, "price_unit": 500000.0, "discount": 0.0,
                       "tax_ids": [[6, 0, [19]]]}]]})
        );
        // The price goes out as the float whose text is exactly 500000.00 COP.
        let price = &vals["invoice_line_ids"][0][2]["price_unit"];
        assert_eq!(serde_json::to_string(price).expect("json"), "500000.0");
        assert_eq!(Money::from_json(price, Currency::COP), Ok(cop(50_000_000)));
    }

    #[test]
    fn lines_without_odoo_records_or_exact_floats_are_all_rejected() {
        let mut untaxed = line(
            None,
            cop(33_333),
            Quantity::from_micros(2_500_000),
            Rate::ZERO,
        );
        untaxed.taxes = vec![Rate::from_percent(16)];
        let mut bad = invoice(vec![
            line(Some("LIC-ERP"), cop(100), Quantity::ONE, Rate::ZERO),
            line(Some("NO-SUCH"), cop(100), Quantity::ONE, Rate::ZERO),
            untaxed,
            line(None, cop(i64::MAX), Quantity::ONE, Rate::ZERO),
        ]);
        bad.customer = ErpId::parse("C000123").expect("id");
        let rejection = invoice_values(&bad, 8, products, taxes).expect_err("unmappable");
        let failed: Vec<&str> = rejection
            .fields()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "partner_id",
                "invoice_line_ids[2].product_id",
                "invoice_line_ids[3].tax_ids",
                "invoice_line_ids[4].price_unit",
            ]
        );
        assert!(!rejection.to_string().contains("C000123"), "{rejection}");
    }

    /// What Odoo computes for the create values, in floats: per line
    /// `price_unit * quantity * (1 - discount / 100)`, taxes rounded per line.
    fn odoo_read_back(vals: &Map<String, Value>) -> Map<String, Value> {
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let (mut untaxed, mut tax) = (0.0, 0.0);
        for command in vals["invoice_line_ids"].as_array().expect("lines") {
            let line = &command[2];
            let number = |field: &str| line[field].as_f64().expect("float");
            let subtotal = round(
                number("price_unit") * number("quantity") * (1.0 - number("discount") / 100.0),
            );
            untaxed += subtotal;
            for id in line["tax_ids"][0][2].as_array().expect("tax ids") {
                let percent = rate_of(id.as_i64().expect("id")).millionths() as f64 / 10_000.0;
                tax += round(subtotal * percent / 100.0);
            }
        }
        object(
            json!({"id": 318, "name": "FEV/2025/00318", "move_type": vals["move_type"],
            "state": "posted", "ref": vals["ref"], "currency_id": [vals["currency_id"], "COP"],
            "invoice_date_due": vals["invoice_date_due"], "amount_untaxed": round(untaxed),
            "amount_tax": round(tax), "amount_total": round(untaxed + tax),
            "amount_residual": round(untaxed + tax), "payment_state": "not_paid"}),
        )
    }

    #[test]
    fn totals_read_back_from_the_created_invoice_match_ours() {
        let cases = [
            vec![line(
                Some("LIC-ERP"),
                cop(50_000_000),
                Quantity::from_units(2),
                Rate::ZERO,
            )],
            vec![
                line(
                    None,
                    cop(33_333),
                    Quantity::from_units(3),
                    Rate::from_percent(10),
                ),
                line(
                    None,
                    cop(1_990),
                    Quantity::from_micros(1_500_000),
                    Rate::ZERO,
                ),
            ],
        ];
        for lines in cases {
            let invoice = invoice(lines);
            let vals = invoice_values(&invoice, 8, products, taxes).expect("mappable");
            let read = odoo_read_back(&vals);
            let mut read_fields: Vec<&str> = read.keys().map(String::as_str).collect();
            let mut requested = INVOICE_FIELDS.to_vec();
            read_fields.sort_unstable();
            requested.sort_unstable();
            assert_eq!(
                read_fields, requested,
                "the sample is what INVOICE_FIELDS reads"
            );
            let ours = invoice.totals().expect("totals");
            assert_eq!(invoice_totals(&read), Ok(ours), "{read:?}");
            assert_eq!(ours.check(&invoice_totals(&read).expect("totals")), Ok(()));
        }
    }

    #[test]
    fn moves_are_read_as_payment_status() {
        let status = |number: &str, residual: i64, due, state| InvoiceStatus {
            invoice_number: number.into(),
            invoiced: cop(119_000_000),
            outstanding: cop(residual),
            due_date: due,
            state,
        };
        let due = Date::from_ymd(2025, 4, 13).ok();
        let cases = [
            (
                json!({"name": "FEV/2025/00318", "currency_id": [8, "COP"],
                       "amount_total": 1190000.0, "amount_residual": 1190000.0,
                       "invoice_date_due": "2025-04-13", "payment_state": "not_paid"}),
                status("FEV/2025/00318", 119_000_000, due, PaymentState::NotPaid),
            ),
            (
                json!({"name": "FEV/2025/00318", "currency_id": [8, "COP"],
                       "amount_total": 1190000.0, "amount_residual": 690000.0,
                       "invoice_date_due": false, "payment_state": "partial"}),
                status("FEV/2025/00318", 69_000_000, None, PaymentState::Partial),
            ),
            (
                json!({"name": "FEV/2025/00318", "currency_id": [8, "COP"],
                       "amount_total": 1189999.9999999998, "amount_residual": 0.0,
                       "invoice_date_due": "2025-04-13", "payment_state": "in_payment"}),
                status("FEV/2025/00318", 0, due, PaymentState::Paid),
            ),
        ];
        for (record, expected) in cases {
            assert_eq!(
                invoice_status(&object(record.clone())),
                Ok(expected),
                "{record}"
            );
        }
    }

    #[test]
    fn unmappable_moves_list_every_failing_field() {
        let cases = [
            (
                json!({"name": "/", "currency_id": [8, "COP"], "amount_total": 10.0,
                       "amount_residual": 10.0, "invoice_date_due": false,
                       "payment_state": "invoicing_legacy"}),
                vec!["name", "payment_state"],
            ),
            (
                json!({"name": false, "currency_id": [8, "XXX"], "amount_total": 10.0,
                       "invoice_date_due": "14/03/2025", "payment_state": false}),
                vec!["name", "currency_id", "invoice_date_due", "payment_state"],
            ),
            (
                json!({"name": "FEV/1", "currency_id": [8, "COP"], "amount_total": 12.345,
                       "amount_residual": false, "payment_state": "paid"}),
                vec!["amount_total", "amount_residual"],
            ),
        ];
        for (record, fields) in cases {
            let rejection = invoice_status(&object(record.clone())).expect_err("unmappable");
            let failed: Vec<&str> = rejection
                .fields()
                .iter()
                .map(|e| e.field.as_str())
                .collect();
            assert_eq!(failed, fields, "{record}");
        }
        assert_eq!(
            invoice_totals(&object(json!({"currency_id": false}))),
            Err(Rejection(vec![FieldError::new(
                "currency_id",
                "is empty in Odoo: set it"
            )]))
        );
    }

    #[test]
    fn every_known_payment_state_maps_and_others_do_not() {
        let cases = [
            ("not_paid", Some(PaymentState::NotPaid)),
            ("partial", Some(PaymentState::Partial)),
            ("in_payment", Some(PaymentState::Paid)),
            ("paid", Some(PaymentState::Paid)),
            ("reversed", Some(PaymentState::Reversed)),
            ("invoicing_legacy", None),
            ("blocked", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(payment_state(raw), expected, "{raw}");
        }
    }
}
