//! HubSpot CRM v3 objects API, as the customer flow's source.

use super::SYSTEM;
use super::wire::{COMPANY_PROPERTIES, CrmObject, DealProperties, DealRules};
use crate::config::HubSpotConfig;
use crate::connectors::http::transport_error;
use crate::domain::System;
use crate::error::ConnectorError;
use crate::mapping::customer::CustomerFields;
use crate::ports::CustomerSource;

pub struct HubSpot {
    pub(super) http: reqwest::Client,
    pub(super) config: HubSpotConfig,
    pub(super) access_token: String,
    /// How deal values are read, and the deal properties that show the ERP document.
    pub(super) deal_rules: DealRules,
    pub(super) deal_properties: DealProperties,
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
            deal_rules: DealRules::default(),
            deal_properties: DealProperties::default(),
        }
    }

    /// Sets how deals are read and which deal properties show the ERP document.
    pub fn with_deals(mut self, rules: DealRules, properties: DealProperties) -> Self {
        self.deal_rules = rules;
        self.deal_properties = properties;
        self
    }

    pub(super) async fn get_object(
        &self,
        object_type: &str,
        id: &str,
        properties: &[&str],
        associations: &[&str],
    ) -> Result<CrmObject, ConnectorError> {
        let id = numeric(object_type, id)?;
        let mut url = format!(
            "{}/crm/v3/objects/{object_type}/{id}?archived=false&properties={}",
            self.config.base_url,
            properties.join(",")
        );
        if !associations.is_empty() {
            url.push_str("&associations=");
            url.push_str(&associations.join(","));
        }
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

/// Ids come from webhooks: only digits may reach a URL path.
pub(super) fn numeric<'a>(object_type: &str, id: &'a str) -> Result<&'a str, ConnectorError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConnectorError::Rejected {
            system: SYSTEM,
            detail: format!("{object_type} id is not numeric"),
        });
    }
    Ok(id)
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
        let company = self.get_object("companies", id, &properties, &[]).await?;
        Ok(company.company_fields(&self.config))
    }
}
