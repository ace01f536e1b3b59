//! An HTTP front that plays API Gateway's HTTP API: each request on a configured route becomes a
//! payload-format 2.0 event for the route's function, and the function's proxy response becomes
//! the HTTP answer. Other routes get API Gateway's 404.

use super::runtime::{Function, InvokeError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// API Gateway's payload limit.
const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

pub struct Route {
    pub method: Method,
    pub path: String,
    pub function: Arc<Function>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {:?}", self.method, self.path, self.function)
    }
}

#[derive(Debug)]
pub struct Gateway {
    pub addr: SocketAddr,
}

impl Gateway {
    /// Binds a free loopback port first, so the functions can be told their public URL.
    pub async fn bind() -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok((listener, addr))
    }

    pub fn serve(listener: tokio::net::TcpListener, routes: Vec<Route>) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let app = Router::new()
            .fallback(forward)
            .layer(axum::extract::DefaultBodyLimit::max(MAX_PAYLOAD))
            .with_state(Arc::new(routes));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { addr })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn api_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

async fn forward(
    State(routes): State<Arc<Vec<Route>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(route) = routes
        .iter()
        .find(|r| r.method == method && r.path == uri.path())
    else {
        return api_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let event = event(&route.method, &route.path, &uri, &headers, &body);
    match route.function.invoke(event.to_string()).await {
        Ok(answer) => proxy_response(&answer),
        Err(InvokeError::Timeout) => {
            api_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
        Err(_) => api_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

/// The payload-format 2.0 event API Gateway sends for this request.
fn event(method: &Method, route: &str, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Value {
    let mut flat = Map::new();
    for name in headers.keys() {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        flat.insert(name.as_str().to_owned(), json!(values.join(",")));
    }
    flat.insert("x-forwarded-proto".into(), json!("http"));
    flat.insert("x-forwarded-for".into(), json!("127.0.0.1"));
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let user_agent = headers
        .get("user-agent")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let textual = headers
        .get("content-type")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/") || ct.contains("json") || ct.contains("xml"));
    let (body, encoded) = match std::str::from_utf8(body) {
        Ok(text) if textual => (json!(text), false),
        _ if body.is_empty() => (Value::Null, false),
        _ => (json!(STANDARD.encode(body)), true),
    };
    let now = crate::sim::now_ms();
    let route_key = format!("{method} {route}");
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": uri.path(),
        "rawQueryString": uri.query().unwrap_or_default(),
        "headers": flat,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or(host),
            "http": {
                "method": method.as_str(),
                "path": uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": user_agent,
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": "",
            "timeEpoch": now,
        },
        "body": body,
        "isBase64Encoded": encoded,
    })
}

/// The function's proxy response as an HTTP answer.
fn proxy_response(answer: &[u8]) -> Response {
    let Ok(value) = serde_json::from_slice::<Value>(answer) else {
        return api_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let status = value
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let body = value
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let bytes = if value.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        STANDARD.decode(body).unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    };
    let mut response = (status, bytes).into_response();
    if let Some(headers) = value.get("headers").and_then(Value::as_object) {
        for (name, v) in headers {
            if let (Ok(name), Some(Ok(v))) = (
                HeaderName::from_bytes(name.as_bytes()),
                v.as_str().map(HeaderValue::from_str),
            ) {
                response.headers_mut().insert(name, v);
            }
        }
    }
    response
}
