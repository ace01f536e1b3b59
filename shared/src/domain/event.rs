//! Change events: the thin notice that something changed in a source system. The event carries
//! no record data; workers fetch the current state, so duplicates and reordering are harmless.

use serde::{Deserialize, Serialize};

/// What kind of record changed, which decides the flow (and queue) that handles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Customer,
    Contact,
    Deal,
    Product,
    Other,
}

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
}

impl ChangeEvent {
    /// The ledger key for applying this change: flow, source, record and the change's time.
    /// Several notifications of one save (same record, same instant) collapse into one sync,
    /// which is right because the worker reads the record's current state anyway.
    pub fn business_key(&self, flow: &str) -> String {
        format!(
            "{flow}#{}#{}#{}",
            self.source, self.object_id, self.occurred_at_ms
        )
    }
}
