//! A CRM deal, as far as invoicing needs it.

use crate::domain::CrmId;
use crate::domain::datetime::Date;
use crate::domain::money::Money;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealSummary {
    pub id: CrmId,
    pub name: String,
    /// The pipeline stage's internal id; which stages count as won is configuration.
    pub stage: String,
    pub amount: Option<Money>,
    pub close_date: Option<Date>,
    /// The company the deal is with.
    pub company: Option<CrmId>,
}
