//! SAP Business One Service Layer: wire shapes and their mapping to the canonical model. The
//! HTTP client (session login, `B1SESSION` cookie, re-login on 401) comes with the SAP flows.

pub mod wire;

use crate::domain::System;

pub const SYSTEM: System = System::named("sap_b1");
