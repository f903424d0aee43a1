//! Process-wide set-up every entry point does first: JSON logs for
//! CloudWatch, the TLS crypto provider.

use tracing_subscriber::EnvFilter;

/// JSON lines on stdout (Lambda adds the time), level from `RUST_LOG`
/// (default `info`). Safe to call twice.
pub fn init() {
    // Several crates enable rustls; naming the provider once avoids a panic
    // when more than one backend is compiled in. Err means already installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}
