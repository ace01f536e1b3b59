//! Use cases. Each flow talks to ports only, so it reads as the architecture's steps and runs
//! against in-memory fakes in unit tests.

pub mod sync_customer;
