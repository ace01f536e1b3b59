//! Odoo's product catalogue (`product.product`), the system of record for products and prices,
//! listed by last write for the reconciler, archived products included.

use super::SYSTEM;
use super::client::{Odoo, protocol, written_after};
use super::wire::{PRODUCT_FIELDS, priced_product};
use crate::domain::money::Rate;
use crate::domain::{System, Timestamp};
use crate::error::ConnectorError;
use crate::ports::{ListedProduct, ProductCatalogue, Written};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};

impl Odoo {
    /// The percentages of these sales taxes, in one read; fixed-amount taxes have none.
    async fn tax_rates(&self, ids: BTreeSet<i64>) -> Result<HashMap<i64, Rate>, ConnectorError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<i64> = ids.into_iter().collect();
        let found = self
            .execute_kw(
                "account.tax",
                "search_read",
                json!([[["id", "in", ids]]]),
                json!({"fields": ["id", "amount", "amount_type"],
                       "context": {"active_test": false}}),
            )
            .await?;
        let taxes = found
            .as_array()
            .ok_or_else(|| protocol("search_read did not return a list"))?;
        Ok(taxes
            .iter()
            .filter(|tax| tax.get("amount_type").and_then(Value::as_str) == Some("percent"))
            .filter_map(|tax| {
                let id = tax.get("id").and_then(Value::as_i64)?;
                let rate = Rate::percent_from_json(tax.get("amount")?).ok()?;
                Some((id, rate))
            })
            .collect())
    }
}

/// The ids in a record's many2many field.
fn ids(record: &Map<String, Value>, name: &str) -> impl Iterator<Item = i64> {
    record
        .get(name)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
}

impl ProductCatalogue for Odoo {
    fn system(&self) -> System {
        SYSTEM
    }

    async fn list_changed_products(
        &self,
        after: &Written,
        limit: usize,
    ) -> Result<Vec<ListedProduct>, ConnectorError> {
        let mut fields = PRODUCT_FIELDS.to_vec();
        fields.extend(["currency_id", "write_date"]);
        let found = self
            .execute_kw(
                "product.product",
                "search_read",
                json!([written_after(json!([]), after)]),
                json!({"fields": fields, "order": "write_date asc, id asc", "limit": limit,
                       "context": {"active_test": false}}),
            )
            .await?;
        let records: Vec<&Map<String, Value>> = found
            .as_array()
            .ok_or_else(|| protocol("search_read did not return a list"))?
            .iter()
            .map(|p| {
                p.as_object()
                    .ok_or_else(|| protocol("product is not an object"))
            })
            .collect::<Result<_, _>>()?;
        let rates = self
            .tax_rates(records.iter().flat_map(|p| ids(p, "taxes_id")).collect())
            .await?;
        records
            .into_iter()
            .map(|record| {
                // Without an id or a `write_date` a record has no place in a listing: that is
                // Odoo breaking its contract, not bad data.
                let id = record
                    .get("id")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| protocol("a product has no id"))?;
                let at = record
                    .get("write_date")
                    .and_then(Value::as_str)
                    .and_then(|raw| Timestamp::parse_naive_utc(raw).ok())
                    .ok_or_else(|| protocol("a product has no write_date"))?;
                Ok(ListedProduct {
                    written: Written {
                        id: id.to_string(),
                        at,
                    },
                    product: priced_product(record, |tax| rates.get(&tax).copied()),
                })
            })
            .collect()
    }
}
