//! Odoo as the money path's sink: the customer invoice (`account.move`, `out_invoice`) or sales
//! order (`sale.order`) for a won deal, found by our reference, created as a draft with its
//! lines, posted or confirmed, read back with Odoo's totals, and its payment status.
//!
//! Currencies, taxes, pricelists and products are looked up once per process and cached: their
//! ids do not change while a database lives. A sales tax is found by its rate unless the tax
//! table (`ODOO_TAX_IDS`) names it, which it must when two sales taxes share a rate.

use super::SYSTEM;
use super::client::{Odoo, protocol};
use super::payments::OUT_REFUND;
use super::wire::{
    DocumentModel, INVOICE_FIELDS, OUT_INVOICE, document, invoice_status, invoice_values,
    sale_order_values,
};
use crate::domain::invoice::SalesInvoice;
use crate::domain::money::{Currency, Money, Rate};
use crate::domain::payment::InvoiceStatus;
use crate::domain::{Sku, System, Timestamp};
use crate::error::ConnectorError;
use crate::ports::{DocumentListing, DocumentState, ErpDocument, InvoiceSink, ListedDocument};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

impl Odoo {
    /// The one record of `model` matching `domain`, by `cache_key`; `None` when there is none,
    /// an error naming `what` when there are several and `first` is not allowed.
    pub(super) async fn lookup(
        &self,
        model: &str,
        domain: Value,
        cache_key: String,
        what: &str,
        first: bool,
    ) -> Result<Option<i64>, ConnectorError> {
        if let Some(id) = self
            .lookups
            .lock()
            .ok()
            .and_then(|cache| cache.get(&cache_key).copied())
        {
            return Ok(Some(id));
        }
        let found = self
            .execute_kw(
                model,
                "search_read",
                json!([domain]),
                json!({"fields": ["id"], "limit": 2, "order": "id asc"}),
            )
            .await?;
        let ids: Vec<i64> = found
            .as_array()
            .ok_or_else(|| protocol("search_read did not return a list"))?
            .iter()
            .filter_map(|r| r.get("id").and_then(Value::as_i64))
            .collect();
        let id = match ids.as_slice() {
            [] => return Ok(None),
            [one] => *one,
            [first_id, ..] if first => *first_id,
            _ => {
                return Err(ConnectorError::Rejected {
                    system: SYSTEM,
                    detail: format!("more than one {what} in Odoo: name the one to use"),
                });
            }
        };
        if let Ok(mut cache) = self.lookups.lock() {
            cache.insert(cache_key, id);
        }
        Ok(Some(id))
    }

    async fn currency_id(&self, currency: Currency) -> Result<i64, ConnectorError> {
        let code = currency.code();
        self.lookup(
            "res.currency",
            json!([["name", "=", code]]),
            format!("res.currency:{code}"),
            "currency",
            false,
        )
        .await?
        .ok_or_else(|| ConnectorError::Rejected {
            system: SYSTEM,
            detail: format!("currency {code} is not active in Odoo: activate it"),
        })
    }

    /// The sales tax for `rate`: from the tax table, else the one sales tax of that percentage.
    async fn tax_id(&self, rate: Rate) -> Result<Option<i64>, ConnectorError> {
        if let Some(id) = self.tax_table.get(&rate.millionths()) {
            return Ok(Some(*id));
        }
        let percent: f64 = rate
            .to_percent_string()
            .parse()
            .map_err(|_| protocol("a tax rate did not print as a number"))?;
        self.lookup(
            "account.tax",
            json!([
                ["type_tax_use", "=", "sale"],
                ["amount_type", "=", "percent"],
                ["amount", "=", percent]
            ]),
            format!("account.tax:{}", rate.millionths()),
            &format!("sales tax of {rate} (set ODOO_TAX_IDS)"),
            false,
        )
        .await
    }

    async fn product_id(&self, sku: &Sku) -> Result<Option<i64>, ConnectorError> {
        self.lookup(
            "product.product",
            json!([["default_code", "=", sku.as_str()]]),
            format!("product.product:{}", sku.as_str()),
            "product with the SKU of a line",
            false,
        )
        .await
    }

    /// A sales order takes its currency from its pricelist: the first pricelist in `currency`.
    async fn pricelist_id(
        &self,
        currency_id: i64,
        currency: Currency,
    ) -> Result<i64, ConnectorError> {
        self.lookup(
            "product.pricelist",
            json!([["currency_id", "=", currency_id]]),
            format!("product.pricelist:{currency_id}"),
            "pricelist",
            true,
        )
        .await?
        .ok_or_else(|| ConnectorError::Rejected {
            system: SYSTEM,
            detail: format!("no pricelist in {currency} exists in Odoo: create one"),
        })
    }

    /// The create values of the configured document, every Odoo id resolved first.
    async fn document_values(
        &self,
        invoice: &SalesInvoice,
    ) -> Result<Map<String, Value>, ConnectorError> {
        let currency_id = self.currency_id(invoice.currency).await?;
        let mut taxes = HashMap::new();
        let mut products = HashMap::new();
        for line in &invoice.lines {
            for rate in &line.taxes {
                if let std::collections::hash_map::Entry::Vacant(entry) =
                    taxes.entry(rate.millionths())
                {
                    entry.insert(self.tax_id(*rate).await?);
                }
            }
            if let Some(sku) = &line.sku
                && !products.contains_key(sku.as_str())
            {
                products.insert(sku.as_str().to_owned(), self.product_id(sku).await?);
            }
        }
        let product = |sku: &Sku| products.get(sku.as_str()).copied().flatten();
        let tax = |rate: Rate| taxes.get(&rate.millionths()).copied().flatten();
        let values = match self.documents {
            DocumentModel::Invoice => invoice_values(invoice, currency_id, product, tax),
            DocumentModel::SalesOrder => {
                let pricelist = self.pricelist_id(currency_id, invoice.currency).await?;
                sale_order_values(invoice, pricelist, product, tax)
            }
        };
        values.map_err(|rejection| ConnectorError::Invalid {
            system: SYSTEM,
            what: format!("{} for the deal", self.document_kind()),
            rejection,
        })
    }

    fn record_id(id: &str) -> Result<i64, ConnectorError> {
        id.parse()
            .map_err(|_| protocol("a document id is not an integer"))
    }

    fn read_one(&self, found: &Value) -> Result<Option<ErpDocument>, ConnectorError> {
        let records = found
            .as_array()
            .ok_or_else(|| protocol("read did not return a list"))?;
        match records.as_slice() {
            [] => Ok(None),
            [one] => {
                let record = one
                    .as_object()
                    .ok_or_else(|| protocol("a document is not an object"))?;
                document(self.documents, record)
                    .map(Some)
                    .map_err(|rejection| ConnectorError::Invalid {
                        system: SYSTEM,
                        what: self.documents.model().to_owned(),
                        rejection,
                    })
            }
            _ => Err(ConnectorError::Rejected {
                system: SYSTEM,
                detail: format!(
                    "more than one {} carries our reference: cancel the extra ones",
                    self.documents.model()
                ),
            }),
        }
    }

    /// What credit notes posted against the invoice took off it.
    async fn credited(&self, id: i64, currency: Currency) -> Result<Money, ConnectorError> {
        let credits = self.credits(&[id]).await?;
        sum_credits(credits.get(&id), currency)
    }

    /// The totals of the credit notes posted against each of `ids`, by invoice: one search.
    async fn credits(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<Value>>, ConnectorError> {
        let found = self
            .execute_kw(
                "account.move",
                "search_read",
                json!([[
                    ["reversed_entry_id", "in", ids],
                    ["move_type", "=", OUT_REFUND],
                    ["state", "=", "posted"]
                ]]),
                json!({"fields": ["reversed_entry_id", "amount_total"]}),
            )
            .await?;
        let mut credits: HashMap<i64, Vec<Value>> = HashMap::new();
        for refund in found
            .as_array()
            .ok_or_else(|| protocol("search_read did not return a list"))?
        {
            let invoice = refund
                .get("reversed_entry_id")
                .and_then(|v| v.get(0).or(Some(v)))
                .and_then(Value::as_i64)
                .ok_or_else(|| protocol("a credit note names no invoice it reverses"))?;
            let total = refund.get("amount_total").cloned().unwrap_or(Value::Null);
            credits.entry(invoice).or_default().push(total);
        }
        Ok(credits)
    }

    /// Documents as the reconciler lists them, from `records` of `model` read with
    /// `listing_fields`: each posted invoice's status net of its credit notes, which are read
    /// in one search for all. A record that does not read is a rejection, not a failed batch.
    pub(super) async fn listed_documents(
        &self,
        model: DocumentModel,
        records: &[Map<String, Value>],
    ) -> Result<Vec<ListedDocument>, ConnectorError> {
        let mut listed = Vec::with_capacity(records.len());
        for record in records {
            let id = record
                .get("id")
                .and_then(Value::as_i64)
                .ok_or_else(|| protocol("a document has no id"))?;
            let modified = record
                .get("write_date")
                .and_then(Value::as_str)
                .and_then(|raw| Timestamp::parse_naive_utc(raw).ok())
                .ok_or_else(|| protocol("a document has no write_date"))?;
            let reference = record
                .get(model.reference_field())
                .and_then(Value::as_str)
                .map(str::to_owned);
            let read = document(model, record).and_then(|read| match (model, read.state) {
                (DocumentModel::Invoice, DocumentState::Confirmed) => {
                    invoice_status(record).map(|status| (read.state, Some(status)))
                }
                _ => Ok((read.state, None)),
            });
            listed.push((
                id,
                ListedDocument {
                    id: id.to_string(),
                    modified,
                    reference,
                    read,
                },
            ));
        }
        let posted: Vec<i64> = listed
            .iter()
            .filter(|(_, d)| matches!(d.read, Ok((_, Some(_)))))
            .map(|(id, _)| *id)
            .collect();
        let credits = if posted.is_empty() {
            HashMap::new()
        } else {
            self.credits(&posted).await?
        };
        let mut documents = Vec::with_capacity(listed.len());
        for (id, mut listed) in listed {
            if let Ok((_, Some(status))) = &mut listed.read {
                let credited = sum_credits(credits.get(&id), status.invoiced.currency())?;
                status.invoiced = status
                    .invoiced
                    .checked_sub(credited)
                    .map_err(|_| protocol("credit notes in another currency"))?;
            }
            documents.push(listed);
        }
        Ok(documents)
    }

    /// The records of `model` matching `domain`, cancelled ones included, read for
    /// `listed_documents`.
    pub(super) async fn read_for_listing(
        &self,
        model: DocumentModel,
        domain: Value,
    ) -> Result<Vec<Map<String, Value>>, ConnectorError> {
        let found = self
            .execute_kw(
                model.model(),
                "search_read",
                json!([domain]),
                json!({"fields": listing_fields(model), "order": "id asc",
                       "context": {"active_test": false}}),
            )
            .await?;
        found
            .as_array()
            .ok_or_else(|| protocol("search_read did not return a list"))?
            .iter()
            .map(|record| {
                record
                    .as_object()
                    .cloned()
                    .ok_or_else(|| protocol("a document is not an object"))
            })
            .collect()
    }
}

impl InvoiceSink for Odoo {
    fn system(&self) -> System {
        SYSTEM
    }

    fn document_kind(&self) -> &'static str {
        match self.documents {
            DocumentModel::Invoice => "invoice",
            DocumentModel::SalesOrder => "sales order",
        }
    }

    async fn find_document(&self, reference: &str) -> Result<Option<ErpDocument>, ConnectorError> {
        let model = self.documents;
        let found = self
            .execute_kw(
                model.model(),
                "search_read",
                json!([model.domain(reference)]),
                json!({"fields": model.fields(), "limit": 2, "context": {"active_test": false}}),
            )
            .await?;
        self.read_one(&found)
    }

    async fn create_document(&self, invoice: &SalesInvoice) -> Result<String, ConnectorError> {
        let values = self.document_values(invoice).await?;
        let id = self
            .execute_kw(self.documents.model(), "create", json!([values]), json!({}))
            .await?;
        id.as_i64()
            .map(|id| id.to_string())
            .ok_or_else(|| protocol("create did not return an id"))
    }

    async fn confirm_document(&self, id: &str) -> Result<(), ConnectorError> {
        let model = self.documents;
        self.execute_kw(
            model.model(),
            model.confirm_method(),
            json!([[Self::record_id(id)?]]),
            json!({}),
        )
        .await
        .map(|_| ())
    }

    async fn read_document(&self, id: &str) -> Result<ErpDocument, ConnectorError> {
        let model = self.documents;
        let found = self
            .execute_kw(
                model.model(),
                "read",
                json!([[Self::record_id(id)?]]),
                json!({"fields": model.fields()}),
            )
            .await?;
        self.read_one(&found)?
            .ok_or_else(|| ConnectorError::NotFound {
                system: SYSTEM,
                what: format!("{} {id}", model.model()),
            })
    }

    /// A posted invoice's status, its invoiced amount net of the credit notes posted against
    /// it (a fully credited invoice shows 0 invoiced, 0 paid, 0 outstanding, `reversed`).
    async fn invoice_status(&self, id: &str) -> Result<Option<InvoiceStatus>, ConnectorError> {
        if self.documents != DocumentModel::Invoice {
            return Ok(None);
        }
        let move_id = Self::record_id(id)?;
        let found = self
            .execute_kw(
                "account.move",
                "read",
                json!([[move_id]]),
                json!({"fields": INVOICE_FIELDS}),
            )
            .await?;
        let record =
            found
                .get(0)
                .and_then(Value::as_object)
                .ok_or_else(|| ConnectorError::NotFound {
                    system: SYSTEM,
                    what: format!("account.move {id}"),
                })?;
        self.status_of(move_id, record).await.map(Some)
    }
}

impl Odoo {
    /// The status of the posted invoice `record` (read with `INVOICE_FIELDS`), its invoiced
    /// amount net of the credit notes posted against it.
    pub(super) async fn status_of(
        &self,
        move_id: i64,
        record: &Map<String, Value>,
    ) -> Result<InvoiceStatus, ConnectorError> {
        let mut status = invoice_status(record).map_err(|rejection| ConnectorError::Invalid {
            system: SYSTEM,
            what: "invoice".into(),
            rejection,
        })?;
        let credited = self.credited(move_id, status.invoiced.currency()).await?;
        status.invoiced = status
            .invoiced
            .checked_sub(credited)
            .map_err(|_| protocol("credit notes in another currency"))?;
        Ok(status)
    }
}

/// What a listing reads of a document: what `document` and, for an invoice, `invoice_status`
/// need, its reference, and the invoice a credit note reverses.
fn listing_fields(model: DocumentModel) -> Vec<&'static str> {
    let mut fields: Vec<&'static str> = model.fields().to_vec();
    let more: &[&'static str] = match model {
        DocumentModel::Invoice => INVOICE_FIELDS,
        DocumentModel::SalesOrder => &["client_order_ref"],
    };
    fields.extend(more.iter().filter(|f| !model.fields().contains(f)));
    fields.push("write_date");
    if model == DocumentModel::Invoice {
        fields.push("reversed_entry_id");
    }
    fields
}

fn is_move_type(record: &Map<String, Value>, move_type: &str) -> bool {
    record.get("move_type").and_then(Value::as_str) == Some(move_type)
}

/// The sum of credit notes' totals (as Odoo returns them) in `currency`.
fn sum_credits(totals: Option<&Vec<Value>>, currency: Currency) -> Result<Money, ConnectorError> {
    let amounts = totals
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|total| Money::from_json(total, currency))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| protocol("a credit note's total is not an amount"))?;
    Money::sum(currency, amounts).map_err(|_| protocol("credit notes overflow"))
}

impl DocumentListing for Odoo {
    async fn find_documents(
        &self,
        references: &[String],
    ) -> Result<Vec<ListedDocument>, ConnectorError> {
        if references.is_empty() {
            return Ok(Vec::new());
        }
        let model = self.documents;
        let records = self
            .read_for_listing(model, model.domain_any(references))
            .await?;
        self.listed_documents(model, &records).await
    }

    async fn read_invoices(&self, ids: &[String]) -> Result<Vec<ListedDocument>, ConnectorError> {
        let ids = ids
            .iter()
            .map(|id| Self::record_id(id))
            .collect::<Result<Vec<i64>, _>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let model = DocumentModel::Invoice;
        let by_id = |ids: &[i64]| json!([["id", "in", ids]]);
        let mut records = self.read_for_listing(model, by_id(&ids)).await?;
        let reversed: Vec<i64> = records
            .iter()
            .filter(|r| is_move_type(r, OUT_REFUND))
            .filter_map(|r| {
                r.get("reversed_entry_id")
                    .and_then(|v| v.get(0).or(Some(v)))
                    .and_then(Value::as_i64)
            })
            .filter(|id| !ids.contains(id))
            .collect();
        if !reversed.is_empty() {
            records.extend(self.read_for_listing(model, by_id(&reversed)).await?);
        }
        let mut seen = std::collections::HashSet::new();
        records.retain(|r| {
            is_move_type(r, OUT_INVOICE)
                && r.get("id")
                    .and_then(Value::as_i64)
                    .is_some_and(|id| seen.insert(id))
        });
        self.listed_documents(model, &records).await
    }
}
