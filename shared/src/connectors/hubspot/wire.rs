//! HubSpot's JSON shapes: webhook events and CRM v3 objects.

use crate::config::HubSpotConfig;
use crate::domain::{ChangeEvent, CustomerKind, Entity};
use crate::mapping::customer::CustomerFields;
use serde::Deserialize;
use std::collections::BTreeMap;

/// HubSpot sends ids as JSON numbers; some tools replay them as strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Id {
    Number(u64),
    Text(String),
}

impl Id {
    fn into_string(self) -> String {
        match self {
            Id::Number(n) => n.to_string(),
            Id::Text(s) => s,
        }
    }
}

/// One event of a webhook delivery (the body is a JSON array of these).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    pub event_id: Id,
    pub subscription_id: Option<Id>,
    pub portal_id: Id,
    pub app_id: Option<Id>,
    pub occurred_at: i64,
    pub subscription_type: String,
    pub attempt_number: Option<u32>,
    pub object_id: Id,
    pub change_source: Option<String>,
    pub change_flag: Option<String>,
    pub source_id: Option<String>,
    pub property_name: Option<String>,
}

/// The flow an event's subscription type belongs to (`company.propertyChange` -> customer).
pub fn entity_of(subscription_type: &str) -> Entity {
    match subscription_type.split_once('.').map(|(object, _)| object) {
        Some("company") => Entity::Customer,
        Some("contact") => Entity::Contact,
        Some("deal") => Entity::Deal,
        Some("product") => Entity::Product,
        _ => Entity::Other,
    }
}

impl From<WebhookEvent> for ChangeEvent {
    fn from(e: WebhookEvent) -> Self {
        ChangeEvent {
            source: super::SYSTEM.name().to_owned(),
            entity: entity_of(&e.subscription_type),
            subscription_type: e.subscription_type,
            object_id: e.object_id.into_string(),
            event_id: e.event_id.into_string(),
            account_id: e.portal_id.into_string(),
            occurred_at_ms: e.occurred_at,
            change_source: e.change_source,
        }
    }
}

/// A CRM v3 object: property values come back as strings or null.
#[derive(Debug, Clone, Deserialize)]
pub struct CrmObject {
    pub id: String,
    #[serde(default)]
    pub properties: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub archived: bool,
}

/// Standard company properties the customer flow reads.
pub const COMPANY_PROPERTIES: [&str; 5] = ["name", "phone", "address", "city", "country"];

impl CrmObject {
    fn property(&self, name: &str) -> Option<String> {
        self.properties.get(name).cloned().flatten()
    }

    /// A company's fields as the customer mapping reads them.
    pub fn company_fields(&self, config: &HubSpotConfig) -> CustomerFields {
        CustomerFields {
            kind: Some(CustomerKind::Company),
            name: self.property("name"),
            tax_id: self.property(&config.tax_id_property),
            email: self.property(&config.email_property),
            phone: self.property("phone"),
            street: self.property("address"),
            city: self.property("city"),
            country: self.property("country"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_company_event_becomes_a_customer_change() {
        let json = r#"{"eventId":100,"subscriptionId":2001,"portalId":62515,"appId":54321,
            "occurredAt":1704067199000,"subscriptionType":"company.propertyChange",
            "attemptNumber":0,"objectId":901,"propertyName":"name","propertyValue":"X",
            "changeSource":"CRM_UI"}"#;
        let event: ChangeEvent = serde_json::from_str::<WebhookEvent>(json)
            .expect("parse")
            .into();
        assert_eq!(event.entity, Entity::Customer);
        assert_eq!(event.object_id, "901");
        assert_eq!(event.event_id, "100");
        assert_eq!(event.account_id, "62515");
        assert_eq!(event.occurred_at_ms, 1_704_067_199_000);
        assert_eq!(event.change_source.as_deref(), Some("CRM_UI"));
        assert_eq!(event.source, "hubspot");
    }

    #[test]
    fn subscription_types_route_by_object() {
        assert_eq!(entity_of("company.creation"), Entity::Customer);
        assert_eq!(entity_of("deal.propertyChange"), Entity::Deal);
        assert_eq!(entity_of("object.creation"), Entity::Other);
        assert_eq!(entity_of("garbage"), Entity::Other);
    }
}
