//! A person at a customer: who to invoice, who to call.

use crate::domain::{CrmId, Email, ErpId, Phone};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub first_name: Option<String>,
    /// Required: a contact without a last name (or a single full name) cannot be identified.
    pub last_name: String,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub job_title: Option<String>,
    /// The customer the contact works for, on whichever side it is known.
    pub company: Option<CompanyRef>,
}

/// The company a contact belongs to, by the id of the side that told us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompanyRef {
    Crm(CrmId),
    Erp(ErpId),
}

impl Contact {
    /// "First Last", or the last name alone.
    pub fn full_name(&self) -> String {
        match &self.first_name {
            Some(first) => format!("{first} {}", self.last_name),
            None => self.last_name.clone(),
        }
    }
}
