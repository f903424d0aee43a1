//! CPU cost of one `GET /api/health` answer, store excluded (in-memory store,
//! one `latest()` call per request, as with DynamoDB). Run with
//! `cargo bench -p health-api --bench health_handler`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use health_api::{AppState, router};
use monitoring_config::Secret;
use monitoring_core::domain::probe_result::{
    Component, Measurement, Observation, ProbeResult, Unit,
};
use monitoring_core::memory::store::MemoryStore;
use monitoring_core::ports::SystemClock;
use tower::ServiceExt;

fn results() -> Vec<ProbeResult> {
    Component::ALL
        .into_iter()
        .map(|c| {
            let obs = Observation::measured(
                (0..6)
                    .map(|i| Measurement::new(&format!("m{i}"), f64::from(i), Unit::Count))
                    .collect(),
            );
            ProbeResult::from_observation(c, obs, time::OffsetDateTime::now_utc(), 2.0)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let state = Arc::new(AppState::new(
        MemoryStore::with_results(results()),
        Some(&Secret::new("bench-token")),
        Duration::from_secs(3600),
        Duration::from_secs(10),
        Arc::new(SystemClock),
    ));
    let app = router(state);
    let cases: [(&str, &[(&str, &str)]); 3] = [
        ("public_json", &[]),
        (
            "public_health_json",
            &[("accept", "application/health+json")],
        ),
        ("detailed_json", &[("authorization", "Bearer bench-token")]),
    ];
    for (name, headers) in cases {
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut req = http::Request::get("/api/health");
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                let req = req.body(Body::empty()).unwrap_or_else(|e| panic!("{e}"));
                let response = runtime
                    .block_on(app.clone().oneshot(req))
                    .unwrap_or_else(|e| match e {});
                black_box(response);
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
