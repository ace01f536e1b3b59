//! HubSpot simulator: CRM v3 companies, deals and line items (read, batch read, update) with
//! bearer-token auth, HubSpot's error bodies and property validation, and webhook deliveries
//! signed the way HubSpot signs them (v1, v2 and v3 headers at once).

use super::faults::{Fault, Faults};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Batch endpoints refuse more inputs than this.
const BATCH_LIMIT: usize = 100;

/// Properties HubSpot maintains itself: always returned, never writable.
const READ_ONLY: [&str; 3] = ["hs_object_id", "hs_lastmodifieddate", "createdate"];

/// The CRM object types the simulator stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ObjectType {
    Company,
    Deal,
    LineItem,
}

impl ObjectType {
    /// The type named in a URL. HubSpot accepts the plural name, the singular name and the
    /// object type id.
    fn parse(name: &str) -> Option<Self> {
        match name {
            "companies" | "company" | "0-2" => Some(Self::Company),
            "deals" | "deal" | "0-3" => Some(Self::Deal),
            "line_items" | "line_item" | "0-8" => Some(Self::LineItem),
            _ => None,
        }
    }

    /// The plural name used in URLs (`line_items`).
    fn plural(self) -> &'static str {
        match self {
            Self::Company => "companies",
            Self::Deal => "deals",
            Self::LineItem => "line_items",
        }
    }

    /// The singular name used in association type names (`deal_to_line_item`).
    fn singular(self) -> &'static str {
        match self {
            Self::Company => "company",
            Self::Deal => "deal",
            Self::LineItem => "line_item",
        }
    }

    /// The name in batch error messages ("Could not get some LINE_ITEM objects ...").
    fn upper(self) -> &'static str {
        match self {
            Self::Company => "COMPANY",
            Self::Deal => "DEAL",
            Self::LineItem => "LINE_ITEM",
        }
    }

    /// The key of this type in a v3 `associations` object: HubSpot uses the plural label,
    /// so line items appear as `"line items"`, with a space.
    fn association_key(self) -> &'static str {
        match self {
            Self::Company => "companies",
            Self::Deal => "deals",
            Self::LineItem => "line items",
        }
    }

    /// The properties every portal has for this type.
    fn standard_properties(self) -> &'static [&'static str] {
        match self {
            Self::Company => &[
                "name",
                "domain",
                "website",
                "phone",
                "address",
                "address2",
                "city",
                "zip",
                "country",
                "state",
                "industry",
                "description",
                "hubspot_owner_id",
                "hs_object_id",
                "hs_lastmodifieddate",
                "createdate",
            ],
            Self::Deal => &[
                "dealname",
                "amount",
                "dealstage",
                "pipeline",
                "closedate",
                "deal_currency_code",
                "dealtype",
                "description",
                "hubspot_owner_id",
                "hs_object_id",
                "hs_lastmodifieddate",
                "createdate",
            ],
            Self::LineItem => &[
                "name",
                "description",
                "quantity",
                "price",
                "amount",
                "hs_sku",
                "hs_product_id",
                "hs_discount_percentage",
                "discount",
                "hs_tax_rate",
                "hs_line_item_currency_code",
                "hs_object_id",
                "hs_lastmodifieddate",
                "createdate",
            ],
        }
    }

    /// What a read returns when it names no properties (besides the three always returned).
    fn default_properties(self) -> &'static [&'static str] {
        match self {
            Self::Company => &["name", "domain"],
            Self::Deal => &["dealname", "amount", "dealstage", "pipeline", "closedate"],
            Self::LineItem => &["name", "quantity", "price", "amount", "hs_product_id"],
        }
    }
}

/// One stored object: its property values (unset properties are absent) and, for deals, the
/// ids of its associated companies and line items in the order they were put.
#[derive(Debug, Clone, Default)]
struct Record {
    properties: BTreeMap<String, String>,
    companies: Vec<String>,
    line_items: Vec<String>,
}

/// Everything the simulated portal holds.
#[derive(Debug, Default)]
struct Store {
    records: HashMap<(ObjectType, String), Record>,
    /// Property names defined beyond the standard ones: custom properties and seeded names.
    defined: HashMap<ObjectType, BTreeSet<String>>,
    /// Every successful PATCH: object type, id, properties as sent.
    writes: Vec<(String, String, Map<String, Value>)>,
}

impl Store {
    fn is_defined(&self, object_type: ObjectType, name: &str) -> bool {
        object_type.standard_properties().contains(&name)
            || self
                .defined
                .get(&object_type)
                .is_some_and(|names| names.contains(name))
    }

    fn define(&mut self, object_type: ObjectType, name: &str) {
        self.defined
            .entry(object_type)
            .or_default()
            .insert(name.to_owned());
    }

    /// Creates or replaces an object as a seed: its properties become defined, `createdate`
    /// survives a replace unless given, `hs_lastmodifieddate` is now.
    fn put(
        &mut self,
        object_type: ObjectType,
        id: &str,
        properties: &[(&str, &str)],
    ) -> &mut Record {
        for (name, _) in properties {
            self.define(object_type, name);
        }
        let key = (object_type, id.to_owned());
        let now = iso_ms(super::now_ms());
        let created = self
            .records
            .get(&key)
            .and_then(|r| r.properties.get("createdate").cloned())
            .unwrap_or_else(|| now.clone());
        let mut record = Record::default();
        record.properties.insert("createdate".into(), created);
        for (name, value) in properties {
            set_value(&mut record.properties, name, value);
        }
        record
            .properties
            .insert("hs_object_id".into(), id.to_owned());
        record.properties.insert("hs_lastmodifieddate".into(), now);
        let slot = self.records.entry(key).or_default();
        *slot = record;
        slot
    }

    /// Finds an object by id, or by the value of `id_property` when one is named.
    fn find(
        &self,
        object_type: ObjectType,
        key: &str,
        id_property: Option<&str>,
    ) -> Option<(String, &Record)> {
        match id_property {
            None | Some("hs_object_id") => self
                .records
                .get(&(object_type, key.to_owned()))
                .map(|r| (key.to_owned(), r)),
            Some(property) => self
                .records
                .iter()
                .find(|((t, _), r)| {
                    *t == object_type && r.properties.get(property).map(String::as_str) == Some(key)
                })
                .map(|((_, id), r)| (id.clone(), r)),
        }
    }

    /// The ids of `to` objects associated with object `id` of type `from`, sorted for the
    /// reverse direction (company -> deals, line item -> deals).
    fn associated(&self, from: ObjectType, id: &str, to: ObjectType) -> Vec<String> {
        let deal = || self.records.get(&(ObjectType::Deal, id.to_owned()));
        match (from, to) {
            (ObjectType::Deal, ObjectType::Company) => {
                deal().map(|d| d.companies.clone()).unwrap_or_default()
            }
            (ObjectType::Deal, ObjectType::LineItem) => {
                deal().map(|d| d.line_items.clone()).unwrap_or_default()
            }
            (ObjectType::Company | ObjectType::LineItem, ObjectType::Deal) => {
                let mut ids: Vec<String> = self
                    .records
                    .iter()
                    .filter(|((t, _), r)| {
                        *t == ObjectType::Deal
                            && match from {
                                ObjectType::Company => r.companies.iter().any(|c| c == id),
                                _ => r.line_items.iter().any(|l| l == id),
                            }
                    })
                    .map(|((_, deal_id), _)| deal_id.clone())
                    .collect();
                ids.sort();
                ids
            }
            _ => Vec::new(),
        }
    }
}

/// Sets a property value; the empty string clears it, as in HubSpot.
fn set_value(properties: &mut BTreeMap<String, String>, name: &str, value: &str) {
    if value.is_empty() {
        properties.remove(name);
    } else {
        properties.insert(name.to_owned(), value.to_owned());
    }
}

#[derive(Debug)]
pub struct HubSpotState {
    pub access_token: String,
    pub client_secret: String,
    pub portal_id: u64,
    pub app_id: u64,
    store: Mutex<Store>,
    pub faults: Faults,
}

impl HubSpotState {
    /// The store, even after a panic elsewhere poisoned the lock (its data stays consistent:
    /// every change is made under one lock).
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running HubSpot simulator.
#[derive(Debug, Clone)]
pub struct HubSpotSim {
    pub addr: SocketAddr,
    pub state: Arc<HubSpotState>,
}

impl HubSpotSim {
    pub async fn start(access_token: &str, client_secret: &str) -> std::io::Result<Self> {
        let state = Arc::new(HubSpotState {
            access_token: access_token.to_owned(),
            client_secret: client_secret.to_owned(),
            portal_id: 62515,
            app_id: 54321,
            store: Mutex::new(Store::default()),
            faults: Faults::default(),
        });
        let app = Router::new()
            .route(
                "/crm/v3/objects/{object_type}/{id}",
                get(read_object).patch(update_object),
            )
            .route(
                "/crm/v3/objects/{object_type}/batch/read",
                axum::routing::post(batch_read),
            )
            .with_state(state.clone());
        let addr = super::serve(app).await?;
        Ok(Self { addr, state })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates or replaces a company's properties.
    pub fn put_company(&self, id: &str, properties: &[(&str, &str)]) {
        self.state.store().put(ObjectType::Company, id, properties);
    }

    /// Creates or replaces a deal with its properties and its associations to a company and
    /// to line items (which need not exist: HubSpot keeps associations to deleted records
    /// until it cleans them up).
    pub fn put_deal(
        &self,
        id: &str,
        properties: &[(&str, &str)],
        company: Option<&str>,
        line_items: &[&str],
    ) {
        let mut store = self.state.store();
        let deal = store.put(ObjectType::Deal, id, properties);
        deal.companies = company.iter().map(|c| (*c).to_owned()).collect();
        deal.line_items = line_items.iter().map(|l| (*l).to_owned()).collect();
    }

    /// Creates or replaces a line item's properties.
    pub fn put_line_item(&self, id: &str, properties: &[(&str, &str)]) {
        self.state.store().put(ObjectType::LineItem, id, properties);
    }

    /// Changes one property of a deal as a user editing it in HubSpot would (the empty string
    /// clears it). Not recorded in `writes`. Does nothing when the deal does not exist.
    pub fn set_deal_property(&self, id: &str, name: &str, value: &str) {
        let mut store = self.state.store();
        store.define(ObjectType::Deal, name);
        if let Some(deal) = store.records.get_mut(&(ObjectType::Deal, id.to_owned())) {
            set_value(&mut deal.properties, name, value);
            deal.properties
                .insert("hs_lastmodifieddate".into(), iso_ms(super::now_ms()));
        }
    }

    /// A deal's current properties.
    pub fn deal(&self, id: &str) -> Option<BTreeMap<String, String>> {
        self.properties(ObjectType::Deal, id)
    }

    /// A company's current properties.
    pub fn company(&self, id: &str) -> Option<BTreeMap<String, String>> {
        self.properties(ObjectType::Company, id)
    }

    /// A line item's current properties.
    pub fn line_item(&self, id: &str) -> Option<BTreeMap<String, String>> {
        self.properties(ObjectType::LineItem, id)
    }

    fn properties(&self, object_type: ObjectType, id: &str) -> Option<BTreeMap<String, String>> {
        self.state
            .store()
            .records
            .get(&(object_type, id.to_owned()))
            .map(|r| r.properties.clone())
    }

    /// Creates a custom property for `object_type` (`"deals"`, `"companies"`, `"line_items"`,
    /// or a singular name). Writing a property that was never defined is a 400. Unknown
    /// object types are ignored: the portal has no such objects to write.
    pub fn define_property(&self, object_type: &str, name: &str) {
        if let Some(object_type) = ObjectType::parse(object_type) {
            self.state.store().define(object_type, name);
        }
    }

    /// Every successful PATCH, in order: object type (plural), id, properties as sent.
    pub fn writes(&self) -> Vec<(String, String, Map<String, Value>)> {
        self.state.store().writes.clone()
    }

    /// A webhook event for a company, as HubSpot builds it.
    pub fn company_event(
        &self,
        event_id: u64,
        subscription_type: &str,
        company_id: u64,
        occurred_at: i64,
    ) -> Value {
        json!({
            "eventId": event_id,
            "subscriptionId": 2001,
            "portalId": self.state.portal_id,
            "appId": self.state.app_id,
            "occurredAt": occurred_at,
            "subscriptionType": subscription_type,
            "attemptNumber": 0,
            "objectId": company_id,
            "changeSource": "CRM_UI",
            "changeFlag": "NEW",
            "sourceId": "userId:45678"
        })
    }

    /// A webhook event for a deal, as HubSpot builds it. `property` is the changed property
    /// and its new value (`("dealstage", "closedwon")`), for `deal.propertyChange`; HubSpot
    /// sends `changeFlag` on creations (`NEW`) and deletions (`DELETED`) only.
    pub fn deal_event(
        &self,
        event_id: u64,
        subscription_type: &str,
        deal_id: u64,
        occurred_at: i64,
        property: Option<(&str, &str)>,
    ) -> Value {
        let mut event = json!({
            "eventId": event_id,
            "subscriptionId": 2002,
            "portalId": self.state.portal_id,
            "appId": self.state.app_id,
            "occurredAt": occurred_at,
            "subscriptionType": subscription_type,
            "attemptNumber": 0,
            "objectId": deal_id,
            "changeSource": "CRM_UI",
            "sourceId": "userId:45678"
        });
        if let Some(fields) = event.as_object_mut() {
            if let Some((name, value)) = property {
                fields.insert("propertyName".into(), json!(name));
                fields.insert("propertyValue".into(), json!(value));
            }
            let flag = match subscription_type.rsplit_once('.').map(|(_, kind)| kind) {
                Some("creation") => Some("NEW"),
                Some("deletion") => Some("DELETED"),
                _ => None,
            };
            if let Some(flag) = flag {
                fields.insert("changeFlag".into(), json!(flag));
            }
        }
        event
    }

    /// Posts `events` to `url` the way HubSpot does: one JSON array, signed with v1, v2 and v3
    /// headers and the current timestamp. Returns the status and body of the answer.
    pub async fn deliver(
        &self,
        http: &reqwest::Client,
        url: &str,
        events: &[Value],
    ) -> reqwest::Result<(u16, String)> {
        let body = serde_json::to_string(events).unwrap_or_default();
        let timestamp = super::now_ms().to_string();
        let headers = signature_headers(&self.state.client_secret, "POST", url, &body, &timestamp);
        post(http, url, &body, &headers).await
    }
}

/// Sends `body` to `url` with `headers`, as a webhook sender would.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    body: &str,
    headers: &[(String, String)],
) -> reqwest::Result<(u16, String)> {
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            "HubSpot Connect 2.0 (http://dev.hubspot.com/)",
        )
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// The headers HubSpot puts on a webhook request. This is the simulator's own implementation
/// of HubSpot's documented algorithms, independent of the receiver's verifier.
pub fn signature_headers(
    secret: &str,
    method: &str,
    uri: &str,
    body: &str,
    timestamp: &str,
) -> Vec<(String, String)> {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let v1 = hex(&Sha256::digest(format!("{secret}{body}")));
    let v3 = sign_v3(secret, method, uri, body, timestamp);
    vec![
        ("X-HubSpot-Signature".into(), v1),
        ("X-HubSpot-Signature-Version".into(), "v1".into()),
        ("X-HubSpot-Signature-v3".into(), v3),
        ("X-HubSpot-Request-Timestamp".into(), timestamp.into()),
    ]
}

/// `base64(HMAC-SHA256(secret, method + uri + body + timestamp))`.
pub fn sign_v3(secret: &str, method: &str, uri: &str, body: &str, timestamp: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{method}{uri}{body}{timestamp}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn error(status: StatusCode, category: &str, message: &str) -> Response {
    error_with(status, category, message, Map::new())
}

/// HubSpot's error body with extra fields (`errors`, `policyName`, ...).
fn error_with(
    status: StatusCode,
    category: &str,
    message: &str,
    extra: Map<String, Value>,
) -> Response {
    let mut body = Map::new();
    body.insert("status".into(), json!("error"));
    body.insert("message".into(), json!(message));
    body.insert(
        "correlationId".into(),
        json!(uuid::Uuid::new_v4().to_string()),
    );
    body.insert("category".into(), json!(category));
    body.extend(extra);
    (status, axum::Json(Value::Object(body))).into_response()
}

fn unknown_type() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "Unknown object type",
    )
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "Object not found",
    )
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

/// The 400 HubSpot answers when property values are refused: one `(name, code, message)` per
/// refused property, quoted in the top-level message and listed in `errors`.
fn invalid_properties(problems: &[(String, &str, String)]) -> Response {
    let quoted: Vec<String> = problems
        .iter()
        .map(|(name, code, message)| {
            format!(
                r#"{{"isValid":false,"message":{},"error":{},"name":{}}}"#,
                json!(message),
                json!(code),
                json!(name)
            )
        })
        .collect();
    let message = format!("Property values were not valid: [{}]", quoted.join(","));
    let errors: Vec<Value> = problems
        .iter()
        .map(|(name, code, message)| {
            json!({"message": message, "code": code, "context": {"propertyName": [name]}})
        })
        .collect();
    let mut extra = Map::new();
    extra.insert("errors".into(), Value::Array(errors));
    error_with(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", &message, extra)
}

/// Takes the fault armed for `operation` (which logs the request), then checks the bearer
/// token. `Err` is the answer to send instead of handling the request, `Ok(Some(delay))` a
/// wait between handling it and answering.
async fn admit(
    state: &HubSpotState,
    headers: &HeaderMap,
    operation: &str,
) -> Result<Option<Duration>, Response> {
    let fault = state.faults.take(operation);
    let expected = format!("Bearer {}", state.access_token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found.",
        ));
    }
    match fault {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Err(error(status, "INTERNAL_ERROR", "internal error"))
        }
        Some(Fault::Throttle { retry_after_s }) => {
            let mut extra = Map::new();
            extra.insert("errorType".into(), json!("RATE_LIMIT"));
            extra.insert("policyName".into(), json!("TEN_SECONDLY_ROLLING"));
            let mut response = error_with(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITS",
                "You have reached your ten_secondly_rolling limit.",
                extra,
            );
            if let Ok(v) = retry_after_s.to_string().parse() {
                response.headers_mut().insert("retry-after", v);
            }
            Err(response)
        }
        Some(Fault::AppError { name, message }) => {
            Err(error(StatusCode::BAD_REQUEST, &name, &message))
        }
        Some(Fault::DelayBefore(d)) => {
            tokio::time::sleep(d).await;
            Ok(None)
        }
        Some(Fault::DelayAfter(d)) => Ok(Some(d)),
        None => Ok(None),
    }
}

/// Sends `response`, after `late` when the request was armed to be answered late.
async fn answer(response: Response, late: Option<Duration>) -> Response {
    if let Some(delay) = late {
        tokio::time::sleep(delay).await;
    }
    response
}

/// All values of a query parameter, comma-separated or repeated (`properties=a,b&properties=c`).
fn list_param(query: &[(String, String)], name: &str) -> Vec<String> {
    query
        .iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(','))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An object as v3 returns it. With `requested`, the properties are those asked for (null
/// where unset) plus the three HubSpot always returns; without, all the properties it has.
fn object_json(id: &str, record: &Record, requested: Option<&[String]>) -> Map<String, Value> {
    let mut properties = Map::new();
    match requested {
        Some(names) => {
            let always = READ_ONLY.iter().copied();
            for name in names.iter().map(String::as_str).chain(always) {
                let value = record
                    .properties
                    .get(name)
                    .map_or(Value::Null, |v| json!(v));
                properties.insert(name.to_owned(), value);
            }
        }
        None => {
            for (name, value) in &record.properties {
                properties.insert(name.clone(), json!(value));
            }
        }
    }
    let stamp = |name: &str| record.properties.get(name).cloned().unwrap_or_default();
    let mut object = Map::new();
    object.insert("id".into(), json!(id));
    object.insert("properties".into(), Value::Object(properties));
    object.insert("createdAt".into(), json!(stamp("createdate")));
    object.insert("updatedAt".into(), json!(stamp("hs_lastmodifieddate")));
    object.insert("archived".into(), json!(false));
    object
}

/// The `associations` object of a read: one key per requested type that has associations.
fn associations_json(
    store: &Store,
    from: ObjectType,
    id: &str,
    requested: &[String],
) -> Map<String, Value> {
    let mut associations = Map::new();
    for to in requested.iter().filter_map(|name| ObjectType::parse(name)) {
        let ids = store.associated(from, id, to);
        if ids.is_empty() {
            continue;
        }
        let kind = format!("{}_to_{}", from.singular(), to.singular());
        let results: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id, "type": kind}))
            .collect();
        associations.insert(to.association_key().into(), json!({ "results": results }));
    }
    associations
}

/// The properties to return: those requested, else the type's defaults.
fn requested_or_default(object_type: ObjectType, requested: Vec<String>) -> Vec<String> {
    if requested.is_empty() {
        object_type
            .default_properties()
            .iter()
            .map(|p| (*p).to_owned())
            .collect()
    } else {
        requested
    }
}

async fn read_object(
    State(state): State<Arc<HubSpotState>>,
    Path((object_type, id)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let operation = format!("GET /crm/v3/objects/{object_type}");
    let late = match admit(&state, &headers, &operation).await {
        Ok(late) => late,
        Err(response) => return response,
    };
    let response = read(&state, &object_type, &id, &query);
    answer(response, late).await
}

/// `GET /crm/v3/objects/{type}/{id}`.
fn read(
    state: &HubSpotState,
    object_type: &str,
    key: &str,
    query: &[(String, String)],
) -> Response {
    let Some(object_type) = ObjectType::parse(object_type) else {
        return unknown_type();
    };
    // Nothing is archived in the simulator: asking for archived objects finds none.
    if param(query, "archived") == Some("true") {
        return not_found();
    }
    let store = state.store();
    let Some((id, record)) = store.find(object_type, key, param(query, "idProperty")) else {
        return not_found();
    };
    let requested = requested_or_default(object_type, list_param(query, "properties"));
    let mut object = object_json(&id, record, Some(&requested));
    let wanted = list_param(query, "associations");
    let associations = associations_json(&store, object_type, &id, &wanted);
    if !associations.is_empty() {
        object.insert("associations".into(), Value::Object(associations));
    }
    (StatusCode::OK, axum::Json(Value::Object(object))).into_response()
}

async fn update_object(
    State(state): State<Arc<HubSpotState>>,
    Path((object_type, id)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let operation = format!("PATCH /crm/v3/objects/{object_type}");
    let late = match admit(&state, &headers, &operation).await {
        Ok(late) => late,
        Err(response) => return response,
    };
    let response = update(
        &state,
        &object_type,
        &id,
        param(&query, "idProperty"),
        &body,
    );
    answer(response, late).await
}

/// Parses a JSON request body; the error is the message of HubSpot's 400 when it is not JSON.
fn parse_body(body: &str) -> Result<Value, String> {
    serde_json::from_str(body).map_err(|e| {
        format!(
            "Invalid input JSON on line {}, column {}: {e}",
            e.line(),
            e.column()
        )
    })
}

/// The text HubSpot stores for a property value: strings as sent, numbers and booleans as
/// their text, null as empty (which clears). Objects and arrays are refused.
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// `PATCH /crm/v3/objects/{type}/{id}` with `{"properties": {...}}`: all or nothing.
fn update(
    state: &HubSpotState,
    object_type: &str,
    key: &str,
    id_property: Option<&str>,
    body: &str,
) -> Response {
    let Some(object_type) = ObjectType::parse(object_type) else {
        return unknown_type();
    };
    let body = match parse_body(body) {
        Ok(body) => body,
        Err(message) => return invalid(&message),
    };
    let Some(properties) = body.get("properties").and_then(Value::as_object) else {
        return invalid("Invalid input JSON: \"properties\" must be an object of property values");
    };
    let mut texts = Vec::with_capacity(properties.len());
    for (name, value) in properties {
        let Some(text) = value_text(value) else {
            return invalid(&format!(
                "Invalid input JSON: the value of \"{name}\" must be a string, number or boolean"
            ));
        };
        texts.push((name.clone(), text));
    }
    let mut store = state.store();
    let Some((id, _)) = store.find(object_type, key, id_property) else {
        return not_found();
    };
    let problems: Vec<(String, &str, String)> = texts
        .iter()
        .filter_map(|(name, _)| {
            if !store.is_defined(object_type, name) {
                Some((
                    name.clone(),
                    "PROPERTY_DOESNT_EXIST",
                    format!("Property \"{name}\" does not exist"),
                ))
            } else if READ_ONLY.contains(&name.as_str()) {
                Some((
                    name.clone(),
                    "READ_ONLY_VALUE",
                    format!("{name} is a read only property; its value cannot be set."),
                ))
            } else {
                None
            }
        })
        .collect();
    if !problems.is_empty() {
        return invalid_properties(&problems);
    }
    let store = &mut *store;
    let Some(record) = store.records.get_mut(&(object_type, id.clone())) else {
        return not_found();
    };
    for (name, text) in &texts {
        set_value(&mut record.properties, name, text);
    }
    record
        .properties
        .insert("hs_lastmodifieddate".into(), iso_ms(super::now_ms()));
    store.writes.push((
        object_type.plural().to_owned(),
        id.clone(),
        properties.clone(),
    ));
    let object = object_json(&id, record, None);
    (StatusCode::OK, axum::Json(Value::Object(object))).into_response()
}

async fn batch_read(
    State(state): State<Arc<HubSpotState>>,
    Path(object_type): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let operation = format!("POST /crm/v3/objects/{object_type}/batch/read");
    let late = match admit(&state, &headers, &operation).await {
        Ok(late) => late,
        Err(response) => return response,
    };
    let response = read_batch(&state, &object_type, &body);
    answer(response, late).await
}

/// `POST /crm/v3/objects/{type}/batch/read`: found objects in `results`; missing ids make the
/// answer a 207 with one `OBJECT_NOT_FOUND` error listing them.
fn read_batch(state: &HubSpotState, object_type: &str, body: &str) -> Response {
    let Some(object_type) = ObjectType::parse(object_type) else {
        return unknown_type();
    };
    let started_at = iso_ms(super::now_ms());
    let body = match parse_body(body) {
        Ok(body) => body,
        Err(message) => return invalid(&message),
    };
    let Some(inputs) = body.get("inputs").and_then(Value::as_array) else {
        return invalid("Invalid input JSON: \"inputs\" must be an array");
    };
    if inputs.len() > BATCH_LIMIT {
        return invalid(&format!(
            "Too many inputs: {} were sent, the limit is {BATCH_LIMIT} per batch",
            inputs.len()
        ));
    }
    let requested: Vec<String> = body
        .get("properties")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let requested = requested_or_default(object_type, requested);
    let id_property = body.get("idProperty").and_then(Value::as_str);
    let store = state.store();
    if let Some(property) = id_property.filter(|p| !store.is_defined(object_type, p)) {
        return invalid_properties(&[(
            property.to_owned(),
            "PROPERTY_DOESNT_EXIST",
            format!("Property \"{property}\" does not exist"),
        )]);
    }
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for input in inputs {
        let key = match input.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return invalid("Invalid input JSON: each input needs an \"id\""),
        };
        match store.find(object_type, &key, id_property) {
            Some((id, record)) => {
                results.push(Value::Object(object_json(&id, record, Some(&requested))))
            }
            None => missing.push(key),
        }
    }
    let mut answer = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": started_at,
        "completedAt": iso_ms(super::now_ms()),
    });
    if missing.is_empty() {
        return (StatusCode::OK, axum::Json(answer)).into_response();
    }
    let message = format!(
        "Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.",
        object_type.upper()
    );
    if let Some(fields) = answer.as_object_mut() {
        fields.insert("numErrors".into(), json!(1));
        fields.insert(
            "errors".into(),
            json!([{
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": message,
                "context": {"ids": missing},
            }]),
        );
    }
    (StatusCode::MULTI_STATUS, axum::Json(answer)).into_response()
}

/// HubSpot's v3 timestamp format: UTC, ISO-8601 with milliseconds and `Z`.
fn iso_ms(epoch_ms: i64) -> String {
    let (secs, millis) = (epoch_ms.div_euclid(1000), epoch_ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm; the Odoo
/// simulator has its own copy).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_signature_matches_the_reference_vector() {
        let body = r#"[{"eventId":100,"subscriptionId":2001,"portalId":62515,"appId":54321,"occurredAt":1704067199000,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":901,"propertyName":"email","propertyValue":"ana@example.co","changeSource":"CRM_UI"}]"#;
        let signature = sign_v3(
            "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
            "POST",
            "https://hooks.example.com/hubspot/webhooks?tenant=acme",
            body,
            "1704067200000",
        );
        assert_eq!(signature, "7ywv82IoJjNSfH6OxSjEj6R6rq04J0nSlpUzV3AegUU=");
    }

    #[test]
    fn v1_signature_matches_hubspots_documented_example() {
        let body = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;
        let headers = signature_headers(
            "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
            "POST",
            "u",
            body,
            "0",
        );
        assert_eq!(
            headers[0].1,
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
        );
    }

    const TOKEN: &str = "pat-na1-test";

    async fn started() -> (HubSpotSim, reqwest::Client) {
        let sim = HubSpotSim::start(TOKEN, "secret")
            .await
            .expect("a simulator");
        (sim, reqwest::Client::new())
    }

    /// Deal 5512 with company 901 and line items 7001 and 7002.
    fn seed(sim: &HubSpotSim) {
        sim.put_company("901", &[("name", "Andina"), ("nit", "900123456-8")]);
        sim.put_line_item("7001", &[("name", "Licencia"), ("quantity", "2")]);
        sim.put_line_item("7002", &[("name", "Soporte"), ("quantity", "1")]);
        sim.put_deal(
            "5512",
            &[
                ("dealname", "Licencias Andina 2025"),
                ("dealstage", "closedwon"),
            ],
            Some("901"),
            &["7001", "7002"],
        );
    }

    async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("an answer");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn patch(
        sim: &HubSpotSim,
        http: &reqwest::Client,
        path: &str,
        body: &str,
    ) -> (u16, Value) {
        let url = format!("{}/crm/v3/objects/{path}", sim.base_url());
        send(
            http.patch(url)
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }

    async fn batch(sim: &HubSpotSim, http: &reqwest::Client, ids: &[String]) -> (u16, Value) {
        let inputs: Vec<Value> = ids.iter().map(|id| json!({ "id": id })).collect();
        let url = format!("{}/crm/v3/objects/line_items/batch/read", sim.base_url());
        send(
            http.post(url)
                .bearer_auth(TOKEN)
                .json(&json!({"properties": ["name", "price"], "inputs": inputs})),
        )
        .await
    }

    #[tokio::test]
    async fn a_deal_is_read_with_its_associations() {
        let (sim, http) = started().await;
        seed(&sim);
        let url = format!(
            "{}/crm/v3/objects/deals/5512?properties=dealname,amount&associations=companies,line_items&archived=false",
            sim.base_url()
        );
        let (status, body) = send(http.get(url).bearer_auth(TOKEN)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["id"], "5512");
        assert_eq!(body["properties"]["dealname"], "Licencias Andina 2025");
        assert_eq!(body["properties"]["amount"], Value::Null);
        assert_eq!(body["properties"]["hs_object_id"], "5512");
        assert_eq!(
            body["associations"]["companies"],
            json!({"results": [{"id": "901", "type": "deal_to_company"}]})
        );
        assert_eq!(
            body["associations"]["line items"]["results"][1],
            json!({"id": "7002", "type": "deal_to_line_item"})
        );

        sim.put_deal("5513", &[("dealname", "Sin empresa")], None, &[]);
        let url = format!(
            "{}/crm/v3/objects/deals/5513?associations=companies,line_items",
            sim.base_url()
        );
        let (status, body) = send(http.get(url).bearer_auth(TOKEN)).await;
        assert_eq!(status, 200);
        assert!(body.get("associations").is_none(), "{body}");

        let url = format!(
            "{}/crm/v3/objects/companies/901?associations=deals",
            sim.base_url()
        );
        let (_, body) = send(http.get(url).bearer_auth(TOKEN)).await;
        assert_eq!(
            body["associations"]["deals"]["results"][0]["type"],
            "company_to_deal"
        );

        let url = format!("{}/crm/v3/objects/deals/404", sim.base_url());
        let (status, body) = send(http.get(url).bearer_auth(TOKEN)).await;
        assert_eq!(
            (status, body["category"].clone()),
            (404, json!("OBJECT_NOT_FOUND"))
        );
    }

    #[tokio::test]
    async fn writing_an_undefined_property_is_refused_and_changes_nothing() {
        let (sim, http) = started().await;
        seed(&sim);
        let before = sim.deal("5512");
        let (status, body) = patch(
            &sim,
            &http,
            "deals/5512",
            r#"{"properties": {"dealstage": "closedlost", "erp_invoice_number": "FV-1"}}"#,
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["category"], "VALIDATION_ERROR");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(
                r#"Property values were not valid: [{"isValid":false,"message":"Property \"erp_invoice_number\" does not exist","error":"PROPERTY_DOESNT_EXIST","name":"erp_invoice_number"}]"#
            ),
            "{message}"
        );
        assert_eq!(body["errors"][0]["code"], "PROPERTY_DOESNT_EXIST");
        assert_eq!(
            body["errors"][0]["context"]["propertyName"],
            json!(["erp_invoice_number"])
        );
        assert!(sim.writes().is_empty());
        assert_eq!(sim.deal("5512"), before);

        let (status, body) = patch(
            &sim,
            &http,
            "deals/5512",
            r#"{"properties": {"hs_object_id": "1"}}"#,
        )
        .await;
        assert_eq!(
            (status, body["errors"][0]["code"].clone()),
            (400, json!("READ_ONLY_VALUE"))
        );
        let (status, _) = patch(&sim, &http, "deals/5512", "dealstage=closedlost").await;
        assert_eq!(status, 400);
        let (status, _) = patch(&sim, &http, "deals/5512", r#"{"dealstage": "x"}"#).await;
        assert_eq!(status, 400);
        let (status, _) = patch(
            &sim,
            &http,
            "deals/999",
            r#"{"properties": {"dealstage": "x"}}"#,
        )
        .await;
        assert_eq!(status, 404);
        assert!(sim.writes().is_empty());
    }

    #[tokio::test]
    async fn writing_a_defined_property_is_visible_and_recorded() {
        let (sim, http) = started().await;
        seed(&sim);
        sim.define_property("deals", "erp_invoice_number");
        sim.define_property("deals", "erp_invoice_total");
        let (status, body) = patch(
            &sim,
            &http,
            "deals/5512",
            r#"{"properties": {"erp_invoice_number": "FV-1", "erp_invoice_total": 1190000, "dealstage": ""}}"#,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["id"], "5512");
        assert_eq!(body["archived"], false);
        assert_eq!(body["properties"]["erp_invoice_number"], "FV-1");
        assert_eq!(body["properties"]["dealname"], "Licencias Andina 2025");

        let deal = sim.deal("5512").unwrap_or_default();
        assert_eq!(
            deal.get("erp_invoice_number").map(String::as_str),
            Some("FV-1")
        );
        assert_eq!(
            deal.get("erp_invoice_total").map(String::as_str),
            Some("1190000")
        );
        assert_eq!(deal.get("dealstage"), None, "the empty string clears");
        let modified = deal.get("hs_lastmodifieddate").cloned().unwrap_or_default();
        assert_eq!(body["updatedAt"], json!(modified));
        assert!(
            modified.len() == 24 && modified.ends_with('Z'),
            "{modified}"
        );

        let writes = sim.writes();
        assert_eq!(writes.len(), 1);
        assert_eq!(
            (writes[0].0.as_str(), writes[0].1.as_str()),
            ("deals", "5512")
        );
        assert_eq!(writes[0].2["erp_invoice_total"], json!(1190000));

        sim.set_deal_property("5512", "dealstage", "closedwon");
        assert_eq!(
            sim.deal("5512")
                .and_then(|d| d.get("dealstage").cloned())
                .as_deref(),
            Some("closedwon")
        );
    }

    #[tokio::test]
    async fn a_late_patch_is_applied_before_the_answer() {
        let (sim, http) = started().await;
        seed(&sim);
        sim.state.faults.inject(
            "PATCH /crm/v3/objects/deals",
            Fault::DelayAfter(Duration::from_millis(500)),
            1,
        );
        let url = format!("{}/crm/v3/objects/deals/5512", sim.base_url());
        let result = http
            .patch(url)
            .bearer_auth(TOKEN)
            .timeout(Duration::from_millis(100))
            .json(&json!({"properties": {"dealstage": "closedlost"}}))
            .send()
            .await;
        assert!(result.is_err(), "the client gave up first");
        // Applied before the delay: visible while the answer is still pending (allowing for a
        // loaded machine before giving up).
        let stage = || sim.deal("5512").and_then(|d| d.get("dealstage").cloned());
        for _ in 0..20 {
            if stage().as_deref() == Some("closedlost") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(stage().as_deref(), Some("closedlost"));
        assert_eq!(sim.state.faults.count("PATCH /crm/v3/objects/deals"), 1);
    }

    #[tokio::test]
    async fn a_batch_read_with_a_missing_id_is_a_multi_status() {
        let (sim, http) = started().await;
        seed(&sim);
        let (status, body) = batch(&sim, &http, &["7001".into(), "7002".into()]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "COMPLETE");
        assert_eq!(body["results"].as_array().map(Vec::len), Some(2));

        let (status, body) = batch(&sim, &http, &["7001".into(), "7003".into()]).await;
        assert_eq!(status, 207, "{body}");
        assert_eq!(body["numErrors"], 1);
        assert_eq!(body["results"][0]["id"], "7001");
        assert_eq!(body["results"][0]["properties"]["price"], Value::Null);
        assert_eq!(body["errors"][0]["category"], "OBJECT_NOT_FOUND");
        assert_eq!(body["errors"][0]["context"]["ids"], json!(["7003"]));
        assert_eq!(
            body["errors"][0]["message"],
            "Could not get some LINE_ITEM objects, they may be deleted or not exist. Check that ids are valid."
        );
    }

    #[tokio::test]
    async fn a_batch_of_more_than_100_inputs_is_refused() {
        let (sim, http) = started().await;
        seed(&sim);
        let ids: Vec<String> = (0..101).map(|n| (7000 + n).to_string()).collect();
        let (status, body) = batch(&sim, &http, &ids).await;
        assert_eq!(
            (status, body["category"].clone()),
            (400, json!("VALIDATION_ERROR"))
        );
        let (status, _) = batch(&sim, &http, &ids[..100]).await;
        assert_eq!(status, 207);
    }

    #[tokio::test]
    async fn every_route_needs_the_bearer_token() {
        let (sim, http) = started().await;
        seed(&sim);
        let base = format!("{}/crm/v3/objects", sim.base_url());
        let requests = [
            http.get(format!("{base}/deals/5512")),
            http.patch(format!("{base}/deals/5512"))
                .json(&json!({"properties": {"dealstage": "closedlost"}})),
            http.post(format!("{base}/line_items/batch/read"))
                .json(&json!({"inputs": [{"id": "7001"}]})),
            http.get(format!("{base}/companies/901"))
                .bearer_auth("wrong"),
        ];
        for request in requests {
            let (status, body) = send(request).await;
            assert_eq!(status, 401, "{body}");
            assert_eq!(body["category"], "INVALID_AUTHENTICATION");
        }
        assert!(sim.writes().is_empty());
        assert_eq!(
            sim.deal("5512")
                .and_then(|d| d.get("dealstage").cloned())
                .as_deref(),
            Some("closedwon")
        );
    }

    #[tokio::test]
    async fn throttling_names_hubspots_policy() {
        let (sim, http) = started().await;
        seed(&sim);
        sim.state.faults.inject(
            "POST /crm/v3/objects/line_items/batch/read",
            Fault::Throttle { retry_after_s: 3 },
            1,
        );
        let url = format!("{}/crm/v3/objects/line_items/batch/read", sim.base_url());
        let response = http
            .post(url)
            .bearer_auth(TOKEN)
            .json(&json!({"inputs": [{"id": "7001"}]}))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("3")
        );
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
        assert_eq!(body["category"], "RATE_LIMITS");
    }

    #[test]
    fn deal_events_carry_the_changed_property() {
        let state = Arc::new(HubSpotState {
            access_token: TOKEN.into(),
            client_secret: "secret".into(),
            portal_id: 62515,
            app_id: 54321,
            store: Mutex::new(Store::default()),
            faults: Faults::default(),
        });
        let sim = HubSpotSim {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            state,
        };
        let change = sim.deal_event(
            5,
            "deal.propertyChange",
            5512,
            1_704_067_199_000,
            Some(("dealstage", "closedwon")),
        );
        assert_eq!(change["propertyName"], "dealstage");
        assert_eq!(change["propertyValue"], "closedwon");
        assert_eq!(change["objectId"], 5512);
        assert!(change.get("changeFlag").is_none());
        let created = sim.deal_event(6, "deal.creation", 5512, 1_704_067_199_000, None);
        assert_eq!(created["changeFlag"], "NEW");
        assert!(created.get("propertyName").is_none());
    }

    #[test]
    fn timestamps_are_iso_with_milliseconds() {
        assert_eq!(iso_ms(1_704_067_200_000), "2024-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(1_704_067_199_356), "2023-12-31T23:59:59.356Z");
    }
}
