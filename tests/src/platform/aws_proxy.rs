//! A fault-injecting HTTP proxy in front of the AWS endpoint (moto). The functions' SDK clients
//! talk to it as they would to AWS; it forwards every request unchanged unless an armed fault
//! matches the request's operation, and then answers the way AWS fails instead: a throttling
//! error, a 500, a connection closed without an answer, or a slow answer. Every request is
//! recorded with its operation, so tests can count what the SDK actually sent (its own retries
//! included).
//!
//! The operation is read from `X-Amz-Target` (the JSON protocols of DynamoDB, SQS and Secrets
//! Manager: `DynamoDB_20120810.PutItem`, `AmazonSQS.SendMessageBatch`), else from the `Action`
//! of a query-protocol form body.

use axum::body::{Body, Bytes};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Larger than any request the functions send (DynamoDB items and SQS batches are capped far
/// below this).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Headers that belong to one connection and must not be forwarded (RFC 9110 section 7.6.1),
/// plus the ones the forwarding client sets itself.
const NOT_FORWARDED: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// What the proxy does with a matching request instead of forwarding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsAnswer {
    /// HTTP 400 throttling: `ProvisionedThroughputExceededException` for DynamoDB,
    /// `ThrottlingException` for other services; the SDK retries both as throttling.
    Throttled,
    /// HTTP 500 `InternalServerError` (DynamoDB) or `InternalError` (others); the SDK retries it
    /// as a transient error.
    InternalError,
    /// Close the connection without answering; the request never reaches the service.
    DropConnection,
    /// Wait, then forward the request.
    Delay(Duration),
}

/// A fault rule: an operation name (`PutItem`, `SendMessageBatch`), optionally narrowed to
/// requests whose body contains a text (`"IDEM#"` picks out the ledger's claims).
#[derive(Debug, Clone)]
pub struct AwsFault {
    operation: String,
    body_contains: Option<String>,
    answer: AwsAnswer,
}

impl AwsFault {
    pub fn new(operation: &str, answer: AwsAnswer) -> Self {
        Self {
            operation: operation.to_owned(),
            body_contains: None,
            answer,
        }
    }

    /// Matches only requests whose body contains `text`.
    pub fn when_body_contains(mut self, text: &str) -> Self {
        self.body_contains = Some(text.to_owned());
        self
    }

    fn matches(&self, seen: &Seen) -> bool {
        seen.operation == self.operation
            && self
                .body_contains
                .as_ref()
                .is_none_or(|text| seen.body.contains(text.as_str()))
    }
}

/// One request the proxy received.
#[derive(Debug, Clone)]
struct Seen {
    operation: String,
    body: String,
    faulted: bool,
}

#[derive(Debug)]
struct Armed {
    fault: AwsFault,
    remaining: u32,
}

#[derive(Debug)]
struct State {
    upstream: String,
    client: reqwest::Client,
    rules: Mutex<Vec<Armed>>,
    seen: Mutex<Vec<Seen>>,
}

/// The running proxy; it stops accepting connections when dropped.
#[derive(Debug)]
pub struct AwsProxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    accepting: JoinHandle<()>,
}

impl AwsProxy {
    /// Listens on a free loopback port and forwards to `upstream` (e.g. `http://127.0.0.1:5000`).
    pub async fn start(upstream: &str) -> anyhow::Result<AwsProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            // Never through an HTTP proxy from the environment: the upstream is on loopback.
            client: reqwest::Client::builder().no_proxy().build()?,
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
        });
        let serving = state.clone();
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of file descriptors, say: wait rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| state.clone().handle(request));
                    // A dropped connection ends here with the service's error, by design.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(AwsProxy {
            addr,
            state,
            accepting,
        })
    }

    /// The endpoint URL to give the SDK (`AWS_ENDPOINT_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Arms `fault` for the next `times` matching requests. Rules are tried in the order they
    /// were armed; the first one with requests left answers.
    pub fn inject(&self, fault: AwsFault, times: u32) {
        if let Ok(mut rules) = self.state.rules.lock() {
            rules.push(Armed {
                fault,
                remaining: times,
            });
        }
    }

    /// Requests received for `operation`, forwarded or faulted.
    pub fn count(&self, operation: &str) -> usize {
        self.counted(|seen| seen.operation == operation)
    }

    /// Requests received for `operation` whose body contains `text`, forwarded or faulted.
    pub fn count_containing(&self, operation: &str, text: &str) -> usize {
        self.counted(|seen| seen.operation == operation && seen.body.contains(text))
    }

    /// Requests for `operation` that a fault answered.
    pub fn faulted(&self, operation: &str) -> usize {
        self.counted(|seen| seen.operation == operation && seen.faulted)
    }

    /// Every operation received, in order (to see what a function really sends).
    pub fn operations(&self) -> Vec<String> {
        self.state
            .seen
            .lock()
            .map(|seen| seen.iter().map(|s| s.operation.clone()).collect())
            .unwrap_or_default()
    }

    /// Every request received, in order: its operation and body (the cost model counts items).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.state
            .seen
            .lock()
            .map(|seen| {
                seen.iter()
                    .map(|s| (s.operation.clone(), s.body.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn counted(&self, keep: impl Fn(&Seen) -> bool) -> usize {
        self.state
            .seen
            .lock()
            .map(|seen| seen.iter().filter(|s| keep(s)).count())
            .unwrap_or_default()
    }
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl State {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Body>, std::io::Error> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(Body::new(body), MAX_BODY)
            .await
            .map_err(|e| std::io::Error::other(format!("reading the request body: {e}")))?;
        let operation = Operation::of(&parts.headers, &body);
        let answer = self.record(&operation, &body);
        match answer {
            Some(AwsAnswer::Throttled) => Ok(operation.error(
                StatusCode::BAD_REQUEST,
                if operation.service == DYNAMODB {
                    "ProvisionedThroughputExceededException"
                } else {
                    "ThrottlingException"
                },
                "The level of configured provisioned throughput for the table was exceeded.",
            )),
            Some(AwsAnswer::InternalError) => Ok(operation.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                if operation.service == DYNAMODB {
                    "InternalServerError"
                } else {
                    "InternalError"
                },
                "We encountered an internal error. Please try again.",
            )),
            // hyper closes the connection without a response when the service fails.
            Some(AwsAnswer::DropConnection) => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                format!("fault: dropped the connection of {}", operation.name),
            )),
            Some(AwsAnswer::Delay(wait)) => {
                tokio::time::sleep(wait).await;
                self.forward(parts, body).await
            }
            None => self.forward(parts, body).await,
        }
    }

    /// Logs the request and takes the first armed fault that matches it.
    fn record(&self, operation: &Operation, body: &Bytes) -> Option<AwsAnswer> {
        let mut seen = Seen {
            operation: operation.name.clone(),
            body: String::from_utf8_lossy(body).into_owned(),
            faulted: false,
        };
        let answer = self.rules.lock().ok().and_then(|mut rules| {
            let armed = rules
                .iter_mut()
                .find(|r| r.remaining > 0 && r.fault.matches(&seen))?;
            armed.remaining -= 1;
            Some(armed.fault.answer.clone())
        });
        seen.faulted = answer
            .as_ref()
            .is_some_and(|a| !matches!(a, AwsAnswer::Delay(_)));
        if let Ok(mut log) = self.seen.lock() {
            log.push(seen);
        }
        answer
    }

    async fn forward(
        &self,
        parts: hyper::http::request::Parts,
        body: Bytes,
    ) -> Result<Response<Body>, std::io::Error> {
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut headers = parts.headers;
        strip(&mut headers);
        // The client sets the length of the body it sends.
        headers.remove(header::CONTENT_LENGTH);
        let upstream = self
            .client
            .request(parts.method, format!("{}{path}", self.upstream))
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| std::io::Error::other(format!("upstream: {e}")))?;
        let mut response = Response::builder().status(upstream.status());
        if let Some(headers) = response.headers_mut() {
            headers.extend(upstream.headers().clone());
            strip(headers);
        }
        let chunks = futures_util::stream::unfold(upstream, |mut upstream| async move {
            upstream
                .chunk()
                .await
                .transpose()
                .map(|chunk| (chunk, upstream))
        });
        response
            .body(Body::from_stream(chunks))
            .map_err(std::io::Error::other)
    }
}

fn strip(headers: &mut HeaderMap) {
    for name in NOT_FORWARDED {
        headers.remove(name);
    }
}

const DYNAMODB: &str = "DynamoDB_20120810";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// awsJson1.0/1.1: `X-Amz-Target` names the operation; errors are JSON with `__type`.
    Json,
    /// awsQuery: a form body with `Action`; errors are XML.
    Query,
}

/// The AWS operation a request calls.
#[derive(Debug, Clone)]
struct Operation {
    protocol: Protocol,
    /// The `X-Amz-Target` prefix (`DynamoDB_20120810`, `AmazonSQS`, `secretsmanager`); empty
    /// for the query protocol.
    service: String,
    name: String,
}

impl Operation {
    fn of(headers: &HeaderMap, body: &[u8]) -> Self {
        if let Some((service, name)) = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|target| target.split_once('.'))
        {
            return Self {
                protocol: Protocol::Json,
                service: service.to_owned(),
                name: name.to_owned(),
            };
        }
        // Action names are plain ASCII letters, so the form value needs no decoding.
        let action = String::from_utf8_lossy(body)
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action=").map(str::to_owned))
            .unwrap_or_default();
        Self {
            protocol: Protocol::Query,
            service: String::new(),
            name: action,
        }
    }

    /// An error answer in the shape this operation's protocol uses.
    fn error(&self, status: StatusCode, code: &str, message: &str) -> Response<Body> {
        let fault_side = if status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        let (content_type, body) = match self.protocol {
            Protocol::Json => {
                let namespace = match self.service.as_str() {
                    DYNAMODB => "com.amazonaws.dynamodb.v20120810#",
                    "AmazonSQS" => "com.amazonaws.sqs#",
                    _ => "",
                };
                (
                    "application/x-amz-json-1.0",
                    serde_json::json!({"__type": format!("{namespace}{code}"), "message": message})
                        .to_string(),
                )
            }
            Protocol::Query => (
                "text/xml",
                format!(
                    "<ErrorResponse><Error><Type>{fault_side}</Type><Code>{code}</Code>\
                     <Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                    uuid::Uuid::new_v4()
                ),
            ),
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Ok(code) = HeaderValue::from_str(code) {
            headers.insert(HeaderName::from_static("x-amzn-errortype"), code);
        }
        // SQS's JSON protocol also carries the query-protocol code for older clients.
        if self.service == "AmazonSQS"
            && let Ok(query_error) = HeaderValue::from_str(&format!("{code};{fault_side}"))
        {
            headers.insert(HeaderName::from_static("x-amzn-query-error"), query_error);
        }
        if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
            headers.insert(HeaderName::from_static("x-amzn-requestid"), id);
        }
        response
    }
}
