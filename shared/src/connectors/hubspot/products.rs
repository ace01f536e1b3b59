//! HubSpot's product library, kept by the reconciler from the ERP's catalogue: products found
//! by the ERP reference they carry (batch read by a unique property), created, updated and
//! archived.

use super::SYSTEM;
use super::client::{HubSpot, numeric};
use super::wire::{BatchResponse, CrmObject};
use crate::connectors::http::transport_error;
use crate::domain::System;
use crate::domain::money::{Currency, DecimalStyle, Money};
use crate::error::ConnectorError;
use crate::ports::{LibraryProduct, ProductLibrary};
use serde_json::{Map, Value, json};

/// HubSpot's limit of inputs per batch call.
const BATCH_LIMIT: usize = 100;

/// The standard product properties the catalogue decides.
const NAME: &str = "name";
const SKU: &str = "hs_sku";
const PRICE: &str = "price";

impl HubSpot {
    fn product_writes(&self, product: &LibraryProduct) -> Map<String, Value> {
        let mut properties = Map::new();
        properties.insert(NAME.into(), json!(product.name));
        properties.insert(SKU.into(), json!(product.sku));
        properties.insert(
            PRICE.into(),
            json!(
                product
                    .price
                    .map(|p| p.to_decimal_string())
                    .unwrap_or_default()
            ),
        );
        properties
    }

    /// The live products carrying these references (one batch read per 100).
    async fn products_by_origin(
        &self,
        origins: &[String],
    ) -> Result<Vec<CrmObject>, ConnectorError> {
        let key = &self.config.erp_ref_property;
        let mut found = Vec::with_capacity(origins.len());
        for chunk in origins.chunks(BATCH_LIMIT) {
            let inputs: Vec<Value> = chunk.iter().map(|origin| json!({ "id": origin })).collect();
            let body = json!({
                "idProperty": key,
                "properties": [NAME, SKU, PRICE, key],
                "inputs": inputs,
            });
            // References no product carries come back as errors of a 207: left out.
            let batch: BatchResponse<CrmObject> = self
                .post_json("/crm/v3/objects/products/batch/read", &body)
                .await?;
            found.extend(batch.results.into_iter().filter(|p| !p.archived));
        }
        Ok(found)
    }

    fn shown(product: &CrmObject, currency: Currency) -> LibraryProduct {
        let text = |name: &str| {
            product
                .properties
                .get(name)
                .cloned()
                .flatten()
                .unwrap_or_default()
        };
        LibraryProduct {
            name: text(NAME),
            sku: text(SKU),
            // HubSpot keeps numbers as it was given them: "550000", "550000.00".
            price: Money::parse(&text(PRICE), currency, DecimalStyle::Plain).ok(),
        }
    }
}

impl ProductLibrary for HubSpot {
    fn system(&self) -> System {
        SYSTEM
    }

    async fn find_products(
        &self,
        origins: &[String],
        currency: Currency,
    ) -> Result<Vec<(String, String, LibraryProduct)>, ConnectorError> {
        let key = &self.config.erp_ref_property;
        Ok(self
            .products_by_origin(origins)
            .await?
            .into_iter()
            .filter_map(|product| {
                let origin = product.properties.get(key).cloned().flatten()?;
                let shown = Self::shown(&product, currency);
                Some((origin, product.id, shown))
            })
            .collect())
    }

    async fn create_product(
        &self,
        origin: &str,
        product: &LibraryProduct,
    ) -> Result<String, ConnectorError> {
        let mut properties = self.product_writes(product);
        properties.insert(self.config.erp_ref_property.clone(), json!(origin));
        let url = format!("{}/crm/v3/objects/products", self.config.base_url);
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.access_token)
            .json(&json!({ "properties": properties }))
            .send()
            .await
            .map_err(|e| transport_error(SYSTEM, e))?;
        if response.status() == reqwest::StatusCode::CONFLICT {
            // The reference property holds unique values: another run, or an earlier attempt
            // whose answer was lost, created it. Keep that one, with these values.
            let existing = self.products_by_origin(&[origin.to_owned()]).await?;
            let Some(id) = existing.into_iter().next().map(|p| p.id) else {
                return Err(ConnectorError::Rejected {
                    system: SYSTEM,
                    detail: format!(
                        "creating the product for {origin} conflicts with another product, and \
                         none carries {origin}"
                    ),
                });
            };
            self.update_product(&id, product).await?;
            return Ok(id);
        }
        if !response.status().is_success() {
            return Err(super::error::from_response(response).await);
        }
        let created: CrmObject = response
            .json()
            .await
            .map_err(|e| transport_error(SYSTEM, e))?;
        Ok(created.id)
    }

    async fn update_product(
        &self,
        id: &str,
        product: &LibraryProduct,
    ) -> Result<(), ConnectorError> {
        self.patch("products", id, self.product_writes(product))
            .await
    }

    async fn archive_product(&self, id: &str) -> Result<(), ConnectorError> {
        let id = numeric("products", id)?;
        let url = format!("{}/crm/v3/objects/products/{id}", self.config.base_url);
        let response = self
            .http
            .delete(url)
            .bearer_auth(&self.access_token)
            .send()
            .await
            .map_err(|e| transport_error(SYSTEM, e))?;
        if response.status().is_success() || response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(super::error::from_response(response).await)
    }
}
