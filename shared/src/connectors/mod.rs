//! One folder per remote system, the same files in each: `client` (the port implementations),
//! `wire` (serde shapes with the vendor's field names), `error` (the vendor's failures mapped
//! into `ConnectorError`). Connectors never import each other.

pub mod http;
pub mod hubspot;
pub mod json;
pub mod odoo;
pub mod sap_b1;
pub mod session;
pub mod siigo;
