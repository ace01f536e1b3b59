//! Change events: the thin notice that something changed in a source system. The event carries
//! no record data; workers fetch the current state, so duplicates and reordering are harmless.

use crate::domain::{FieldError, Rejection};
use serde::{Deserialize, Serialize};

/// What kind of record changed, which decides the flow (and queue) that handles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Customer,
    Contact,
    Deal,
    Product,
    /// An ERP invoice (its payment status changed).
    Invoice,
    Other,
}

/// The `subscription_type` of a repair the reconciler enqueued: the record differs from its
/// counterpart although no change of it is pending (a lost webhook, an edit made while the
/// integration was down). The worker mirrors it even when it looks like our own write.
pub const REPAIR: &str = "puente.repair";

/// One change in one record, as queued for a worker (the SQS message body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// The system the change happened in (a connector's system name).
    pub source: String,
    pub entity: Entity,
    /// The source's own name for the kind of change (e.g. `company.propertyChange`).
    pub subscription_type: String,
    pub object_id: String,
    pub event_id: String,
    /// The source account (HubSpot portal id, Odoo database, ...).
    pub account_id: String,
    /// When the change happened in the source, epoch milliseconds.
    pub occurred_at_ms: i64,
    /// Who or what made the change in the source, when it says.
    pub change_source: Option<String>,
    /// For a merge: the records merged into `object_id`, which no longer exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_ids: Vec<String>,
}

impl ChangeEvent {
    /// The ledger key for applying this change: flow, source, record and the change's time.
    /// Several notifications of one save (same record, same instant) collapse into one sync,
    /// which is right because the worker reads the record's current state anyway. A repair's
    /// key ends in `#repair`, so it never collides with the key of a change already applied.
    ///
    /// A change without a usable key is refused, never processed unkeyed: without a key a
    /// redelivery could apply it twice.
    pub fn business_key(&self, flow: &str) -> Result<String, Rejection> {
        let mut missing = Vec::new();
        let mut part = |field: &str, value: &str| {
            if value.trim().is_empty() {
                missing.push(FieldError::new(field, "is empty"));
            } else if value.contains('#') {
                missing.push(FieldError::new(field, "must not contain '#'"));
            }
        };
        part("source", &self.source);
        part("object_id", &self.object_id);
        if self.occurred_at_ms <= 0 {
            missing.push(FieldError::new(
                "occurred_at_ms",
                "must be a positive epoch time",
            ));
        }
        if !missing.is_empty() {
            return Err(Rejection(missing));
        }
        let repair = if self.is_repair() { "#repair" } else { "" };
        Ok(format!(
            "{flow}#{}#{}#{}{repair}",
            self.source, self.object_id, self.occurred_at_ms
        ))
    }

    /// Whether the reconciler enqueued this change to repair a difference it found.
    pub fn is_repair(&self) -> bool {
        self.subscription_type == REPAIR
    }

    /// What must be equal for two deliveries under one business key to be the same change,
    /// besides the key itself: the record kind and the source account. Event ids, subscription
    /// types and change sources differ between the notifications of one save, so they are left
    /// out.
    pub fn payload_identity(&self) -> [&str; 2] {
        let entity = match self.entity {
            Entity::Customer => "customer",
            Entity::Contact => "contact",
            Entity::Deal => "deal",
            Entity::Product => "product",
            Entity::Invoice => "invoice",
            Entity::Other => "other",
        };
        [entity, &self.account_id]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change() -> ChangeEvent {
        ChangeEvent {
            source: "hubspot".into(),
            entity: Entity::Customer,
            subscription_type: "company.creation".into(),
            object_id: "901".into(),
            event_id: "1".into(),
            account_id: "62515".into(),
            occurred_at_ms: 1_704_067_199_000,
            change_source: None,
            merged_ids: Vec::new(),
        }
    }

    #[test]
    fn a_complete_change_has_its_business_key() {
        assert_eq!(
            change().business_key("customer").as_deref(),
            Ok("customer#hubspot#901#1704067199000")
        );
    }

    #[test]
    fn a_repair_has_a_key_of_its_own() {
        let mut repair = change();
        repair.subscription_type = REPAIR.into();
        assert_eq!(
            repair.business_key("customer").as_deref(),
            Ok("customer#hubspot#901#1704067199000#repair")
        );
    }

    #[test]
    fn a_change_without_a_usable_key_is_refused_field_by_field() {
        let mut unkeyed = change();
        unkeyed.object_id = "9#01".into();
        unkeyed.occurred_at_ms = 0;
        let rejection = unkeyed.business_key("customer").expect_err("no key");
        let fields: Vec<&str> = rejection
            .fields()
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["object_id", "occurred_at_ms"]);
    }

    #[test]
    fn notifications_of_one_save_share_their_payload_identity() {
        let mut property_change = change();
        property_change.subscription_type = "company.propertyChange".into();
        property_change.event_id = "2".into();
        assert_eq!(
            property_change.payload_identity(),
            change().payload_identity()
        );
        let mut other_portal = change();
        other_portal.account_id = "99999".into();
        assert_ne!(other_portal.payload_identity(), change().payload_identity());
    }
}
