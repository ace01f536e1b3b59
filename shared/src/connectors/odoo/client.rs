//! Odoo JSON-RPC client, as the customer flow's sink.

use super::SYSTEM;
use super::wire::{
    PARTNER_FIELDS, RpcParams, RpcRequest, RpcResponse, partner_matches, partner_values,
};
use crate::config::OdooConfig;
use crate::connectors::http::{status_error, transport_error};
use crate::domain::{Country, Customer, System};
use crate::error::ConnectorError;
use crate::ports::{CustomerSink, TargetCustomer};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::OnceCell;

pub struct Odoo {
    http: reqwest::Client,
    config: OdooConfig,
    api_key: String,
    /// The user id from `common.authenticate`, looked up once per process.
    uid: OnceCell<i64>,
    /// `res.country` ids by ISO code; they never change in a database.
    countries: Mutex<HashMap<String, i64>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Odoo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Odoo")
            .field("url", &self.config.url)
            .field("database", &self.config.database)
            .finish_non_exhaustive()
    }
}

impl Odoo {
    pub fn new(http: reqwest::Client, config: OdooConfig, api_key: String) -> Self {
        Self {
            http,
            config,
            api_key,
            uid: OnceCell::new(),
            countries: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    async fn call(
        &self,
        service: &str,
        method: &str,
        args: Value,
    ) -> Result<Value, ConnectorError> {
        let request = RpcRequest {
            jsonrpc: "2.0",
            method: "call",
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            params: RpcParams {
                service,
                method,
                args,
            },
        };
        let response = self
            .http
            .post(format!("{}/jsonrpc", self.config.url))
            .json(&request)
            .send()
            .await
            .map_err(|e| transport_error(SYSTEM, e))?;
        if !response.status().is_success() {
            let (status, headers) = (response.status(), response.headers().clone());
            return Err(status_error(
                SYSTEM,
                status,
                &headers,
                "JSON-RPC endpoint".into(),
            ));
        }
        let body: RpcResponse = response
            .json()
            .await
            .map_err(|e| transport_error(SYSTEM, e))?;
        match (body.error, body.result) {
            (Some(error), _) => Err(super::error::from_rpc(error)),
            (None, Some(result)) => Ok(result),
            (None, None) => Err(ConnectorError::Unavailable {
                system: SYSTEM,
                detail: "JSON-RPC answer has neither result nor error".into(),
                source: None,
            }),
        }
    }

    async fn uid(&self) -> Result<i64, ConnectorError> {
        self.uid
            .get_or_try_init(|| async {
                let args = json!([self.config.database, self.config.username, self.api_key, {}]);
                match self.call("common", "authenticate", args).await? {
                    // Wrong credentials answer `false`, not an error.
                    Value::Number(uid) => uid
                        .as_i64()
                        .ok_or_else(|| protocol("uid is not an integer")),
                    _ => Err(ConnectorError::Unauthorized {
                        system: SYSTEM,
                        detail: "common.authenticate refused the configured user and API key"
                            .into(),
                    }),
                }
            })
            .await
            .copied()
    }

    async fn execute_kw(
        &self,
        model: &str,
        method: &str,
        args: Value,
        kwargs: Value,
    ) -> Result<Value, ConnectorError> {
        let uid = self.uid().await?;
        let args = json!([
            self.config.database,
            uid,
            self.api_key,
            model,
            method,
            args,
            kwargs
        ]);
        self.call("object", "execute_kw", args).await
    }

    async fn country_id(&self, country: Option<Country>) -> Result<Option<i64>, ConnectorError> {
        let Some(country) = country else {
            return Ok(None);
        };
        let code = country.code().to_owned();
        if let Some(id) = self
            .countries
            .lock()
            .ok()
            .and_then(|c| c.get(&code).copied())
        {
            return Ok(Some(id));
        }
        let found = self
            .execute_kw(
                "res.country",
                "search_read",
                json!([[["code", "=", code]]]),
                json!({"fields": ["id"], "limit": 1}),
            )
            .await?;
        let id = found
            .get(0)
            .and_then(|c| c.get("id"))
            .and_then(Value::as_i64)
            .ok_or_else(|| ConnectorError::Rejected {
                system: SYSTEM,
                detail: format!("country {code} does not exist in Odoo"),
            })?;
        if let Ok(mut cache) = self.countries.lock() {
            cache.insert(code, id);
        }
        Ok(Some(id))
    }

    async fn values(&self, customer: &Customer) -> Result<Map<String, Value>, ConnectorError> {
        let country_id = self.country_id(customer.address.country).await?;
        Ok(partner_values(customer, country_id))
    }
}

fn protocol(detail: &str) -> ConnectorError {
    ConnectorError::Unavailable {
        system: SYSTEM,
        detail: detail.to_owned(),
        source: None,
    }
}

impl CustomerSink for Odoo {
    fn system(&self) -> System {
        SYSTEM
    }

    async fn find_customer(
        &self,
        reference: &str,
        wanted: &Customer,
    ) -> Result<Option<TargetCustomer>, ConnectorError> {
        let found = self
            .execute_kw(
                "res.partner",
                "search_read",
                json!([[["ref", "=", reference]]]),
                // Archived partners count: a new one beside an archived one is a duplicate.
                json!({"fields": PARTNER_FIELDS, "limit": 2, "context": {"active_test": false}}),
            )
            .await?;
        let partners = found
            .as_array()
            .ok_or_else(|| protocol("search_read did not return a list"))?;
        let partner = match partners.as_slice() {
            [] => return Ok(None),
            [one] => one
                .as_object()
                .ok_or_else(|| protocol("partner is not an object"))?,
            _ => {
                return Err(ConnectorError::Rejected {
                    system: SYSTEM,
                    detail: format!("more than one partner carries reference {reference}"),
                });
            }
        };
        let id = partner
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| protocol("partner has no id"))?;
        let vals = self.values(wanted).await?;
        Ok(Some(TargetCustomer {
            id: id.to_string(),
            matches: partner_matches(partner, &vals),
        }))
    }

    async fn create_customer(
        &self,
        customer: &Customer,
        reference: &str,
    ) -> Result<String, ConnectorError> {
        let mut vals = self.values(customer).await?;
        vals.insert("ref".into(), json!(reference));
        vals.insert("customer_rank".into(), json!(1));
        let id = self
            .execute_kw("res.partner", "create", json!([vals]), json!({}))
            .await?;
        id.as_i64()
            .map(|id| id.to_string())
            .ok_or_else(|| protocol("create did not return an id"))
    }

    async fn update_customer(&self, id: &str, customer: &Customer) -> Result<(), ConnectorError> {
        let id: i64 = id
            .parse()
            .map_err(|_| protocol("partner id is not an integer"))?;
        let vals = self.values(customer).await?;
        self.execute_kw("res.partner", "write", json!([[id], vals]), json!({}))
            .await
            .map(|_| ())
    }
}
