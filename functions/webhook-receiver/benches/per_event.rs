//! Per-event CPU (issue 8): the receiver's path for a 1-event and a 100-event signed HubSpot
//! delivery, and the customer worker's pure path for one company change. See `paths` for what
//! each covers. Instruction counts of the same paths: `scripts/bench-cpu`.
//!
//! `cargo bench -p webhook-receiver --bench per_event`

mod paths;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use paths::{ReceiverPath, WorkerPath};
use std::hint::black_box;

fn receiver(c: &mut Criterion) {
    let mut group = c.benchmark_group("receiver");
    for events in [1, 100] {
        let path = ReceiverPath::new(events);
        group.throughput(Throughput::Elements(path.events as u64));
        group.bench_function(format!("hubspot_batch_{events}"), |b| {
            b.iter(|| black_box(path.run()))
        });
    }
    group.finish();
}

fn worker(c: &mut Criterion) {
    let path = WorkerPath::new();
    let mut group = c.benchmark_group("worker");
    group.throughput(Throughput::Elements(1));
    group.bench_function("customer_hubspot_to_odoo", |b| {
        b.iter(|| black_box(path.run()))
    });
    group.finish();
}

criterion_group!(benches, receiver, worker);
criterion_main!(benches);
