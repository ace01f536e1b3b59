//! Odoo as the money path's sink: the customer invoice (`account.move`, `out_invoice`) or sales
//! order (`sale.order`) for a won deal, found by our reference, created as a draft with its
//! lines, posted or confirmed, read back with Odoo's totals, and its payment status.
//!
//! Currencies, taxes, pricelists and products are looked up once per process and cached: their
//! ids do not change while a database lives. A sales tax is found by its rate unless the tax
//! table (`ODOO_TAX_IDS`) names it, which it must when two sales taxes share a rate.

use super::SYSTEM;
use super::client::{Odoo, protocol};
use super::wire::{
    DocumentModel, INVOICE_FIELDS, document, invoice_status, invoice_values, sale_order_values,
};
use crate::domain::invoice::SalesInvoice;
use crate::domain::money::{Currency, Money, Rate};
use crate::domain::payment::InvoiceStatus;
use crate::domain::{Sku, System};
use crate::error::ConnectorError;
use crate::ports::{ErpDocument, InvoiceSink};
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
        let found = self
            .execute_kw(
                "account.move",
                "search_read",
                json!([[
                    ["reversed_entry_id", "=", id],
                    ["move_type", "=", "out_refund"],
                    ["state", "=", "posted"]
                ]]),
                json!({"fields": ["amount_total"]}),
            )
            .await?;
        let refunds = found
            .as_array()
            .ok_or_else(|| protocol("search_read did not return a list"))?;
        let amounts = refunds
            .iter()
            .map(|r| Money::from_json(r.get("amount_total").unwrap_or(&Value::Null), currency))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| protocol("a credit note's total is not an amount"))?;
        Money::sum(currency, amounts).map_err(|_| protocol("credit notes overflow"))
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
