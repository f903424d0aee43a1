//! What every handler reads: the stores behind the routes, the tokens, the
//! clock and the settings. One concrete type: the stores are held through
//! object-safe views of their ports, so the router and the handlers carry no
//! type parameters and a missing store is `None`, not a placeholder type.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use monitoring_config::Secret;
use monitoring_core::domain::metrics::series::StoredSeries;
use monitoring_core::domain::probe_result::ProbeResult;
use monitoring_core::domain::rules::MetricInfo;
use monitoring_core::domain::silence::{Silence, SilencePolicy};
use monitoring_core::ports::{
    Clock, ExpireOutcome, ProbeStore, SeriesSource, SilenceStore, StoreError,
};
use time::OffsetDateTime;

use crate::audit::Role;
use crate::tokens::Tokens;

/// The part of [`ProbeStore`] the API uses, object safe.
pub(crate) trait Probes: Send + Sync {
    fn latest(&self) -> BoxFuture<'_, Result<Vec<ProbeResult>, StoreError>>;
}

impl<T: ProbeStore> Probes for T {
    fn latest(&self) -> BoxFuture<'_, Result<Vec<ProbeResult>, StoreError>> {
        Box::pin(ProbeStore::latest(self))
    }
}

/// [`SeriesSource`], object safe.
pub(crate) trait Series: Send + Sync {
    fn read_metric<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<StoredSeries>, StoreError>>;
}

impl<T: SeriesSource> Series for T {
    fn read_metric<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<StoredSeries>, StoreError>> {
        Box::pin(SeriesSource::read_metric(self, name))
    }
}

/// [`SilenceStore`], object safe.
pub(crate) trait Silences: Send + Sync {
    fn create<'a>(&'a self, silence: &'a Silence) -> BoxFuture<'a, Result<(), StoreError>>;
    fn list(
        &self,
        now: OffsetDateTime,
        include_expired: bool,
    ) -> BoxFuture<'_, Result<Vec<Silence>, StoreError>>;
    fn expire<'a>(
        &'a self,
        id: &'a str,
        at: OffsetDateTime,
        by: &'a str,
    ) -> BoxFuture<'a, Result<ExpireOutcome, StoreError>>;
}

impl<T: SilenceStore> Silences for T {
    fn create<'a>(&'a self, silence: &'a Silence) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(SilenceStore::create(self, silence))
    }
    fn list(
        &self,
        now: OffsetDateTime,
        include_expired: bool,
    ) -> BoxFuture<'_, Result<Vec<Silence>, StoreError>> {
        Box::pin(SilenceStore::list(self, now, include_expired))
    }
    fn expire<'a>(
        &'a self,
        id: &'a str,
        at: OffsetDateTime,
        by: &'a str,
    ) -> BoxFuture<'a, Result<ExpireOutcome, StoreError>> {
        Box::pin(SilenceStore::expire(self, id, at, by))
    }
}

/// Shared, read-only state of the router.
pub struct AppState {
    /// The latest probe results (`/api/health`).
    pub(crate) store: Box<dyn Probes>,
    /// The bearer tokens of the three roles (see `tokens`).
    pub(crate) tokens: Tokens,
    pub stale_after: Duration,
    pub cache_max_age: Duration,
    pub clock: Arc<dyn Clock>,
    /// Where `/metrics` reads; `None`: it lists nothing.
    pub(crate) series: Option<Box<dyn Series>>,
    /// The metrics `/metrics` lists, with their type and help.
    pub(crate) metrics: Vec<MetricInfo>,
    /// Where `/api/silences` reads and writes; `None`: the routes answer 404.
    pub(crate) silences: Option<Box<dyn Silences>>,
    /// The bounds new silences must keep.
    pub silence_policy: SilencePolicy,
}

impl AppState {
    /// Serves `/api/health` from `store`, with details to holders of `token`.
    pub fn new(
        store: impl ProbeStore + 'static,
        token: Option<&Secret>,
        stale_after: Duration,
        cache_max_age: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let fixed: Vec<(Role, &Secret)> = token.map(|t| (Role::Health, t)).into_iter().collect();
        AppState {
            store: Box::new(store),
            tokens: Tokens::fixed(&fixed, clock.clone()),
            stale_after,
            cache_max_age,
            clock,
            series: None,
            metrics: Vec::new(),
            silences: None,
            silence_policy: SilencePolicy::default(),
        }
    }

    /// Serves `metrics` (their stored series) on `/metrics` to holders of `token`.
    pub fn with_metrics(
        mut self,
        series: impl SeriesSource + 'static,
        token: Option<&Secret>,
        metrics: Vec<MetricInfo>,
    ) -> Self {
        self.tokens = self.tokens.with_fixed(Role::Metrics, token);
        self.series = Some(Box::new(series));
        self.metrics = metrics;
        self
    }

    /// Serves `/api/silences` from `silences` to holders of `admin_token`
    /// (no token: 401 to everyone).
    pub fn with_silences(
        mut self,
        silences: impl SilenceStore + 'static,
        admin_token: Option<&Secret>,
    ) -> Self {
        self.tokens = self.tokens.with_fixed(Role::Admin, admin_token);
        self.silences = Some(Box::new(silences));
        self
    }

    /// Uses `tokens` (loaded and checked at start, refreshed on their TTL)
    /// for every role instead of the fixed ones given so far.
    pub fn with_tokens(mut self, tokens: Tokens) -> Self {
        self.tokens = tokens;
        self
    }

    /// Creates silences under `policy` instead of the defaults.
    pub fn with_silence_policy(mut self, policy: SilencePolicy) -> Self {
        self.silence_policy = policy;
        self
    }
}
