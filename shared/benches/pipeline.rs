//! Cost of the log pipeline per event: a subscription payload decoded
//! (base64 + gzip + envelope) and run through the default rules, and the
//! same events without the decoding. Run with
//! `cargo bench -p shared --bench pipeline`.

mod common;

use std::hint::black_box;

use common::{events, payload};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shared::domain::logs::decode::decode_awslogs_data;
use shared::domain::logs::redact::Redactor;
use shared::domain::metrics::aggregate::CardinalityGuard;
use shared::domain::pipeline::process_events;
use shared::domain::rules::RuleSet;

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
