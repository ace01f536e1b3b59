//! HubSpot CRM v3 objects API, as the customer flow's source.

use super::SYSTEM;
use super::wire::{COMPANY_PROPERTIES, CrmObject};
use crate::config::HubSpotConfig;
use crate::connectors::http::transport_error;
use crate::domain::System;
use crate::error::ConnectorError;
use crate::mapping::customer::CustomerFields;
use crate::ports::CustomerSource;

pub struct HubSpot {
    http: reqwest::Client,
    config: HubSpotConfig,
    access_token: String,
}

impl std::fmt::Debug for HubSpot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSpot")
            .field("base_url", &self.config.base_url)
            .finish_non_exhaustive()
    }
}

impl HubSpot {
    pub fn new(http: reqwest::Client, config: HubSpotConfig, access_token: String) -> Self {
        Self {
            http,
            config,
            access_token,
        }
    }

    async fn get_object(
        &self,
        object_type: &str,
        id: &str,
        properties: &[&str],
    ) -> Result<CrmObject, ConnectorError> {
        // Ids come from webhooks: only digits may reach the URL path.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConnectorError::Rejected {
                system: SYSTEM,
                detail: format!("{object_type} id is not numeric"),
            });
        }
        let url = format!(
            "{}/crm/v3/objects/{object_type}/{id}?archived=false&properties={}",
            self.config.base_url,
            properties.join(",")
        );
        let response = self
            .http
            .get(url)
            .bearer_auth(&self.access_token)
            .send()
            .await
            .map_err(|e| transport_error(SYSTEM, e))?;
        if !response.status().is_success() {
            return Err(super::error::from_response(response).await);
        }
        response
            .json()
            .await
            .map_err(|e| transport_error(SYSTEM, e))
    }
}

impl CustomerSource for HubSpot {
    fn system(&self) -> System {
        SYSTEM
    }

    fn record_kind(&self) -> &'static str {
        "company"
    }

    async fn fetch_customer(&self, id: &str) -> Result<CustomerFields, ConnectorError> {
        let mut properties: Vec<&str> = COMPANY_PROPERTIES.to_vec();
        properties.push(&self.config.tax_id_property);
        properties.push(&self.config.email_property);
        let company = self.get_object("companies", id, &properties).await?;
        Ok(company.company_fields(&self.config))
    }
}
