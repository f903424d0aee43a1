//! Chaos: many concurrent log-metrics invocations (the Lambda's handler,
//! through the ports) over overlapping and redelivered batches that share
//! hot series and alert windows, with conflicts, throttling, timeouts,
//! partial commits and crashes between commit and publish injected
//! (`monitoring_adapters::chaos`). Whatever fails is retried, as Lambda and a
//! redrive would, in any container. At the end the series must be exact,
//! each incident transition published (once, or more only where a fault
//! made a publish ambiguous, and then with one dedup id), nothing lost.
//!
//! `CHAOS_SEED` replays a run (the seed is printed when it fails);
//! `CHAOS_SIZE` multiplies the batches (`make soak`). The in-memory run
//! needs no stack; `dynamodb_adapters_under_faults` wraps the DynamoDB
//! adapters on moto.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log_metrics::{LogMetrics, SeriesGuard};
use monitoring_adapters::chaos::{
    Chaos, ChaosAlerts, ChaosHeartbeats, ChaosPublisher, ChaosSeries, Crashed, Fault, FaultPlan,
    run_invocation,
};
use monitoring_adapters::dynamodb_alerts::DynamoAlertStore;
use monitoring_adapters::dynamodb_series::DynamoSeriesStore;
use monitoring_adapters::retry::TokioTimer;
use monitoring_core::domain::alerts::{AlertEngine, EngineSettings, TransitionKind};
use monitoring_core::domain::heartbeat::Heartbeat;
use monitoring_core::domain::logs::decode::SubscriptionBatch;
use monitoring_core::domain::logs::record::LogEvent;
use monitoring_core::domain::logs::redact::Redactor;
use monitoring_core::domain::metrics::aggregate::CardinalityGuard;
use monitoring_core::domain::metrics::series::{OVERFLOW, SeriesKey, StoredSeries, StoredValue};
use monitoring_core::domain::rules::RuleSet;
use monitoring_core::memory::alerts::{
    MemoryAlertStore, RecordingPublisher, StaticComponents, StaticSilences,
};
use monitoring_core::memory::series::MemorySeriesStore;
use monitoring_core::ports::{AlertStore, HeartbeatSink, SeriesSource, SeriesStore, StoreError};
use serde_json::{Value, json};
use test_support::alert_rules::test_alert_rules;
use test_support::stack::{create_table, sdk};
use time::OffsetDateTime;
use time::macros::datetime;

/// When the invocations run (each attempt a millisecond later).
const NOW: OffsetDateTime = datetime!(2025-05-20 10:35 UTC);
const NOW_MS: i64 = 1_747_737_300_000;
/// Five failed logins from one address fire `auth_failures`.
const HOT_IPS: usize = 4;
/// Invocations running at once (each its own container: its own guard).
const CONTAINERS: usize = 24;
/// Attempts per delivery before the test gives up on it ("lost").
const MAX_ATTEMPTS: u32 = 60;

fn seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..))
}

fn size() -> usize {
    std::env::var("CHAOS_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Prints the seed when the test fails, so the run can be replayed.
struct SeedOnFailure(u64);

impl Drop for SeedOnFailure {
    #[allow(
        clippy::print_stderr,
        reason = "the seed is for the person reading the failed test's output"
    )]
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "chaos run failed: replay with CHAOS_SEED={} CHAOS_SIZE={}",
                self.0,
                size()
            );
        }
    }
}

/// What the generator put in the batches, counted independently of the
/// code under test.
#[derive(Debug, Default)]
struct Expected {
    events: u64,
    failed_logins: u64,
    successes: u64,
    /// Failed logins per hot address (each at least five).
    hot: BTreeMap<String, u64>,
}

/// `batches` subscription payloads over four streams: failed logins from
/// a few hot addresses (shared alert windows), logins that succeed, text
/// records from many loggers (every eighth batch from 120 loggers, so its
/// series take two chunks), and a few addresses that fail twice only.
fn generate(seed: u64, batches: usize) -> (Vec<Value>, Expected) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut expected = Expected::default();
    let total_events = batches * 40;
    // Every record within two minutes before NOW: one alert window.
    let step = (120_000 / total_events.max(1)).max(1) as i64;
    let mut id = 0u64;
    let mut out = Vec::new();
    for b in 0..batches {
        let wide = b % 8 == 7;
        let n = if wide { 120 } else { rng.usize(10..50) };
        let mut events = Vec::new();
        for j in 0..n {
            id += 1;
            let ts = NOW_MS - 125_000 + id as i64 * step;
            let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts) * 1_000_000)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            let message = if wide {
                format!("2025-05-20 10:33:00,000 - app.mod{j} - INFO - request handled")
            } else {
                match rng.u8(0..10) {
                    0..=3 => {
                        let ip = format!("203.0.113.{}", 10 + rng.usize(0..HOT_IPS));
                        *expected.hot.entry(ip.clone()).or_default() += 1;
                        expected.failed_logins += 1;
                        login(&at, &format!("u{id}"), &ip, false)
                    }
                    4..=6 => {
                        expected.successes += 1;
                        login(&at, &format!("u{id}"), "198.51.100.1", true)
                    }
                    _ => format!(
                        "2025-05-20 10:33:00,000 - app.mod{} - WARNING - slow query",
                        rng.usize(0..30)
                    ),
                }
            };
            events.push(LogEvent {
                id: format!("{id:056}"),
                timestamp_ms: ts,
                message,
            });
        }
        if b < 6 {
            // A cold address: two failures, below the threshold.
            for _ in 0..2 {
                id += 1;
                let ts = NOW_MS - 125_000 + id as i64 * step;
                let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts) * 1_000_000)
                    .unwrap()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap();
                expected.failed_logins += 1;
                let ip = format!("192.0.2.{b}");
                events.push(LogEvent {
                    id: format!("{id:056}"),
                    timestamp_ms: ts,
                    message: login(&at, &format!("u{id}"), &ip, false),
                });
            }
        }
        expected.events += events.len() as u64;
        out.push(
            SubscriptionBatch::data(&format!("app-{}", b % 4), events)
                .to_lambda_event()
                .unwrap(),
        );
    }
    // Enough failures for every hot address to fire.
    assert!(expected.hot.len() == HOT_IPS && expected.hot.values().all(|n| *n >= 5));
    (out, expected)
}

fn login(at: &str, user: &str, ip: &str, success: bool) -> String {
    json!({
        "timestamp": at, "level": if success { "INFO" } else { "WARNING" },
        "logger": "security", "message": "Authentication attempt", "user_id": user,
        "ip_address": ip, "success": success, "method": "password",
        "endpoint": "/api/auth/login",
    })
    .to_string()
}

/// The drift heartbeat, kept in memory.
#[derive(Default)]
struct Beats(Mutex<BTreeMap<Heartbeat, OffsetDateTime>>);

impl HeartbeatSink for Beats {
    async fn beat(&self, heartbeat: Heartbeat, at: OffsetDateTime) -> Result<(), StoreError> {
        let mut beats = self.0.lock().unwrap();
        let slot = beats.entry(heartbeat).or_insert(at);
        *slot = (*slot).max(at);
        Ok(())
    }
}

type Engine<A> = AlertEngine<
    ChaosAlerts<A>,
    ChaosPublisher<RecordingPublisher>,
    StaticSilences,
    StaticComponents,
>;
type App<S, A> = LogMetrics<ChaosSeries<S>, ChaosHeartbeats<Beats>, Engine<A>>;

/// The stores every container shares, each behind the chaos.
struct World<S, A> {
    series: Arc<S>,
    alerts: Arc<A>,
    publisher: Arc<RecordingPublisher>,
    beats: Arc<Beats>,
    chaos: Arc<Chaos>,
}

impl<S: SeriesStore + SeriesSource, A: AlertStore> World<S, A> {
    fn engine(&self) -> Engine<A> {
        AlertEngine::new(
            test_alert_rules(),
            ChaosAlerts::new(self.alerts.clone(), self.chaos.clone()),
            ChaosPublisher::new(self.publisher.clone(), self.chaos.clone()),
            StaticSilences(vec![]),
            StaticComponents(vec![]),
            EngineSettings::default(),
            Arc::new(TokioTimer),
        )
    }

    /// One container. Some have a small cardinality cap, so the same batch
    /// folds differently depending on where it runs (the chunks must not).
    fn container(&self, index: usize) -> App<S, A> {
        let cap = if index.is_multiple_of(3) { 12 } else { 1000 };
        LogMetrics {
            rules: RuleSet::default_rules().unwrap(),
            redactor: Redactor::new(b"chaos-test-redaction-key").unwrap(),
            guard: SeriesGuard::new(CardinalityGuard::new(cap)),
            store: ChaosSeries::new(self.series.clone(), self.chaos.clone()),
            heartbeats: ChaosHeartbeats::new(self.beats.clone(), self.chaos.clone()),
            alerts: self.engine(),
            namespace: "Chaos".into(),
            parse: Default::default(),
            max_decompressed_bytes: 32 << 20,
        }
    }
}

/// What the run did.
#[derive(Debug, Default)]
struct Report {
    deliveries: usize,
    attempts: usize,
    /// Attempts that failed (an error or a crash) and were retried.
    retries: usize,
    crashes: usize,
    /// The latest `now` of an invocation that succeeded.
    last_ok: Option<OffsetDateTime>,
    /// The latest `now` of any attempt.
    last_attempt: Option<OffsetDateTime>,
    evaluator_runs: usize,
}

/// Delivers every payload (some two or three times: redeliveries, some at
/// once), through `CONTAINERS` concurrent invocations; a failed attempt
/// goes back to the queue for any container; then runs the evaluator until
/// the outbox is empty.
async fn run<S, A>(world: &World<S, A>, payloads: &[Value], seed: u64, containers: usize) -> Report
where
    S: SeriesStore + SeriesSource + 'static,
    A: AlertStore + 'static,
{
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
    let mut queue: VecDeque<(usize, u32)> = VecDeque::new();
    for i in 0..payloads.len() {
        for _ in 0..rng.usize(1..=3) {
            queue.push_back((i, 0));
        }
    }
    // Redeliveries anywhere in the stream, concurrent with the first.
    rng.shuffle(queue.make_contiguous());
    let deliveries = queue.len();
    let queue = Mutex::new(queue);
    let outstanding = AtomicUsize::new(deliveries);
    let clock = AtomicU64::new(0);
    let report = Mutex::new(Report {
        deliveries,
        ..Report::default()
    });
    let apps: Vec<App<S, A>> = (0..containers).map(|i| world.container(i)).collect();
    let workers = apps.iter().map(|app| {
        let (queue, outstanding, clock, report) = (&queue, &outstanding, &clock, &report);
        async move {
            while outstanding.load(Ordering::SeqCst) > 0 {
                let next = queue.lock().unwrap().pop_front();
                let Some((index, attempt)) = next else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let tick = clock.fetch_add(1, Ordering::SeqCst);
                let now = NOW + Duration::from_millis(tick);
                let mut emf = Vec::new();
                let out = run_invocation(app.handle(&payloads[index], now, &mut emf)).await;
                let mut r = report.lock().unwrap();
                r.attempts += 1;
                r.last_attempt = r.last_attempt.max(Some(now));
                match out {
                    Ok(Ok(_)) => {
                        r.last_ok = r.last_ok.max(Some(now));
                        outstanding.fetch_sub(1, Ordering::SeqCst);
                    }
                    failed => {
                        r.retries += 1;
                        if matches!(failed, Err(Crashed)) {
                            r.crashes += 1;
                        }
                        assert!(
                            attempt + 1 < MAX_ATTEMPTS,
                            "batch {index} lost: still failing after {MAX_ATTEMPTS} attempts: {failed:?}"
                        );
                        queue.lock().unwrap().push_back((index, attempt + 1));
                    }
                }
            }
        }
    });
    futures::future::join_all(workers).await;
    let mut report = report.into_inner().unwrap();
    // The alert-evaluator: republishes what crashes and failed publishes
    // left in the outbox, once their grace has passed.
    let evaluator = world.engine();
    loop {
        // Past the outbox grace; each later run past the lease a failed
        // run may have left on a notice.
        let at = NOW + Duration::from_secs(150 + 121 * report.evaluator_runs as u64);
        report.evaluator_runs += 1;
        assert!(report.evaluator_runs < 50, "the outbox never drains");
        let _ = evaluator.evaluate(at).await;
        if world
            .alerts
            .pending_notices()
            .await
            .is_ok_and(|p| p.is_empty())
        {
            break;
        }
    }
    report
}

/// Sums a metric's series (an overflow series included).
fn metric_sum(series: &[StoredSeries]) -> f64 {
    series
        .iter()
        .map(|s| match &s.value {
            StoredValue::Counter(v) | StoredValue::Gauge(v) => *v,
            StoredValue::Histogram { count, .. } => *count as f64,
        })
        .sum()
}

fn counter(series: &[StoredSeries], key: &SeriesKey) -> f64 {
    match series.iter().find(|s| &s.key == key).map(|s| &s.value) {
        Some(StoredValue::Counter(v)) => *v,
        other => panic!("{key}: {other:?}"),
    }
}

/// The checks shared by both runs: exact series, one incident per hot
/// address, every transition published, nothing left in the outbox.
async fn check<S: SeriesSource, A: AlertStore>(
    world: &World<S, A>,
    reference: &MemorySeriesStore,
    expected: &Expected,
    report: &Report,
    evaluator_outbox_grace_passed: bool,
) {
    let rules = RuleSet::default_rules().unwrap();
    // Every metric's total equals a clean, fault-free, single delivery of
    // each batch; a series no container folded equals it exactly.
    let mut metrics: Vec<String> = rules.metrics().iter().map(|m| m.name.clone()).collect();
    metrics.extend(
        monitoring_core::domain::pipeline::pipeline_metrics()
            .into_iter()
            .map(|m| m.name),
    );
    for name in &metrics {
        let got = world.series.read_metric(name).await.unwrap();
        let want = reference.read_metric(name).await.unwrap();
        let folded = got
            .iter()
            .any(|s| s.key.labels().iter().any(|(_, v)| v == OVERFLOW));
        // Which updates a container folds depends on its guard.
        if name == "log_series_overflow_total" {
            continue;
        }
        // A retry after the windows were committed finds its signals
        // there: counted as duplicates by that attempt. The split by
        // outcome depends on where an attempt failed; the total is exact.
        let split_by_attempt = name == "alert_signal_outcomes_total";
        assert_eq!(
            metric_sum(&got),
            metric_sum(&want),
            "{name}: the total differs from a clean run"
        );
        if !folded && !split_by_attempt {
            assert_eq!(got, want, "{name}: series differ from a clean run");
        }
    }
    // And against the generator's own counts.
    let events = world.series.read_metric("log_events_total").await.unwrap();
    assert_eq!(
        counter(
            &events,
            &SeriesKey::new("log_events_total", Vec::<(String, String)>::new())
        ),
        expected.events as f64
    );
    let auth = world
        .series
        .read_metric("auth_requests_total")
        .await
        .unwrap();
    let key = |status: &str| {
        SeriesKey::new(
            "auth_requests_total",
            [
                ("endpoint", "/api/auth/login"),
                ("method", "password"),
                ("status", status),
            ],
        )
    };
    let total_auth = metric_sum(&auth);
    assert_eq!(
        total_auth,
        (expected.failed_logins + expected.successes) as f64
    );
    if !auth.iter().any(|s| s.key.to_string().contains(OVERFLOW)) {
        assert_eq!(
            counter(&auth, &key("failure")),
            expected.failed_logins as f64
        );
        assert_eq!(counter(&auth, &key("success")), expected.successes as f64);
    }

    // One incident per hot address, none for the cold ones; every
    // transition stored was published, under one dedup id each.
    let published = world.publisher.incidents();
    let firing: BTreeMap<String, BTreeSet<String>> = published
        .iter()
        .filter(|i| i.status == TransitionKind::Firing)
        .fold(BTreeMap::new(), |mut m, i| {
            m.entry(i.id.clone())
                .or_default()
                .insert(i.transition_id.clone());
            m
        });
    assert_eq!(
        firing.len(),
        HOT_IPS,
        "one incident per hot address: {:?}",
        published
            .iter()
            .map(|i| (&i.rule, &i.key, i.status))
            .collect::<Vec<_>>()
    );
    assert!(
        firing.values().all(|t| t.len() == 1),
        "one firing transition each: {firing:?}"
    );
    assert!(
        published
            .iter()
            .all(|i| i.rule == "auth_failures" && i.count >= 5)
    );
    let messages = world.publisher.messages();
    let distinct: BTreeSet<&str> = messages.iter().map(|m| m.dedup_id.as_str()).collect();
    let transitions: BTreeSet<&str> = published.iter().map(|i| i.transition_id.as_str()).collect();
    assert_eq!(
        distinct.len(),
        transitions.len(),
        "one dedup id per transition"
    );
    // A publish is sent again only when a fault hid that it was sent: the
    // topic took it and the answer was lost, or it was not marked sent
    // (each notice of a failed mark_sent).
    let raw = messages.len();
    let ambiguous = world
        .chaos
        .affected()
        .iter()
        .filter(|(k, _)| {
            [
                "publisher.publish/timeout",
                "publisher.publish/crash",
                "alerts.mark_sent/throttle",
            ]
            .contains(&k.as_str())
        })
        .map(|(_, n)| *n as usize)
        .sum::<usize>();
    assert!(
        raw - distinct.len() <= ambiguous,
        "{raw} publishes of {} transitions, only {ambiguous} ambiguous faults",
        distinct.len()
    );
    if ambiguous == 0 {
        assert_eq!(raw, distinct.len(), "exactly one message per transition");
    }
    if evaluator_outbox_grace_passed {
        assert!(world.alerts.pending_notices().await.unwrap().is_empty());
    }
    // The heartbeat only moves forward: newer wins over a late writer.
    let beat = world.alerts.last_log_delivery().await.unwrap().unwrap();
    assert!(Some(beat) >= report.last_ok && Some(beat) <= report.last_attempt);
}

/// A clean run: every batch once, no faults, one container.
async fn reference(payloads: &[Value]) -> Arc<MemorySeriesStore> {
    let world = World {
        series: Arc::new(MemorySeriesStore::new()),
        alerts: Arc::new(MemoryAlertStore::default()),
        publisher: Arc::new(RecordingPublisher::default()),
        beats: Arc::new(Beats::default()),
        chaos: Chaos::new(0, FaultPlan::NONE),
    };
    let app = LogMetrics {
        guard: SeriesGuard::new(CardinalityGuard::default()),
        ..world.container(1)
    };
    for p in payloads {
        app.handle(p, NOW, &mut Vec::new()).await.unwrap();
    }
    world.series
}

#[allow(
    clippy::print_stderr,
    reason = "the run's report (retries, faults) is the test's output, shown with --nocapture (make soak)"
)]
fn print_report(seed: u64, report: &Report, chaos: &Chaos, raw: usize) {
    eprintln!(
        "chaos seed={seed} size={} deliveries={} attempts={} retries={} crashes={} evaluator_runs={} publishes={raw} faults={:?}",
        size(),
        report.deliveries,
        report.attempts,
        report.retries,
        report.crashes,
        report.evaluator_runs,
        chaos.injected()
    );
}

/// In memory, on one thread with the clock paused: a seed replays the same
/// interleaving and the same faults. Backoffs take no wall time.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn concurrent_invocations_under_faults_end_exact() {
    let seed = seed();
    let _print = SeedOnFailure(seed);
    // The jitter of the retries, too.
    fastrand::seed(seed);
    let (payloads, expected) = generate(seed, 48 * size());
    let world = World {
        series: Arc::new(MemorySeriesStore::new()),
        alerts: Arc::new(MemoryAlertStore::default()),
        publisher: Arc::new(RecordingPublisher::default()),
        beats: Arc::new(Beats::default()),
        chaos: Chaos::new(seed, FaultPlan::HEAVY),
    };
    let report = run(&world, &payloads, seed, CONTAINERS).await;
    print_report(
        seed,
        &report,
        &world.chaos,
        world.publisher.messages().len(),
    );
    assert!(
        report.retries > 0 && world.chaos.injected_of(Fault::Crash) > 0,
        "faults were injected: {report:?}"
    );
    let reference = reference(&payloads).await;
    check(&world, &reference, &expected, &report, true).await;
}

/// The same wrappers around the DynamoDB adapters on moto: real
/// conditional writes, markers and shards under injected faults. Smaller:
/// moto serves one request at a time, and each container's first batch
/// reads every metric.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_adapters_under_faults() {
    let seed = seed();
    let _print = SeedOnFailure(seed);
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let (payloads, expected) = generate(seed, 8);
    let world = World {
        series: Arc::new(DynamoSeriesStore::new(
            &sdk,
            &table,
            Duration::from_secs(3600),
        )),
        alerts: Arc::new(DynamoAlertStore::new(&sdk, &table)),
        publisher: Arc::new(RecordingPublisher::default()),
        beats: Arc::new(Beats::default()),
        chaos: Chaos::new(seed, FaultPlan::HEAVY),
    };
    let report = run(&world, &payloads, seed, 6).await;
    print_report(
        seed,
        &report,
        &world.chaos,
        world.publisher.messages().len(),
    );
    assert!(report.retries > 0, "faults were injected: {report:?}");
    let reference = reference(&payloads).await;
    check(&world, &reference, &expected, &report, true).await;
}
