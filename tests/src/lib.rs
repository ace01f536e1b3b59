//! puente's test kit: simulators of the remote systems (HubSpot, Odoo) that speak their
//! documented HTTP APIs, and a local Lambda platform (Runtime API, HTTP API front, SQS event
//! source) that runs the functions' release binaries the way AWS does. The integration tests
//! in `tests/tests/` and the `puente-local` runner are built from these parts.

pub mod aws_local;
pub mod bench;
pub mod chaos;
pub mod fixtures;
pub mod harness;
pub mod platform;
pub mod sim;
