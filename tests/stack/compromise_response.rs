//! Issue 15 against the local stack, log records to revocation: log-metrics
//! with the default rules counts a subscription batch into the alert
//! engine (DynamoDB in moto), which publishes to a moto SNS topic; the
//! security responder's subscription (the template's filter policy, an SQS
//! queue) delivers what reaches it to the responder in enforce mode, which
//! writes the service's `blocklistedtoken` rows in the local Postgres.
//!
//! - 12 failed logins against one user: a high `brute_force` incident is
//!   published, nothing reaches the responder, and the responder given it
//!   anyway revokes nothing.
//! - Failures against one user (from addresses none of which reaches the
//!   per-address threshold), then the user's successful login: one
//!   critical `suspected_compromise` incident naming the user, one
//!   revocation; the batch and the incident delivered again change nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use test_support::logs;

use log_metrics::{LogMetrics, SeriesGuard};
use monitoring_adapters::blocklist_revoker::{BlocklistRevoker, BlocklistSettings};
use monitoring_adapters::dynamodb_alerts::DynamoAlertStore;
use monitoring_adapters::dynamodb_response::DynamoResponseStore;
use monitoring_adapters::dynamodb_series::DynamoSeriesStore;
use monitoring_adapters::dynamodb_store::DynamoStore;
use monitoring_adapters::probes::postgres::PostgresConnector;
use monitoring_adapters::probes::tls;
use monitoring_adapters::retry::TokioTimer;
use monitoring_adapters::sns_publisher::SnsPublisher;
use monitoring_config::Secret;
use monitoring_core::domain::alerts::{AlertEngine, AlertRules, EngineSettings, Incident};
use monitoring_core::domain::logs::redact::Redactor;
use monitoring_core::domain::metrics::aggregate::CardinalityGuard;
use monitoring_core::domain::rules::RuleSet;
use monitoring_core::domain::security_response::revocation::ActionStatus;
use monitoring_core::domain::security_response::revocation::Decision;
use monitoring_core::domain::security_response::{Guardrails, Mode};
use monitoring_core::memory::alerts::{StaticComponents, StaticSilences};
use monitoring_core::ports::SystemClock;
use security_responder::{AnyRevoker, Responder};
use serde_json::{Value, json};
use test_support::receiver::sns_event_from;
use test_support::sns::{drain_settled, subscribe_queue, topic_with_queue};
use test_support::stack::{create_table, fresh_user_id, sdk, var};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The template's filter policy of the responder's subscription.
const FILTER_POLICY: &str = r#"{"category":["security"],"severity":["critical"]}"#;
const DRAIN_PAUSE: Duration = Duration::from_millis(300);
const RESPONDER_ROLE: &str = "blindspotx_responder";

/// The responder's connection string: its own role (see tests/stack/responder.rs).
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

/// A JSON `Authentication attempt` record of the service at `at`.
fn attempt(at: OffsetDateTime, user: &str, ip: &str, success: bool) -> String {
    json!({
        "timestamp": at.format(&Rfc3339).unwrap(),
        "level": if success { "INFO" } else { "WARNING" },
        "logger": "security",
        "message": "Authentication attempt",
        "user_id": user,
        "ip_address": ip,
        "success": success,
        "method": "password",
        "endpoint": "/api/auth/login",
        "duration_ms": 40.5,
    })
    .to_string()
}

/// A subscription payload of `records` (event time = record time).
fn payload(records: &[(OffsetDateTime, String)]) -> Value {
    let events = records
        .iter()
        .enumerate()
        .map(|(i, (at, m))| {
            logs::event(
                format!("{:040}{i:016}", at.unix_timestamp()),
                (at.unix_timestamp_nanos() / 1_000_000) as i64,
                m.as_str(),
            )
        })
        .collect();
    logs::lambda_event("app-1", events)
}

type Alerts = AlertEngine<DynamoAlertStore, SnsPublisher, StaticSilences, StaticComponents>;

struct Stack {
    sdk: aws_config::SdkConfig,
    app: LogMetrics<DynamoSeriesStore, DynamoStore, Alerts>,
    /// Every incident published.
    all: String,
    /// The responder's subscription.
    responder_queue: String,
    responder: Responder<AnyRevoker, DynamoResponseStore, SnsPublisher, DynamoAlertStore>,
    /// The incidents topic (the responder accepts only its records).
    topic: String,
    db: tokio_postgres::Client,
}

impl Stack {
    async fn new() -> Self {
        let sdk = sdk().await;
        let table = create_table(&sdk).await;
        let (topic, responder_queue) = topic_with_queue(&sdk, false, Some(FILTER_POLICY)).await;
        let all = subscribe_queue(&sdk, &topic, None).await;
        let app = LogMetrics {
            rules: RuleSet::default_rules().unwrap(),
            redactor: Redactor::new(b"integration-test-redaction-key").unwrap(),
            guard: SeriesGuard::new(CardinalityGuard::default()),
            store: DynamoSeriesStore::new(&sdk, &table, Duration::from_secs(3600)),
            heartbeats: DynamoStore::new(&sdk, &table),
            alerts: AlertEngine::new(
                Arc::new(AlertRules::default_rules().unwrap()),
                DynamoAlertStore::new(&sdk, &table),
                SnsPublisher::new(&sdk, &topic),
                StaticSilences(vec![]),
                StaticComponents(vec![]),
                EngineSettings::default(),
                Arc::new(TokioTimer),
            ),
            namespace: "Test".into(),
            parse: Default::default(),
            max_decompressed_bytes: 32 << 20,
        };
        let responder = Responder {
            rails: Guardrails {
                mode: Mode::Enforce,
                ..Guardrails::default()
            },
            revoker: AnyRevoker::Blocklist(Box::new(
                BlocklistRevoker::new(
                    Some(&Secret::new(blocklist_url())),
                    tls::client_config(None).unwrap(),
                    BlocklistSettings::default(),
                )
                .unwrap(),
            )),
            store: DynamoResponseStore::new(&sdk, &table),
            // The incidents the engine stored: what the responder checks
            // every delivered incident against.
            incidents: DynamoAlertStore::new(&sdk, &table),
            incidents_topic: topic.clone(),
            team: None,
            team_target: String::new(),
            clock: Arc::new(SystemClock),
            lease: Duration::from_secs(30),
        };
        let db = PostgresConnector::new(
            &Secret::new(var("DATABASE_URL")),
            tls::client_config(None).unwrap(),
        )
        .unwrap()
        .connect()
        .await
        .unwrap_or_else(|failed| panic!("cannot connect to the local Postgres: {failed:?}"));
        Stack {
            sdk,
            topic,
            app,
            all,
            responder_queue,
            responder,
            db,
        }
    }

    async fn deliver(&self, records: &[(OffsetDateTime, String)]) {
        let mut emf: Vec<u8> = Vec::new();
        self.app
            .handle(&payload(records), OffsetDateTime::now_utc(), &mut emf)
            .await
            .unwrap();
    }

    /// Incidents published since the last call: (rule, severity, status, body).
    async fn published(&self) -> Vec<Value> {
        drain_settled(&self.sdk, &self.all, DRAIN_PAUSE)
            .await
            .into_iter()
            .map(|(body, _)| serde_json::from_str(&body).unwrap())
            .collect()
    }

    async fn reaching_responder(&self) -> Vec<(String, BTreeMap<String, String>)> {
        drain_settled(&self.sdk, &self.responder_queue, DRAIN_PAUSE).await
    }

    /// The `blocklistedtoken` rows of `user`: (jti, token_type, reason).
    async fn rows_of(&self, user: &str) -> Vec<(String, String, String)> {
        self.db
            .query(
                "SELECT jti, token_type, reason FROM blocklistedtoken \
                 WHERE user_id = $1::text::uuid ORDER BY created_at, id",
                &[&user],
            )
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    async fn cleanup(&self, users: &[&str]) {
        let users: Vec<String> = users.iter().map(|u| (*u).to_owned()).collect();
        self.db
            .execute(
                "DELETE FROM blocklistedtoken WHERE user_id::text = ANY($1)",
                &[&users],
            )
            .await
            .unwrap();
    }
}

fn rules_of(incidents: &[Value]) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = incidents
        .iter()
        .map(|i| {
            (
                i["rule"].as_str().unwrap_or("").to_owned(),
                i["severity"].as_str().unwrap_or("").to_owned(),
                i["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn failures_alone_notify_and_the_responder_does_nothing() {
    let s = Stack::new().await;
    let victim = fresh_user_id();
    let t0 = OffsetDateTime::now_utc() - Duration::from_secs(120);
    let records: Vec<(OffsetDateTime, String)> = (0..12)
        .map(|i| {
            let at = t0 + Duration::from_secs(i * 5);
            (at, attempt(at, &victim, "203.0.113.7", false))
        })
        .collect();
    s.deliver(&records).await;

    let published = s.published().await;
    let brute: Vec<&Value> = published
        .iter()
        .filter(|i| i["rule"] == "brute_force")
        .collect();
    assert_eq!(brute.len(), 1, "{:?}", rules_of(&published));
    assert_eq!(brute[0]["severity"], "high");
    assert_eq!(brute[0]["key"], victim.as_str());
    assert!(
        published.iter().all(|i| i["severity"] != "critical"),
        "{:?}",
        rules_of(&published)
    );
    // The subscription keeps every one of them from the responder.
    assert!(s.reaching_responder().await.is_empty());
    // Given the high incident anyway, the responder's own check ignores it.
    let incident: Incident = serde_json::from_value(brute[0].clone()).unwrap();
    let message = incident.to_message();
    let summary = s
        .responder
        .handle(&sns_event_from(
            &s.topic,
            &[(message.body, message.attributes)],
        ))
        .await
        .unwrap();
    assert_eq!((summary.ignored, summary.responses.len()), (1, 0));
    assert!(s.rows_of(&victim).await.is_empty());
}

#[tokio::test]
async fn a_success_after_failures_revokes_the_account_once() {
    let s = Stack::new().await;
    let (victim, bystander) = (fresh_user_id(), fresh_user_id());
    let t0 = OffsetDateTime::now_utc() - Duration::from_secs(300);
    // Twelve failures against the victim, four from each of three
    // addresses (no address reaches the per-address sequence), and a
    // bystander who logs in normally from one of them.
    let mut records: Vec<(OffsetDateTime, String)> = (0..12)
        .map(|i| {
            let at = t0 + Duration::from_secs(i * 10);
            let ip = format!("198.51.100.{}", 10 + i % 3);
            (at, attempt(at, &victim, &ip, false))
        })
        .collect();
    let login = t0 + Duration::from_secs(150);
    records.push((login, attempt(login, &bystander, "198.51.100.10", true)));
    records.push((login, attempt(login, &victim, "192.0.2.77", true)));
    s.deliver(&records).await;

    let published = s.published().await;
    let critical: Vec<&Value> = published
        .iter()
        .filter(|i| i["severity"] == "critical")
        .collect();
    assert_eq!(critical.len(), 1, "{:?}", rules_of(&published));
    assert_eq!(critical[0]["rule"], "suspected_compromise");
    assert_eq!(critical[0]["category"], "security");
    assert_eq!(critical[0]["key"], victim.as_str());
    assert_eq!(critical[0]["subject"], victim.as_str());
    assert_eq!(critical[0]["count"], 12);

    // Exactly that incident reaches the responder, which revokes once.
    let delivered = s.reaching_responder().await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let summary = s
        .responder
        .handle(&sns_event_from(&s.topic, &delivered))
        .await
        .unwrap();
    assert_eq!(summary.responses.len(), 1);
    let actions = &summary.responses[0].actions;
    let revoked: Vec<&str> = actions
        .iter()
        .filter(|a| a.status == ActionStatus::Revoked)
        .map(|a| a.target.as_str())
        .collect();
    assert_eq!(revoked, [victim.as_str()], "{actions:?}");
    let rows = s.rows_of(&victim).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, "all");
    assert!(s.rows_of(&bystander).await.is_empty());

    // The incident delivered again: nothing more.
    let again = s
        .responder
        .handle(&sns_event_from(&s.topic, &delivered))
        .await
        .unwrap();
    assert_eq!((again.duplicates, again.responses.len()), (1, 0));
    // The log batch delivered again: no new incident, nothing to respond to.
    s.deliver(&records).await;
    assert!(s.published().await.is_empty());
    assert!(s.reaching_responder().await.is_empty());
    assert_eq!(s.rows_of(&victim).await, rows);
    s.cleanup(&[&victim, &bystander]).await;
}

/// One address failing against one user, then logging in as them, fires
/// both sequence rules (per user and per address): two critical incidents
/// naming the same account. It is revoked once; the second incident finds
/// the user's cooldown taken and records so.
#[tokio::test]
async fn both_sequence_rules_on_one_burst_revoke_the_account_once() {
    let s = Stack::new().await;
    let victim = fresh_user_id();
    let t0 = OffsetDateTime::now_utc() - Duration::from_secs(300);
    let mut records: Vec<(OffsetDateTime, String)> = (0..6)
        .map(|i| {
            let at = t0 + Duration::from_secs(i * 10);
            (at, attempt(at, &victim, "203.0.113.99", false))
        })
        .collect();
    let login = t0 + Duration::from_secs(90);
    records.push((login, attempt(login, &victim, "203.0.113.99", true)));
    s.deliver(&records).await;

    let published = s.published().await;
    let mut critical: Vec<&str> = published
        .iter()
        .filter(|i| i["severity"] == "critical")
        .map(|i| i["rule"].as_str().unwrap_or(""))
        .collect();
    critical.sort_unstable();
    assert_eq!(
        critical,
        ["suspected_compromise", "suspected_compromise_by_ip"],
        "{:?}",
        rules_of(&published)
    );
    let delivered = s.reaching_responder().await;
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    let summary = s
        .responder
        .handle(&sns_event_from(&s.topic, &delivered))
        .await
        .unwrap();
    let decisions: Vec<Option<Decision>> = summary
        .responses
        .iter()
        .flat_map(|r| r.actions.iter().map(|a| a.decision))
        .collect();
    assert_eq!(decisions.len(), 2, "{:?}", summary.responses);
    assert!(decisions.contains(&Some(Decision::Acted)), "{decisions:?}");
    assert!(
        decisions.contains(&Some(Decision::Cooldown)),
        "{decisions:?}"
    );
    assert_eq!(s.rows_of(&victim).await.len(), 1);
    s.cleanup(&[&victim]).await;
}
