//! Odoo simulator: the external JSON-RPC API at `POST /jsonrpc` (`common.version`,
//! `common.authenticate`/`login`, `object.execute_kw`) and the web session routes
//! (`/web/session/authenticate` setting a `session_id` cookie, `/web/dataset/call_kw` answering
//! code 100 `SessionExpiredException` without a live session) on `res.partner` and `res.country`,
//! with Odoo's real answers: errors inside HTTP 200 with the exception class in `error.data.name`,
//! `false` for failed authentication and empty fields, many2one fields read as `[id, name]`,
//! `write_date` in UTC `YYYY-MM-DD HH:MM:SS`, archived records hidden unless `active_test` is
//! false, and the NIT check-digit validation that `base_vat` applies to Colombian partners.
//! The invoicing and sales models (`account.move`, `sale.order`, payments, the webhook) live in
//! the child module `moves`.

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
use std::sync::{Arc, Mutex};
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

const PARTNER_FIELDS: [&str; 16] = [
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
];

#[derive(Debug)]
pub struct OdooState {
    pub database: String,
    pub login: String,
    pub api_key: String,
    pub uid: i64,
    partners: Mutex<BTreeMap<i64, Map<String, Value>>>,
    /// Live web sessions, by `session_id`.
    sessions: Mutex<HashSet<String>>,
    logins: AtomicUsize,
    pub faults: Faults,
    /// Products, invoices, sale orders and payments.
    books: Mutex<moves::Books>,
    /// The automation rule's webhook URL and its delivery log.
    webhook: moves::Webhook,
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

    /// Archives a partner, as a user clicking "Archive" would.
    pub fn archive(&self, id: i64) {
        if let Ok(mut partners) = self.state.partners.lock()
            && let Some(p) = partners.get_mut(&id)
        {
            p.insert("active".into(), json!(false));
        }
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
        webhook: moves::Webhook::default(),
    }
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
                .map(|r| Value::Object(project(r, kwargs, &["id", "code", "name"])))
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
    let mut partners = state
        .partners
        .lock()
        .map_err(|_| OdooError::new("builtins.RuntimeError", "lock poisoned"))?;
    let active_test = kwargs
        .get("context")
        .and_then(|c| c.get("active_test"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let search = |partners: &BTreeMap<i64, Map<String, Value>>, domain: &Value| -> Vec<i64> {
        partners
            .iter()
            .filter(|(_, p)| !active_test || p.get("active") == Some(&Value::Bool(true)))
            .filter(|(_, p)| matches_domain(p, domain))
            .map(|(id, _)| *id)
            .collect()
    };
    match method {
        "search_read" | "search" | "search_count" => {
            let domain = args
                .first()
                .cloned()
                .or_else(|| kwargs.get("domain").cloned())
                .unwrap_or_else(|| json!([]));
            let mut ids = search(&partners, &domain);
            if method == "search_count" {
                return Ok(json!(ids.len()));
            }
            let offset = kwargs.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
            ids = ids.into_iter().skip(offset).collect();
            if let Some(limit) = kwargs
                .get("limit")
                .and_then(Value::as_u64)
                .filter(|l| *l > 0)
            {
                ids.truncate(limit as usize);
            }
            if method == "search" {
                return Ok(json!(ids));
            }
            Ok(Value::Array(
                ids.iter()
                    .filter_map(|id| partners.get(id))
                    .map(|p| Value::Object(read_partner(p, kwargs)))
                    .collect(),
            ))
        }
        "read" => {
            let ids = args
                .first()
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            ids.iter()
                .map(|id| {
                    id.as_i64()
                        .and_then(|id| partners.get(&id))
                        .map(|p| Value::Object(read_partner(p, kwargs)))
                        .ok_or_else(|| missing(id))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        "create" => {
            let (vals_list, single) = match args.first() {
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
            let mut ids = Vec::new();
            for vals in vals_list {
                let mut partner = Map::new();
                partner.insert("active".into(), json!(true));
                partner.insert("is_company".into(), json!(false));
                partner.insert("customer_rank".into(), json!(0));
                apply_values(&mut partner, &vals)?;
                let id = partners.keys().next_back().copied().unwrap_or(6) + 1;
                let now = odoo_now();
                partner.insert("id".into(), json!(id));
                partner.insert("create_date".into(), json!(now));
                partner.insert("write_date".into(), json!(now));
                partners.insert(id, partner);
                ids.push(id);
            }
            Ok(if single { json!(ids[0]) } else { json!(ids) })
        }
        "write" => {
            let ids = args
                .first()
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let vals = args
                .get(1)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for id in &ids {
                let partner = id
                    .as_i64()
                    .and_then(|id| partners.get_mut(&id))
                    .ok_or_else(|| missing(id))?;
                let mut updated = partner.clone();
                apply_values(&mut updated, &vals)?;
                updated.insert("write_date".into(), json!(odoo_now()));
                *partner = updated;
            }
            Ok(json!(true))
        }
        other => Err(OdooError::new(
            "builtins.AttributeError",
            format!("The method 'res.partner.{other}' does not exist"),
        )),
    }
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
        if !PARTNER_FIELDS.contains(&field.as_str()) || field == "id" {
            return Err(OdooError::new(
                "builtins.ValueError",
                format!("Invalid field '{field}' on model 'res.partner'"),
            ));
        }
        if field == "country_id" && !value.is_null() && value != &Value::Bool(false) {
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
        partner.insert(field.clone(), value.clone());
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

/// A partner as `read` returns it: requested fields, `false` for empty ones, many2one as
/// `[id, "display name"]`.
fn read_partner(partner: &Map<String, Value>, kwargs: &Map<String, Value>) -> Map<String, Value> {
    let mut row = project(partner, kwargs, &PARTNER_FIELDS);
    if let Some(country) = row.get("country_id").and_then(Value::as_i64) {
        let name = COUNTRIES
            .iter()
            .find(|(id, _, _)| *id == country)
            .map(|(_, _, n)| *n)
            .unwrap_or("?");
        row.insert("country_id".into(), json!([country, name]));
    }
    row
}

fn project(
    record: &Map<String, Value>,
    kwargs: &Map<String, Value>,
    all: &[&str],
) -> Map<String, Value> {
    let fields: Vec<String> = match kwargs.get("fields").and_then(Value::as_array) {
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
    let current = match record.get(field) {
        Some(Value::Null) | None => Value::Bool(false),
        Some(v) => v.clone(),
    };
    let text = |v: &Value| v.as_str().map(str::to_lowercase).unwrap_or_default();
    match op.as_str().unwrap_or_default() {
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
}
