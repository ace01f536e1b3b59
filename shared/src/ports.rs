//! The small capabilities flows need, named for the need and not the vendor. Connectors and the
//! AWS adapters implement them; tests of flows use tiny in-memory fakes.

use crate::domain::{Customer, EntityRef, System};
use crate::error::{ConnectorError, StoreError};
use crate::mapping::customer::CustomerFields;
use std::future::Future;
use std::time::Duration;

/// Where customers are read from (the CRM for the first flow).
pub trait CustomerSource: Sync {
    fn system(&self) -> System;
    /// The source's word for the record, used in references (`company`).
    fn record_kind(&self) -> &'static str;
    /// The record's current fields, unvalidated.
    fn fetch_customer(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<CustomerFields, ConnectorError>> + Send;
}

/// A customer as the target holds it now, found by our reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetCustomer {
    pub id: String,
    /// Whether the target's current values already equal what we would write.
    pub matches: bool,
}

/// Where customers are written (the ERP for the first flow).
pub trait CustomerSink: Sync {
    fn system(&self) -> System;
    /// Finds the record carrying our reference, archived ones included.
    fn find_customer(
        &self,
        reference: &str,
        wanted: &Customer,
    ) -> impl Future<Output = Result<Option<TargetCustomer>, ConnectorError>> + Send;
    /// Creates the record with our reference; returns its id.
    fn create_customer(
        &self,
        customer: &Customer,
        reference: &str,
    ) -> impl Future<Output = Result<String, ConnectorError>> + Send;
    fn update_customer(
        &self,
        id: &str,
        customer: &Customer,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send;
}

/// A held claim on a business key; completion and release are fenced by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub token: String,
    /// 1 for the first claim of the key, 2 for the next, ...
    pub attempt: u32,
    /// Target id recorded by an earlier attempt that got as far as APPLIED.
    pub applied_target: Option<String>,
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours until the lease runs out.
    Acquired(Lease),
    /// The key was already completed (a duplicate delivery).
    Completed { target_id: Option<String> },
    /// Another invocation holds a live lease.
    Held { remaining: Duration },
}

/// The idempotency ledger: one item per business key.
pub trait Ledger: Sync {
    fn claim(
        &self,
        key: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// Records that the side effect happened and which target record it produced.
    fn mark_applied(
        &self,
        lease: &Lease,
        target_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn complete(
        &self,
        lease: &Lease,
        target_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Gives the key back for a retry, keeping the reason.
    fn release(
        &self,
        lease: &Lease,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records a permanent failure with its reason.
    fn fail(
        &self,
        lease: &Lease,
        class: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Links between the same entity's records in two systems.
pub trait Links: Sync {
    fn link(
        &self,
        entity: &str,
        a: &EntityRef,
        b: &EntityRef,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A message to queue, with string attributes (routing and failure reasons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub body: String,
    pub attributes: Vec<(String, String)>,
}

/// Puts events on a flow's queue. `Ok` only when the queue accepted every message.
pub trait Publisher: Sync {
    fn publish(
        &self,
        queue_url: &str,
        messages: &[OutboundMessage],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What a worker does to the message it is processing besides acknowledging it.
pub trait Redelivery: Sync {
    /// Hides the message for `delay` so its next delivery is the retry.
    fn delay(
        &self,
        receipt_handle: &str,
        delay: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Moves the message to the dead-letter queue with the reason as attributes.
    fn dead_letter(
        &self,
        message: &OutboundMessage,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
