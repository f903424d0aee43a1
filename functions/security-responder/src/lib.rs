//! The guide's `handle_security_alert` for critical security incidents (the
//! subscription's filter policy lets only `category=security`,
//! `severity=critical` through; the handler checks again):
//!
//! 1. one response per incident: a record already stored means a
//!    redelivery (only a notification that failed is sent again); otherwise
//!    the incident is claimed with a conditional write (a concurrent
//!    delivery backs off and retries later);
//! 2. the guard rails decide who may be revoked
//!    (`domain::response::revocation`): dry-run, user-keyed incidents only,
//!    protected principals, per-incident cap; then each revocation takes a
//!    slot of the hour's cap in the table;
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
use serde::Serialize;
use shared::adapters::blocklist_revoker::BlocklistRevoker;
use shared::adapters::http_revoker::HttpRevoker;
use shared::domain::alerts::{Category, Incident, Severity};
use shared::domain::response::revocation::{ActionStatus, ResponseAction};
use shared::domain::response::{
    BlocklistEntry, Guardrails, Mode, ResponseRecord, Verification, accept_incident, plan,
};
use shared::domain::timefmt::rfc3339_millis;
use shared::ports::{
    Clock, IncidentPublisher, OutgoingMessage, PublishError, ResponseStore, RevokeError, Revoker,
    StoreError,
};
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
    /// Rejected messages by reason.
    pub rejected: BTreeMap<&'static str, usize>,
    /// Incidents that are not critical security ones (the filter policy
    /// should have kept them away).
    pub ignored: usize,
    /// Incidents already handled (redeliveries).
    pub duplicates: usize,
    pub responses: Vec<ResponseRecord>,
}

/// The responder, built once per cold start.
pub struct Responder<R, S, P> {
    pub rails: Guardrails,
    pub revoker: R,
    pub store: S,
    /// The security team's topic (`None`: the record and the audit log only).
    pub team: Option<P>,
    /// Name of the notification target, for the record.
    pub team_target: String,
    pub clock: Arc<dyn Clock>,
    /// How long a claim holds before a retry may take it over; longer than
    /// the function's timeout.
    pub lease: Duration,
}

impl<R: IncidentRevoker, S: ResponseStore, P: IncidentPublisher> Responder<R, S, P> {
    pub async fn handle(&self, event: &SnsEvent) -> Result<ResponderSummary, ResponderError> {
        let mut summary = ResponderSummary {
            records: event.records.len(),
            ..ResponderSummary::default()
        };
        for record in &event.records {
            let Some(incident) = accept_incident(
                &record.sns.message,
                &record.sns.message_id,
                &mut summary.rejected,
            ) else {
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
            match self.respond(&incident).await? {
                Some(r) => summary.responses.push(r),
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
        let decision = plan(incident, &self.rails);
        let mut record = ResponseRecord::new(
            incident,
            self.rails.mode,
            self.revoker.name(),
            rfc3339_millis(now),
        );
        record.notes.extend(decision.notes.iter().cloned());
        record.add_skips(&decision.skipped);
        for user in &decision.revoke {
            record.actions.push(self.revoke(incident, user, now).await?);
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
        let action = |status, detail: String, undo: Option<String>| {
            ResponseAction::new("revoke_user", user, status, detail, undo)
        };
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
            );
            a.blocklist_row = prepared.row;
            return Ok(a);
        }
        if !self
            .store
            .take_hourly_slot(now, self.rails.max_per_hour)
            .await?
        {
            tracing::warn!(
                incident = %incident.id,
                user,
                max_per_hour = self.rails.max_per_hour,
                "hourly revocation cap reached; not revoked"
            );
            return Ok(action(
                ActionStatus::Skipped,
                format!(
                    "kept: hourly_cap ({} revocations per hour)",
                    self.rails.max_per_hour
                ),
                None,
            ));
        }
        match self.revoker.revoke(incident, &prepared).await {
            Ok(done) => {
                let mut a = action(ActionStatus::Revoked, done.detail, Some(done.undo));
                a.blocklist_row = done.row;
                a.verification = done.verification;
                Ok(a)
            }
            Err(RevokeError::Refused(reason)) => {
                let mut a = action(
                    ActionStatus::Failed,
                    format!("revoker refused: {reason}"),
                    None,
                );
                a.blocklist_row = prepared.row;
                Ok(a)
            }
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
            "summary": shared::domain::response::payloads::summary_line(incident),
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

    use shared::domain::alerts::{INCIDENT_SCHEMA, TransitionKind};
    use shared::ports::SystemClock;

    use super::*;

    #[derive(Default)]
    struct MemStore {
        records: Mutex<BTreeMap<String, ResponseRecord>>,
        claims: Mutex<Vec<String>>,
        taken: AtomicUsize,
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
            _: time::OffsetDateTime,
            cap: u32,
        ) -> Result<bool, StoreError> {
            Ok(self.taken.fetch_add(1, Ordering::SeqCst) < cap as usize)
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

    fn event(key: &str) -> SnsEvent {
        let incident = serde_json::json!({
            "schema": INCIDENT_SCHEMA, "id": "i1", "episode": 1, "transition_id": "i1:firing",
            "status": TransitionKind::Firing, "rule": "brute_force", "category": "security",
            "severity": "critical", "key_name": "user", "key": key, "count": 10, "threshold": 10,
            "window_seconds": 120, "first_event_at": "2026-11-30T08:00:00.000Z",
            "last_event_at": "2026-11-30T08:01:48.000Z",
            "transition_at": "2026-11-30T08:01:48.000Z", "samples": [], "dashboard_url": "d",
            "runbook_url": "r"
        });
        serde_json::from_value(serde_json::json!({"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "a",
            "Sns": {"Type": "Notification", "MessageId": "m", "TopicArn": "t",
                "Timestamp": "2026-11-30T08:00:00Z", "SignatureVersion": "1", "Signature": "s",
                "SigningCertUrl": "u", "UnsubscribeUrl": "u", "Message": incident.to_string()}
        }]}))
        .unwrap()
    }

    fn responder() -> Responder<CountingRevoker, MemStore, Team> {
        Responder {
            rails: Guardrails {
                mode: Mode::Enforce,
                ..Guardrails::default()
            },
            revoker: CountingRevoker(AtomicUsize::new(0)),
            store: MemStore::default(),
            team: Some(Team::default()),
            team_target: "topic".into(),
            clock: Arc::new(SystemClock),
            lease: Duration::from_secs(45),
        }
    }

    #[tokio::test]
    async fn a_failed_notification_is_sent_again_without_revoking_again() {
        let r = responder();
        r.team.as_ref().unwrap().down.store(true, Ordering::SeqCst);
        assert!(matches!(
            r.handle(&event("u-1")).await,
            Err(ResponderError::Notify(_))
        ));
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 1);
        let stored = r.store.record("i1").await.unwrap().unwrap();
        assert!(!stored.notified);
        r.team.as_ref().unwrap().down.store(false, Ordering::SeqCst);
        let s = r.handle(&event("u-1")).await.unwrap();
        assert_eq!(s.duplicates, 1);
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 1, "revoked once");
        assert_eq!(r.team.as_ref().unwrap().sent.load(Ordering::SeqCst), 1);
        assert!(r.store.record("i1").await.unwrap().unwrap().notified);
        // A third delivery does nothing at all.
        r.handle(&event("u-1")).await.unwrap();
        assert_eq!(r.team.as_ref().unwrap().sent.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_claim_held_elsewhere_fails_for_a_later_retry() {
        let r = responder();
        r.store.claims.lock().unwrap().push("i1".into());
        assert!(matches!(
            r.handle(&event("u-1")).await,
            Err(ResponderError::Busy(_))
        ));
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn no_user_means_no_revocation() {
        let r = responder();
        let s = r.handle(&event("unknown")).await.unwrap();
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 0);
        assert!(s.responses[0].notes[0].contains("no user to revoke"));
    }

    #[tokio::test]
    async fn a_user_the_revoker_cannot_revoke_costs_no_hourly_slot() {
        let r = responder();
        let s = r.handle(&event("not-a-user")).await.unwrap();
        let action = &s.responses[0].actions[0];
        assert_eq!(action.status, ActionStatus::Failed);
        assert!(action.detail.contains("not a user id"), "{}", action.detail);
        assert_eq!(r.store.taken.load(Ordering::SeqCst), 0);
        assert_eq!(r.revoker.0.load(Ordering::SeqCst), 0);
    }

    fn blocklist_dry_run() -> Responder<AnyRevoker, MemStore, Team> {
        let revoker = BlocklistRevoker::new(
            None,
            shared::probes::tls::client_config(None).unwrap(),
            shared::adapters::blocklist_revoker::BlocklistSettings::default(),
        )
        .unwrap();
        Responder {
            rails: Guardrails::default(),
            revoker: AnyRevoker::Blocklist(Box::new(revoker)),
            store: MemStore::default(),
            team: Some(Team::default()),
            team_target: "topic".into(),
            clock: Arc::new(SystemClock),
            lease: Duration::from_secs(45),
        }
    }

    #[tokio::test]
    async fn a_dry_run_records_the_exact_blocklist_row() {
        let r = blocklist_dry_run();
        let user = "7c0e4f2a-0000-4000-8000-00000000abcd";
        let s = r.handle(&event(user)).await.unwrap();
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
        let s = r.handle(&event("u-victim")).await.unwrap();
        let action = &s.responses[0].actions[0];
        assert_eq!(action.status, ActionStatus::Failed);
        assert!(action.detail.contains("UUID"), "{}", action.detail);
        assert!(action.blocklist_row.is_none());
    }
}
