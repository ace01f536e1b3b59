//! The two systems' clients, built the way every function (and the operator command) builds
//! them: one HTTP client for both (one connection pool, the compiled-in TLS roots), the
//! HubSpot token and the Odoo API key (or password) from the connector secret.

use crate::config::{
    CONNECTOR_SECRET_KEYS, Env, HubSpotConfig, OdooAuth, OdooConfig, SecretSource,
};
use crate::connectors::hubspot::HubSpot;
use crate::connectors::odoo::Odoo;
use std::time::Duration;

/// What reaching HubSpot and Odoo takes, borrowed from a function's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Connection<'a> {
    pub secrets: &'a SecretSource,
    pub hubspot: &'a HubSpotConfig,
    pub odoo: &'a OdooConfig,
    pub odoo_auth: OdooAuth,
    pub http_timeout: Duration,
}

/// The CRM's and the ERP's clients.
#[derive(Debug)]
pub struct Systems {
    pub crm: HubSpot,
    pub erp: Odoo,
}

impl Connection<'_> {
    /// Reads the secret and builds both clients; a missing secret field fails with its name.
    pub async fn open(
        self,
        aws: &aws_config::SdkConfig,
        env: &Env,
    ) -> Result<Systems, Box<dyn std::error::Error + Send + Sync>> {
        let secret = self.secrets.load(aws, env, &CONNECTOR_SECRET_KEYS).await?;
        let id = self.secrets.describe();
        let roots = crate::tls::TrustRoots::from_env(env)?;
        let http = crate::connectors::http::client(self.http_timeout, &roots)?;
        let crm = HubSpot::new(
            http.clone(),
            self.hubspot.clone(),
            secret.require(id, "hubspot_access_token")?,
        );
        let erp = Odoo::new(
            http,
            self.odoo.clone(),
            secret.require(id, self.odoo_auth.secret_key())?,
        )
        .with_auth(self.odoo_auth);
        Ok(Systems { crm, erp })
    }
}
