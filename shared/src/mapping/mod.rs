//! Pure rules between the canonical model and each system's shape: no I/O, no vendor types.

pub mod customer;
pub mod field;
pub mod ownership;
