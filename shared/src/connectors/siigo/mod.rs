//! Siigo Nube (Colombia): wire shapes and their mapping to the canonical model. The HTTP client
//! (`POST /auth` token, `Partner-Id`, 100 requests per minute) comes with the Siigo flows.

pub mod wire;

use crate::domain::System;

pub const SYSTEM: System = System::named("siigo");
