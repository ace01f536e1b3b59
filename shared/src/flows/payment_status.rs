//! Payment status, ERP to CRM: when an invoice changes in the ERP (a payment, a partial payment,
//! an overpayment, a credit note), the deal it was created for shows what was invoiced, paid and
//! outstanding, its due date, payment state and whether it is overdue.
//!
//! The change event is only a notice: the flow reads the invoice's current state, so late,
//! duplicate or out-of-order notices write the same, current, status. Changes of one invoice
//! are applied one at a time, under its record lock, so an older read never overwrites a newer
//! one. Invoices without our reference (made by hand in the ERP) are not ours and change nothing.

use crate::domain::datetime::{Date, Timestamp, ZoneOffset};
use crate::domain::{ChangeEvent, EntityRef, System};
use crate::error::SyncError;
use crate::flows::{Failed, LEDGER, Run, at, once_under_lock, today};
use crate::mapping::customer::external_reference;
use crate::ports::{DealSource, DocumentState, InvoiceStatusSource, Lease, Ledger, Links};
use std::time::Duration;

/// The flow's name in ledger keys, record locks, links and logs.
pub const FLOW: &str = "payments";

/// What one invoice change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// The deal now shows the invoice's status.
    Updated {
        deal_id: String,
    },
    /// The invoice is a draft or cancelled: the deal keeps what it shows.
    NotPosted,
    /// Not an invoice created by puente (no reference of ours), or not a customer invoice.
    NotOurs,
    Duplicate,
}

impl Shown {
    pub fn as_str(&self) -> &'static str {
        match self {
            Shown::Updated { .. } => "updated",
            Shown::NotPosted => "not_posted",
            Shown::NotOurs => "not_ours",
            Shown::Duplicate => crate::lambda::sqs_batch::DUPLICATE,
        }
    }
}

/// The ports the flow runs with, built once per process.
#[derive(Debug)]
pub struct PaymentStatus<'a, L, K, I, D> {
    pub ledger: &'a L,
    pub links: &'a K,
    pub invoices: &'a I,
    pub deals: &'a D,
    /// The company's offset, which decides what "today" is for the overdue flag.
    pub offset: ZoneOffset,
}

impl<L, K, I, D> PaymentStatus<'_, L, K, I, D>
where
    L: Ledger,
    K: Links,
    I: InvoiceStatusSource,
    D: DealSource,
{
    /// Shows one invoice change on its deal, exactly once per change, at `now`.
    pub async fn sync(
        &self,
        event: &ChangeEvent,
        lease_for: Duration,
        redriven: bool,
        now: Timestamp,
    ) -> Result<Shown, SyncError> {
        let today = today(now, self.offset);
        let run = once_under_lock(
            self.ledger,
            event,
            FLOW,
            lease_for,
            redriven,
            |lease| async move { self.apply(event, &lease, today).await },
        );
        Ok(match run.await? {
            Run::Applied(shown) => shown,
            Run::Duplicate => Shown::Duplicate,
        })
    }

    async fn apply(
        &self,
        event: &ChangeEvent,
        lease: &Lease,
        today: Date,
    ) -> Result<Shown, Failed> {
        let (erp, crm) = (self.invoices.system(), self.deals.system());
        let change = self
            .invoices
            .invoice_change(&event.object_id, today)
            .await
            .map_err(at(&erp, "read", "invoice"))?;
        let deal_id = change.as_ref().and_then(|c| {
            c.reference
                .as_deref()
                .and_then(|reference| id_in(crm, "deal", reference))
        });
        let shown = match (change, deal_id) {
            (Some(change), Some(deal_id)) => match (change.state, &change.status) {
                (DocumentState::Confirmed, Some(status)) => {
                    self.deals
                        .write_invoice_status(&deal_id, status, today)
                        .await
                        .map_err(at(&crm, "update", "deal"))?;
                    if let (Some(company), Some(balance)) = (
                        change
                            .customer
                            .as_deref()
                            .and_then(|reference| id_in(crm, "company", reference)),
                        &change.balance,
                    ) {
                        self.deals
                            .write_company_balance(&company, balance)
                            .await
                            .map_err(at(&crm, "update", "company"))?;
                    }
                    let deal = EntityRef::new(crm, &deal_id);
                    self.links
                        .link(FLOW, &EntityRef::new(erp, &change.id), &deal)
                        .await
                        .map_err(at(&LEDGER, "write", "links"))?;
                    Shown::Updated { deal_id }
                }
                _ => Shown::NotPosted,
            },
            _ => Shown::NotOurs,
        };
        let target = match &shown {
            Shown::Updated { deal_id } => deal_id.as_str(),
            _ => "",
        };
        self.ledger.complete(lease, target).await.map_err(at(
            &LEDGER,
            "complete",
            "ledger item",
        ))?;
        Ok(shown)
    }
}

/// The record id in our reference to a `kind` of the CRM (`hubspot-deal-5512` -> `5512`), when
/// it is one of ours.
pub(crate) fn id_in(crm: System, kind: &str, reference: &str) -> Option<String> {
    let prefix = external_reference(&EntityRef::new(crm, ""), kind);
    reference
        .strip_prefix(&prefix)
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_references_name_a_record() {
        let hubspot = System::named("hubspot");
        let deal = |reference| id_in(hubspot, "deal", reference);
        assert_eq!(deal("hubspot-deal-5512").as_deref(), Some("5512"));
        assert_eq!(deal("hubspot-deal-"), None);
        assert_eq!(deal("hubspot-company-901"), None);
        assert_eq!(deal("PO 4471"), None);
        assert_eq!(deal("hubspot-deal-55/12"), None);
        assert_eq!(
            id_in(hubspot, "company", "hubspot-company-901").as_deref(),
            Some("901")
        );
    }
}
