//! The customer flow's reconciliation: each side's customers are compared with their
//! counterparts through the links, with the same canonical fields and ownership rules the
//! customer flow writes by. A difference becomes a repair event on the customer queue, from
//! the side whose values should win, so the customer flow itself makes the write.

use super::report::{Class, Difference, DriftReport, Pass};
use super::{Pager, PassKind, Repairs};
use crate::domain::event::REPAIR;
use crate::domain::{ChangeEvent, Entity, System};
use crate::flows::sync_customer::lenient_fields;
use crate::mapping::customer::CustomerRules;
use crate::mapping::ownership::{Ownership, Role, TermsRules, sync_fields};
use crate::ports::{
    Cursors, CustomerLink, CustomerLinks, CustomerListing, CustomerRecord, DeliveryLog, Listed,
    Publisher, Written,
};
use futures_util::future::join_all;
use std::collections::{BTreeSet, HashMap, HashSet};

pub use crate::flows::sync_customer::FLOW;

/// The customer flow's sides, links and rules, and its queue.
#[derive(Debug)]
pub struct CustomerReconcile<'a, K, C, E> {
    pub links: &'a K,
    pub crm: &'a C,
    pub erp: &'a E,
    pub rules: &'a CustomerRules,
    pub terms: TermsRules,
    pub ownership: &'a Ownership,
    pub queue_url: &'a str,
}

impl<K: CustomerLinks, C: CustomerListing, E: CustomerListing> CustomerReconcile<'_, K, C, E> {
    /// Every pass of the flow: both sides since their watermarks, then both sides' sweeps (an
    /// unfinished one, or a new one when `start_sweep`). A pair compared once in a run is not
    /// compared again by a later pass of the same run.
    pub async fn run<U: Cursors, P: Publisher, D: DeliveryLog>(
        &self,
        pager: &Pager<'_, U>,
        repairs: &Repairs<'_, P, D>,
        start_sweep: bool,
        report: &mut DriftReport,
        progress: &(dyn Fn(&Pass, bool) + Sync),
    ) {
        let mut compared = HashSet::new();
        let size = pager.paging.page_size;
        for kind in [PassKind::Incremental, PassKind::Sweep] {
            for from in [Role::Crm, Role::Erp] {
                let list = async |after: Written| match from {
                    Role::Crm => self.crm.list_changed(&after, size).await,
                    Role::Erp => self.erp.list_changed(&after, size).await,
                };
                let compare = async |page: &[Listed]| {
                    let mut events = Vec::new();
                    self.compare_page(from, page, &mut compared, report, &mut events)
                        .await?;
                    repairs.send(self.queue_url, &events, report).await
                };
                let system = self.system(from).name();
                if let Some(walk) = pager.open(FLOW, system, kind, start_sweep).await {
                    let pass = pager.page_through(walk, list, compare, progress).await;
                    report.passes.push(pass);
                }
            }
        }
    }

    fn system(&self, role: Role) -> System {
        match role {
            Role::Crm => self.crm.system(),
            Role::Erp => self.erp.system(),
        }
    }

    async fn read_many(
        &self,
        role: Role,
        ids: &[String],
    ) -> Result<Vec<Listed>, crate::error::ConnectorError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match role {
            Role::Crm => self.crm.read_many(ids).await,
            Role::Erp => self.erp.read_many(ids).await,
        }
    }

    /// Compares one page of `from`'s records with their counterparts (one batch read of the
    /// other side); differences go into `report`, repairs into `repairs`. An error is a read
    /// that failed: the page is not done.
    async fn compare_page(
        &self,
        from: Role,
        page: &[Listed],
        compared: &mut HashSet<String>,
        report: &mut DriftReport,
        repairs: &mut Vec<ChangeEvent>,
    ) -> Result<(), String> {
        let to = from.other();
        let (here, there) = (self.system(from), self.system(to));
        let links = join_all(
            page.iter()
                .map(|listed| self.links.find_link(from, &listed.written.id)),
        )
        .await;
        let mut linked: Vec<(&Listed, Option<CustomerLink>)> = Vec::with_capacity(page.len());
        for (listed, link) in page.iter().zip(links) {
            linked.push((
                listed,
                link.map_err(|e| format!("could not read a link: {e}"))?,
            ));
        }
        let wanted: Vec<String> = linked
            .iter()
            .filter_map(|(_, link)| link.as_ref())
            .filter(|link| link.quarantine.is_none())
            .map(|link| link.id(to).to_owned())
            .collect();
        let counterparts: HashMap<String, Listed> = self
            .read_many(to, &wanted)
            .await
            .map_err(|e| format!("could not read {there} counterparts: {e}"))?
            .into_iter()
            .map(|listed| (listed.written.id.clone(), listed))
            .collect();

        for (listed, link) in linked {
            let id = listed.written.id.as_str();
            let pair = match &link {
                Some(link) => format!("pair#{}", link.crm_id),
                None => format!("{here}#{id}"),
            };
            if !compared.insert(pair) {
                continue;
            }
            let found = |class, fields: Vec<String>| Difference {
                flow: FLOW.into(),
                class,
                record: format!("{here}#{id}"),
                counterpart: link.as_ref().map(|l| format!("{there}#{}", l.id(to))),
                fields,
            };
            let record = match &listed.record {
                Err(rejection) => {
                    report.record(found(Class::Invalid, rejection_fields(rejection)));
                    continue;
                }
                Ok(record) if !record.syncs => continue,
                Ok(record) => record,
            };
            let Some(link) = &link else {
                report.record(found(Class::Missing, Vec::new()));
                repairs.push(repair(here, &record.id, record.modified.epoch_millis()));
                continue;
            };
            if link.quarantine.is_some() {
                report.record(found(Class::Quarantined, Vec::new()));
                continue;
            }
            match counterparts.get(link.id(to)).map(|other| &other.record) {
                None => report.record(found(Class::OrphanLink, Vec::new())),
                Some(Err(rejection)) => report.record(Difference {
                    flow: FLOW.into(),
                    class: Class::Invalid,
                    record: format!("{there}#{}", link.id(to)),
                    counterpart: Some(format!("{here}#{id}")),
                    fields: rejection_fields(rejection),
                }),
                Some(Ok(other)) => {
                    self.compare_pair(from, record, other, link, report, repairs);
                }
            }
        }
        Ok(())
    }

    /// Plans the customer flow's write in both directions, as it would plan them for a change of
    /// either record; whatever either direction would write is drift, repaired from that side.
    fn compare_pair(
        &self,
        from: Role,
        record: &CustomerRecord,
        other: &CustomerRecord,
        link: &CustomerLink,
        report: &mut DriftReport,
        repairs: &mut Vec<ChangeEvent>,
    ) {
        let to = from.other();
        let (here, there) = (self.system(from), self.system(to));
        let difference = |class, on: &CustomerRecord, system: System, fields| Difference {
            flow: FLOW.into(),
            class,
            record: format!("{system}#{}", on.id),
            counterpart: Some(if system == here {
                format!("{there}#{}", other.id)
            } else {
                format!("{here}#{}", record.id)
            }),
            fields,
        };
        let source = match sync_fields(&record.fields, self.rules, self.terms) {
            Ok(fields) => fields,
            Err(rejection) => {
                let fields = rejection_fields(&rejection);
                report.record(difference(Class::Invalid, record, here, fields));
                return;
            }
        };
        let strict_target = sync_fields(&other.fields, self.rules, self.terms);
        let target = lenient_fields(&other.fields, self.rules, self.terms);
        // As the flow decides: Odoo keeps whole seconds, so both in seconds, the ERP wins a tie.
        let (s, t) = (
            record.modified.epoch_millis().div_euclid(1000),
            other.modified.epoch_millis().div_euclid(1000),
        );
        let from_is_newer = s > t || (s == t && from == Role::Erp);
        let outbound = self
            .ownership
            .plan(from, &source, &target, &link.agreed, from_is_newer);
        let inbound = self
            .ownership
            .plan(to, &target, &source, &link.agreed, !from_is_newer);
        let conflicts: BTreeSet<&str> = outbound
            .conflicts
            .iter()
            .chain(&inbound.conflicts)
            .map(|f| f.as_str())
            .collect();
        let drifted: BTreeSet<&str> = outbound
            .writes
            .names()
            .into_iter()
            .chain(inbound.writes.names())
            .collect();
        if conflicts.is_empty() && drifted.is_empty() {
            return;
        }
        let (class, fields) = if conflicts.is_empty() {
            (Class::Drifted, drifted)
        } else {
            (Class::Conflict, conflicts)
        };
        let fields = fields.into_iter().map(str::to_owned).collect();
        report.record(difference(class, record, here, fields));
        let at = record
            .modified
            .epoch_millis()
            .max(other.modified.epoch_millis());
        if !outbound.writes.is_empty() {
            repairs.push(repair(here, &record.id, at));
        }
        if !inbound.writes.is_empty() {
            match strict_target {
                Ok(_) => repairs.push(repair(there, &other.id, at)),
                Err(rejection) => {
                    let fields = rejection_fields(&rejection);
                    report.record(difference(Class::Invalid, other, there, fields));
                }
            }
        }
    }
}

/// The names of the fields a rejection lists.
fn rejection_fields(rejection: &crate::domain::Rejection) -> Vec<String> {
    rejection.fields().iter().map(|f| f.field.clone()).collect()
}

/// A repair of customer `id` of `system`, as the state both records are in at `at_ms` (the
/// later of their last writes): found again in the same state, it is the same repair, with the
/// same business key.
fn repair(system: System, id: &str, at_ms: i64) -> ChangeEvent {
    ChangeEvent {
        source: system.name().to_owned(),
        entity: Entity::Customer,
        subscription_type: REPAIR.into(),
        object_id: id.to_owned(),
        event_id: format!("repair-{FLOW}-{system}-{id}-{at_ms}"),
        account_id: "reconciler".into(),
        occurred_at_ms: at_ms,
        change_source: Some("reconciler".into()),
        merged_ids: Vec::new(),
    }
}
