//! The sales document puente creates for a won deal, by configuration: a customer invoice
//! (`account.move`, see `invoice`) or a sales order (`sale.order`), and either read back as an
//! `ErpDocument` (number, state, Odoo's totals) to compare with what we asked for.

use super::invoice::{LineFields, line_commands, read_totals};
use super::record::{NOT_READ, Problems};
use crate::domain::invoice::SalesInvoice;
use crate::domain::money::Rate;
use crate::domain::{Rejection, Sku};
use crate::ports::{DocumentState, ErpDocument};
use serde_json::{Map, Value, json};

/// Which model the documents are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentModel {
    /// `account.move` with `move_type` `out_invoice`, found by `ref`.
    Invoice,
    /// `sale.order`, found by `client_order_ref`.
    SalesOrder,
}

impl DocumentModel {
    pub fn model(self) -> &'static str {
        match self {
            DocumentModel::Invoice => "account.move",
            DocumentModel::SalesOrder => "sale.order",
        }
    }

    /// The field that carries our reference.
    pub fn reference_field(self) -> &'static str {
        match self {
            DocumentModel::Invoice => "ref",
            DocumentModel::SalesOrder => "client_order_ref",
        }
    }

    /// The domain that finds our document: cancelled ones count, so a cancelled invoice is never
    /// silently replaced by a new one.
    pub fn domain(self, reference: &str) -> Value {
        match self {
            DocumentModel::Invoice => json!([
                ["ref", "=", reference],
                ["move_type", "=", super::OUT_INVOICE]
            ]),
            DocumentModel::SalesOrder => json!([["client_order_ref", "=", reference]]),
        }
    }

    /// The domain that finds our documents carrying any of `references`, as `domain` does one.
    pub fn domain_any(self, references: &[String]) -> Value {
        match self {
            DocumentModel::Invoice => json!([
                ["ref", "in", references],
                ["move_type", "=", super::OUT_INVOICE]
            ]),
            DocumentModel::SalesOrder => json!([["client_order_ref", "in", references]]),
        }
    }

    /// The method that posts the invoice or confirms the order.
    pub fn confirm_method(self) -> &'static str {
        match self {
            DocumentModel::Invoice => "action_post",
            DocumentModel::SalesOrder => "action_confirm",
        }
    }

    /// Fields to read for `document`.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            DocumentModel::Invoice => &[
                "id",
                "name",
                "state",
                "currency_id",
                "amount_untaxed",
                "amount_tax",
                "amount_total",
                "invoice_line_ids",
            ],
            DocumentModel::SalesOrder => &[
                "id",
                "name",
                "state",
                "currency_id",
                "amount_untaxed",
                "amount_tax",
                "amount_total",
                "order_line",
            ],
        }
    }

    fn lines_field(self) -> &'static str {
        match self {
            DocumentModel::Invoice => "invoice_line_ids",
            DocumentModel::SalesOrder => "order_line",
        }
    }
}

const ORDER_LINES: LineFields = LineFields {
    one2many: "order_line",
    quantity: "product_uom_qty",
    // `tax_id` up to Odoo 17; later versions renamed it `tax_ids` (UNCONFIRMED).
    taxes: "tax_id",
    product_required: true,
};

/// The `sale.order` create values for `invoice`. An order's currency is its pricelist's, so the
/// caller resolves `pricelist_id` (a pricelist in the invoice's currency) besides the products
/// and taxes. Every order line needs a product.
pub fn sale_order_values(
    invoice: &SalesInvoice,
    pricelist_id: i64,
    product_id: impl Fn(&Sku) -> Option<i64>,
    tax_id: impl Fn(Rate) -> Option<i64>,
) -> Result<Map<String, Value>, Rejection> {
    let mut problems = Problems::default();
    let partner_id = super::invoice::partner_id(invoice, &mut problems);
    let lines = line_commands(invoice, &ORDER_LINES, product_id, tax_id, &mut problems);
    if !problems.is_empty() {
        return Err(Rejection(problems.0));
    }
    let mut vals = Map::new();
    vals.insert("partner_id".into(), json!(partner_id));
    vals.insert("client_order_ref".into(), json!(invoice.reference));
    vals.insert("pricelist_id".into(), json!(pricelist_id));
    vals.insert(
        "date_order".into(),
        json!(format!("{} 12:00:00", invoice.issue_date.format_iso())),
    );
    if let Some(due) = invoice.due_date {
        vals.insert("validity_date".into(), json!(due.format_iso()));
    }
    vals.insert("order_line".into(), Value::Array(lines));
    Ok(vals)
}

/// A document read with `model.fields()`.
pub fn document(
    model: DocumentModel,
    record: &Map<String, Value>,
) -> Result<ErpDocument, Rejection> {
    let mut problems = Problems::default();
    let id = problems.id(record);
    let number = match record.get("name") {
        Some(Value::String(name)) if !matches!(name.trim(), "" | "/") => {
            Some(name.trim().to_owned())
        }
        Some(Value::String(_) | Value::Bool(false)) => None,
        None => {
            problems.push("name", NOT_READ);
            None
        }
        Some(_) => {
            problems.push("name", "is not text");
            None
        }
    };
    let state =
        problems
            .required_text(record, "state")
            .and_then(|raw| match (model, raw.as_str()) {
                (_, "draft") | (DocumentModel::SalesOrder, "sent") => Some(DocumentState::Draft),
                (DocumentModel::Invoice, "posted")
                | (DocumentModel::SalesOrder, "sale" | "done") => Some(DocumentState::Confirmed),
                (_, "cancel") => Some(DocumentState::Cancelled),
                _ => {
                    problems.push("state", "is a state puente does not know");
                    None
                }
            });
    let totals = read_totals(&mut problems, record);
    let line_count = match record.get(model.lines_field()) {
        Some(Value::Array(ids)) => Some(ids.len()),
        None => {
            problems.push(model.lines_field(), NOT_READ);
            None
        }
        Some(_) => {
            problems.push(model.lines_field(), "is not a list of line ids");
            None
        }
    };
    match (id, state, totals, line_count) {
        (Some(id), Some(state), Some(totals), Some(line_count)) if problems.is_empty() => {
            Ok(ErpDocument {
                id: id.as_str().to_owned(),
                number,
                state,
                totals,
                line_count,
            })
        }
        _ => Err(Rejection(problems.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ErpId;
    use crate::domain::datetime::Date;
    use crate::domain::invoice::InvoiceLine;
    use crate::domain::money::{Currency, Money, Quantity};

    fn order(sku: Option<&str>) -> SalesInvoice {
        SalesInvoice::new(
            "hubspot-deal-5512".into(),
            ErpId::parse("42").expect("id"),
            Currency::CLP,
            Date::from_ymd(2026, 11, 26).expect("date"),
            None,
            vec![InvoiceLine {
                sku: sku.map(|s| Sku::parse(s).expect("sku")),
                description: "Soporte anual".into(),
                quantity: Quantity::from_units(3),
                unit_price: Money::from_minor(125_000, Currency::CLP),
                discount: Rate::ZERO,
                taxes: vec![Rate::from_percent(19)],
            }],
        )
        .expect("valid")
    }

    #[test]
    fn an_order_carries_our_reference_its_pricelist_and_product_lines() {
        let vals = sale_order_values(&order(Some("SOP-1")), 3, |_| Some(311), |_| Some(12))
            .expect("values");
        assert_eq!(vals["client_order_ref"], json!("hubspot-deal-5512"));
        assert_eq!(vals["pricelist_id"], json!(3));
        assert_eq!(
            vals["order_line"],
            json!([[0, 0, {"product_id": 311, "name": "Soporte anual", "product_uom_qty": 3.0,
                "price_unit": 125000.0, "discount": 0.0, "tax_id": [[6, 0, [12]]]}]])
        );
    }

    #[test]
    fn an_order_line_without_a_product_is_rejected() {
        let err = sale_order_values(&order(None), 3, |_| Some(311), |_| Some(12))
            .expect_err("no product");
        assert_eq!(err.0[0].field, "order_line[1].product_id");
    }

    #[test]
    fn documents_read_back_with_their_number_state_and_totals() {
        let record = json!({"id": 318, "name": "INV/2026/00007", "state": "posted",
            "currency_id": [19, "CLP"], "amount_untaxed": 375000.0, "amount_tax": 71250.0,
            "amount_total": 446250.0, "invoice_line_ids": [901]});
        let doc = document(DocumentModel::Invoice, record.as_object().expect("object"))
            .expect("document");
        assert_eq!(doc.number.as_deref(), Some("INV/2026/00007"));
        assert_eq!(doc.state, DocumentState::Confirmed);
        assert_eq!(doc.totals.total, Money::from_minor(446_250, Currency::CLP));
        assert_eq!(doc.line_count, 1);

        let draft = json!({"id": 319, "name": "/", "state": "draft", "currency_id": [8, "COP"],
            "amount_untaxed": 0.0, "amount_tax": 0.0, "amount_total": 0.0, "invoice_line_ids": []});
        let doc =
            document(DocumentModel::Invoice, draft.as_object().expect("object")).expect("document");
        assert_eq!((doc.number, doc.state), (None, DocumentState::Draft));
    }
}
