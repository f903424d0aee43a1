//! Cost of the in-memory alert engine per signal (target: at most 1 µs):
//! a stream of auth failures over 250 addresses and 3000 users (two signals
//! per failure, as the log rules emit them), API errors and error logs, in
//! event-time order, through the default alert rules. Run with
//! `cargo bench -p monitoring-core --bench alerts`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use monitoring_core::domain::alerts::{AlertInput, AlertRules, StreamEngine};
use monitoring_core::domain::rules::Signal;

const SIGNALS: usize = 100_000;

fn signals(n: usize) -> Vec<Signal> {
    let sample = r#"{"timestamp":"2025-05-20T10:30:00.123Z","level":"INFO","logger":"security","message":"Authentication attempt","user_id":"[user]","ip_address":"ip:5f2c0a9e","success":false}"#;
    let mut out = Vec::with_capacity(n);
    let mut i = 0usize;
    while out.len() < n {
        // A few events per second, in order.
        let ts = 1_747_737_000_000 + (i as i64) * 250;
        let id = format!("{i:056}");
        let signal = |name: &str, key_name: &str, key: String| Signal {
            name: name.into(),
            keys: vec![(key_name.into(), key)],
            event_id: id.clone(),
            timestamp_ms: ts,
            sample: sample.to_owned(),
        };
        match i % 4 {
            0 | 1 => {
                out.push(signal("auth_failures", "ip", format!("ip:{:08x}", i % 250)));
                out.push(signal(
                    "auth_failures",
                    "user",
                    format!("user:{:08x}", i % 3000),
                ));
            }
            2 => out.push(signal(
                "api_errors",
                "endpoint",
                format!("/api/users/{}", i % 20),
            )),
            _ => out.push(signal("error_logs", "logger", "app.core.database".into())),
        }
        i += 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let rules = Arc::new(AlertRules::default_rules().unwrap_or_else(|e| panic!("{e}")));
    let input = signals(SIGNALS);
    let mut group = c.benchmark_group("alerts");
    group.throughput(Throughput::Elements(input.len() as u64));
    group.sample_size(20);
    group.bench_function("stream_engine_per_signal", |b| {
        b.iter_batched(
            || StreamEngine::new(Arc::clone(&rules)),
            |mut engine| {
                let mut out = Vec::new();
                for s in &input {
                    engine.push(&AlertInput::from_signal(s), &mut out);
                }
                engine.finish(&mut out);
                black_box(out.len())
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
