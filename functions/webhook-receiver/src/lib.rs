//! webhook-receiver's handler as a library, so its benchmarks (`benches/per_event.rs`) drive
//! the same code the binary runs; `main.rs` stays the composition root.

pub mod handler;
