//! `product.product` records read as canonical `Product`s (Odoo is the system of record for the
//! catalogue).
//!
//! `type` is `consu`/`service`/`combo` from Odoo 18 on; before, `consu`/`service`/`product`
//! (storable), with `detailed_type` adding module kinds (`event`, ...) in 16 and 17. `type`
//! exists in every version, so it is the one read; `detailed_type` is accepted if a caller
//! reads it instead.

use super::record::Problems;
use crate::domain::money::{Currency, Rate};
use crate::domain::product::{Product, ProductKind};
use crate::domain::{Rejection, Sku};
use serde_json::{Map, Value};

/// Fields to read for `product`.
pub const PRODUCT_FIELDS: &[&str] = &[
    "id",
    "default_code",
    "name",
    "type",
    "list_price",
    "taxes_id",
    "active",
];

/// A product read with `PRODUCT_FIELDS`. `list_price` is in `currency` (the company's, which
/// the caller knows: product prices carry no currency of their own); `tax_rate` gives the
/// percentage of an `account.tax` id, from the caller's tax table. A product without an
/// internal reference (`default_code`, the SKU both sides share) is rejected.
pub fn product(
    record: &Map<String, Value>,
    currency: Currency,
    tax_rate: impl Fn(i64) -> Option<Rate>,
) -> Result<Product, Rejection> {
    let mut problems = Problems::default();
    let sku = problems
        .required_text(record, "default_code")
        .and_then(|raw| {
            Sku::parse(&raw)
                .map_err(|e| problems.push("default_code", e.to_string()))
                .ok()
        });
    let name = problems
        .required_text(record, "name")
        .map(|name| name.trim().to_owned());
    let type_field = if record.contains_key("type") || !record.contains_key("detailed_type") {
        "type"
    } else {
        "detailed_type"
    };
    let kind = problems
        .required_text(record, type_field)
        .and_then(|raw| match raw.trim() {
            "consu" | "product" => Some(ProductKind::Goods),
            "service" => Some(ProductKind::Service),
            _ => {
                problems.push(
                    type_field,
                    "is not goods (consu, product) or a service: puente cannot sell it",
                );
                None
            }
        });
    let list_price = problems.amount(record, "list_price", currency);
    let taxes = problems.ids(record, "taxes_id").and_then(|ids| {
        let rates: Vec<Option<Rate>> = ids.iter().map(|id| tax_rate(*id)).collect();
        for (id, rate) in ids.iter().zip(&rates) {
            if rate.is_none() {
                problems.push(
                    "taxes_id",
                    format!("tax {id} has no known rate: add it to the tax table"),
                );
            }
        }
        rates.into_iter().collect::<Option<Vec<Rate>>>()
    });
    let active = problems.boolean(record, "active");
    match (sku, name, kind, list_price, taxes, active) {
        (Some(sku), Some(name), Some(kind), Some(list_price), Some(taxes), Some(active))
            if problems.is_empty() =>
        {
            Ok(Product {
                sku,
                name,
                kind,
                list_price,
                taxes,
                active,
            })
        }
        _ => Err(Rejection(problems.0)),
    }
}

/// A product of the catalogue read with `PRODUCT_FIELDS` and `currency_id` (a related field:
/// the company's currency, which its `list_price` is in).
pub fn priced_product(
    record: &Map<String, Value>,
    tax_rate: impl Fn(i64) -> Option<Rate>,
) -> Result<Product, Rejection> {
    let mut problems = Problems::default();
    match problems.currency(record, "currency_id") {
        Some(currency) => product(record, currency, tax_rate),
        None => Err(Rejection(problems.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Money;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("a JSON object literal")
    }

    fn rates(id: i64) -> Option<Rate> {
        (id == 19).then_some(Rate::from_percent(19))
    }

    fn product_of(
        sku: &str,
        kind: ProductKind,
        minor: i64,
        taxes: Vec<Rate>,
        active: bool,
    ) -> Product {
        Product {
            sku: Sku::parse(sku).expect("sku"),
            name: "Licencia anual ERP".into(),
            kind,
            list_price: Money::from_minor(minor, Currency::COP),
            taxes,
            active,
        }
    }

    #[test]
    fn products_of_every_generation_are_read() {
        let iva = vec![Rate::from_percent(19)];
        let cases = [
            (
                json!({"id": 311, "default_code": "LIC-ERP", "name": "Licencia anual ERP",
                       "type": "service", "list_price": 500000.0, "taxes_id": [19],
                       "active": true}),
                product_of(
                    "LIC-ERP",
                    ProductKind::Service,
                    50_000_000,
                    iva.clone(),
                    true,
                ),
            ),
            (
                json!({"id": 312, "default_code": " SRV-01 ", "name": "Licencia anual ERP",
                       "type": "consu", "list_price": 1190000.0, "taxes_id": [],
                       "active": false}),
                product_of("SRV-01", ProductKind::Goods, 119_000_000, vec![], false),
            ),
            (
                json!({"id": 313, "default_code": "CAJA", "name": "Licencia anual ERP",
                       "detailed_type": "product", "list_price": 0.1, "taxes_id": [19],
                       "active": true}),
                product_of("CAJA", ProductKind::Goods, 10, iva, true),
            ),
        ];
        for (record, expected) in cases {
            assert_eq!(
                product(&object(record.clone()), Currency::COP, rates),
                Ok(expected),
                "{record}"
            );
        }
    }

    #[test]
    fn unmappable_products_list_every_failing_field() {
        let record = object(json!({"id": 311, "default_code": false, "name": " ",
            "type": "combo", "list_price": 12.345, "taxes_id": [19, 99]}));
        let rejection = product(&record, Currency::COP, rates).expect_err("unmappable");
        let failed: Vec<&str> = rejection
            .fields()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "default_code",
                "name",
                "type",
                "list_price",
                "taxes_id",
                "active"
            ]
        );
        assert!(
            rejection.to_string().contains("tax 99 has no known rate"),
            "{rejection}"
        );
    }

    #[test]
    fn a_catalogue_product_is_priced_in_its_currency() {
        let record = object(json!({"id": 311, "default_code": "LIC-ERP",
            "name": "Licencia anual ERP", "type": "service", "list_price": 500000.0,
            "taxes_id": [], "active": true, "currency_id": [8, "COP"]}));
        let read = priced_product(&record, rates).expect("a product");
        assert_eq!(
            read.list_price,
            Money::from_minor(50_000_000, Currency::COP)
        );
        let mut unpriced = record.clone();
        unpriced.insert("currency_id".into(), json!(false));
        let rejection = priced_product(&unpriced, rates).expect_err("no currency");
        assert_eq!(rejection.fields()[0].field, "currency_id");
    }
}
