//! `account.payment` customer payments read back as canonical `Payment`s.
//!
//! The memo moved in Odoo 18: `memo` from 18 on, `ref` before. Reading a field a version lacks
//! is an error in Odoo, so there is one field list per generation; the mapping takes whichever
//! of the two the record has.

use super::record::Problems;
use crate::domain::payment::Payment;
use crate::domain::{ErpId, Rejection};
use serde_json::{Map, Value};

/// Fields to read for `payment` from Odoo 18 on.
pub const PAYMENT_FIELDS: &[&str] = &[
    "id",
    "payment_type",
    "partner_id",
    "amount",
    "currency_id",
    "date",
    "memo",
    "reconciled_invoice_ids",
];

/// Fields to read for `payment` before Odoo 18 (`ref` instead of `memo`).
pub const PAYMENT_FIELDS_BEFORE_18: &[&str] = &[
    "id",
    "payment_type",
    "partner_id",
    "amount",
    "currency_id",
    "date",
    "ref",
    "reconciled_invoice_ids",
];

/// A payment with the partner that paid, which the canonical `Payment` does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRead {
    pub payment: Payment,
    pub partner: Option<ErpId>,
}

/// A customer payment read with `PAYMENT_FIELDS` (or `PAYMENT_FIELDS_BEFORE_18`). It must be
/// incoming and reconciled with exactly one invoice, the one `Payment` settles: a payment not
/// yet reconciled, or split over several invoices, is rejected rather than attributed to a
/// guess.
pub fn payment(record: &Map<String, Value>) -> Result<PaymentRead, Rejection> {
    let mut problems = Problems::default();
    let id = problems.id(record);
    if let Some(kind) = problems.text(record, "payment_type")
        && kind != "inbound"
    {
        problems.push(
            "payment_type",
            "is not inbound: only customer payments are read",
        );
    }
    let partner = problems
        .many2one(record, "partner_id")
        .and_then(|p| ErpId::parse(&p.id.to_string()).ok());
    let currency = problems.currency(record, "currency_id");
    let amount = currency.and_then(|c| problems.amount(record, "amount", c));
    let date = problems.required_date(record, "date");
    let reference = match (record.contains_key("memo"), record.contains_key("ref")) {
        (true, _) => problems.text(record, "memo"),
        (false, true) => problems.text(record, "ref"),
        (false, false) => {
            problems.push(
                "memo",
                "is missing from the record: read memo (Odoo 18+) or ref",
            );
            None
        }
    };
    let invoice = problems
        .ids(record, "reconciled_invoice_ids")
        .and_then(|ids| match ids.as_slice() {
            [one] => ErpId::parse(&one.to_string()).ok(),
            [] => {
                problems.push(
                    "reconciled_invoice_ids",
                    "the payment is not reconciled with an invoice yet",
                );
                None
            }
            _ => {
                problems.push(
                    "reconciled_invoice_ids",
                    "the payment settles several invoices: record it per invoice",
                );
                None
            }
        });
    match (id, invoice, amount, date) {
        (Some(id), Some(invoice), Some(amount), Some(date)) if problems.is_empty() => {
            Ok(PaymentRead {
                payment: Payment {
                    id,
                    invoice,
                    amount,
                    date,
                    reference: reference.map(|r| r.trim().to_owned()),
                },
                partner,
            })
        }
        _ => Err(Rejection(problems.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::datetime::Date;
    use crate::domain::money::{Currency, Money};
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("a JSON object literal")
    }

    fn read(id: &str, invoice: &str, minor: i64, reference: Option<&str>) -> PaymentRead {
        PaymentRead {
            payment: Payment {
                id: ErpId::parse(id).expect("id"),
                invoice: ErpId::parse(invoice).expect("id"),
                amount: Money::from_minor(minor, Currency::COP),
                date: Date::from_ymd(2025, 3, 20).expect("date"),
                reference: reference.map(Into::into),
            },
            partner: ErpId::parse("42").ok(),
        }
    }

    #[test]
    fn payments_of_either_generation_are_read() {
        let cases = [
            (
                json!({"id": 77, "payment_type": "inbound", "partner_id": [42, "Andina"],
                       "amount": 1190000.0, "currency_id": [8, "COP"], "date": "2025-03-20",
                       "memo": "FEV/2025/00318", "reconciled_invoice_ids": [318]}),
                read("77", "318", 119_000_000, Some("FEV/2025/00318")),
            ),
            (
                json!({"id": 78, "payment_type": "inbound", "partner_id": [42, "Andina"],
                       "amount": 500000.5, "currency_id": [8, "COP"], "date": "2025-03-20",
                       "ref": false, "reconciled_invoice_ids": [318]}),
                read("78", "318", 50_000_050, None),
            ),
        ];
        for (record, expected) in cases {
            assert_eq!(payment(&object(record.clone())), Ok(expected), "{record}");
        }
        for fields in [PAYMENT_FIELDS, PAYMENT_FIELDS_BEFORE_18] {
            assert!(fields.contains(&"reconciled_invoice_ids"));
        }
    }

    #[test]
    fn unmappable_payments_list_every_failing_field() {
        let cases = [
            (
                json!({"id": 77, "payment_type": "outbound", "partner_id": false,
                       "amount": 10.0, "currency_id": [8, "COP"], "date": false,
                       "memo": false, "reconciled_invoice_ids": []}),
                vec!["payment_type", "date", "reconciled_invoice_ids"],
            ),
            (
                json!({"id": 77, "amount": 10.001, "currency_id": [8, "COP"],
                       "date": "2025-03-20", "reconciled_invoice_ids": [318, 319]}),
                vec!["amount", "memo", "reconciled_invoice_ids"],
            ),
        ];
        for (record, fields) in cases {
            let rejection = payment(&object(record.clone())).expect_err("unmappable");
            let failed: Vec<&str> = rejection
                .fields()
                .iter()
                .map(|e| e.field.as_str())
                .collect();
            assert_eq!(failed, fields, "{record}");
        }
    }
}
