//! A product or service from the ERP's catalogue, the system of record for products and prices.

use crate::domain::Sku;
use crate::domain::money::{Money, Rate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    Goods,
    Service,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub sku: Sku,
    pub name: String,
    pub kind: ProductKind,
    /// Sales price before taxes, in the price list's currency.
    pub list_price: Money,
    /// Sales taxes applied to the product by default (19% IVA, for example).
    pub taxes: Vec<Rate>,
    pub active: bool,
}
