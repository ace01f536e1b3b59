//! Runs one per-event path `iterations` times, for instruction counts under callgrind
//! (`scripts/bench-cpu`): `per_event <receiver-1|receiver-100|worker> <iterations>`.
//! The paths are the criterion bench's (`benches/paths`).

#[path = "../benches/paths/mod.rs"]
mod paths;

use paths::{ReceiverPath, WorkerPath};
use std::hint::black_box;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: per_event <receiver-1|receiver-100|worker> <iterations>";
    let path = args.next().ok_or(usage)?;
    let iterations: u64 = args.next().and_then(|n| n.parse().ok()).ok_or(usage)?;
    match path.as_str() {
        "receiver-1" | "receiver-100" => {
            let events = if path == "receiver-1" { 1 } else { 100 };
            let path = ReceiverPath::new(events);
            // Read by scripts/bench-cpu to count per event.
            eprintln!("events_per_iteration={}", path.events);
            for _ in 0..iterations {
                black_box(path.run());
            }
        }
        "worker" => {
            let path = WorkerPath::new();
            eprintln!("events_per_iteration=1");
            for _ in 0..iterations {
                black_box(path.run())?;
            }
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
