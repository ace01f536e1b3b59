//! HubSpot simulator: CRM v3 companies, deals, line items and products (read, batch read,
//! create, update, archive, search, merge) with bearer-token auth, HubSpot's error bodies,
//! property validation, and custom properties created over the API (`POST /crm/v3/properties`)
//! or seeded, unique-value ones included. Changes to companies, made through the API or as a
//! person in HubSpot's UI, fire the app's webhook subscription the way HubSpot does: one JSON
//! array per change, delivered in the background, signed with v1, v2 and v3 headers at once.
//! Nothing else fires: the app subscribes to companies only.

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
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{self, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// Batch endpoints refuse more inputs than this.
const BATCH_LIMIT: usize = 100;

/// Properties HubSpot maintains itself: always returned, never writable.
const READ_ONLY: [&str; 3] = ["hs_object_id", "hs_lastmodifieddate", "createdate"];

/// The ids a company absorbed by merges, `;`-separated: calculated by HubSpot, never writable.
const MERGED_IDS: &str = "hs_merged_object_ids";

/// The first id handed to a created object: far above the seeded ids, so they never clash.
const FIRST_CREATED_ID: u64 = 30_000_001;

/// Search answers at most this many objects per page, and 10 when the request names no limit.
const SEARCH_PAGE_MAX: usize = 200;
const SEARCH_PAGE_DEFAULT: usize = 10;

/// Search never pages past this many results (HubSpot answers 400); callers window by time.
const SEARCH_WINDOW: usize = 10_000;

/// Search filter limits since 2024-08-26: groups per request, filters per group, filters in all.
const FILTER_GROUPS_MAX: usize = 5;
const FILTERS_PER_GROUP_MAX: usize = 10;
const FILTERS_MAX: usize = 25;

/// What a property definition must name.
const PROPERTY_REQUIRED: [&str; 5] = ["name", "label", "type", "fieldType", "groupName"];

/// The app's subscription to company events.
const COMPANY_SUBSCRIPTION: u64 = 2001;

/// The person who makes the simulated UI changes, as HubSpot names them in `sourceId`.
const UI_USER: &str = "userId:45678";

/// How long a webhook delivery waits for the receiver's answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// The CRM object types the simulator stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ObjectType {
    Company,
    Deal,
    LineItem,
    Product,
}

impl ObjectType {
    /// The type named in a URL. HubSpot accepts the plural name, the singular name and the
    /// object type id.
    fn parse(name: &str) -> Option<Self> {
        match name {
            "companies" | "company" | "0-2" => Some(Self::Company),
            "deals" | "deal" | "0-3" => Some(Self::Deal),
            "line_items" | "line_item" | "0-8" => Some(Self::LineItem),
            "products" | "product" | "0-7" => Some(Self::Product),
            _ => None,
        }
    }

    /// The plural name used in URLs (`line_items`).
    fn plural(self) -> &'static str {
        match self {
            Self::Company => "companies",
            Self::Deal => "deals",
            Self::LineItem => "line_items",
            Self::Product => "products",
        }
    }

    /// The singular name used in association type names (`deal_to_line_item`).
    fn singular(self) -> &'static str {
        match self {
            Self::Company => "company",
            Self::Deal => "deal",
            Self::LineItem => "line_item",
            Self::Product => "product",
        }
    }

    /// The name in batch error messages ("Could not get some LINE_ITEM objects ...").
    fn upper(self) -> &'static str {
        match self {
            Self::Company => "COMPANY",
            Self::Deal => "DEAL",
            Self::LineItem => "LINE_ITEM",
            Self::Product => "PRODUCT",
        }
    }

    /// The key of this type in a v3 `associations` object: HubSpot uses the plural label,
    /// so line items appear as `"line items"`, with a space.
    fn association_key(self) -> &'static str {
        match self {
            Self::Company => "companies",
            Self::Deal => "deals",
            Self::LineItem => "line items",
            Self::Product => "products",
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
                MERGED_IDS,
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
            Self::Product => &[
                "name",
                "description",
                "price",
                "hs_sku",
                "hs_cost_of_goods_sold",
                "hs_recurring_billing_period",
                "tax",
                "hs_product_type",
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
            Self::Product => &["name", "price", "hs_sku"],
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

/// Stored objects by type and id.
type Records = HashMap<(ObjectType, String), Record>;

/// Everything the simulated portal holds.
#[derive(Debug, Default)]
struct Store {
    records: Records,
    /// Archived (deleted) objects: gone from plain reads, searches and uniqueness checks.
    archived: Records,
    /// Property names defined beyond the standard ones: custom properties and seeded names.
    defined: HashMap<ObjectType, BTreeSet<String>>,
    /// Properties created with `hasUniqueValue: true`.
    unique: HashMap<ObjectType, BTreeSet<String>>,
    /// Every successful API create or PATCH: object type, id, properties as sent.
    writes: Vec<(String, String, Map<String, Value>)>,
    /// How many objects were created through the API or as a user.
    created: u64,
    /// The last webhook event id handed out.
    last_event_id: u64,
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

    /// Defines a property whose values no two live objects of the type may share.
    fn define_unique(&mut self, object_type: ObjectType, name: &str) {
        self.define(object_type, name);
        self.unique
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
        self.archived.remove(&key);
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

    /// Finds a live object by id, or by the value of `id_property` when one is named.
    fn find(
        &self,
        object_type: ObjectType,
        key: &str,
        id_property: Option<&str>,
    ) -> Option<(String, &Record)> {
        find_in(&self.records, object_type, key, id_property)
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

    /// The first `(property, id)` where one of `values` of a unique property is already held
    /// by another live object of the type (`id` is the object being written, if it exists).
    fn conflict(
        &self,
        object_type: ObjectType,
        id: Option<&str>,
        values: &[(String, String)],
    ) -> Option<(String, String)> {
        let unique = self.unique.get(&object_type)?;
        values
            .iter()
            .filter(|(name, value)| unique.contains(name) && !value.is_empty())
            .find_map(|(name, value)| {
                let (holder, _) = self.find(object_type, value, Some(name))?;
                (Some(holder.as_str()) != id).then(|| (name.clone(), holder))
            })
    }

    /// Creates an object with `values` at `now` under a new id, which it returns.
    fn insert(&mut self, object_type: ObjectType, values: &[(String, String)], now: i64) -> String {
        let id = loop {
            let id = (FIRST_CREATED_ID + self.created).to_string();
            self.created += 1;
            let key = (object_type, id.clone());
            if !self.records.contains_key(&key) && !self.archived.contains_key(&key) {
                break id;
            }
        };
        let mut record = Record::default();
        for (name, value) in values {
            set_value(&mut record.properties, name, value);
        }
        let stamp = iso_ms(now);
        record.properties.insert("createdate".into(), stamp.clone());
        record
            .properties
            .insert("hs_lastmodifieddate".into(), stamp);
        record.properties.insert("hs_object_id".into(), id.clone());
        self.records.insert((object_type, id.clone()), record);
        id
    }

    /// Sets `values` on object `id` and stamps it modified at `now`. Returns the properties
    /// whose value changed, with the new value (empty when cleared).
    fn change(
        &mut self,
        object_type: ObjectType,
        id: &str,
        values: &[(String, String)],
        now: i64,
    ) -> Vec<(String, String)> {
        let Some(record) = self.records.get_mut(&(object_type, id.to_owned())) else {
            return Vec::new();
        };
        let mut changed = Vec::new();
        for (name, value) in values {
            let before = record.properties.get(name).cloned().unwrap_or_default();
            set_value(&mut record.properties, name, value);
            if before != *value {
                changed.push((name.clone(), value.clone()));
            }
        }
        record
            .properties
            .insert("hs_lastmodifieddate".into(), iso_ms(now));
        changed
    }

    /// Moves object `id` to the recycle bin. False when there is no such live object.
    fn archive(&mut self, object_type: ObjectType, id: &str) -> bool {
        let key = (object_type, id.to_owned());
        let Some(record) = self.records.remove(&key) else {
            return false;
        };
        self.archived.insert(key, record);
        true
    }

    /// Merges company `merged` into `primary` as HubSpot's merge does: `merged` disappears,
    /// `primary` keeps its id and its values and takes `merged`'s values only for properties
    /// it lacks, and `merged`'s deals move to `primary`. Returns how many values moved; `None`
    /// when either company is missing or both ids are the same.
    fn merge(&mut self, primary: &str, merged: &str, now: i64) -> Option<usize> {
        let key = |id: &str| (ObjectType::Company, id.to_owned());
        if primary == merged || !self.records.contains_key(&key(primary)) {
            return None;
        }
        let gone = self.records.remove(&key(merged))?;
        let record = self.records.get_mut(&key(primary))?;
        let mut absorbed: Vec<String> = [
            record.properties.get(MERGED_IDS),
            gone.properties.get(MERGED_IDS),
        ]
        .into_iter()
        .flatten()
        .flat_map(|ids| ids.split(';'))
        .map(str::to_owned)
        .collect();
        absorbed.push(merged.to_owned());
        let mut moved = 0;
        for (name, value) in gone.properties {
            let calculated = READ_ONLY.contains(&name.as_str()) || name == MERGED_IDS;
            if !calculated && !record.properties.contains_key(&name) {
                record.properties.insert(name, value);
                moved += 1;
            }
        }
        record
            .properties
            .insert(MERGED_IDS.into(), absorbed.join(";"));
        record
            .properties
            .insert("hs_lastmodifieddate".into(), iso_ms(now));
        for ((object_type, _), deal) in &mut self.records {
            if *object_type == ObjectType::Deal {
                let mut seen = BTreeSet::new();
                for company in &mut deal.companies {
                    if company == merged {
                        *company = primary.to_owned();
                    }
                }
                deal.companies.retain(|c| seen.insert(c.clone()));
            }
        }
        Some(moved)
    }

    fn next_event_id(&mut self) -> u64 {
        self.last_event_id += 1;
        self.last_event_id
    }
}

/// Finds an object of `records` by id, or by the value of `id_property` when one is named.
fn find_in<'a>(
    records: &'a Records,
    object_type: ObjectType,
    key: &str,
    id_property: Option<&str>,
) -> Option<(String, &'a Record)> {
    match id_property {
        None | Some("hs_object_id") => records
            .get(&(object_type, key.to_owned()))
            .map(|r| (key.to_owned(), r)),
        Some(property) => records
            .iter()
            .find(|((t, _), r)| {
                *t == object_type && r.properties.get(property).map(String::as_str) == Some(key)
            })
            .map(|((_, id), r)| (id.clone(), r)),
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

/// Who made a change, as webhook events tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    /// The app itself, through the API with its token.
    Integration,
    /// A person in HubSpot's UI.
    User,
}

/// One webhook delivery: the ids of the events it carried and the receiver's HTTP status
/// (`None` when the connection failed or the answer took longer than the timeout).
type Delivery = (Vec<u64>, Option<u16>);

/// The app's webhook subscription: the target URL (unset = no subscription), the client that
/// delivers, how many deliveries were started and the log of those that finished.
#[derive(Debug)]
struct Webhook {
    url: Mutex<Option<String>>,
    http: reqwest::Client,
    fired: AtomicUsize,
    log: watch::Sender<Vec<Delivery>>,
}

#[derive(Debug)]
pub struct HubSpotState {
    pub access_token: String,
    pub client_secret: String,
    pub portal_id: u64,
    pub app_id: u64,
    store: Mutex<Store>,
    pub faults: Faults,
    webhook: Webhook,
}

impl HubSpotState {
    fn new(access_token: &str, client_secret: &str) -> std::io::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(WEBHOOK_TIMEOUT)
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            access_token: access_token.to_owned(),
            client_secret: client_secret.to_owned(),
            portal_id: 62515,
            app_id: 54321,
            store: Mutex::new(Store::default()),
            faults: Faults::default(),
            webhook: Webhook {
                url: Mutex::new(None),
                http,
                fired: AtomicUsize::new(0),
                log: watch::Sender::new(Vec::new()),
            },
        })
    }

    /// The store, even after a panic elsewhere poisoned the lock (its data stays consistent:
    /// every change is made under one lock).
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn webhook_url(&self) -> Option<String> {
        self.webhook
            .url
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A `company.<kind>` event of the app's subscription about company `id`, which changed at
    /// `occurred_at` (epoch ms), with the `extra` fields of its kind. A change made with the
    /// app's own token is marked `INTEGRATION` with the app id as `sourceId`, one made in the
    /// UI `CRM_UI` with the user. UNCONFIRMED: the exact `sourceId` of an app's API changes.
    fn company_change(
        &self,
        store: &mut Store,
        (kind, id): (&str, &str),
        occurred_at: i64,
        actor: Actor,
        extra: Value,
    ) -> Value {
        let (source, source_id) = match actor {
            Actor::Integration => ("INTEGRATION", self.app_id.to_string()),
            Actor::User => ("CRM_UI", UI_USER.to_owned()),
        };
        let mut event = json!({
            "eventId": store.next_event_id(),
            "subscriptionId": COMPANY_SUBSCRIPTION,
            "portalId": self.portal_id,
            "appId": self.app_id,
            "occurredAt": occurred_at,
            "subscriptionType": format!("company.{kind}"),
            "attemptNumber": 0,
            "objectId": id_json(id),
            "changeSource": source,
            "sourceId": source_id,
        });
        if let (Some(fields), Value::Object(extra)) = (event.as_object_mut(), extra) {
            fields.extend(extra);
        }
        event
    }

    /// `company.creation` of company `id`.
    fn creation(&self, store: &mut Store, id: &str, at: i64, actor: Actor) -> Vec<Value> {
        let flag = json!({"changeFlag": "NEW"});
        vec![self.company_change(store, ("creation", id), at, actor, flag)]
    }

    /// One `company.propertyChange` per changed property of company `id`.
    fn property_changes(
        &self,
        store: &mut Store,
        id: &str,
        changed: &[(String, String)],
        at: i64,
        actor: Actor,
    ) -> Vec<Value> {
        changed
            .iter()
            .map(|(name, value)| {
                let change = json!({"propertyName": name, "propertyValue": value});
                self.company_change(store, ("propertyChange", id), at, actor, change)
            })
            .collect()
    }

    /// `company.deletion` of company `id`.
    fn deletion(&self, store: &mut Store, id: &str, at: i64, actor: Actor) -> Vec<Value> {
        let flag = json!({"changeFlag": "DELETED"});
        vec![self.company_change(store, ("deletion", id), at, actor, flag)]
    }

    /// `company.merge` of `merged` into `primary`, which keeps its id (so it is also the
    /// `newObjectId`); `moved` is how many property values `primary` took from `merged`.
    fn merge_event(
        &self,
        store: &mut Store,
        (primary, merged): (&str, &str),
        moved: usize,
        at: i64,
        actor: Actor,
    ) -> Vec<Value> {
        let merge = json!({
            "primaryObjectId": id_json(primary),
            "mergedObjectIds": [id_json(merged)],
            "newObjectId": id_json(primary),
            "numberOfPropertiesMoved": moved,
        });
        vec![self.company_change(store, ("merge", primary), at, actor, merge)]
    }

    /// Posts `events` to `url` as HubSpot does: one JSON array, signed with v1, v2 and v3
    /// headers and the current timestamp. Returns the status and body of the answer.
    async fn deliver(
        &self,
        http: &reqwest::Client,
        url: &str,
        events: &[Value],
    ) -> reqwest::Result<(u16, String)> {
        let body = serde_json::to_string(events).unwrap_or_default();
        let timestamp = super::now_ms().to_string();
        let headers = signature_headers(&self.client_secret, "POST", url, &body, &timestamp);
        post(http, url, &body, &headers).await
    }
}

/// An object id as webhook events carry it: a JSON number (text only if it is not numeric).
fn id_json(id: &str) -> Value {
    id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n))
}

/// Delivers the events of one change as one batch, in its own task, as HubSpot does once the
/// change is saved; call it after releasing the store lock. The delivery is logged; a failed
/// one is not retried (HubSpot would retry up to 10 times over the following hours).
fn fire(state: &Arc<HubSpotState>, events: Vec<Value>) {
    let Some(url) = state.webhook_url().filter(|_| !events.is_empty()) else {
        return;
    };
    let ids: Vec<u64> = events
        .iter()
        .filter_map(|e| e["eventId"].as_u64())
        .collect();
    state.webhook.fired.fetch_add(1, atomic::Ordering::SeqCst);
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        // No runtime (a synchronous unit test): the delivery fails.
        state.webhook.log.send_modify(|log| log.push((ids, None)));
        return;
    };
    let state = state.clone();
    runtime.spawn(async move {
        let answer = state.deliver(&state.webhook.http, &url, &events).await;
        let status = answer.ok().map(|(status, _)| status);
        state.webhook.log.send_modify(|log| log.push((ids, status)));
    });
}

/// A running HubSpot simulator.
#[derive(Debug, Clone)]
pub struct HubSpotSim {
    pub addr: SocketAddr,
    pub state: Arc<HubSpotState>,
}

impl HubSpotSim {
    pub async fn start(access_token: &str, client_secret: &str) -> std::io::Result<Self> {
        let state = Arc::new(HubSpotState::new(access_token, client_secret)?);
        let app = Router::new()
            .route(
                "/crm/v3/objects/{object_type}",
                axum::routing::post(create_object),
            )
            .route(
                "/crm/v3/objects/{object_type}/{id}",
                get(read_object).patch(update_object).delete(delete_object),
            )
            .route(
                "/crm/v3/objects/{object_type}/search",
                axum::routing::post(search_objects),
            )
            .route(
                "/crm/v3/objects/{object_type}/merge",
                axum::routing::post(merge_objects),
            )
            .route(
                "/crm/v3/objects/{object_type}/batch/read",
                axum::routing::post(batch_read),
            )
            .route(
                "/crm/v3/properties/{object_type}",
                axum::routing::post(create_property),
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

    /// Creates or replaces a product's properties.
    pub fn put_product(&self, id: &str, properties: &[(&str, &str)]) {
        self.state.store().put(ObjectType::Product, id, properties);
    }

    /// Changes one property of a deal as a user editing it in HubSpot would (see
    /// `set_property_as_user`).
    pub fn set_deal_property(&self, id: &str, name: &str, value: &str) {
        self.set_property_as_user(ObjectType::Deal, id, name, value);
    }

    /// Changes one property of a product as a user editing it in HubSpot's product library
    /// would (see `set_property_as_user`): `hs_lastmodifieddate` moves, so a poll of changed
    /// products finds it.
    pub fn set_product_property(&self, id: &str, name: &str, value: &str) {
        self.set_property_as_user(ObjectType::Product, id, name, value);
    }

    /// Sets one property as a user would in HubSpot's UI (the empty string clears it; an
    /// unknown name becomes defined) and stamps the object modified now. Not recorded in
    /// `writes`. Does nothing when the object does not exist or the value of a unique
    /// property is taken by another object (the UI refuses it).
    fn set_property_as_user(&self, object_type: ObjectType, id: &str, name: &str, value: &str) {
        let values = owned(&[(name, value)]);
        let mut store = self.state.store();
        let exists = store.records.contains_key(&(object_type, id.to_owned()));
        if exists && store.conflict(object_type, Some(id), &values).is_none() {
            store.define(object_type, name);
            store.change(object_type, id, &values, super::now_ms());
        }
    }

    /// A deal's current properties.
    pub fn deal(&self, id: &str) -> Option<BTreeMap<String, String>> {
        self.properties(ObjectType::Deal, id)
    }

    /// A company's current properties; `None` once it is deleted or merged into another.
    pub fn company(&self, id: &str) -> Option<BTreeMap<String, String>> {
        self.properties(ObjectType::Company, id)
    }

    /// A line item's current properties.
    pub fn line_item(&self, id: &str) -> Option<BTreeMap<String, String>> {
        self.properties(ObjectType::LineItem, id)
    }

    /// A product's current properties; `None` once it is deleted.
    pub fn product(&self, id: &str) -> Option<BTreeMap<String, String>> {
        self.properties(ObjectType::Product, id)
    }

    fn properties(&self, object_type: ObjectType, id: &str) -> Option<BTreeMap<String, String>> {
        self.state
            .store()
            .records
            .get(&(object_type, id.to_owned()))
            .map(|r| r.properties.clone())
    }

    /// Creates a custom property for `object_type` (`"deals"`, `"companies"`, `"line_items"`,
    /// `"products"`, or a singular name or object type id). Writing a property that was never
    /// defined is a 400. Unknown object types are ignored: the portal has no such objects to
    /// write.
    pub fn define_property(&self, object_type: &str, name: &str) {
        if let Some(object_type) = ObjectType::parse(object_type) {
            self.state.store().define(object_type, name);
        }
    }

    /// Every successful API create or PATCH, in order: object type (plural), id (the new one
    /// for a create), properties as sent.
    pub fn writes(&self) -> Vec<(String, String, Map<String, Value>)> {
        self.state.store().writes.clone()
    }

    /// Creates a property with unique values (`hasUniqueValue: true`) for `object_type`: a
    /// create or update that gives it a value another object of the type holds is a 409.
    pub fn define_unique_property(&self, object_type: &str, name: &str) {
        if let Some(object_type) = ObjectType::parse(object_type) {
            self.state.store().define_unique(object_type, name);
        }
    }

    /// Every live company (not deleted, not merged away) with its properties, by id.
    pub fn companies(&self) -> Vec<(String, BTreeMap<String, String>)> {
        self.live(ObjectType::Company)
    }

    /// Every live product (not deleted) with its properties, by id.
    pub fn products(&self) -> Vec<(String, BTreeMap<String, String>)> {
        self.live(ObjectType::Product)
    }

    /// The live objects of a type with their properties, in id order.
    fn live(&self, object_type: ObjectType) -> Vec<(String, BTreeMap<String, String>)> {
        let store = self.state.store();
        let mut objects: Vec<(String, BTreeMap<String, String>)> = store
            .records
            .iter()
            .filter(|((t, _), _)| *t == object_type)
            .map(|((_, id), r)| (id.clone(), r.properties.clone()))
            .collect();
        objects.sort_by(|(a, _), (b, _)| compare(a, b));
        objects
    }

    /// The live company whose `property` holds `value`, with its id.
    pub fn company_by(
        &self,
        property: &str,
        value: &str,
    ) -> Option<(String, BTreeMap<String, String>)> {
        self.find_by(ObjectType::Company, property, value)
    }

    /// The live product whose `property` holds `value`, with its id.
    pub fn product_by(
        &self,
        property: &str,
        value: &str,
    ) -> Option<(String, BTreeMap<String, String>)> {
        self.find_by(ObjectType::Product, property, value)
    }

    fn find_by(
        &self,
        object_type: ObjectType,
        property: &str,
        value: &str,
    ) -> Option<(String, BTreeMap<String, String>)> {
        let store = self.state.store();
        let (id, record) = store.find(object_type, value, Some(property))?;
        Some((id, record.properties.clone()))
    }

    /// Deletes a product in HubSpot's product library (it is archived: reads answer 404 and
    /// its unique values are free again). False when there is no such live product.
    pub fn delete_product_as_user(&self, id: &str) -> bool {
        self.state.store().archive(ObjectType::Product, id)
    }

    /// Subscribes the app to company events delivered to `url`, or unsubscribes (`None`).
    /// API creates, updates, merges and deletions of companies fire events, and so do the
    /// `*_as_user` changes and `merge_companies`; seeding (`put_*`) fires nothing.
    pub fn set_webhook(&self, url: Option<String>) {
        *self
            .state
            .webhook
            .url
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = url;
    }

    /// Every finished webhook delivery, in the order they finished: the ids of the events it
    /// carried and the receiver's status (`None` on a connection error or a timeout).
    pub fn webhook_log(&self) -> Vec<(Vec<u64>, Option<u16>)> {
        self.state.webhook.log.borrow().clone()
    }

    /// Waits until every webhook delivery fired so far has finished (each gives up after the
    /// delivery timeout, 5 s).
    pub async fn settle(&self) {
        let fired = self.state.webhook.fired.load(atomic::Ordering::SeqCst);
        let mut log = self.state.webhook.log.subscribe();
        // The sender lives as long as the state this handle holds: waiting cannot fail.
        let _ = log.wait_for(|log| log.len() >= fired).await;
    }

    /// Creates a company as a person in HubSpot's UI would (unknown property names become
    /// defined), fires `company.creation` from `CRM_UI` and returns the new id.
    ///
    /// # Panics
    ///
    /// When one of the values of a unique property is already taken: HubSpot's UI refuses
    /// such a company, so a test asking for one is wrong.
    pub fn create_company_as_user(&self, properties: &[(&str, &str)]) -> String {
        let values = owned(properties);
        let now = super::now_ms();
        let mut store = self.state.store();
        if let Some((name, holder)) = store.conflict(ObjectType::Company, None, &values) {
            drop(store);
            panic!("HubSpot refuses a company with the {name} of company {holder}");
        }
        for (name, _) in &values {
            store.define(ObjectType::Company, name);
        }
        let id = store.insert(ObjectType::Company, &values, now);
        let events = self.state.creation(&mut store, &id, now, Actor::User);
        drop(store);
        self.fire(events);
        id
    }

    /// Changes a company's properties as a person in HubSpot's UI would (the empty string
    /// clears one; unknown names become defined) and fires one `company.propertyChange` from
    /// `CRM_UI` per value that changed. Returns the ids of those events: none when nothing
    /// changed, the company does not exist, or HubSpot would refuse the change (a unique
    /// property's value taken by another company).
    pub fn edit_company_as_user(&self, id: &str, properties: &[(&str, &str)]) -> Vec<u64> {
        let values = owned(properties);
        let now = super::now_ms();
        let mut store = self.state.store();
        let exists = store
            .records
            .contains_key(&(ObjectType::Company, id.to_owned()));
        if !exists
            || store
                .conflict(ObjectType::Company, Some(id), &values)
                .is_some()
        {
            return Vec::new();
        }
        for (name, _) in &values {
            store.define(ObjectType::Company, name);
        }
        let changed = store.change(ObjectType::Company, id, &values, now);
        let events = self
            .state
            .property_changes(&mut store, id, &changed, now, Actor::User);
        drop(store);
        self.fire(events)
    }

    /// Merges company `merged` into `primary` in HubSpot's UI, with the effects of the API's
    /// merge (see `Store::merge`), and fires `company.merge` from `CRM_UI`. Returns the event's id:
    /// none when either company is missing or both are the same.
    pub fn merge_companies(&self, primary: &str, merged: &str) -> Vec<u64> {
        let now = super::now_ms();
        let mut store = self.state.store();
        let Some(moved) = store.merge(primary, merged, now) else {
            return Vec::new();
        };
        let events = self
            .state
            .merge_event(&mut store, (primary, merged), moved, now, Actor::User);
        drop(store);
        self.fire(events)
    }

    /// Deletes a company in HubSpot's UI (it is archived: reads answer 404) and fires
    /// `company.deletion` from `CRM_UI`. Returns the event's id: none when there is no such
    /// live company.
    pub fn delete_company_as_user(&self, id: &str) -> Vec<u64> {
        let now = super::now_ms();
        let mut store = self.state.store();
        if !store.archive(ObjectType::Company, id) {
            return Vec::new();
        }
        let events = self.state.deletion(&mut store, id, now, Actor::User);
        drop(store);
        self.fire(events)
    }

    /// Fires `events` as one delivery and returns their ids.
    fn fire(&self, events: Vec<Value>) -> Vec<u64> {
        let ids = events
            .iter()
            .filter_map(|e| e["eventId"].as_u64())
            .collect();
        fire(&self.state, events);
        ids
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
        self.state.deliver(http, url, events).await
    }
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
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

/// `GET /crm/v3/objects/{type}/{id}`: a live object, or with `archived=true` an archived one.
fn read(
    state: &HubSpotState,
    object_type: &str,
    key: &str,
    query: &[(String, String)],
) -> Response {
    let Some(object_type) = ObjectType::parse(object_type) else {
        return unknown_type();
    };
    let archived = param(query, "archived") == Some("true");
    let store = state.store();
    let records = if archived {
        &store.archived
    } else {
        &store.records
    };
    let Some((id, record)) = find_in(records, object_type, key, param(query, "idProperty")) else {
        return not_found();
    };
    let requested = requested_or_default(object_type, list_param(query, "properties"));
    let mut object = object_json(&id, record, Some(&requested));
    if archived {
        object.insert("archived".into(), json!(true));
    }
    let wanted = list_param(query, "associations");
    let associations = associations_json(&store, object_type, &id, &wanted);
    if !associations.is_empty() {
        object.insert("associations".into(), Value::Object(associations));
    }
    (StatusCode::OK, axum::Json(Value::Object(object))).into_response()
}

/// A refused request: HubSpot's error answer, boxed (too large to return by value).
struct Refusal(Box<Response>);

impl From<Response> for Refusal {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

/// The answer to a write and the webhook events it caused; a refusal changed nothing.
type Written = Result<(Response, Vec<Value>), Refusal>;

/// Property values as a body sent them, and as the text HubSpot stores.
type SentValues = (Map<String, Value>, Vec<(String, String)>);

/// Fires a write's events (its store lock is released by now), then answers, late when armed.
async fn conclude(state: &Arc<HubSpotState>, written: Written, late: Option<Duration>) -> Response {
    let response = match written {
        Ok((response, events)) => {
            fire(state, events);
            response
        }
        Err(Refusal(refused)) => *refused,
    };
    answer(response, late).await
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
    let id_property = param(&query, "idProperty");
    let written = update(&state, &object_type, &id, id_property, &body);
    conclude(&state, written, late).await
}

async fn create_object(
    State(state): State<Arc<HubSpotState>>,
    Path(object_type): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let operation = format!("POST /crm/v3/objects/{object_type}");
    let late = match admit(&state, &headers, &operation).await {
        Ok(late) => late,
        Err(response) => return response,
    };
    let written = create(&state, &object_type, &body);
    conclude(&state, written, late).await
}

async fn delete_object(
    State(state): State<Arc<HubSpotState>>,
    Path((object_type, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let operation = format!("DELETE /crm/v3/objects/{object_type}");
    let late = match admit(&state, &headers, &operation).await {
        Ok(late) => late,
        Err(response) => return response,
    };
    let written = archive(&state, &object_type, &id);
    conclude(&state, written, late).await
}

async fn merge_objects(
    State(state): State<Arc<HubSpotState>>,
    Path(object_type): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let operation = format!("POST /crm/v3/objects/{object_type}/merge");
    let late = match admit(&state, &headers, &operation).await {
        Ok(late) => late,
        Err(response) => return response,
    };
    let written = merge(&state, &object_type, &body);
    conclude(&state, written, late).await
}

async fn search_objects(
    State(state): State<Arc<HubSpotState>>,
    Path(object_type): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let operation = format!("POST /crm/v3/objects/{object_type}/search");
    let late = match admit(&state, &headers, &operation).await {
        Ok(late) => late,
        Err(response) => return response,
    };
    let response = search(&state, &object_type, &body);
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

/// The `properties` of a create or update body, as sent and as the text HubSpot stores; the
/// error is HubSpot's 400.
fn body_properties(body: &str) -> Result<SentValues, Refusal> {
    let body = parse_body(body).map_err(|message| invalid(&message))?;
    let Some(properties) = body.get("properties").and_then(Value::as_object) else {
        return Err(invalid(
            "Invalid input JSON: \"properties\" must be an object of property values",
        )
        .into());
    };
    let mut texts = Vec::with_capacity(properties.len());
    for (name, value) in properties {
        let Some(text) = value_text(value) else {
            return Err(invalid(&format!(
                "Invalid input JSON: the value of \"{name}\" must be a string, number or boolean"
            ))
            .into());
        };
        texts.push((name.clone(), text));
    }
    Ok((properties.clone(), texts))
}

/// Refuses values of undefined or read-only properties (400), then a value of a unique
/// property that another object holds (409). `id` is the object written, when it exists.
fn check_values(
    store: &Store,
    object_type: ObjectType,
    id: Option<&str>,
    texts: &[(String, String)],
) -> Result<(), Refusal> {
    let problems: Vec<(String, &str, String)> = texts
        .iter()
        .filter_map(|(name, _)| {
            if !store.is_defined(object_type, name) {
                Some((
                    name.clone(),
                    "PROPERTY_DOESNT_EXIST",
                    format!("Property \"{name}\" does not exist"),
                ))
            } else if READ_ONLY.contains(&name.as_str()) || name == MERGED_IDS {
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
        return Err(invalid_properties(&problems).into());
    }
    match store.conflict(object_type, id, texts) {
        Some((name, holder)) => Err(duplicate_value(object_type, &name, &holder).into()),
        None => Ok(()),
    }
}

/// HubSpot's 409 for a unique property's value that object `holder` already has. UNCONFIRMED:
/// the exact message; clients are only seen to rely on its `Existing ID: <id>` part.
fn duplicate_value(object_type: ObjectType, name: &str, holder: &str) -> Response {
    let message = format!(
        "A {} with the same value for property {name} already exists. Existing ID: {holder}",
        object_type.singular()
    );
    error(StatusCode::CONFLICT, "CONFLICT", &message)
}

/// The webhook events of a change, for companies only: the app subscribes to nothing else.
fn company_events(object_type: ObjectType, events: impl FnOnce() -> Vec<Value>) -> Vec<Value> {
    if object_type == ObjectType::Company {
        events()
    } else {
        Vec::new()
    }
}

/// `POST /crm/v3/objects/{type}` with `{"properties": {...}}`: answers 201 with the new object.
/// Inline `associations` are not simulated (ignored).
fn create(state: &HubSpotState, object_type: &str, body: &str) -> Written {
    let object_type = ObjectType::parse(object_type).ok_or_else(unknown_type)?;
    let (sent, texts) = body_properties(body)?;
    let now = super::now_ms();
    let mut store = state.store();
    check_values(&store, object_type, None, &texts)?;
    let id = store.insert(object_type, &texts, now);
    store
        .writes
        .push((object_type.plural().to_owned(), id.clone(), sent));
    let events = company_events(object_type, || {
        state.creation(&mut store, &id, now, Actor::Integration)
    });
    let record = store
        .records
        .get(&(object_type, id.clone()))
        .ok_or_else(not_found)?;
    let object = Value::Object(object_json(&id, record, None));
    Ok((
        (StatusCode::CREATED, axum::Json(object)).into_response(),
        events,
    ))
}

/// `PATCH /crm/v3/objects/{type}/{id}` with `{"properties": {...}}`: all or nothing.
fn update(
    state: &HubSpotState,
    object_type: &str,
    key: &str,
    id_property: Option<&str>,
    body: &str,
) -> Written {
    let object_type = ObjectType::parse(object_type).ok_or_else(unknown_type)?;
    let (sent, texts) = body_properties(body)?;
    let now = super::now_ms();
    let mut store = state.store();
    let (id, _) = store
        .find(object_type, key, id_property)
        .ok_or_else(not_found)?;
    check_values(&store, object_type, Some(&id), &texts)?;
    let changed = store.change(object_type, &id, &texts, now);
    store
        .writes
        .push((object_type.plural().to_owned(), id.clone(), sent));
    let events = company_events(object_type, || {
        state.property_changes(&mut store, &id, &changed, now, Actor::Integration)
    });
    let record = store
        .records
        .get(&(object_type, id.clone()))
        .ok_or_else(not_found)?;
    let object = Value::Object(object_json(&id, record, None));
    Ok(((StatusCode::OK, axum::Json(object)).into_response(), events))
}

/// `DELETE /crm/v3/objects/{type}/{id}`: archives the object and answers 204, also when there
/// is no such live object (UNCONFIRMED: HubSpot's answer for an unknown id).
fn archive(state: &HubSpotState, object_type: &str, id: &str) -> Written {
    let object_type = ObjectType::parse(object_type).ok_or_else(unknown_type)?;
    let now = super::now_ms();
    let mut store = state.store();
    let events = if store.archive(object_type, id) {
        company_events(object_type, || {
            state.deletion(&mut store, id, now, Actor::Integration)
        })
    } else {
        Vec::new()
    };
    Ok((StatusCode::NO_CONTENT.into_response(), events))
}

/// `POST /crm/v3/objects/companies/merge` with `{"primaryObjectId", "objectIdToMerge"}`: see
/// `Store::merge`; answers the primary as it is after the merge. Only companies are merged.
fn merge(state: &HubSpotState, object_type: &str, body: &str) -> Written {
    if ObjectType::parse(object_type).ok_or_else(unknown_type)? != ObjectType::Company {
        return Err(invalid("The simulator merges companies only").into());
    }
    let body = parse_body(body).map_err(|message| invalid(&message))?;
    let id = |name: &str| {
        body.get(name)
            .and_then(value_text)
            .filter(|id| !id.is_empty())
    };
    let (Some(primary), Some(merged)) = (id("primaryObjectId"), id("objectIdToMerge")) else {
        return Err(invalid(
            "Invalid input JSON: \"primaryObjectId\" and \"objectIdToMerge\" are required",
        )
        .into());
    };
    if primary == merged {
        return Err(invalid("An object cannot be merged into itself").into());
    }
    let now = super::now_ms();
    let mut store = state.store();
    let moved = store.merge(&primary, &merged, now).ok_or_else(not_found)?;
    let ids = (primary.as_str(), merged.as_str());
    let events = state.merge_event(&mut store, ids, moved, now, Actor::Integration);
    let record = store
        .records
        .get(&(ObjectType::Company, primary.clone()))
        .ok_or_else(not_found)?;
    let object = Value::Object(object_json(&primary, record, None));
    Ok(((StatusCode::OK, axum::Json(object)).into_response(), events))
}

/// A search filter's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    HasProperty,
    NotHasProperty,
}

impl Operator {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "EQ" => Some(Self::Eq),
            "NEQ" => Some(Self::Neq),
            "GT" => Some(Self::Gt),
            "GTE" => Some(Self::Gte),
            "LT" => Some(Self::Lt),
            "LTE" => Some(Self::Lte),
            "HAS_PROPERTY" => Some(Self::HasProperty),
            "NOT_HAS_PROPERTY" => Some(Self::NotHasProperty),
            _ => None,
        }
    }
}

/// One filter of a search: a property, an operator and the value compared with.
#[derive(Debug)]
struct Filter {
    property: String,
    operator: Operator,
    value: String,
}

impl Filter {
    fn parse(filter: &Value) -> Result<Self, String> {
        let property = filter
            .get("propertyName")
            .and_then(Value::as_str)
            .ok_or("Invalid input JSON: each filter needs a \"propertyName\"")?;
        let name = filter
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let operator = Operator::parse(name)
            .ok_or_else(|| format!("Invalid input JSON: unsupported operator \"{name}\""))?;
        let value = filter.get("value").and_then(value_text).unwrap_or_default();
        let needs_value = !matches!(operator, Operator::HasProperty | Operator::NotHasProperty);
        if needs_value && value.is_empty() {
            return Err(format!(
                "Invalid input JSON: the {name} filter on \"{property}\" needs a \"value\""
            ));
        }
        Ok(Self {
            property: property.to_owned(),
            operator,
            value,
        })
    }

    fn matches(&self, record: &Record) -> bool {
        let Some(stored) = record.properties.get(&self.property) else {
            // UNCONFIRMED: whether NEQ matches objects without the property.
            return matches!(self.operator, Operator::NotHasProperty | Operator::Neq);
        };
        match self.operator {
            Operator::HasProperty => true,
            Operator::NotHasProperty => false,
            Operator::Eq => same(stored, &self.value),
            Operator::Neq => !same(stored, &self.value),
            Operator::Gt => compare(stored, &self.value).is_gt(),
            Operator::Gte => compare(stored, &self.value).is_ge(),
            Operator::Lt => compare(stored, &self.value).is_lt(),
            Operator::Lte => compare(stored, &self.value).is_le(),
        }
    }
}

/// A search request: `filterGroups` (any group matches when all its filters do), one sort
/// (property, descending), the properties to return, and the page.
#[derive(Debug)]
struct Search {
    groups: Vec<Vec<Filter>>,
    sort: Option<(String, bool)>,
    properties: Vec<String>,
    limit: usize,
    after: usize,
}

impl Search {
    /// Reads a search body; the error is the message of HubSpot's 400.
    fn parse(object_type: ObjectType, body: &Value) -> Result<Self, String> {
        let list = |name: &str| {
            body.get(name)
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
        };
        let groups = list("filterGroups")
            .iter()
            .map(|group| {
                let filters = group.get("filters").and_then(Value::as_array);
                let filters = filters.map(Vec::as_slice).unwrap_or_default();
                filters.iter().map(Filter::parse).collect()
            })
            .collect::<Result<Vec<Vec<Filter>>, String>>()?;
        let filters = groups.iter().map(Vec::len);
        if groups.len() > FILTER_GROUPS_MAX
            || filters.clone().any(|n| n > FILTERS_PER_GROUP_MAX)
            || filters.sum::<usize>() > FILTERS_MAX
        {
            return Err(format!(
                "Too many filters: at most {FILTER_GROUPS_MAX} filterGroups, \
                 {FILTERS_PER_GROUP_MAX} filters in a group and {FILTERS_MAX} in all"
            ));
        }
        let sort = list("sorts").first().map(|sort| {
            let name = sort.get("propertyName").and_then(Value::as_str);
            let descending = sort.get("direction").and_then(Value::as_str) == Some("DESCENDING");
            (name.unwrap_or("hs_object_id").to_owned(), descending)
        });
        let properties = list("properties")
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        let number = |name: &str, default: usize| match body.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value_text(value)
                .and_then(|text| text.parse::<usize>().ok())
                .ok_or_else(|| format!("Invalid input JSON: \"{name}\" must be a whole number")),
        };
        let limit = number("limit", SEARCH_PAGE_DEFAULT)?;
        let after = number("after", 0)?;
        if limit > SEARCH_PAGE_MAX {
            return Err(format!(
                "limit must be at most {SEARCH_PAGE_MAX}, was {limit}"
            ));
        }
        if after + limit > SEARCH_WINDOW {
            return Err(format!(
                "Search pages end at {SEARCH_WINDOW} results: after {after} with limit {limit} \
                 goes past them"
            ));
        }
        Ok(Self {
            groups,
            sort,
            properties: requested_or_default(object_type, properties),
            limit,
            after,
        })
    }

    /// The properties the filters and the sort name.
    fn named(&self) -> impl Iterator<Item = &str> {
        let filtered = self.groups.iter().flatten().map(|f| f.property.as_str());
        filtered.chain(self.sort.iter().map(|(name, _)| name.as_str()))
    }

    fn matches(&self, record: &Record) -> bool {
        self.groups.is_empty()
            || self
                .groups
                .iter()
                .any(|group| group.iter().all(|filter| filter.matches(record)))
    }

    /// The sort's order (unset values first when ascending), then the ids'.
    fn order(&self, (a_id, a): (&str, &Record), (b_id, b): (&str, &Record)) -> Ordering {
        let by_id = compare(a_id, b_id);
        let Some((name, descending)) = &self.sort else {
            return by_id;
        };
        let by_value = match (a.properties.get(name), b.properties.get(name)) {
            (Some(x), Some(y)) => compare(x, y),
            (x, y) => x.is_some().cmp(&y.is_some()),
        };
        let by_value = if *descending {
            by_value.reverse()
        } else {
            by_value
        };
        by_value.then(by_id)
    }
}

/// `POST /crm/v3/objects/{type}/search`: one page of the live objects that match, with the
/// total and, when more remain, the `after` of the next page.
fn search(state: &HubSpotState, object_type: &str, body: &str) -> Response {
    let Some(object_type) = ObjectType::parse(object_type) else {
        return unknown_type();
    };
    let query = match parse_body(body).and_then(|body| Search::parse(object_type, &body)) {
        Ok(query) => query,
        Err(message) => return invalid(&message),
    };
    let store = state.store();
    if let Some(name) = query
        .named()
        .find(|name| !store.is_defined(object_type, name))
    {
        return invalid(&format!("Property \"{name}\" does not exist"));
    }
    let mut hits: Vec<(&str, &Record)> = store
        .records
        .iter()
        .filter(|((t, _), record)| *t == object_type && query.matches(record))
        .map(|((_, id), record)| (id.as_str(), record))
        .collect();
    hits.sort_by(|a, b| query.order(*a, *b));
    let results: Vec<Value> = hits
        .iter()
        .skip(query.after)
        .take(query.limit)
        .map(|(id, record)| Value::Object(object_json(id, record, Some(&query.properties))))
        .collect();
    let mut answer = json!({"total": hits.len(), "results": results});
    let next = query.after + query.limit;
    if next < hits.len() {
        answer["paging"] = json!({"next": {"after": next.to_string()}});
    }
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// Orders two property values as search compares them: as numbers when both read as one (an
/// RFC 3339 timestamp or a date as its instant, epoch milliseconds, a decimal), else as text.
fn compare(a: &str, b: &str) -> Ordering {
    match (magnitude(a), magnitude(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    }
}

fn magnitude(text: &str) -> Option<f64> {
    match instant_ms(text) {
        Some(ms) => Some(ms as f64),
        None => text.parse::<f64>().ok().filter(|n| n.is_finite()),
    }
}

/// Whether a stored value equals a filter's: as text, or as the same instant when either is
/// a timestamp (a date property filtered with epoch milliseconds). Numbers compare as text,
/// so `0012` is not `12`.
fn same(stored: &str, wanted: &str) -> bool {
    let timestamp = instant_ms(stored).is_some() || instant_ms(wanted).is_some();
    stored == wanted || (timestamp && compare(stored, wanted).is_eq())
}

/// Epoch milliseconds of an RFC 3339 timestamp (`2025-03-14T16:02:11.356Z`, any offset) or of
/// a date (`2025-03-14`, midnight UTC).
fn instant_ms(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T').unwrap_or((text, ""));
    let mut parts = date.split('-');
    let mut field = |len: usize| {
        let part = parts.next()?;
        let digits = part.len() == len && part.bytes().all(|b| b.is_ascii_digit());
        part.parse::<i64>().ok().filter(|_| digits)
    };
    let (y, m, d) = (field(4)?, field(2)?, field(2)?);
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let midnight = days_from_civil(y, m, d) * 86_400_000;
    if !text.contains('T') {
        return Some(midnight);
    }
    let (clock, offset) = clock_and_offset(time)?;
    Some(midnight + clock - offset)
}

/// Milliseconds since midnight of `HH:MM:SS[.fff]` followed by a zone (`Z` or `±HH:MM`), and
/// the zone's offset from UTC in milliseconds.
fn clock_and_offset(time: &str) -> Option<(i64, i64)> {
    let two_digits = |part: &str| {
        let digits = part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
        part.parse::<i64>().ok().filter(|_| digits)
    };
    let (clock, offset) = match time.strip_suffix('Z') {
        Some(clock) => (clock, 0),
        None => {
            let (clock, zone) = time.split_at(time.rfind(['+', '-'])?);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (hours, minutes) = zone.get(1..)?.split_once(':')?;
            let minutes = two_digits(hours)? * 60 + two_digits(minutes)?;
            (clock, sign * minutes * 60_000)
        }
    };
    let (whole, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = whole.split(':').map(two_digits);
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis = format!("{fraction:0<3}").get(..3)?.parse::<i64>().ok()?;
    Some((((h * 60 + m) * 60 + s) * 1000 + millis, offset))
}

async fn create_property(
    State(state): State<Arc<HubSpotState>>,
    Path(object_type): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let operation = format!("POST /crm/v3/properties/{object_type}");
    let late = match admit(&state, &headers, &operation).await {
        Ok(late) => late,
        Err(response) => return response,
    };
    let response = define(&state, &object_type, &body);
    answer(response, late).await
}

/// `POST /crm/v3/properties/{type}`: defines a custom property, unique when `hasUniqueValue`
/// is true, and answers 201 with its definition. A name the type already has is a 409. The
/// data type, options and group are not checked: values are stored as text whatever the type.
fn define(state: &HubSpotState, object_type: &str, body: &str) -> Response {
    let Some(object_type) = ObjectType::parse(object_type) else {
        return unknown_type();
    };
    let body = match parse_body(body) {
        Ok(body) => body,
        Err(message) => return invalid(&message),
    };
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
    if let Some(absent) = PROPERTY_REQUIRED.iter().find(|name| field(name).is_empty()) {
        return invalid(&format!("Invalid input JSON: \"{absent}\" is required"));
    }
    let name = field("name");
    let unique = body.get("hasUniqueValue") == Some(&Value::Bool(true));
    let mut store = state.store();
    if store.is_defined(object_type, name) {
        // UNCONFIRMED: the exact category and message.
        let message = format!("Property named '{name}' already exists.");
        return error(StatusCode::CONFLICT, "OBJECT_ALREADY_EXISTS", &message);
    }
    if unique {
        store.define_unique(object_type, name);
    } else {
        store.define(object_type, name);
    }
    let now = iso_ms(super::now_ms());
    let mut definition = body.as_object().cloned().unwrap_or_default();
    definition.extend([
        ("hasUniqueValue".to_owned(), json!(unique)),
        ("calculated".to_owned(), json!(false)),
        ("externalOptions".to_owned(), json!(false)),
        ("archived".to_owned(), json!(false)),
        ("createdAt".to_owned(), json!(now)),
        ("updatedAt".to_owned(), json!(now)),
        (
            "modificationMetadata".to_owned(),
            json!({"archivable": true, "readOnlyDefinition": false,
                   "readOnlyOptions": false, "readOnlyValue": false}),
        ),
    ]);
    (StatusCode::CREATED, axum::Json(Value::Object(definition))).into_response()
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

/// A proleptic Gregorian date to days since 1970-01-01 (the inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let (era, yoe) = (y.div_euclid(400), y.rem_euclid(400));
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
        let state = Arc::new(HubSpotState::new(TOKEN, "secret").expect("a state"));
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

    #[test]
    fn timestamps_read_back_as_epoch_ms() {
        for ms in [0, 951_782_400_000, 1_704_067_199_356, 1_741_968_000_000] {
            assert_eq!(instant_ms(&iso_ms(ms)), Some(ms), "{}", iso_ms(ms));
        }
        assert_eq!(instant_ms("2024-01-01"), Some(1_704_067_200_000));
        assert_eq!(
            instant_ms("2024-01-01T05:30:00+05:30"),
            Some(1_704_067_200_000)
        );
        assert_eq!(
            instant_ms("2023-12-31T19:00:00.5-05:00"),
            Some(1_704_067_200_500)
        );
        assert_eq!(instant_ms("1704067200000"), None);
        assert_eq!(instant_ms("900123456-8"), None);
        assert!(compare("2024-01-01T00:00:00.000Z", "1704067199999").is_gt());
        assert!(compare("9", "10").is_lt(), "numbers compare as numbers");
        assert!(same("2024-01-01T00:00:00.000Z", "1704067200000"));
        assert!(!same("0012", "12"), "but equality of numbers is textual");
    }

    fn create_url(sim: &HubSpotSim) -> String {
        format!("{}/crm/v3/objects/companies", sim.base_url())
    }

    async fn create(sim: &HubSpotSim, http: &reqwest::Client, properties: Value) -> (u16, Value) {
        let body = json!({ "properties": properties });
        send(http.post(create_url(sim)).bearer_auth(TOKEN).json(&body)).await
    }

    async fn search(sim: &HubSpotSim, http: &reqwest::Client, body: Value) -> (u16, Value) {
        let url = format!("{}/crm/v3/objects/companies/search", sim.base_url());
        send(http.post(url).bearer_auth(TOKEN).json(&body)).await
    }

    /// The ids of a search's results, in order.
    fn ids(body: &Value) -> Vec<&str> {
        let results = body["results"].as_array().map(Vec::as_slice);
        let results = results.unwrap_or_default();
        results.iter().filter_map(|r| r["id"].as_str()).collect()
    }

    /// What a webhook receiver got: for each request, its v3 signature, timestamp and body.
    type Inbox = Arc<Mutex<Vec<(String, String, String)>>>;

    /// Serves a webhook receiver answering `status`; returns its URL and what it receives.
    async fn receiver(status: StatusCode) -> (String, Inbox) {
        let inbox: Inbox = Arc::default();
        let sink = inbox.clone();
        let receive = move |headers: HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let header = |name: &str| {
                    let value = headers.get(name).and_then(|v| v.to_str().ok());
                    value.unwrap_or_default().to_owned()
                };
                let signature = header("x-hubspot-signature-v3");
                let timestamp = header("x-hubspot-request-timestamp");
                let mut sink = sink.lock().unwrap_or_else(PoisonError::into_inner);
                sink.push((signature, timestamp, body));
                status
            }
        };
        let app = Router::new().route("/hooks/hubspot", axum::routing::post(receive));
        let addr = super::super::serve(app).await.expect("a receiver");
        (format!("http://{addr}/hooks/hubspot"), inbox)
    }

    /// The batches the receiver at `url` got, by first event id, each checked to be signed.
    fn batches(url: &str, inbox: &Inbox) -> Vec<Vec<Value>> {
        let inbox = inbox.lock().unwrap_or_else(PoisonError::into_inner);
        let mut batches: Vec<Vec<Value>> = inbox
            .iter()
            .map(|(signature, timestamp, body)| {
                assert_eq!(*signature, sign_v3("secret", "POST", url, body, timestamp));
                serde_json::from_str(body).unwrap_or_default()
            })
            .collect();
        batches.sort_by_key(|batch| batch.first().and_then(|e| e["eventId"].as_u64()));
        batches
    }

    #[tokio::test]
    async fn a_created_company_reads_back_under_a_new_id() {
        let (sim, http) = started().await;
        seed(&sim);
        let (status, created) = create(
            &sim,
            &http,
            json!({"name": "Cafetal", "nit": "800111222-3", "domain": "cafetal.co"}),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["id"], "30000001");
        assert_eq!(created["properties"]["hs_object_id"], "30000001");
        assert_eq!(created["archived"], false);
        assert_eq!(created["createdAt"], created["properties"]["createdate"]);
        assert_eq!(
            created["updatedAt"],
            created["properties"]["hs_lastmodifieddate"]
        );

        let url = format!("{}/30000001?properties=name,nit", create_url(&sim));
        let (status, read) = send(http.get(url).bearer_auth(TOKEN)).await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(read["properties"]["nit"], "800111222-3");
        assert_eq!(read["properties"]["domain"], Value::Null);
        let writes = sim.writes();
        assert_eq!(
            (writes[0].0.as_str(), writes[0].1.as_str()),
            ("companies", "30000001")
        );
        assert_eq!(writes[0].2["domain"], "cafetal.co");

        let (status, body) = create(&sim, &http, json!({"erp_customer_id": "C1"})).await;
        assert_eq!(
            (status, body["errors"][0]["code"].clone()),
            (400, json!("PROPERTY_DOESNT_EXIST"))
        );
        let (status, body) = create(&sim, &http, json!({"createdate": "0"})).await;
        assert_eq!(
            (status, body["errors"][0]["code"].clone()),
            (400, json!("READ_ONLY_VALUE"))
        );
        assert_eq!(sim.companies().len(), 2);
        assert_eq!(sim.writes().len(), 1);
    }

    #[tokio::test]
    async fn a_taken_unique_value_is_a_conflict_naming_its_holder() {
        let (sim, http) = started().await;
        seed(&sim);
        sim.put_company("902", &[("name", "Sabana")]);
        sim.define_unique_property("companies", "nit");

        let (status, body) =
            create(&sim, &http, json!({"name": "Otra", "nit": "900123456-8"})).await;
        assert_eq!((status, body["category"].clone()), (409, json!("CONFLICT")));
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(
                "A company with the same value for property nit already exists. Existing ID: 901"
            ),
            "{message}"
        );
        let taken = r#"{"properties": {"nit": "900123456-8"}}"#;
        let (status, _) = patch(&sim, &http, "companies/902", taken).await;
        assert_eq!(status, 409);
        assert_eq!(sim.company("902").and_then(|c| c.get("nit").cloned()), None);
        assert!(sim.writes().is_empty());
        let (status, _) = patch(&sim, &http, "companies/901", taken).await;
        assert_eq!(status, 200, "its own value is no conflict");

        let by_nit = |nit: &str| {
            let url = format!("{}/{nit}?idProperty=nit", create_url(&sim));
            send(http.get(url).bearer_auth(TOKEN))
        };
        let (status, body) = by_nit("900123456-8").await;
        assert_eq!((status, body["id"].clone()), (200, json!("901")));
        let (status, _) = by_nit("800000000-1").await;
        assert_eq!(status, 404);
        assert_eq!(
            sim.company_by("nit", "900123456-8").map(|(id, _)| id),
            Some("901".to_owned())
        );

        let url = format!("{}/901", create_url(&sim));
        let (status, _) = send(http.delete(&url).bearer_auth(TOKEN)).await;
        assert_eq!(status, 204);
        let (status, _) = send(http.get(&url).bearer_auth(TOKEN)).await;
        assert_eq!(status, 404);
        let (status, body) =
            send(http.get(format!("{url}?archived=true")).bearer_auth(TOKEN)).await;
        assert_eq!((status, body["archived"].clone()), (200, json!(true)));
        assert_eq!(sim.company("901"), None);
        let (status, _) = create(&sim, &http, json!({"nit": "900123456-8"})).await;
        assert_eq!(status, 201, "an archived company holds no value");
    }

    #[tokio::test]
    async fn search_filters_sorts_and_pages() {
        let (sim, http) = started().await;
        for n in 1..=5 {
            let city = if n % 2 == 0 { "Cali" } else { "Bogotá" };
            let name = format!("Empresa {n}");
            sim.put_company(&format!("90{n}"), &[("name", &name), ("city", city)]);
        }
        // Apart in time from the seeds and from each other: hs_lastmodifieddate has ms.
        tokio::time::sleep(Duration::from_millis(3)).await;
        let cutoff = super::super::now_ms();
        for id in ["905", "902", "903"] {
            tokio::time::sleep(Duration::from_millis(3)).await;
            sim.edit_company_as_user(id, &[("phone", id)]);
        }

        let cali = json!({"propertyName": "city", "operator": "EQ", "value": "Cali"});
        let body = json!({"filterGroups": [{"filters": [cali]}], "properties": ["city"]});
        let (status, found) = search(&sim, &http, body).await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(
            (found["total"].clone(), ids(&found)),
            (json!(2), vec!["902", "904"])
        );
        assert_eq!(found["results"][0]["properties"]["city"], "Cali");
        assert_eq!(found["results"][0]["properties"]["name"], Value::Null);
        assert!(found.get("paging").is_none());

        let changed_since = |after: &str| {
            json!({
                "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate",
                    "operator": "GTE", "value": cutoff.to_string()}]}],
                "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                "limit": 2,
                "after": after,
            })
        };
        let (status, first) = search(&sim, &http, changed_since("0")).await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(
            (first["total"].clone(), ids(&first)),
            (json!(3), vec!["905", "902"])
        );
        assert_eq!(first["paging"]["next"]["after"], "2");
        let (_, second) = search(&sim, &http, changed_since("2")).await;
        assert_eq!(ids(&second), vec!["903"]);
        assert!(second.get("paging").is_none());

        let first_one = json!({"propertyName": "name", "operator": "EQ", "value": "Empresa 1"});
        let either = json!({"filterGroups": [{"filters": [cali]}, {"filters": [first_one]}]});
        let (_, found) = search(&sim, &http, either).await;
        assert_eq!(ids(&found), vec!["901", "902", "904"]);
        let (_, all) = search(&sim, &http, json!({})).await;
        assert_eq!((all["total"].clone(), ids(&all).len()), (json!(5), 5));
        assert_eq!(all["results"][0]["properties"]["name"], "Empresa 1");

        let refused = [
            json!({"limit": 201}),
            json!({"limit": 200, "after": "9900"}),
            json!({"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "x"}]}]}),
            json!({"filterGroups": [{"filters": [{"propertyName": "city", "operator": "LIKE", "value": "x"}]}]}),
        ];
        for body in refused {
            let (status, answer) = search(&sim, &http, body.clone()).await;
            assert_eq!(
                (status, answer["category"].clone()),
                (400, json!("VALIDATION_ERROR")),
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn an_api_write_fires_integration_events_for_changed_values_only() {
        let (sim, http) = started().await;
        seed(&sim);
        let (url, inbox) = receiver(StatusCode::OK).await;
        sim.set_webhook(Some(url.clone()));
        let unchanged_and_new = r#"{"properties": {"name": "Andina", "domain": "andina.co"}}"#;
        let (status, _) = patch(&sim, &http, "companies/901", unchanged_and_new).await;
        assert_eq!(status, 200);
        let deal = r#"{"properties": {"dealstage": "closedlost"}}"#;
        let (status, _) = patch(&sim, &http, "deals/5512", deal).await;
        assert_eq!(status, 200, "deals are not subscribed: no event");
        let (status, created) = create(&sim, &http, json!({"name": "Cafetal"})).await;
        assert_eq!(status, 201);
        sim.settle().await;

        let batches = batches(&url, &inbox);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 1]);
        let change = &batches[0][0];
        assert_eq!(change["subscriptionType"], "company.propertyChange");
        assert_eq!(
            (
                change["propertyName"].clone(),
                change["propertyValue"].clone()
            ),
            (json!("domain"), json!("andina.co"))
        );
        assert_eq!(
            (change["changeSource"].clone(), change["sourceId"].clone()),
            (json!("INTEGRATION"), json!("54321"))
        );
        assert_eq!(change["objectId"], 901);
        assert_eq!(change["subscriptionId"], 2001);
        let modified = sim
            .company("901")
            .and_then(|c| c.get("hs_lastmodifieddate").cloned());
        assert_eq!(
            change["occurredAt"].as_i64(),
            modified.as_deref().and_then(instant_ms)
        );
        let creation = &batches[1][0];
        assert_eq!(creation["subscriptionType"], "company.creation");
        assert_eq!(creation["changeFlag"], "NEW");
        assert_eq!(creation["changeSource"], "INTEGRATION");
        assert_eq!(
            Some(creation["objectId"].to_string()),
            created["id"].as_str().map(str::to_owned)
        );
        let delivered: Vec<(Vec<u64>, Option<u16>)> = batches
            .iter()
            .map(|b| {
                (
                    b.iter().filter_map(|e| e["eventId"].as_u64()).collect(),
                    Some(200),
                )
            })
            .collect();
        let mut log = sim.webhook_log();
        log.sort();
        assert_eq!(log, delivered);

        let (refusing, _) = receiver(StatusCode::SERVICE_UNAVAILABLE).await;
        sim.set_webhook(Some(refusing));
        let (status, _) = patch(
            &sim,
            &http,
            "companies/901",
            r#"{"properties": {"city": "Cali"}}"#,
        )
        .await;
        assert_eq!(status, 200);
        sim.settle().await;
        let log = sim.webhook_log();
        assert_eq!(log.len(), 3);
        assert!(
            log.iter().any(|(_, status)| *status == Some(503)),
            "{log:?}"
        );
    }

    #[tokio::test]
    async fn a_merge_moves_the_deals_and_fires_company_merge() {
        let (sim, http) = started().await;
        seed(&sim);
        sim.put_company(
            "902",
            &[
                ("name", "Andina SAS"),
                ("domain", "andina.co"),
                ("nit", "900123456-8"),
            ],
        );
        sim.put_deal("5600", &[("dealname", "Soporte 2025")], Some("902"), &[]);
        let (hook, inbox) = receiver(StatusCode::OK).await;
        sim.set_webhook(Some(hook.clone()));

        let fired = sim.merge_companies("901", "902");
        assert_eq!(fired.len(), 1);
        sim.settle().await;
        let merge = &batches(&hook, &inbox)[0][0];
        assert_eq!(merge["eventId"].as_u64(), fired.first().copied());
        assert_eq!(merge["subscriptionType"], "company.merge");
        assert_eq!(merge["objectId"], 901);
        assert_eq!(merge["primaryObjectId"], 901);
        assert_eq!(merge["mergedObjectIds"], json!([902]));
        assert_eq!(
            (merge["changeSource"].clone(), merge["sourceId"].clone()),
            (json!("CRM_UI"), json!("userId:45678"))
        );

        assert_eq!(sim.company("902"), None);
        let (status, _) = send(
            http.get(format!("{}/902", create_url(&sim)))
                .bearer_auth(TOKEN),
        )
        .await;
        assert_eq!(status, 404);
        let primary = sim.company("901").unwrap_or_default();
        let value = |name: &str| primary.get(name).map(String::as_str);
        assert_eq!(
            value("name"),
            Some("Andina"),
            "the primary keeps its values"
        );
        assert_eq!(
            value("domain"),
            Some("andina.co"),
            "and takes the ones it lacked"
        );
        assert_eq!(value("hs_merged_object_ids"), Some("902"));
        let url = format!("{}/901?associations=deals", create_url(&sim));
        let (_, company) = send(http.get(url).bearer_auth(TOKEN)).await;
        let deals = &company["associations"]["deals"]["results"];
        assert_eq!(
            (deals[0]["id"].clone(), deals[1]["id"].clone()),
            (json!("5512"), json!("5600"))
        );

        sim.put_company("903", &[("name", "Andina Ltda")]);
        let url = format!("{}/merge", create_url(&sim));
        let body = json!({"primaryObjectId": "901", "objectIdToMerge": "903"});
        let (status, merged) = send(http.post(&url).bearer_auth(TOKEN).json(&body)).await;
        assert_eq!(status, 200, "{merged}");
        assert_eq!(merged["id"], "901");
        assert_eq!(merged["properties"]["hs_merged_object_ids"], "902;903");
        let (status, _) = send(http.post(&url).bearer_auth(TOKEN).json(&body)).await;
        assert_eq!(status, 404, "903 is gone");
        assert!(sim.merge_companies("901", "901").is_empty());
        sim.settle().await;
        let batches = batches(&hook, &inbox);
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1][0]["mergedObjectIds"], json!([903]));
        assert_eq!(batches[1][0]["changeSource"], "INTEGRATION");
    }

    #[tokio::test]
    async fn user_changes_fire_crm_ui_events() {
        let (sim, http) = started().await;
        let (hook, inbox) = receiver(StatusCode::OK).await;
        sim.set_webhook(Some(hook.clone()));
        let id = sim.create_company_as_user(&[("name", "Cafetal"), ("city", "Manizales")]);
        let edit = [("city", "Pereira"), ("name", "Cafetal"), ("phone", "")];
        let edited = sim.edit_company_as_user(&id, &edit);
        assert_eq!(edited.len(), 1, "only the city changed");
        assert_eq!(
            sim.company(&id)
                .and_then(|c| c.get("city").cloned())
                .as_deref(),
            Some("Pereira")
        );
        let deleted = sim.delete_company_as_user(&id);
        sim.settle().await;

        let batches = batches(&hook, &inbox);
        let kinds: Vec<&str> = batches
            .iter()
            .filter_map(|b| b[0]["subscriptionType"].as_str())
            .collect();
        assert_eq!(
            kinds,
            vec![
                "company.creation",
                "company.propertyChange",
                "company.deletion"
            ]
        );
        for event in batches.iter().flatten() {
            assert_eq!(event["changeSource"], "CRM_UI");
            assert_eq!(event["sourceId"], "userId:45678");
            assert_eq!(event["objectId"].to_string(), id);
        }
        assert_eq!(batches[0][0]["changeFlag"], "NEW");
        assert_eq!(batches[1][0]["propertyValue"], "Pereira");
        assert_eq!(batches[1][0]["eventId"].as_u64(), edited.first().copied());
        assert_eq!(batches[2][0]["changeFlag"], "DELETED");
        assert_eq!(batches[2][0]["eventId"].as_u64(), deleted.first().copied());

        assert_eq!(sim.company(&id), None);
        assert!(sim.companies().is_empty());
        let (status, _) = send(
            http.get(format!("{}/{id}", create_url(&sim)))
                .bearer_auth(TOKEN),
        )
        .await;
        assert_eq!(status, 404);
        assert!(
            sim.edit_company_as_user(&id, &[("city", "Cali")])
                .is_empty()
        );
        assert_eq!(sim.webhook_log().len(), 3);
    }

    fn products_url(sim: &HubSpotSim) -> String {
        format!("{}/crm/v3/objects/products", sim.base_url())
    }

    async fn create_product(
        sim: &HubSpotSim,
        http: &reqwest::Client,
        properties: Value,
    ) -> (u16, Value) {
        let body = json!({ "properties": properties });
        send(http.post(products_url(sim)).bearer_auth(TOKEN).json(&body)).await
    }

    #[tokio::test]
    async fn a_custom_property_is_defined_once_and_a_unique_one_refuses_a_taken_value() {
        let (sim, http) = started().await;
        let define = |object_type: &str, definition: Value| {
            let url = format!("{}/crm/v3/properties/{object_type}", sim.base_url());
            send(http.post(url).bearer_auth(TOKEN).json(&definition))
        };
        let erp_id = json!({"name": "erp_product_id", "label": "ERP product", "type": "string",
            "fieldType": "text", "groupName": "productinformation", "hasUniqueValue": true});
        let (status, created) = define("products", erp_id.clone()).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(
            (created["name"].clone(), created["hasUniqueValue"].clone()),
            (json!("erp_product_id"), json!(true))
        );
        let (status, again) = define("products", erp_id).await;
        assert_eq!(
            (status, again["category"].clone()),
            (409, json!("OBJECT_ALREADY_EXISTS"))
        );
        let sku = json!({"name": "hs_sku", "label": "SKU", "type": "string",
            "fieldType": "text", "groupName": "productinformation"});
        let (status, _) = define("0-7", sku).await;
        assert_eq!(status, 409, "a standard property exists already");
        let unlabelled = json!({"name": "erp_uom", "type": "string", "fieldType": "text",
            "groupName": "productinformation"});
        let (status, _) = define("products", unlabelled).await;
        assert_eq!(status, 400);
        let (status, _) = define("widgets", json!({})).await;
        assert_eq!(status, 404);

        let (status, first) = create_product(
            &sim,
            &http,
            json!({"name": "Licencia", "erp_product_id": "odoo-301"}),
        )
        .await;
        assert_eq!(status, 201, "{first}");
        let (status, body) = create_product(
            &sim,
            &http,
            json!({"name": "Otra", "erp_product_id": "odoo-301"}),
        )
        .await;
        assert_eq!((status, body["category"].clone()), (409, json!("CONFLICT")));
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(
                "A product with the same value for property erp_product_id already exists. \
                 Existing ID: 30000001"
            ),
            "{message}"
        );
        assert_eq!(sim.products().len(), 1);

        let nit = json!({"name": "nit", "label": "NIT", "type": "string", "fieldType": "text",
            "groupName": "companyinformation"});
        let (status, _) = define("companies", nit).await;
        assert_eq!(status, 201);
        for name in ["Andina", "Andina SAS"] {
            let (status, _) =
                create(&sim, &http, json!({"name": name, "nit": "900123456-8"})).await;
            assert_eq!(status, 201, "nit is not unique");
        }
    }

    #[tokio::test]
    async fn a_product_is_created_read_by_its_erp_id_updated_and_archived() {
        let (sim, http) = started().await;
        sim.define_unique_property("products", "erp_product_id");
        let (hook, _) = receiver(StatusCode::OK).await;
        sim.set_webhook(Some(hook));
        let (status, created) = create_product(
            &sim,
            &http,
            json!({"name": "Licencia anual ERP", "price": 1500000.5, "hs_sku": "LIC-ERP",
                   "description": "Un año", "erp_product_id": "odoo-301"}),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["id"], "30000001");
        assert_eq!(created["properties"]["price"], "1500000.5");
        assert_eq!(created["createdAt"], created["properties"]["createdate"]);

        let url = format!("{}/30000001", products_url(&sim));
        let (status, read) = send(http.get(&url).bearer_auth(TOKEN)).await;
        assert_eq!(status, 200, "{read}");
        let properties = read["properties"].as_object().cloned().unwrap_or_default();
        let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            vec![
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
                "hs_sku",
                "name",
                "price"
            ],
            "the default properties"
        );
        let by_erp_id = format!(
            "{}/odoo-301?idProperty=erp_product_id&archived=false&properties=description",
            products_url(&sim)
        );
        let (status, read) = send(http.get(&by_erp_id).bearer_auth(TOKEN)).await;
        assert_eq!(
            (
                status,
                read["id"].clone(),
                read["properties"]["description"].clone()
            ),
            (200, json!("30000001"), json!("Un año"))
        );

        let (status, updated) = patch(
            &sim,
            &http,
            "products/odoo-301?idProperty=erp_product_id",
            r#"{"properties": {"price": 1600000, "description": ""}}"#,
        )
        .await;
        assert_eq!(status, 200, "{updated}");
        let product = sim.product("30000001").unwrap_or_default();
        let value = |name: &str| product.get(name).map(String::as_str);
        assert_eq!(value("price"), Some("1600000"));
        assert_eq!(value("description"), None, "the empty string clears");
        assert!(value("hs_lastmodifieddate") >= value("createdate"));
        assert_eq!(
            sim.product_by("erp_product_id", "odoo-301")
                .map(|(id, _)| id),
            Some("30000001".to_owned())
        );
        let writes: Vec<(String, String)> = sim
            .writes()
            .into_iter()
            .map(|(object_type, id, _)| (object_type, id))
            .collect();
        let write = ("products".to_owned(), "30000001".to_owned());
        assert_eq!(writes, vec![write.clone(), write], "a create and a PATCH");
        let (status, body) = patch(
            &sim,
            &http,
            "products/30000001",
            r#"{"properties": {"erp_uom": "Unidades"}}"#,
        )
        .await;
        assert_eq!(
            (status, body["errors"][0]["code"].clone()),
            (400, json!("PROPERTY_DOESNT_EXIST"))
        );

        let (status, _) = send(http.delete(&url).bearer_auth(TOKEN)).await;
        assert_eq!(status, 204);
        let (status, _) = send(http.get(&url).bearer_auth(TOKEN)).await;
        assert_eq!(status, 404);
        let archived = format!("{url}?archived=true");
        let (status, body) = send(http.get(&archived).bearer_auth(TOKEN)).await;
        assert_eq!((status, body["archived"].clone()), (200, json!(true)));
        assert!(sim.products().is_empty());
        let (status, again) = create_product(
            &sim,
            &http,
            json!({"name": "Licencia anual ERP", "erp_product_id": "odoo-301"}),
        )
        .await;
        assert_eq!(status, 201, "an archived product holds no value");
        assert_eq!(again["id"], "30000002");
        assert!(sim.delete_product_as_user("30000002"));
        assert!(!sim.delete_product_as_user("30000002"));

        sim.settle().await;
        assert!(sim.webhook_log().is_empty(), "products fire no webhooks");
    }

    #[tokio::test]
    async fn products_changed_since_a_time_page_in_order_and_read_in_batches() {
        let (sim, http) = started().await;
        for n in 1..=4 {
            let (name, sku) = (format!("Producto {n}"), format!("SKU-{n}"));
            sim.put_product(&format!("80{n}"), &[("name", &name), ("hs_sku", &sku)]);
        }
        // Apart in time from the seeds and from each other: hs_lastmodifieddate has ms.
        tokio::time::sleep(Duration::from_millis(3)).await;
        let cutoff = super::super::now_ms();
        for id in ["803", "801"] {
            tokio::time::sleep(Duration::from_millis(3)).await;
            sim.set_product_property(id, "price", "10");
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
        let (status, _) = patch(
            &sim,
            &http,
            "products/802",
            r#"{"properties": {"price": "20"}}"#,
        )
        .await;
        assert_eq!(status, 200);

        let changed_since = |after: &str| {
            json!({
                "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate",
                    "operator": "GTE", "value": cutoff.to_string()}]}],
                "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                "properties": ["name", "price", "hs_sku"],
                "limit": 2,
                "after": after,
            })
        };
        let url = format!("{}/crm/v3/objects/0-7/search", sim.base_url());
        let search = |body: Value| send(http.post(&url).bearer_auth(TOKEN).json(&body));
        let (status, first) = search(changed_since("0")).await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(
            (first["total"].clone(), ids(&first)),
            (json!(3), vec!["803", "801"])
        );
        assert_eq!(first["results"][0]["properties"]["price"], "10");
        assert_eq!(first["results"][0]["properties"]["hs_sku"], "SKU-3");
        assert_eq!(first["paging"]["next"]["after"], "2");
        let (_, second) = search(changed_since("2")).await;
        assert_eq!(ids(&second), vec!["802"]);
        assert!(second.get("paging").is_none());
        let unknown = json!({"filterGroups": [{"filters": [{"propertyName": "erp_product_id",
            "operator": "HAS_PROPERTY"}]}]});
        let (status, _) = search(unknown).await;
        assert_eq!(status, 400);

        let batch = |body: Value| {
            let url = format!("{}/batch/read", products_url(&sim));
            send(http.post(url).bearer_auth(TOKEN).json(&body))
        };
        let (status, body) = batch(json!({"properties": ["name", "price"],
            "inputs": [{"id": "801"}, {"id": "899"}]}))
        .await;
        assert_eq!(status, 207, "{body}");
        assert_eq!(body["results"][0]["properties"]["price"], "10");
        assert_eq!(body["errors"][0]["context"]["ids"], json!(["899"]));
        assert_eq!(
            body["errors"][0]["message"],
            "Could not get some PRODUCT objects, they may be deleted or not exist. Check that ids are valid."
        );
        let (status, body) =
            batch(json!({"idProperty": "hs_sku", "inputs": [{"id": "SKU-2"}]})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"][0]["id"], "802");
        assert_eq!(body["results"][0]["properties"]["name"], "Producto 2");
    }
}
