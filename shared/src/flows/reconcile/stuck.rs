//! Ledger items stuck IN_PROGRESS: a worker claimed a change and died, and no delivery of the
//! change came back to take the key over (the message was lost, or went to the DLQ through the
//! redrive policy). Their leases ran out long ago; the next delivery would take them over, but
//! none is coming.
//!
//! Each one is taken over the way any delivery takes over an expired lease (a fenced claim, so a
//! worker that picks the change up meanwhile is never overrun), its target is probed by our
//! reference (did the create happen before the worker died?), its change is put back on the
//! flow's queue as a repair, and the key is completed with what the probe found. The repair
//! goes through the flow's normal path, which finds by reference before it creates: whatever
//! the dead worker got done is finished, nothing is done twice.

use super::report::{Class, Difference, DriftReport, Pass};
use super::{Pager, Repairs};
use crate::domain::event::REPAIR;
use crate::domain::{ChangeEvent, Entity, EntityRef, System};
use crate::mapping::customer::external_reference;
use crate::ports::{
    Claim, Cursors, CustomerSide, DeliveryLog, FailureNote, InvoiceSink, Ledger, Publisher,
    StuckItem, StuckLedger,
};
use std::time::Duration;

/// How long a resolution holds the key it took over.
const LEASE: Duration = Duration::from_secs(120);

/// The name a run's `flows` selects the stuck-item pass by, and its passes are reported under.
pub const FLOW: &str = "ledger";

/// Items read per page of the ledger scan.
const PAGE: usize = 500;

/// Where each flow's changes go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queues {
    pub customer: String,
    /// `None`: stuck invoicing keys are reported, not resolved.
    pub invoicing: Option<String>,
    pub payments: Option<String>,
}

/// The change a stuck key stands for, read back from the key
/// (`{flow}#{source}#{object_id}#{occurred_at_ms}[#repair]`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyParts<'k> {
    flow: &'k str,
    source: &'k str,
    object_id: &'k str,
    occurred_at_ms: i64,
}

fn parse_key(key: &str) -> Option<KeyParts<'_>> {
    let mut parts = key.split('#');
    let parsed = KeyParts {
        flow: parts.next()?,
        source: parts.next()?,
        object_id: parts.next()?,
        occurred_at_ms: parts.next()?.parse().ok()?,
    };
    match parts.next() {
        None | Some("repair") if parts.next().is_none() => Some(parsed),
        _ => None,
    }
}

/// The ledger, the systems to probe and the queues, for resolving stuck keys.
#[derive(Debug)]
pub struct StuckWork<'a, L, C, E, I> {
    pub ledger: &'a L,
    pub crm: &'a C,
    pub erp: &'a E,
    pub invoices: &'a I,
    pub queues: &'a Queues,
    /// How long after its lease ran out a key counts as stuck (deliveries that are still
    /// coming, with their backoff, take it over first).
    pub grace: Duration,
}

impl<L, C, E, I> StuckWork<'_, L, C, E, I>
where
    L: Ledger + StuckLedger,
    C: CustomerSide,
    E: CustomerSide,
    I: InvoiceSink,
{
    /// One pass over the ledger; a failure stops it (the next run scans again).
    pub async fn run<U: Cursors, P: Publisher, D: DeliveryLog>(
        &self,
        pager: &Pager<'_, U>,
        repairs: &Repairs<'_, P, D>,
        report: &mut DriftReport,
        progress: &(dyn Fn(&Pass, bool) + Sync),
    ) {
        let mut pass = Pass {
            flow: FLOW.into(),
            system: "dynamodb".into(),
            pass: "stuck".into(),
            ..Pass::default()
        };
        let before =
            crate::domain::Timestamp::now().epoch_millis() / 1000 - self.grace.as_secs() as i64;
        let mut from = None;
        while pager.may_read() {
            let (items, next) = match self.ledger.stuck(before, from.take(), PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    pass.error = Some(format!("could not scan the ledger: {e}"));
                    break;
                }
            };
            pass.pages += 1;
            pass.records += items.len() as u64;
            for item in &items {
                if let Err(e) = self.resolve(item, pager.dry_run, repairs, report).await {
                    pass.error = Some(e);
                    break;
                }
            }
            progress(&pass, false);
            match next {
                Some(next) if pass.error.is_none() => from = Some(next),
                Some(_) => break,
                None => {
                    pass.complete = true;
                    break;
                }
            }
        }
        progress(&pass, true);
        report.passes.push(pass);
    }

    async fn resolve<P: Publisher, D: DeliveryLog>(
        &self,
        item: &StuckItem,
        dry_run: bool,
        repairs: &Repairs<'_, P, D>,
        report: &mut DriftReport,
    ) -> Result<(), String> {
        let Some(parts) = parse_key(&item.key) else {
            tracing::warn!(key = %item.key, "a stuck ledger key of an unknown shape; left alone");
            return Ok(());
        };
        let (queue, entity) = match parts.flow {
            crate::flows::sync_customer::FLOW => (Some(&self.queues.customer), Entity::Customer),
            crate::flows::invoice_deal::FLOW => (self.queues.invoicing.as_ref(), Entity::Deal),
            crate::flows::payment_status::FLOW => (self.queues.payments.as_ref(), Entity::Invoice),
            _ => (None, Entity::Other),
        };
        let mut found = Difference {
            flow: parts.flow.to_owned(),
            class: Class::Stuck,
            record: format!("{}#{}", parts.source, parts.object_id),
            counterpart: None,
            fields: Vec::new(),
        };
        let Some(queue) = queue else {
            found.fields = vec!["no queue configured for this flow".into()];
            report.record(found);
            return Ok(());
        };
        if dry_run {
            report.record(found);
            report.stuck_resolved += 1;
            return Ok(());
        }
        let claimed = self
            .ledger
            .claim(&item.key, &item.digest, LEASE, false)
            .await
            .map_err(|e| format!("could not take over {}: {e}", item.key))?;
        let Claim::Acquired(lease) = claimed else {
            // A delivery took it over, or finished it, meanwhile: not stuck any more.
            return Ok(());
        };
        let probed = self.probe(&parts).await;
        let target = match probed {
            Ok(target) => target.or_else(|| item.target_id.clone()),
            Err(e) => {
                let reason = format!("the reconciler could not probe the target: {e}");
                self.give_back(&lease, &reason).await;
                return Err(reason);
            }
        };
        let event = ChangeEvent {
            source: parts.source.to_owned(),
            entity,
            subscription_type: REPAIR.into(),
            object_id: parts.object_id.to_owned(),
            event_id: format!("resolve-{}", item.key.replace('#', "-")),
            account_id: "reconciler".into(),
            occurred_at_ms: parts.occurred_at_ms,
            change_source: Some("reconciler".into()),
            merged_ids: Vec::new(),
        };
        if let Err(e) = repairs
            .send(queue, std::slice::from_ref(&event), report)
            .await
        {
            self.give_back(&lease, &e).await;
            return Err(e);
        }
        self.ledger
            .complete(&lease, target.as_deref().unwrap_or_default())
            .await
            .map_err(|e| format!("could not complete {}: {e}", item.key))?;
        tracing::info!(key = %item.key, target = ?target, "stuck ledger item resolved; its change enqueued again");
        found.counterpart = target;
        found.fields = vec!["completed; change enqueued again".into()];
        report.record(found);
        report.stuck_resolved += 1;
        Ok(())
    }

    /// The id of the record our reference points at in the target, if the dead worker got as
    /// far as creating it: the counterpart of a customer, a deal's document. A payment status
    /// creates nothing.
    async fn probe(&self, parts: &KeyParts<'_>) -> Result<Option<String>, String> {
        let reference = |system: System, kind: &str| {
            external_reference(&EntityRef::new(system, parts.object_id), kind)
        };
        let (crm, erp) = (self.crm.system(), self.erp.system());
        let found = match parts.flow {
            crate::flows::sync_customer::FLOW if parts.source == crm.name() => {
                let ours = reference(crm, self.crm.record_kind());
                self.erp.find_by_origin(&ours).await
            }
            crate::flows::sync_customer::FLOW if parts.source == erp.name() => {
                let ours = reference(erp, self.erp.record_kind());
                self.crm.find_by_origin(&ours).await
            }
            // Deals come from the CRM.
            crate::flows::invoice_deal::FLOW => self
                .invoices
                .find_document(&reference(crm, "deal"))
                .await
                .map(|document| document.map(|d| d.id)),
            _ => Ok(None),
        };
        found.map_err(|e| e.to_string())
    }

    /// Lets the lease run out now, with the reason, so a delivery (or the next run) takes the
    /// key over.
    async fn give_back(&self, lease: &crate::ports::Lease, reason: &str) {
        let note = FailureNote {
            class: "transient",
            reason,
            step: "reconciler resolve stuck item",
        };
        if let Err(e) = self.ledger.release(lease, &note).await {
            tracing::warn!(key = %lease.key, error = %e, "could not release a stuck item taken over");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_back_as_its_change() {
        assert_eq!(
            parse_key("invoicing#hubspot#5512#1733000000123"),
            Some(KeyParts {
                flow: "invoicing",
                source: "hubspot",
                object_id: "5512",
                occurred_at_ms: 1_733_000_000_123
            })
        );
        assert!(parse_key("customer#odoo#7#1733000000000#repair").is_some());
        assert_eq!(parse_key("customer#odoo#7"), None);
        assert_eq!(parse_key("customer#odoo#7#soon"), None);
        assert_eq!(parse_key("customer#odoo#7#1#repair#more"), None);
    }
}
