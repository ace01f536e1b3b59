//! Products, ERP to CRM: the ERP's catalogue is the system of record for products and prices,
//! and the reconciler keeps the CRM's product library from it. No webhook carries catalogue
//! changes and no other flow writes products, so this pass makes its writes itself, each one
//! compared before it is made: a product is created when the library lacks it, updated where
//! its name, SKU or price differ, and archived when the ERP archived it.
//!
//! The create-once key is the ERP reference each library product carries
//! (`odoo-product-311`) in a property with unique values: two runs creating the same product
//! at once end with one, updated by the second.
//!
//! Only the ERP side is paged (its changes since the watermark, and the nightly sweep of the
//! whole catalogue). A product edited by hand in the CRM is put back by the next sweep.

use super::report::{Class, Difference, DriftReport, Pass};
use super::{Pager, PassKind};
use crate::domain::money::Currency;
use crate::domain::product::Product;
use crate::domain::{EntityRef, System};
use crate::mapping::customer::external_reference;
use crate::ports::{
    Cursors, LibraryProduct, ListedProduct, ProductCatalogue, ProductLibrary, Written,
};
use std::collections::{HashMap, HashSet};

/// The flow's name in cursors and reports.
pub const FLOW: &str = "product";

/// The ERP's catalogue, the CRM's library, and the currency the library's prices are in.
#[derive(Debug)]
pub struct ProductReconcile<'a, E, C> {
    pub catalogue: &'a E,
    pub library: &'a C,
    /// The CRM's company currency: a catalogue priced in another is reported, not written.
    pub currency: Currency,
}

/// What a product of the catalogue needs in the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The library shows it as the catalogue has it (or it is archived on both sides).
    Nothing,
    /// The library lacks it.
    Create(LibraryProduct),
    /// The library shows other values for these fields.
    Update(LibraryProduct, Vec<String>),
    /// The ERP archived it: it leaves the library.
    Archive,
    /// It cannot be shown as it is (these fields).
    Invalid(Vec<String>),
}

/// Compares a catalogue product with what the library shows for it (`None`: nothing).
pub fn plan(product: &Product, shown: Option<&LibraryProduct>, currency: Currency) -> Plan {
    if !product.active {
        return match shown {
            Some(_) => Plan::Archive,
            None => Plan::Nothing,
        };
    }
    if product.list_price.currency() != currency {
        return Plan::Invalid(vec!["list_price".into()]);
    }
    let wanted = LibraryProduct {
        name: product.name.clone(),
        sku: product.sku.as_str().to_owned(),
        price: Some(product.list_price),
    };
    let Some(shown) = shown else {
        return Plan::Create(wanted);
    };
    let differs = [
        ("name", wanted.name != shown.name),
        ("sku", wanted.sku != shown.sku),
        ("price", wanted.price != shown.price),
    ];
    let fields: Vec<String> = differs
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(name, _)| name.to_owned())
        .collect();
    if fields.is_empty() {
        Plan::Nothing
    } else {
        Plan::Update(wanted, fields)
    }
}

impl<E: ProductCatalogue, C: ProductLibrary> ProductReconcile<'_, E, C> {
    /// The catalogue since its watermark, then its sweep (an unfinished one, or a new one when
    /// `start_sweep`). A product compared once in a run is not compared again.
    pub async fn run<U: Cursors>(
        &self,
        pager: &Pager<'_, U>,
        start_sweep: bool,
        report: &mut DriftReport,
        progress: &(dyn Fn(&Pass, bool) + Sync),
    ) {
        let mut compared = HashSet::new();
        let size = pager.paging.page_size;
        let system = self.catalogue.system();
        for kind in [PassKind::Incremental, PassKind::Sweep] {
            let list =
                async |after: Written| self.catalogue.list_changed_products(&after, size).await;
            let handle = async |page: &[ListedProduct]| {
                self.reconcile_page(page, pager.dry_run, &mut compared, report)
                    .await
            };
            if let Some(walk) = pager.open(FLOW, system.name(), kind, start_sweep).await {
                let pass = pager.page_through(walk, list, handle, progress).await;
                report.passes.push(pass);
            }
        }
    }

    /// Compares one page of the catalogue with the library (one batch read) and makes the
    /// writes it needs, unless `dry_run`. An error is a read or a write that failed: the page
    /// is not done, and the next run takes it again.
    async fn reconcile_page(
        &self,
        page: &[ListedProduct],
        dry_run: bool,
        compared: &mut HashSet<String>,
        report: &mut DriftReport,
    ) -> Result<(), String> {
        let (erp, crm) = (self.catalogue.system(), self.library.system());
        let origins: Vec<String> = page
            .iter()
            .map(|listed| origin(erp, &listed.written.id))
            .collect();
        let shown: HashMap<String, (String, LibraryProduct)> = self
            .library
            .find_products(&origins, self.currency)
            .await
            .map_err(|e| format!("could not read {crm} products: {e}"))?
            .into_iter()
            .map(|(origin, id, product)| (origin, (id, product)))
            .collect();
        for (listed, origin) in page.iter().zip(origins) {
            if !compared.insert(origin.clone()) {
                continue;
            }
            let there = shown.get(&origin);
            let found = |class, fields: Vec<String>| Difference {
                flow: FLOW.into(),
                class,
                record: format!("{erp}#{}", listed.written.id),
                counterpart: there.map(|(id, _)| format!("{crm}#{id}")),
                fields,
            };
            let product = match &listed.product {
                Ok(product) => product,
                Err(rejection) => {
                    let fields = rejection.fields().iter().map(|f| f.field.clone()).collect();
                    report.record(found(Class::Invalid, fields));
                    continue;
                }
            };
            let plan = plan(product, there.map(|(_, shown)| shown), self.currency);
            let write = match plan {
                Plan::Nothing => continue,
                Plan::Invalid(fields) => {
                    report.record(found(Class::Invalid, fields));
                    continue;
                }
                Plan::Create(wanted) => {
                    report.record(found(Class::Missing, Vec::new()));
                    Write::Create(origin.clone(), wanted)
                }
                Plan::Update(wanted, fields) => {
                    report.record(found(Class::Drifted, fields));
                    Write::Update(wanted)
                }
                Plan::Archive => {
                    report.record(found(Class::Drifted, vec!["active".into()]));
                    Write::Archive
                }
            };
            if dry_run {
                report.repairs_written += 1;
                continue;
            }
            let id = there.map(|(id, _)| id.as_str()).unwrap_or_default();
            let written = match &write {
                Write::Create(origin, wanted) => self
                    .library
                    .create_product(origin, wanted)
                    .await
                    .map(|_| ()),
                Write::Update(wanted) => self.library.update_product(id, wanted).await,
                Write::Archive => self.library.archive_product(id).await,
            };
            written.map_err(|e| format!("could not write the {crm} product for {origin}: {e}"))?;
            report.repairs_written += 1;
        }
        Ok(())
    }
}

/// A write the library needs.
enum Write {
    Create(String, LibraryProduct),
    Update(LibraryProduct),
    Archive,
}

/// The reference a library product carries for ERP product `id`: `odoo-product-311`.
fn origin(erp: System, id: &str) -> String {
    external_reference(&EntityRef::new(erp, id), "product")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Sku;
    use crate::domain::money::Money;
    use crate::domain::product::ProductKind;

    fn licence(price_minor: i64, active: bool) -> Product {
        Product {
            sku: Sku::parse("LIC-ERP").expect("sku"),
            name: "Licencia anual ERP".into(),
            kind: ProductKind::Service,
            list_price: Money::from_minor(price_minor, Currency::COP),
            taxes: Vec::new(),
            active,
        }
    }

    fn shown(price_minor: i64) -> LibraryProduct {
        LibraryProduct {
            name: "Licencia anual ERP".into(),
            sku: "LIC-ERP".into(),
            price: Some(Money::from_minor(price_minor, Currency::COP)),
        }
    }

    #[test]
    fn a_product_the_library_lacks_is_created_and_one_it_shows_alike_is_left() {
        let product = licence(50_000_000, true);
        assert_eq!(
            plan(&product, None, Currency::COP),
            Plan::Create(shown(50_000_000))
        );
        let same = shown(50_000_000);
        assert_eq!(plan(&product, Some(&same), Currency::COP), Plan::Nothing);
    }

    #[test]
    fn a_new_price_or_name_is_drift_named_by_field() {
        let product = licence(55_000_000, true);
        let mut old = shown(50_000_000);
        assert_eq!(
            plan(&product, Some(&old), Currency::COP),
            Plan::Update(shown(55_000_000), vec!["price".into()])
        );
        old.name = "Licencia".into();
        old.price = None;
        assert_eq!(
            plan(&product, Some(&old), Currency::COP),
            Plan::Update(shown(55_000_000), vec!["name".into(), "price".into()])
        );
    }

    #[test]
    fn an_archived_product_leaves_the_library_and_a_foreign_price_is_not_written() {
        let archived = licence(50_000_000, false);
        assert_eq!(
            plan(&archived, Some(&shown(50_000_000)), Currency::COP),
            Plan::Archive
        );
        assert_eq!(plan(&archived, None, Currency::COP), Plan::Nothing);
        assert_eq!(
            plan(&licence(50_000_000, true), None, Currency::USD),
            Plan::Invalid(vec!["list_price".into()])
        );
    }

    #[test]
    fn the_reference_names_the_erp_product() {
        assert_eq!(origin(System::named("odoo"), "311"), "odoo-product-311");
    }
}
