//! Odoo: the external JSON-RPC API (`POST /jsonrpc`, `common.authenticate` and
//! `object.execute_kw`), authenticated with a user's API key (or password) on every call.

pub mod catalogue;
pub mod client;
pub mod error;
pub mod invoicing;
pub mod payments;
pub mod webhook;
pub mod wire;

pub use client::Odoo;

use crate::domain::System;

pub const SYSTEM: System = System::named("odoo");
