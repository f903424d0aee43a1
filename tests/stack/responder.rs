//! security-responder against the local stack: the service's own
//! `blocklistedtoken` table in the local Postgres (scripts/seed.sql creates
//! it as BlindspotX defines it, and grants the responder's role
//! `blindspotx_responder` exactly INSERT and SELECT on it), the real
//! DynamoDB store in moto (claims, hourly counters, records), the security
//! team's topic in moto SNS read back through SQS, and a local receiver
//! standing in for a revoke endpoint.
//!
//! The responder connects as its own role (`BLOCKLIST_DATABASE_URL`; when
//! the stack does not export it, the stack's `DATABASE_URL` with that role
//! and the same local password). The tests read the table as the service
//! does, as the database owner (`DATABASE_URL`), with the service's check
//! of a token: `WHERE jti = $1 OR (user_id = $2 AND token_type = 'all')`.
//!
//! The issue's cases: enforce mode writes one row per user and incident and
//! a second delivery none (also when the record of the first is lost); a
//! token of that user is then rejected by the service's check, another
//! user's is not; dry run writes nothing and records the exact row; a key
//! that is not a user id writes nothing; a protected principal is
//! untouched; the per-hour cap holds; the responder's role can add rows and
//! read them, not lift or change them; a non-critical or non-security
//! incident never reaches the responder (the template's filter policy on a
//! moto SNS → SQS subscription). Beyond them: an ip-keyed incident notifies
//! only; the HTTP revoker calls the endpoint with the service credential.
//!
//! Issue 15's guard rails: every delivered incident is stored first (in the
//! fixture's table, as the alert engine stores it) and comes from the
//! configured topic; a forged record (another topic, an incident the table
//! does not hold, or holds with another key, episode or status) is refused,
//! counted and revokes nothing; a second incident against a user within the
//! cooldown is recorded as `cooldown`; one rule's hourly cap used up does
//! not hold back another rule; a rule off the list (`brute_force`) never
//! revokes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use monitoring_adapters::blocklist_revoker::{BlocklistRevoker, BlocklistSettings};
use monitoring_adapters::dynamodb_alerts::DynamoAlertStore;
use monitoring_adapters::dynamodb_response::DynamoResponseStore;
use monitoring_adapters::http_revoker::HttpRevoker;
use monitoring_adapters::probes::postgres::PostgresConnector;
use monitoring_adapters::probes::tls;
use monitoring_adapters::sns_publisher::SnsPublisher;
use monitoring_adapters::webhook_http::RetryPolicy;
use monitoring_config::Secret;
use monitoring_core::domain::alerts::{Category, Incident, Severity};
use monitoring_core::domain::security_response::revocation::ActionStatus;
use monitoring_core::domain::security_response::{BlocklistEntry, Decision, Guardrails, Mode};
use monitoring_core::memory::clock::ManualClock;
use monitoring_core::ports::ResponseStore;
use security_responder::{AnyRevoker, NoTopic, Responder, ResponderSummary};
use test_support::receiver::{
    INCIDENTS_TOPIC, Receiver, incident, incidents_event, sns_event, sns_event_from,
};
use test_support::sns::{drain_settled, topic_with_queue};
use test_support::stack::{create_table, fresh_user_id, sdk, store_incidents, var};
use time::macros::datetime;
use time::{OffsetDateTime, PrimitiveDateTime};

/// The template's filter policy of the responder's subscription.
const FILTER_POLICY: &str = r#"{"category":["security"],"severity":["critical"]}"#;
const DRAIN_PAUSE: Duration = Duration::from_millis(300);
const T0: OffsetDateTime = datetime!(2026-11-30 08:05 UTC);
/// The responder's role in the local stack.
const RESPONDER_ROLE: &str = "blindspotx_responder";
/// How the service asks whether a token is revoked: its `jti`, or any
/// token of its user (`uid` claim) after an all-tokens row.
const SERVICE_CHECK: &str = "SELECT id, jti, token_type, user_id, expires_at, reason, created_at \
     FROM blocklistedtoken WHERE jti = $1 OR (user_id = $2::text::uuid AND token_type = 'all')";

/// The responder's connection string: its own role.
fn blocklist_url() -> String {
    if let Ok(url) = std::env::var("BLOCKLIST_DATABASE_URL") {
        return url;
    }
    let url = var("DATABASE_URL");
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let password = userinfo.split_once(':').map(|(_, p)| p).unwrap_or_default();
    format!("{scheme}://{RESPONDER_ROLE}:{password}@{host}")
}

async fn connect(url: &str) -> tokio_postgres::Client {
    PostgresConnector::new(&Secret::new(url), tls::client_config(None).unwrap())
        .unwrap()
        .connect()
        .await
        .unwrap_or_else(|failed| panic!("cannot connect to the local Postgres: {failed:?}"))
}

/// The service's side of the table (the database owner).
struct Service {
    db: tokio_postgres::Client,
    /// Users whose rows the test removes at the end.
    users: Vec<String>,
}

impl Service {
    async fn new() -> Self {
        Service {
            db: connect(&var("DATABASE_URL")).await,
            users: Vec::new(),
        }
    }

    /// The rows the service's check finds for a token of `user` with `jti`.
    async fn check(&self, jti: &str, user: &str) -> Vec<tokio_postgres::Row> {
        self.db.query(SERVICE_CHECK, &[&jti, &user]).await.unwrap()
    }

    /// Whether the service rejects a fresh token (its own random `jti`) of `user`.
    async fn rejects_a_token_of(&self, user: &str) -> bool {
        !self
            .check(&format!("jti-{}", fresh_user_id()), user)
            .await
            .is_empty()
    }

    /// Every row of `user`, as stored.
    async fn rows_of(&self, user: &str) -> Vec<BlocklistEntry> {
        self.db
            .query(
                "SELECT id::text, jti, token_type, user_id::text, expires_at, reason, created_at \
                 FROM blocklistedtoken WHERE user_id = $1::text::uuid ORDER BY created_at, id",
                &[&user],
            )
            .await
            .unwrap()
            .into_iter()
            .map(|r| BlocklistEntry {
                id: r.get(0),
                jti: r.get(1),
                token_type: r.get(2),
                user_id: r.get(3),
                expires_at: r.get::<_, PrimitiveDateTime>(4).assume_utc(),
                reason: r.get(5),
                created_at: r.get::<_, PrimitiveDateTime>(6).assume_utc(),
            })
            .collect()
    }

    async fn cleanup(&self) {
        self.db
            .execute(
                "DELETE FROM blocklistedtoken WHERE user_id::text = ANY($1)",
                &[&self.users],
            )
            .await
            .unwrap();
    }
}

struct Fixture {
    sdk: SdkConfig,
    table: String,
    team_queue: String,
    team_topic: String,
    service: Service,
}

impl Fixture {
    async fn new() -> Self {
        let sdk = sdk().await;
        let table = create_table(&sdk).await;
        let (team_topic, team_queue) = topic_with_queue(&sdk, false, None).await;
        Fixture {
            sdk,
            table,
            team_queue,
            team_topic,
            service: Service::new().await,
        }
    }

    /// A user of this test (its rows are removed by `cleanup`).
    fn user(&mut self) -> String {
        let u = fresh_user_id();
        self.service.users.push(u.clone());
        u
    }

    fn revoker() -> AnyRevoker {
        AnyRevoker::Blocklist(Box::new(
            BlocklistRevoker::new(
                Some(&Secret::new(blocklist_url())),
                tls::client_config(None).unwrap(),
                BlocklistSettings::default(),
            )
            .unwrap(),
        ))
    }

    fn responder(
        &self,
        rails: Guardrails,
    ) -> Responder<AnyRevoker, DynamoResponseStore, SnsPublisher, DynamoAlertStore> {
        self.responder_on(rails, &self.table)
    }

    /// A responder whose record store is `table` (another table: the
    /// record of an earlier delivery is lost); it reads incidents from the
    /// fixture's table.
    fn responder_on(
        &self,
        rails: Guardrails,
        table: &str,
    ) -> Responder<AnyRevoker, DynamoResponseStore, SnsPublisher, DynamoAlertStore> {
        Responder {
            rails,
            revoker: Self::revoker(),
            store: DynamoResponseStore::new(&self.sdk, table),
            incidents: DynamoAlertStore::new(&self.sdk, &self.table),
            incidents_topic: INCIDENTS_TOPIC.into(),
            team: Some(SnsPublisher::new(&self.sdk, &self.team_topic)),
            team_target: self.team_topic.clone(),
            clock: Arc::new(ManualClock::new(T0)),
            lease: Duration::from_secs(30),
        }
    }

    /// Stores the incidents as the alert engine does, then delivers them
    /// from the incidents topic.
    async fn deliver(
        &self,
        r: &Responder<AnyRevoker, DynamoResponseStore, SnsPublisher, DynamoAlertStore>,
        incidents: &[&Incident],
    ) -> ResponderSummary {
        store_incidents(&self.sdk, &self.table, incidents).await;
        r.handle(&incidents_event(incidents)).await.unwrap()
    }

    async fn team_messages(&self) -> Vec<serde_json::Value> {
        drain_settled(&self.sdk, &self.team_queue, DRAIN_PAUSE)
            .await
            .into_iter()
            .map(|(body, _)| serde_json::from_str(&body).unwrap())
            .collect()
    }
}

fn enforce() -> Guardrails {
    Guardrails {
        mode: Mode::Enforce,
        ..Guardrails::default()
    }
}

/// A compromise incident (a rule the responder may revoke for) about `user`.
fn for_user(id: &str, user: &str) -> Incident {
    let mut i = incident(id);
    i.rule = "suspected_compromise".into();
    i.key = user.to_owned();
    i
}

#[tokio::test]
async fn dry_run_writes_nothing_and_records_the_exact_row() {
    let mut f = Fixture::new().await;
    let user = f.user();
    let r = f.responder(Guardrails::default());
    assert_eq!(r.rails.mode, Mode::DryRun);
    let i = for_user("0000000000000000000000000000d001", &user);
    let s = f.deliver(&r, &[&i]).await;
    assert!(f.service.rows_of(&user).await.is_empty());
    assert!(!f.service.rejects_a_token_of(&user).await);

    let record = &s.responses[0];
    assert_eq!(record.mode, Mode::DryRun);
    assert_eq!(record.revoker, "blocklist");
    let action = &record.actions[0];
    assert_eq!(action.status, ActionStatus::DryRun);
    assert_eq!(action.target, user);
    let expected =
        BlocklistEntry::for_incident(&i, &user, T0, BlocklistSettings::default().lifetime).unwrap();
    assert_eq!(action.blocklist_row.as_ref(), Some(&expected));
    assert!(action.detail.contains(&expected.jti), "{}", action.detail);
    assert!(action.verification.is_none());
    assert!(record.notified);
    let stored = r.store.record(&i.id).await.unwrap().unwrap();
    assert_eq!(&stored, record);
    let team = f.team_messages().await;
    assert_eq!(team.len(), 1);
    assert_eq!(team[0]["schema"], "blindspotx.security-response/v1");
    assert_eq!(team[0]["response"]["mode"], "dry_run");
    assert_eq!(
        team[0]["response"]["actions"][0]["blocklist_row"]["jti"],
        expected.jti.as_str()
    );
    assert_eq!(team[0]["incident"]["id"], i.id.as_str());

    // Enforce mode later writes exactly the row the dry run showed.
    let e = f.responder_on(enforce(), &create_table(&f.sdk).await);
    f.deliver(&e, &[&i]).await;
    assert_eq!(f.service.rows_of(&user).await, [expected]);
    f.service.cleanup().await;
}

#[tokio::test]
async fn enforce_writes_one_row_per_user_and_incident_and_the_service_rejects_the_users_tokens() {
    let mut f = Fixture::new().await;
    let (victim, other) = (f.user(), f.user());
    let r = f.responder(enforce());
    let i = for_user("0000000000000000000000000000e001", &victim);
    assert!(!f.service.rejects_a_token_of(&victim).await);
    let s = f.deliver(&r, &[&i]).await;

    let rows = f.service.rows_of(&victim).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row.token_type, "all");
    assert_eq!(row.user_id, victim);
    // The service's form: all_tokens_<user_id>_<unix time> (the incident's
    // first event, 2026-11-30T08:00:00Z).
    assert_eq!(row.jti, format!("all_tokens_{victim}_1796025600"));
    assert_eq!(row.reason, format!("security_incident:{}", i.id));
    assert_eq!(row.created_at, T0);
    assert_eq!(row.expires_at, datetime!(2027-11-30 08:05 UTC));

    // A token of the victim is rejected by the service's check, whatever
    // its jti; another user's is not.
    assert!(f.service.rejects_a_token_of(&victim).await);
    let matched = f.service.check("3f0c9a3e-any-token-jti", &victim).await;
    assert_eq!(matched.len(), 1);
    assert!(!f.service.rejects_a_token_of(&other).await);

    // The record keeps the row as read back and the service's check.
    let record = &s.responses[0];
    let action = &record.actions[0];
    assert_eq!(action.status, ActionStatus::Revoked);
    assert_eq!(action.blocklist_row.as_ref(), Some(row));
    let v = action.verification.as_ref().unwrap();
    assert!(v.inserted && v.tokens_rejected, "{v:?}");
    assert_eq!(v.matching_rows, 1);
    assert!(v.query.contains("token_type = 'all'"), "{}", v.query);
    assert!(
        action.detail.starts_with("inserted blocklistedtoken row"),
        "{}",
        action.detail
    );
    assert!(
        action
            .undo
            .as_deref()
            .unwrap()
            .contains(&format!("WHERE id = '{}'", row.id)),
        "{:?}",
        action.undo
    );
    assert_eq!(f.team_messages().await.len(), 1);

    // Redelivered: nothing is written twice, nobody is notified twice.
    let again = f.deliver(&r, &[&i]).await;
    assert_eq!(again.duplicates, 1);
    assert!(again.responses.is_empty());
    assert_eq!(f.service.rows_of(&victim).await.len(), 1);
    assert!(f.team_messages().await.is_empty());

    // Redelivered with the first record lost (another record table, a
    // later clock): the row's id is the incident's, so the insert adds
    // nothing and the record shows the row already there.
    let mut lost = f.responder_on(enforce(), &create_table(&f.sdk).await);
    lost.clock = Arc::new(ManualClock::new(T0 + Duration::from_secs(600)));
    let s = f.deliver(&lost, &[&i]).await;
    assert_eq!(f.service.rows_of(&victim).await, rows);
    let action = &s.responses[0].actions[0];
    assert_eq!(action.status, ActionStatus::Revoked);
    assert_eq!(action.blocklist_row.as_ref(), Some(row));
    let v = action.verification.as_ref().unwrap();
    assert!(!v.inserted && v.tokens_rejected, "{v:?}");
    assert!(
        action.detail.starts_with("found (written before"),
        "{}",
        action.detail
    );

    // Another incident against the same user within the cooldown (24 h by
    // default) writes nothing: recorded as `cooldown`, counted, and the
    // team hears of it.
    let second = for_user("0000000000000000000000000000e002", &victim);
    let s = f.deliver(&r, &[&second]).await;
    let action = &s.responses[0].actions[0];
    assert_eq!(action.status, ActionStatus::Skipped);
    assert_eq!(action.decision, Some(Decision::Cooldown));
    assert!(
        action.detail.starts_with("kept: cooldown"),
        "{}",
        action.detail
    );
    assert_eq!(s.decisions.get("cooldown"), Some(&1));
    assert_eq!(
        r.store.record(&second.id).await.unwrap().unwrap().actions[0].decision,
        Some(Decision::Cooldown)
    );
    assert_eq!(f.service.rows_of(&victim).await.len(), 1);
    let team = f.team_messages().await;
    assert!(
        team.iter()
            .any(|m| m["incident"]["id"] == second.id.as_str()
                && m["response"]["actions"][0]["decision"] == "cooldown"),
        "{team:?}"
    );

    // After the cooldown, another incident against the same user is
    // another row.
    let third = for_user("0000000000000000000000000000e003", &victim);
    let mut later = f.responder(enforce());
    later.clock = Arc::new(ManualClock::new(T0 + Duration::from_secs(24 * 3600 + 1)));
    let s = f.deliver(&later, &[&third]).await;
    assert_eq!(s.responses[0].actions[0].decision, Some(Decision::Acted));
    let rows = f.service.rows_of(&victim).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows.iter()
            .map(|r| r.reason.as_str())
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([
            format!("security_incident:{}", i.id).as_str(),
            format!("security_incident:{}", third.id).as_str()
        ])
    );
    f.service.cleanup().await;
}

#[tokio::test]
async fn a_key_that_is_not_a_user_id_writes_nothing() {
    let f = Fixture::new().await;
    let r = f.responder(enforce());
    let before: i64 = f
        .service
        .db
        .query_one("SELECT count(*) FROM blocklistedtoken", &[])
        .await
        .unwrap()
        .get(0);
    let i = for_user("0000000000000000000000000000n001", "u-victim");
    let s = f.deliver(&r, &[&i]).await;
    let action = &s.responses[0].actions[0];
    assert_eq!(action.status, ActionStatus::Failed);
    assert!(action.detail.contains("UUID"), "{}", action.detail);
    assert!(action.blocklist_row.is_none());
    let after: i64 = f
        .service
        .db
        .query_one(
            "SELECT count(*) FROM blocklistedtoken WHERE reason = $1",
            &[&format!("security_incident:{}", i.id)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, 0, "before: {before}");
}

#[tokio::test]
async fn a_protected_principal_is_untouched() {
    let mut f = Fixture::new().await;
    let admin = f.user();
    let r = f.responder(Guardrails {
        protected: BTreeSet::from([admin.to_uppercase()]),
        ..enforce()
    });
    let i = for_user("0000000000000000000000000000p001", &admin);
    let s = f.deliver(&r, &[&i]).await;
    assert!(f.service.rows_of(&admin).await.is_empty());
    let action = &s.responses[0].actions[0];
    assert_eq!(action.status, ActionStatus::Skipped);
    assert_eq!(action.detail, "kept: protected");
    assert_eq!(action.decision, Some(Decision::Protected));
    assert_eq!(s.decisions.get("protected"), Some(&1));
    assert!(!f.service.rejects_a_token_of(&admin).await);
}

#[tokio::test]
async fn the_per_hour_cap_holds() {
    let mut f = Fixture::new().await;
    let users: Vec<String> = (0..4).map(|_| f.user()).collect();
    let r = f.responder(Guardrails {
        max_per_hour: 2,
        ..enforce()
    });
    let incidents: Vec<Incident> = users[..3]
        .iter()
        .enumerate()
        .map(|(n, u)| for_user(&format!("0000000000000000000000000000h{n:03}"), u))
        .collect();
    let refs: Vec<&Incident> = incidents.iter().collect();
    let s = f.deliver(&r, &refs).await;
    let statuses: Vec<ActionStatus> = s
        .responses
        .iter()
        .map(|rec| rec.actions[0].status.clone())
        .collect();
    assert_eq!(
        statuses,
        [
            ActionStatus::Revoked,
            ActionStatus::Revoked,
            ActionStatus::Skipped
        ]
    );
    assert!(s.responses[2].actions[0].detail.contains("hourly_cap"));
    assert_eq!(f.service.rows_of(&users[0]).await.len(), 1);
    assert_eq!(f.service.rows_of(&users[1]).await.len(), 1);
    assert!(f.service.rows_of(&users[2]).await.is_empty());

    // Another invocation in the same hour is capped too.
    let r2 = f.responder(Guardrails {
        max_per_hour: 2,
        ..enforce()
    });
    let late = for_user("0000000000000000000000000000h100", &users[3]);
    let s = f.deliver(&r2, &[&late]).await;
    assert_eq!(s.responses[0].actions[0].status, ActionStatus::Skipped);
    assert_eq!(
        s.responses[0].actions[0].decision,
        Some(Decision::HourlyCap)
    );
    assert_eq!(s.decisions.get("hourly_cap"), Some(&1));
    assert!(f.service.rows_of(&users[3]).await.is_empty());

    // The cap is counted per rule: suspected_compromise's cap used up does
    // not stop the other rule, and the user its cap kept (users[2]) holds
    // no cooldown, since nothing was revoked.
    let mut by_ip = for_user("0000000000000000000000000000h200", &users[2]);
    by_ip.rule = "suspected_compromise_by_ip".into();
    let s = f.deliver(&r2, &[&by_ip]).await;
    assert_eq!(s.responses[0].actions[0].decision, Some(Decision::Acted));
    assert_eq!(f.service.rows_of(&users[2]).await.len(), 1);
    f.service.cleanup().await;
}

#[tokio::test]
async fn forged_records_are_refused_counted_and_revoke_nothing() {
    let mut f = Fixture::new().await;
    let victim = f.user();
    let r = f.responder(enforce());
    let real = for_user("0000000000000000000000000000z001", &victim);
    store_incidents(&f.sdk, &f.table, &[&real]).await;
    let message = |i: &Incident| {
        let m = i.to_message();
        (m.body, m.attributes)
    };
    // Another topic, with the real incident.
    let forged_topic = "arn:aws:sns:us-east-1:123456789012:attacker";
    let mut cases = vec![(
        "wrong_topic",
        sns_event_from(forged_topic, &[message(&real)]),
    )];
    // An incident the table does not hold, against the victim.
    let unknown = for_user("0000000000000000000000000000z404", &victim);
    cases.push(("unknown_incident", incidents_event(&[&unknown])));
    // The real incident's id with another user, another episode, or as
    // still firing once the table has it resolved (below).
    let mut other_key = real.clone();
    other_key.key = f.user();
    cases.push(("mismatch:key", incidents_event(&[&other_key])));
    let mut other_episode = real.clone();
    other_episode.episode = 7;
    cases.push(("mismatch:episode", incidents_event(&[&other_episode])));
    for (reason, event) in &cases {
        let s = r.handle(event).await.unwrap();
        assert_eq!(s.rejected.get(reason), Some(&1), "{reason}: {s:?}");
        assert!(s.responses.is_empty(), "{reason}");
    }
    let mut resolved = real.clone();
    resolved.status = monitoring_core::domain::alerts::TransitionKind::Resolved;
    store_incidents(&f.sdk, &f.table, &[&resolved]).await;
    let s = r.handle(&incidents_event(&[&real])).await.unwrap();
    assert_eq!(s.rejected.get("mismatch:status"), Some(&1), "{s:?}");

    // Nothing revoked, nothing recorded for the real incident (a forged
    // message cannot pre-empt its response), nobody notified.
    assert!(f.service.rows_of(&victim).await.is_empty());
    assert!(!f.service.rejects_a_token_of(&victim).await);
    assert!(r.store.record(&real.id).await.unwrap().is_none());
    assert!(f.team_messages().await.is_empty());

    // The real, open incident is then answered in full.
    store_incidents(&f.sdk, &f.table, &[&real]).await;
    let s = r.handle(&incidents_event(&[&real])).await.unwrap();
    assert_eq!(s.decisions.get("acted"), Some(&1), "{s:?}");
    assert_eq!(f.service.rows_of(&victim).await.len(), 1);
    f.service.cleanup().await;
}

#[tokio::test]
async fn the_responders_role_adds_and_reads_rows_and_can_do_nothing_else() {
    let mut f = Fixture::new().await;
    let user = f.user();
    let r = f.responder(enforce());
    let i = for_user("0000000000000000000000000000g001", &user);
    let s = f.deliver(&r, &[&i]).await;
    assert_eq!(s.responses[0].actions[0].status, ActionStatus::Revoked);

    let role = connect(&blocklist_url()).await;
    let who: String = role
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        who, RESPONDER_ROLE,
        "the responder must not connect as the owner"
    );
    for denied in [
        format!("DELETE FROM blocklistedtoken WHERE user_id = '{user}'"),
        format!("UPDATE blocklistedtoken SET expires_at = now() WHERE user_id = '{user}'"),
        "TRUNCATE blocklistedtoken".to_owned(),
        "SELECT count(*) FROM users".to_owned(),
        "CREATE TABLE responder_was_here (id int)".to_owned(),
    ] {
        let err = role.batch_execute(&denied).await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{denied}: {err}"
        );
    }
    let privileges: Vec<String> = f
        .service
        .db
        .query(
            "SELECT privilege_type::text FROM information_schema.role_table_grants \
             WHERE grantee = $1 ORDER BY 1",
            &[&RESPONDER_ROLE],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    assert_eq!(privileges, ["INSERT", "SELECT"]);
    assert_eq!(f.service.rows_of(&user).await.len(), 1);
    f.service.cleanup().await;
}

#[tokio::test]
async fn a_write_the_database_refuses_is_a_failed_action_for_a_human() {
    // The responder's role on a database without the service's table
    // (`postgres`, which every role may connect to): SQLSTATE 42P01.
    let mut f = Fixture::new().await;
    let user = f.user();
    let url = blocklist_url();
    let (base, _) = url.rsplit_once('/').unwrap();
    let mut r = f.responder(enforce());
    r.revoker = AnyRevoker::Blocklist(Box::new(
        BlocklistRevoker::new(
            Some(&Secret::new(format!("{base}/postgres"))),
            tls::client_config(None).unwrap(),
            BlocklistSettings::default(),
        )
        .unwrap(),
    ));
    let i = for_user("0000000000000000000000000000r001", &user);
    let s = f.deliver(&r, &[&i]).await;
    let action = &s.responses[0].actions[0];
    assert_eq!(action.status, ActionStatus::Failed);
    assert!(
        action.detail.contains("SQLSTATE 42P01"),
        "{}",
        action.detail
    );
    assert!(action.verification.is_none());
    // The row it meant to write is in the record, for whoever writes it by hand.
    assert_eq!(action.blocklist_row.as_ref().unwrap().user_id, user);
    assert!(!format!("{:?}", s.responses[0]).contains(url.split_once('@').unwrap().0));
    assert!(f.service.rows_of(&user).await.is_empty());
    assert_eq!(f.team_messages().await.len(), 1, "the team hears of it");
}

#[tokio::test]
async fn an_ip_keyed_incident_notifies_only() {
    let f = Fixture::new().await;
    let r = f.responder(enforce());
    let mut i = incident("0000000000000000000000000000i001");
    i.rule = "suspected_compromise_by_ip".into();
    i.key_name = Some("ip".into());
    i.key = "ip:0123456789ab".into();
    let s = f.deliver(&r, &[&i]).await;
    let record = &s.responses[0];
    assert!(record.revoked().next().is_none());
    assert!(record.actions.iter().all(|a| a.blocklist_row.is_none()));
    assert!(
        record.notes[0].contains("no user to revoke"),
        "{:?}",
        record.notes
    );
    assert_eq!(record.decision, Some(Decision::NotifyOnly));
    assert_eq!(f.team_messages().await.len(), 1);
}

#[tokio::test]
async fn only_critical_security_incidents_reach_the_responder() {
    let sdk = sdk().await;
    let (topic, responder_queue) = topic_with_queue(&sdk, false, Some(FILTER_POLICY)).await;
    let publisher = SnsPublisher::new(&sdk, &topic);
    let brute = incident("0000000000000000000000000000f001");
    let mut high_security = incident("0000000000000000000000000000f002");
    high_security.rule = "auth_failures".into();
    high_security.severity = Severity::High;
    let mut critical_system = incident("0000000000000000000000000000f003");
    critical_system.rule = "component_down".into();
    critical_system.category = Category::System;
    let mut medium_perf = incident("0000000000000000000000000000f004");
    medium_perf.category = Category::Performance;
    medium_perf.severity = Severity::Medium;
    for i in [&brute, &high_security, &critical_system, &medium_perf] {
        monitoring_core::ports::IncidentPublisher::publish(&publisher, &i.to_message())
            .await
            .unwrap();
    }
    let delivered = drain_settled(&sdk, &responder_queue, DRAIN_PAUSE).await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].1["rule"], "brute_force");

    // What the subscription delivers is what the responder acts on.
    let f = Fixture::new().await;
    let r = f.responder(Guardrails::default());
    store_incidents(&f.sdk, &f.table, &[&brute]).await;
    let s = r.handle(&sns_event(&delivered)).await.unwrap();
    assert_eq!(s.responses.len(), 1);
    assert_eq!(s.responses[0].incident_id, brute.id);
    // brute_force (failures only: anyone who knows a user name can cause
    // it) is not a rule the responder may revoke for.
    assert_eq!(s.responses[0].decision, Some(Decision::NotAllowedRule));
    // And the handler's own check keeps the others away anyway.
    let s = r
        .handle(&incidents_event(&[&high_security, &critical_system]))
        .await
        .unwrap();
    assert_eq!((s.ignored, s.responses.len()), (2, 0));
}

#[tokio::test]
async fn the_http_revoker_calls_the_endpoint_with_the_service_credential() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let receiver = Receiver::start().await;
    receiver.script("/revoke", &[503]);
    let revoker = HttpRevoker::new(
        &receiver.url("/revoke"),
        Secret::new("svc-credential-0123456789"),
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(20),
            timeout: Duration::from_secs(2),
        },
    )
    .unwrap();
    let r: Responder<_, _, NoTopic, _> = Responder {
        rails: enforce(),
        revoker: AnyRevoker::Http(revoker),
        store: DynamoResponseStore::new(&sdk, &table),
        incidents: DynamoAlertStore::new(&sdk, &table),
        incidents_topic: INCIDENTS_TOPIC.into(),
        team: None,
        team_target: String::new(),
        clock: Arc::new(ManualClock::new(T0)),
        lease: Duration::from_secs(30),
    };
    let i = for_user("0000000000000000000000000000x001", "u-victim");
    store_incidents(&sdk, &table, &[&i]).await;
    let s = r.handle(&incidents_event(&[&i])).await.unwrap();
    assert_eq!(s.responses[0].actions[0].status, ActionStatus::Revoked);
    let calls = receiver.requests_to("/revoke");
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        [503, 200]
    );
    assert_eq!(
        calls[1].header("authorization"),
        "Bearer svc-credential-0123456789"
    );
    assert_eq!(calls[1].json()["user_id"], "u-victim");
    assert_eq!(calls[1].json()["incident_id"], i.id.as_str());
    let stored = r.store.record(&i.id).await.unwrap().unwrap();
    assert!(!format!("{stored:?}").contains("svc-credential"));
}
