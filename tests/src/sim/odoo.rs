//! Odoo simulator: the external JSON-RPC API at `POST /jsonrpc` (`common.version`,
//! `common.authenticate`/`login`, `object.execute_kw`) and the web session routes
//! (`/web/session/authenticate` setting a `session_id` cookie, `/web/dataset/call_kw` answering
//! code 100 `SessionExpiredException` without a live session) on `res.partner` and `res.country`,
//! with Odoo's real answers: errors inside HTTP 200 with the exception class in `error.data.name`,
//! `false` for failed authentication and empty fields, many2one fields read as `[id, name]`,
//! archived records hidden unless `active_test` is false, and the NIT check-digit validation that
//! `base_vat` applies to Colombian partners.
//!
//! Partners carry the ERP-owned `credit_limit` and `property_payment_term_id` (an
//! `account.payment.term`), and the ORM's `create_date`/`write_date` (UTC `YYYY-MM-DD HH:MM:SS`,
//! one-second granularity: see [`next_second`]) and `create_uid`/`write_uid`, set on every create
//! and write. A `create` or `write` applies to every record or to none. Partner searches take
//! domains in Polish notation (`|`, `&`, `!`), `order`, `offset` and `limit`, so the
//! `(write_date, id)` keyset of the changed-since poll pages as it does on Odoo. The automation
//! rule "On create and edit" on `res.partner` (`set_partner_webhook`) posts Odoo's unsigned
//! "Send Webhook Notification" payload after every create and write, the integration's own API
//! writes included, as well as after the edits tests make as a person in the web client
//! (`create_partner_as_user`, `edit_partner_as_user`); `partner_writes` lists the integration's.
//! The invoicing and sales models (`account.move`, `sale.order`, payments, payment terms, the
//! invoice webhook) live in the child module `moves`.

use super::faults::{Fault, Faults};
use axum::Router;
use axum::extract::State;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[path = "odoo_moves.rs"]
mod moves;

/// `res.country` rows the simulator knows: (id, code, name).
const COUNTRIES: [(i64, &str, &str); 6] = [
    (49, "CO", "Colombia"),
    (156, "MX", "Mexico"),
    (46, "CL", "Chile"),
    (173, "PE", "Peru"),
    (31, "BR", "Brazil"),
    (233, "US", "United States"),
];

/// `res.partner` fields the simulator stores, in the order a `read` without `fields` returns them.
const PARTNER_FIELDS: [&str; 22] = [
    "id",
    "name",
    "is_company",
    "company_type",
    "vat",
    "email",
    "phone",
    "mobile",
    "street",
    "street2",
    "city",
    "zip",
    "country_id",
    "ref",
    "customer_rank",
    "active",
    "credit_limit",
    "property_payment_term_id",
    "create_date",
    "create_uid",
    "write_date",
    "write_uid",
];

/// The ORM sets these on every create and write: values sent for them are dropped, as `write`
/// drops `LOG_ACCESS_COLUMNS`.
const LOG_ACCESS_FIELDS: [&str; 4] = ["create_date", "create_uid", "write_date", "write_uid"];

/// The person who edits partners in the web client (Odoo's demo user), as opposed to the
/// integration's API user (`OdooState::uid`).
const UI_USER: (i64, &str) = (6, "Marc Demo");

/// The display name of the integration's API user.
const API_USER_NAME: &str = "Puente Integration";

/// The partner automation rule's action name as its webhook payload carries it.
const PARTNER_WEBHOOK_ACTION: &str = "puente partners(#13)";

/// Datetime fields of the simulated models: domains compare their operands as timestamps.
const DATETIME_FIELDS: [&str; 3] = ["create_date", "write_date", "date_order"];

/// Partners by id, each as stored: many2one fields as bare ids.
type Partners = BTreeMap<i64, Map<String, Value>>;

#[derive(Debug)]
pub struct OdooState {
    pub database: String,
    pub login: String,
    pub api_key: String,
    pub uid: i64,
    partners: Mutex<Partners>,
    /// Live web sessions, by `session_id`.
    sessions: Mutex<HashSet<String>>,
    logins: AtomicUsize,
    pub faults: Faults,
    /// Products, invoices, sale orders and payments.
    books: Mutex<moves::Books>,
    /// The automation rule on `account.move` (state, payment state or residual changed).
    webhook: Webhook,
    /// The automation rule on `res.partner` ("On create and edit").
    partner_webhook: Webhook,
    /// Every partner `create` and `write` made over the API, in order: (id, values sent).
    partner_writes: Mutex<Vec<(i64, Map<String, Value>)>>,
}

#[derive(Debug, Clone)]
pub struct OdooSim {
    pub addr: SocketAddr,
    pub state: Arc<OdooState>,
}

/// An Odoo exception, as `serialize_exception` renders it.
struct OdooError {
    name: String,
    message: String,
}

impl OdooError {
    fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            message: message.into(),
        }
    }
}

impl OdooSim {
    pub async fn start(database: &str, login: &str, api_key: &str) -> std::io::Result<Self> {
        let state = Arc::new(new_state(database, login, api_key));
        let app = Router::new()
            .route("/jsonrpc", post(jsonrpc))
            .route("/web/session/authenticate", post(session_authenticate))
            // Odoo accepts both; the path after `call_kw/` is only for its access logs.
            .route("/web/dataset/call_kw", post(call_kw))
            .route("/web/dataset/call_kw/{*path}", post(call_kw))
            .with_state(state.clone());
        let addr = super::serve(app).await?;
        Ok(Self { addr, state })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every partner, archived ones included, as stored.
    pub fn partners(&self) -> Vec<Map<String, Value>> {
        self.state
            .partners
            .lock()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Archives a partner, as a user clicking "Archive" would (a write: `write_date` moves and
    /// the partner rule fires). Does nothing for an unknown id.
    pub fn archive(&self, id: i64) {
        let vals = Map::from_iter([("active".to_owned(), json!(false))]);
        // A refused write (an unknown id) leaves everything as it was.
        let _ = write_partners(&self.state, Author::User, &[id], &vals);
    }

    /// Creates a partner as a person in Odoo's web client does: the API's validation (the NIT
    /// check digit included), `create_date`/`write_date` now, `create_uid` the demo user, and
    /// the partner rule's webhook. Not listed in `partner_writes`.
    ///
    /// # Panics
    /// When Odoo would refuse the values (the form would show the error): the test is wrong.
    pub fn create_partner_as_user(&self, vals: Value) -> i64 {
        let vals = vals.as_object().cloned().unwrap_or_default();
        match create_partners(&self.state, Author::User, &[vals]) {
            Ok(ids) => ids.first().copied().unwrap_or_default(),
            Err(e) => panic!("Odoo refuses the partner: {}: {}", e.name, e.message),
        }
    }

    /// Edits a partner as a person in Odoo's web client does: the API's validation, `write_date`
    /// now, `write_uid` the demo user, and the partner rule's webhook. Not listed in
    /// `partner_writes`.
    ///
    /// # Panics
    /// For an unknown id, or when Odoo would refuse the values: the test is wrong.
    pub fn edit_partner_as_user(&self, id: i64, vals: Value) {
        let vals = vals.as_object().cloned().unwrap_or_default();
        if let Err(e) = write_partners(&self.state, Author::User, &[id], &vals) {
            panic!(
                "Odoo refuses the edit of partner {id}: {}: {}",
                e.name, e.message
            );
        }
    }

    /// One partner as `read` returns it with every field (many2one as `[id, "name"]`).
    pub fn partner(&self, id: i64) -> Option<Map<String, Value>> {
        let partners = self.state.partners.lock().ok()?;
        partners.get(&id).map(|p| read_partner(p, None))
    }

    /// Every `create` and `write` on partners the integration made over the API, in the order
    /// they were applied: (partner id, values sent), one entry per partner of the call. Edits
    /// made as a user are not in it.
    pub fn partner_writes(&self) -> Vec<(i64, Map<String, Value>)> {
        self.state
            .partner_writes
            .lock()
            .map(|log| log.clone())
            .unwrap_or_default()
    }

    /// `partner_writes` from position `from` on (the benchmarks' watcher reads only what is new).
    pub fn partner_writes_from(&self, from: usize) -> Vec<(i64, Map<String, Value>)> {
        self.state
            .partner_writes
            .lock()
            .map(|log| log.get(from..).map(<[_]>::to_vec).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Configures (or removes) the URL of the automation rule on `res.partner` (trigger "On
    /// create and edit", action "Send Webhook Notification" with `name` and `write_date`).
    pub fn set_partner_webhook(&self, url: Option<String>) {
        self.state.partner_webhook.set_url(url);
    }

    /// Every partner webhook delivery that has ended, in the order they ended: (partner id,
    /// HTTP status, or `None` on error or after the one-second timeout).
    pub fn partner_webhook_log(&self) -> Vec<(i64, Option<u16>)> {
        self.state.partner_webhook.log()
    }

    /// Waits until every partner webhook delivery fired so far has ended (at most five seconds).
    pub async fn settle_partner_webhooks(&self) {
        self.state.partner_webhook.settle().await;
    }

    /// Ends every web session server-side, as Odoo does when it reaps inactive sessions or
    /// restarts with a new session store: the next call with an old cookie gets code 100.
    pub fn expire_sessions(&self) {
        if let Ok(mut sessions) = self.state.sessions.lock() {
            sessions.clear();
        }
    }

    /// How many web sessions `/web/session/authenticate` has opened.
    pub fn logins(&self) -> usize {
        self.state.logins.load(Ordering::SeqCst)
    }

    /// The ISO code for a `res.country` id, for display.
    pub fn country_code(id: i64) -> Option<&'static str> {
        COUNTRIES
            .iter()
            .find(|(cid, _, _)| *cid == id)
            .map(|(_, code, _)| *code)
    }
}

/// Waits until the wall clock enters the next second. Odoo's `write_date` has one-second
/// granularity: a write after this returns has a later `write_date` than every write before.
pub async fn next_second() {
    let start = super::now_ms().div_euclid(1000);
    loop {
        let now = super::now_ms();
        if now.div_euclid(1000) != start {
            return;
        }
        let wait = 1000 - now.rem_euclid(1000) + 1;
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
}

/// An empty database with one user, `uid` 2.
fn new_state(database: &str, login: &str, api_key: &str) -> OdooState {
    OdooState {
        database: database.to_owned(),
        login: login.to_owned(),
        api_key: api_key.to_owned(),
        uid: 2,
        partners: Mutex::new(BTreeMap::new()),
        sessions: Mutex::new(HashSet::new()),
        logins: AtomicUsize::new(0),
        faults: Faults::default(),
        books: Mutex::new(moves::Books::default()),
        webhook: Webhook::default(),
        partner_webhook: Webhook::default(),
        partner_writes: Mutex::new(Vec::new()),
    }
}

/// Webhook deliveries: (record id, HTTP status or `None` on error), shared with the sending tasks.
type DeliveryLog = Arc<Mutex<Vec<(i64, Option<u16>)>>>;

/// An automation rule's "Send Webhook Notification": its URL (unset = no rule), how many
/// deliveries were started, and the log of those that ended.
#[derive(Debug, Default)]
struct Webhook {
    url: Mutex<Option<String>>,
    fired: AtomicUsize,
    log: DeliveryLog,
}

impl Webhook {
    fn set_url(&self, url: Option<String>) {
        if let Ok(mut current) = self.url.lock() {
            *current = url;
        }
    }

    fn url(&self) -> Option<String> {
        self.url.lock().ok().and_then(|u| u.clone())
    }

    fn log(&self) -> Vec<(i64, Option<u16>)> {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Sends each payload in its own task, as Odoo does once the transaction commits, and logs
    /// the answer. Callers hold no lock: a slow receiver never holds up the database.
    fn fire(&self, payloads: Vec<(i64, Value)>) {
        let Some(url) = self.url() else {
            return;
        };
        for (id, payload) in payloads {
            self.fired.fetch_add(1, Ordering::SeqCst);
            let log = self.log.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let url = url.clone();
                    runtime.spawn(async move {
                        let status = deliver(url, payload).await;
                        if let Ok(mut log) = log.lock() {
                            log.push((id, status));
                        }
                    });
                }
                // No runtime (a synchronous unit test): the delivery fails.
                Err(_) => {
                    if let Ok(mut log) = log.lock() {
                        log.push((id, None));
                    }
                }
            }
        }
    }

    /// Sends one payload now and logs the answer; `None` without a URL or when it fails.
    async fn send_now(&self, id: i64, payload: Value) -> Option<u16> {
        let url = self.url()?;
        self.fired.fetch_add(1, Ordering::SeqCst);
        let status = deliver(url, payload).await;
        if let Ok(mut log) = self.log.lock() {
            log.push((id, status));
        }
        status
    }

    /// Waits until every delivery started so far has ended, for at most five seconds (each one
    /// gives up after one).
    async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.log.lock().map(|log| log.len()).unwrap_or_default()
            < self.fired.load(Ordering::SeqCst)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// POSTs a payload like `requests.post(url, json=payload, timeout=1)`: the status, or `None`
/// when the connection fails or the receiver takes more than a second.
async fn deliver(url: String, payload: Value) -> Option<u16> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(1))
        .build()
        .ok()?;
    let response = client.post(url).json(&payload).send().await.ok()?;
    Some(response.status().as_u16())
}

fn rpc_result(id: &Value, result: Value) -> Response {
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

fn rpc_error(id: &Value, error: OdooError) -> Response {
    // Odoo answers HTTP 200 with code 200 ("totally arbitrary") for server errors, and code 100
    // for an expired session (`JsonRPCDispatcher.handle_error`).
    let (code, message) = if error.name == SESSION_EXPIRED {
        (100, "Odoo Session Expired")
    } else {
        (200, "Odoo Server Error")
    };
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": code,
            "message": message,
            "data": {
                "name": error.name,
                "debug": format!("Traceback (most recent call last):\n  ...\n{}: {}", error.name, error.message),
                "message": error.message,
                "arguments": [error.message],
                "context": {},
            }
        }
    });
    axum::Json(body).into_response()
}

const SESSION_EXPIRED: &str = "odoo.http.SessionExpiredException";

/// A JSON-RPC request's id and params, if the body is JSON.
fn parse_request(body: &str) -> Option<(Value, Value)> {
    let request = serde_json::from_str::<Value>(body).ok()?;
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let params = request.get("params").cloned().unwrap_or_default();
    Some((id, params))
}

/// Werkzeug's answer to a body that is not JSON.
fn bad_request() -> Response {
    (
        StatusCode::BAD_REQUEST,
        "<html><body>Bad Request</body></html>",
    )
        .into_response()
}

/// Applies the fault armed for `operation`, if any: `Err` is the answer to send instead of
/// handling the request, `Ok(Some(delay))` a wait between handling it and answering.
async fn apply_fault(
    state: &OdooState,
    operation: &str,
    id: &Value,
) -> Result<Option<Duration>, Response> {
    match state.faults.take(operation) {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            // What a proxy in front of Odoo sends: HTML, not JSON-RPC.
            Err((
                status,
                "<html><body><h1>Internal Server Error</h1></body></html>",
            )
                .into_response())
        }
        Some(Fault::Throttle { retry_after_s }) => {
            let mut response = (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
            if let Ok(v) = retry_after_s.to_string().parse() {
                response.headers_mut().insert("retry-after", v);
            }
            Err(response)
        }
        Some(Fault::AppError { name, message }) => {
            Err(rpc_error(id, OdooError::new(name, message)))
        }
        Some(Fault::DelayBefore(d)) => {
            tokio::time::sleep(d).await;
            Ok(None)
        }
        Some(Fault::DelayAfter(d)) => Ok(Some(d)),
        None => Ok(None),
    }
}

async fn answer(id: &Value, result: Result<Value, OdooError>, late: Option<Duration>) -> Response {
    if let Some(delay) = late {
        tokio::time::sleep(delay).await;
    }
    match result {
        Ok(value) => rpc_result(id, value),
        Err(e) => rpc_error(id, e),
    }
}

async fn jsonrpc(State(state): State<Arc<OdooState>>, body: String) -> Response {
    let Some((id, params)) = parse_request(&body) else {
        return bad_request();
    };
    let service = params
        .get("service")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let method = params
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let args = params
        .get("args")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let operation = match (service, method) {
        ("object", "execute_kw") => format!(
            "{}.{}",
            args.get(3).and_then(Value::as_str).unwrap_or_default(),
            args.get(4).and_then(Value::as_str).unwrap_or_default()
        ),
        _ => format!("{service}.{method}"),
    };

    let late = match apply_fault(&state, &operation, &id).await {
        Ok(late) => late,
        Err(response) => return response,
    };

    let result = match (service, method) {
        ("common", "version") => Ok(json!({
            "server_version": "17.0",
            "server_version_info": [17, 0, 0, "final", 0, ""],
            "server_serie": "17.0",
            "protocol_version": 1
        })),
        ("common", "authenticate" | "login") => Ok(authenticate(&state, &args)),
        ("object", "execute_kw") => execute_kw(&state, &args),
        _ => Err(OdooError::new(
            "werkzeug.exceptions.NotFound",
            format!("404: Not Found: unknown method {service}.{method}"),
        )),
    };
    answer(&id, result, late).await
}

/// `/web/session/authenticate`: an unknown database is an `AccessError`, wrong credentials an
/// `AccessDenied` (an error here, unlike `common.authenticate`); the API key works as the
/// password. Success answers the session info and sets a new `session_id` cookie.
async fn session_authenticate(State(state): State<Arc<OdooState>>, body: String) -> Response {
    let Some((id, params)) = parse_request(&body) else {
        return bad_request();
    };
    let late = match apply_fault(&state, "session.authenticate", &id).await {
        Ok(late) => late,
        Err(response) => return response,
    };
    let text = |name: &str| params.get(name).and_then(Value::as_str).unwrap_or_default();
    let (db, login, password) = (text("db"), text("login"), text("password"));
    if db != state.database {
        let error = OdooError::new("odoo.exceptions.AccessError", "Database not found.");
        return answer(&id, Err(error), late).await;
    }
    if login != state.login || password != state.api_key {
        let error = OdooError::new("odoo.exceptions.AccessDenied", "Access Denied");
        return answer(&id, Err(error), late).await;
    }
    let session_id = uuid::Uuid::new_v4().simple().to_string();
    if let Ok(mut sessions) = state.sessions.lock() {
        sessions.insert(session_id.clone());
    }
    state.logins.fetch_add(1, Ordering::SeqCst);
    let info = json!({
        "uid": state.uid,
        "is_system": false,
        "is_admin": false,
        "user_context": {"lang": "es_CO", "tz": "America/Bogota", "uid": state.uid},
        "db": state.database,
        "server_version": "17.0",
        "server_version_info": [17, 0, 0, "final", 0, ""],
        "name": "Sync",
        "username": state.login,
        "partner_id": 3,
        "company_id": 1,
    });
    let mut response = answer(&id, Ok(info), late).await;
    if let Ok(cookie) = HeaderValue::from_str(&format!("session_id={session_id}; HttpOnly; Path=/"))
    {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

/// `/web/dataset/call_kw`: the same model methods as `execute_kw`, for the session's user; no
/// live session is `SessionExpiredException` (code 100), as for any `auth="user"` route.
async fn call_kw(
    State(state): State<Arc<OdooState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some((id, params)) = parse_request(&body) else {
        return bad_request();
    };
    let text = |name: &str| params.get(name).and_then(Value::as_str).unwrap_or_default();
    let (model, method) = (text("model"), text("method"));
    let late = match apply_fault(&state, &format!("{model}.{method}"), &id).await {
        Ok(late) => late,
        Err(response) => return response,
    };
    let result = if has_live_session(&state, &headers) {
        let args = params
            .get("args")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let kwargs = params
            .get("kwargs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        call_model(&state, model, method, &args, &kwargs)
    } else {
        Err(OdooError::new(SESSION_EXPIRED, "Session expired"))
    };
    answer(&id, result, late).await
}

fn has_live_session(state: &OdooState, headers: &HeaderMap) -> bool {
    let Ok(sessions) = state.sessions.lock() else {
        return false;
    };
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| name == "session_id" && sessions.contains(value))
}

/// Wrong credentials are `false`, not an error (`exp_authenticate` swallows AccessDenied).
fn authenticate(state: &OdooState, args: &[Value]) -> Value {
    let db = args.first().and_then(Value::as_str);
    let login = args.get(1).and_then(Value::as_str);
    let key = args.get(2).and_then(Value::as_str);
    if db == Some(state.database.as_str())
        && login == Some(state.login.as_str())
        && key == Some(state.api_key.as_str())
    {
        json!(state.uid)
    } else {
        Value::Bool(false)
    }
}

fn execute_kw(state: &OdooState, args: &[Value]) -> Result<Value, OdooError> {
    let db = args.first().and_then(Value::as_str);
    let uid = args.get(1).and_then(Value::as_i64);
    let key = args.get(2).and_then(Value::as_str);
    if db != Some(state.database.as_str())
        || uid != Some(state.uid)
        || key != Some(state.api_key.as_str())
    {
        return Err(OdooError::new(
            "odoo.exceptions.AccessDenied",
            "Access Denied",
        ));
    }
    let model = args.get(3).and_then(Value::as_str).unwrap_or_default();
    let method = args.get(4).and_then(Value::as_str).unwrap_or_default();
    let positional = args
        .get(5)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let kwargs = args
        .get(6)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    call_model(state, model, method, &positional, &kwargs)
}

/// A model method, once the caller is authenticated (by API key or by session).
fn call_model(
    state: &OdooState,
    model: &str,
    method: &str,
    positional: &[Value],
    kwargs: &Map<String, Value>,
) -> Result<Value, OdooError> {
    match model {
        "res.partner" => partner_method(state, method, positional, kwargs),
        "res.country" => country_method(method, positional, kwargs),
        other if moves::serves(other) => moves::call(state, other, method, positional, kwargs),
        other => Err(OdooError::new("builtins.KeyError", format!("'{other}'"))),
    }
}

fn country_method(
    method: &str,
    args: &[Value],
    kwargs: &Map<String, Value>,
) -> Result<Value, OdooError> {
    let rows: Vec<Map<String, Value>> = COUNTRIES
        .iter()
        .map(|(id, code, name)| {
            let mut row = Map::new();
            row.insert("id".into(), json!(id));
            row.insert("code".into(), json!(code));
            row.insert("name".into(), json!(name));
            row
        })
        .collect();
    let domain = args.first().cloned().unwrap_or_else(|| json!([]));
    let matching: Vec<&Map<String, Value>> =
        rows.iter().filter(|r| matches_domain(r, &domain)).collect();
    match method {
        "search_read" => Ok(Value::Array(
            matching
                .into_iter()
                .map(|r| Value::Object(project(r, kwargs.get("fields"), &["id", "code", "name"])))
                .collect(),
        )),
        "search" => Ok(json!(
            matching.iter().map(|r| r["id"].clone()).collect::<Vec<_>>()
        )),
        other => Err(OdooError::new(
            "builtins.AttributeError",
            format!("'res.country' object has no attribute '{other}'"),
        )),
    }
}

fn partner_method(
    state: &OdooState,
    method: &str,
    args: &[Value],
    kwargs: &Map<String, Value>,
) -> Result<Value, OdooError> {
    let arg = |position: usize, name: &str| args.get(position).or_else(|| kwargs.get(name));
    match method {
        "search_read" | "search" | "search_count" => search_partners(state, method, args, kwargs),
        "read" => {
            let partners = lock_partners(state)?;
            let fields = arg(1, "fields");
            record_ids(arg(0, "ids"))?
                .into_iter()
                .map(|id| {
                    partners
                        .get(&id)
                        .map(|p| Value::Object(read_partner(p, fields)))
                        .ok_or_else(|| missing(&json!(id)))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        "create" => {
            let (vals_list, single) = match arg(0, "vals_list") {
                Some(Value::Object(vals)) => (vec![vals.clone()], true),
                Some(Value::Array(list)) => (
                    list.iter().filter_map(|v| v.as_object().cloned()).collect(),
                    false,
                ),
                _ => {
                    return Err(OdooError::new(
                        "builtins.TypeError",
                        "create() missing 1 required positional argument: 'vals_list'",
                    ));
                }
            };
            let ids = create_partners(state, Author::Api, &vals_list)?;
            Ok(if single {
                json!(ids.first())
            } else {
                json!(ids)
            })
        }
        "write" => {
            let ids = record_ids(arg(0, "ids"))?;
            let vals = arg(1, "vals")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            write_partners(state, Author::Api, &ids, &vals)?;
            Ok(json!(true))
        }
        other => Err(OdooError::new(
            "builtins.AttributeError",
            format!("The method 'res.partner.{other}' does not exist"),
        )),
    }
}

/// `search`, `search_read` and `search_count`, with their positional tails:
/// `search(domain, offset, limit, order)`, `search_read(domain, fields, offset, limit, order)`.
/// Without an `order`, partners come by ascending id.
fn search_partners(
    state: &OdooState,
    method: &str,
    args: &[Value],
    kwargs: &Map<String, Value>,
) -> Result<Value, OdooError> {
    let arg = |position: usize, name: &str| args.get(position).or_else(|| kwargs.get(name));
    let shift = usize::from(method == "search_read");
    let domain = arg(0, "domain").cloned().unwrap_or_else(|| json!([]));
    let offset = arg(1 + shift, "offset")
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    let limit = arg(2 + shift, "limit")
        .and_then(Value::as_u64)
        .filter(|l| *l > 0)
        .map_or(usize::MAX, |l| l as usize);
    let keys = match arg(3 + shift, "order")
        .and_then(Value::as_str)
        .filter(|o| !o.trim().is_empty())
    {
        Some(order) => moves::parse_order(order, &PARTNER_FIELDS)?,
        None => Vec::new(),
    };
    let active_test = kwargs
        .get("context")
        .and_then(|c| c.get("active_test"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let partners = lock_partners(state)?;
    let mut hits: Vec<&Map<String, Value>> = partners
        .values()
        .filter(|p| !active_test || p.get("active") == Some(&Value::Bool(true)))
        .filter(|p| matches_domain(p, &domain))
        .collect();
    if method == "search_count" {
        return Ok(json!(hits.len()));
    }
    // A stable sort: records equal on every key keep ascending id order.
    hits.sort_by(|a, b| {
        keys.iter()
            .map(|(field, descending)| {
                let o = moves::order_values(a.get(field), b.get(field));
                if *descending { o.reverse() } else { o }
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let page = hits.into_iter().skip(offset).take(limit);
    Ok(Value::Array(if method == "search" {
        page.map(|p| p.get("id").cloned().unwrap_or_default())
            .collect()
    } else {
        let fields = arg(1, "fields").filter(|_| shift == 1);
        page.map(|p| Value::Object(read_partner(p, fields)))
            .collect()
    }))
}

fn lock_partners(state: &OdooState) -> Result<MutexGuard<'_, Partners>, OdooError> {
    state
        .partners
        .lock()
        .map_err(|_| OdooError::new("builtins.RuntimeError", "lock poisoned"))
}

/// The ids a method acts on: a list, or one bare id as `browse` also takes.
fn record_ids(value: Option<&Value>) -> Result<Vec<i64>, OdooError> {
    let values = match value {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Number(_)) => vec![one.clone()],
        _ => Vec::new(),
    };
    values
        .iter()
        .map(|v| v.as_i64().ok_or_else(|| missing(v)))
        .collect()
}

/// Who changes a partner: the integration over the API, or a person in the web client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Author {
    Api,
    User,
}

impl Author {
    fn uid(self, state: &OdooState) -> i64 {
        match self {
            Author::Api => state.uid,
            Author::User => UI_USER.0,
        }
    }
}

/// Creates one partner per `vals` in one transaction (all or none), then fires the partner
/// rule's webhook for each, once the lock is released.
fn create_partners(
    state: &OdooState,
    author: Author,
    vals_list: &[Map<String, Value>],
) -> Result<Vec<i64>, OdooError> {
    let mut partners = lock_partners(state)?;
    let first = partners.keys().next_back().copied().unwrap_or(6) + 1;
    let now = odoo_now();
    let uid = author.uid(state);
    let mut created = Vec::new();
    for (id, vals) in (first..).zip(vals_list) {
        let mut partner = Map::new();
        partner.insert("active".into(), json!(true));
        partner.insert("is_company".into(), json!(false));
        partner.insert("customer_rank".into(), json!(0));
        partner.insert("credit_limit".into(), json!(0.0));
        apply_values(&mut partner, vals)?;
        partner.insert("id".into(), json!(id));
        partner.insert("create_date".into(), json!(now));
        partner.insert("create_uid".into(), json!(uid));
        partner.insert("write_date".into(), json!(now));
        partner.insert("write_uid".into(), json!(uid));
        created.push((id, partner));
    }
    let ids: Vec<i64> = created.iter().map(|(id, _)| *id).collect();
    let payloads = created
        .iter()
        .map(|(id, p)| (*id, partner_payload(p)))
        .collect();
    if author == Author::Api {
        log_api_writes(state, ids.iter().copied().zip(vals_list.iter().cloned()));
    }
    partners.extend(created);
    drop(partners);
    state.partner_webhook.fire(payloads);
    Ok(ids)
}

/// Writes `vals` on every partner in `ids` in one transaction (all or none), then fires the
/// partner rule's webhook once per partner, once the lock is released.
fn write_partners(
    state: &OdooState,
    author: Author,
    ids: &[i64],
    vals: &Map<String, Value>,
) -> Result<(), OdooError> {
    let mut seen = HashSet::new();
    let unique: Vec<i64> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    let mut partners = lock_partners(state)?;
    let now = odoo_now();
    let uid = author.uid(state);
    let mut updated = Vec::new();
    for id in unique.iter().copied() {
        let mut partner = partners
            .get(&id)
            .cloned()
            .ok_or_else(|| missing(&json!(id)))?;
        apply_values(&mut partner, vals)?;
        partner.insert("write_date".into(), json!(now));
        partner.insert("write_uid".into(), json!(uid));
        updated.push((id, partner));
    }
    let payloads = updated
        .iter()
        .map(|(id, p)| (*id, partner_payload(p)))
        .collect();
    if author == Author::Api {
        log_api_writes(state, unique.iter().map(|id| (*id, vals.clone())));
    }
    partners.extend(updated);
    drop(partners);
    state.partner_webhook.fire(payloads);
    Ok(())
}

/// Appends to `partner_writes`; called with the partners lock held, so the log keeps the order
/// in which the writes were applied.
fn log_api_writes(state: &OdooState, writes: impl Iterator<Item = (i64, Map<String, Value>)>) {
    if let Ok(mut log) = state.partner_writes.lock() {
        log.extend(writes);
    }
}

/// The partner rule's payload: `_model`, `_id`, `_action`, then the fields it selects.
fn partner_payload(partner: &Map<String, Value>) -> Value {
    let id = partner.get("id").cloned().unwrap_or(Value::Bool(false));
    let field = |name: &str| partner.get(name).cloned().unwrap_or(Value::Bool(false));
    json!({
        "_model": "res.partner",
        "_id": id,
        "_action": PARTNER_WEBHOOK_ACTION,
        "id": id,
        "name": field("name"),
        "write_date": field("write_date"),
    })
}

fn missing(id: &Value) -> OdooError {
    OdooError::new(
        "odoo.exceptions.MissingError",
        format!(
            "Record does not exist or has been deleted.\n(Record: res.partner({id},), User: 2)"
        ),
    )
}

/// Validates and applies `vals` the way the ORM and `base_vat` would.
fn apply_values(
    partner: &mut Map<String, Value>,
    vals: &Map<String, Value>,
) -> Result<(), OdooError> {
    for (field, value) in vals {
        if LOG_ACCESS_FIELDS.contains(&field.as_str()) {
            continue;
        }
        if !PARTNER_FIELDS.contains(&field.as_str()) || field == "id" {
            return Err(OdooError::new(
                "builtins.ValueError",
                format!("Invalid field '{field}' on model 'res.partner'"),
            ));
        }
        let value = match field.as_str() {
            "country_id" => {
                if !value.is_null() && value != &Value::Bool(false) {
                    let known = value
                        .as_i64()
                        .is_some_and(|id| COUNTRIES.iter().any(|(cid, _, _)| *cid == id));
                    if !known {
                        return Err(OdooError::new(
                            "psycopg2.errors.ForeignKeyViolation",
                            "insert or update on table \"res_partner\" violates foreign key constraint",
                        ));
                    }
                }
                value.clone()
            }
            "credit_limit" => as_float(value)?,
            "property_payment_term_id" => as_payment_term(value)?,
            _ => value.clone(),
        };
        partner.insert(field.clone(), value);
    }
    let name = partner
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.trim().is_empty() {
        return Err(OdooError::new(
            "odoo.exceptions.ValidationError",
            "Contacts require a name",
        ));
    }
    let colombian = partner.get("country_id").and_then(Value::as_i64) == Some(49);
    if let Some(vat) = partner.get("vat").and_then(Value::as_str)
        && colombian
        && !valid_nit(vat)
    {
        return Err(OdooError::new(
            "odoo.exceptions.ValidationError",
            format!(
                "The VAT number [{vat}] for partner [{name}] does not seem to be valid. \nNote: the expected format is 213123432-1 or 213.123.432-1"
            ),
        ));
    }
    Ok(())
}

/// A `Float` field's value as the ORM stores it, `float(value or 0.0)`: numbers and numeric
/// strings, `false` for zero.
fn as_float(value: &Value) -> Result<Value, OdooError> {
    let number = match value {
        Value::Null | Value::Bool(false) => Some(0.0),
        Value::Bool(true) => Some(1.0),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    number.map(|n| json!(n)).ok_or_else(|| {
        let message = match value {
            Value::String(s) => format!("could not convert string to float: '{s}'"),
            Value::Array(_) => {
                "float() argument must be a string or a real number, not 'list'".into()
            }
            _ => "float() argument must be a string or a real number, not 'dict'".into(),
        };
        OdooError::new("builtins.ValueError", message)
    })
}

/// A many2one to `account.payment.term`: an existing id, or `false` to clear it.
fn as_payment_term(value: &Value) -> Result<Value, OdooError> {
    match value {
        Value::Null | Value::Bool(false) => Ok(Value::Bool(false)),
        Value::Number(n) if n.is_i64() => match n.as_i64() {
            Some(id) if moves::payment_term_name(id).is_some() => Ok(json!(id)),
            _ => Err(OdooError::new(
                "odoo.exceptions.MissingError",
                format!(
                    "Record does not exist or has been deleted.\n(Record: account.payment.term({n},), User: 2)"
                ),
            )),
        },
        other => Err(OdooError::new(
            "builtins.ValueError",
            format!("Wrong value for res.partner.property_payment_term_id: {other}"),
        )),
    }
}

/// `base_vat`'s Colombian rule (the same DIAN algorithm, implemented here on its own).
fn valid_nit(vat: &str) -> bool {
    let digits: Vec<u32> = vat.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 7
        || vat
            .chars()
            .any(|c| !(c.is_ascii_digit() || c == '-' || c == '.'))
    {
        return false;
    }
    let (number, dv) = digits.split_at(digits.len() - 1);
    let weights = [3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71];
    let sum: u32 = number.iter().rev().zip(weights).map(|(d, w)| d * w).sum();
    let expected = match sum % 11 {
        r @ (0 | 1) => r,
        r => 11 - r,
    };
    dv[0] == expected
}

/// A partner as `read` returns it: requested fields (all stored ones when none), `false` for
/// empty ones, `0.0` for an unset float, many2one as `[id, "display name"]`.
fn read_partner(partner: &Map<String, Value>, fields: Option<&Value>) -> Map<String, Value> {
    let mut row = project(partner, fields, &PARTNER_FIELDS);
    // `read` always answers the id, asked for or not.
    row.insert("id".into(), partner.get("id").cloned().unwrap_or_default());
    for field in [
        "country_id",
        "property_payment_term_id",
        "create_uid",
        "write_uid",
    ] {
        if let Some(id) = row.get(field).and_then(Value::as_i64) {
            let name = match field {
                "country_id" => COUNTRIES
                    .iter()
                    .find(|(cid, _, _)| *cid == id)
                    .map(|(_, _, n)| *n),
                "property_payment_term_id" => moves::payment_term_name(id),
                _ if id == UI_USER.0 => Some(UI_USER.1),
                _ => Some(API_USER_NAME),
            };
            row.insert(field.into(), json!([id, name.unwrap_or("?")]));
        }
    }
    if row.get("credit_limit") == Some(&Value::Bool(false)) {
        row.insert("credit_limit".into(), json!(0.0));
    }
    row
}

fn project(
    record: &Map<String, Value>,
    fields: Option<&Value>,
    all: &[&str],
) -> Map<String, Value> {
    let fields: Vec<String> = match fields.and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list
            .iter()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect(),
        _ => all.iter().map(|f| (*f).to_owned()).collect(),
    };
    fields
        .into_iter()
        .map(|f| {
            let value = match record.get(&f) {
                None | Some(Value::Null) => Value::Bool(false),
                Some(v) => v.clone(),
            };
            (f, value)
        })
        .collect()
}

/// Evaluates an Odoo domain (Polish notation with `&`, `|`, `!`; implicit AND between terms).
pub fn matches_domain(record: &Map<String, Value>, domain: &Value) -> bool {
    let items = domain.as_array().cloned().unwrap_or_default();
    let mut stack: Vec<bool> = Vec::new();
    for item in items.iter().rev() {
        match item.as_str() {
            Some("!") => {
                let a = stack.pop().unwrap_or(true);
                stack.push(!a);
            }
            Some(op @ ("&" | "|")) => {
                let a = stack.pop().unwrap_or(true);
                let b = stack.pop().unwrap_or(true);
                stack.push(if op == "&" { a && b } else { a || b });
            }
            _ => stack.push(term(record, item)),
        }
    }
    stack.into_iter().all(|b| b)
}

fn term(record: &Map<String, Value>, leaf: &Value) -> bool {
    let Some([field, op, value]) = leaf.as_array().map(Vec::as_slice) else {
        return false;
    };
    let field = field.as_str().unwrap_or_default();
    let op = op.as_str().unwrap_or_default();
    let current = match record.get(field) {
        Some(Value::Null) | None => Value::Bool(false),
        Some(v) => v.clone(),
    };
    let value = &match value {
        Value::String(s) if DATETIME_FIELDS.contains(&field) => json!(timestamp_operand(op, s)),
        other => other.clone(),
    };
    let text = |v: &Value| v.as_str().map(str::to_lowercase).unwrap_or_default();
    match op {
        "=" => current == *value,
        "!=" => current != *value,
        "in" => value.as_array().is_some_and(|list| list.contains(&current)),
        "not in" => !value.as_array().is_some_and(|list| list.contains(&current)),
        "ilike" => text(&current).contains(&text(value)),
        ">" => compare(&current, value).is_some_and(|o| o.is_gt()),
        ">=" => compare(&current, value).is_some_and(|o| o.is_ge()),
        "<" => compare(&current, value).is_some_and(|o| o.is_lt()),
        "<=" => compare(&current, value).is_some_and(|o| o.is_le()),
        _ => false,
    }
}

/// A datetime operand as PostgreSQL compares it with a `timestamp without time zone`: a `T`
/// separator reads as a space and a zone suffix is ignored; a bare date is widened the way
/// Odoo's domain parser does (`> "2025-03-14"` means after 23:59:59 that day, `>=` from
/// midnight). Stored values are `YYYY-MM-DD HH:MM:SS`, so the result compares as text; a
/// fraction of a second sorts after the whole second, as it does as a timestamp.
fn timestamp_operand(op: &str, s: &str) -> String {
    if s.len() == 10 {
        let time = if matches!(op, ">" | "<=") {
            "23:59:59"
        } else {
            "00:00:00"
        };
        return format!("{s} {time}");
    }
    let mut t = s.replacen('T', " ", 1);
    if let Some(zone) = t.get(19..).and_then(|rest| rest.find(['Z', '+', '-'])) {
        t.truncate(19 + zone);
    }
    t
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Odoo's datetime wire format: UTC, no zone suffix.
fn odoo_now() -> String {
    let secs = super::now_ms() / 1000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
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
    fn domains_combine_like_odoos() {
        let Value::Object(p) =
            json!({"ref": "hubspot-company-1", "active": true, "customer_rank": 1})
        else {
            unreachable!()
        };
        assert!(matches_domain(
            &p,
            &json!([["ref", "=", "hubspot-company-1"]])
        ));
        assert!(!matches_domain(&p, &json!([["ref", "=", "x"]])));
        assert!(matches_domain(
            &p,
            &json!(["|", ["ref", "=", "x"], ["customer_rank", ">", 0]])
        ));
        assert!(!matches_domain(&p, &json!(["!", ["active", "=", true]])));
        assert!(matches_domain(&p, &json!([["email", "=", false]])));
    }

    #[test]
    fn the_nit_rule_matches_dian_vectors() {
        assert!(valid_nit("900123456-8"));
        assert!(valid_nit("800.197.268-4"));
        assert!(!valid_nit("900123456-7"));
    }

    #[test]
    fn dates_render_in_odoos_format() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_161), (2025, 3, 14));
    }

    #[test]
    fn datetime_operands_read_as_timestamps() {
        assert_eq!(timestamp_operand(">", "2025-03-14"), "2025-03-14 23:59:59");
        assert_eq!(timestamp_operand(">=", "2025-03-14"), "2025-03-14 00:00:00");
        assert_eq!(
            timestamp_operand("=", "2025-03-14T16:00:03Z"),
            "2025-03-14 16:00:03"
        );
        assert_eq!(
            timestamp_operand("<", "2025-03-14T16:00:03.250+00:00"),
            "2025-03-14 16:00:03.250"
        );
    }

    /// A simulator on a free port, with the credentials `execute_kw` below uses.
    async fn sim() -> OdooSim {
        OdooSim::start("db", "sync@example.com", "key")
            .await
            .expect("sim")
    }

    /// `object.execute_kw` over HTTP, as the connector sends it: the whole JSON-RPC answer.
    async fn execute_kw(
        sim: &OdooSim,
        model: &str,
        method: &str,
        args: Value,
        kwargs: Value,
    ) -> Value {
        let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "object", "method": "execute_kw",
            "args": ["db", 2, "key", model, method, args, kwargs]}});
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .post(format!("{}/jsonrpc", sim.url()))
            .json(&body)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json")
    }

    /// What a webhook receiver got: each request's Content-Type and JSON body.
    type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

    /// A webhook receiver answering 200, and its URL.
    async fn receiver() -> (String, Received) {
        let received: Received = Arc::default();
        let sink = received.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: String| {
                let sink = sink.clone();
                async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let body = serde_json::from_str(&body).unwrap_or_default();
                    if let Ok(mut sink) = sink.lock() {
                        sink.push((content_type, body));
                    }
                    "ok"
                }
            }),
        );
        let addr = super::super::serve(app).await.expect("receiver");
        (format!("http://{addr}/hook?token=s3cret"), received)
    }

    fn bodies(received: &Received) -> Vec<Value> {
        received
            .lock()
            .map(|r| r.iter().map(|(_, body)| body.clone()).collect())
            .unwrap_or_default()
    }

    fn payload(sim: &OdooSim, id: i64) -> Value {
        let p = sim.partner(id).expect("partner");
        json!({"_model": "res.partner", "_id": id, "_action": "puente partners(#13)", "id": id,
               "name": p["name"], "write_date": p["write_date"]})
    }

    #[tokio::test]
    async fn api_creates_and_writes_fire_the_partner_webhook_once_per_record() {
        let sim = sim().await;
        let (url, received) = receiver().await;
        sim.set_partner_webhook(Some(url));
        let vals = json!({"name": "Distribuidora Andina SAS", "vat": "900123456-8",
                          "country_id": 49, "ref": "hubspot-company-901"});
        let created = execute_kw(&sim, "res.partner", "create", json!([vals]), json!({})).await;
        let id = created["result"].as_i64().expect("an id");
        sim.settle_partner_webhooks().await;
        assert_eq!(bodies(&received), vec![payload(&sim, id)]);

        let written = execute_kw(
            &sim,
            "res.partner",
            "write",
            json!([[id], {"email": "compras@andina.co"}]),
            json!({}),
        )
        .await;
        assert_eq!(written["result"], json!(true));
        sim.settle_partner_webhooks().await;
        assert_eq!(
            sim.partner_webhook_log(),
            vec![(id, Some(200)), (id, Some(200))]
        );
        let got = received.lock().map(|r| r.clone()).unwrap_or_default();
        assert_eq!(got[1].0.as_deref(), Some("application/json"));
        assert_eq!(got[1].1, payload(&sim, id));

        // A refused write changes nothing and notifies nobody.
        let refused = execute_kw(
            &sim,
            "res.partner",
            "write",
            json!([[id], {"vat": "900123456-7"}]),
            json!({}),
        )
        .await;
        assert_eq!(
            refused["error"]["data"]["name"],
            json!("odoo.exceptions.ValidationError")
        );
        sim.settle_partner_webhooks().await;
        assert_eq!(sim.partner_webhook_log().len(), 2);
        let writes = sim.partner_writes();
        let sent: Vec<(i64, Value)> = writes
            .into_iter()
            .map(|(id, vals)| (id, Value::Object(vals)))
            .collect();
        assert_eq!(
            sent,
            vec![(id, vals), (id, json!({"email": "compras@andina.co"}))]
        );
        assert_eq!(
            sim.partner(id).expect("partner")["write_uid"],
            json!([2, "Puente Integration"])
        );
    }

    #[tokio::test]
    async fn a_user_edit_fires_the_webhook_but_is_no_api_write() {
        let sim = sim().await;
        let (url, received) = receiver().await;
        sim.set_partner_webhook(Some(url));
        let id = sim.create_partner_as_user(json!({"name": "Andina", "country_id": 49,
                                                   "vat": "900123456-8"}));
        sim.settle_partner_webhooks().await;
        next_second().await;
        sim.edit_partner_as_user(
            id,
            json!({"credit_limit": 2000000, "property_payment_term_id": 2}),
        );
        sim.settle_partner_webhooks().await;

        assert_eq!(
            sim.partner_webhook_log(),
            vec![(id, Some(200)), (id, Some(200))]
        );
        assert_eq!(bodies(&received).last(), Some(&payload(&sim, id)));
        assert!(sim.partner_writes().is_empty());
        let p = sim.partner(id).expect("partner");
        assert!(
            p["write_date"].as_str() > p["create_date"].as_str(),
            "{p:?}"
        );
        assert_eq!(p["write_uid"], json!([6, "Marc Demo"]));
        assert_eq!(p["credit_limit"], json!(2000000.0));
        assert_eq!(p["property_payment_term_id"], json!([2, "15 Days"]));

        // The form refuses a wrong check digit, as the API does.
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sim.edit_partner_as_user(id, json!({"vat": "900123456-7"}));
        }));
        assert!(refused.is_err());
        assert_eq!(
            sim.partner(id).expect("partner")["vat"],
            json!("900123456-8")
        );
    }

    #[tokio::test]
    async fn the_write_date_keyset_pages_in_order() {
        let sim = sim().await;
        let seeded = [
            (7, "2025-03-14 16:00:02"),
            (8, "2025-03-14 16:00:01"),
            (9, "2025-03-14 16:00:02"),
            (10, "2025-03-14 16:00:01"),
            (11, "2025-03-14 16:00:03"),
            (12, "2025-03-14 15:59:59"),
        ];
        if let Ok(mut partners) = sim.state.partners.lock() {
            for (id, at) in seeded {
                let Value::Object(p) = json!({"id": id, "name": format!("Partner {id}"),
                                              "active": true, "write_date": at})
                else {
                    unreachable!()
                };
                partners.insert(id, p);
            }
        }
        let search = |domain: Value, kwargs: Value| {
            let sim = &sim;
            async move {
                let found =
                    execute_kw(sim, "res.partner", "search_read", json!([domain]), kwargs).await;
                found["result"]
                    .as_array()
                    .map(|rows| {
                        rows.iter()
                            .filter_map(|r| r["id"].as_i64())
                            .collect::<Vec<i64>>()
                    })
                    .unwrap_or_else(|| panic!("{found}"))
            }
        };

        let mut cursor = ("2025-03-14 16:00:00".to_owned(), 0);
        let mut pages: Vec<Vec<i64>> = Vec::new();
        loop {
            let (at, last_id) = &cursor;
            let domain = json!([
                "|",
                ["write_date", ">", at],
                "&",
                ["write_date", "=", at],
                ["id", ">", last_id]
            ]);
            let kwargs = json!({"fields": ["id", "write_date"],
                                "order": "write_date asc, id asc", "limit": 2});
            let page: Vec<i64> = search(domain, kwargs).await;
            let Some(last) = page.last() else {
                break;
            };
            let written = sim.partner(*last).expect("partner")["write_date"].clone();
            cursor = (written.as_str().unwrap_or_default().to_owned(), *last);
            pages.push(page);
        }
        assert_eq!(pages, vec![vec![8, 10], vec![7, 9], vec![11]]);

        let ordered = json!({"order": "write_date asc, id asc", "offset": 1, "limit": 2});
        let at_or_after = json!([["write_date", ">=", "2025-03-14 16:00:01"]]);
        assert_eq!(search(at_or_after, ordered).await, vec![10, 7]);
        let newest_first = json!({"order": "write_date desc, id desc"});
        assert_eq!(
            search(json!([]), newest_first).await,
            vec![11, 9, 7, 10, 8, 12]
        );
        let before = json!([["write_date", "<", "2025-03-14 16:00:00"]]);
        assert_eq!(search(before, json!({})).await, vec![12]);
        // Bare dates and ISO operands, as Odoo's domain parser and PostgreSQL read them.
        let day = json!([["write_date", ">=", "2025-03-14"]]);
        assert_eq!(search(day, json!({})).await.len(), 6);
        let after_day = json!([["write_date", ">", "2025-03-14"]]);
        assert!(search(after_day, json!({})).await.is_empty());
        let iso = json!([["write_date", "=", "2025-03-14T16:00:03Z"]]);
        assert_eq!(search(iso, json!({})).await, vec![11]);

        let bad = execute_kw(
            &sim,
            "res.partner",
            "search_read",
            json!([[]]),
            json!({"order": "color asc"}),
        )
        .await;
        assert_eq!(bad["error"]["data"]["name"], json!("builtins.ValueError"));
    }

    #[tokio::test]
    async fn credit_limit_and_payment_term_read_back() {
        let sim = sim().await;
        let created = execute_kw(
            &sim,
            "res.partner",
            "create",
            json!([[{"name": "Andina", "credit_limit": 5000000, "property_payment_term_id": 4},
                    {"name": "Sin condiciones"}]]),
            json!({}),
        )
        .await;
        let ids = created["result"].as_array().cloned().unwrap_or_default();
        let fields = json!({"fields": ["credit_limit", "property_payment_term_id"]});
        let read = execute_kw(&sim, "res.partner", "read", json!([ids]), fields.clone()).await;
        let rows = &read["result"];
        assert_eq!(rows[0]["credit_limit"], json!(5000000.0));
        assert!(rows[0]["credit_limit"].is_f64(), "a float field: {rows}");
        assert_eq!(rows[0]["property_payment_term_id"], json!([4, "30 Days"]));
        assert_eq!(rows[1]["credit_limit"], json!(0.0));
        assert_eq!(rows[1]["property_payment_term_id"], json!(false));
        assert_eq!(rows[1]["id"], ids[1]);

        execute_kw(
            &sim,
            "res.partner",
            "write",
            json!([[ids[0].clone()],
                   {"credit_limit": "2500000.5", "property_payment_term_id": false}]),
            json!({}),
        )
        .await;
        let domain = json!([["credit_limit", ">", 1000000]]);
        let found = execute_kw(&sim, "res.partner", "search_read", json!([domain]), fields).await;
        assert_eq!(
            found["result"],
            json!([{"id": ids[0], "credit_limit": 2500000.5, "property_payment_term_id": false}])
        );

        let terms = execute_kw(
            &sim,
            "account.payment.term",
            "search_read",
            json!([[["name", "=", "30 Days"]]]),
            json!({"fields": ["id", "name"]}),
        )
        .await;
        assert_eq!(terms["result"], json!([{"id": 4, "name": "30 Days"}]));
        let term = execute_kw(
            &sim,
            "account.payment.term",
            "read",
            json!([[1]]),
            json!({}),
        )
        .await;
        assert_eq!(term["result"][0]["name"], json!("Immediate Payment"));
    }

    #[tokio::test]
    async fn an_unknown_payment_term_is_refused() {
        let sim = sim().await;
        let (url, _) = receiver().await;
        sim.set_partner_webhook(Some(url));
        let id = sim.create_partner_as_user(json!({"name": "Andina"}));
        let refused = execute_kw(
            &sim,
            "res.partner",
            "write",
            json!([[id], {"credit_limit": 1000.0, "property_payment_term_id": 999}]),
            json!({}),
        )
        .await;
        assert_eq!(
            refused["error"]["data"]["name"],
            json!("odoo.exceptions.MissingError")
        );
        let message = refused["error"]["data"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains("account.payment.term(999,)"), "{message}");
        let not_an_id = execute_kw(
            &sim,
            "res.partner",
            "create",
            json!([{"name": "Otra", "property_payment_term_id": "30 Days"}]),
            json!({}),
        )
        .await;
        assert_eq!(
            not_an_id["error"]["data"]["name"],
            json!("builtins.ValueError")
        );

        sim.settle_partner_webhooks().await;
        assert_eq!(sim.partner_webhook_log().len(), 1, "only the user's create");
        assert!(sim.partner_writes().is_empty());
        assert_eq!(sim.partners().len(), 1);
        assert_eq!(
            sim.partner(id).expect("partner")["credit_limit"],
            json!(0.0)
        );
    }
}
