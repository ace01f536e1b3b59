//! HubSpot CRM: CRM v3 objects API (bearer token) and v3-signed webhooks.

pub mod client;
pub mod deals;
pub mod error;
pub mod listing;
pub mod products;
pub mod signature;
pub mod wire;

pub use client::HubSpot;

use crate::domain::System;

pub const SYSTEM: System = System::named("hubspot");
