//! Alertmanager, both ways, with the real tools (Debian's
//! `prometheus-alertmanager` and its `amtool`, from scripts/bootstrap.sh):
//! - the health API's silences in Alertmanager's v2 shape: `amtool silence
//!   add/query/expire` against health-api served on a loopback port, with
//!   the admin token from an `--http.config.file`, stored in DynamoDB
//!   (moto); the guard rails answer amtool with their reasons;
//! - the notifier's alertmanager channel posting an incident to the stack's
//!   Alertmanager (`ALERTMANAGER_URL`, started by scripts/stack.sh): amtool
//!   and the API see it firing with its labels and annotations, and the
//!   resolution ends it there.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use health_api::router;
use incident_notifier::Notifier;
use monitoring_adapters::dynamodb_response::DynamoDeliveryLog;
use monitoring_adapters::dynamodb_silences::DynamoSilenceStore;
use monitoring_adapters::webhook_http::{ChannelSettings, HttpChannels, RetryPolicy};
use monitoring_config::Secret;
use monitoring_core::domain::alerts::TransitionKind;
use monitoring_core::domain::security_response::Routing;
use monitoring_core::domain::silence::{RuleLabels, SilencePolicy};
use monitoring_core::domain::timefmt::rfc3339_millis;
use monitoring_core::ports::SystemClock;
use test_support::receiver::{INCIDENTS_TOPIC, incident, incidents_event};
use test_support::stack::{create_table, sdk, unique, var};
use test_support::tools::{serve, tool};

const ADMIN: &str = "amtool-admin-token-0123456789";

/// What amtool printed, and whether it succeeded.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn amtool(url: &str, http_config: Option<&std::path::PathBuf>, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(tool("amtool"));
    command.arg(format!("--alertmanager.url={url}"));
    if let Some(config) = http_config {
        command.arg(format!("--http.config.file={}", config.display()));
    }
    let out = command.args(args).output().await.unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// health-api with silences in a fresh moto table, on a loopback port.
async fn health_api() -> String {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let policy = SilencePolicy::default().with_rules(vec![
        RuleLabels::new("brute_force", "security", "critical"),
        RuleLabels::new("api_errors", "performance", "medium"),
        RuleLabels::new("drift_detected", "system", "high"),
    ]);
    let state = crate::bundle::health_state(&sdk, &table, None)
        .with_silences(
            DynamoSilenceStore::new(&sdk, &table),
            Some(&Secret::new(ADMIN)),
        )
        .with_silence_policy(policy);
    let addr = serve(router(Arc::new(state))).await;
    format!("http://{addr}")
}

/// amtool's HTTP client configuration with the admin token.
fn http_config(dir: &Path, token: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{}.yml", unique("amtool-http")));
    std::fs::write(
        &path,
        format!("authorization:\n  type: Bearer\n  credentials: {token}\n"),
    )
    .unwrap();
    path
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn amtool_adds_queries_and_expires_silences_through_the_health_api() {
    let url = health_api().await;
    let dir = std::env::temp_dir();
    let admin = http_config(&dir, ADMIN);

    let added = amtool(
        &url,
        Some(&admin),
        &[
            "silence",
            "add",
            "alertname=api_errors",
            "key=~10\\.0\\..*",
            "--duration=2h",
            "--author=alice",
            "--comment=deploy of the API",
        ],
    )
    .await;
    assert!(added.ok, "{}{}", added.stdout, added.stderr);
    let id = added.stdout.trim().to_owned();
    assert_eq!(id.len(), 32, "amtool prints the new id: {id:?}");

    let query = amtool(&url, Some(&admin), &["silence", "query", "-o", "json"]).await;
    assert!(query.ok, "{}", query.stderr);
    let listed = json(&query.stdout);
    let silence = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not listed: {listed}"));
    assert_eq!(silence["status"]["state"], "active");
    assert_eq!(silence["createdBy"], "alice");
    assert_eq!(silence["comment"], "deploy of the API");
    let matchers: Vec<(String, String, bool)> = silence["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["value"].as_str().unwrap().to_owned(),
                m["isRegex"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        matchers,
        [
            ("alertname".into(), "api_errors".into(), false),
            ("key".into(), "10\\.0\\..*".into(), true)
        ]
    );
    let starts = time::OffsetDateTime::parse(
        silence["startsAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ends = time::OffsetDateTime::parse(
        silence["endsAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let length = ends - starts;
    assert!(
        (length - time::Duration::hours(2)).abs() < time::Duration::minutes(1),
        "{length}"
    );

    // One silence by id, as Alertmanager's API serves it.
    let one = |id: String| {
        let url = format!("{url}/api/v2/silence/{id}");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
        }
    };
    let got = one(id.clone()).await;
    assert_eq!(got.status(), 200);
    let got: serde_json::Value = got.json().await.unwrap();
    assert_eq!(
        (got["id"].as_str(), got["status"]["state"].as_str()),
        (Some(id.as_str()), Some("active"))
    );
    assert_eq!(one("0".repeat(32)).await.status(), 404);

    // A filter in amtool's words finds it; another rule's does not.
    let filtered = amtool(
        &url,
        Some(&admin),
        &["silence", "query", "-o", "json", "alertname=api_errors"],
    )
    .await;
    assert!(filtered.ok, "{}", filtered.stderr);
    assert_eq!(json(&filtered.stdout).as_array().unwrap().len(), 1);
    let other = amtool(
        &url,
        Some(&admin),
        &["silence", "query", "-o", "json", "alertname=brute_force"],
    )
    .await;
    assert!(other.ok, "{}", other.stderr);
    assert!(json(&other.stdout).as_array().unwrap().is_empty());

    let expired = amtool(&url, Some(&admin), &["silence", "expire", &id]).await;
    assert!(expired.ok, "{}{}", expired.stdout, expired.stderr);
    let active = amtool(&url, Some(&admin), &["silence", "query", "-o", "json"]).await;
    assert!(
        json(&active.stdout)
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["id"] != id.as_str()),
        "an expired silence is not active: {}",
        active.stdout
    );
    let gone = amtool(
        &url,
        Some(&admin),
        &["silence", "query", "--expired", "-o", "json"],
    )
    .await;
    let gone = json(&gone.stdout);
    let kept = gone
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap_or_else(|| panic!("the expired silence is kept: {gone}"));
    assert_eq!(kept["status"]["state"], "expired");
    // Expiring it again is refused.
    let again = amtool(&url, Some(&admin), &["silence", "expire", &id]).await;
    assert!(!again.ok);
}

#[tokio::test]
async fn amtool_meets_the_guard_rails_with_their_reasons() {
    let url = health_api().await;
    let dir = std::env::temp_dir();
    let admin = http_config(&dir, ADMIN);
    let add = |matchers: &'static [&'static str], extra: &'static [&'static str]| {
        let url = url.clone();
        let admin = admin.clone();
        async move {
            let mut args = vec!["silence", "add", "--author=bob"];
            args.extend_from_slice(matchers);
            args.extend_from_slice(extra);
            amtool(&url, Some(&admin), &args).await
        }
    };

    // No token, or a wrong one: nothing is created.
    let anonymous = amtool(
        &url,
        None,
        &["silence", "add", "alertname=api_errors", "--comment=x"],
    )
    .await;
    assert!(!anonymous.ok);
    let wrong = http_config(&dir, "not-the-admin-token");
    let refused = amtool(
        &url,
        Some(&wrong),
        &["silence", "add", "alertname=api_errors", "--comment=x"],
    )
    .await;
    assert!(!refused.ok);

    // Muting a security rule needs the [security] tag in the comment.
    let security = add(&["alertname=brute_force"], &["--comment=pen test"]).await;
    assert!(!security.ok);
    assert!(
        security.stderr.contains("security"),
        "the reason reaches amtool: {}",
        security.stderr
    );
    let tagged = add(
        &["alertname=brute_force"],
        &["--comment=[security] pen test, ticket 42"],
    )
    .await;
    assert!(tagged.ok, "{}", tagged.stderr);

    // Longer than the maximum (7 days by default).
    let long = add(
        &["alertname=api_errors"],
        &["--comment=forever", "--duration=30d"],
    )
    .await;
    assert!(!long.ok);
    assert!(long.stderr.contains("maximum"), "{}", long.stderr);

    // What has no equivalent here: a negative matcher, another label.
    let negative = add(&["alertname!=api_errors"], &["--comment=x"]).await;
    assert!(!negative.ok);
    assert!(negative.stderr.contains("negative"), "{}", negative.stderr);
    let instance = add(&["instance=web-1"], &["--comment=x"]).await;
    assert!(!instance.ok);
    assert!(instance.stderr.contains("instance"), "{}", instance.stderr);

    let listed = amtool(&url, Some(&admin), &["silence", "query", "-o", "json"]).await;
    let listed = json(&listed.stdout);
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "only the tagged security silence was created: {listed}"
    );
}

async fn alertmanager_alerts(base: &str, key: &str) -> Vec<serde_json::Value> {
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/api/v2/alerts"),
        &[("filter", format!("key=\"{key}\""))],
    )
    .unwrap();
    let body: serde_json::Value = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    body.as_array().unwrap().clone()
}

#[tokio::test]
async fn incidents_reach_a_real_alertmanager_firing_then_resolved() {
    let am = var("ALERTMANAGER_URL");
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let sender = HttpChannels::new(ChannelSettings {
        alertmanager_url: Some(Secret::new(am.clone())),
        retry: RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(50),
            timeout: Duration::from_secs(5),
        },
        ..ChannelSettings::default()
    })
    .unwrap();
    let notifier = Notifier {
        incidents_topic: INCIDENTS_TOPIC.into(),
        routing: Arc::new(Routing::default_routing().unwrap()),
        sender,
        markers: DynamoDeliveryLog::new(&sdk, &table),
        clock: Arc::new(SystemClock),
    };

    // A key no other run uses: the stack's Alertmanager outlives tests.
    let key = unique("u-am");
    let now = time::OffsetDateTime::now_utc();
    let mut firing = incident(&format!("{:032x}", now.unix_timestamp_nanos()));
    firing.key = key.clone();
    firing.first_event_at = rfc3339_millis(now - time::Duration::minutes(2));
    firing.last_event_at = rfc3339_millis(now);
    firing.transition_at = rfc3339_millis(now);
    let summary = notifier.handle(&incidents_event(&[&firing])).await.unwrap();
    assert_eq!(summary.delivered, 1, "{summary:?}");
    let redelivered = notifier.handle(&incidents_event(&[&firing])).await.unwrap();
    assert_eq!(
        (redelivered.delivered, redelivered.already_delivered),
        (0, 1)
    );

    // amtool, as an on-call engineer would ask.
    let query = amtool(
        &am,
        None,
        &[
            "alert",
            "query",
            "-o",
            "json",
            "alertname=brute_force",
            &format!("key={key}"),
        ],
    )
    .await;
    assert!(query.ok, "{}", query.stderr);
    let seen = json(&query.stdout);
    let seen = seen.as_array().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let alert = &seen[0];
    assert_eq!(alert["status"]["state"], "active");
    assert_eq!(alert["labels"]["alertname"], "brute_force");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["category"], "security");
    assert_eq!(alert["labels"]["user"], key.as_str());
    assert_eq!(
        alert["annotations"]["runbook_url"],
        "https://runbooks.example/brute_force.md"
    );
    assert_eq!(
        alert["annotations"]["dashboard"],
        "https://dashboards.example/d/auth"
    );
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("[CRITICAL] brute_force firing"),
        "{alert}"
    );
    assert_eq!(alert["startsAt"], firing.first_event_at.as_str());

    // The resolution reaches Alertmanager as endsAt: no longer active.
    let mut resolved = firing.clone();
    resolved.status = TransitionKind::Resolved;
    resolved.transition_id = format!("{}:resolved", firing.id);
    resolved.transition_at = rfc3339_millis(time::OffsetDateTime::now_utc());
    let summary = notifier
        .handle(&incidents_event(&[&resolved]))
        .await
        .unwrap();
    assert_eq!(summary.delivered, 1, "{summary:?}");
    assert!(
        alertmanager_alerts(&am, &key).await.is_empty(),
        "resolved alerts are not listed as active"
    );
    let after = amtool(
        &am,
        None,
        &["alert", "query", "-o", "json", &format!("key={key}")],
    )
    .await;
    assert!(json(&after.stdout).as_array().unwrap().is_empty());
}
