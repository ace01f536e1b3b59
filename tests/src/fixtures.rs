//! Data several test files share.

/// The deal properties that show the ERP invoice, as a portal's admin creates them (the
/// defaults of `HUBSPOT_DEAL_PROPERTY_*`).
pub const DEAL_PROPERTIES: [&str; 7] = [
    "erp_invoice_number",
    "erp_amount_invoiced",
    "erp_amount_paid",
    "erp_amount_outstanding",
    "erp_due_date",
    "erp_payment_state",
    "erp_overdue",
];
