//! Odoo as the source of invoices' payment status: the customer invoice behind a changed
//! `account.move` (a credit note leads to the invoice it reverses), and the posted customer
//! invoices and credit notes written since a point, for the polling fallback of the webhook.

use super::SYSTEM;
use super::client::{Odoo, protocol};
use super::wire::{DocumentModel, INVOICE_FIELDS, OUT_INVOICE, document};
use crate::domain::{Rejection, System, Timestamp};
use crate::error::ConnectorError;
use crate::ports::{DocumentState, InvoiceChange, InvoiceSink, InvoiceStatusSource, Written};
use serde_json::{Map, Value, json};

/// A customer credit note.
const OUT_REFUND: &str = "out_refund";

impl Odoo {
    async fn read_move(&self, id: i64) -> Result<Option<Map<String, Value>>, ConnectorError> {
        let mut fields: Vec<&str> = INVOICE_FIELDS.to_vec();
        fields.extend(["reversed_entry_id", "invoice_line_ids"]);
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

    async fn invoice_change(&self, id: &str) -> Result<Option<InvoiceChange>, ConnectorError> {
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
        let status = match read.state {
            DocumentState::Confirmed => self.invoice_status(&read.id).await?,
            DocumentState::Draft | DocumentState::Cancelled => None,
        };
        Ok(Some(InvoiceChange {
            id: read.id,
            reference,
            state: read.state,
            status,
        }))
    }

    async fn changed_invoices(
        &self,
        after: &Written,
        limit: usize,
    ) -> Result<Vec<Written>, ConnectorError> {
        let at = after.at.format_naive_utc();
        let last_id: i64 = after.id.parse().unwrap_or(0);
        // A keyset on (write_date, id): never skips records written in the same second.
        let domain = json!([
            ["move_type", "in", [OUT_INVOICE, OUT_REFUND]],
            ["state", "=", "posted"],
            "|",
            ["write_date", ">", at],
            "&",
            ["write_date", "=", at],
            ["id", ">", last_id]
        ]);
        let found = self
            .execute_kw(
                "account.move",
                "search_read",
                json!([domain]),
                json!({"fields": ["id", "write_date"], "order": "write_date asc, id asc", "limit": limit}),
            )
            .await?;
        found
            .as_array()
            .ok_or_else(|| protocol("search_read did not return a list"))?
            .iter()
            .map(|record| {
                let id = record.get("id").and_then(Value::as_i64);
                let at = record
                    .get("write_date")
                    .and_then(Value::as_str)
                    .and_then(|raw| Timestamp::parse_naive_utc(raw).ok());
                match (id, at) {
                    (Some(id), Some(at)) => Ok(Written {
                        id: id.to_string(),
                        at,
                    }),
                    _ => Err(protocol("a changed invoice has no id or write_date")),
                }
            })
            .collect()
    }
}
