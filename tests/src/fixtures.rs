//! Data several test files share.

use crate::harness::{Options, World};

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

/// The company the money-path tests invoice: HubSpot company 901.
pub const INVOICED_COMPANY: &str = "901";

/// A world for the money path: invoicing (19% default tax) and payment-sync started on top of
/// `options`, company [`INVOICED_COMPANY`] in HubSpot, and the deal and company properties a
/// portal's admin creates for the ERP's figures.
pub async fn invoicing_world(options: Options) -> anyhow::Result<World> {
    let mut options = options.with_invoicing(&[("PUENTE_DEFAULT_TAXES", "19")]);
    options.payments = true;
    let world = World::start(options).await?;
    world.hubspot.put_company(
        INVOICED_COMPANY,
        &[
            ("name", "Ferretería El Tornillo SAS"),
            ("nit", "800.197.268-4"),
            ("country", "CO"),
        ],
    );
    for property in DEAL_PROPERTIES {
        world.hubspot.define_property("deals", property);
    }
    for property in ["erp_outstanding", "erp_overdue_invoices"] {
        world.hubspot.define_property("companies", property);
    }
    Ok(world)
}
