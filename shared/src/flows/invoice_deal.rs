//! Invoicing, CRM to ERP: a won deal becomes exactly one sales document (invoice or order).
//!
//! Each deal change is claimed under its business key and applied under the deal's record lock,
//! so changes of one deal never run at once. The create-once key is the deal itself: the ERP
//! document carries our reference (`hubspot-deal-5512`) and is always looked for before one is
//! created, so a deal won twice, moved back and forth, delivered by duplicate webhooks or
//! retried after a worker died between the ERP create and the ledger update still has one
//! document.
//!
//! The document is created as a draft, read back, and its totals compared with the deal's
//! lines; only matching totals are posted (or confirmed). A deal whose lines or amount no
//! longer match its document, a cancelled document, or an ERP that computes other totals is a
//! conflict for a person: recorded on the key, counted, dead-lettered, never rewritten.

use crate::domain::datetime::{Date, Timestamp, ZoneOffset};
use crate::domain::invoice::{self, InvoiceLine, InvoiceTotals, SalesInvoice};
use crate::domain::money::Rate;
use crate::domain::{ChangeEvent, EntityRef, ErpId, FieldError, Rejection, System};
use crate::error::{FailureClass, SyncError};
use crate::flows::sync_customer::{self, upsert};
use crate::flows::{Failed, LEDGER, Run, at, once_under_lock, today};
use crate::mapping::customer::{CustomerRules, external_reference};
use crate::mapping::ownership::Role;
use crate::ports::{
    CustomerLink, CustomerLinks, CustomerSink, CustomerSource, Deal, DealSource, DocumentState,
    ErpDocument, InvoiceSink, Lease, Ledger, Links,
};
use std::collections::HashMap;
use std::time::Duration;

/// The flow's name in ledger keys, record locks, links and logs.
pub const FLOW: &str = "invoicing";

/// How a deal becomes a document: configuration, read once per process.
#[derive(Debug, Clone)]
pub struct InvoiceRules {
    /// The pipeline stage ids that count as won (`closedwon`, or a custom pipeline's ids).
    pub won_stages: Vec<String>,
    /// Post the invoice (or confirm the order) once its totals check out; otherwise leave the
    /// draft for accounting.
    pub confirm: bool,
    /// Taxes of the products by SKU, for lines that do not carry their own rate.
    pub taxes_by_sku: HashMap<String, Vec<Rate>>,
    /// Taxes of a line with neither its own rate nor a product in `taxes_by_sku`.
    pub default_taxes: Vec<Rate>,
    /// Days from the invoice date to its due date; `None` leaves it to the ERP's payment terms.
    pub payment_term_days: Option<u16>,
    /// The company's time zone offset, which decides what "today" is for the invoice date.
    pub offset: ZoneOffset,
}

impl InvoiceRules {
    fn is_won(&self, stage: &str) -> bool {
        self.won_stages.iter().any(|won| won == stage)
    }

    /// The line's taxes: its own rate, else its product's, else the default.
    fn taxes_of(&self, line: &InvoiceLine) -> Vec<Rate> {
        if !line.taxes.is_empty() {
            return line.taxes.clone();
        }
        line.sku
            .as_ref()
            .and_then(|sku| self.taxes_by_sku.get(sku.as_str()))
            .unwrap_or(&self.default_taxes)
            .clone()
    }
}

/// What one deal change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invoiced {
    /// This change created the deal's document.
    Created { document_id: String },
    /// The deal already had its document, which still matches it (an earlier attempt may have
    /// created it; this one finished posting it and writing its number back).
    AlreadyInvoiced { document_id: String },
    /// The deal is not in a won stage: nothing to invoice (an existing document stays).
    NotWon,
    /// The change was already applied by an earlier delivery.
    Duplicate,
}

impl Invoiced {
    pub fn as_str(&self) -> &'static str {
        match self {
            Invoiced::Created { .. } => "invoiced",
            Invoiced::AlreadyInvoiced { .. } => "already_invoiced",
            Invoiced::NotWon => "not_won",
            Invoiced::Duplicate => crate::lambda::sqs_batch::DUPLICATE,
        }
    }
}

/// The ports and rules the flow runs with, built once per process.
#[derive(Debug)]
pub struct InvoiceDeal<'a, L, K, N, D, C, T, I> {
    pub ledger: &'a L,
    /// A deal's link to its document.
    pub links: &'a K,
    /// The customer flow's links, whose lock on a company keeps the two flows from both
    /// creating its customer.
    pub customer_links: &'a N,
    /// The CRM's deals.
    pub deals: &'a D,
    /// The CRM's companies and the ERP's customers: a deal's customer is synced first when the
    /// ERP does not have it yet.
    pub customers: &'a C,
    pub customer_sink: &'a T,
    pub invoices: &'a I,
    pub customer_rules: &'a CustomerRules,
    pub rules: &'a InvoiceRules,
}

impl<L, K, N, D, C, T, I> InvoiceDeal<'_, L, K, N, D, C, T, I>
where
    L: Ledger,
    K: Links,
    N: CustomerLinks,
    D: DealSource,
    C: CustomerSource,
    T: CustomerSink,
    I: InvoiceSink,
{
    /// Applies one deal change exactly once, at `now`. `lease_for` and `redriven` are as for the
    /// customer flow.
    pub async fn sync(
        &self,
        event: &ChangeEvent,
        lease_for: Duration,
        redriven: bool,
        now: Timestamp,
    ) -> Result<Invoiced, SyncError> {
        let today = today(now, self.rules.offset);
        let run = once_under_lock(
            self.ledger,
            event,
            FLOW,
            lease_for,
            redriven,
            |lease| async move { self.apply(event, &lease, lease_for, today).await },
        );
        Ok(match run.await? {
            Run::Applied(invoiced) => invoiced,
            Run::Duplicate => Invoiced::Duplicate,
        })
    }

    async fn apply(
        &self,
        event: &ChangeEvent,
        lease: &Lease,
        lease_for: Duration,
        today: Date,
    ) -> Result<Invoiced, Failed> {
        let (crm, erp) = (self.deals.system(), self.invoices.system());
        let kind = self.invoices.document_kind();
        let deal = self
            .deals
            .fetch_deal(&event.object_id)
            .await
            .map_err(at(&crm, "read", "deal"))?;
        let deal_ref = EntityRef::new(crm, &event.object_id);
        let reference = external_reference(&deal_ref, "deal");
        let existing = self
            .invoices
            .find_document(&reference)
            .await
            .map_err(at(&erp, "find", kind))?;
        if !self.rules.is_won(&deal.summary.stage) {
            if let Some(document) = &existing {
                tracing::info!(deal = %deal.summary.id, document = %document.id, "the deal left the won stages after it was invoiced; the document stays");
            }
            return self.finish(lease, None, Invoiced::NotWon).await;
        }
        let lines = self.lines_with_taxes(&deal);
        let ours = invoice::totals(deal.currency, &lines)
            .map_err(|e| rejected(&crm, "total", "deal", FailureClass::Invalid, e.to_string()))?;

        let (document, invoiced) = match existing {
            Some(document) => {
                self.check_unchanged(&deal, &document, &ours, lines.len())?;
                let id = document.id.clone();
                (document, Invoiced::AlreadyInvoiced { document_id: id })
            }
            None => {
                check_amount(&deal, &ours)
                    .map_err(|r| at(&crm, "validate", "deal")(SyncError::from(r)))?;
                let customer = self.ensure_customer(&deal, lease_for).await?;
                let invoice = self.invoice(&deal, &reference, customer, lines, today)?;
                let id = self
                    .invoices
                    .create_document(&invoice)
                    .await
                    .map_err(at(&erp, "create", kind))?;
                self.ledger.mark_applied(lease, &id).await.map_err(at(
                    &LEDGER,
                    "mark applied",
                    "ledger item",
                ))?;
                let document = self
                    .invoices
                    .read_document(&id)
                    .await
                    .map_err(at(&erp, "read", kind))?;
                self.check_unchanged(&deal, &document, &ours, invoice.lines.len())?;
                (document, Invoiced::Created { document_id: id })
            }
        };
        let document = self.confirm(document).await?;
        self.write_back(&deal, &document, today).await?;
        self.links
            .link(FLOW, &deal_ref, &EntityRef::new(erp, &document.id))
            .await
            .map_err(at(&LEDGER, "write", "links"))?;
        self.finish(lease, Some(&document.id), invoiced).await
    }

    async fn finish(
        &self,
        lease: &Lease,
        document_id: Option<&str>,
        invoiced: Invoiced,
    ) -> Result<Invoiced, Failed> {
        self.ledger
            .complete(lease, document_id.unwrap_or_default())
            .await
            .map_err(at(&LEDGER, "complete", "ledger item"))?;
        Ok(invoiced)
    }

    fn lines_with_taxes(&self, deal: &Deal) -> Vec<InvoiceLine> {
        deal.lines
            .iter()
            .map(|line| InvoiceLine {
                taxes: self.rules.taxes_of(line),
                ..line.clone()
            })
            .collect()
    }

    /// A document that no longer matches the deal is a conflict: cancelled in the ERP, other
    /// totals, or another number of lines. Nothing is rewritten; a person decides.
    fn check_unchanged(
        &self,
        deal: &Deal,
        document: &ErpDocument,
        ours: &InvoiceTotals,
        lines: usize,
    ) -> Result<(), Failed> {
        let erp = self.invoices.system();
        let kind = self.invoices.document_kind();
        let name = document
            .number
            .clone()
            .unwrap_or_else(|| format!("draft {}", document.id));
        let conflict =
            |reason: String| rejected(&erp, "compare", kind, FailureClass::Conflict, reason);
        if document.state == DocumentState::Cancelled {
            return Err(conflict(format!(
                "the deal's {kind} {name} is cancelled in {erp}: a person decides whether the \
                 deal is invoiced again"
            )));
        }
        if let Err(difference) = ours.check(&document.totals) {
            return Err(conflict(format!(
                "{kind} {name} does not match deal {}: {difference}; nothing was rewritten",
                deal.summary.id
            )));
        }
        if document.line_count != lines {
            return Err(conflict(format!(
                "{kind} {name} has {} lines, deal {} has {lines}; nothing was rewritten",
                document.line_count, deal.summary.id
            )));
        }
        check_amount(deal, ours).map_err(|_| {
            conflict(format!(
                "deal {}'s amount no longer matches {kind} {name}; nothing was rewritten",
                deal.summary.id
            ))
        })
    }

    /// The ERP id of the deal's company, created through the customer flow's code when the ERP
    /// does not have it yet, under the customer flow's lock on the company so that flow cannot
    /// create it at the same time.
    async fn ensure_customer(&self, deal: &Deal, lease_for: Duration) -> Result<ErpId, Failed> {
        let crm = self.deals.system();
        let company = deal.summary.company.as_ref().ok_or_else(|| {
            rejected(
                &crm,
                "read",
                "deal",
                FailureClass::Invalid,
                "the deal has no associated company".into(),
            )
        })?;
        // The customer flow's lock on the company: its link item.
        let mut locks = sync_customer::Locks::new(self.customer_links, lease_for);
        locks
            .lock(Role::Crm, company.as_str(), Duration::ZERO)
            .await?;
        let upserted = upsert(
            self.customers,
            self.customer_sink,
            self.customer_rules,
            company.as_str(),
            false,
        )
        .await;
        let linked = match &upserted {
            Ok(sync_customer::Synced::Created { target_id }) => {
                tracing::info!(company = %company, customer = %target_id, "created the deal's customer first");
                let link = CustomerLink {
                    crm_id: company.as_str().to_owned(),
                    erp_id: target_id.clone(),
                    ..CustomerLink::default()
                };
                locks.save(&link, true).await
            }
            _ => Ok(()),
        };
        locks.give_back().await;
        let id = upserted?.target_id().unwrap_or_default().to_owned();
        linked?;
        ErpId::parse(&id).map_err(|e| {
            rejected(
                &self.customer_sink.system(),
                "read",
                "customer",
                FailureClass::TargetRejected,
                format!("the customer id is unusable: {e}"),
            )
        })
    }

    fn invoice(
        &self,
        deal: &Deal,
        reference: &str,
        customer: ErpId,
        lines: Vec<InvoiceLine>,
        today: Date,
    ) -> Result<SalesInvoice, Failed> {
        let due = self
            .rules
            .payment_term_days
            .and_then(|days| add_days(today, days));
        SalesInvoice::new(
            reference.to_owned(),
            customer,
            deal.currency,
            today,
            due,
            lines,
        )
        .map_err(|e| {
            rejected(
                &self.deals.system(),
                "validate",
                "deal",
                FailureClass::Invalid,
                e.to_string(),
            )
        })
    }

    /// Posts (or confirms) a draft when the rules say so.
    async fn confirm(&self, document: ErpDocument) -> Result<ErpDocument, Failed> {
        if !self.rules.confirm || document.state != DocumentState::Draft {
            return Ok(document);
        }
        let (erp, kind) = (self.invoices.system(), self.invoices.document_kind());
        self.invoices
            .confirm_document(&document.id)
            .await
            .map_err(at(&erp, "confirm", kind))?;
        self.invoices
            .read_document(&document.id)
            .await
            .map_err(at(&erp, "read", kind))
    }

    /// Shows the document on the deal: the full payment status of a posted invoice, the number
    /// of anything else that has one; a draft invoice has nothing to show yet.
    async fn write_back(
        &self,
        deal: &Deal,
        document: &ErpDocument,
        today: Date,
    ) -> Result<(), Failed> {
        let (crm, erp) = (self.deals.system(), self.invoices.system());
        let kind = self.invoices.document_kind();
        let deal_id = deal.summary.id.as_str();
        let status = match document.state {
            DocumentState::Confirmed => self
                .invoices
                .invoice_status(&document.id)
                .await
                .map_err(at(&erp, "read", "payment status"))?,
            DocumentState::Draft | DocumentState::Cancelled => None,
        };
        match (status, &document.number) {
            (Some(status), _) => self
                .deals
                .write_invoice_status(deal_id, &status, today)
                .await
                .map_err(at(&crm, "update", "deal")),
            (None, Some(number)) => self
                .deals
                .write_document_number(deal_id, number)
                .await
                .map_err(at(&crm, "update", "deal")),
            (None, None) => {
                tracing::info!(deal = %deal_id, document = %document.id, "{kind} is a draft: its number reaches the deal when it is posted");
                Ok(())
            }
        }
    }
}

/// A deal's amount, when set, must be what its lines add up to, before or after taxes.
fn check_amount(deal: &Deal, ours: &InvoiceTotals) -> Result<(), Rejection> {
    match deal.summary.amount {
        Some(amount) if amount != ours.untaxed && amount != ours.total => {
            Err(Rejection(vec![FieldError::new(
                "amount",
                format!(
                    "is {amount} but the line items add up to {} before taxes and {} after",
                    ours.untaxed, ours.total
                ),
            )]))
        }
        _ => Ok(()),
    }
}

fn rejected(
    system: &System,
    action: &str,
    what: &str,
    class: FailureClass,
    reason: String,
) -> Failed {
    at(system, action, what)(SyncError::rejected(class, reason))
}

fn add_days(date: Date, days: u16) -> Option<Date> {
    let start = date.at_start_of_day(ZoneOffset::UTC).epoch_millis();
    Timestamp::from_epoch_millis(start + i64::from(days) * 86_400_000)
        .ok()?
        .date_in(ZoneOffset::UTC)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deal::DealSummary;
    use crate::domain::money::{Currency, Money, Quantity};
    use crate::domain::{CrmId, Sku};

    fn cop(minor: i64) -> Money {
        Money::from_minor(minor, Currency::COP)
    }

    fn line(sku: Option<&str>, taxes: Vec<Rate>) -> InvoiceLine {
        InvoiceLine {
            sku: sku.map(|s| Sku::parse(s).expect("sku")),
            description: "Licencia".into(),
            quantity: Quantity::from_units(2),
            unit_price: cop(50_000_000),
            discount: Rate::ZERO,
            taxes,
        }
    }

    fn rules() -> InvoiceRules {
        InvoiceRules {
            won_stages: vec!["closedwon".into()],
            confirm: true,
            taxes_by_sku: HashMap::from([("EXPORT-1".to_owned(), vec![])]),
            default_taxes: vec![Rate::from_percent(19)],
            payment_term_days: Some(30),
            offset: ZoneOffset::UTC,
        }
    }

    fn deal(amount: Option<Money>) -> Deal {
        Deal {
            summary: DealSummary {
                id: CrmId::parse("5512").expect("id"),
                name: "Licencias".into(),
                stage: "closedwon".into(),
                amount,
                close_date: None,
                company: None,
            },
            currency: Currency::COP,
            lines: vec![line(None, vec![])],
        }
    }

    #[test]
    fn a_line_takes_its_own_rate_then_its_products_then_the_default() {
        let rules = rules();
        let five = vec![Rate::from_percent(5)];
        assert_eq!(rules.taxes_of(&line(Some("EXPORT-1"), five.clone())), five);
        assert_eq!(rules.taxes_of(&line(Some("EXPORT-1"), vec![])), vec![]);
        assert_eq!(
            rules.taxes_of(&line(Some("LIC-ERP"), vec![])),
            vec![Rate::from_percent(19)]
        );
        assert!(rules.is_won("closedwon") && !rules.is_won("closedlost"));
    }

    #[test]
    fn the_deal_amount_must_be_the_lines_total_before_or_after_taxes() {
        let ours = InvoiceTotals {
            untaxed: cop(100_000_000),
            tax: cop(19_000_000),
            total: cop(119_000_000),
        };
        assert!(check_amount(&deal(None), &ours).is_ok());
        assert!(check_amount(&deal(Some(cop(100_000_000))), &ours).is_ok());
        assert!(check_amount(&deal(Some(cop(119_000_000))), &ours).is_ok());
        let err = check_amount(&deal(Some(cop(110_000_000))), &ours).expect_err("differs");
        assert_eq!(err.0[0].field, "amount");
    }

    #[test]
    fn due_dates_cross_months_and_years() {
        let date = |y, m, d| Date::from_ymd(y, m, d).expect("date");
        assert_eq!(add_days(date(2026, 12, 15), 30), Some(date(2027, 1, 14)));
        assert_eq!(add_days(date(2028, 2, 15), 15), Some(date(2028, 3, 1)));
    }
}
