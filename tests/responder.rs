//! security-responder against the local stack: a real Redis the test owns
//! (refresh tokens under `refresh_token:<user>`), the real DynamoDB store
//! in moto (claims, hourly counters, records), the security team's topic in
//! moto SNS read back through SQS, and a local receiver standing in for the
//! auth service's revoke endpoint.
//!
//! The issue's cases: dry-run touches nothing in Redis; enforce removes
//! exactly the affected user's token keys and writes the deny-list entry;
//! a protected principal is untouched; the per-hour cap holds; a
//! redelivered message revokes nothing twice; a non-critical or
//! non-security incident never reaches the responder (the template's filter
//! policy on a moto SNS → SQS subscription). Beyond them: an ip-keyed
//! incident notifies only; the HTTP revoker calls the endpoint with the
//! service credential.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use redis::AsyncCommands;
use security_responder::{AnyRevoker, NoTopic, Responder};
use shared::adapters::dynamodb_response::DynamoResponseStore;
use shared::adapters::http_revoker::HttpRevoker;
use shared::adapters::redis_revoker::{RedisRevoker, RedisRevokerSettings};
use shared::adapters::sns_publisher::SnsPublisher;
use shared::adapters::webhook_http::RetryPolicy;
use shared::config::Secret;
use shared::domain::alerts::{Category, Incident, Severity};
use shared::domain::response::revocation::ActionStatus;
use shared::domain::response::{Guardrails, Mode};
use shared::ports::{Clock, ResponseStore};
use support::receiver::{Receiver, incident, incidents_event, sns_event};
use support::servers::RedisServer;
use support::sns::{drain_settled, topic_with_queue};
use support::stack::{create_table, sdk};
use time::OffsetDateTime;
use time::macros::datetime;

/// The template's filter policy of the responder's subscription.
const FILTER_POLICY: &str = r#"{"category":["security"],"severity":["critical"]}"#;
const DRAIN_PAUSE: Duration = Duration::from_millis(300);
const T0: OffsetDateTime = datetime!(2026-11-30 08:05 UTC);

struct TestClock(OffsetDateTime);

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

struct Fixture {
    sdk: SdkConfig,
    redis: RedisServer,
    table: String,
    team_queue: String,
    team_topic: String,
}

impl Fixture {
    async fn new() -> Self {
        let sdk = sdk().await;
        let table = create_table(&sdk).await;
        let (team_topic, team_queue) = topic_with_queue(&sdk, false, None).await;
        let redis = RedisServer::start().await;
        let f = Fixture {
            sdk,
            redis,
            table,
            team_queue,
            team_topic,
        };
        let mut c = f.conn().await;
        for (k, v) in [
            ("refresh_token:u-victim", "rt-victim"),
            ("refresh_token:u-victim:s1", "rt-victim-s1"),
            ("refresh_token:u-victim2", "rt-victim2"),
            ("refresh_token:u-other", "rt-other"),
            ("refresh_token:u-admin", "rt-admin"),
            ("refresh_token:u-a", "rt-a"),
            ("refresh_token:u-b", "rt-b"),
            ("refresh_token:u-c", "rt-c"),
            ("session:u-victim", "s"),
        ] {
            let _: () = c.set(k, v).await.unwrap();
        }
        f
    }

    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Every key and value in Redis.
    async fn snapshot(&self) -> BTreeMap<String, String> {
        let mut c = self.conn().await;
        let keys: Vec<String> = c.keys("*").await.unwrap();
        let mut out = BTreeMap::new();
        for k in keys {
            let v: String = c.get(&k).await.unwrap();
            out.insert(k, v);
        }
        out
    }

    fn responder(
        &self,
        rails: Guardrails,
    ) -> Responder<AnyRevoker, DynamoResponseStore, SnsPublisher> {
        let revoker = RedisRevoker::new(
            &Secret::new(self.redis.url()),
            RedisRevokerSettings {
                deny_ttl: Duration::from_secs(3600),
                ..RedisRevokerSettings::default()
            },
        )
        .unwrap();
        Responder {
            rails,
            revoker: AnyRevoker::Redis(revoker),
            store: DynamoResponseStore::new(&self.sdk, &self.table),
            team: Some(SnsPublisher::new(&self.sdk, &self.team_topic)),
            team_target: self.team_topic.clone(),
            clock: Arc::new(TestClock(T0)),
            lease: Duration::from_secs(30),
        }
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

fn for_user(id: &str, user: &str) -> Incident {
    let mut i = incident(id);
    i.key = user.to_owned();
    i
}

#[tokio::test]
async fn dry_run_touches_nothing_in_redis_and_records_what_it_would_do() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let r = f.responder(Guardrails::default());
    assert_eq!(r.rails.mode, Mode::DryRun);
    let i = for_user("0000000000000000000000000000d001", "u-victim");
    let s = r.handle(&incidents_event(&[&i])).await.unwrap();
    assert_eq!(f.snapshot().await, before);
    let record = &s.responses[0];
    assert_eq!(record.mode, Mode::DryRun);
    assert_eq!(record.actions[0].status, ActionStatus::DryRun);
    assert_eq!(record.actions[0].target, "u-victim");
    assert!(record.notified);
    let stored = r.store.record(&i.id).await.unwrap().unwrap();
    assert_eq!(&stored, record);
    let team = f.team_messages().await;
    assert_eq!(team.len(), 1);
    assert_eq!(team[0]["schema"], "blindspotx.security-response/v1");
    assert_eq!(team[0]["response"]["mode"], "dry_run");
    assert_eq!(team[0]["incident"]["id"], i.id.as_str());
}

#[tokio::test]
async fn enforce_removes_exactly_the_affected_users_tokens_once() {
    let f = Fixture::new().await;
    let r = f.responder(enforce());
    let i = for_user("0000000000000000000000000000e001", "u-victim");
    let s = r.handle(&incidents_event(&[&i])).await.unwrap();
    let after = f.snapshot().await;
    assert!(!after.contains_key("refresh_token:u-victim"));
    assert!(!after.contains_key("refresh_token:u-victim:s1"));
    for kept in [
        "refresh_token:u-victim2",
        "refresh_token:u-other",
        "refresh_token:u-admin",
        "session:u-victim",
    ] {
        assert!(after.contains_key(kept), "{kept} was touched");
    }
    let deny: serde_json::Value = serde_json::from_str(&after["revoked:user:u-victim"]).unwrap();
    assert_eq!(deny["incident_id"], i.id.as_str());
    let ttl: i64 = f.conn().await.ttl("revoked:user:u-victim").await.unwrap();
    assert!(ttl > 3500 && ttl <= 3600, "{ttl}");
    let revoked: BTreeSet<String> = after
        .keys()
        .filter(|k| k.starts_with("revoked:"))
        .cloned()
        .collect();
    assert_eq!(
        revoked,
        BTreeSet::from(["revoked:user:u-victim".to_owned()])
    );

    let record = &s.responses[0];
    let action = &record.actions[0];
    assert_eq!(action.status, ActionStatus::Revoked);
    assert!(
        action.detail.contains("deleted 2 refresh-token key(s)"),
        "{}",
        action.detail
    );
    assert!(
        action
            .undo
            .as_deref()
            .unwrap()
            .contains("DEL revoked:user:u-victim")
    );
    assert_eq!(f.team_messages().await.len(), 1);

    // Redelivered (the user signed in again meanwhile): nothing is revoked
    // twice, nobody is notified twice.
    let _: () = f
        .conn()
        .await
        .set("refresh_token:u-victim", "rt-new")
        .await
        .unwrap();
    let again = r.handle(&incidents_event(&[&i])).await.unwrap();
    assert_eq!(again.duplicates, 1);
    assert!(again.responses.is_empty());
    assert_eq!(f.snapshot().await["refresh_token:u-victim"], "rt-new");
    assert!(f.team_messages().await.is_empty());
}

#[tokio::test]
async fn a_protected_principal_is_untouched() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let r = f.responder(Guardrails {
        protected: BTreeSet::from(["u-admin".to_owned()]),
        ..enforce()
    });
    let i = for_user("0000000000000000000000000000p001", "u-admin");
    let s = r.handle(&incidents_event(&[&i])).await.unwrap();
    assert_eq!(f.snapshot().await, before);
    let action = &s.responses[0].actions[0];
    assert_eq!(action.status, ActionStatus::Skipped);
    assert_eq!(action.detail, "kept: protected");
}

#[tokio::test]
async fn the_per_hour_cap_holds() {
    let f = Fixture::new().await;
    let r = f.responder(Guardrails {
        max_per_hour: 2,
        ..enforce()
    });
    let incidents: Vec<Incident> = ["u-a", "u-b", "u-c"]
        .iter()
        .enumerate()
        .map(|(n, u)| for_user(&format!("0000000000000000000000000000h{n:03}"), u))
        .collect();
    let refs: Vec<&Incident> = incidents.iter().collect();
    let s = r.handle(&incidents_event(&refs)).await.unwrap();
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
    let after = f.snapshot().await;
    assert!(!after.contains_key("refresh_token:u-a"));
    assert!(!after.contains_key("refresh_token:u-b"));
    assert_eq!(after["refresh_token:u-c"], "rt-c");
    assert!(!after.contains_key("revoked:user:u-c"));

    // Another invocation in the same hour is capped too.
    let r2 = f.responder(Guardrails {
        max_per_hour: 2,
        ..enforce()
    });
    let late = for_user("0000000000000000000000000000h100", "u-other");
    let s = r2.handle(&incidents_event(&[&late])).await.unwrap();
    assert_eq!(s.responses[0].actions[0].status, ActionStatus::Skipped);
    assert_eq!(f.snapshot().await["refresh_token:u-other"], "rt-other");
}

#[tokio::test]
async fn an_ip_keyed_incident_notifies_only() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let r = f.responder(enforce());
    let mut i = incident("0000000000000000000000000000i001");
    i.key_name = Some("ip".into());
    i.key = "ip:0123456789ab".into();
    let s = r.handle(&incidents_event(&[&i])).await.unwrap();
    assert_eq!(f.snapshot().await, before);
    let record = &s.responses[0];
    assert!(record.revoked().next().is_none());
    assert!(
        record.notes[0].contains("no user to revoke"),
        "{:?}",
        record.notes
    );
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
        shared::ports::IncidentPublisher::publish(&publisher, &i.to_message())
            .await
            .unwrap();
    }
    let delivered = drain_settled(&sdk, &responder_queue, DRAIN_PAUSE).await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].1["rule"], "brute_force");

    // What the subscription delivers is what the responder acts on.
    let f = Fixture::new().await;
    let r = f.responder(Guardrails::default());
    let s = r.handle(&sns_event(&delivered)).await.unwrap();
    assert_eq!(s.responses.len(), 1);
    assert_eq!(s.responses[0].incident_id, brute.id);
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
    let r: Responder<_, _, NoTopic> = Responder {
        rails: enforce(),
        revoker: AnyRevoker::Http(revoker),
        store: DynamoResponseStore::new(&sdk, &table),
        team: None,
        team_target: String::new(),
        clock: Arc::new(TestClock(T0)),
        lease: Duration::from_secs(30),
    };
    let i = for_user("0000000000000000000000000000x001", "u-victim");
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
