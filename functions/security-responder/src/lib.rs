//! The guide's `handle_security_alert` for critical security incidents (the
//! subscription's filter policy lets only `category=security`,
//! `severity=critical` through; the handler checks again):
//!
//! 0. every record is verified before anything acts on it
//!    (`domain::security_response::inbound`): it must come from the configured
//!    incidents topic, and the incident must be in the table as delivered
//!    (id, rule, category, severity, key, subject, episode, status phase).
//!    Anything else is refused, counted by reason (`wrong_topic`,
//!    `unknown_incident`, `mismatch:<field>`), logged and acknowledged;
//!    nothing is stored for it, so a forged message cannot pre-empt the
//!    real incident's response;
//! 1. one response per incident: a record already stored means a
//!    redelivery (only a notification that failed is sent again); otherwise
//!    the incident is claimed with a conditional write (a concurrent
//!    delivery backs off and retries later);
//! 2. the guard rails decide who may be revoked
//!    (`domain::security_response::revocation`): the rule allow-list, dry-run,
//!    user-keyed incidents only, protected principals, per-incident cap;
//!    then each revocation takes the user's cooldown (one revocation per
//!    user per period, any incident) and a slot of its rule's hourly cap,
//!    both in the table. Every outcome is a `Decision`, recorded and
//!    counted;
//! 3. the revoker revokes: by default a row in the service's own
//!    `blocklistedtoken` table, read back and checked the way the service
//!    checks a token (the record keeps the row and that check); or the
//!    auth service's revoke endpoint, where a service has one. A dry run
//!    records the exact row it would write;
//! 4. the record (every action and how to undo it) is stored as
//!    `RESPONSE#<id>` / `ACTIONS` and logged as an audit line;
//! 5. the security team's topic is notified with the incident and the
//!    record, and the record marked notified.
//!
//! A revoker or store that cannot be reached fails the invocation (Lambda
//! retries; revocations are idempotent: the blocklist row's id is derived
//! from the incident and the user). A refusal by the revoker — a user key
//! that is not the service's user id, a write the database refuses, a
//! read-back that does not show the revocation — is recorded as a failed
//! action for a human, before any slot of the hourly cap is taken where it
//! can be known beforehand.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sns::SnsEvent;
use monitoring_adapters::blocklist_revoker::BlocklistRevoker;
use monitoring_adapters::http_revoker::HttpRevoker;
use monitoring_core::domain::alerts::{Category, Incident, Severity};
use monitoring_core::domain::security_response::revocation::{ActionStatus, ResponseAction};
use monitoring_core::domain::security_response::{
    BlocklistEntry, Decision, Guardrails, Mode, ResponseRecord, Verification, accept_incident,
    count_refusal, from_topic, plan, plausible_incident_id, rule_gate, verify_stored,
};
use monitoring_core::domain::timefmt::rfc3339_millis;
use monitoring_core::ports::{
    Clock, IncidentPublisher, IncidentSource, OutgoingMessage, PublishError, ResponseStore,
    RevokeError, Revoker, StoreError,
};
use serde::Serialize;
use time::OffsetDateTime;

/// Schema of the security team's notification.
pub const RESPONSE_SCHEMA: &str = "blindspotx.security-response/v1";

#[derive(Debug, thiserror::Error)]
pub enum ResponderError {
    #[error("response store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Revoke(RevokeError),
    #[error("security team notification: {0}")]
    Notify(#[from] PublishError),
    /// Another invocation holds the incident: retry later.
    #[error("incident {0} is being handled by another invocation")]
    Busy(String),
}

/// A revocation decided, before anything is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub user: String,
    /// What the revocation will do, for people (the dry-run record).
    pub detail: String,
    /// The exact blocklist row (blocklist revoker).
    pub row: Option<BlocklistEntry>,
}

/// A revocation done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub detail: String,
    pub undo: String,
    /// The blocklist row as read back from the table.
    pub row: Option<BlocklistEntry>,
    /// The service's check after the write.
    pub verification: Option<Verification>,
}

/// What the responder needs from a revoker. Unlike `ports::Revoker` (a
/// user id and an incident id) it sees the incident, since the blocklist
/// row is derived from it (every delivery names the same row), and it
/// decides before it acts: the dry run records exactly what enforce mode
/// would write, and a user who cannot be revoked is refused before a slot
/// of the hourly cap is spent on them.
pub trait IncidentRevoker: Send + Sync {
    /// `blocklist`, `http` or `none`, for the record.
    fn name(&self) -> &'static str;

    /// The revocation of `user` for `incident` at `now`, without I/O;
    /// `Refused` when this revoker cannot revoke that user.
    fn prepare(
        &self,
        incident: &Incident,
        user: &str,
        now: OffsetDateTime,
    ) -> Result<Prepared, RevokeError>;

    /// Carries `prepared` out; idempotent.
    fn revoke(
        &self,
        incident: &Incident,
        prepared: &Prepared,
    ) -> impl Future<Output = Result<Revoked, RevokeError>> + Send;
}

/// The revoker chosen by configuration.
pub enum AnyRevoker {
    None,
    /// The service's `blocklistedtoken` table (the default); boxed, as it
    /// is the largest by far (its connection settings).
    Blocklist(Box<BlocklistRevoker>),
    /// A revoke endpoint, for services that expose one.
    Http(HttpRevoker),
}

impl IncidentRevoker for AnyRevoker {
    fn name(&self) -> &'static str {
        match self {
            AnyRevoker::None => "none",
            AnyRevoker::Blocklist(_) => "blocklist",
            AnyRevoker::Http(r) => r.name(),
        }
    }

    fn prepare(
        &self,
        incident: &Incident,
        user: &str,
        now: OffsetDateTime,
    ) -> Result<Prepared, RevokeError> {
        let (detail, row) = match self {
            AnyRevoker::None => (
                format!("would revoke every token of {user}, but no revoker is configured"),
                None,
            ),
            AnyRevoker::Blocklist(r) => {
                let row = BlocklistEntry::for_incident(incident, user, now, r.settings().lifetime)
                    .map_err(|e| RevokeError::Refused(e.to_string()))?;
                (
                    format!(
                        "would insert into blocklistedtoken (id, jti, token_type, user_id, \
                         expires_at, reason, created_at) the row ('{}', '{}', '{}', '{}', '{}', \
                         '{}', '{}'){}",
                        row.id,
                        row.jti,
                        row.token_type,
                        row.user_id,
                        rfc3339_millis(row.expires_at),
                        row.reason,
                        rfc3339_millis(row.created_at),
                        if r.can_write() {
                            ""
                        } else {
                            " (no BLOCKLIST_DATABASE_URL yet: enforce mode needs it)"
                        }
                    ),
                    Some(row),
                )
            }
            AnyRevoker::Http(_) => (
                format!(
                    "would ask the auth service's revoke endpoint to revoke every token of {user}"
                ),
                None,
            ),
        };
        Ok(Prepared {
            user: user.to_owned(),
            detail,
            row,
        })
    }

    async fn revoke(
        &self,
        incident: &Incident,
        prepared: &Prepared,
    ) -> Result<Revoked, RevokeError> {
        match self {
            AnyRevoker::None => Err(RevokeError::Refused("no revoker configured".into())),
            AnyRevoker::Blocklist(r) => {
                let Some(row) = &prepared.row else {
                    return Err(RevokeError::Refused("no blocklist row prepared".into()));
                };
                let written = r.write(row).await?;
                let v = &written.verification;
                let stored = &written.stored;
                Ok(Revoked {
                    detail: format!(
                        "{} blocklistedtoken row {} (jti {}, token_type {}, expires {}); read back: \
                         the service's check rejects every token of {} ({} matching row(s))",
                        if v.inserted {
                            "inserted"
                        } else {
                            "found (written before, nothing added)"
                        },
                        stored.id,
                        stored.jti,
                        stored.token_type,
                        rfc3339_millis(stored.expires_at),
                        stored.user_id,
                        v.matching_rows
                    ),
                    undo: format!(
                        "DELETE FROM blocklistedtoken WHERE id = '{}' (as the service's database \
                         owner: the responder's role cannot delete); tokens stay rejected until \
                         then, the user signs in again",
                        stored.id
                    ),
                    row: Some(written.stored),
                    verification: Some(written.verification),
                })
            }
            AnyRevoker::Http(r) => {
                let done = r.revoke_user(&prepared.user, &incident.id).await?;
                Ok(Revoked {
                    detail: format!(
                        "{} (not read back: the endpoint's answer is the only evidence)",
                        done.detail
                    ),
                    undo: done.undo,
                    row: None,
                    verification: None,
                })
            }
        }
    }
}

/// A publisher that is not there (no security topic configured).
pub struct NoTopic;

impl IncidentPublisher for NoTopic {
    async fn publish(&self, _: &OutgoingMessage) -> Result<(), PublishError> {
        Ok(())
    }
}

/// What an invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResponderSummary {
    pub records: usize,
    /// Rejected and refused messages by reason (`wrong_topic`,
    /// `invalid_json`, `wrong_schema`, `unknown_incident`,
    /// `mismatch:<field>`): nothing acted on them.
    pub rejected: BTreeMap<&'static str, usize>,
    /// The guard rails' decisions by label (`acted`, `dry_run`, `refused`,
    /// `hourly_cap`, `protected`, `incident_cap`, `cooldown`,
    /// `not_allowed_rule`, `notify_only`).
    pub decisions: BTreeMap<&'static str, usize>,
    /// Incidents that are not critical security ones (the filter policy
    /// should have kept them away).
    pub ignored: usize,
    /// Incidents already handled (redeliveries).
    pub duplicates: usize,
    pub responses: Vec<ResponseRecord>,
}

/// The responder, built once per cold start.
pub struct Responder<R, S, P, I> {
    pub rails: Guardrails,
    pub revoker: R,
    pub store: S,
    /// The incidents as stored: a delivered incident is checked against
    /// them before anything acts on it.
    pub incidents: I,
    /// The incidents topic: records of any other topic are refused.
    pub incidents_topic: String,
    /// The security team's topic (`None`: the record and the audit log only).
    pub team: Option<P>,
    /// Name of the notification target, for the record.
    pub team_target: String,
    pub clock: Arc<dyn Clock>,
    /// How long a claim holds before a retry may take it over; longer than
    /// the function's timeout.
    pub lease: Duration,
}

impl<R: IncidentRevoker, S: ResponseStore, P: IncidentPublisher, I: IncidentSource>
    Responder<R, S, P, I>
{
    pub async fn handle(&self, event: &SnsEvent) -> Result<ResponderSummary, ResponderError> {
        let mut summary = ResponderSummary {
            records: event.records.len(),
            ..ResponderSummary::default()
        };
        for record in &event.records {
            let message_id = record.sns.message_id.as_str();
            if let Err(refusal) = from_topic(&record.sns.topic_arn, &self.incidents_topic) {
                count_refusal(refusal, message_id, None, &mut summary.rejected);
                continue;
            }
            let Some(incident) =
                accept_incident(&record.sns.message, message_id, &mut summary.rejected)
            else {
                continue;
            };
            if incident.category != Category::Security || incident.severity != Severity::Critical {
                summary.ignored += 1;
                tracing::warn!(
                    incident = %incident.id,
                    rule = %incident.rule,
                    category = incident.category.as_str(),
                    severity = incident.severity.as_str(),
                    "not a critical security incident; ignored (check the subscription's filter policy)"
                );
                continue;
            }
            let stored = if plausible_incident_id(&incident.id) {
                self.incidents.stored_incident(&incident.id).await?
            } else {
                None
            };
            if let Err(refusal) = verify_stored(&incident, stored.as_ref()) {
                count_refusal(
                    refusal,
                    message_id,
                    Some(&incident.id),
                    &mut summary.rejected,
                );
                continue;
            }
            match self.respond(&incident).await? {
                Some(r) => {
                    count_decisions(&r, &mut summary.decisions);
                    summary.responses.push(r);
                }
                None => summary.duplicates += 1,
            }
        }
        Ok(summary)
    }

    /// The response to one incident; `None` when it was handled before.
    async fn respond(&self, incident: &Incident) -> Result<Option<ResponseRecord>, ResponderError> {
        if let Some(mut done) = self.store.record(&incident.id).await? {
            tracing::info!(
                incident = %incident.id,
                transition = %incident.transition_id,
                notified = done.notified,
                "incident already handled; nothing is revoked again"
            );
            if !done.notified && self.team.is_some() {
                self.notify(incident, &mut done).await?;
            }
            return Ok(None);
        }
        let now = self.clock.now();
        if !self.store.claim(&incident.id, now, self.lease).await? {
            return Err(ResponderError::Busy(incident.id.clone()));
        }
        let mut record = ResponseRecord::new(
            incident,
            self.rails.mode,
            self.revoker.name(),
            rfc3339_millis(now),
        );
        if let Some((gated, note)) = rule_gate(incident, &self.rails) {
            record.decision = Some(gated);
            record.notes.push(note);
        } else {
            let decision = plan(incident, &self.rails);
            record.notes.extend(decision.notes.iter().cloned());
            record.add_skips(&decision.skipped);
            for user in &decision.revoke {
                record.actions.push(self.revoke(incident, user, now).await?);
            }
            if decision.revoke.is_empty() && decision.skipped.is_empty() {
                record.decision = Some(Decision::NotifyOnly);
            }
        }
        self.store.save(&record).await?;
        audit(&record);
        if self.team.is_some() {
            self.notify(incident, &mut record).await?;
        } else {
            record.notes.push(
                "no security topic configured: this record and the audit log are the notification"
                    .into(),
            );
            self.store.save(&record).await?;
        }
        Ok(Some(record))
    }

    async fn revoke(
        &self,
        incident: &Incident,
        user: &str,
        now: OffsetDateTime,
    ) -> Result<ResponseAction, ResponderError> {
        let action = |status, detail: String, undo: Option<String>, decision| {
            ResponseAction::new("revoke_user", user, status, detail, undo).decided(decision)
        };
        // Whatever decided the principals, a protected one is never touched.
        if self.rails.is_protected(user) {
            return Ok(action(
                ActionStatus::Skipped,
                "kept: protected".to_owned(),
                None,
                Decision::Protected,
            ));
        }
        let dry_run = self.rails.mode == Mode::DryRun;
        let prepared = match self.revoker.prepare(incident, user, now) {
            Ok(p) => p,
            Err(RevokeError::Refused(reason)) => {
                tracing::warn!(
                    incident = %incident.id,
                    user,
                    revoker = self.revoker.name(),
                    reason = %reason,
                    "the revoker cannot revoke this user; a human decides"
                );
                return Ok(action(
                    ActionStatus::Failed,
                    format!(
                        "{}revoker refused: {reason}",
                        if dry_run { "dry-run: " } else { "" }
                    ),
                    None,
                    Decision::Refused,
                ));
            }
            Err(e) => return Err(ResponderError::Revoke(e)),
        };
        if dry_run {
            let mut a = action(
                ActionStatus::DryRun,
                format!(
                    "dry-run ({} revoker): {}; nothing touched",
                    self.revoker.name(),
                    prepared.detail
                ),
                None,
                Decision::DryRun,
            );
            a.blocklist_row = prepared.row;
            return Ok(a);
        }
        // The cooldown before the cap: a user revoked moments ago by another
        // incident costs no slot. A slot refused gives the cooldown back.
        let cooldown = self.rails.user_cooldown;
        if !self
            .store
            .take_user_cooldown(user, &incident.id, now, cooldown)
            .await?
        {
            tracing::warn!(
                incident = %incident.id,
                user,
                cooldown_seconds = cooldown.as_secs(),
                "user revoked by another incident within the cooldown; not revoked again"
            );
            return Ok(action(
                ActionStatus::Skipped,
                format!(
                    "kept: cooldown (revoked by another incident within the last {} s)",
                    cooldown.as_secs()
                ),
                None,
                Decision::Cooldown,
            ));
        }
        if !self
            .store
            .take_hourly_slot(&incident.rule, now, self.rails.max_per_hour)
            .await?
        {
            self.store.release_user_cooldown(user, &incident.id).await?;
            tracing::warn!(
                incident = %incident.id,
                rule = %incident.rule,
                user,
                max_per_hour = self.rails.max_per_hour,
                "hourly revocation cap of the rule reached; not revoked"
            );
            return Ok(action(
                ActionStatus::Skipped,
                format!(
                    "kept: hourly_cap ({} revocations per hour for rule {})",
                    self.rails.max_per_hour, incident.rule
                ),
                None,
                Decision::HourlyCap,
            ));
        }
        match self.revoker.revoke(incident, &prepared).await {
            Ok(done) => {
                let mut a = action(
                    ActionStatus::Revoked,
                    done.detail,
                    Some(done.undo),
                    Decision::Acted,
                );
                a.blocklist_row = done.row;
                a.verification = done.verification;
                Ok(a)
            }
            Err(RevokeError::Refused(reason)) => {
                self.store.release_user_cooldown(user, &incident.id).await?;
                let mut a = action(
                    ActionStatus::Failed,
                    format!("revoker refused: {reason}"),
                    None,
                    Decision::Refused,
                );
                a.blocklist_row = prepared.row;
                Ok(a)
            }
            // Unreachable: the cooldown stays this incident's, so the retry
            // takes it again.
            Err(e) => Err(ResponderError::Revoke(e)),
        }
    }

    async fn notify(
        &self,
        incident: &Incident,
        record: &mut ResponseRecord,
    ) -> Result<(), ResponderError> {
        let Some(team) = &self.team else {
            return Ok(());
        };
        let body = serde_json::json!({
            "schema": RESPONSE_SCHEMA,
            "summary": monitoring_core::domain::security_response::payloads::summary_line(incident),
            "incident": incident,
            "response": &*record,
        })
        .to_string();
        let message = OutgoingMessage {
            body,
            attributes: BTreeMap::from([
                ("severity".to_owned(), incident.severity.as_str().to_owned()),
                ("category".to_owned(), incident.category.as_str().to_owned()),
                ("rule".to_owned(), incident.rule.clone()),
                ("mode".to_owned(), record.mode.as_str().to_owned()),
            ]),
            dedup_id: format!("{}:response", incident.id),
        };
        team.publish(&message).await?;
        record.notified = true;
        record.actions.push(ResponseAction::new(
            "notify_security_team",
            &self.team_target,
            ActionStatus::Done,
            "security team notified with the incident and this record".to_owned(),
            None,
        ));
        self.store.save(record).await?;
        Ok(())
    }
}

/// Counts a record's decisions, one log line each (with the reason: the
/// action's detail or the record's note), for metric filters and people.
fn count_decisions(record: &ResponseRecord, counts: &mut BTreeMap<&'static str, usize>) {
    if let Some(d) = record.decision {
        *counts.entry(d.as_str()).or_default() += 1;
        tracing::info!(
            decision = d.as_str(),
            incident = %record.incident_id,
            rule = %record.rule,
            reason = record.notes.last().map_or("", String::as_str),
            "security response decision"
        );
    }
    for a in &record.actions {
        let Some(d) = a.decision else { continue };
        *counts.entry(d.as_str()).or_default() += 1;
        tracing::info!(
            decision = d.as_str(),
            incident = %record.incident_id,
            rule = %record.rule,
            user = %a.target,
            reason = %a.detail,
            "security response decision"
        );
    }
}

/// The security incident log line (JSON through tracing): the incident, the
/// mode and every action with its undo.
fn audit(record: &ResponseRecord) {
    let record_json = serde_json::to_string(record).unwrap_or_default();
    tracing::warn!(
        audit = "security_incident",
        incident = %record.incident_id,
        rule = %record.rule,
        mode = record.mode.as_str(),
        revoked = record.revoked().count(),
        actions = record.actions.len(),
        record = %record_json,
        "security incident response"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use monitoring_core::domain::alerts::{INCIDENT_SCHEMA, TransitionKind};
    use monitoring_core::memory::alerts::MemoryAlertStore;
    use monitoring_core::ports::SystemClock;

    use super::*;

    #[derive(Default)]
    struct MemStore {
        records: Mutex<BTreeMap<String, ResponseRecord>>,
        claims: Mutex<Vec<String>>,
        taken: AtomicUsize,
        /// Slots taken per rule.
        per_rule: Mutex<BTreeMap<String, u32>>,
        /// User → (incident, until).
        cooldowns: Mutex<BTreeMap<String, (String, OffsetDateTime)>>,
    }

    impl ResponseStore for MemStore {
        async fn record(&self, id: &str) -> Result<Option<ResponseRecord>, StoreError> {
            Ok(self.records.lock().unwrap().get(id).cloned())
        }
        async fn claim(
            &self,
            id: &str,
            _: time::OffsetDateTime,
            _: Duration,
        ) -> Result<bool, StoreError> {
            let mut claims = self.claims.lock().unwrap();
            if claims.iter().any(|c| c == id) {
                return Ok(false);
            }
            claims.push(id.to_owned());
            Ok(true)
        }
        async fn take_hourly_slot(
            &self,
            rule: &str,
            _: time::OffsetDateTime,
            cap: u32,
        ) -> Result<bool, StoreError> {
            self.taken.fetch_add(1, Ordering::SeqCst);
            let mut per_rule = self.per_rule.lock().unwrap();
            let n = per_rule.entry(rule.to_owned()).or_default();
            if *n >= cap {
                return Ok(false);
            }
            *n += 1;
            Ok(true)
        }
        async fn take_user_cooldown(
            &self,
            user: &str,
            incident: &str,
            now: OffsetDateTime,
            period: Duration,
        ) -> Result<bool, StoreError> {
            let mut c = self.cooldowns.lock().unwrap();
            if let Some((holder, until)) = c.get(user)
                && holder != incident
                && *until > now
            {
                return Ok(false);
            }
            c.insert(user.to_owned(), (incident.to_owned(), now + period));
            Ok(true)
        }
        async fn release_user_cooldown(
            &self,
            user: &str,
            incident: &str,
        ) -> Result<(), StoreError> {
            let mut c = self.cooldowns.lock().unwrap();
            if c.get(user).is_some_and(|(holder, _)| holder == incident) {
                c.remove(user);
            }
            Ok(())
        }
        async fn save(&self, r: &ResponseRecord) -> Result<(), StoreError> {
            self.records
                .lock()
                .unwrap()
                .insert(r.incident_id.clone(), r.clone());
            Ok(())
        }
    }

    struct CountingRevoker(AtomicUsize);

    impl IncidentRevoker for CountingRevoker {
        fn name(&self) -> &'static str {
            "test"
        }
        fn prepare(
            &self,
            _: &Incident,
            user: &str,
            _: OffsetDateTime,
        ) -> Result<Prepared, RevokeError> {
            if user == "not-a-user" {
                return Err(RevokeError::Refused("not a user id".into()));
            }
            Ok(Prepared {
                user: user.to_owned(),
                detail: "would revoke".into(),
                row: None,
            })
        }
        async fn revoke(&self, _: &Incident, _: &Prepared) -> Result<Revoked, RevokeError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Revoked {
                detail: "done".into(),
                undo: "undo".into(),
                row: None,
                verification: None,
            })
        }
    }

    /// Fails while `down` is set.
    #[derive(Default)]
    struct Team {
        down: AtomicBool,
        sent: AtomicUsize,
    }

    impl IncidentPublisher for Team {
        async fn publish(&self, _: &OutgoingMessage) -> Result<(), PublishError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(PublishError::Unavailable("down".into()));
            }
            self.sent.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:incidents";

    fn incident(id: &str, key: &str) -> Incident {
        serde_json::from_value(serde_json::json!({
            "schema": INCIDENT_SCHEMA, "id": id, "episode": 1,
            "transition_id": format!("{id}:firing"), "status": TransitionKind::Firing,
            "rule": "suspected_compromise", "category": "security",
            "severity": "critical", "key_name": "user", "key": key, "count": 10, "threshold": 10,
            "window_seconds": 120, "first_event_at": "2026-11-30T08:00:00.000Z",
            "last_event_at": "2026-11-30T08:01:48.000Z",
            "transition_at": "2026-11-30T08:01:48.000Z", "samples": [], "dashboard_url": "d",
            "runbook_url": "r"
        }))
        .unwrap()
    }

    fn event_from(topic: &str, incident: &Incident) -> SnsEvent {
        serde_json::from_value(serde_json::json!({"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "a",
            "Sns": {"Type": "Notification", "MessageId": "m", "TopicArn": topic,
                "Timestamp": "2026-11-30T08:00:00Z", "SignatureVersion": "1", "Signature": "s",
                "SigningCertUrl": "u", "UnsubscribeUrl": "u", "Message": incident.to_json()}
        }]}))
        .unwrap()
    }

    /// Incident `i1` about `key`, stored in `r`'s table and delivered.
    fn event<R, S, P>(r: &Responder<R, S, P, MemoryAlertStore>, key: &str) -> SnsEvent {
        let i = incident("i1", key);
        r.incidents.put_incident(i.clone());
        event_from(TOPIC, &i)
    }

    /// A responder on in-memory stores and a test team topic.
    fn responder_with<R>(
        rails: Guardrails,
        revoker: R,
    ) -> Responder<R, MemStore, Team, MemoryAlertStore> {
        Responder {
            rails,
            revoker,
            store: MemStore::default(),
            incidents: MemoryAlertStore::default(),
            incidents_topic: TOPIC.into(),
            team: Some(Team::default()),
            team_target: "topic".into(),
            clock: Arc::new(SystemClock),
            lease: Duration::from_secs(45),
        }
    }

    fn responder() -> Responder<CountingRevoker, MemStore, Team, MemoryAlertStore> {
        let rails = Guardrails {
            mode: Mode::Enforce,
            ..Guardrails::default()
        };
        responder_with(rails, CountingRevoker(AtomicUsize::new(0)))
    }

    #[tokio::test]
    async fn a_failed_notification_is_sent_again_without_revoking_again() {
        let r = responder();
        r.team.as_ref().unwrap().down.store(true, Ordering::SeqCst);
        assert!(matches!(
            r.handle(&event(&r, "u-1")).await,
            Err(ResponderError::Notify(_))
        ));
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 1);
        let stored = r.store.record("i1").await.unwrap().unwrap();
        assert!(!stored.notified);
        r.team.as_ref().unwrap().down.store(false, Ordering::SeqCst);
        let s = r.handle(&event(&r, "u-1")).await.unwrap();
        assert_eq!(s.duplicates, 1);
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 1, "revoked once");
        assert_eq!(r.team.as_ref().unwrap().sent.load(Ordering::SeqCst), 1);
        assert!(r.store.record("i1").await.unwrap().unwrap().notified);
        // A third delivery does nothing at all.
        r.handle(&event(&r, "u-1")).await.unwrap();
        assert_eq!(r.team.as_ref().unwrap().sent.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_claim_held_elsewhere_fails_for_a_later_retry() {
        let r = responder();
        r.store.claims.lock().unwrap().push("i1".into());
        assert!(matches!(
            r.handle(&event(&r, "u-1")).await,
            Err(ResponderError::Busy(_))
        ));
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn no_user_means_no_revocation() {
        let r = responder();
        let s = r.handle(&event(&r, "unknown")).await.unwrap();
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 0);
        assert!(s.responses[0].notes[0].contains("no user to revoke"));
    }

    #[tokio::test]
    async fn a_user_the_revoker_cannot_revoke_costs_no_hourly_slot() {
        let r = responder();
        let s = r.handle(&event(&r, "not-a-user")).await.unwrap();
        let action = &s.responses[0].actions[0];
        assert_eq!(action.status, ActionStatus::Failed);
        assert!(action.detail.contains("not a user id"), "{}", action.detail);
        assert_eq!(r.store.taken.load(Ordering::SeqCst), 0);
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn forged_and_stale_messages_are_refused_counted_and_never_acted_on() {
        let r = responder();
        let stored = incident("i1", "u-1");
        r.incidents.put_incident(stored.clone());
        let mut cases: Vec<(&str, SnsEvent)> = vec![
            (
                "wrong_topic",
                event_from("arn:aws:sns:us-east-1:123456789012:forged", &stored),
            ),
            (
                "unknown_incident",
                event_from(TOPIC, &incident("i2", "u-1")),
            ),
            (
                "unknown_incident",
                event_from(TOPIC, &incident(&"f".repeat(3000), "u-1")),
            ),
        ];
        let mut other_key = stored.clone();
        other_key.key = "u-2".into();
        cases.push(("mismatch:key", event_from(TOPIC, &other_key)));
        let mut other_episode = stored.clone();
        other_episode.episode = 2;
        cases.push(("mismatch:episode", event_from(TOPIC, &other_episode)));
        let mut other_subject = stored.clone();
        other_subject.subject = Some("u-2".into());
        cases.push(("mismatch:subject", event_from(TOPIC, &other_subject)));
        for (reason, e) in &cases {
            let s = r.handle(e).await.unwrap();
            assert_eq!(s.rejected.get(reason), Some(&1), "{reason}: {s:?}");
            assert!(s.responses.is_empty() && s.decisions.is_empty(), "{reason}");
        }
        // Resolved in the table: a firing message is stale.
        let mut resolved = stored.clone();
        resolved.status = TransitionKind::Resolved;
        r.incidents.put_incident(resolved);
        let s = r.handle(&event_from(TOPIC, &stored)).await.unwrap();
        assert_eq!(s.rejected.get("mismatch:status"), Some(&1));
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 0);
        assert_eq!(r.store.taken.load(Ordering::SeqCst), 0);
        assert!(r.store.claims.lock().unwrap().is_empty(), "nothing claimed");
        assert!(
            r.store.record("i1").await.unwrap().is_none(),
            "nothing stored"
        );
        // The real incident is still answered in full afterwards.
        r.incidents.put_incident(stored.clone());
        let s = r.handle(&event_from(TOPIC, &stored)).await.unwrap();
        assert_eq!(s.decisions.get("acted"), Some(&1));
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_rule_off_the_list_never_revokes() {
        let r = responder();
        let mut brute = incident("i1", "u-1");
        brute.rule = "brute_force".into();
        r.incidents.put_incident(brute.clone());
        let s = r.handle(&event_from(TOPIC, &brute)).await.unwrap();
        let record = &s.responses[0];
        assert_eq!(record.decision, Some(Decision::NotAllowedRule));
        assert!(
            record.notes[0].contains("brute_force"),
            "{:?}",
            record.notes
        );
        assert_eq!(s.decisions.get("not_allowed_rule"), Some(&1));
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 0);
        assert!(record.notified, "the team still hears of it");
    }

    #[tokio::test]
    async fn a_protected_principal_is_never_revoked() {
        let mut r = responder();
        r.rails.protected = ["U-1".to_owned()].into();
        let s = r.handle(&event(&r, "u-1")).await.unwrap();
        let a = &s.responses[0].actions[0];
        assert_eq!(a.decision, Some(Decision::Protected));
        assert_eq!(a.status, ActionStatus::Skipped);
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 0);
        // Also when whatever planned the revocation named them anyway.
        let i = incident("i9", "u-1");
        let a = r
            .revoke(&i, "u-1", OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_eq!(a.decision, Some(Decision::Protected));
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn one_revocation_per_user_within_the_cooldown() {
        let r = responder();
        let first = incident("i1", "u-1");
        let second = incident("i2", "u-1");
        let other = incident("i3", "u-2");
        for i in [&first, &second, &other] {
            r.incidents.put_incident(i.clone());
        }
        r.handle(&event_from(TOPIC, &first)).await.unwrap();
        let s = r.handle(&event_from(TOPIC, &second)).await.unwrap();
        let a = &s.responses[0].actions[0];
        assert_eq!(a.decision, Some(Decision::Cooldown));
        assert!(a.detail.contains("cooldown"), "{}", a.detail);
        assert_eq!(s.decisions.get("cooldown"), Some(&1));
        let stored = r.store.record("i2").await.unwrap().unwrap();
        assert_eq!(stored.actions[0].decision, Some(Decision::Cooldown));
        // Another user is not held back; the cooldown cost no hourly slot.
        r.handle(&event_from(TOPIC, &other)).await.unwrap();
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 2);
        assert_eq!(r.store.per_rule.lock().unwrap()["suspected_compromise"], 2);
    }

    #[tokio::test]
    async fn the_hourly_cap_is_per_rule_and_a_capped_user_keeps_no_cooldown() {
        let mut r = responder();
        r.rails.max_per_hour = 1;
        let a1 = incident("a1", "u-1");
        let a2 = incident("a2", "u-2");
        let mut b1 = incident("b1", "u-3");
        b1.rule = "suspected_compromise_by_ip".into();
        for i in [&a1, &a2, &b1] {
            r.incidents.put_incident(i.clone());
        }
        r.handle(&event_from(TOPIC, &a1)).await.unwrap();
        let capped = r.handle(&event_from(TOPIC, &a2)).await.unwrap();
        let a = &capped.responses[0].actions[0];
        assert_eq!(a.decision, Some(Decision::HourlyCap));
        assert!(a.detail.contains("suspected_compromise"), "{}", a.detail);
        assert!(!r.store.cooldowns.lock().unwrap().contains_key("u-2"));
        // Rule A's cap used up does not stop rule B.
        let s = r.handle(&event_from(TOPIC, &b1)).await.unwrap();
        assert_eq!(s.responses[0].actions[0].decision, Some(Decision::Acted));
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 2);
    }

    fn blocklist_dry_run() -> Responder<AnyRevoker, MemStore, Team, MemoryAlertStore> {
        let revoker = BlocklistRevoker::new(
            None,
            monitoring_adapters::probes::tls::client_config(None).unwrap(),
            monitoring_adapters::blocklist_revoker::BlocklistSettings::default(),
        )
        .unwrap();
        responder_with(
            Guardrails::default(),
            AnyRevoker::Blocklist(Box::new(revoker)),
        )
    }

    #[tokio::test]
    async fn a_dry_run_records_the_exact_blocklist_row() {
        let r = blocklist_dry_run();
        let user = "7c0e4f2a-0000-4000-8000-00000000abcd";
        let s = r.handle(&event(&r, user)).await.unwrap();
        let record = &s.responses[0];
        assert_eq!(record.revoker, "blocklist");
        let action = &record.actions[0];
        assert_eq!(action.status, ActionStatus::DryRun);
        let row = action.blocklist_row.as_ref().unwrap();
        assert_eq!(row.user_id, user);
        assert_eq!(row.token_type, "all");
        assert_eq!(row.jti, format!("all_tokens_{user}_1796025600"));
        assert_eq!(row.reason, "security_incident:i1");
        assert!(action.detail.contains(&row.id), "{}", action.detail);
        assert!(action.detail.contains("nothing touched"));
        assert!(action.verification.is_none());
        assert_eq!(r.store.taken.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_pseudonym_or_a_name_is_refused_by_the_blocklist() {
        let r = blocklist_dry_run();
        let s = r.handle(&event(&r, "u-victim")).await.unwrap();
        let action = &s.responses[0].actions[0];
        assert_eq!(action.status, ActionStatus::Failed);
        assert!(action.detail.contains("UUID"), "{}", action.detail);
        assert!(action.blocklist_row.is_none());
    }
}
