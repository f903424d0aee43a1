//! Cost of the log pipeline per event: a subscription payload decoded
//! (base64 + gzip + envelope) and run through the default rules, and the
//! same events without the decoding. Run with
//! `cargo bench -p monitoring-core --bench pipeline`.

mod common;

use std::hint::black_box;

use common::{events, payload};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use monitoring_core::domain::logs::decode::decode_awslogs_data;
use monitoring_core::domain::logs::redact::Redactor;
use monitoring_core::domain::metrics::aggregate::CardinalityGuard;
use monitoring_core::domain::pipeline::process_events;
use monitoring_core::domain::rules::RuleSet;

fn bench(c: &mut Criterion) {
    let rules = RuleSet::default_rules().unwrap_or_else(|e| panic!("{e}"));
    let redactor = Redactor::new(b"bench-redaction-key-0123").unwrap_or_else(|e| panic!("{e}"));
    let batch = events(5_000);
    let data = payload(&batch);

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("events_through_default_rules", |b| {
        b.iter(|| {
            let mut guard = CardinalityGuard::default();
            black_box(process_events(
                &batch,
                &rules,
                &redactor,
                &mut guard,
                Default::default(),
            ))
        })
    });
    group.bench_function("subscription_payload_end_to_end", |b| {
        b.iter(|| {
            let decoded = decode_awslogs_data(&data, 32 << 20).unwrap_or_else(|e| panic!("{e}"));
            let mut guard = CardinalityGuard::default();
            black_box(process_events(
                &decoded.events,
                &rules,
                &redactor,
                &mut guard,
                Default::default(),
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
