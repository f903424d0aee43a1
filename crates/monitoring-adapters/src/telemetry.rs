//! Process-wide set-up every entry point does first: JSON logs for
//! CloudWatch, the TLS crypto provider.

use tracing_subscriber::EnvFilter;

use monitoring_core::domain::alerts::engine::TransitionRecord;
use tracing_subscriber::fmt::SubscriberBuilder;
use tracing_subscriber::fmt::format::{Format, Json, JsonFields};

/// JSON lines on stdout (Lambda adds the time), level from `RUST_LOG`
/// (default `info`). Safe to call twice.
pub fn init() {
    install_crypto_provider();
    let _ = json_lines().without_time().try_init();
}

/// For command-line tools whose stdout is their report (`ops`): the same
/// JSON lines on stderr, with the time, as no log pipeline adds it.
pub fn init_stderr() {
    install_crypto_provider();
    let _ = json_lines().with_writer(std::io::stderr).try_init();
}

/// The one log line per incident transition, the same from every function
/// that makes one (log-metrics, alert-evaluator, component-probe), so a
/// single Logs Insights query follows an incident across them.
pub fn log_transitions(transitions: &[TransitionRecord]) {
    for t in transitions {
        tracing::info!(
            rule = %t.rule,
            key = %t.key,
            status = t.status.as_str(),
            incident = %t.incident_id,
            suppressed = t.suppressed.as_deref(),
            "incident transition"
        );
    }
}

fn json_lines() -> SubscriberBuilder<JsonFields, Format<Json>, EnvFilter> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
}

fn install_crypto_provider() {
    // Several crates enable rustls; naming the provider once avoids a panic
    // when more than one backend is compiled in. Err means already installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
