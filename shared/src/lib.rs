//! puente's hub: everything the Lambda functions share.
//!
//! Dependencies point one way: `connectors` and `aws` implement the small traits in `ports`;
//! `flows` orchestrate through those ports and the pure rules in `mapping`; `domain` holds the
//! canonical types and knows no vendor, SDK or Lambda type.

pub mod aws;
pub mod config;
pub mod connectors;
pub mod domain;
pub mod error;
pub mod flows;
pub mod lambda;
pub mod mapping;
pub mod ports;
pub mod systems;
pub mod telemetry;
pub mod tls;
