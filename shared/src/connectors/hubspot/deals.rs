//! HubSpot as the money path's source: a deal with its company and line items (one object read
//! with associations, then one batch read per 100 line items), and the ERP document's number
//! and payment status written back to the deal.

use super::SYSTEM;
use super::client::{HubSpot, numeric};
use super::wire::{
    BatchResponse, CrmObject, DEAL_PROPERTIES, LINE_ITEM_PROPERTIES, PropertiesInput,
    invoice_status_properties,
};
use crate::connectors::http::transport_error;
use crate::domain::payment::{CustomerBalance, InvoiceStatus};
use crate::domain::{Date, FieldError, Rejection, System};
use crate::error::ConnectorError;
use crate::ports::{Deal, DealSource};
use serde_json::{Map, Value, json};

/// HubSpot's limit of inputs per batch call.
const BATCH_LIMIT: usize = 100;

impl HubSpot {
    /// Line items by id, in the order asked. One that HubSpot cannot find (deleted while we
    /// read the deal) makes the read fail for a retry, never yields an invoice without it.
    async fn line_items(&self, ids: &[String]) -> Result<Vec<CrmObject>, ConnectorError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_LIMIT) {
            let inputs: Vec<Value> = chunk.iter().map(|id| json!({ "id": id })).collect();
            let body = json!({ "properties": LINE_ITEM_PROPERTIES, "inputs": inputs });
            let batch: BatchResponse<CrmObject> = self
                .post_json("/crm/v3/objects/line_items/batch/read", &body)
                .await?;
            found.extend(batch.results);
        }
        let mut ordered = Vec::with_capacity(ids.len());
        for id in ids {
            match found.iter().position(|item| &item.id == id) {
                Some(at) => ordered.push(found.swap_remove(at)),
                None => {
                    return Err(ConnectorError::Unavailable {
                        system: SYSTEM,
                        detail: "a line item of the deal could not be read (deleted meanwhile?)"
                            .into(),
                        source: None,
                    });
                }
            }
        }
        Ok(ordered)
    }

    /// PATCHes an object's properties.
    pub(super) async fn patch(
        &self,
        object_type: &str,
        id: &str,
        properties: Map<String, Value>,
    ) -> Result<(), ConnectorError> {
        let id = numeric(object_type, id)?;
        let response = self
            .http
            .patch(format!(
                "{}/crm/v3/objects/{object_type}/{id}",
                self.config.base_url
            ))
            .bearer_auth(&self.access_token)
            .json(&PropertiesInput { properties })
            .send()
            .await
            .map_err(|e| transport_error(SYSTEM, e))?;
        if !response.status().is_success() {
            return Err(super::error::from_response(response).await);
        }
        Ok(())
    }
}

impl DealSource for HubSpot {
    fn system(&self) -> System {
        SYSTEM
    }

    /// Every field of the deal and of each line item is checked before anything is returned, so
    /// a rejection lists them all; a line item's fields are named `line_items[<id>].<property>`.
    async fn fetch_deal(&self, id: &str) -> Result<Deal, ConnectorError> {
        let deal = self
            .get_object("deals", id, &DEAL_PROPERTIES, &["companies", "line_items"])
            .await?;
        let mut errors: Vec<FieldError> = Vec::new();
        let summary = deal
            .deal_summary(&self.deal_rules)
            .map_err(|r| errors.extend(r.0))
            .ok();
        if summary.as_ref().is_some_and(|s| s.company.is_none()) {
            errors.push(FieldError::new(
                "companies",
                "the deal has no associated company: associate the customer",
            ));
        }
        let currency = deal.deal_currency(&self.deal_rules).ok();
        let (line_ids, more) = deal.associated_ids("line_items");
        if more {
            errors.push(FieldError::new(
                "line_items",
                "the deal has more than 100 line items, which puente does not invoice yet",
            ));
        } else if line_ids.is_empty() {
            errors.push(FieldError::new(
                "line_items",
                "the deal has no line items: add what was sold",
            ));
        }
        let mut lines = Vec::with_capacity(line_ids.len());
        if !more && let Some(currency) = currency {
            for item in self.line_items(&line_ids).await? {
                match item.invoice_line(currency) {
                    Ok(line) => lines.push(line),
                    Err(rejection) => errors.extend(rejection.0.into_iter().map(|e| {
                        FieldError::new(format!("line_items[{}].{}", item.id, e.field), e.reason)
                    })),
                }
            }
        }
        match (summary, currency) {
            (Some(summary), Some(currency)) if errors.is_empty() => Ok(Deal {
                summary,
                currency,
                lines,
            }),
            _ => Err(ConnectorError::Invalid {
                system: SYSTEM,
                what: "deal".into(),
                rejection: Rejection(errors),
            }),
        }
    }

    async fn write_document_number(
        &self,
        deal_id: &str,
        number: &str,
    ) -> Result<(), ConnectorError> {
        let mut properties = Map::new();
        properties.insert(
            self.deal_properties.invoice_number.clone(),
            Value::String(number.to_owned()),
        );
        self.patch("deals", deal_id, properties).await
    }

    async fn write_company_balance(
        &self,
        company_id: &str,
        balance: &CustomerBalance,
    ) -> Result<(), ConnectorError> {
        let mut properties = Map::new();
        properties.insert(
            self.deal_properties.company_outstanding.clone(),
            Value::String(balance.outstanding_text()),
        );
        properties.insert(
            self.deal_properties.company_overdue_invoices.clone(),
            Value::String(balance.overdue_invoices.to_string()),
        );
        self.patch("companies", company_id, properties).await
    }

    async fn write_invoice_status(
        &self,
        deal_id: &str,
        status: &InvoiceStatus,
        today: Date,
    ) -> Result<(), ConnectorError> {
        let properties =
            invoice_status_properties(status, today, &self.deal_properties).map_err(|e| {
                ConnectorError::Rejected {
                    system: SYSTEM,
                    detail: format!("the invoice status cannot be shown: {e}"),
                }
            })?;
        self.patch("deals", deal_id, properties).await
    }
}
