//! The Lambda Runtime API (`/2018-06-01/runtime/...`) for a pool of function processes.
//!
//! Each instance is one process of the function's binary with its own Runtime API endpoint,
//! like a Lambda sandbox: it asks for the next invocation, handles it, posts the response or the
//! error. An invocation that outlives the function's timeout has its process killed and a fresh
//! one started (a cold start), exactly as Lambda does.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

const API: &str = "/2018-06-01/runtime";

/// How to run one function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub name: String,
    pub binary: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub memory_mb: u32,
    pub instances: usize,
    /// Where each instance's stdout and stderr go.
    pub log_dir: PathBuf,
}

/// What an invocation ended with.
#[derive(Debug)]
pub enum InvokeError {
    /// The function reported an error (its error JSON).
    Function(String),
    /// The function did not answer within its timeout; its process was killed.
    Timeout,
    /// The platform could not run the invocation.
    Platform(String),
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Function(e) => write!(f, "function error: {e}"),
            InvokeError::Timeout => f.write_str("function timed out"),
            InvokeError::Platform(e) => write!(f, "platform error: {e}"),
        }
    }
}

impl std::error::Error for InvokeError {}

struct Invocation {
    payload: Bytes,
    reply: oneshot::Sender<Result<Bytes, InvokeError>>,
    taken: oneshot::Sender<usize>,
}

struct InFlight {
    request_id: String,
    reply: oneshot::Sender<Result<Bytes, InvokeError>>,
    started: Instant,
}

/// One process's start, as the benchmarks read it: when it was spawned, when it first asked for
/// an invocation (its init is done), and when it answered its first invocation.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    pub spawned: Instant,
    pub ready: Option<Instant>,
    pub first_answered: Option<Instant>,
}

impl Timeline {
    /// From process start to its first `GET /runtime/invocation/next`.
    pub fn init(&self) -> Option<Duration> {
        self.ready.map(|ready| ready - self.spawned)
    }

    /// From process start to the end of its first invocation.
    pub fn first_invocation(&self) -> Option<Duration> {
        self.first_answered.map(|done| done - self.spawned)
    }
}

struct Instance {
    index: usize,
    spec: Arc<FunctionSpec>,
    queue: Arc<Mutex<mpsc::Receiver<Invocation>>>,
    current: Mutex<Option<InFlight>>,
    child: Mutex<Option<Child>>,
    api: std::net::SocketAddr,
    generation: std::sync::atomic::AtomicUsize,
    timeline: std::sync::Mutex<Option<Timeline>>,
    /// How long each invocation ran, from handing it out to its answer (what Lambda bills).
    durations: std::sync::Mutex<Vec<Duration>>,
}

/// A running function: a pool of instances behind one invoke queue.
pub struct Function {
    pub spec: Arc<FunctionSpec>,
    sender: mpsc::Sender<Invocation>,
    instances: Vec<Arc<Instance>>,
    servers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.spec.name)
            .finish_non_exhaustive()
    }
}

impl Function {
    /// Starts `spec.instances` processes, each with its own Runtime API endpoint.
    pub async fn start(spec: FunctionSpec) -> anyhow::Result<Self> {
        if !spec.binary.is_file() {
            anyhow::bail!(
                "{} not found: build the release binaries first (`cargo build --release`; scripts/test does it)",
                spec.binary.display()
            );
        }
        std::fs::create_dir_all(&spec.log_dir)?;
        let spec = Arc::new(spec);
        let (sender, receiver) = mpsc::channel(1024);
        let queue = Arc::new(Mutex::new(receiver));
        let mut instances = Vec::new();
        let mut servers = Vec::new();
        for index in 0..spec.instances {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let instance = Arc::new(Instance {
                index,
                spec: spec.clone(),
                queue: queue.clone(),
                current: Mutex::new(None),
                child: Mutex::new(None),
                api: listener.local_addr()?,
                generation: std::sync::atomic::AtomicUsize::new(0),
                timeline: std::sync::Mutex::new(None),
                durations: std::sync::Mutex::new(Vec::new()),
            });
            let app = Router::new()
                .route(&format!("{API}/invocation/next"), get(next))
                .route(&format!("{API}/invocation/{{id}}/response"), post(respond))
                .route(&format!("{API}/invocation/{{id}}/error"), post(fail))
                .route(&format!("{API}/init/error"), post(init_error))
                .with_state(instance.clone());
            servers.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
            instance.spawn().await?;
            instances.push(instance);
        }
        Ok(Self {
            spec,
            sender,
            instances,
            servers,
        })
    }

    /// Invokes the function with `payload` and waits for its answer (the Invoke API's
    /// `RequestResponse`). Waits for a free instance first, as a throttled Lambda would.
    pub async fn invoke(&self, payload: impl Into<Bytes>) -> Result<Bytes, InvokeError> {
        let (reply, answer) = oneshot::channel();
        let (taken, taken_by) = oneshot::channel();
        let invocation = Invocation {
            payload: payload.into(),
            reply,
            taken,
        };
        self.sender
            .send(invocation)
            .await
            .map_err(|_| InvokeError::Platform("function is stopped".into()))?;
        let index = tokio::time::timeout(Duration::from_secs(120), taken_by)
            .await
            .map_err(|_| {
                InvokeError::Platform(format!(
                    "no instance of {} took the invocation",
                    self.spec.name
                ))
            })?
            .map_err(|_| InvokeError::Platform("invocation dropped".into()))?;
        match tokio::time::timeout(self.spec.timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(InvokeError::Platform("invocation dropped".into())),
            Err(_) => {
                // Lambda stops the sandbox at the deadline; the next invocation gets a new one.
                let instance = &self.instances[index];
                instance.current.lock().await.take();
                instance
                    .restart()
                    .await
                    .map_err(|e| InvokeError::Platform(e.to_string()))?;
                Err(InvokeError::Timeout)
            }
        }
    }

    /// Each instance's current process start (`None` before the process exists).
    pub fn timelines(&self) -> Vec<Option<Timeline>> {
        self.instances
            .iter()
            .map(|i| i.timeline.lock().ok().and_then(|t| *t))
            .collect()
    }

    /// How long every invocation so far ran, across instances.
    pub fn durations(&self) -> Vec<Duration> {
        self.instances
            .iter()
            .filter_map(|i| i.durations.lock().ok().map(|d| d.clone()))
            .flatten()
            .collect()
    }

    /// The process ids of the running instances (for their memory and CPU time in `/proc`).
    pub fn pids(&self) -> Vec<u32> {
        self.instances
            .iter()
            .filter_map(|i| i.child.try_lock().ok()?.as_ref()?.id())
            .collect()
    }

    /// Stops every process (without waiting for them to exit).
    pub fn kill(&self) {
        for instance in &self.instances {
            if let Ok(mut child) = instance.child.try_lock()
                && let Some(child) = child.as_mut()
            {
                let _ = child.start_kill();
            }
        }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        self.kill();
        for server in &self.servers {
            server.abort();
        }
    }
}

impl Instance {
    async fn spawn(&self) -> anyhow::Result<()> {
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log_path = self.spec.log_dir.join(format!(
            "{}-{}-{generation}.log",
            self.spec.name, self.index
        ));
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::new(&self.spec.binary);
        command
            .env("AWS_LAMBDA_RUNTIME_API", self.api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.spec.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                self.spec.memory_mb.to_string(),
            )
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.spec.name),
            )
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("local/{}", self.index),
            )
            .envs(self.spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        // Set before the process exists: its first request may arrive before `spawn` returns.
        if let Ok(mut timeline) = self.timeline.lock() {
            *timeline = Some(Timeline {
                spawned: Instant::now(),
                ready: None,
                first_answered: None,
            });
        }
        let child = command.spawn()?;
        *self.child.lock().await = Some(child);
        Ok(())
    }

    async fn restart(&self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.lock().await.take() {
            let _ = child.kill().await;
        }
        self.spawn().await
    }
}

async fn next(State(instance): State<Arc<Instance>>) -> Response {
    if let Ok(mut timeline) = instance.timeline.lock()
        && let Some(timeline) = timeline.as_mut()
    {
        timeline.ready.get_or_insert_with(Instant::now);
    }
    let invocation = {
        let mut queue = instance.queue.lock().await;
        queue.recv().await
    };
    let Some(invocation) = invocation else {
        return (StatusCode::GONE, "stopped").into_response();
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let deadline = crate::sim::now_ms() + instance.spec.timeout.as_millis() as i64;
    *instance.current.lock().await = Some(InFlight {
        request_id: request_id.clone(),
        reply: invocation.reply,
        started: Instant::now(),
    });
    let _ = invocation.taken.send(instance.index);
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put("lambda-runtime-aws-request-id", request_id);
    put("lambda-runtime-deadline-ms", deadline.to_string());
    put(
        "lambda-runtime-invoked-function-arn",
        format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{}",
            instance.spec.name
        ),
    );
    put(
        "lambda-runtime-trace-id",
        format!("Root=1-{}", uuid::Uuid::new_v4().simple()),
    );
    put("content-type", "application/json".into());
    (StatusCode::OK, headers, invocation.payload).into_response()
}

async fn finish(instance: &Instance, id: &str, result: Result<Bytes, InvokeError>) -> Response {
    let mut current = instance.current.lock().await;
    match current.take() {
        Some(inflight) if inflight.request_id == id => {
            let answered = Instant::now();
            if let Ok(mut durations) = instance.durations.lock() {
                durations.push(answered - inflight.started);
            }
            if let Ok(mut timeline) = instance.timeline.lock()
                && let Some(timeline) = timeline.as_mut()
            {
                timeline.first_answered.get_or_insert(answered);
            }
            let _ = inflight.reply.send(result);
            (
                StatusCode::ACCEPTED,
                axum::Json(serde_json::json!({"status": "OK"})),
            )
                .into_response()
        }
        other => {
            *current = other;
            (StatusCode::BAD_REQUEST, "unknown request id").into_response()
        }
    }
}

async fn respond(
    State(instance): State<Arc<Instance>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    finish(&instance, &id, Ok(body)).await
}

async fn fail(
    State(instance): State<Arc<Instance>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let error = String::from_utf8_lossy(&body).into_owned();
    finish(&instance, &id, Err(InvokeError::Function(error))).await
}

async fn init_error(State(instance): State<Arc<Instance>>, body: Bytes) -> Response {
    tracing::error!(
        function = %instance.spec.name,
        error = %String::from_utf8_lossy(&body),
        "function failed to initialise"
    );
    (
        StatusCode::ACCEPTED,
        axum::Json(HashMap::from([("status", "OK")])),
    )
        .into_response()
}
