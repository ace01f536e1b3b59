//! A customer payment recorded in the ERP against an invoice, and the payment status the CRM
//! shows for a deal.

use crate::domain::ErpId;
use crate::domain::datetime::Date;
use crate::domain::invoice::PaymentState;
use crate::domain::money::Money;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: ErpId,
    /// The invoice the payment settles (fully or in part).
    pub invoice: ErpId,
    pub amount: Money,
    pub date: Date,
    pub reference: Option<String>,
}

/// What the CRM shows for an invoiced deal: invoiced, paid and outstanding amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceStatus {
    pub invoice_number: String,
    pub invoiced: Money,
    pub outstanding: Money,
    pub due_date: Option<Date>,
    pub state: PaymentState,
}

impl InvoiceStatus {
    /// Invoiced minus outstanding.
    pub fn paid(&self) -> Result<Money, crate::domain::money::MoneyError> {
        self.invoiced.checked_sub(self.outstanding)
    }

    /// Past its due date with something still owed.
    pub fn overdue(&self, today: Date) -> bool {
        self.outstanding.minor() > 0 && self.due_date.is_some_and(|due| due < today)
    }
}

/// What a customer owes across its posted invoices, as the CRM shows it on the company.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerBalance {
    /// Outstanding amounts, one per currency, ordered by currency code.
    pub outstanding: Vec<Money>,
    /// Invoices past their due date with something still owed.
    pub overdue_invoices: u32,
}

impl CustomerBalance {
    /// `1190000.00 COP; 20.00 USD`, or `0` when nothing is owed.
    pub fn outstanding_text(&self) -> String {
        if self.outstanding.is_empty() {
            return "0".into();
        }
        self.outstanding
            .iter()
            .map(|m| format!("{} {}", m.to_decimal_string(), m.currency()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
