//! HubSpot CRM v3 objects API: companies as one side of the two-way customer flow (read, find
//! by our unique reference property, create, update) and as invoicing's customer source.

use super::SYSTEM;
use super::wire::{CrmObject, DealProperties, DealRules, company_read_properties, company_writes};
use crate::config::HubSpotConfig;
use crate::connectors::http::transport_error;
use crate::domain::{CustomerKind, System};
use crate::error::ConnectorError;
use crate::mapping::customer::CustomerFields;
use crate::mapping::ownership::SyncFields;
use crate::ports::{CustomerRecord, CustomerSide, CustomerSource};

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
        // With our reference property: a company created from an ERP customer names it.
        let properties = company_read_properties(&self.config);
        let company = self.get_object("companies", id, &properties, &[]).await?;
        Ok(company.company_fields(&self.config))
    }
}

impl HubSpot {
    /// A company read with the two-way sync's properties; `None` when HubSpot has no such live
    /// company (deleted, or merged into another).
    async fn read_company(
        &self,
        key: &str,
        id_property: Option<&str>,
    ) -> Result<Option<CrmObject>, ConnectorError> {
        let properties = company_read_properties(&self.config).join(",");
        let mut url = reqwest::Url::parse(&format!(
            "{}/crm/v3/objects/companies/",
            self.config.base_url
        ))
        .map_err(|e| ConnectorError::Rejected {
            system: SYSTEM,
            detail: format!("the base URL does not parse: {e}"),
        })?;
        // The key is a numeric id or one of our references; either way it is one path segment.
        url.path_segments_mut()
            .map_err(|()| ConnectorError::Rejected {
                system: SYSTEM,
                detail: "the base URL cannot take a path".into(),
            })?
            .pop_if_empty()
            .push(key);
        url.query_pairs_mut()
            .append_pair("archived", "false")
            .append_pair("properties", &properties);
        if let Some(id_property) = id_property {
            url.query_pairs_mut().append_pair("idProperty", id_property);
        }
        let response = self
            .http
            .get(url)
            .bearer_auth(&self.access_token)
            .send()
            .await
            .map_err(|e| transport_error(SYSTEM, e))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(super::error::from_response(response).await);
        }
        response
            .json()
            .await
            .map(Some)
            .map_err(|e| transport_error(SYSTEM, e))
    }

    async fn send_properties(
        &self,
        request: reqwest::RequestBuilder,
        properties: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Result<CrmObject, reqwest::StatusCode>, ConnectorError> {
        let response = request
            .bearer_auth(&self.access_token)
            .json(&serde_json::json!({ "properties": properties }))
            .send()
            .await
            .map_err(|e| transport_error(SYSTEM, e))?;
        if response.status() == reqwest::StatusCode::CONFLICT {
            return Ok(Err(response.status()));
        }
        if !response.status().is_success() {
            return Err(super::error::from_response(response).await);
        }
        response
            .json()
            .await
            .map(Ok)
            .map_err(|e| transport_error(SYSTEM, e))
    }
}

impl CustomerSide for HubSpot {
    fn system(&self) -> System {
        SYSTEM
    }

    fn record_kind(&self) -> &'static str {
        "company"
    }

    async fn read_record(&self, id: &str) -> Result<Option<CustomerRecord>, ConnectorError> {
        let id = numeric("companies", id)?;
        let Some(company) = self.read_company(id, None).await? else {
            return Ok(None);
        };
        company
            .company_record(&self.config)
            .map(Some)
            .map_err(|e| ConnectorError::Invalid {
                system: SYSTEM,
                what: "company".into(),
                rejection: crate::domain::Rejection(vec![e]),
            })
    }

    async fn find_by_origin(&self, origin: &str) -> Result<Option<String>, ConnectorError> {
        let found = self
            .read_company(origin, Some(&self.config.erp_ref_property))
            .await?;
        Ok(found.map(|company| company.id))
    }

    async fn create_record(
        &self,
        fields: &SyncFields,
        _kind: CustomerKind,
        origin: &str,
    ) -> Result<String, ConnectorError> {
        let mut properties = company_writes(fields, &self.config);
        properties.insert(
            self.config.erp_ref_property.clone(),
            serde_json::Value::String(origin.to_owned()),
        );
        let url = format!("{}/crm/v3/objects/companies", self.config.base_url);
        match self
            .send_properties(self.http.post(url), properties)
            .await?
        {
            Ok(company) => Ok(company.id),
            // The reference property holds unique values: an earlier attempt created it.
            Err(_) => self
                .find_by_origin(origin)
                .await?
                .ok_or_else(|| ConnectorError::Rejected {
                    system: SYSTEM,
                    detail: format!(
                        "creating the company for {origin} conflicts with another company, and \
                         none carries {origin}"
                    ),
                }),
        }
    }

    async fn update_record(&self, id: &str, fields: &SyncFields) -> Result<(), ConnectorError> {
        let id = numeric("companies", id)?;
        let url = format!("{}/crm/v3/objects/companies/{id}", self.config.base_url);
        match self
            .send_properties(self.http.patch(url), company_writes(fields, &self.config))
            .await?
        {
            Ok(_) => Ok(()),
            Err(status) => Err(ConnectorError::Rejected {
                system: SYSTEM,
                detail: format!("{status}: a unique company property already holds this value"),
            }),
        }
    }
}
