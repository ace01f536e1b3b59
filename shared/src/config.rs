//! Typed configuration, read once at cold start. A missing or malformed variable fails the start
//! with its name; the README lists every variable with its default.

use crate::connectors::hubspot::wire::{DealProperties, DealRules};
use crate::domain::{Country, Currency, DecimalStyle, Rate, ZoneOffset};
use crate::flows::invoice_deal::InvoiceRules;
use crate::mapping::customer::CustomerRules;
use crate::mapping::ownership::{Ownership, TermsRules};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} {detail}")]
    Invalid { name: &'static str, detail: String },
    #[error("secret {id} {detail}")]
    Secret { id: String, detail: String },
}

/// A view of the environment; tests build one from a map.
#[derive(Debug, Clone)]
pub struct Env(HashMap<String, String>);

impl Env {
    pub fn from_process() -> Self {
        Env(std::env::vars().collect())
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    /// This view with `name` set to `value` where it is unset (or empty).
    pub fn with_default(mut self, name: &str, value: &str) -> Self {
        if self.optional(name).is_none() {
            self.0.insert(name.to_owned(), value.to_owned());
        }
        self
    }

    /// The variable's value; an empty value counts as unset.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub fn or(&self, name: &str, default: &str) -> String {
        self.optional(name).unwrap_or_else(|| default.to_owned())
    }

    pub fn parse_or<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                detail: format!("is not valid: {e}"),
            }),
        }
    }

    pub fn seconds_or(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.parse_or(name, default).map(Duration::from_secs)
    }

    /// A URL without its trailing slash; it must start with http:// or https://.
    pub fn url_or(&self, name: &'static str, default: Option<&str>) -> Result<String, ConfigError> {
        let url = match (self.optional(name), default) {
            (Some(v), _) => v,
            (None, Some(d)) => d.to_owned(),
            (None, None) => return Err(ConfigError::Missing(name)),
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name,
                detail: "must start with https:// or http://".into(),
            });
        }
        Ok(url.trim_end_matches('/').to_owned())
    }
}

/// Where a function's secrets come from: Secrets Manager (deployed) or plain variables (local).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    SecretsManager { id: String },
    Environment,
}

impl SecretSource {
    fn from_env(env: &Env, name: &'static str) -> Self {
        match env.optional(name) {
            Some(id) => SecretSource::SecretsManager { id },
            None => SecretSource::Environment,
        }
    }
}

/// webhook-receiver.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub customer_queue_url: String,
    pub invoicing_queue_url: String,
    /// Where Odoo's invoice notifications go (`PUENTE_PAYMENTS_QUEUE_URL`).
    pub payments_queue_url: String,
    /// The Odoo database the notifications come from (the events' account).
    pub odoo_database: String,
    /// The deal stages that count as won (`PUENTE_WON_STAGES`): a move into one is invoiced.
    pub won_stages: Vec<String>,
    /// Secret with `hubspot_client_secret` and optionally `hubspot_client_secret_previous`.
    pub secrets: SecretSource,
    /// The public scheme and host HubSpot calls (`https://hooks.example.com`), when it differs
    /// from what API Gateway reports (a custom domain with a path mapping).
    pub public_base_url: Option<String>,
    pub max_body_bytes: usize,
    /// The state table, where the receiver remembers the deliveries it enqueued.
    pub table: String,
    /// How long a delivery is remembered: HubSpot retries for up to about three days. Zero
    /// turns the log off (one DynamoDB write and read fewer per event; a replay then reaches
    /// the workers, whose ledger applies it once).
    pub delivery_horizon: Duration,
    /// Our HubSpot app's id (`HUBSPOT_APP_ID`): a change HubSpot reports as made by this app
    /// through its API is our own write coming back, and is not enqueued.
    pub hubspot_app_id: Option<String>,
    pub metrics_namespace: String,
}

impl ReceiverConfig {
    /// Whether the receiver keeps its delivery log (`PUENTE_DELIVERY_HORIZON_HOURS` above 0).
    pub fn delivery_log(&self) -> bool {
        !self.delivery_horizon.is_zero()
    }

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            customer_queue_url: env.required("PUENTE_CUSTOMER_QUEUE_URL")?,
            invoicing_queue_url: env.required("PUENTE_INVOICING_QUEUE_URL")?,
            payments_queue_url: env.required("PUENTE_PAYMENTS_QUEUE_URL")?,
            odoo_database: env.or("ODOO_DB", "odoo"),
            won_stages: won_stages(env),
            secrets: SecretSource::from_env(env, "PUENTE_WEBHOOK_SECRET_ID"),
            public_base_url: env
                .optional("PUENTE_PUBLIC_BASE_URL")
                .map(|_| env.url_or("PUENTE_PUBLIC_BASE_URL", None))
                .transpose()?,
            max_body_bytes: env.parse_or("PUENTE_MAX_BODY_BYTES", 256 * 1024)?,
            table: env.required("PUENTE_TABLE")?,
            delivery_horizon: Duration::from_secs(
                3600 * env.parse_or("PUENTE_DELIVERY_HORIZON_HOURS", 96)?,
            ),
            hubspot_app_id: env.optional("HUBSPOT_APP_ID"),
            metrics_namespace: metrics_namespace(env),
        })
    }
}

#[derive(Debug, Clone)]
pub struct HubSpotConfig {
    pub base_url: String,
    /// Company property holding the tax id (HubSpot has no standard one).
    pub tax_id_property: String,
    /// Company property holding the billing email.
    pub email_property: String,
    /// Company property (created with unique values) holding the reference of the ERP record a
    /// company was created from (`odoo-partner-42`): a retry finds the company it created.
    pub erp_ref_property: String,
    /// Company properties showing the ERP's credit limit and payment terms.
    pub credit_limit_property: String,
    pub payment_terms_property: String,
}

#[derive(Debug, Clone)]
pub struct OdooConfig {
    pub url: String,
    pub database: String,
    pub username: String,
}

/// How the Odoo connector logs in (`ODOO_AUTH`). Both use the secret's `odoo_api_key`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OdooAuth {
    /// `api_key`: `/jsonrpc`, the user id and the key on every call; nothing can expire.
    #[default]
    ApiKey,
    /// `session`: a `session_id` cookie from `/web/session/authenticate`, shared by every
    /// record and renewed inline when Odoo says it expired.
    Session,
}

impl OdooAuth {
    /// The connectors secret's key holding what this mode logs in with: Odoo refuses API keys
    /// for interactive logins, so the session mode uses the user's password.
    pub fn secret_key(self) -> &'static str {
        match self {
            OdooAuth::ApiKey => "odoo_api_key",
            OdooAuth::Session => "odoo_password",
        }
    }
}

/// The keys the workers read from the connectors secret.
pub const CONNECTOR_SECRET_KEYS: [&str; 3] =
    ["hubspot_access_token", "odoo_api_key", "odoo_password"];

impl std::str::FromStr for OdooAuth {
    type Err = &'static str;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "api_key" => Ok(OdooAuth::ApiKey),
            "session" => Ok(OdooAuth::Session),
            _ => Err("expected api_key or session"),
        }
    }
}

/// How failed messages are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// Exponential backoff from the receive count with "equal jitter": between half and all of
    /// `base * 2^(receive_count-1)`, capped at `max`, and never shorter than `at_least`.
    pub fn delay(&self, receive_count: u32, at_least: Option<Duration>) -> Duration {
        let exponent = receive_count.saturating_sub(1).min(20);
        let full = self.base.saturating_mul(1 << exponent).min(self.max);
        let half = full / 2;
        let jitter = Duration::from_millis(fastrand::u64(0..=half.as_millis() as u64));
        (half + jitter)
            .max(at_least.unwrap_or_default())
            .min(self.max.max(at_least.unwrap_or_default()))
    }
}

/// customer-sync.
#[derive(Debug, Clone)]
pub struct CustomerSyncConfig {
    pub table: String,
    pub queue_url: String,
    pub dead_letter_url: String,
    /// Secret with `hubspot_access_token` and `odoo_api_key`.
    pub secrets: SecretSource,
    pub hubspot: HubSpotConfig,
    pub odoo: OdooConfig,
    pub odoo_auth: OdooAuth,
    pub rules: CustomerRules,
    pub http_timeout: Duration,
    /// Added to the invocation's remaining time to make the ledger lease.
    pub lease_margin: Duration,
    pub retry: RetryPolicy,
    /// CloudWatch namespace of the embedded-format metrics (`PUENTE_METRICS_NAMESPACE`).
    pub metrics_namespace: String,
    pub ledger_retention: Duration,
    /// The system of record of each field (`PUENTE_CUSTOMER_FIELD_OWNERS` changes the defaults).
    pub ownership: Ownership,
    /// The ERP's company currency, in which credit limits are kept (`PUENTE_CREDIT_CURRENCY`).
    pub terms: TermsRules,
    pub breaker: BreakerRules,
    /// An inbound change this soon after our write to the same record, which is not our echo,
    /// is a near miss: someone else edited it right after us (`PUENTE_NEAR_MISS_SECONDS`).
    pub near_miss_window: Duration,
    /// How far back the first poll of ERP partners looks (`PUENTE_CUSTOMER_POLL_LOOKBACK_HOURS`).
    pub poll_lookback: Duration,
}

impl CustomerSyncConfig {
    /// What reaching HubSpot and Odoo takes.
    pub fn connection(&self) -> crate::systems::Connection<'_> {
        crate::systems::Connection {
            secrets: &self.secrets,
            hubspot: &self.hubspot,
            odoo: &self.odoo,
            odoo_auth: self.odoo_auth,
            http_timeout: self.http_timeout,
        }
    }

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.required("PUENTE_TABLE")?,
            queue_url: env.required("PUENTE_CUSTOMER_QUEUE_URL")?,
            dead_letter_url: env.required("PUENTE_CUSTOMER_DLQ_URL")?,
            secrets: SecretSource::from_env(env, "PUENTE_CONNECTOR_SECRET_ID"),
            hubspot: hubspot(env)?,
            odoo: odoo(env)?,
            odoo_auth: env.parse_or("ODOO_AUTH", OdooAuth::ApiKey)?,
            rules: customer_rules(env)?,
            http_timeout: env.seconds_or("PUENTE_HTTP_TIMEOUT_SECONDS", 10)?,
            lease_margin: env.seconds_or("PUENTE_LEASE_MARGIN_SECONDS", 30)?,
            retry: retry(env)?,
            metrics_namespace: metrics_namespace(env),
            ledger_retention: ledger_retention(env)?,
            ownership: ownership(env)?,
            terms: terms(env)?,
            breaker: BreakerRules {
                max_writes: env.parse_or("PUENTE_BREAKER_MAX_WRITES", 10)?,
                window: Duration::from_secs(
                    60 * env.parse_or::<u64>("PUENTE_BREAKER_WINDOW_MINUTES", 10)?,
                ),
            },
            near_miss_window: env.seconds_or("PUENTE_NEAR_MISS_SECONDS", 60)?,
            poll_lookback: Duration::from_secs(
                3600 * env.parse_or::<u64>("PUENTE_CUSTOMER_POLL_LOOKBACK_HOURS", 24)?,
            ),
        })
    }
}

/// `PUENTE_CUSTOMER_FIELD_OWNERS`: changes to the default system of record per field.
fn ownership(env: &Env) -> Result<Ownership, ConfigError> {
    Ownership::with_overrides(&env.or("PUENTE_CUSTOMER_FIELD_OWNERS", "")).map_err(|detail| {
        ConfigError::Invalid {
            name: "PUENTE_CUSTOMER_FIELD_OWNERS",
            detail,
        }
    })
}

/// `PUENTE_CREDIT_CURRENCY`: the ERP company's currency, in which credit limits are kept.
fn terms(env: &Env) -> Result<TermsRules, ConfigError> {
    Ok(TermsRules {
        credit_currency: Currency::parse(&env.or("PUENTE_CREDIT_CURRENCY", "COP")).map_err(
            |_| ConfigError::Invalid {
                name: "PUENTE_CREDIT_CURRENCY",
                detail: "is not an ISO 4217 currency code".into(),
            },
        )?,
    })
}

/// reconciler.
#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    pub table: String,
    /// Where repairs go: each flow's own queue (`PUENTE_CUSTOMER_QUEUE_URL`,
    /// `PUENTE_INVOICING_QUEUE_URL`, `PUENTE_PAYMENTS_QUEUE_URL`; the last two optional).
    pub queues: crate::flows::reconcile::stuck::Queues,
    /// How long after its lease ran out a ledger item counts as stuck
    /// (`PUENTE_STUCK_AFTER_MINUTES`).
    pub stuck_after: Duration,
    /// Which document invoicing creates, so a stuck invoicing key is probed for the right one.
    pub document: ErpDocument,
    /// The deal stages that count as won (`PUENTE_WON_STAGES`, as invoicing reads them): the
    /// deals that must have a document.
    pub won_stages: Vec<String>,
    /// How deals read and where they show their invoice, as payment-sync writes it.
    pub deal_rules: DealRules,
    pub deal_properties: DealProperties,
    /// The company's offset: what "today" is for the overdue flag.
    pub offset: ZoneOffset,
    pub ledger_retention: Duration,
    /// Secret with `hubspot_access_token` and `odoo_api_key` (or `odoo_password`).
    pub secrets: SecretSource,
    pub hubspot: HubSpotConfig,
    pub odoo: OdooConfig,
    pub odoo_auth: OdooAuth,
    /// The customer flow's rules, so both compare alike.
    pub rules: CustomerRules,
    pub ownership: Ownership,
    pub terms: TermsRules,
    pub http_timeout: Duration,
    pub paging: crate::flows::reconcile::Paging,
    /// How long before the invocation's deadline a run stops taking pages.
    pub stop_margin: Duration,
    /// How long an enqueued repair is remembered, so later runs that find the same record in
    /// the same state do not enqueue it again (`PUENTE_REPAIR_HORIZON_HOURS`).
    pub repair_horizon: Duration,
    /// How long drift reports are kept (`PUENTE_REPORT_RETENTION_DAYS`).
    pub report_retention: Duration,
    pub metrics_namespace: String,
}

impl ReconcilerConfig {
    /// What reaching HubSpot and Odoo takes.
    pub fn connection(&self) -> crate::systems::Connection<'_> {
        crate::systems::Connection {
            secrets: &self.secrets,
            hubspot: &self.hubspot,
            odoo: &self.odoo,
            odoo_auth: self.odoo_auth,
            http_timeout: self.http_timeout,
        }
    }

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let hours = |name: &'static str, default: u64| {
            env.parse_or::<u64>(name, default)
                .map(|h| Duration::from_secs(h * 3600))
        };
        Ok(Self {
            table: env.required("PUENTE_TABLE")?,
            queues: crate::flows::reconcile::stuck::Queues {
                customer: env.required("PUENTE_CUSTOMER_QUEUE_URL")?,
                invoicing: env.optional("PUENTE_INVOICING_QUEUE_URL"),
                payments: env.optional("PUENTE_PAYMENTS_QUEUE_URL"),
            },
            stuck_after: Duration::from_secs(
                60 * env.parse_or::<u64>("PUENTE_STUCK_AFTER_MINUTES", 120)?,
            ),
            document: env.parse_or("PUENTE_ERP_DOCUMENT", ErpDocument::Invoice)?,
            won_stages: won_stages(env),
            deal_rules: deal_rules(env)?,
            deal_properties: deal_properties(env),
            offset: utc_offset(env)?,
            ledger_retention: ledger_retention(env)?,
            secrets: SecretSource::from_env(env, "PUENTE_CONNECTOR_SECRET_ID"),
            hubspot: hubspot(env)?,
            odoo: odoo(env)?,
            odoo_auth: env.parse_or("ODOO_AUTH", OdooAuth::ApiKey)?,
            rules: customer_rules(env)?,
            ownership: ownership(env)?,
            terms: terms(env)?,
            http_timeout: env.seconds_or("PUENTE_HTTP_TIMEOUT_SECONDS", 10)?,
            paging: crate::flows::reconcile::Paging {
                page_size: env.parse_or("PUENTE_RECONCILE_PAGE_SIZE", 100)?,
                page_budget: env.parse_or("PUENTE_RECONCILE_PAGE_BUDGET", 200)?,
                overlap: Duration::from_secs(
                    60 * env.parse_or::<u64>("PUENTE_RECONCILE_OVERLAP_MINUTES", 10)?,
                ),
                lookback: hours("PUENTE_RECONCILE_LOOKBACK_HOURS", 24)?,
            },
            stop_margin: env.seconds_or("PUENTE_RECONCILE_STOP_MARGIN_SECONDS", 30)?,
            repair_horizon: hours("PUENTE_REPAIR_HORIZON_HOURS", 24)?,
            report_retention: Duration::from_secs(
                24 * 3600 * env.parse_or::<u64>("PUENTE_REPORT_RETENTION_DAYS", 90)?,
            ),
            metrics_namespace: metrics_namespace(env),
        })
    }
}

/// The circuit breaker: more than `max_writes` writes to one customer (both sides counted)
/// within `window` quarantine it until an operator releases it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerRules {
    pub max_writes: u32,
    pub window: Duration,
}

/// `PUENTE_WON_STAGES`: the deal stage ids that count as won, comma-separated.
fn won_stages(env: &Env) -> Vec<String> {
    env.or("PUENTE_WON_STAGES", "closedwon")
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn hubspot(env: &Env) -> Result<HubSpotConfig, ConfigError> {
    Ok(HubSpotConfig {
        base_url: env.url_or("HUBSPOT_BASE_URL", Some("https://api.hubapi.com"))?,
        tax_id_property: env.or("HUBSPOT_TAX_ID_PROPERTY", "nit"),
        email_property: env.or("HUBSPOT_EMAIL_PROPERTY", "email"),
        erp_ref_property: env.or("HUBSPOT_ERP_REF_PROPERTY", "puente_erp_ref"),
        credit_limit_property: env.or("HUBSPOT_CREDIT_LIMIT_PROPERTY", "puente_credit_limit"),
        payment_terms_property: env.or("HUBSPOT_PAYMENT_TERMS_PROPERTY", "puente_payment_terms"),
    })
}

fn odoo(env: &Env) -> Result<OdooConfig, ConfigError> {
    Ok(OdooConfig {
        url: env.url_or("ODOO_URL", None)?,
        database: env.required("ODOO_DB")?,
        username: env.required("ODOO_USERNAME")?,
    })
}

fn customer_rules(env: &Env) -> Result<CustomerRules, ConfigError> {
    let default_country = match env.or("PUENTE_DEFAULT_COUNTRY", "CO").as_str() {
        "none" | "NONE" => None,
        code => Some(Country::parse(code).ok_or(ConfigError::Invalid {
            name: "PUENTE_DEFAULT_COUNTRY",
            detail: "is not an ISO 3166-1 alpha-2 code".into(),
        })?),
    };
    Ok(CustomerRules {
        default_country,
        require_tax_id: env.parse_or("PUENTE_REQUIRE_TAX_ID", false)?,
    })
}

fn retry(env: &Env) -> Result<RetryPolicy, ConfigError> {
    Ok(RetryPolicy {
        base: env.seconds_or("PUENTE_RETRY_BASE_SECONDS", 10)?,
        max: env.seconds_or("PUENTE_RETRY_MAX_SECONDS", 900)?,
    })
}

fn metrics_namespace(env: &Env) -> String {
    env.or(
        "PUENTE_METRICS_NAMESPACE",
        crate::telemetry::DEFAULT_NAMESPACE,
    )
}

fn ledger_retention(env: &Env) -> Result<Duration, ConfigError> {
    env.parse_or::<u64>("PUENTE_LEDGER_RETENTION_DAYS", 30)
        .map(|days| Duration::from_secs(days * 24 * 60 * 60))
}

/// Which sales document a won deal becomes (`PUENTE_ERP_DOCUMENT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErpDocument {
    /// `invoice`: a customer invoice.
    #[default]
    Invoice,
    /// `sales_order`: a sales order, which accounting invoices in the ERP.
    SalesOrder,
}

impl std::str::FromStr for ErpDocument {
    type Err = &'static str;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "invoice" => Ok(ErpDocument::Invoice),
            "sales_order" => Ok(ErpDocument::SalesOrder),
            _ => Err("expected invoice or sales_order"),
        }
    }
}

impl From<ErpDocument> for crate::connectors::odoo::wire::DocumentModel {
    fn from(document: ErpDocument) -> Self {
        match document {
            ErpDocument::Invoice => Self::Invoice,
            ErpDocument::SalesOrder => Self::SalesOrder,
        }
    }
}

/// invoicing.
#[derive(Debug, Clone)]
pub struct InvoicingConfig {
    pub table: String,
    pub queue_url: String,
    pub dead_letter_url: String,
    /// Secret with `hubspot_access_token` and `odoo_api_key` (or `odoo_password`).
    pub secrets: SecretSource,
    pub hubspot: HubSpotConfig,
    pub deal_rules: DealRules,
    pub deal_properties: DealProperties,
    pub odoo: OdooConfig,
    pub odoo_auth: OdooAuth,
    pub document: ErpDocument,
    /// `account.tax` ids by rate (`Rate::millionths`), from `ODOO_TAX_IDS=19=12,5=13`.
    pub odoo_tax_ids: HashMap<i64, i64>,
    pub customer_rules: CustomerRules,
    pub rules: InvoiceRules,
    pub http_timeout: Duration,
    pub lease_margin: Duration,
    pub retry: RetryPolicy,
    pub metrics_namespace: String,
    pub ledger_retention: Duration,
}

/// `PUENTE_UTC_OFFSET`: the company's offset (default Colombia's, -05:00).
fn utc_offset(env: &Env) -> Result<ZoneOffset, ConfigError> {
    match env.optional("PUENTE_UTC_OFFSET") {
        None => ZoneOffset::from_hours_minutes(-5, 0),
        Some(raw) => ZoneOffset::parse(&raw),
    }
    .map_err(|e| ConfigError::Invalid {
        name: "PUENTE_UTC_OFFSET",
        detail: format!("is not an offset like -05:00: {e}"),
    })
}

/// `HUBSPOT_DEFAULT_CURRENCY`: the currency of a deal without `deal_currency_code`.
fn deal_rules(env: &Env) -> Result<DealRules, ConfigError> {
    let default_currency =
        Currency::parse(&env.or("HUBSPOT_DEFAULT_CURRENCY", "COP")).map_err(|_| {
            ConfigError::Invalid {
                name: "HUBSPOT_DEFAULT_CURRENCY",
                detail: "is not an ISO 4217 currency code".into(),
            }
        })?;
    Ok(DealRules {
        default_currency,
        close_date_offset: ZoneOffset::UTC,
    })
}

/// `HUBSPOT_DEAL_PROPERTY_*`: the deal properties that show the ERP document.
fn deal_properties(env: &Env) -> DealProperties {
    let names = DealProperties::default();
    let property =
        |suffix: &str, default: &str| env.or(&format!("HUBSPOT_DEAL_PROPERTY_{suffix}"), default);
    DealProperties {
        invoice_number: property("INVOICE_NUMBER", &names.invoice_number),
        amount_invoiced: property("AMOUNT_INVOICED", &names.amount_invoiced),
        amount_paid: property("AMOUNT_PAID", &names.amount_paid),
        amount_outstanding: property("AMOUNT_OUTSTANDING", &names.amount_outstanding),
        due_date: property("DUE_DATE", &names.due_date),
        payment_state: property("PAYMENT_STATE", &names.payment_state),
        overdue: property("OVERDUE", &names.overdue),
        company_outstanding: env.or(
            "HUBSPOT_COMPANY_PROPERTY_OUTSTANDING",
            &names.company_outstanding,
        ),
        company_overdue_invoices: env.or(
            "HUBSPOT_COMPANY_PROPERTY_OVERDUE_INVOICES",
            &names.company_overdue_invoices,
        ),
    }
}

impl InvoicingConfig {
    /// What reaching HubSpot and Odoo takes.
    pub fn connection(&self) -> crate::systems::Connection<'_> {
        crate::systems::Connection {
            secrets: &self.secrets,
            hubspot: &self.hubspot,
            odoo: &self.odoo,
            odoo_auth: self.odoo_auth,
            http_timeout: self.http_timeout,
        }
    }

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.required("PUENTE_TABLE")?,
            queue_url: env.required("PUENTE_INVOICING_QUEUE_URL")?,
            dead_letter_url: env.required("PUENTE_INVOICING_DLQ_URL")?,
            secrets: SecretSource::from_env(env, "PUENTE_CONNECTOR_SECRET_ID"),
            hubspot: hubspot(env)?,
            deal_rules: deal_rules(env)?,
            deal_properties: deal_properties(env),
            odoo: odoo(env)?,
            odoo_auth: env.parse_or("ODOO_AUTH", OdooAuth::ApiKey)?,
            document: env.parse_or("PUENTE_ERP_DOCUMENT", ErpDocument::Invoice)?,
            odoo_tax_ids: tax_ids(env, "ODOO_TAX_IDS")?,
            customer_rules: customer_rules(env)?,
            rules: InvoiceRules {
                won_stages: won_stages(env),
                confirm: env.parse_or("PUENTE_CONFIRM_DOCUMENTS", true)?,
                taxes_by_sku: taxes_by_sku(env, "PUENTE_TAXES_BY_SKU")?,
                default_taxes: rates("PUENTE_DEFAULT_TAXES", &env.or("PUENTE_DEFAULT_TAXES", ""))?,
                payment_term_days: env
                    .optional("PUENTE_PAYMENT_TERM_DAYS")
                    .map(|_| env.parse_or("PUENTE_PAYMENT_TERM_DAYS", 0u16))
                    .transpose()?,
                offset: utc_offset(env)?,
            },
            http_timeout: env.seconds_or("PUENTE_HTTP_TIMEOUT_SECONDS", 10)?,
            lease_margin: env.seconds_or("PUENTE_LEASE_MARGIN_SECONDS", 30)?,
            retry: retry(env)?,
            metrics_namespace: metrics_namespace(env),
            ledger_retention: ledger_retention(env)?,
        })
    }
}

/// payment-sync.
#[derive(Debug, Clone)]
pub struct PaymentSyncConfig {
    pub table: String,
    pub queue_url: String,
    pub dead_letter_url: String,
    pub secrets: SecretSource,
    pub hubspot: HubSpotConfig,
    pub deal_rules: DealRules,
    pub deal_properties: DealProperties,
    pub odoo: OdooConfig,
    pub odoo_auth: OdooAuth,
    /// The company's offset: what "today" is for the overdue flag.
    pub offset: ZoneOffset,
    /// How far back the first poll looks, when no cursor exists yet.
    pub poll_lookback: Duration,
    pub http_timeout: Duration,
    pub lease_margin: Duration,
    pub retry: RetryPolicy,
    pub metrics_namespace: String,
    pub ledger_retention: Duration,
}

impl PaymentSyncConfig {
    /// What reaching HubSpot and Odoo takes.
    pub fn connection(&self) -> crate::systems::Connection<'_> {
        crate::systems::Connection {
            secrets: &self.secrets,
            hubspot: &self.hubspot,
            odoo: &self.odoo,
            odoo_auth: self.odoo_auth,
            http_timeout: self.http_timeout,
        }
    }

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.required("PUENTE_TABLE")?,
            queue_url: env.required("PUENTE_PAYMENTS_QUEUE_URL")?,
            dead_letter_url: env.required("PUENTE_PAYMENTS_DLQ_URL")?,
            secrets: SecretSource::from_env(env, "PUENTE_CONNECTOR_SECRET_ID"),
            hubspot: hubspot(env)?,
            deal_rules: deal_rules(env)?,
            deal_properties: deal_properties(env),
            odoo: odoo(env)?,
            odoo_auth: env.parse_or("ODOO_AUTH", OdooAuth::ApiKey)?,
            offset: utc_offset(env)?,
            poll_lookback: Duration::from_secs(
                3600 * env.parse_or::<u64>("PUENTE_POLL_LOOKBACK_HOURS", 24)?,
            ),
            http_timeout: env.seconds_or("PUENTE_HTTP_TIMEOUT_SECONDS", 10)?,
            lease_margin: env.seconds_or("PUENTE_LEASE_MARGIN_SECONDS", 30)?,
            retry: retry(env)?,
            metrics_namespace: metrics_namespace(env),
            ledger_retention: ledger_retention(env)?,
        })
    }
}

/// Tax rates joined by `+` (`19`, `19+4`); empty or `none` is no tax.
fn rates(name: &'static str, raw: &str) -> Result<Vec<Rate>, ConfigError> {
    if matches!(raw.trim(), "" | "none") {
        return Ok(Vec::new());
    }
    raw.split('+')
        .map(|rate| {
            Rate::parse_percent(rate.trim(), DecimalStyle::Plain).map_err(|_| {
                ConfigError::Invalid {
                    name,
                    detail: format!(
                        "has {:?}, which is not a percentage like 19 or 5.5",
                        rate.trim()
                    ),
                }
            })
        })
        .collect()
}

/// `SKU=rates` pairs joined by `,` (`LIC-ERP=19,EXPORT-1=0`).
fn taxes_by_sku(env: &Env, name: &'static str) -> Result<HashMap<String, Vec<Rate>>, ConfigError> {
    pairs(env, name)?
        .into_iter()
        .map(|(sku, raw)| Ok((sku, rates(name, &raw)?)))
        .collect()
}

/// `rate=id` pairs joined by `,` (`19=12,5=13`).
fn tax_ids(env: &Env, name: &'static str) -> Result<HashMap<i64, i64>, ConfigError> {
    pairs(env, name)?
        .into_iter()
        .map(|(rate, id)| {
            let rate = rates(name, &rate)?;
            let id = id.parse::<i64>().ok().filter(|id| *id > 0);
            match (rate.as_slice(), id) {
                ([rate], Some(id)) => Ok((rate.millionths(), id)),
                _ => Err(ConfigError::Invalid {
                    name,
                    detail: "must be pairs like 19=12,5=13 (rate=account.tax id)".into(),
                }),
            }
        })
        .collect()
}

fn pairs(env: &Env, name: &'static str) -> Result<Vec<(String, String)>, ConfigError> {
    env.or(name, "")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
            _ => Err(ConfigError::Invalid {
                name,
                detail: format!("has {pair:?}, which is not key=value"),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("PUENTE_TABLE", "puente-state"),
            ("PUENTE_CUSTOMER_QUEUE_URL", "http://q/customer"),
            ("PUENTE_CUSTOMER_DLQ_URL", "http://q/customer-dlq"),
            ("ODOO_URL", "https://acme.odoo.com/"),
            ("ODOO_DB", "acme"),
            ("ODOO_USERNAME", "sync@acme.co"),
        ]
    }

    #[test]
    fn defaults_fill_what_is_not_set() {
        let config = CustomerSyncConfig::from_env(&Env::from_pairs(minimal())).expect("valid");
        assert_eq!(config.hubspot.base_url, "https://api.hubapi.com");
        assert_eq!(config.odoo.url, "https://acme.odoo.com");
        assert_eq!(config.rules.default_country, Some(Country::CO));
        assert_eq!(config.secrets, SecretSource::Environment);
        assert_eq!(config.lease_margin, Duration::from_secs(30));
    }

    #[test]
    fn a_missing_variable_is_named() {
        let env = Env::from_pairs(minimal().into_iter().filter(|(k, _)| *k != "ODOO_DB"));
        let err = CustomerSyncConfig::from_env(&env).expect_err("missing");
        assert_eq!(err.to_string(), "environment variable ODOO_DB is required");
    }

    #[test]
    fn a_malformed_variable_is_named() {
        let mut pairs = minimal();
        pairs.push(("PUENTE_HTTP_TIMEOUT_SECONDS", "ten"));
        let err = CustomerSyncConfig::from_env(&Env::from_pairs(pairs)).expect_err("invalid");
        assert!(
            err.to_string()
                .starts_with("environment variable PUENTE_HTTP_TIMEOUT_SECONDS")
        );
    }

    #[test]
    fn the_odoo_auth_mode_defaults_to_the_api_key() {
        let config = CustomerSyncConfig::from_env(&Env::from_pairs(minimal())).expect("valid");
        assert_eq!(config.odoo_auth, OdooAuth::ApiKey);
        let mut pairs = minimal();
        pairs.push(("ODOO_AUTH", "session"));
        let config = CustomerSyncConfig::from_env(&Env::from_pairs(pairs)).expect("valid");
        assert_eq!(config.odoo_auth, OdooAuth::Session);
        let mut pairs = minimal();
        pairs.push(("ODOO_AUTH", "cookie"));
        let err = CustomerSyncConfig::from_env(&Env::from_pairs(pairs)).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "environment variable ODOO_AUTH is not valid: expected api_key or session"
        );
    }

    #[test]
    fn backoff_grows_with_the_receive_count_and_stays_capped() {
        let policy = RetryPolicy {
            base: Duration::from_secs(10),
            max: Duration::from_secs(900),
        };
        for _ in 0..100 {
            let first = policy.delay(1, None);
            assert!((Duration::from_secs(5)..=Duration::from_secs(10)).contains(&first));
            let fourth = policy.delay(4, None);
            assert!((Duration::from_secs(40)..=Duration::from_secs(80)).contains(&fourth));
            assert!(policy.delay(30, None) <= Duration::from_secs(900));
        }
        assert!(policy.delay(1, Some(Duration::from_secs(60))) >= Duration::from_secs(60));
    }

    fn invoicing(extra: &[(&'static str, &'static str)]) -> Result<InvoicingConfig, ConfigError> {
        let mut pairs = minimal();
        pairs.retain(|(k, _)| !k.starts_with("PUENTE_CUSTOMER"));
        pairs.push(("PUENTE_INVOICING_QUEUE_URL", "http://q/invoicing"));
        pairs.push(("PUENTE_INVOICING_DLQ_URL", "http://q/invoicing-dlq"));
        pairs.extend_from_slice(extra);
        InvoicingConfig::from_env(&Env::from_pairs(pairs))
    }

    #[test]
    fn invoicing_defaults_to_posted_invoices_without_taxes_in_cop_at_minus_five() {
        let config = invoicing(&[]).expect("valid");
        assert_eq!(config.document, ErpDocument::Invoice);
        assert!(config.rules.confirm);
        assert_eq!(config.rules.won_stages, ["closedwon"]);
        assert!(config.rules.default_taxes.is_empty());
        assert_eq!(config.rules.payment_term_days, None);
        assert_eq!(config.deal_rules.default_currency, Currency::COP);
        assert_eq!(config.rules.offset.total_minutes(), -300);
        assert_eq!(config.deal_properties.invoice_number, "erp_invoice_number");
    }

    #[test]
    fn invoicing_reads_its_tax_tables_and_names_a_malformed_one() {
        let config = invoicing(&[
            ("PUENTE_WON_STAGES", "closedwon, 4471823"),
            ("PUENTE_DEFAULT_TAXES", "19+4"),
            ("PUENTE_TAXES_BY_SKU", "LIC-ERP=19,EXPORT-1=0"),
            ("ODOO_TAX_IDS", "19=12,5.5=13"),
            ("PUENTE_ERP_DOCUMENT", "sales_order"),
            ("HUBSPOT_DEAL_PROPERTY_INVOICE_NUMBER", "numero_factura"),
        ])
        .expect("valid");
        assert_eq!(config.rules.won_stages, ["closedwon", "4471823"]);
        assert_eq!(
            config.rules.default_taxes,
            [Rate::from_percent(19), Rate::from_percent(4)]
        );
        assert_eq!(
            config.rules.taxes_by_sku["EXPORT-1"],
            [Rate::from_percent(0)]
        );
        assert_eq!(
            config.odoo_tax_ids[&Rate::from_percent(19).millionths()],
            12
        );
        assert_eq!(config.odoo_tax_ids[&55_000], 13);
        assert_eq!(config.document, ErpDocument::SalesOrder);
        assert_eq!(config.deal_properties.invoice_number, "numero_factura");

        let err = invoicing(&[("PUENTE_TAXES_BY_SKU", "LIC-ERP=diecinueve")]).expect_err("bad");
        assert!(err.to_string().contains("PUENTE_TAXES_BY_SKU"), "{err}");
        let err = invoicing(&[("ODOO_TAX_IDS", "19")]).expect_err("bad");
        assert!(err.to_string().contains("ODOO_TAX_IDS"), "{err}");
    }
}
