//! A sales invoice (or the sales order some ERPs create first), with its lines and taxes.
//!
//! Amounts are computed by `money::line_total` and `money::tax`: each line rounds once, half
//! away from zero, at the currency's minor unit, and the invoice totals are the sums of the
//! lines. `InvoiceTotals::check` compares them with what the ERP computed, so a difference is
//! reported instead of ignored.

use crate::domain::datetime::Date;
use crate::domain::money::{self, Currency, Money, MoneyError, Quantity, Rate};
use crate::domain::{ErpId, Sku};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub sku: Option<Sku>,
    pub description: String,
    pub quantity: Quantity,
    pub unit_price: Money,
    pub discount: Rate,
    pub taxes: Vec<Rate>,
}

impl InvoiceLine {
    /// Quantity × unit price × (1 − discount), before taxes.
    pub fn subtotal(&self) -> Result<Money, MoneyError> {
        money::line_total(self.unit_price, self.quantity, self.discount)
    }

    /// The line's taxes, each rounded on the line's subtotal.
    pub fn tax(&self) -> Result<Money, MoneyError> {
        let base = self.subtotal()?;
        let taxes = self
            .taxes
            .iter()
            .map(|rate| money::tax(base, *rate))
            .collect::<Result<Vec<_>, _>>()?;
        Money::sum(base.currency(), taxes)
    }
}

/// What the ERP says the invoice adds up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceTotals {
    pub untaxed: Money,
    pub tax: Money,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("line {line} is in {found}, the invoice in {expected}")]
    LineCurrency {
        line: usize,
        expected: Currency,
        found: Currency,
    },
    #[error("an invoice needs at least one line")]
    NoLines,
    #[error("{what} differs: we computed {ours}, the ERP has {theirs}")]
    TotalsDiffer {
        what: &'static str,
        ours: Money,
        theirs: Money,
    },
}

/// A sales invoice as puente asks the ERP to create it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesInvoice {
    /// Our reference (the deal it comes from): the create-once key the ERP document carries.
    pub reference: String,
    pub customer: ErpId,
    pub currency: Currency,
    pub issue_date: Date,
    pub due_date: Option<Date>,
    pub lines: Vec<InvoiceLine>,
}

impl SalesInvoice {
    /// Builds an invoice whose lines all share its currency.
    pub fn new(
        reference: String,
        customer: ErpId,
        currency: Currency,
        issue_date: Date,
        due_date: Option<Date>,
        lines: Vec<InvoiceLine>,
    ) -> Result<Self, InvoiceError> {
        if lines.is_empty() {
            return Err(InvoiceError::NoLines);
        }
        if let Some((line, found)) = lines
            .iter()
            .enumerate()
            .map(|(i, l)| (i + 1, l.unit_price.currency()))
            .find(|(_, c)| *c != currency)
        {
            return Err(InvoiceError::LineCurrency {
                line,
                expected: currency,
                found,
            });
        }
        Ok(Self {
            reference,
            customer,
            currency,
            issue_date,
            due_date,
            lines,
        })
    }

    /// The totals computed line by line.
    pub fn totals(&self) -> Result<InvoiceTotals, InvoiceError> {
        totals(self.currency, &self.lines)
    }
}

/// The totals of `lines` in `currency`: each line's subtotal and taxes rounded once, then summed.
pub fn totals(currency: Currency, lines: &[InvoiceLine]) -> Result<InvoiceTotals, InvoiceError> {
    let subtotals = lines
        .iter()
        .map(InvoiceLine::subtotal)
        .collect::<Result<Vec<_>, _>>()?;
    let taxes = lines
        .iter()
        .map(InvoiceLine::tax)
        .collect::<Result<Vec<_>, _>>()?;
    let untaxed = Money::sum(currency, subtotals)?;
    let tax = Money::sum(currency, taxes)?;
    Ok(InvoiceTotals {
        untaxed,
        tax,
        total: untaxed.checked_add(tax)?,
    })
}

impl InvoiceTotals {
    /// Compares our totals with the ERP's; any difference is an error to report.
    pub fn check(&self, erp: &InvoiceTotals) -> Result<(), InvoiceError> {
        for (what, ours, theirs) in [
            ("untaxed amount", self.untaxed, erp.untaxed),
            ("tax", self.tax, erp.tax),
            ("total", self.total, erp.total),
        ] {
            if ours != theirs {
                return Err(InvoiceError::TotalsDiffer { what, ours, theirs });
            }
        }
        Ok(())
    }
}

/// Where an invoice stands in the ERP, as the CRM shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    NotPaid,
    Partial,
    Paid,
    Reversed,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cop(minor: i64) -> Money {
        Money::from_minor(minor, Currency::COP)
    }

    fn line(price_minor: i64, quantity: Quantity, discount: Rate) -> InvoiceLine {
        InvoiceLine {
            sku: None,
            description: "Licencia anual ERP".into(),
            quantity,
            unit_price: cop(price_minor),
            discount,
            taxes: vec![Rate::from_percent(19)],
        }
    }

    fn invoice(lines: Vec<InvoiceLine>) -> Result<SalesInvoice, InvoiceError> {
        SalesInvoice::new(
            "hubspot-deal-5512".into(),
            ErpId::parse("42").expect("id"),
            Currency::COP,
            Date::from_ymd(2025, 3, 14).expect("date"),
            None,
            lines,
        )
    }

    #[test]
    fn totals_are_summed_from_lines_rounded_once_each() {
        // 2 × 500 000,00 with 19% IVA, and 3 × 333,33 with 10% discount and 19% IVA.
        let invoice = invoice(vec![
            line(50_000_000, Quantity::from_units(2), Rate::ZERO),
            line(33_333, Quantity::from_units(3), Rate::from_percent(10)),
        ])
        .expect("valid");
        let totals = invoice.totals().expect("totals");
        // Line 2: 99 999 × 0.9 = 89 999.1 -> 89 999; tax 17 099.81 -> 17 100.
        assert_eq!(totals.untaxed, cop(100_000_000 + 89_999));
        assert_eq!(totals.tax, cop(19_000_000 + 17_100));
        assert_eq!(totals.total, cop(100_089_999 + 19_017_100));
    }

    #[test]
    fn a_difference_with_the_erp_is_reported() {
        let invoice = invoice(vec![line(50_000_000, Quantity::ONE, Rate::ZERO)]).expect("valid");
        let ours = invoice.totals().expect("totals");
        let erp = InvoiceTotals {
            tax: cop(9_500_001),
            total: cop(59_500_001),
            ..ours
        };
        let err = ours.check(&erp).expect_err("differs");
        assert!(err.to_string().starts_with("tax differs"), "{err}");
        assert_eq!(ours.check(&ours), Ok(()));
    }

    #[test]
    fn lines_in_another_currency_or_no_lines_are_rejected() {
        let mut usd = line(100, Quantity::ONE, Rate::ZERO);
        usd.unit_price = Money::from_minor(100, Currency::USD);
        assert!(matches!(
            invoice(vec![line(100, Quantity::ONE, Rate::ZERO), usd]),
            Err(InvoiceError::LineCurrency { line: 2, .. })
        ));
        assert_eq!(invoice(vec![]), Err(InvoiceError::NoLines));
    }
}
