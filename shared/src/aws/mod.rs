//! Adapters to puente's own AWS state: the DynamoDB ledger and links, SQS queues and Secrets
//! Manager. Every endpoint comes from the standard SDK configuration, so `AWS_ENDPOINT_URL`
//! points the same binaries at a local emulator.

pub mod cursors;
pub mod customer_links;
pub mod deliveries;
pub mod ledger;
pub mod links;
pub mod queue;
pub mod reports;
pub mod secrets;

use std::time::{SystemTime, UNIX_EPOCH};

/// Loads the SDK configuration once (region, credentials, endpoint) from the environment, with
/// an HTTPS client that trusts the compiled-in roots (`crate::tls`).
pub async fn sdk_config(
    env: &crate::config::Env,
) -> Result<aws_config::SdkConfig, crate::config::ConfigError> {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    Ok(crate::tls::TrustRoots::from_env(env)?
        .configure_sdk(loader)?
        .load()
        .await)
}

/// Seconds since the epoch, the unit of `lease_until` and the TTL attribute.
pub(crate) fn epoch_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
