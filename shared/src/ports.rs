//! The small capabilities flows need, named for the need and not the vendor. Connectors and the
//! AWS adapters implement them; tests of flows use tiny in-memory fakes.

use crate::domain::deal::DealSummary;
use crate::domain::invoice::{InvoiceLine, InvoiceTotals, SalesInvoice};
use crate::domain::payment::{CustomerBalance, InvoiceStatus};
use crate::domain::{Currency, Customer, CustomerKind, Date, EntityRef, System, Timestamp};
use crate::error::{ConnectorError, StoreError};
use crate::mapping::customer::CustomerFields;
use crate::mapping::ownership::{CustomerField, Role, SyncFields};
use std::collections::BTreeMap;
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
    /// The sink's word for the record, used in references (`partner`).
    fn record_kind(&self) -> &'static str;
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

/// A customer record as one side of the two-way customer sync holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRecord {
    pub id: String,
    /// The record's fields, unvalidated, with the reference it carries to the record on the
    /// other side it was created from (`fields.origin`).
    pub fields: CustomerFields,
    /// When anyone last wrote the record (HubSpot `hs_lastmodifieddate`, Odoo `write_date`).
    pub modified: Timestamp,
    /// Whether the record takes part in the sync at all (an ERP partner that is a customer and
    /// not a company's contact person).
    pub syncs: bool,
}

/// One side of the two-way customer sync: the CRM's companies or the ERP's customers.
pub trait CustomerSide: Sync {
    fn system(&self) -> System;
    /// The side's word for the record, used in references (`company`, `partner`).
    fn record_kind(&self) -> &'static str;
    /// The record as it is now; `None` when it no longer exists (deleted, merged away).
    fn read_record(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<CustomerRecord>, ConnectorError>> + Send;
    /// The id of the record carrying `origin` (which we wrote when we created it), archived
    /// ones included, so a retry finds what an earlier attempt created.
    fn find_by_origin(
        &self,
        origin: &str,
    ) -> impl Future<Output = Result<Option<String>, ConnectorError>> + Send;
    /// Creates a record of `kind` holding `fields` and carrying `origin`; returns its id.
    fn create_record(
        &self,
        fields: &SyncFields,
        kind: CustomerKind,
        origin: &str,
    ) -> impl Future<Output = Result<String, ConnectorError>> + Send;
    /// Writes exactly `fields` (never clears the others).
    fn update_record(
        &self,
        id: &str,
        fields: &SyncFields,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send;
}

/// Customers a system wrote since a position, oldest first: the polling fallback of its
/// webhook.
pub trait CustomerFeed: Sync {
    fn changed_customers(
        &self,
        after: &Written,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Written>, ConnectorError>> + Send;
}

/// A customer record as a listing or a batch read returns it: usable, or why it is not (one bad
/// record never stops a page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The record's id and last write, its position in a changed-since listing.
    pub written: Written,
    pub record: Result<CustomerRecord, crate::domain::Rejection>,
}

/// One side of the customer sync, read in bulk: what the reconciler compares.
pub trait CustomerListing: CustomerSide {
    /// Customers written after `after` (by last write, then id), oldest first, at most `limit`.
    fn list_changed(
        &self,
        after: &Written,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Listed>, ConnectorError>> + Send;
    /// The records with these ids that exist now; missing ones are left out.
    fn read_many(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<Listed>, ConnectorError>> + Send;
}

/// A product of the ERP's catalogue as a changed-since listing returns it: its position, and
/// the product, or why it cannot be shown in the CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedProduct {
    pub written: Written,
    pub product: Result<crate::domain::product::Product, crate::domain::Rejection>,
}

/// The ERP's product catalogue, the system of record for products and prices.
pub trait ProductCatalogue: Sync {
    fn system(&self) -> System;
    /// Products written after `after` (by last write, then id), archived ones included, oldest
    /// first, at most `limit`.
    fn list_changed_products(
        &self,
        after: &Written,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ListedProduct>, ConnectorError>> + Send;
}

/// A product as the CRM's product library shows it: the values the catalogue decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryProduct {
    pub name: String,
    pub sku: String,
    /// The unit price in the CRM's currency; `None` when it is empty or not an amount.
    pub price: Option<crate::domain::money::Money>,
}

/// The CRM's product library, kept by the reconciler from the ERP's catalogue. Each product
/// carries the reference of the ERP product it shows (`odoo-product-311`) in a property with
/// unique values, the create-once key.
pub trait ProductLibrary: Sync {
    fn system(&self) -> System;
    /// The live products carrying these references: (reference, product id, what it shows),
    /// their prices read in `currency`, the library's.
    fn find_products(
        &self,
        origins: &[String],
        currency: Currency,
    ) -> impl Future<Output = Result<Vec<(String, String, LibraryProduct)>, ConnectorError>> + Send;
    /// Creates the product carrying `origin`; when one already carries it (an earlier attempt,
    /// or another run), that one is updated instead. Returns its id.
    fn create_product(
        &self,
        origin: &str,
        product: &LibraryProduct,
    ) -> impl Future<Output = Result<String, ConnectorError>> + Send;
    fn update_product(
        &self,
        id: &str,
        product: &LibraryProduct,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send;
    /// Archives the product (it leaves the library); one already gone is not an error.
    fn archive_product(&self, id: &str) -> impl Future<Output = Result<(), ConnectorError>> + Send;
}

/// What puente remembers per side of a linked customer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideState {
    /// Digest of the fields this side should hold after our last write to it (`SyncFields::digest`).
    pub written: Option<String>,
    /// When we last wrote to this side, epoch milliseconds (0: never).
    pub written_at_ms: i64,
    /// The side's `modified` time of the last version of it we applied, epoch milliseconds.
    pub version_ms: i64,
}

/// A customer linked in both systems, with the state that keeps the two-way sync loop-free:
/// the field values both sides agreed on (hashes only), what we last wrote to each side, the
/// versions applied, the circuit breaker's count and a quarantine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerLink {
    pub crm_id: String,
    pub erp_id: String,
    /// Per field, the hash of the value both sides held after the last sync.
    pub agreed: BTreeMap<CustomerField, String>,
    pub crm: SideState,
    pub erp: SideState,
    /// Start of the breaker's window (epoch ms) and the writes counted in it.
    pub window_started_ms: i64,
    pub window_writes: u32,
    /// Set while the customer is quarantined: no change of it is synced until an operator
    /// releases it.
    pub quarantine: Option<Quarantine>,
}

impl CustomerLink {
    pub fn side(&self, role: Role) -> &SideState {
        match role {
            Role::Crm => &self.crm,
            Role::Erp => &self.erp,
        }
    }

    pub fn side_mut(&mut self, role: Role) -> &mut SideState {
        match role {
            Role::Crm => &mut self.crm,
            Role::Erp => &mut self.erp,
        }
    }

    pub fn id(&self, role: Role) -> &str {
        match role {
            Role::Crm => &self.crm_id,
            Role::Erp => &self.erp_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    pub at_ms: i64,
    pub reason: String,
}

/// Something about a linked customer that a person should know: a conflict, a deletion or a
/// merge in one system (never propagated as a delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerNotice {
    /// `conflict`, `deleted`, `merged`.
    pub kind: &'static str,
    /// The record it is about, as `system#id`.
    pub record: String,
    /// What identifies it, so the same notice is recorded once (a conflict's field and the two
    /// value hashes, a deletion's event).
    pub identity: String,
    /// For a person: what happened, without personal data.
    pub detail: String,
}

/// A change's hold on one customer record's link item (see `CustomerLinks::lock`), fenced by
/// its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkLock {
    pub role: Role,
    pub id: String,
    pub token: String,
    /// The item held a link or a pointer before the lock; otherwise it exists only for the
    /// lock and goes when the lock is given back.
    pub kept: bool,
}

/// What a lock found in the record's link item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    pub lock: LinkLock,
    /// The pair's state, when a CRM record is linked.
    pub link: Option<CustomerLink>,
    /// The CRM record an ERP record's item points to, when it is linked.
    pub points_to: Option<String>,
}

/// Where linked customers' state is kept. A linked pair's state lives in one item, its CRM
/// record's, which is also the pair's lock: a change of either record takes it, and gets the
/// state in the same write. An ERP record's item points at its CRM record.
pub trait CustomerLinks: Sync {
    /// The link of record `id` of the `role` side, if it is linked.
    fn find_link(
        &self,
        role: Role,
        id: &str,
    ) -> impl Future<Output = Result<Option<CustomerLink>, StoreError>> + Send;
    /// The CRM record that ERP record `erp_id` is linked to.
    fn linked_crm_id(
        &self,
        erp_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Locks the item of record `id` of the `role` side for `lease` and returns what it holds,
    /// in one conditional write. `Err` with how long it may still be held while another change
    /// holds it.
    fn lock(
        &self,
        role: Role,
        id: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<Result<Locked, Duration>, StoreError>> + Send;
    /// Gives a lock back without writing anything else (only while it is still ours).
    fn unlock(&self, lock: &LinkLock) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Writes the link's state, and the pointer from the ERP side when `new`. Writing an item
    /// releases the lock in `held` that is on it; an item locked by another change is not
    /// written (`StoreError::LeaseLost`).
    fn save_link(
        &self,
        link: &CustomerLink,
        new: bool,
        held: &[LinkLock],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Moves the link of ERP record `link.erp_id` from CRM record `from_crm_id` to
    /// `link.crm_id` (a CRM merge kept another record): writes the new link and pointer and
    /// removes the old one.
    fn repoint_link(
        &self,
        link: &CustomerLink,
        from_crm_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records `notice` once; `true` when it was new.
    fn record_notice(
        &self,
        notice: &CustomerNotice,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A deal as invoicing needs it: validated, with its currency and its line items in that
/// currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    pub summary: DealSummary,
    pub currency: Currency,
    pub lines: Vec<InvoiceLine>,
}

/// Where deals are read from and where the ERP document's number and status are shown (the CRM).
pub trait DealSource: Sync {
    fn system(&self) -> System;
    /// The deal with its company and line items. A deal that does not validate is
    /// `ConnectorError::Invalid` with every field that failed.
    fn fetch_deal(&self, id: &str) -> impl Future<Output = Result<Deal, ConnectorError>> + Send;
    /// Shows the ERP document's number on the deal (a sales order, or an invoice still in
    /// draft, has no payment status yet).
    fn write_document_number(
        &self,
        deal_id: &str,
        number: &str,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send;
    /// Shows what a company owes across its invoices on the company.
    fn write_company_balance(
        &self,
        company_id: &str,
        balance: &CustomerBalance,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send;
    /// Shows an invoice's number, amounts, due date, payment state and overdue flag on `today`.
    fn write_invoice_status(
        &self,
        deal_id: &str,
        status: &InvoiceStatus,
        today: Date,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send;
}

/// Where an ERP document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentState {
    /// Created, still editable, no number for an invoice.
    Draft,
    /// Posted (an invoice) or confirmed (a sales order).
    Confirmed,
    Cancelled,
}

/// A sales document (invoice or order) as the ERP holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpDocument {
    pub id: String,
    /// The ERP's number (`INV/2026/00001`, `S00042`); `None` while an invoice is a draft.
    pub number: Option<String>,
    pub state: DocumentState,
    /// What the ERP computed.
    pub totals: InvoiceTotals,
    pub line_count: usize,
}

/// Where sales documents are created (the ERP): an invoice or a sales order, by configuration.
pub trait InvoiceSink: Sync {
    fn system(&self) -> System;
    /// The ERP's word for the document (`invoice`, `sales order`), for steps and logs.
    fn document_kind(&self) -> &'static str;
    /// The document carrying our reference, cancelled ones included. More than one is an
    /// error for a person: the reference is our create-once key.
    fn find_document(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<ErpDocument>, ConnectorError>> + Send;
    /// Creates the document as a draft carrying `invoice.reference`; returns its id.
    fn create_document(
        &self,
        invoice: &SalesInvoice,
    ) -> impl Future<Output = Result<String, ConnectorError>> + Send;
    /// Posts the invoice (or confirms the order), which gives it its number.
    fn confirm_document(&self, id: &str)
    -> impl Future<Output = Result<(), ConnectorError>> + Send;
    fn read_document(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ErpDocument, ConnectorError>> + Send;
    /// A posted invoice's payment status; `None` for a document that has none (a sales order).
    fn invoice_status(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<InvoiceStatus>, ConnectorError>> + Send;
}

/// A customer invoice as the ERP holds it now, for the CRM's payment status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceChange {
    /// The invoice's id (a credit note's change is the change of the invoice it reverses).
    pub id: String,
    /// The reference the invoice carries (`hubspot-deal-5512`), when any.
    pub reference: Option<String>,
    pub state: DocumentState,
    /// The payment status of a posted invoice; `None` for a draft or a cancelled one.
    pub status: Option<InvoiceStatus>,
    /// The reference its customer carries (`hubspot-company-901`), when any.
    pub customer: Option<String>,
    /// What that customer owes across its posted invoices, on the day asked.
    pub balance: Option<CustomerBalance>,
}

/// A record's change, as a changed-since query lists it: the id and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub id: String,
    pub at: crate::domain::Timestamp,
}

/// Where invoices' payment status is read (the ERP).
pub trait InvoiceStatusSource: Sync {
    fn system(&self) -> System;
    /// The customer invoice behind record `id` (following a credit note to its invoice), or
    /// `None` when the record is not a customer invoice or credit note (a vendor bill, a journal
    /// entry).
    fn invoice_change(
        &self,
        id: &str,
        today: Date,
    ) -> impl Future<Output = Result<Option<InvoiceChange>, ConnectorError>> + Send;
    /// Posted customer invoices and credit notes written after `after` (a time and the last id
    /// seen at that time), oldest first, at most `limit`: the polling fallback of the webhook.
    fn changed_invoices(
        &self,
        after: &Written,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Written>, ConnectorError>> + Send;
}

/// What a deal shows of its invoice, as the payment-status flow wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownStatus {
    pub status: InvoiceStatus,
    /// The overdue flag as written (it is derived on the day it was written, so it can go
    /// stale while nothing else changes).
    pub overdue: bool,
}

/// A deal as the reconciler lists it: its place in a changed-since listing, its stage, and what
/// it shows of its invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedDeal {
    pub written: Written,
    pub stage: String,
    /// `None` when the deal shows no payment status (not invoiced yet, or only a document's
    /// number); a rejection naming the properties that do not read as one.
    pub shown: Option<Result<ShownStatus, crate::domain::Rejection>>,
}

/// The CRM's deals, read in bulk: what the invoice reconciliation compares.
pub trait DealListing: Sync {
    fn system(&self) -> System;
    /// Deals written after `after` (by last write, then id), oldest first, at most about
    /// `limit`.
    fn list_changed_deals(
        &self,
        after: &Written,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ListedDeal>, ConnectorError>> + Send;
    /// The deals with these ids that exist now; missing ones are left out.
    fn read_deals(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<ListedDeal>, ConnectorError>> + Send;
}

/// A sales document as the reconciler reads it in bulk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedDocument {
    pub id: String,
    /// When it was last written.
    pub modified: crate::domain::Timestamp,
    /// The reference it carries (`hubspot-deal-5512`), when any.
    pub reference: Option<String>,
    /// Where it stands and, for a posted invoice, its payment status (`None` for a draft, a
    /// cancelled invoice or a sales order); a rejection naming the fields that do not read.
    pub read: Result<(DocumentState, Option<InvoiceStatus>), crate::domain::Rejection>,
}

/// The ERP's sales documents, read in bulk: what the invoice reconciliation compares.
pub trait DocumentListing: InvoiceStatusSource {
    /// Every document carrying one of `references`, cancelled ones included (more than one
    /// per reference is for a person to sort out), in one batch.
    fn find_documents(
        &self,
        references: &[String],
    ) -> impl Future<Output = Result<Vec<ListedDocument>, ConnectorError>> + Send;
    /// The customer invoices behind these records (a credit note stands for the invoice it
    /// reverses), each once; records that are not customer invoices are left out.
    fn read_invoices(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<ListedDocument>, ConnectorError>> + Send;
}

/// Named positions of pollers (the last change a poll has handed on).
pub trait Cursors: Sync {
    fn read(&self, name: &str) -> impl Future<Output = Result<Option<Written>, StoreError>> + Send;
    /// Moves the cursor forward to `to`; never backwards, so two overlapping polls cannot undo
    /// each other.
    fn advance(
        &self,
        name: &str,
        to: &Written,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Forgets the cursor (a finished sweep starts from the beginning next time).
    fn clear(&self, name: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
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
    /// When an earlier attempt first failed (epoch seconds), kept across claims.
    pub first_failure_at: Option<i64>,
}

/// Why an attempt failed, as the ledger keeps it per business key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureNote<'a> {
    /// The error kind for a retry (`transient`, `throttled`), the failure class for a rejection.
    pub class: &'a str,
    pub reason: &'a str,
    /// The step and system that failed (`odoo create customer`).
    pub step: &'a str,
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours until the lease runs out.
    Acquired(Lease),
    /// The key was already completed (a duplicate delivery).
    Completed { target_id: Option<String> },
    /// The key failed for good and the claim was not an operator's redrive: the change waits in
    /// the dead-letter queue. The failure's class and reason, as recorded.
    Failed { class: String, reason: String },
    /// Another invocation holds a live lease.
    Held { remaining: Duration },
    /// The key was claimed before with a different payload: the same key must mean the same
    /// change, so this is for a person to look at, never applied.
    Conflict { stored_digest: String },
}

/// The idempotency ledger: one item per business key, holding a digest of the payload it was
/// first claimed with.
pub trait Ledger: Sync {
    /// Claims `key` for this attempt. A FAILED key is claimed again only when `retry_failed`
    /// (an operator's redrive); a permanent failure is never retried by a plain redelivery.
    fn claim(
        &self,
        key: &str,
        digest: &str,
        lease: Duration,
        retry_failed: bool,
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
    /// Gives the key back for a retry, recording the failure.
    fn release(
        &self,
        lease: &Lease,
        failure: &FailureNote<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records a permanent failure.
    fn fail(
        &self,
        lease: &Lease,
        failure: &FailureNote<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Takes the lock on one source record, so that two changes of the same record (different
    /// business keys) are never applied at once: without it, two workers could both find no
    /// target record and both create one, or write an older read over a newer one. `None` when
    /// another invocation holds it, with how long it may still hold it.
    fn lock_record(
        &self,
        record: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<Result<Lease, Duration>, StoreError>> + Send;
    /// Gives the record lock back (only while it is still ours).
    fn unlock_record(&self, lock: &Lease) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Counts a delivery of the key with a different payload, without touching its state.
    fn record_conflict(
        &self,
        key: &str,
        digest: &str,
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

/// The webhook receiver's memory of the deliveries it already enqueued, kept for the sender's
/// whole retry horizon, so a replay enqueues nothing.
pub trait DeliveryLog: Sync {
    /// Which of `ids` were enqueued before.
    fn seen(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<std::collections::HashSet<String>, StoreError>> + Send;
    /// Remembers `ids` as enqueued.
    fn remember(&self, ids: &[String]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// No log (`None`, turned off by configuration): nothing was seen, nothing is remembered, and a
/// replay reaches the workers, whose ledger applies each change once.
impl<D: DeliveryLog> DeliveryLog for Option<D> {
    async fn seen(&self, ids: &[String]) -> Result<std::collections::HashSet<String>, StoreError> {
        match self {
            Some(log) => log.seen(ids).await,
            None => Ok(std::collections::HashSet::new()),
        }
    }

    async fn remember(&self, ids: &[String]) -> Result<(), StoreError> {
        match self {
            Some(log) => log.remember(ids).await,
            None => Ok(()),
        }
    }
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

/// Where the reconciler keeps its drift reports for the operator command.
pub trait DriftReports: Sync {
    fn save(
        &self,
        report: &crate::flows::reconcile::report::DriftReport,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The newest reports first, at most `limit`.
    fn latest(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<crate::flows::reconcile::report::DriftReport>, StoreError>> + Send;
}

/// A ledger item whose holder died: IN_PROGRESS (or APPLIED) with a lease that ran out, and
/// no delivery came to take it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckItem {
    pub key: String,
    /// The payload digest it was claimed with (a takeover must present the same).
    pub digest: String,
    /// The target id recorded when it got as far as APPLIED.
    pub target_id: Option<String>,
    /// When its lease ran out, epoch seconds.
    pub lease_until: i64,
}

/// Finds stuck ledger items, a page at a time.
pub trait StuckLedger: Sync {
    /// Items whose lease ran out before `before` (epoch seconds), from the page position `from`
    /// (`None`: the beginning), reading about `limit` items; with the next page's position,
    /// `None` at the end.
    fn stuck(
        &self,
        before: i64,
        from: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<StuckItem>, Option<String>), StoreError>> + Send;
}
