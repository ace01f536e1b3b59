//! The canonical customer: a company or a person that buys from the ERP's owner.

use crate::domain::{Country, Email, Phone, TaxId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerKind {
    Company,
    Person,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub street: Option<String>,
    pub city: Option<String>,
    pub country: Option<Country>,
}

/// A customer whose every field already passed validation (see `mapping::customer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub kind: CustomerKind,
    pub name: String,
    pub tax_id: Option<TaxId>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub address: Address,
}
