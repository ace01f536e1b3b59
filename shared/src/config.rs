//! Typed configuration, read once at cold start. A missing or malformed variable fails the start
//! with its name; the README lists every variable with its default.

use crate::domain::Country;
use crate::mapping::customer::CustomerRules;
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
    /// Secret with `hubspot_client_secret` and optionally `hubspot_client_secret_previous`.
    pub secrets: SecretSource,
    /// The public scheme and host HubSpot calls (`https://hooks.example.com`), when it differs
    /// from what API Gateway reports (a custom domain with a path mapping).
    pub public_base_url: Option<String>,
    pub max_body_bytes: usize,
    /// The state table, where the receiver remembers the deliveries it enqueued.
    pub table: String,
    /// How long a delivery is remembered: HubSpot retries for up to about three days.
    pub delivery_horizon: Duration,
}

impl ReceiverConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            customer_queue_url: env.required("PUENTE_CUSTOMER_QUEUE_URL")?,
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
}

impl CustomerSyncConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let default_country = match env.or("PUENTE_DEFAULT_COUNTRY", "CO").as_str() {
            "none" | "NONE" => None,
            code => Some(Country::parse(code).ok_or(ConfigError::Invalid {
                name: "PUENTE_DEFAULT_COUNTRY",
                detail: "is not an ISO 3166-1 alpha-2 code".into(),
            })?),
        };
        Ok(Self {
            table: env.required("PUENTE_TABLE")?,
            queue_url: env.required("PUENTE_CUSTOMER_QUEUE_URL")?,
            dead_letter_url: env.required("PUENTE_CUSTOMER_DLQ_URL")?,
            secrets: SecretSource::from_env(env, "PUENTE_CONNECTOR_SECRET_ID"),
            hubspot: HubSpotConfig {
                base_url: env.url_or("HUBSPOT_BASE_URL", Some("https://api.hubapi.com"))?,
                tax_id_property: env.or("HUBSPOT_TAX_ID_PROPERTY", "nit"),
                email_property: env.or("HUBSPOT_EMAIL_PROPERTY", "email"),
            },
            odoo: OdooConfig {
                url: env.url_or("ODOO_URL", None)?,
                database: env.required("ODOO_DB")?,
                username: env.required("ODOO_USERNAME")?,
            },
            odoo_auth: env.parse_or("ODOO_AUTH", OdooAuth::ApiKey)?,
            rules: CustomerRules {
                default_country,
                require_tax_id: env.parse_or("PUENTE_REQUIRE_TAX_ID", false)?,
            },
            http_timeout: env.seconds_or("PUENTE_HTTP_TIMEOUT_SECONDS", 10)?,
            lease_margin: env.seconds_or("PUENTE_LEASE_MARGIN_SECONDS", 30)?,
            retry: RetryPolicy {
                base: env.seconds_or("PUENTE_RETRY_BASE_SECONDS", 10)?,
                max: env.seconds_or("PUENTE_RETRY_MAX_SECONDS", 900)?,
            },
            metrics_namespace: env.or(
                "PUENTE_METRICS_NAMESPACE",
                crate::telemetry::DEFAULT_NAMESPACE,
            ),
            ledger_retention: env
                .parse_or::<u64>("PUENTE_LEDGER_RETENTION_DAYS", 30)
                .map(|days| Duration::from_secs(days * 24 * 60 * 60))?,
        })
    }
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
}
