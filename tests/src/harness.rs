//! A whole puente deployment on one machine: resources on moto, the HubSpot and Odoo simulators,
//! the release binaries of both functions behind the local Lambda platform, wired with the same
//! environment variables the SAM template sets.

use crate::aws_local::{self, Aws, QueueSettings, Stack, StackNames};
use crate::platform::aws_proxy::AwsProxy;
use crate::platform::gateway::{Gateway, Route};
use crate::platform::poller::{Poll, Poller};
use crate::platform::runtime::{Function, FunctionSpec};
use crate::sim::hubspot::HubSpotSim;
use crate::sim::odoo::OdooSim;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const HUBSPOT_TOKEN: &str = "pat-na1-local-token";
pub const HUBSPOT_CLIENT_SECRET: &str = "local-hubspot-client-secret";
pub const ODOO_DB: &str = "acme";
pub const ODOO_LOGIN: &str = "sync@acme.co";
pub const ODOO_API_KEY: &str = "local-odoo-api-key";
/// The token in the URL of Odoo's automation-rule webhook (at least 32 bytes).
pub const ODOO_WEBHOOK_TOKEN: &str = "local-odoo-webhook-token-0123456789abcdef";

/// Knobs a test turns; the defaults suit a fast test run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stack name; a unique one per test keeps tests apart on one moto server.
    pub stack: String,
    pub worker_timeout: Duration,
    pub worker_instances: usize,
    pub receiver_instances: usize,
    pub queues: QueueSettings,
    pub retry_base_s: u64,
    pub lease_margin_s: u64,
    pub http_timeout_s: u64,
    /// Puts an [`AwsProxy`] between the functions and moto, so a test can inject AWS faults;
    /// the test process itself keeps talking to moto directly.
    pub aws_proxy: bool,
    /// Starts the invoicing worker (off by default: most tests need only the customer flow).
    pub invoicing: bool,
    /// Extra environment for the invoicing worker (won stages, taxes, document kind).
    pub invoicing_env: Vec<(String, String)>,
    /// Starts the payment-sync worker.
    pub payments: bool,
    /// Extra environment for the customer-sync worker (ownership, breaker).
    pub customer_env: Vec<(String, String)>,
    /// Extra environment for the webhook receiver (the delivery log's horizon).
    pub receiver_env: Vec<(String, String)>,
    /// Starts the reconciler (invoked by `World::reconcile`, as its schedules do).
    pub reconciler: bool,
    /// Extra environment for the reconciler (paging, overlap, lookback).
    pub reconciler_env: Vec<(String, String)>,
}

/// `env` as owned pairs.
fn owned(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl Options {
    pub fn for_test(name: &str) -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Self {
            stack: format!("t-{name}-{}", &suffix[..8]),
            worker_timeout: Duration::from_secs(10),
            worker_instances: 2,
            receiver_instances: 2,
            queues: QueueSettings {
                visibility_timeout_s: 10,
                max_receive_count: 5,
            },
            retry_base_s: 1,
            lease_margin_s: 1,
            http_timeout_s: 30,
            aws_proxy: false,
            invoicing: false,
            invoicing_env: Vec::new(),
            payments: false,
            customer_env: Vec::new(),
            receiver_env: Vec::new(),
            reconciler: false,
            reconciler_env: Vec::new(),
        }
    }

    /// With the reconciler, and `env` on top of its defaults.
    pub fn with_reconciler(mut self, env: &[(&str, &str)]) -> Self {
        self.reconciler = true;
        self.reconciler_env = owned(env);
        self
    }

    /// With `env` on top of the webhook receiver's defaults.
    pub fn with_receiver_env(mut self, env: &[(&str, &str)]) -> Self {
        self.receiver_env = owned(env);
        self
    }

    /// With `env` on top of the customer-sync worker's defaults.
    pub fn with_customer_env(mut self, env: &[(&str, &str)]) -> Self {
        self.customer_env = owned(env);
        self
    }

    /// With the invoicing worker, and `env` on top of its defaults.
    pub fn with_invoicing(mut self, env: &[(&str, &str)]) -> Self {
        self.invoicing = true;
        self.invoicing_env = owned(env);
        self
    }
}

#[derive(Debug)]
pub struct World {
    pub aws: Aws,
    pub stack: Stack,
    pub hubspot: HubSpotSim,
    pub odoo: OdooSim,
    pub receiver: Arc<Function>,
    pub worker: Arc<Function>,
    /// The invoicing worker and its event source mapping, when `Options::invoicing`.
    pub invoicing: Option<(Arc<Function>, Poller)>,
    /// The payment-sync worker and its event source mapping, when `Options::payments`.
    pub payments: Option<(Arc<Function>, Poller)>,
    /// The reconciler, when `Options::reconciler`.
    pub reconciler: Option<Arc<Function>>,
    pub gateway: Gateway,
    pub poller: Poller,
    pub http: reqwest::Client,
    pub log_dir: PathBuf,
    /// The functions' AWS endpoint when `Options::aws_proxy` is on.
    pub aws_proxy: Option<AwsProxy>,
}

/// The directory holding the release binaries (`PUENTE_BIN_DIR`, else the workspace's
/// `target/release`, honouring `CARGO_TARGET_DIR`).
pub fn binary_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PUENTE_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    target.join("release")
}

impl World {
    pub async fn start(options: Options) -> anyhow::Result<Self> {
        let aws = Aws::from_env().await?;
        let names = StackNames::new(&options.stack);
        let stack = aws_local::provision(
            &aws,
            names.clone(),
            options.queues,
            &json!({"hubspot_client_secret": HUBSPOT_CLIENT_SECRET, "hubspot_client_secret_previous": "", "odoo_webhook_token": ODOO_WEBHOOK_TOKEN}),
            &json!({"hubspot_access_token": HUBSPOT_TOKEN, "odoo_api_key": ODOO_API_KEY}),
        )
        .await?;
        // Started before the functions: their cold start already reads secrets through it.
        let aws_proxy = match (options.aws_proxy, aws.sdk.endpoint_url()) {
            (true, Some(moto)) => Some(AwsProxy::start(moto).await?),
            (true, None) => anyhow::bail!("the AWS proxy needs AWS_ENDPOINT_URL (moto)"),
            (false, _) => None,
        };
        let hubspot = HubSpotSim::start(HUBSPOT_TOKEN, HUBSPOT_CLIENT_SECRET).await?;
        let odoo = OdooSim::start(ODOO_DB, ODOO_LOGIN, ODOO_API_KEY).await?;

        let bin = binary_dir();
        let target = bin
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| bin.clone());
        let target = std::fs::canonicalize(&target).unwrap_or(target);
        let log_dir = target.join("puente-logs").join(&options.stack);
        let (listener, gateway_addr) = Gateway::bind().await?;
        let env = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
            let mut all: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            all.push(("AWS_LAMBDA_LOG_LEVEL".into(), "info".into()));
            // What Lambda sets for `LoggingConfig: LogFormat: JSON` in the template.
            all.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
            // Overrides the AWS_ENDPOINT_URL the processes inherit from the test process.
            if let Some(proxy) = &aws_proxy {
                all.push(("AWS_ENDPOINT_URL".into(), proxy.url()));
            }
            all
        };
        let receiver = Arc::new(
            Function::start(FunctionSpec {
                name: format!("{}-webhook-receiver", options.stack),
                binary: bin.join("webhook-receiver"),
                env: env(&[
                    (
                        "PUENTE_CUSTOMER_QUEUE_URL",
                        stack.customer_queue_url.clone(),
                    ),
                    (
                        "PUENTE_INVOICING_QUEUE_URL",
                        stack.invoicing_queue_url.clone(),
                    ),
                    ("PUENTE_WON_STAGES", "closedwon".into()),
                    (
                        "PUENTE_PAYMENTS_QUEUE_URL",
                        stack.payments_queue_url.clone(),
                    ),
                    ("ODOO_DB", ODOO_DB.into()),
                    ("PUENTE_WEBHOOK_SECRET_ID", names.webhook_secret.clone()),
                    ("PUENTE_TABLE", names.table.clone()),
                    ("HUBSPOT_APP_ID", hubspot.state.app_id.to_string()),
                ])
                .into_iter()
                .chain(options.receiver_env.iter().cloned())
                .collect(),
                timeout: Duration::from_secs(10),
                memory_mb: 128,
                instances: options.receiver_instances,
                log_dir: log_dir.clone(),
            })
            .await?,
        );
        // What every function that calls the systems gets, after its own queue (and DLQ).
        let connectors = |queue: (&'static str, String), dlq: (&'static str, String)| {
            vec![
                queue,
                dlq,
                ("PUENTE_TABLE", names.table.clone()),
                ("PUENTE_CONNECTOR_SECRET_ID", names.connector_secret.clone()),
                ("HUBSPOT_BASE_URL", hubspot.base_url()),
                ("ODOO_URL", odoo.url()),
                ("ODOO_DB", ODOO_DB.into()),
                ("ODOO_USERNAME", ODOO_LOGIN.into()),
                (
                    "PUENTE_HTTP_TIMEOUT_SECONDS",
                    options.http_timeout_s.to_string(),
                ),
                (
                    "PUENTE_LEASE_MARGIN_SECONDS",
                    options.lease_margin_s.to_string(),
                ),
                (
                    "PUENTE_RETRY_BASE_SECONDS",
                    options.retry_base_s.to_string(),
                ),
                ("PUENTE_RETRY_MAX_SECONDS", "30".into()),
            ]
        };
        let mut customer_env = env(&connectors(
            (
                "PUENTE_CUSTOMER_QUEUE_URL",
                stack.customer_queue_url.clone(),
            ),
            ("PUENTE_CUSTOMER_DLQ_URL", stack.customer_dlq_url.clone()),
        ));
        customer_env.extend(options.customer_env.iter().cloned());
        let worker = Arc::new(
            Function::start(FunctionSpec {
                name: format!("{}-customer-sync", options.stack),
                binary: bin.join("customer-sync"),
                env: customer_env,
                timeout: options.worker_timeout,
                memory_mb: 128,
                instances: options.worker_instances,
                log_dir: log_dir.clone(),
            })
            .await?,
        );
        // A worker on its own queue: the function and its event source mapping.
        let queue_worker =
            |binary: &'static str, env: Vec<(String, String)>, url: &str, arn: &str| {
                let (url, arn) = (url.to_owned(), arn.to_owned());
                let spec = FunctionSpec {
                    name: format!("{}-{binary}", options.stack),
                    binary: bin.join(binary),
                    env,
                    timeout: options.worker_timeout,
                    memory_mb: 128,
                    instances: options.worker_instances,
                    log_dir: log_dir.clone(),
                };
                let sqs = aws.sqs.clone();
                async move {
                    let function = Arc::new(Function::start(spec).await?);
                    let poller = Poller {
                        sqs,
                        queue_url: url,
                        queue_arn: arn,
                        function: function.clone(),
                        batch_size: 10,
                    };
                    anyhow::Ok((function, poller))
                }
            };
        let invoicing = if options.invoicing {
            let mut vars = env(&connectors(
                (
                    "PUENTE_INVOICING_QUEUE_URL",
                    stack.invoicing_queue_url.clone(),
                ),
                ("PUENTE_INVOICING_DLQ_URL", stack.invoicing_dlq_url.clone()),
            ));
            vars.extend(options.invoicing_env.iter().cloned());
            let (url, arn) = (&stack.invoicing_queue_url, &stack.invoicing_queue_arn);
            Some(queue_worker("invoicing", vars, url, arn).await?)
        } else {
            None
        };
        let payments = if options.payments {
            let vars = env(&connectors(
                (
                    "PUENTE_PAYMENTS_QUEUE_URL",
                    stack.payments_queue_url.clone(),
                ),
                ("PUENTE_PAYMENTS_DLQ_URL", stack.payments_dlq_url.clone()),
            ));
            let (url, arn) = (&stack.payments_queue_url, &stack.payments_queue_arn);
            Some(queue_worker("payment-sync", vars, url, arn).await?)
        } else {
            None
        };
        let reconciler = if options.reconciler {
            let mut vars = env(&connectors(
                (
                    "PUENTE_CUSTOMER_QUEUE_URL",
                    stack.customer_queue_url.clone(),
                ),
                // No DLQ: a failed run is retried by the next schedule.
                ("PUENTE_RECONCILE_STOP_MARGIN_SECONDS", "2".into()),
            ));
            vars.push((
                "PUENTE_INVOICING_QUEUE_URL".into(),
                stack.invoicing_queue_url.clone(),
            ));
            vars.push((
                "PUENTE_PAYMENTS_QUEUE_URL".into(),
                stack.payments_queue_url.clone(),
            ));
            vars.extend(options.reconciler_env.iter().cloned());
            Some(Arc::new(
                Function::start(FunctionSpec {
                    name: format!("{}-reconciler", options.stack),
                    binary: bin.join("reconciler"),
                    env: vars,
                    timeout: Duration::from_secs(60),
                    memory_mb: 128,
                    instances: 1,
                    log_dir: log_dir.clone(),
                })
                .await?,
            ))
        } else {
            None
        };
        let gateway = Gateway::serve(
            listener,
            vec![
                Route {
                    method: axum::http::Method::POST,
                    path: "/webhooks/hubspot".into(),
                    function: receiver.clone(),
                },
                Route {
                    method: axum::http::Method::POST,
                    path: "/webhooks/odoo".into(),
                    function: receiver.clone(),
                },
            ],
        )?;
        debug_assert_eq!(gateway.addr, gateway_addr);
        let poller = Poller {
            sqs: aws.sqs.clone(),
            queue_url: stack.customer_queue_url.clone(),
            queue_arn: stack.customer_queue_arn.clone(),
            function: worker.clone(),
            batch_size: 10,
        };
        Ok(Self {
            aws,
            stack,
            hubspot,
            odoo,
            receiver,
            worker,
            invoicing,
            payments,
            reconciler,
            gateway,
            poller,
            http: reqwest::Client::new(),
            log_dir,
            aws_proxy,
        })
    }

    pub fn webhook_url(&self) -> String {
        self.gateway.url("/webhooks/hubspot")
    }

    /// HubSpot delivers `events` to the receiver, signed.
    pub async fn deliver(&self, events: &[Value]) -> anyhow::Result<(u16, String)> {
        Ok(self
            .hubspot
            .deliver(&self.http, &self.webhook_url(), events)
            .await?)
    }

    /// Runs the event source mapping until the customer queue is empty (nothing visible, nothing
    /// in flight), or fails after `within`.
    pub async fn drain(&self, within: Duration) -> anyhow::Result<Vec<Poll>> {
        drain(&self.aws, &self.poller, within, &self.log_dir).await
    }

    /// The same for the invoicing queue.
    pub async fn drain_invoicing(&self, within: Duration) -> anyhow::Result<Vec<Poll>> {
        let (_, poller) = self
            .invoicing
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the world was started without invoicing"))?;
        drain(&self.aws, poller, within, &self.log_dir).await
    }

    /// The same for the payments queue.
    pub async fn drain_payments(&self, within: Duration) -> anyhow::Result<Vec<Poll>> {
        let (_, poller) = self
            .payments
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the world was started without payments"))?;
        drain(&self.aws, poller, within, &self.log_dir).await
    }

    pub async fn payments_dead_letters(&self) -> anyhow::Result<Vec<aws_local::Peeked>> {
        aws_local::peek(&self.aws, &self.stack.payments_dlq_url).await
    }

    /// The URL an Odoo admin puts in the automation rule, token included.
    pub fn odoo_webhook_url(&self) -> String {
        format!(
            "{}?token={ODOO_WEBHOOK_TOKEN}",
            self.gateway.url("/webhooks/odoo")
        )
    }

    /// Invokes payment-sync as its schedule does (an EventBridge scheduled event).
    pub async fn poll_payments(&self) -> anyhow::Result<Value> {
        let (function, _) = self
            .payments
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the world was started without payments"))?;
        scheduled(function).await
    }

    /// Invokes customer-sync as its schedule does: it polls Odoo for customers.
    pub async fn poll_customers(&self) -> anyhow::Result<Value> {
        scheduled(&self.worker).await
    }

    /// Invokes the reconciler with `request` (`{"mode": "full"}`, `{"dry_run": true}`) as its
    /// schedule's input does; the answer is its drift report, or the error it failed with.
    pub async fn reconcile(
        &self,
        request: Value,
    ) -> anyhow::Result<Result<Value, crate::platform::runtime::InvokeError>> {
        let function = self
            .reconciler
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the world was started without the reconciler"))?;
        Ok(match function.invoke(request.to_string()).await {
            Ok(answer) => Ok(serde_json::from_slice(&answer)?),
            Err(e) => Err(e),
        })
    }

    /// Both systems' webhooks off, as when they were lost or not yet registered.
    pub fn unsubscribe_both_ways(&self) {
        self.hubspot.set_webhook(None);
        self.odoo.set_partner_webhook(None);
    }

    /// Both systems' webhooks on: HubSpot's company subscription and Odoo's partner rule point
    /// at the receiver, as an installation registers them.
    pub fn subscribe_both_ways(&self) {
        self.hubspot.set_webhook(Some(self.webhook_url()));
        self.odoo.set_partner_webhook(Some(self.odoo_webhook_url()));
    }

    /// HubSpot's company properties the customer flow uses, as an installation creates them
    /// (README, Register the webhooks): the tax id, our unique reference, credit limit and
    /// payment terms.
    pub fn define_customer_properties(&self) {
        self.hubspot.define_property("companies", "nit");
        self.hubspot
            .define_unique_property("companies", "puente_erp_ref");
        for name in ["puente_credit_limit", "puente_payment_terms"] {
            self.hubspot.define_property("companies", name);
        }
    }

    /// HubSpot's product property the reconciler keeps the catalogue by, as an installation
    /// creates it (README, Register the webhooks): our unique reference.
    pub fn define_product_properties(&self) {
        self.hubspot
            .define_unique_property("products", "puente_erp_ref");
    }

    /// Andina as HubSpot company `company`, synced to Odoo once with both webhooks on and
    /// everything settled: the starting point of a two-way edit. Returns the partner's id.
    pub async fn linked_customer(&self, company: &str) -> anyhow::Result<i64> {
        self.define_customer_properties();
        self.hubspot.put_company(
            company,
            &[
                ("name", "Distribuidora Andina SAS"),
                ("nit", "900.123.456-8"),
                ("phone", "601 234 5678"),
                ("city", "Bogotá"),
                ("country", "CO"),
            ],
        );
        self.subscribe_both_ways();
        let created = self.hubspot.company_event(
            1,
            "company.creation",
            company.parse()?,
            crate::sim::now_ms(),
        );
        let (status, _) = self.deliver(&[created]).await?;
        anyhow::ensure!(status == 200, "the receiver answered {status}");
        self.settle(Duration::from_secs(90)).await?;
        let partners = self.odoo.partners();
        anyhow::ensure!(partners.len() == 1, "one partner expected: {partners:?}");
        partners[0]["id"]
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("partner without id"))
    }

    /// Lets every webhook either simulator fired arrive and every queued change be applied,
    /// until nothing moves: the end of a ping-pong, if there were one.
    pub async fn settle(&self, within: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let fired = (
                self.hubspot.webhook_log().len(),
                self.odoo.partner_webhook_log().len(),
            );
            self.hubspot.settle().await;
            self.odoo.settle_partner_webhooks().await;
            let left = within.saturating_sub(started.elapsed());
            self.drain(left).await?;
            self.hubspot.settle().await;
            self.odoo.settle_partner_webhooks().await;
            let now = (
                self.hubspot.webhook_log().len(),
                self.odoo.partner_webhook_log().len(),
            );
            if now == fired && self.queued().await? == 0 {
                return Ok(());
            }
            if started.elapsed() > within {
                anyhow::bail!("still moving after {within:?}: webhooks {fired:?} -> {now:?}");
            }
        }
    }

    /// The customer link item of a CRM company (its pair state).
    pub async fn customer_link(
        &self,
        company_id: &str,
    ) -> anyhow::Result<Option<HashMap<String, AttributeValue>>> {
        let pk = format!("LINK#customer#hubspot#{company_id}");
        Ok(self
            .table_items()
            .await?
            .into_iter()
            .find(|item| aws_local::text(item, "pk").as_deref() == Some(pk.as_str())))
    }

    /// The notices for people recorded about customers (conflicts, deletions, merges).
    pub async fn customer_notices(&self) -> anyhow::Result<Vec<HashMap<String, AttributeValue>>> {
        Ok(self
            .table_items()
            .await?
            .into_iter()
            .filter(|item| {
                aws_local::text(item, "pk").is_some_and(|pk| pk.starts_with("NOTICE#customer#"))
            })
            .collect())
    }

    /// The lines of every function's log that mention `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.log_dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .flat_map(|text| {
                text.lines()
                    .filter(|line| line.contains(needle))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// Invokes `function` with an EventBridge scheduled event, as its schedule does.
async fn scheduled(function: &Function) -> anyhow::Result<Value> {
    {
        let event = json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2026-11-26T12:00:00Z",
            "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/puente-payments-poll"],
            "detail": {}
        });
        let answer = function
            .invoke(event.to_string())
            .await
            .map_err(|e| anyhow::anyhow!("scheduled invocation failed: {e:?}"))?;
        Ok(serde_json::from_slice(&answer)?)
    }
}

impl World {
    pub async fn invoicing_dead_letters(&self) -> anyhow::Result<Vec<aws_local::Peeked>> {
        aws_local::peek(&self.aws, &self.stack.invoicing_dlq_url).await
    }

    /// Messages waiting in the customer queue (visible and in flight).
    pub async fn queued(&self) -> anyhow::Result<u64> {
        let (visible, in_flight) =
            aws_local::queue_depth(&self.aws, &self.stack.customer_queue_url).await?;
        Ok(visible + in_flight)
    }

    pub async fn dead_letters(&self) -> anyhow::Result<Vec<aws_local::Peeked>> {
        aws_local::peek(&self.aws, &self.stack.customer_dlq_url).await
    }

    pub async fn table_items(&self) -> anyhow::Result<Vec<HashMap<String, AttributeValue>>> {
        aws_local::items(&self.aws, &self.stack.names.table).await
    }

    /// The ledger item of a business key.
    pub async fn ledger(
        &self,
        key: &str,
    ) -> anyhow::Result<Option<HashMap<String, AttributeValue>>> {
        let pk = format!("IDEM#{key}");
        Ok(self
            .table_items()
            .await?
            .into_iter()
            .find(|item| aws_local::text(item, "pk").as_deref() == Some(pk.as_str())))
    }
}

/// Runs `poller` until its queue is empty (nothing visible, nothing in flight), or fails after
/// `within`.
async fn drain(
    aws: &Aws,
    poller: &Poller,
    within: Duration,
    log_dir: &std::path::Path,
) -> anyhow::Result<Vec<Poll>> {
    let started = Instant::now();
    let mut polls = Vec::new();
    loop {
        let (visible, in_flight) = aws_local::queue_depth(aws, &poller.queue_url).await?;
        if visible == 0 && in_flight == 0 {
            return Ok(polls);
        }
        if started.elapsed() > within {
            anyhow::bail!(
                "queue {} not drained after {within:?} ({visible} visible, {in_flight} in flight); logs in {}",
                poller.queue_url,
                log_dir.display()
            );
        }
        let poll = poller.poll_once(1).await?;
        if poll.received > 0 {
            polls.push(poll);
        }
    }
}

impl Drop for World {
    /// The function processes end with the world, even when a test fails.
    fn drop(&mut self) {
        self.receiver.kill();
        self.worker.kill();
        for (function, _) in self.invoicing.iter().chain(self.payments.iter()) {
            function.kill();
        }
        if let Some(reconciler) = &self.reconciler {
            reconciler.kill();
        }
    }
}
