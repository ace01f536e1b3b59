//! The invoice flow's reconciliation: won deals and the ERP documents made for them, and the
//! payment status each deal shows against its invoice's.
//!
//! From the CRM side, a won deal without a document carrying our reference is missing one: a
//! repair of the deal goes on the invoicing queue, whose create-once lookup by reference makes
//! exactly one. From either side, a posted invoice whose payment status differs from what its
//! deal shows has drifted: a repair of the invoice goes on the payments queue, which writes the
//! invoice's current status to the deal. An invoice of ours whose deal is gone is an orphan,
//! reported only. Invoices without our reference are not ours and are skipped.

use super::report::{Class, Difference, DriftReport, Pass};
use super::{Pager, PassKind, Repairs};
use crate::domain::event::REPAIR;
use crate::domain::payment::InvoiceStatus;
use crate::domain::{ChangeEvent, Date, Entity, EntityRef, System, Timestamp, ZoneOffset};
use crate::flows::payment_status::id_in;
use crate::mapping::customer::external_reference;
use crate::ports::{
    Cursors, DealListing, DeliveryLog, DocumentListing, DocumentState, ListedDeal, ListedDocument,
    Publisher, ShownStatus, Written,
};
use std::collections::{HashMap, HashSet};

/// The flow's name in cursors and reports.
pub const FLOW: &str = "invoice";

/// The kind of CRM record our document references name (`hubspot-deal-5512`).
const DEAL: &str = "deal";

/// The deals, the documents, the rules that say which deals are invoiced, and the queues the
/// repairs go to.
#[derive(Debug)]
pub struct InvoiceReconcile<'a, C, E> {
    pub crm: &'a C,
    pub erp: &'a E,
    /// The deal stages that count as won: only those deals have a document.
    pub won_stages: &'a [String],
    /// The company's offset: what "today" is for the overdue flag.
    pub offset: ZoneOffset,
    /// Repairs of deals (a missing document).
    pub invoicing_queue: &'a str,
    /// Repairs of invoices (a payment status the deal does not show).
    pub payments_queue: &'a str,
}

impl<'a, C, E> InvoiceReconcile<'a, C, E> {
    /// The flow over `crm` and `erp` with its repairs on `queues`; `Err` with the reason when
    /// the invoicing or the payments queue is not configured.
    pub fn configured(
        crm: &'a C,
        erp: &'a E,
        won_stages: &'a [String],
        offset: ZoneOffset,
        queues: &'a super::stuck::Queues,
    ) -> Result<Self, String> {
        match (&queues.invoicing, &queues.payments) {
            (Some(invoicing), Some(payments)) => Ok(Self {
                crm,
                erp,
                won_stages,
                offset,
                invoicing_queue: invoicing,
                payments_queue: payments,
            }),
            _ => Err(
                "its repairs need both the invoicing and the payments queue \
                      (PUENTE_INVOICING_QUEUE_URL, PUENTE_PAYMENTS_QUEUE_URL)"
                    .into(),
            ),
        }
    }
}

/// The repairs one page calls for, by queue.
#[derive(Debug, Default)]
struct Found {
    deals: Vec<ChangeEvent>,
    invoices: Vec<ChangeEvent>,
}

impl<C: DealListing, E: DocumentListing> InvoiceReconcile<'_, C, E> {
    /// Every pass of the flow, as the customer flow runs its own: both sides since their
    /// watermarks, then both sides' sweeps. A deal compared once in a run is not compared again.
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
        let today = crate::flows::today(Timestamp::now(), self.offset);
        let (crm, erp) = (self.crm.system(), self.erp.system());
        for kind in [PassKind::Incremental, PassKind::Sweep] {
            let deals = async |after: Written| self.crm.list_changed_deals(&after, size).await;
            let compare = async |page: &[ListedDeal]| {
                let mut found = Found::default();
                self.compare_deals(page, today, &mut compared, report, &mut found)
                    .await?;
                self.send(repairs, &found, report).await
            };
            if let Some(walk) = pager.open(FLOW, crm.name(), kind, start_sweep).await {
                let pass = pager.page_through(walk, deals, compare, progress).await;
                report.passes.push(pass);
            }
            let invoices = async |after: Written| self.erp.changed_invoices(&after, size).await;
            let compare = async |page: &[Written]| {
                let mut found = Found::default();
                self.compare_invoices(page, today, &mut compared, report, &mut found)
                    .await?;
                self.send(repairs, &found, report).await
            };
            if let Some(walk) = pager.open(FLOW, erp.name(), kind, start_sweep).await {
                let pass = pager.page_through(walk, invoices, compare, progress).await;
                report.passes.push(pass);
            }
        }
    }

    async fn send<P: Publisher, D: DeliveryLog>(
        &self,
        repairs: &Repairs<'_, P, D>,
        found: &Found,
        report: &mut DriftReport,
    ) -> Result<(), String> {
        repairs
            .send(self.invoicing_queue, &found.deals, report)
            .await?;
        repairs
            .send(self.payments_queue, &found.invoices, report)
            .await
    }

    fn is_won(&self, deal: &ListedDeal) -> bool {
        self.won_stages.contains(&deal.stage)
    }

    /// Compares a page of deals with their documents (one batch lookup by reference).
    async fn compare_deals(
        &self,
        page: &[ListedDeal],
        today: Date,
        compared: &mut HashSet<String>,
        report: &mut DriftReport,
        found: &mut Found,
    ) -> Result<(), String> {
        let (crm, erp) = (self.crm.system(), self.erp.system());
        let won: Vec<(&ListedDeal, String)> = page
            .iter()
            .filter(|deal| self.is_won(deal))
            .map(|deal| {
                let reference = external_reference(&EntityRef::new(crm, &deal.written.id), DEAL);
                (deal, reference)
            })
            .collect();
        let references: Vec<String> = won.iter().map(|(_, r)| r.clone()).collect();
        let mut documents: HashMap<String, Vec<ListedDocument>> = HashMap::new();
        if !references.is_empty() {
            for document in self
                .erp
                .find_documents(&references)
                .await
                .map_err(|e| format!("could not look the deals' documents up in {erp}: {e}"))?
            {
                if let Some(reference) = document.reference.clone() {
                    documents.entry(reference).or_default().push(document);
                }
            }
        }
        for (deal, reference) in won {
            let id = deal.written.id.as_str();
            if !compared.insert(format!("deal#{id}")) {
                continue;
            }
            let difference = |class, counterpart: Option<&str>, fields| Difference {
                flow: FLOW.into(),
                class,
                record: format!("{crm}#{id}"),
                counterpart: counterpart.map(|doc| format!("{erp}#{doc}")),
                fields,
            };
            match documents
                .get(&reference)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                [] => {
                    report.record(difference(Class::Missing, None, Vec::new()));
                    let at = deal.written.at.epoch_millis();
                    found.deals.push(repair(crm, Entity::Deal, id, at));
                }
                [document] => self.compare_pair(deal, document, today, report, found),
                [first, ..] => {
                    // Our create-once key names more than one document: a person decides.
                    let fields = vec!["reference".to_owned()];
                    report.record(difference(Class::Conflict, Some(&first.id), fields));
                }
            }
        }
        Ok(())
    }

    /// Compares a page of changed invoices (credit notes stand for their invoices) with their
    /// deals (one batch read).
    async fn compare_invoices(
        &self,
        page: &[Written],
        today: Date,
        compared: &mut HashSet<String>,
        report: &mut DriftReport,
        found: &mut Found,
    ) -> Result<(), String> {
        let (crm, erp) = (self.crm.system(), self.erp.system());
        let ids: Vec<String> = page.iter().map(|w| w.id.clone()).collect();
        let documents = self
            .erp
            .read_invoices(&ids)
            .await
            .map_err(|e| format!("could not read {erp} invoices: {e}"))?;
        let ours: Vec<(ListedDocument, String)> = documents
            .into_iter()
            .filter_map(|document| {
                let deal = document
                    .reference
                    .as_deref()
                    .and_then(|reference| id_in(crm, DEAL, reference))?;
                Some((document, deal))
            })
            .collect();
        let wanted: Vec<String> = ours.iter().map(|(_, deal)| deal.clone()).collect();
        let deals: HashMap<String, ListedDeal> = if wanted.is_empty() {
            HashMap::new()
        } else {
            self.crm
                .read_deals(&wanted)
                .await
                .map_err(|e| format!("could not read {crm} deals: {e}"))?
                .into_iter()
                .map(|deal| (deal.written.id.clone(), deal))
                .collect()
        };
        for (document, deal_id) in ours {
            if !compared.insert(format!("deal#{deal_id}")) {
                continue;
            }
            match deals.get(&deal_id) {
                Some(deal) => self.compare_pair(deal, &document, today, report, found),
                None => report.record(Difference {
                    flow: FLOW.into(),
                    class: Class::OrphanLink,
                    record: format!("{erp}#{}", document.id),
                    counterpart: Some(format!("{crm}#{deal_id}")),
                    fields: Vec::new(),
                }),
            }
        }
        Ok(())
    }

    /// A deal and its one document: a posted invoice's payment status against what the deal
    /// shows. Drafts, cancelled invoices and sales orders have no status to show.
    fn compare_pair(
        &self,
        deal: &ListedDeal,
        document: &ListedDocument,
        today: Date,
        report: &mut DriftReport,
        found: &mut Found,
    ) {
        let (crm, erp) = (self.crm.system(), self.erp.system());
        let deal_record = format!("{crm}#{}", deal.written.id);
        let document_record = format!("{erp}#{}", document.id);
        let status = match &document.read {
            Err(rejection) => {
                report.record(Difference {
                    flow: FLOW.into(),
                    class: Class::Invalid,
                    record: document_record,
                    counterpart: Some(deal_record),
                    fields: rejection.fields().iter().map(|f| f.field.clone()).collect(),
                });
                return;
            }
            Ok((DocumentState::Confirmed, Some(status))) => status,
            Ok(_) => return,
        };
        let fields: Vec<String> = match &deal.shown {
            Some(Err(rejection)) => rejection.fields().iter().map(|f| f.field.clone()).collect(),
            Some(Ok(shown)) => names(drifted_fields(Some(shown), status, today)),
            None => names(drifted_fields(None, status, today)),
        };
        if fields.is_empty() {
            return;
        }
        report.record(Difference {
            flow: FLOW.into(),
            class: Class::Drifted,
            record: deal_record,
            counterpart: Some(document_record),
            fields,
        });
        let at = deal
            .written
            .at
            .epoch_millis()
            .max(document.modified.epoch_millis());
        found
            .invoices
            .push(repair(erp, Entity::Invoice, &document.id, at));
    }
}

/// The fields the deal shows otherwise than the invoice's status says on `today` (every one
/// when it shows none).
pub fn drifted_fields(
    shown: Option<&ShownStatus>,
    erp: &InvoiceStatus,
    today: Date,
) -> Vec<&'static str> {
    let Some(shown) = shown else {
        return FIELDS.to_vec();
    };
    let deal = &shown.status;
    let same = [
        deal.invoice_number == erp.invoice_number,
        deal.invoiced == erp.invoiced,
        deal.outstanding == erp.outstanding,
        deal.due_date == erp.due_date,
        deal.state == erp.state,
        shown.overdue == erp.overdue(today),
    ];
    FIELDS
        .iter()
        .zip(same)
        .filter(|(_, same)| !same)
        .map(|(field, _)| *field)
        .collect()
}

fn names(fields: Vec<&str>) -> Vec<String> {
    fields.into_iter().map(str::to_owned).collect()
}

/// The payment status fields a deal shows, as the report names them.
const FIELDS: [&str; 6] = [
    "invoice_number",
    "invoiced",
    "outstanding",
    "due_date",
    "payment_state",
    "overdue",
];

/// A repair of `entity` `id` of `system`, as the pair's state at `at_ms` (the later of their
/// last writes): found again in the same state, it is the same repair, with the same business
/// key.
fn repair(system: System, entity: Entity, id: &str, at_ms: i64) -> ChangeEvent {
    ChangeEvent {
        source: system.name().to_owned(),
        entity,
        subscription_type: REPAIR.into(),
        object_id: id.to_owned(),
        event_id: format!("repair-{FLOW}-{system}-{id}-{at_ms}"),
        account_id: "reconciler".into(),
        occurred_at_ms: at_ms,
        change_source: Some("reconciler".into()),
        merged_ids: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::invoice::PaymentState;
    use crate::domain::money::{Currency, Money};

    fn cop(minor: i64) -> Money {
        Money::from_minor(minor, Currency::COP)
    }

    fn date(y: u16, m: u8, d: u8) -> Date {
        Date::from_ymd(y, m, d).expect("date")
    }

    fn status(outstanding: i64, state: PaymentState) -> InvoiceStatus {
        InvoiceStatus {
            invoice_number: "INV/2026/00001".into(),
            invoiced: cop(119_000_000),
            outstanding: cop(outstanding),
            due_date: Some(date(2026, 12, 1)),
            state,
        }
    }

    fn shown(status: InvoiceStatus, overdue: bool) -> ShownStatus {
        ShownStatus { status, overdue }
    }

    #[test]
    fn without_both_queues_the_flow_does_not_run_and_says_why() {
        let mut queues = super::super::stuck::Queues {
            customer: "customer".into(),
            invoicing: Some("invoicing".into()),
            payments: None,
        };
        fn flow(queues: &super::super::stuck::Queues) -> Result<(String, String), String> {
            InvoiceReconcile::configured(&(), &(), &[], ZoneOffset::UTC, queues)
                .map(|f| (f.invoicing_queue.to_owned(), f.payments_queue.to_owned()))
        }
        let missing = flow(&queues).expect_err("no payments queue");
        assert!(missing.contains("PUENTE_PAYMENTS_QUEUE_URL"), "{missing}");
        queues.payments = Some("payments".into());
        assert_eq!(
            flow(&queues),
            Ok(("invoicing".to_owned(), "payments".to_owned()))
        );
    }

    #[test]
    fn a_deal_that_shows_the_invoices_status_has_not_drifted() {
        let erp = status(0, PaymentState::Paid);
        let today = date(2026, 12, 3);
        assert!(drifted_fields(Some(&shown(erp.clone(), false)), &erp, today).is_empty());
        let open = status(119_000_000, PaymentState::NotPaid);
        assert!(drifted_fields(Some(&shown(open.clone(), true)), &open, today).is_empty());
    }

    #[test]
    fn a_payment_the_deal_does_not_show_names_the_fields_it_changed() {
        let before = status(119_000_000, PaymentState::NotPaid);
        let paid = status(0, PaymentState::Paid);
        assert_eq!(
            drifted_fields(Some(&shown(before, true)), &paid, date(2026, 12, 3)),
            ["outstanding", "payment_state", "overdue"]
        );
    }

    #[test]
    fn an_overdue_flag_goes_stale_when_the_due_date_passes() {
        let open = status(119_000_000, PaymentState::NotPaid);
        let written_on_time = shown(open.clone(), false);
        assert!(drifted_fields(Some(&written_on_time), &open, date(2026, 12, 1)).is_empty());
        assert_eq!(
            drifted_fields(Some(&written_on_time), &open, date(2026, 12, 2)),
            ["overdue"]
        );
    }

    #[test]
    fn a_deal_that_shows_nothing_differs_in_every_field() {
        let erp = status(0, PaymentState::Paid);
        assert_eq!(drifted_fields(None, &erp, date(2026, 12, 3)), FIELDS);
    }

    #[test]
    fn a_number_due_date_or_currency_of_another_invoice_is_drift() {
        let erp = status(0, PaymentState::Paid);
        let other = InvoiceStatus {
            invoice_number: "INV/2026/00002".into(),
            invoiced: Money::from_minor(119_000_000, Currency::USD),
            outstanding: Money::from_minor(0, Currency::USD),
            due_date: None,
            ..erp.clone()
        };
        assert_eq!(
            drifted_fields(Some(&shown(other, false)), &erp, date(2026, 12, 3)),
            ["invoice_number", "invoiced", "outstanding", "due_date"]
        );
    }

    /// In-memory sides, cursors and queues for one run of the flow.
    mod run {
        use super::*;
        use crate::domain::{Rejection, Timestamp};
        use crate::error::{ConnectorError, StoreError};
        use crate::flows::reconcile::{Pager, Paging, Repairs};
        use crate::ports::{InvoiceChange, InvoiceStatusSource, OutboundMessage};
        use std::sync::Mutex;
        use std::time::Duration;

        fn after(written: &Written, position: &Written) -> bool {
            let key = |w: &Written| (w.at.epoch_millis(), w.id.parse::<u64>().unwrap_or(0));
            key(written) > key(position)
        }

        struct Crm(Vec<ListedDeal>);

        impl DealListing for Crm {
            fn system(&self) -> System {
                System::named("hubspot")
            }
            async fn list_changed_deals(
                &self,
                position: &Written,
                limit: usize,
            ) -> Result<Vec<ListedDeal>, ConnectorError> {
                let later = self.0.iter().filter(|d| after(&d.written, position));
                Ok(later.take(limit).cloned().collect())
            }
            async fn read_deals(&self, ids: &[String]) -> Result<Vec<ListedDeal>, ConnectorError> {
                let wanted = self.0.iter().filter(|d| ids.contains(&d.written.id));
                Ok(wanted.cloned().collect())
            }
        }

        struct Erp {
            documents: Vec<ListedDocument>,
            changed: Vec<Written>,
        }

        impl InvoiceStatusSource for Erp {
            fn system(&self) -> System {
                System::named("odoo")
            }
            async fn invoice_change(
                &self,
                _: &str,
                _: Date,
            ) -> Result<Option<InvoiceChange>, ConnectorError> {
                Ok(None)
            }
            async fn changed_invoices(
                &self,
                position: &Written,
                limit: usize,
            ) -> Result<Vec<Written>, ConnectorError> {
                let later = self.changed.iter().filter(|w| after(w, position));
                Ok(later.take(limit).cloned().collect())
            }
        }

        impl DocumentListing for Erp {
            async fn find_documents(
                &self,
                references: &[String],
            ) -> Result<Vec<ListedDocument>, ConnectorError> {
                let ours = self
                    .documents
                    .iter()
                    .filter(|d| d.reference.as_ref().is_some_and(|r| references.contains(r)));
                Ok(ours.cloned().collect())
            }
            async fn read_invoices(
                &self,
                ids: &[String],
            ) -> Result<Vec<ListedDocument>, ConnectorError> {
                let wanted = self.documents.iter().filter(|d| ids.contains(&d.id));
                Ok(wanted.cloned().collect())
            }
        }

        #[derive(Default)]
        struct Memory {
            cursors: Mutex<HashMap<String, Written>>,
            sent: Mutex<Vec<(String, ChangeEvent)>>,
        }

        impl Cursors for Memory {
            async fn read(&self, name: &str) -> Result<Option<Written>, StoreError> {
                Ok(self.cursors.lock().expect("lock").get(name).cloned())
            }
            async fn advance(&self, name: &str, to: &Written) -> Result<(), StoreError> {
                let mut cursors = self.cursors.lock().expect("lock");
                cursors.insert(name.to_owned(), to.clone());
                Ok(())
            }
            async fn clear(&self, name: &str) -> Result<(), StoreError> {
                self.cursors.lock().expect("lock").remove(name);
                Ok(())
            }
        }

        impl Publisher for Memory {
            async fn publish(
                &self,
                queue_url: &str,
                messages: &[OutboundMessage],
            ) -> Result<(), StoreError> {
                let mut sent = self.sent.lock().expect("lock");
                for message in messages {
                    let event = serde_json::from_str(&message.body).expect("a change event");
                    sent.push((queue_url.to_owned(), event));
                }
                Ok(())
            }
        }

        impl DeliveryLog for Memory {
            async fn seen(&self, _: &[String]) -> Result<HashSet<String>, StoreError> {
                Ok(HashSet::new())
            }
            async fn remember(&self, _: &[String]) -> Result<(), StoreError> {
                Ok(())
            }
        }

        fn written(id: &str, seconds_ago: i64) -> Written {
            let ms = Timestamp::now().epoch_millis() - seconds_ago * 1000;
            Written {
                id: id.into(),
                at: Timestamp::from_epoch_millis(ms).expect("time"),
            }
        }

        fn deal(id: &str, seconds_ago: i64, stage: &str, shown: Option<ShownStatus>) -> ListedDeal {
            ListedDeal {
                written: written(id, seconds_ago),
                stage: stage.into(),
                shown: shown.map(Ok),
            }
        }

        fn document(id: &str, deal: &str, status: InvoiceStatus) -> ListedDocument {
            ListedDocument {
                id: id.into(),
                modified: written(id, 30).at,
                reference: Some(format!("hubspot-deal-{deal}")),
                read: Ok::<_, Rejection>((DocumentState::Confirmed, Some(status))),
            }
        }

        #[tokio::test]
        async fn one_run_classifies_each_pair_and_enqueues_each_repair_on_its_flows_queue() {
            let open = status(119_000_000, PaymentState::NotPaid);
            let paid = status(0, PaymentState::Paid);
            let crm = Crm(vec![
                deal("1", 50, "closedwon", None),
                deal("2", 49, "closedwon", None),
                deal("3", 48, "closedwon", Some(shown(paid.clone(), false))),
                deal("4", 47, "appointmentscheduled", None),
                deal("5", 46, "closedwon", Some(shown(open, false))),
            ]);
            let mut not_ours = document("75", "9", paid.clone());
            not_ours.reference = Some("PO 4471".into());
            let erp = Erp {
                documents: vec![
                    document("71", "2", paid.clone()),
                    document("72", "2", paid.clone()),
                    document("73", "3", paid.clone()),
                    document("74", "5", paid.clone()),
                    document("76", "9", paid),
                    not_ours,
                ],
                changed: vec![written("74", 20), written("75", 19), written("76", 18)],
            };
            let memory = Memory::default();
            let paging = Paging {
                page_size: 2,
                page_budget: 20,
                overlap: Duration::ZERO,
                lookback: Duration::from_secs(3600),
            };
            let stop_at = tokio::time::Instant::now() + Duration::from_secs(30);
            let pager = Pager::new(&memory, paging, false, stop_at);
            let repairs = Repairs {
                publisher: &memory,
                deliveries: &memory,
                dry_run: false,
            };
            let won = ["closedwon".to_owned()];
            let flow = InvoiceReconcile {
                crm: &crm,
                erp: &erp,
                won_stages: &won,
                offset: ZoneOffset::UTC,
                invoicing_queue: "invoicing",
                payments_queue: "payments",
            };
            let mut report = DriftReport::default();
            flow.run(&pager, &repairs, false, &mut report, &|_, _| {})
                .await;

            let found = &report.found[FLOW];
            let count = |class| found.get(&class).copied().unwrap_or(0);
            assert_eq!(count(Class::Missing), 1, "{report:?}");
            assert_eq!(count(Class::Conflict), 1, "two documents of deal 2");
            assert_eq!(count(Class::Drifted), 1, "deal 5 does not show the payment");
            assert_eq!(count(Class::OrphanLink), 1, "invoice 76's deal is gone");
            assert_eq!(
                found.values().sum::<u64>(),
                4,
                "3 agrees, 4 is not won, 75 not ours"
            );
            let sent: Vec<(String, Entity, String)> = memory
                .sent
                .lock()
                .expect("lock")
                .iter()
                .map(|(queue, e)| (queue.clone(), e.entity, e.object_id.clone()))
                .collect();
            assert_eq!(
                sent,
                [
                    ("invoicing".to_owned(), Entity::Deal, "1".to_owned()),
                    ("payments".to_owned(), Entity::Invoice, "74".to_owned()),
                ]
            );
            assert!(
                report
                    .passes
                    .iter()
                    .all(|p| p.complete && p.error.is_none())
            );
            let cursors = memory.cursors.lock().expect("lock");
            assert_eq!(cursors["reconcile#invoice#hubspot"].id, "5");
            assert_eq!(cursors["reconcile#invoice#odoo"].id, "76");
        }
    }
}
