//! Odoo JSON-RPC client, as the customer flow's sink. Two ways in (`OdooAuth`): `/jsonrpc`
//! with the user id and API key on every call, or a web session (`/web/session/authenticate`,
//! then `/web/dataset/call_kw` with the `session_id` cookie) kept for the life of the process
//! and renewed inline when Odoo says it expired. Both meet in `execute_kw`.

use super::SYSTEM;
use super::wire::{
    CallKw, DocumentModel, PARTNER_FIELDS, PARTNER_SYNC_FIELDS, RpcParams, RpcRequest, RpcResponse,
    SESSION_COOKIE, SessionInfo, SessionLogin, execute_kw, new_partner, partner_fields,
    partner_matches, partner_values, partner_writes,
};
use crate::config::{OdooAuth, OdooConfig};
use crate::connectors::http::{status_error, transport_error};
use crate::connectors::session::SessionCache;
use crate::domain::{Country, Customer, CustomerKind, FieldError, Rejection, System, Timestamp};
use crate::error::ConnectorError;
use crate::mapping::ownership::{CustomerField, SyncFields};
use crate::ports::{
    CustomerFeed, CustomerListing, CustomerRecord, CustomerSide, CustomerSink, Listed,
    TargetCustomer, Written,
};
use reqwest::header::{COOKIE, HeaderMap, HeaderValue, SET_COOKIE};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

pub struct Odoo {
    http: reqwest::Client,
    config: OdooConfig,
    /// The API key (or password): per call with `ApiKey`, at login with `Session`.
    api_key: String,
    auth: OdooAuth,
    /// The user id from `common.authenticate`, looked up once per process.
    uid: OnceCell<i64>,
    session: SessionCache<Session>,
    /// `res.country` ids by ISO code; they never change in a database.
    countries: Mutex<HashMap<String, i64>>,
    next_id: AtomicU64,
    /// Which sales document a won deal becomes.
    pub(super) documents: DocumentModel,
    /// Configured `account.tax` ids by rate (`Rate::millionths`), before any lookup by rate.
    pub(super) tax_table: HashMap<i64, i64>,
    /// Ids found by lookups that do not change while a process lives (currencies, taxes,
    /// pricelists, products), by `model:key`.
    pub(super) lookups: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for Odoo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Odoo")
            .field("url", &self.config.url)
            .field("database", &self.config.database)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// A web session: the `Cookie` header to send, marked sensitive so it never shows in debug
/// output.
struct Session {
    cookie: HeaderValue,
}

impl Odoo {
    /// A client that sends the API key on every call (`OdooAuth::ApiKey`).
    pub fn new(http: reqwest::Client, config: OdooConfig, api_key: String) -> Self {
        Self {
            http,
            config,
            api_key,
            auth: OdooAuth::ApiKey,
            uid: OnceCell::new(),
            session: SessionCache::new(),
            countries: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            documents: DocumentModel::Invoice,
            tax_table: HashMap::new(),
            lookups: Mutex::new(HashMap::new()),
        }
    }

    /// Chooses the sales document (invoice or sales order) and the `account.tax` ids of the
    /// rates that must not be looked up by amount (several sales taxes with one rate).
    pub fn with_documents(
        mut self,
        documents: DocumentModel,
        tax_table: HashMap<i64, i64>,
    ) -> Self {
        self.documents = documents;
        self.tax_table = tax_table;
        self
    }

    /// Chooses how to log in; with `OdooAuth::Session` the API key (or password) is the
    /// session login's password.
    pub fn with_auth(mut self, auth: OdooAuth) -> Self {
        self.auth = auth;
        self
    }

    /// One JSON-RPC request to `path`; the answer's headers (for the login's cookie) and result.
    async fn post(
        &self,
        path: &str,
        params: impl Serialize,
        cookie: Option<&HeaderValue>,
    ) -> Result<(HeaderMap, Value), ConnectorError> {
        let request = RpcRequest::call(self.next_id.fetch_add(1, Ordering::Relaxed), params);
        let mut builder = self
            .http
            .post(format!("{}{path}", self.config.url))
            .json(&request);
        if let Some(cookie) = cookie {
            builder = builder.header(COOKIE, cookie.clone());
        }
        let response = builder
            .send()
            .await
            .map_err(|e| transport_error(SYSTEM, e))?;
        let headers = response.headers().clone();
        if !response.status().is_success() {
            return Err(status_error(
                SYSTEM,
                response.status(),
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
            (None, Some(result)) => Ok((headers, result)),
            (None, None) => Err(protocol("JSON-RPC answer has neither result nor error")),
        }
    }

    async fn call(
        &self,
        service: &str,
        method: &str,
        args: Value,
    ) -> Result<Value, ConnectorError> {
        let params = RpcParams {
            service,
            method,
            args,
        };
        self.post("/jsonrpc", params, None)
            .await
            .map(|(_, result)| result)
    }

    /// Opens a web session. Wrong credentials raise `AccessDenied` and an unknown database
    /// `AccessError`: both need an operator, so both are `Unauthorized`.
    async fn login(&self) -> Result<Session, ConnectorError> {
        let params = SessionLogin {
            db: &self.config.database,
            login: &self.config.username,
            password: &self.api_key,
        };
        let (headers, info) = self
            .post("/web/session/authenticate", params, None)
            .await
            .map_err(|e| match e {
                ConnectorError::Rejected { system, detail } => {
                    ConnectorError::Unauthorized { system, detail }
                }
                other => other,
            })?;
        let info: SessionInfo = serde_json::from_value(info)
            .map_err(|_| protocol("/web/session/authenticate answered no session info"))?;
        if info.uid.as_i64().is_none() {
            return Err(ConnectorError::Unauthorized {
                system: SYSTEM,
                detail: "/web/session/authenticate gave no user id (a second factor is required?)"
                    .into(),
            });
        }
        let cookie = session_cookie(&headers)
            .ok_or_else(|| protocol("/web/session/authenticate set no session_id cookie"))?;
        tracing::info!(system = %SYSTEM, "logged in to a web session");
        Ok(Session { cookie })
    }

    async fn call_kw(
        &self,
        session: Arc<Session>,
        model: &str,
        method: &str,
        args: &Value,
        kwargs: &Value,
    ) -> Result<Value, ConnectorError> {
        // The path only names the call in Odoo's access logs; the params decide what runs.
        let path = format!("/web/dataset/call_kw/{model}.{method}");
        let params = CallKw {
            model,
            method,
            args,
            kwargs,
        };
        self.post(&path, params, Some(&session.cookie))
            .await
            .map(|(_, result)| result)
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

    pub(super) async fn execute_kw(
        &self,
        model: &str,
        method: &str,
        args: Value,
        kwargs: Value,
    ) -> Result<Value, ConnectorError> {
        match self.auth {
            OdooAuth::ApiKey => {
                let uid = self.uid().await?;
                let params = execute_kw(
                    &self.config.database,
                    uid,
                    &self.api_key,
                    model,
                    method,
                    args,
                    kwargs,
                );
                self.post("/jsonrpc", params, None)
                    .await
                    .map(|(_, result)| result)
            }
            OdooAuth::Session => {
                self.session
                    .call(
                        || self.login(),
                        |session| self.call_kw(session, model, method, &args, &kwargs),
                    )
                    .await
            }
        }
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

/// The `session_id` cookie from `Set-Cookie`, read by hand rather than by a cookie jar: the
/// HTTP client is shared with the other connectors, and only the session cache decides when a
/// session is replaced.
fn session_cookie(headers: &HeaderMap) -> Option<HeaderValue> {
    let value = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|header| header.to_str().ok())
        .filter_map(|cookie| cookie.split(';').next()?.split_once('='))
        .find(|(name, value)| name.trim() == SESSION_COOKIE && !value.trim().is_empty())
        .map(|(_, value)| value.trim())?;
    let mut header = HeaderValue::from_str(&format!("{SESSION_COOKIE}={value}")).ok()?;
    header.set_sensitive(true);
    Some(header)
}

pub(super) fn protocol(detail: &str) -> ConnectorError {
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

    fn record_kind(&self) -> &'static str {
        "partner"
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
        let vals = self.values(customer).await?;
        self.create_partner(new_partner(vals, None, reference))
            .await
    }

    async fn update_customer(&self, id: &str, customer: &Customer) -> Result<(), ConnectorError> {
        let vals = self.values(customer).await?;
        self.write_partner(id, vals).await
    }
}

impl Odoo {
    /// The partner's record as the two-way sync reads it, archived ones included.
    async fn read_partner(&self, domain: Value) -> Result<Vec<Map<String, Value>>, ConnectorError> {
        self.read_partners(domain, json!({"limit": 2})).await
    }

    /// Partners matching `domain` as the two-way sync reads them, archived ones included, with
    /// `options` (`limit`, `order`) for `search_read`.
    async fn read_partners(
        &self,
        domain: Value,
        mut options: Value,
    ) -> Result<Vec<Map<String, Value>>, ConnectorError> {
        options["fields"] = json!(PARTNER_SYNC_FIELDS);
        options["context"] = json!({"active_test": false});
        let found = self
            .execute_kw("res.partner", "search_read", json!([domain]), options)
            .await?;
        found
            .as_array()
            .ok_or_else(|| protocol("search_read did not return a list"))?
            .iter()
            .map(|p| {
                p.as_object()
                    .cloned()
                    .ok_or_else(|| protocol("partner is not an object"))
            })
            .collect()
    }

    /// The `res.partner` values for `fields`, with the country and payment terms looked up.
    async fn writes(&self, fields: &SyncFields) -> Result<Map<String, Value>, ConnectorError> {
        let country = fields.get(CustomerField::Country).and_then(Country::parse);
        let country_id = self.country_id(country).await?;
        let payment_term_id = match fields.get(CustomerField::PaymentTerms) {
            None => None,
            Some(name) => Some(
                self.lookup(
                    "account.payment.term",
                    json!([["name", "=", name]]),
                    format!("account.payment.term:{name}"),
                    "payment terms with that name",
                    false,
                )
                .await?
                .ok_or_else(|| ConnectorError::Rejected {
                    system: SYSTEM,
                    detail: "the payment terms do not exist in Odoo (by name)".into(),
                })?,
            ),
        };
        Ok(partner_writes(fields, country_id, payment_term_id))
    }

    /// Creates a partner from `vals` (`new_partner`); returns its id.
    async fn create_partner(&self, vals: Map<String, Value>) -> Result<String, ConnectorError> {
        let id = self
            .execute_kw("res.partner", "create", json!([vals]), json!({}))
            .await?;
        id.as_i64()
            .map(|id| id.to_string())
            .ok_or_else(|| protocol("create did not return an id"))
    }

    async fn write_partner(
        &self,
        id: &str,
        vals: Map<String, Value>,
    ) -> Result<(), ConnectorError> {
        let id: i64 = id
            .parse()
            .map_err(|_| protocol("partner id is not an integer"))?;
        self.execute_kw("res.partner", "write", json!([[id], vals]), json!({}))
            .await
            .map(|_| ())
    }

    /// The country of a `res.country` id already looked up by this process.
    fn cached_country(&self, id: i64) -> Option<Country> {
        let cache = self.countries.lock().ok()?;
        let code = cache.iter().find(|(_, cached)| **cached == id)?.0;
        Country::parse(code)
    }
}

impl Odoo {
    /// Records of `model` matching `filter` (a domain list) written after `after`, oldest
    /// first, at most `limit`: a keyset on `(write_date, id)`, which never skips records written
    /// in the same second.
    pub(super) async fn changed(
        &self,
        model: &str,
        filter: Value,
        after: &Written,
        limit: usize,
    ) -> Result<Vec<Written>, ConnectorError> {
        let found = self
            .execute_kw(
                model,
                "search_read",
                json!([written_after(filter, after)]),
                json!({"fields": ["id", "write_date"], "order": "write_date asc, id asc",
                       "limit": limit, "context": {"active_test": false}}),
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
                    _ => Err(protocol("a changed record has no id or write_date")),
                }
            })
            .collect()
    }
}

/// `filter` (a domain list) and "written after `after`": a keyset on `(write_date, id)`, which
/// never skips records written in the same second.
pub(super) fn written_after(filter: Value, after: &Written) -> Value {
    let at = after.at.format_naive_utc();
    let last_id: i64 = after.id.parse().unwrap_or(0);
    let mut domain = filter.as_array().cloned().unwrap_or_default();
    domain.extend([
        json!("|"),
        json!(["write_date", ">", at]),
        json!("&"),
        json!(["write_date", "=", at]),
        json!(["id", ">", last_id]),
    ]);
    Value::Array(domain)
}

/// A partner's `write_date`, which every record carries.
fn write_date(partner: &Map<String, Value>) -> Result<Timestamp, Rejection> {
    partner
        .get("write_date")
        .and_then(Value::as_str)
        .and_then(|raw| Timestamp::parse_naive_utc(raw).ok())
        .ok_or_else(|| {
            Rejection(vec![FieldError::new(
                "write_date",
                "is missing or not YYYY-MM-DD HH:MM:SS",
            )])
        })
}

impl Odoo {
    /// A partner as the customer sync reads it. Without an id or a `write_date` it has no place
    /// in a listing: that is Odoo breaking its contract, not bad data.
    fn listed(&self, partner: &Map<String, Value>) -> Result<Listed, ConnectorError> {
        let id = partner
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| protocol("a partner has no id"))?
            .to_string();
        let modified = write_date(partner).map_err(|_| protocol("a partner has no write_date"))?;
        let record = partner_fields(partner, |c| self.cached_country(c)).map(|fields| {
            CustomerRecord {
                id: id.clone(),
                fields,
                modified,
                // A partner becomes a customer when sold to; suppliers and contact persons stay
                // out.
                syncs: partner
                    .get("customer_rank")
                    .and_then(Value::as_i64)
                    .is_some_and(|rank| rank > 0),
            }
        });
        Ok(Listed {
            written: Written { id, at: modified },
            record,
        })
    }
}

impl CustomerListing for Odoo {
    async fn list_changed(
        &self,
        after: &Written,
        limit: usize,
    ) -> Result<Vec<Listed>, ConnectorError> {
        let domain = written_after(json!([["customer_rank", ">", 0]]), after);
        let options = json!({"order": "write_date asc, id asc", "limit": limit});
        let partners = self.read_partners(domain, options).await?;
        partners.iter().map(|p| self.listed(p)).collect()
    }

    async fn read_many(&self, ids: &[String]) -> Result<Vec<Listed>, ConnectorError> {
        let ids: Vec<i64> = ids.iter().filter_map(|id| id.parse().ok()).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let partners = self
            .read_partners(json!([["id", "in", ids]]), json!({}))
            .await?;
        partners.iter().map(|p| self.listed(p)).collect()
    }
}

impl CustomerFeed for Odoo {
    /// Customers (partners with a customer rank) written after `after`.
    async fn changed_customers(
        &self,
        after: &Written,
        limit: usize,
    ) -> Result<Vec<Written>, ConnectorError> {
        let customers = json!([["customer_rank", ">", 0]]);
        self.changed("res.partner", customers, after, limit).await
    }
}

impl CustomerSide for Odoo {
    fn system(&self) -> System {
        SYSTEM
    }

    fn record_kind(&self) -> &'static str {
        "partner"
    }

    async fn read_record(&self, id: &str) -> Result<Option<CustomerRecord>, ConnectorError> {
        let id: i64 = id.parse().map_err(|_| ConnectorError::Rejected {
            system: SYSTEM,
            detail: "partner id is not an integer".into(),
        })?;
        let Some(partner) = self.read_partner(json!([["id", "=", id]])).await?.pop() else {
            return Ok(None);
        };
        self.listed(&partner)?
            .record
            .map(Some)
            .map_err(|rejection| ConnectorError::Invalid {
                system: SYSTEM,
                what: "partner".into(),
                rejection,
            })
    }

    async fn find_by_origin(&self, origin: &str) -> Result<Option<String>, ConnectorError> {
        let partners = self.read_partner(json!([["ref", "=", origin]])).await?;
        match partners.as_slice() {
            [] => Ok(None),
            [one] => one
                .get("id")
                .and_then(Value::as_i64)
                .map(|id| Some(id.to_string()))
                .ok_or_else(|| protocol("partner has no id")),
            _ => Err(ConnectorError::Rejected {
                system: SYSTEM,
                detail: format!("more than one partner carries reference {origin}"),
            }),
        }
    }

    async fn create_record(
        &self,
        fields: &SyncFields,
        kind: CustomerKind,
        origin: &str,
    ) -> Result<String, ConnectorError> {
        let vals = self.writes(fields).await?;
        self.create_partner(new_partner(vals, Some(kind), origin))
            .await
    }

    async fn update_record(&self, id: &str, fields: &SyncFields) -> Result<(), ConnectorError> {
        let vals = self.writes(fields).await?;
        if vals.is_empty() {
            return Ok(());
        }
        self.write_partner(id, vals).await
    }
}
