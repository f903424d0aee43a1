//! The alert engine of the functions: windows in an [`AlertStore`],
//! exactly-once transitions, and the outbox.
//!
//! A transition is claimed by the commit that bumps its window's version
//! (conditional on the version read) and writes the incident with its
//! outbox entry in the same transaction. A writer that loses the race
//! re-reads and applies its inputs again, which changes nothing for signals
//! already counted (event-id dedup), so concurrent and redelivered batches
//! open one incident. After the commit the notice is published, then
//! removed from the outbox; what a crashed or failing publisher leaves
//! there, [`AlertEngine::evaluate`] publishes later.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::incident::{Incident, Links, ms_to_rfc3339, time_to_ms};
use super::probe_signals::ProbeSignal;
use super::records::{CommitResult, IncidentWrite, Notice, OpenIncident, WindowChange, WindowId};
use super::rules::{AlertRule, AlertRules, LOG_PIPELINE_SILENT, SignalAccounting, SignalOutcome};
use super::window::{AlertInput, InputKeys, Suppression, Transition, TransitionKind, WindowState};
use crate::domain::probe_result::Component;
use crate::domain::rules::Signal;
use crate::domain::silence::Silence;
use crate::ports::{
    AlertStore, ComponentStatus, IncidentPublisher, PublishError, RetryTimer, SilenceSource,
    StoreError,
};
use crate::retry::Backoff;

/// How the engine behaves beyond its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    pub links: Links,
    /// A notice younger than this is left to the invocation that created
    /// it; older ones are republished by the evaluator (under a lease of
    /// the same length). Longer than a publish can take.
    pub outbox_grace: Duration,
    /// Raise `log_pipeline_silent` when no log batch arrived for this
    /// long; `None` disables the dead man's switch.
    pub log_silence_after: Option<Duration>,
    /// Commit attempts per window before giving up (then Lambda retries).
    pub max_attempts: u32,
    /// Probe results older than this do not inhibit (two probe periods):
    /// an outage that is no longer observed explains nothing.
    pub probe_fresh_for: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            links: Links::default(),
            outbox_grace: Duration::from_secs(120),
            log_silence_after: Some(Duration::from_secs(900)),
            max_attempts: 12,
            probe_fresh_for: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Worth retrying (the function returns an error, Lambda retries).
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("window {window} still contended after {attempts} attempts")]
    Contended { window: String, attempts: u32 },
}

/// One transition the engine committed (also what the alert evaluator's
/// run reports, serialized without the transition id).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TransitionRecord {
    pub rule: String,
    /// Pseudonymized or redacted, as stored.
    pub key: String,
    pub status: TransitionKind,
    pub incident_id: String,
    #[serde(skip)]
    pub transition_id: String,
    /// Why it is recorded but not published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<String>,
}

/// What one call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineOutcome {
    /// Inputs routed to at least one window (once per window).
    pub routed: usize,
    /// Windows touched.
    pub windows: usize,
    pub counted: usize,
    pub duplicates: usize,
    pub late: usize,
    /// Commits lost to another writer (then re-read and applied again).
    pub conflicts: usize,
    pub transitions: Vec<TransitionRecord>,
    /// Notices published and marked sent.
    pub published: usize,
    /// Notices whose publication failed for now (unreachable, throttled):
    /// they stay in the outbox.
    pub publish_failures: usize,
    /// Notices the topic refused for good, moved to the dead letters.
    pub dead_lettered: usize,
    /// evaluate only: the age of the oldest notice still in the outbox
    /// before this run republished (`None`: the outbox was empty). Paging
    /// is stuck when it grows past the grace period.
    pub oldest_unpublished_ms: Option<i64>,
    /// evaluate only: the dead letters kept after this run.
    pub dead_letters: usize,
    /// Outbox leftovers the evaluator published.
    pub republished: usize,
    /// What became of every input, per rule.
    pub accounting: SignalAccounting,
}

/// Inputs and clock work of one window.
struct Work<'a> {
    rule: usize,
    inputs: Vec<AlertInput<'a>>,
    tick: bool,
}

/// Inhibition and silence facts, read once per call and only when a
/// transition needs them.
struct Context {
    down: Vec<Component>,
    silences: Vec<Silence>,
}

pub struct AlertEngine<S, P, X, C> {
    rules: Arc<AlertRules>,
    store: S,
    publisher: P,
    silences: X,
    components: C,
    settings: EngineSettings,
    /// Sleeps between attempts at contended windows.
    timer: Arc<dyn RetryTimer>,
}

impl<S, P, X, C> AlertEngine<S, P, X, C>
where
    S: AlertStore,
    P: IncidentPublisher,
    X: SilenceSource,
    C: ComponentStatus,
{
    pub fn new(
        rules: Arc<AlertRules>,
        store: S,
        publisher: P,
        silences: X,
        components: C,
        settings: EngineSettings,
        timer: Arc<dyn RetryTimer>,
    ) -> Self {
        AlertEngine {
            rules,
            store,
            publisher,
            silences,
            components,
            settings,
            timer,
        }
    }

    pub fn rules(&self) -> &AlertRules {
        &self.rules
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    /// log-metrics: counts a batch's signals and publishes what fires.
    /// Call it for every batch, even without signals: it refreshes the
    /// log-delivery heartbeat the dead man's switch reads. Store requests:
    /// one BatchGetItem per 100 windows touched, one TransactWriteItems per
    /// 100 write actions (again after a lost race), one per 50 published
    /// notices to mark them sent, and when something fires, one read each
    /// of the component status and the silences.
    pub async fn ingest(
        &self,
        signals: &[Signal],
        now: OffsetDateTime,
    ) -> Result<EngineOutcome, EngineError> {
        let inputs: Vec<AlertInput<'_>> = signals.iter().map(AlertInput::from_signal).collect();
        self.ingest_inputs(&inputs, now, true).await
    }

    /// component-probe: counts one probe run's signals
    /// ([`super::probe_signals::probe_signals`]).
    pub async fn ingest_probes(
        &self,
        signals: &[ProbeSignal],
        now: OffsetDateTime,
    ) -> Result<EngineOutcome, EngineError> {
        let inputs: Vec<AlertInput<'_>> = signals.iter().map(ProbeSignal::as_input).collect();
        self.ingest_inputs(&inputs, now, false).await
    }

    async fn ingest_inputs(
        &self,
        inputs: &[AlertInput<'_>],
        now: OffsetDateTime,
        log_delivery: bool,
    ) -> Result<EngineOutcome, EngineError> {
        let mut outcome = EngineOutcome::default();
        let work = self.route(inputs, &mut outcome);
        let notices = self.apply(work, now, log_delivery, &mut outcome).await?;
        self.publish_all(&notices, now, &mut outcome).await;
        Ok(outcome)
    }

    /// alert-evaluator, every minute: republishes outbox leftovers,
    /// resolves quiet incidents, sends reminders, and raises
    /// `log_pipeline_silent` when the logs stopped.
    pub async fn evaluate(&self, now: OffsetDateTime) -> Result<EngineOutcome, EngineError> {
        let mut outcome = EngineOutcome::default();
        let now_ms = time_to_ms(now);
        // Leftovers first: a firing still waiting goes out before its
        // resolution.
        let grace_ms = i64::try_from(self.settings.outbox_grace.as_millis()).unwrap_or(i64::MAX);
        let mut pending = self.store.pending_notices().await?;
        outcome.oldest_unpublished_ms = pending
            .iter()
            .map(|p| now_ms.saturating_sub(p.notice.created_ms).max(0))
            .max();
        pending.sort_by(|a, b| {
            (a.notice.at_ms, &a.notice.transition_id)
                .cmp(&(b.notice.at_ms, &b.notice.transition_id))
        });
        let mut claimed = Vec::new();
        for p in pending {
            if p.notice.created_ms.saturating_add(grace_ms) > now_ms {
                continue;
            }
            if self
                .store
                .claim_notice(&p.notice.transition_id, now_ms, grace_ms)
                .await?
            {
                claimed.push(p.notice);
            }
        }
        outcome.republished = self.publish_all(&claimed, now, &mut outcome).await;

        let mut work: BTreeMap<WindowId, Work<'_>> = BTreeMap::new();
        for open in self.store.open_incidents().await? {
            let due =
                open.resolve_at_ms <= now_ms || open.next_reminder_ms.is_some_and(|r| r <= now_ms);
            if !due {
                continue;
            }
            let Some(rule) = self.rules.index_of(&open.rule) else {
                tracing::warn!(rule = %open.rule, incident = %open.incident_id, "open incident of a rule no longer configured");
                continue;
            };
            work.insert(
                WindowId {
                    rule: open.rule,
                    key: open.key,
                },
                Work {
                    rule,
                    inputs: Vec::new(),
                    tick: true,
                },
            );
        }

        // The dead man's switch: one signal per silent minute.
        let silence_sample;
        let silence_event;
        if let (Some(after), Some(rule)) = (
            self.settings.log_silence_after,
            self.rules.index_of(LOG_PIPELINE_SILENT),
        ) {
            let last = self.store.last_log_delivery().await?;
            if last.is_none_or(|at| now - at >= after) {
                let minute_ms = now_ms - now_ms.rem_euclid(60_000);
                silence_event = format!("silent:{minute_ms}");
                silence_sample = match last {
                    Some(at) => format!("no log batch since {}", ms_to_rfc3339(time_to_ms(at))),
                    None => "no log batch ever recorded".to_owned(),
                };
                let input = AlertInput {
                    signal: LOG_PIPELINE_SILENT,
                    keys: InputKeys::None,
                    distinct: 0,
                    event_id: &silence_event,
                    timestamp_ms: minute_ms,
                    sample: &silence_sample,
                    hit: true,
                };
                work.entry(WindowId {
                    rule: LOG_PIPELINE_SILENT.to_owned(),
                    key: String::new(),
                })
                .or_insert(Work {
                    rule,
                    inputs: Vec::new(),
                    tick: false,
                })
                .inputs
                .push(input);
            }
        }
        let notices = self.apply(work, now, false, &mut outcome).await?;
        self.publish_all(&notices, now, &mut outcome).await;
        outcome.dead_letters = self.store.dead_letters().await?.len();
        Ok(outcome)
    }

    /// Groups inputs by window, each window's in event-time order.
    fn route<'a>(
        &self,
        inputs: &[AlertInput<'a>],
        outcome: &mut EngineOutcome,
    ) -> BTreeMap<WindowId, Work<'a>> {
        let mut work: BTreeMap<WindowId, Work<'a>> = BTreeMap::new();
        for input in inputs {
            let for_signal = self.rules.for_signal(input.signal);
            outcome.accounting.receive(input.signal, for_signal.len());
            for &index in for_signal {
                let Some(rule) = self.rules.get(index) else {
                    continue;
                };
                let (key, routed) = match rule.route(input) {
                    Ok(r) => r,
                    Err(dropped) => {
                        outcome.accounting.outcome(&rule.name, dropped, 1);
                        continue;
                    }
                };
                outcome.routed += 1;
                work.entry(WindowId {
                    rule: rule.name.to_string(),
                    key: key.into_owned(),
                })
                .or_insert(Work {
                    rule: index,
                    inputs: Vec::new(),
                    tick: false,
                })
                .inputs
                .push(routed);
            }
        }
        for w in work.values_mut() {
            w.inputs.sort_by_key(|i| i.timestamp_ms);
        }
        work
    }

    /// Applies work to the stored windows until every change is committed;
    /// returns the notices to publish.
    async fn apply(
        &self,
        work: BTreeMap<WindowId, Work<'_>>,
        now: OffsetDateTime,
        log_delivery: bool,
        outcome: &mut EngineOutcome,
    ) -> Result<Vec<Notice>, EngineError> {
        let now_ms = time_to_ms(now);
        outcome.windows = work.len();
        let mut pending: Vec<&WindowId> = work.keys().collect();
        let mut heartbeat = log_delivery.then_some(now);
        let mut context: Option<Context> = None;
        let mut notices = Vec::new();
        let mut attempt = 0;
        while !pending.is_empty() || heartbeat.is_some() {
            attempt += 1;
            let ids: Vec<WindowId> = pending.iter().map(|id| (*id).clone()).collect();
            let loaded = if ids.is_empty() {
                Vec::new()
            } else {
                self.store.load_windows(&ids).await?
            };
            let mut changes = Vec::new();
            let mut change_counts = Vec::new();
            for (id, stored) in pending.iter().zip(loaded) {
                let Some(w) = work.get(*id) else { continue };
                let Some(rule) = self.rules.get(w.rule) else {
                    continue;
                };
                let (version, before) = match stored {
                    Some(s) => (Some(s.version), s.state),
                    None => (None, WindowState::default()),
                };
                let mut state = before.clone();
                let mut transitions = Vec::new();
                let mut counts = Counts::default();
                for input in &w.inputs {
                    let observed = state.observe(rule, &id.key, input, &mut transitions);
                    counts.0.push(observed.outcome());
                }
                if w.tick {
                    state.tick(rule, now_ms, &mut transitions);
                }
                if transitions.is_empty() && state.same_content(&before) {
                    add_counts(outcome, &rule.name, &counts);
                    continue;
                }
                let needs_context = transitions
                    .iter()
                    .any(|t| t.kind != TransitionKind::Resolved);
                if needs_context && context.is_none() {
                    let fresh_since = now - self.settings.probe_fresh_for;
                    context = Some(Context {
                        down: self.components.down_components(fresh_since).await?,
                        silences: self.silences.active(now).await?,
                    });
                }
                self.suppress(
                    rule,
                    &id.key,
                    &mut transitions,
                    &mut state,
                    context.as_ref(),
                    now,
                );
                changes.push(self.change(
                    (*id).clone(),
                    version,
                    &before,
                    state,
                    rule,
                    &transitions,
                    now_ms,
                ));
                change_counts.push((counts, rule.name.clone(), transitions));
            }
            let results = if changes.is_empty() && heartbeat.is_none() {
                Vec::new()
            } else {
                self.store.commit(&changes, heartbeat).await?
            };
            let mut lost = Vec::new();
            for ((change, (counts, rule_name, transitions)), result) in
                changes.into_iter().zip(change_counts).zip(results)
            {
                match result {
                    CommitResult::Committed => {
                        add_counts(outcome, &rule_name, &counts);
                        for write in change.incidents {
                            notices.extend(write.notices);
                        }
                        for t in transitions {
                            outcome.transitions.push(TransitionRecord {
                                rule: change.id.rule.clone(),
                                key: change.id.key.clone(),
                                status: t.kind,
                                incident_id: t.episode.id.clone(),
                                transition_id: t.id(),
                                suppressed: t
                                    .episode
                                    .suppression
                                    .as_ref()
                                    .map(|s| s.reason.clone()),
                            });
                        }
                    }
                    CommitResult::Conflict => {
                        outcome.conflicts += 1;
                        lost.push(change.id);
                    }
                }
            }
            // The heartbeat rode with the first transaction; resend it
            // only when something is retried anyway.
            heartbeat = heartbeat.filter(|_| !lost.is_empty());
            pending = work.keys().filter(|k| lost.contains(k)).collect();
            if pending.is_empty() {
                break;
            }
            // Jittered, and never past the invocation's deadline: better
            // to fail the batch while Lambda can still retry it.
            let policy = Backoff {
                max_retries: self.settings.max_attempts.saturating_sub(1),
                ..WINDOW_BACKOFF
            };
            if policy.wait(attempt, self.timer.as_ref()).await.is_err() {
                return Err(EngineError::Contended {
                    window: pending[0].storage_key(),
                    attempts: attempt,
                });
            }
        }
        Ok(notices)
    }

    /// Decides inhibition (components down) and silences at each firing
    /// and reminder, from the facts of now: an episode inhibited when it
    /// fired is published by a later reminder once the outage is over. A
    /// resolution is published when any transition of its episode was.
    fn suppress(
        &self,
        rule: &AlertRule,
        key: &str,
        transitions: &mut [Transition],
        state: &mut WindowState,
        context: Option<&Context>,
        now: OffsetDateTime,
    ) {
        // Episode id → (last decision, published any).
        let mut decided: HashMap<String, (Option<Suppression>, bool)> = HashMap::new();
        for t in transitions.iter_mut() {
            match t.kind {
                TransitionKind::Firing | TransitionKind::Reminder => {
                    let s = context.and_then(|c| suppression(rule, key, c, now));
                    let before = decided
                        .get(&t.episode.id)
                        .map_or(t.episode.published_any, |d| d.1);
                    let published_any = before || s.is_none();
                    t.episode.suppression = s.clone();
                    t.episode.published_any = published_any;
                    if let Some(open) = state.open.as_mut().filter(|o| o.id == t.episode.id) {
                        open.suppression = s.clone();
                        open.published_any = published_any;
                    }
                    decided.insert(t.episode.id.clone(), (s, published_any));
                }
                TransitionKind::Resolved => {
                    let (s, published_any) = decided
                        .get(&t.episode.id)
                        .cloned()
                        .unwrap_or((t.episode.suppression.clone(), t.episode.published_any));
                    t.episode.suppression = if published_any { None } else { s };
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn change(
        &self,
        id: WindowId,
        version: Option<u64>,
        before: &WindowState,
        state: WindowState,
        rule: &AlertRule,
        transitions: &[Transition],
        now_ms: i64,
    ) -> WindowChange {
        let mut incidents: Vec<IncidentWrite> = Vec::new();
        let mut closed = Vec::new();
        for t in transitions {
            let incident = Incident::new(rule, &id.key, t, &self.settings.links);
            let notice = incident
                .is_published()
                .then(|| Notice::new(&incident, t.at_ms, now_ms));
            if t.kind == TransitionKind::Resolved {
                closed.push(t.episode.id.clone());
            }
            match incidents.iter_mut().find(|w| w.incident_id == t.episode.id) {
                Some(write) => {
                    write.snapshot = incident;
                    write.notices.extend(notice);
                }
                None => incidents.push(IncidentWrite {
                    incident_id: t.episode.id.clone(),
                    create: t.kind == TransitionKind::Firing,
                    snapshot: incident,
                    notices: notice.into_iter().collect(),
                }),
            }
        }
        let summary = |s: &WindowState| {
            s.open.as_ref().map(|o| OpenIncident {
                incident_id: o.id.clone(),
                rule: id.rule.clone(),
                key: id.key.clone(),
                resolve_at_ms: o.resolve_at_ms(rule),
                next_reminder_ms: o.next_reminder_ms(rule),
            })
        };
        let open = summary(&state).filter(|o| summary(before).as_ref() != Some(o));
        WindowChange {
            id,
            expected_version: version,
            state,
            incidents,
            open,
            closed,
        }
    }

    /// Publishes in order, then marks what went out as sent, in one store
    /// request per 50 notices. A publication that failed for now stays in
    /// the outbox for the evaluator, and so does a notice whose marking
    /// failed (the evaluator's republication carries the same dedup id):
    /// both are counted and logged, not errors, since retrying the batch
    /// would not help. A notice the topic refused for good is moved to the
    /// dead letters (counted, alarmed on) rather than retried every minute
    /// forever. Returns how many were published.
    async fn publish_all(
        &self,
        notices: &[Notice],
        now: OffsetDateTime,
        outcome: &mut EngineOutcome,
    ) -> usize {
        let mut sent = Vec::with_capacity(notices.len());
        for notice in notices {
            match self.publisher.publish(&notice.message()).await {
                Ok(()) => sent.push(notice.clone()),
                Err(PublishError::Rejected(reason)) => {
                    outcome.publish_failures += 1;
                    match self.store.dead_letter(notice, &reason, now).await {
                        Ok(moved) => {
                            outcome.dead_lettered += usize::from(moved);
                            tracing::error!(transition = %notice.transition_id, incident = %notice.incident_id, %reason, "the topic refused the notice for good; moved to the dead letters");
                        }
                        // Still in the outbox: the next run tries again.
                        Err(e) => {
                            tracing::error!(transition = %notice.transition_id, %reason, error = %e, "the topic refused the notice and it could not be moved to the dead letters");
                        }
                    }
                }
                Err(e @ PublishError::Unavailable(_)) => {
                    outcome.publish_failures += 1;
                    tracing::warn!(transition = %notice.transition_id, error = %e, "publish failed; the notice stays in the outbox");
                }
            }
        }
        outcome.published += sent.len();
        if !sent.is_empty() {
            match self.store.mark_sent(&sent).await {
                Ok(marked) if marked < sent.len() => {
                    tracing::warn!(
                        published = sent.len(),
                        marked,
                        "some notices were already marked sent"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "published notices could not be marked sent; the evaluator will publish them again");
                }
            }
        }
        sent.len()
    }
}

/// The outcomes of one window's inputs.
#[derive(Debug, Default)]
struct Counts(Vec<SignalOutcome>);

fn add_counts(outcome: &mut EngineOutcome, rule: &Arc<str>, counts: &Counts) {
    for o in &counts.0 {
        match o {
            SignalOutcome::Counted => outcome.counted += 1,
            SignalOutcome::Duplicate => outcome.duplicates += 1,
            SignalOutcome::Late => outcome.late += 1,
            SignalOutcome::MissingKey | SignalOutcome::Ignored => {}
        }
        outcome.accounting.outcome(rule, *o, 1);
    }
}

fn suppression(
    rule: &AlertRule,
    key: &str,
    c: &Context,
    now: OffsetDateTime,
) -> Option<Suppression> {
    // Validation refuses inhibition of security rules; kept here too, as
    // it must hold whatever a rule file says.
    let inhibitable = rule.category != super::config::Category::Security;
    let down: Vec<String> = rule
        .inhibit_when_down
        .iter()
        .filter(|d| inhibitable && c.down.contains(d))
        .map(|d| d.as_str().to_owned())
        .collect();
    if !down.is_empty() {
        let reason = format!(
            "inhibited: {} down, which explains these signals",
            down.join(" and ")
        );
        return Some(Suppression {
            inhibited_by: down,
            silenced_by: None,
            reason,
        });
    }
    silenced(rule, key, &c.silences, now)
}

fn silenced(
    rule: &AlertRule,
    key: &str,
    silences: &[Silence],
    now: OffsetDateTime,
) -> Option<Suppression> {
    let labels = [
        ("rule", rule.name.as_ref()),
        ("key", key),
        ("category", rule.category.as_str()),
        ("severity", rule.severity.as_str()),
    ];
    silences
        .iter()
        .find(|s| s.matches(&labels, now))
        .map(|s| Suppression {
            inhibited_by: Vec::new(),
            silenced_by: Some(s.id.clone()),
            reason: format!("silenced by {}", s.id),
        })
}

/// Between attempts at contended windows: 10 ms doubling to 640 ms.
const WINDOW_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(10),
    cap: Duration::from_millis(640),
    max_retries: 11,
};

/// The alert engine as the functions hold it, one handle for all three
/// uses: log-metrics ingests a batch's signals, component-probe a run's
/// probe results, alert-evaluator does the time-based work.
/// [`AlertEngine`] is the implementation (below); tests stand in with their
/// own. `crate::ports` re-exports it with the other ports.
pub trait Alerts: Send + Sync {
    /// Counts the signals (deduplicated by log event id) and refreshes the
    /// log-delivery heartbeat; an error means "retry the batch".
    fn ingest(
        &self,
        signals: &[Signal],
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<EngineOutcome, EngineError>> + Send;

    fn ingest_probes(
        &self,
        signals: &[ProbeSignal],
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<EngineOutcome, EngineError>> + Send;

    /// Quiet periods, reminders, log silence; publishes the outbox.
    fn evaluate(
        &self,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<EngineOutcome, EngineError>> + Send;
}

impl<S, P, X, C> Alerts for AlertEngine<S, P, X, C>
where
    S: AlertStore,
    P: IncidentPublisher,
    X: SilenceSource,
    C: ComponentStatus,
{
    fn ingest(
        &self,
        signals: &[Signal],
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<EngineOutcome, EngineError>> + Send {
        AlertEngine::ingest(self, signals, now)
    }

    fn ingest_probes(
        &self,
        signals: &[ProbeSignal],
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<EngineOutcome, EngineError>> + Send {
        AlertEngine::ingest_probes(self, signals, now)
    }

    fn evaluate(
        &self,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<EngineOutcome, EngineError>> + Send {
        AlertEngine::evaluate(self, now)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use time::macros::datetime;

    use super::*;
    use crate::domain::alerts::StreamEngine;
    use crate::domain::silence::Matcher;
    use crate::memory::alerts::{
        MemoryAlertStore, RecordingPublisher, StaticComponents, StaticSilences,
    };

    type Engine =
        AlertEngine<MemoryAlertStore, RecordingPublisher, StaticSilences, StaticComponents>;

    /// Tokio's sleep without a deadline (the adapters' timer, which the
    /// core cannot name).
    struct TokioSleep;

    impl RetryTimer for TokioSleep {
        fn remaining(&self) -> Option<Duration> {
            None
        }

        fn sleep(&self, delay: Duration) -> futures::future::BoxFuture<'static, ()> {
            Box::pin(tokio::time::sleep(delay))
        }
    }

    const T0: OffsetDateTime = datetime!(2026-11-30 08:00 UTC);

    /// The engine's mechanics on a few rules of each kind (the default
    /// file's own rules are tested where they are used).
    const TEST_RULES: &str = include_str!("test_rules.toml");

    fn engine(
        store: &MemoryAlertStore,
        publisher: &RecordingPublisher,
        silences: Vec<Silence>,
        down: Vec<Component>,
    ) -> Engine {
        AlertEngine::new(
            Arc::new(AlertRules::from_toml(TEST_RULES, "test.toml").unwrap()),
            store.clone(),
            publisher.clone(),
            StaticSilences(silences),
            StaticComponents(down),
            EngineSettings {
                log_silence_after: None,
                ..EngineSettings::default()
            },
            Arc::new(TokioSleep),
        )
    }

    /// `n` failed logins from one address, a second apart from `T0`.
    fn failures(n: usize, ip: &str) -> Vec<Signal> {
        (0..n)
            .map(|i| Signal {
                name: "auth_failures".into(),
                keys: vec![("ip".into(), ip.to_owned())],
                event_id: format!("ev-{ip}-{i}"),
                timestamp_ms: time_to_ms(T0) + i as i64 * 1000,
                sample: format!(
                    "{{\"message\":\"Authentication attempt\",\"success\":false,\"n\":{i}}}"
                ),
            })
            .collect()
    }

    #[tokio::test]
    async fn five_failures_fire_once_four_do_not_and_redelivery_changes_nothing() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let e = engine(&store, &publisher, vec![], vec![]);
        let out = e.ingest(&failures(4, "ip-a"), T0).await.unwrap();
        assert!(out.transitions.is_empty());
        let batch = failures(5, "ip-b");
        let out = e.ingest(&batch, T0).await.unwrap();
        assert_eq!(out.transitions.len(), 1);
        let again = e.ingest(&batch, T0).await.unwrap();
        assert_eq!((again.duplicates, again.transitions.len()), (5, 0));
        let published = publisher.incidents();
        assert_eq!(published.len(), 1);
        assert_eq!(
            (published[0].rule.as_str(), published[0].severity),
            ("auth_failures", super::super::Severity::High)
        );
        assert_eq!(published[0].count, 5);
        assert_eq!(published[0].samples.len(), 3);
        let stored = store.incident(&published[0].id).await.unwrap().unwrap();
        assert!(stored.outbox.is_empty());
        assert_eq!(store.open_incidents().await.unwrap().len(), 1);
        assert!(store.last_log_delivery().await.unwrap().is_some());
    }

    #[tokio::test]
    async fn quiet_period_resolves_once_and_reminders_repeat() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let e = engine(&store, &publisher, vec![], vec![]);
        e.ingest(&failures(5, "ip"), T0).await.unwrap();
        let last_event = T0 + time::Duration::seconds(4);
        let early = e
            .evaluate(last_event + time::Duration::seconds(299))
            .await
            .unwrap();
        assert!(early.transitions.is_empty());
        let on_time = e
            .evaluate(last_event + time::Duration::seconds(300))
            .await
            .unwrap();
        assert_eq!(on_time.transitions.len(), 1);
        assert_eq!(on_time.transitions[0].status, TransitionKind::Resolved);
        let later = e
            .evaluate(last_event + time::Duration::seconds(900))
            .await
            .unwrap();
        assert!(later.transitions.is_empty());
        let statuses: Vec<TransitionKind> =
            publisher.incidents().iter().map(|i| i.status).collect();
        assert_eq!(statuses, [TransitionKind::Firing, TransitionKind::Resolved]);
        assert!(store.open_incidents().await.unwrap().is_empty());

        // brute_force: critical, reminds every 30 minutes while the attack
        // goes on (a failure every 5 minutes keeps it from resolving).
        let mut users = failures(10, "u");
        for i in 1..=7 {
            let mut s = users[0].clone();
            s.event_id = format!("later-{i}");
            s.timestamp_ms += i * 300_000;
            users.push(s);
        }
        for s in &mut users {
            s.keys[0].0 = "user".into();
        }
        e.ingest(&users, T0).await.unwrap();
        let r = e.evaluate(T0 + time::Duration::minutes(40)).await.unwrap();
        assert_eq!(r.transitions.len(), 1);
        assert_eq!(r.transitions[0].status, TransitionKind::Reminder);
    }

    #[tokio::test]
    async fn a_failed_publication_waits_in_the_outbox_and_goes_out_once() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let e = engine(&store, &publisher, vec![], vec![]);
        publisher.set_failing(true);
        let out = e.ingest(&failures(5, "ip"), T0).await.unwrap();
        assert_eq!((out.transitions.len(), out.publish_failures), (1, 1));
        publisher.set_failing(false);
        // Within the grace period the creating invocation owns it.
        assert_eq!(
            e.evaluate(T0 + time::Duration::seconds(60))
                .await
                .unwrap()
                .republished,
            0
        );
        let r = e.evaluate(T0 + time::Duration::seconds(121)).await.unwrap();
        assert_eq!(r.republished, 1);
        assert_eq!(
            e.evaluate(T0 + time::Duration::seconds(200))
                .await
                .unwrap()
                .republished,
            0
        );
        assert_eq!(publisher.messages().len(), 1);
        assert!(store.pending_notices().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_notice_the_topic_refuses_for_good_is_dead_lettered_not_retried() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let e = engine(&store, &publisher, vec![], vec![]);
        // Unreachable first: kept, and its age shows in the next run.
        publisher.set_failing(true);
        let out = e.ingest(&failures(5, "ip"), T0).await.unwrap();
        assert_eq!((out.publish_failures, out.dead_lettered), (1, 0));
        let waiting = e.evaluate(T0 + time::Duration::seconds(60)).await.unwrap();
        assert_eq!(waiting.oldest_unpublished_ms, Some(60_000));
        assert_eq!(waiting.dead_letters, 0);
        // Then the topic refuses it for good: moved aside once, with the
        // reason, and no longer in the outbox.
        publisher.set_failing(false);
        publisher.set_rejecting(true);
        let r = e.evaluate(T0 + time::Duration::seconds(121)).await.unwrap();
        assert_eq!(
            (r.publish_failures, r.dead_lettered, r.republished),
            (1, 1, 0)
        );
        assert_eq!(r.oldest_unpublished_ms, Some(121_000));
        assert_eq!(r.dead_letters, 1);
        assert!(store.pending_notices().await.unwrap().is_empty());
        let dead = store.dead_letters().await.unwrap();
        assert_eq!(dead.len(), 1);
        assert!(dead[0].reason.contains("NotFound"), "{}", dead[0].reason);
        let incident = store.incident(&dead[0].notice.incident_id).await.unwrap();
        assert!(incident.unwrap().outbox.is_empty());
        // Not retried: later runs publish nothing and keep counting it.
        publisher.set_rejecting(false);
        let later = e.evaluate(T0 + time::Duration::seconds(200)).await.unwrap();
        assert_eq!((later.republished, later.publish_failures), (0, 0));
        assert_eq!(later.oldest_unpublished_ms, None);
        assert_eq!(later.dead_letters, 1);
        assert!(publisher.messages().is_empty());
    }

    /// `n` database errors of one logger, a second apart from `T0`.
    fn database_errors(n: usize) -> Vec<Signal> {
        let mut signals = failures(n, "app.core.database");
        for s in &mut signals {
            s.name = "database_errors".into();
            s.keys[0].0 = "logger".into();
        }
        signals
    }

    #[tokio::test]
    async fn inhibited_and_silenced_transitions_are_recorded_not_published() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let e = engine(&store, &publisher, vec![], vec![Component::Database]);
        let out = e.ingest(&database_errors(5), T0).await.unwrap();
        let reason = out.transitions[0].suppressed.clone().unwrap();
        assert!(reason.contains("database down"), "{reason}");
        let stored = store
            .incident(&out.transitions[0].incident_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.incident.inhibited_by, ["database"]);
        assert!(stored.outbox.is_empty());
        // Still down at the reminder: inhibited again; its resolution is
        // not published either.
        let r = e.evaluate(T0 + time::Duration::minutes(11)).await.unwrap();
        assert_eq!(r.transitions[0].status, TransitionKind::Reminder);
        assert!(r.transitions[0].suppressed.is_some());
        e.evaluate(T0 + time::Duration::hours(1)).await.unwrap();
        assert!(publisher.messages().is_empty());

        let silence = Silence {
            id: "sil-1".into(),
            matchers: vec![Matcher::equal("rule", "auth_failures")],
            starts_at: T0 - time::Duration::hours(1),
            ends_at: T0 + time::Duration::hours(1),
            created_by: "ops".into(),
            comment: "maintenance".into(),
            created_at: T0 - time::Duration::hours(1),
            requested_by: None,
            security: true,
            expired_at: None,
            expired_by: None,
        };
        let store = MemoryAlertStore::default();
        let e = engine(&store, &publisher, vec![silence], vec![]);
        let out = e.ingest(&failures(5, "ip"), T0).await.unwrap();
        assert_eq!(
            out.transitions[0].suppressed.as_deref(),
            Some("silenced by sil-1")
        );
        assert!(publisher.messages().is_empty());
        // Other rules are not silenced.
        let mut api: Vec<Signal> = failures(10, "/api/x");
        for s in &mut api {
            s.name = "api_errors".into();
            s.keys[0].0 = "endpoint".into();
        }
        e.ingest(&api, T0).await.unwrap();
        assert_eq!(publisher.incidents()[0].rule, "api_errors");
    }

    #[tokio::test]
    async fn inhibition_is_decided_again_at_each_transition() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let down = engine(&store, &publisher, vec![], vec![Component::Database]);
        let out = down.ingest(&database_errors(5), T0).await.unwrap();
        assert!(out.transitions[0].suppressed.is_some());
        // The database is back; errors go on: the reminder is published,
        // and so is the resolution that follows.
        let up = engine(&store, &publisher, vec![], vec![]);
        let mut more = database_errors(12);
        for (i, s) in more.iter_mut().enumerate().skip(5) {
            s.timestamp_ms = time_to_ms(T0) + i as i64 * 60_000;
        }
        up.ingest(&more[5..], T0).await.unwrap();
        let r = up.evaluate(T0 + time::Duration::minutes(11)).await.unwrap();
        assert_eq!(r.transitions[0].status, TransitionKind::Reminder);
        assert_eq!(r.transitions[0].suppressed, None);
        up.evaluate(T0 + time::Duration::hours(1)).await.unwrap();
        let statuses: Vec<TransitionKind> =
            publisher.incidents().iter().map(|i| i.status).collect();
        assert_eq!(
            statuses,
            [TransitionKind::Reminder, TransitionKind::Resolved]
        );
    }

    #[tokio::test]
    async fn security_rules_are_never_inhibited() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let e = engine(
            &store,
            &publisher,
            vec![],
            vec![Component::Oauth, Component::Database],
        );
        let out = e.ingest(&failures(5, "ip"), T0).await.unwrap();
        assert_eq!(out.transitions[0].suppressed, None);
        assert_eq!(publisher.incidents()[0].rule, "auth_failures");
        // Even a rule file that asks for it is refused at load.
        let text = TEST_RULES.replacen(
            "category = \"security\"\n",
            "category = \"security\"\ninhibit_when_down = [\"oauth\"]\n",
            1,
        );
        let err = AlertRules::from_toml(&text, "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("security rules are never inhibited"), "{err}");
    }

    #[tokio::test]
    async fn signals_are_accounted_for_by_rule_and_outcome() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let e = engine(&store, &publisher, vec![], vec![]);
        let mut batch = failures(5, "ip");
        // A text failure names no address and no user.
        batch[4].keys.clear();
        batch.push(Signal {
            name: "drift_scan_heartbeat".into(),
            ..batch[0].clone()
        });
        let out = e.ingest(&batch, T0).await.unwrap();
        let again = e.ingest(&batch, T0).await.unwrap();
        let a = &out.accounting;
        assert_eq!(a.received.get("auth_failures"), Some(&5));
        assert_eq!(a.unrouted.get("drift_scan_heartbeat"), Some(&1));
        assert_eq!(a.for_rule("auth_failures", SignalOutcome::Counted), 4);
        assert_eq!(a.for_rule("auth_failures", SignalOutcome::MissingKey), 1);
        // No signal names a user: brute_force drops them all.
        assert_eq!(a.for_rule("brute_force", SignalOutcome::MissingKey), 5);
        assert_eq!(
            again
                .accounting
                .for_rule("auth_failures", SignalOutcome::Duplicate),
            4
        );
        for acc in [&out.accounting, &again.accounting] {
            for rule in ["auth_failures", "brute_force"] {
                let all: u64 = SignalOutcome::ALL
                    .iter()
                    .map(|o| acc.for_rule(rule, *o))
                    .sum();
                assert_eq!(all, 5, "{rule}: every signal offered has one outcome");
            }
        }
    }

    /// The two default sequence rules, alone.
    fn sequence_engine(store: &MemoryAlertStore, publisher: &RecordingPublisher) -> Engine {
        let defaults = AlertRules::default_rules().unwrap();
        let text: String = ["suspected_compromise", "suspected_compromise_by_ip"]
            .iter()
            .map(|name| {
                let r = &defaults.rules()[defaults.index_of(name).unwrap()];
                format!(
                    "[[rule]]\nname = \"{}\"\nsignal = \"{}\"\nthen = \"{}\"\ngroup_by = \"{}\"\nthreshold = {}\nwindow = {}\nseverity = \"{}\"\ncategory = \"{}\"\n",
                    r.name,
                    r.signal,
                    r.then.as_deref().unwrap(),
                    r.group_by.as_deref().unwrap(),
                    r.threshold,
                    r.window_seconds(),
                    r.severity.as_str(),
                    r.category.as_str(),
                )
            })
            .collect();
        AlertEngine::new(
            Arc::new(AlertRules::from_toml(&text, "seq.toml").unwrap()),
            store.clone(),
            publisher.clone(),
            StaticSilences(vec![]),
            StaticComponents(vec![]),
            EngineSettings {
                log_silence_after: None,
                ..EngineSettings::default()
            },
            Arc::new(TokioSleep),
        )
    }

    /// A login attempt of `user` from `ip`, `s` seconds after `T0`.
    fn attempt(name: &str, user: &str, ip: &str, s: i64) -> Signal {
        Signal {
            name: name.into(),
            keys: vec![
                ("ip".into(), ip.to_owned()),
                ("user".into(), user.to_owned()),
            ],
            event_id: format!("{name}-{user}-{ip}-{s}"),
            timestamp_ms: time_to_ms(T0) + s * 1000,
            sample: format!("{{\"message\":\"Authentication attempt\",\"user_id\":\"{user}\"}}"),
        }
    }

    #[tokio::test]
    async fn a_success_after_failures_is_one_critical_incident_naming_the_subject() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let e = sequence_engine(&store, &publisher);
        // Twelve failures against admin from one address: nothing.
        let failures: Vec<Signal> = (0..12)
            .map(|i| attempt("auth_failures", "admin", "ip:a", i))
            .collect();
        let out = e.ingest(&failures, T0).await.unwrap();
        assert!(out.transitions.is_empty());
        // Four failures against bob, then bob logs in: nothing either.
        let mut bob: Vec<Signal> = (0..4)
            .map(|i| attempt("auth_failures", "bob", "ip:b", i))
            .collect();
        bob.push(attempt("auth_successes", "bob", "ip:b", 30));
        assert!(e.ingest(&bob, T0).await.unwrap().transitions.is_empty());
        // admin logs in from the same address: one incident per rule.
        let success = vec![attempt("auth_successes", "admin", "ip:a", 60)];
        let out = e.ingest(&success, T0).await.unwrap();
        let mut fired: Vec<(String, String)> = out
            .transitions
            .iter()
            .map(|t| (t.rule.clone(), t.key.clone()))
            .collect();
        fired.sort();
        assert_eq!(
            fired,
            [
                ("suspected_compromise".to_owned(), "admin".to_owned()),
                ("suspected_compromise_by_ip".to_owned(), "ip:a".to_owned())
            ]
        );
        for incident in publisher.incidents() {
            assert_eq!(incident.severity, super::super::Severity::Critical);
            assert_eq!(incident.subject.as_deref(), Some("admin"));
            assert_eq!(incident.count, 12);
        }
        // Redelivery of everything changes nothing.
        let mut all = failures.clone();
        all.extend(bob);
        all.extend(success);
        let again = e.ingest(&all, T0).await.unwrap();
        assert!(again.transitions.is_empty());
        assert_eq!(again.duplicates, 2 * all.len());
        assert_eq!(publisher.incidents().len(), 2);
        for rule in ["suspected_compromise", "suspected_compromise_by_ip"] {
            assert_eq!(
                again.accounting.for_rule(rule, SignalOutcome::Duplicate),
                all.len() as u64
            );
        }
    }

    #[tokio::test]
    async fn the_dead_mans_switch_fires_when_logs_stop() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let mut e = engine(&store, &publisher, vec![], vec![]);
        e.settings.log_silence_after = Some(Duration::from_secs(900));
        e.ingest(&[], T0).await.unwrap();
        assert!(
            e.evaluate(T0 + time::Duration::minutes(14))
                .await
                .unwrap()
                .transitions
                .is_empty()
        );
        let out = e.evaluate(T0 + time::Duration::minutes(15)).await.unwrap();
        assert_eq!(out.transitions.len(), 1);
        assert_eq!(out.transitions[0].rule, LOG_PIPELINE_SILENT);
        // Still silent a minute later: the same incident, no new message.
        assert!(
            e.evaluate(T0 + time::Duration::minutes(16))
                .await
                .unwrap()
                .transitions
                .is_empty()
        );
        // Logs are back: resolved after the rule's quiet period.
        e.ingest(&[], T0 + time::Duration::minutes(17))
            .await
            .unwrap();
        let out = e.evaluate(T0 + time::Duration::minutes(21)).await.unwrap();
        assert_eq!(out.transitions[0].status, TransitionKind::Resolved);
        assert_eq!(publisher.messages().len(), 2);
    }

    #[tokio::test]
    async fn a_lost_race_is_applied_again_without_a_second_incident() {
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let e = engine(&store, &publisher, vec![], vec![]);
        // Two engines read the same (empty) window; the second commit loses.
        let batch = failures(5, "ip");
        let (a, b) = tokio::join!(e.ingest(&batch[..5], T0), e.ingest(&batch[1..], T0));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.transitions.len() + b.transitions.len(), 1);
        assert_eq!(publisher.messages().len(), 1);
    }

    #[tokio::test]
    async fn probe_failures_raise_component_down() {
        use crate::domain::alerts::probe_signals::probe_signals;
        use crate::domain::probe_result::{ProbeResult, Status};
        let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
        let e = engine(&store, &publisher, vec![], vec![]);
        let mut fired = Vec::new();
        for (i, status) in [Status::Fail, Status::Pass, Status::Fail, Status::Fail]
            .into_iter()
            .enumerate()
        {
            let r = ProbeResult {
                component: Component::Database,
                status,
                reason: None,
                checked_at: T0 + time::Duration::minutes(i as i64),
                latency_ms: 1.0,
                measurements: vec![],
                detail: None,
            };
            let out = e
                .ingest_probes(&probe_signals(&[], &[r]), T0)
                .await
                .unwrap();
            fired.extend(out.transitions);
        }
        assert_eq!(fired.len(), 1);
        assert_eq!(
            (fired[0].rule.as_str(), fired[0].key.as_str()),
            ("component_down", "database")
        );
        assert_eq!(
            publisher.incidents()[0].severity,
            super::super::Severity::Critical
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Batches cut anywhere and redelivered at random (Lambda's
        /// at-least-once): the store-backed engine fires exactly the
        /// incidents the in-memory stream engine fires on the clean stream.
        #[test]
        fn redelivered_batches_fire_what_the_clean_stream_fires(
            gaps in proptest::collection::vec(0i64..40_000, 20..120),
            ips in proptest::collection::vec(0u8..3, 120),
            cuts in proptest::collection::vec(1usize..15, 1..30),
            redeliver in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..10),
        ) {
            let mut signals = Vec::new();
            let mut ts = time_to_ms(T0);
            for (i, gap) in gaps.iter().enumerate() {
                ts += gap;
                let ip = format!("ip-{}", ips[i]);
                signals.push(Signal {
                    name: "auth_failures".into(),
                    keys: vec![("ip".into(), ip.clone()), ("user".into(), format!("u-{}", ips[i] % 2))],
                    event_id: format!("ev{i}"),
                    timestamp_ms: ts,
                    sample: String::new(),
                });
            }
            // Batches in order, then earlier batches delivered again.
            let mut batches: Vec<&[Signal]> = Vec::new();
            let mut rest = signals.as_slice();
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (head, tail) = rest.split_at((*cut * 2).min(rest.len()));
                batches.push(head);
                rest = tail;
            }
            let mut deliveries: Vec<&[Signal]> = batches.clone();
            for ix in &redeliver {
                let at = ix.index(deliveries.len() + 1);
                let again = batches[ix.index(batches.len())];
                // Only after the batch's first delivery.
                let first = deliveries.iter().position(|b| std::ptr::eq(*b, again)).unwrap_or(0);
                deliveries.insert(at.max(first + 1), again);
            }

            let rules = Arc::new(AlertRules::from_toml(TEST_RULES, "test.toml").unwrap());
            let mut stream = StreamEngine::new(Arc::clone(&rules));
            let mut expected = Vec::new();
            let mut out = Vec::new();
            for s in &signals {
                stream.push(&AlertInput::from_signal(s), &mut out);
            }
            for t in out.iter().filter(|t| t.transition.kind == TransitionKind::Firing) {
                let rule = rules.get(t.rule).unwrap().name.to_string();
                expected.push((rule, t.key.clone(), t.transition.at_ms, t.transition.count));
            }

            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (store, publisher) = (MemoryAlertStore::default(), RecordingPublisher::default());
            let e = engine(&store, &publisher, vec![], vec![]);
            for batch in deliveries {
                runtime.block_on(e.ingest(batch, T0)).unwrap();
            }
            let mut got: Vec<_> = publisher
                .incidents()
                .into_iter()
                .filter(|i| i.status == TransitionKind::Firing)
                .map(|i| {
                    let at = OffsetDateTime::parse(&i.transition_at, &time::format_description::well_known::Rfc3339).unwrap();
                    (i.rule, i.key, time_to_ms(at), i.count)
                })
                .collect();
            got.sort();
            expected.sort();
            proptest::prop_assert_eq!(got, expected);
        }
    }
}
