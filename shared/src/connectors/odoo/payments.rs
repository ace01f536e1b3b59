//! Odoo as the source of invoices' payment status: the customer invoice behind a changed
//! `account.move` (a credit note leads to the invoice it reverses), and the posted customer
//! invoices and credit notes written since a point, for the polling fallback of the webhook.

use super::SYSTEM;
use super::client::{Odoo, protocol};
use super::wire::{DocumentModel, INVOICE_FIELDS, OUT_INVOICE, document};
use crate::domain::payment::CustomerBalance;
use crate::domain::{Currency, Date, Money, Rejection, System};
use crate::error::ConnectorError;
use crate::ports::{DocumentState, InvoiceChange, InvoiceStatusSource, Written};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A customer credit note.
pub(super) const OUT_REFUND: &str = "out_refund";

impl Odoo {
    async fn read_move(&self, id: i64) -> Result<Option<Map<String, Value>>, ConnectorError> {
        let mut fields: Vec<&str> = INVOICE_FIELDS.to_vec();
        fields.extend(["reversed_entry_id", "invoice_line_ids", "partner_id"]);
        let found = self
            .execute_kw(
                "account.move",
                "read",
                json!([[id]]),
                json!({"fields": fields}),
            )
            .await;
        match found {
            Ok(found) => Ok(found.get(0).and_then(Value::as_object).cloned()),
            // A record deleted since the notice: nothing to show.
            Err(ConnectorError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Odoo {
    async fn partner_reference(&self, partner: i64) -> Result<Option<String>, ConnectorError> {
        let found = self
            .execute_kw(
                "res.partner",
                "read",
                json!([[partner]]),
                json!({"fields": ["ref"], "context": {"active_test": false}}),
            )
            .await?;
        Ok(found
            .get(0)
            .and_then(|p| p.get("ref"))
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    /// What the partner owes on its posted customer invoices, per currency, and how many are
    /// past due on `today`.
    async fn balance(&self, partner: i64, today: Date) -> Result<CustomerBalance, ConnectorError> {
        let found = self
            .execute_kw(
                "account.move",
                "search_read",
                json!([[
                    ["partner_id", "=", partner],
                    ["move_type", "=", OUT_INVOICE],
                    ["state", "=", "posted"],
                    ["amount_residual", ">", 0]
                ]]),
                json!({"fields": ["amount_residual", "currency_id", "invoice_date_due"]}),
            )
            .await?;
        let mut owed: BTreeMap<&'static str, Money> = BTreeMap::new();
        let mut overdue_invoices = 0;
        for open in found
            .as_array()
            .ok_or_else(|| protocol("search_read did not return a list"))?
        {
            let currency = open
                .get("currency_id")
                .and_then(|c| c.get(1))
                .and_then(Value::as_str)
                .and_then(|code| Currency::parse(code).ok())
                .ok_or_else(|| protocol("an open invoice has no known currency"))?;
            let residual = Money::from_json(
                open.get("amount_residual").unwrap_or(&Value::Null),
                currency,
            )
            .map_err(|_| protocol("an open invoice's residual is not an amount"))?;
            let sum = match owed.get(currency.code()) {
                Some(sum) => sum.checked_add(residual),
                None => Ok(residual),
            }
            .map_err(|_| protocol("open invoices overflow"))?;
            owed.insert(currency.code(), sum);
            let due = open
                .get("invoice_date_due")
                .and_then(Value::as_str)
                .and_then(|raw| Date::parse_iso(raw).ok());
            if due.is_some_and(|due| due < today) {
                overdue_invoices += 1;
            }
        }
        Ok(CustomerBalance {
            outstanding: owed.into_values().collect(),
            overdue_invoices,
        })
    }
}

fn invalid(what: &str, rejection: Rejection) -> ConnectorError {
    ConnectorError::Invalid {
        system: SYSTEM,
        what: what.to_owned(),
        rejection,
    }
}

impl InvoiceStatusSource for Odoo {
    fn system(&self) -> System {
        SYSTEM
    }

    async fn invoice_change(
        &self,
        id: &str,
        today: Date,
    ) -> Result<Option<InvoiceChange>, ConnectorError> {
        let id: i64 = id
            .parse()
            .map_err(|_| protocol("an account.move id is not an integer"))?;
        let Some(mut record) = self.read_move(id).await? else {
            return Ok(None);
        };
        if record.get("move_type").and_then(Value::as_str) == Some(OUT_REFUND) {
            let reversed = record
                .get("reversed_entry_id")
                .and_then(|v| v.get(0).or(Some(v)))
                .and_then(Value::as_i64);
            match reversed {
                Some(invoice) => match self.read_move(invoice).await? {
                    Some(found) => record = found,
                    None => return Ok(None),
                },
                // A credit note of no invoice of ours changes no deal.
                None => return Ok(None),
            }
        }
        if record.get("move_type").and_then(Value::as_str) != Some(OUT_INVOICE) {
            return Ok(None);
        }
        let read = document(DocumentModel::Invoice, &record).map_err(|r| invalid("invoice", r))?;
        let reference = record.get("ref").and_then(Value::as_str).map(str::to_owned);
        // The record was read with `INVOICE_FIELDS`: no second read for its status.
        let status = match read.state {
            DocumentState::Confirmed => {
                let move_id = read
                    .id
                    .parse()
                    .map_err(|_| protocol("an account.move id is not an integer"))?;
                Some(self.status_of(move_id, &record).await?)
            }
            DocumentState::Draft | DocumentState::Cancelled => None,
        };
        let partner = record
            .get("partner_id")
            .and_then(|v| v.get(0).or(Some(v)))
            .and_then(Value::as_i64);
        let (customer, balance) = match partner {
            Some(partner) => (
                self.partner_reference(partner).await?,
                Some(self.balance(partner, today).await?),
            ),
            None => (None, None),
        };
        Ok(Some(InvoiceChange {
            id: read.id,
            reference,
            state: read.state,
            status,
            customer,
            balance,
        }))
    }

    async fn changed_invoices(
        &self,
        after: &Written,
        limit: usize,
    ) -> Result<Vec<Written>, ConnectorError> {
        let posted = json!([
            ["move_type", "in", [OUT_INVOICE, OUT_REFUND]],
            ["state", "=", "posted"]
        ]);
        self.changed("account.move", posted, after, limit).await
    }
}
