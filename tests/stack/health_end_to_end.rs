//! A probe run against the local stack writes results that the health API
//! serves; breaking a dependency shows within one probe cycle.

use std::collections::BTreeSet;

use crate::bundle::{TOKEN, get_health, probe_run};
use aws_config::SdkConfig;
use monitoring_adapters::dynamodb_store::DynamoStore;
use monitoring_core::domain::heartbeat::Heartbeat;
use test_support::servers::{RedisServer, tls_server};
use test_support::stack::{create_table, dump_table, sdk, unique, var};
use time::OffsetDateTime;

/// Certificates are configured too, so all five components really probe.
async fn cert_overrides() -> (String, String) {
    let (port, ca) = tls_server(90).await;
    (format!("localhost:{port}"), ca.display().to_string())
}

/// What log-metrics does when the drift job logs a scan: the drift probe's
/// default source reads this heartbeat.
async fn drift_job_ran_recently(sdk: &SdkConfig, table: &str) {
    DynamoStore::new(sdk, table)
        .put_heartbeat(
            Heartbeat::DriftScan,
            OffsetDateTime::now_utc() - time::Duration::minutes(5),
        )
        .await
        .expect("drift heartbeat");
}

/// The components whose EMF documents in `namespace` carry `metric`.
fn emf_components(lines: &[String], namespace: &str, metric: &str) -> BTreeSet<String> {
    lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("an EMF line is JSON"))
        .filter(|d| d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == namespace)
        .filter(|d| d.get(metric).is_some_and(serde_json::Value::is_number))
        .filter_map(|d| d["Component"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn probe_run_feeds_the_health_endpoint() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let namespace = unique("Test");
    let (endpoint, ca) = cert_overrides().await;
    drift_job_ran_recently(&sdk, &table).await;
    let run = probe_run(
        &sdk,
        &table,
        &namespace,
        &[("CERT_ENDPOINTS", &endpoint), ("CERT_EXTRA_CA_FILE", &ca)],
    )
    .await;
    let summary = run.run().await.expect("probe run");
    for c in &summary.components {
        assert_eq!(c.status.as_str(), "pass", "{c:?}");
    }

    let (status, body) = get_health(&sdk, &table, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "healthy");
    for name in [
        "database",
        "redis",
        "oauth",
        "drift_detection",
        "certificates",
    ] {
        assert_eq!(
            body["components"][name],
            serde_json::json!({"healthy": true}),
            "{name}"
        );
    }

    let bearer = format!("Bearer {TOKEN}");
    let (_, detailed) = get_health(&sdk, &table, &[("authorization", &bearer)]).await;
    let measured: BTreeSet<String> = detailed["components"]["database"]["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    for name in [
        "responseTime",
        "connections",
        "connectionUtilization",
        "lockWaits",
        "longestQuery",
    ] {
        assert!(measured.contains(name), "{name} missing from {measured:?}");
    }
    let redis: Vec<&str> = detailed["components"]["redis"]["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for name in [
        "responseTime",
        "memoryUsed",
        "memoryUtilization",
        "evictedKeys",
        "connectedClients",
    ] {
        assert!(redis.contains(&name), "{name} missing from {redis:?}");
    }
    assert_eq!(
        detailed["components"]["oauth"]["measurements"][1]["name"],
        "signingKeys"
    );

    let (status, ietf) = get_health(&sdk, &table, &[("accept", "application/health+json")]).await;
    assert_eq!(status, 200);
    assert_eq!(ietf["status"], "pass");
    assert_eq!(
        ietf["checks"]["certificates:daysRemaining"][0]["status"],
        "pass"
    );

    // CloudWatch gets up/latency for every component, as EMF lines.
    let lines = run.metrics.lines();
    assert_eq!(
        emf_components(&lines, &namespace, "ComponentUp"),
        [
            "certificates",
            "database",
            "drift_detection",
            "oauth",
            "redis"
        ]
        .map(String::from)
        .into()
    );
    assert!(
        emf_components(&lines, &namespace, "ConnectionUtilization").contains("database"),
        "{lines:?}"
    );

    // The database password is nowhere: not stored, not served.
    let database_url = var("DATABASE_URL");
    let password = database_url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, pw)| pw.to_owned())
        .expect("the stack's DATABASE_URL has a password");
    let stored = dump_table(&sdk, &table).await;
    assert!(stored.contains("PROBE#LATEST") && stored.contains("AT#"));
    assert!(!stored.contains(&password));
    assert!(!detailed.to_string().contains(&password));
}

#[tokio::test]
async fn stopping_redis_turns_the_endpoint_503_and_starting_it_turns_it_back() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let namespace = unique("Test");
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    drift_job_ran_recently(&sdk, &table).await;
    let run = probe_run(
        &sdk,
        &table,
        &namespace,
        &[("REDIS_URL", &url), ("PROBE_TIMEOUT_MS", "1000")],
    )
    .await;

    run.run().await.unwrap();
    let (status, body) = get_health(&sdk, &table, &[]).await;
    assert_eq!(status, 200, "{body}");

    redis.stop().await;
    run.run().await.unwrap();
    let (status, body) = get_health(&sdk, &table, &[]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["components"]["redis"]["healthy"], false);
    assert_eq!(body["components"]["redis"]["reason"], "unreachable");
    assert_eq!(body["components"]["database"]["healthy"], true);
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");

    redis.restart().await;
    run.run().await.unwrap();
    let (status, body) = get_health(&sdk, &table, &[]).await;
    assert_eq!(status, 200, "{body}");
}

/// Unset means off: with no database, Redis, OIDC issuer or certificate
/// endpoint, those components read `not_configured`, the endpoint answers
/// 200 and CloudWatch gets no `ComponentUp` for them. The drift probe's
/// default source is the heartbeat of the drift job's log records: none yet
/// is a failure, one written as log-metrics writes it makes it pass.
#[tokio::test]
async fn unset_components_are_not_configured_and_keep_the_endpoint_healthy() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let namespace = unique("Test");
    let run = probe_run(
        &sdk,
        &table,
        &namespace,
        &[
            ("DATABASE_URL", ""),
            ("REDIS_URL", ""),
            ("OIDC_ISSUER", ""),
            ("CERT_ENDPOINTS", ""),
            ("DRIFT_SOURCE", ""),
        ],
    )
    .await;

    let summary = run.run().await.expect("probe run");
    let drift = summary
        .components
        .iter()
        .find(|c| c.component.as_str() == "drift_detection")
        .expect("a drift result");
    assert_eq!(
        drift.reason.map(|r| r.as_str()),
        Some("no_scan_recorded"),
        "{drift:?}"
    );
    // A first deploy: the drift job has logged nothing yet, a warning
    // that keeps the endpoint at 200 (and raises no incident).
    assert_eq!(drift.status.as_str(), "warn", "{drift:?}");
    let (status, body) = get_health(&sdk, &table, &[]).await;
    assert_eq!(status, 200, "{body}");
    for name in ["database", "redis", "oauth", "certificates"] {
        assert_eq!(
            body["components"][name]["status"], "not_configured",
            "{name}"
        );
    }

    drift_job_ran_recently(&sdk, &table).await;
    let summary = run.run().await.expect("probe run");
    for c in &summary.components {
        let expected = match c.component.as_str() {
            "drift_detection" => "pass",
            _ => "not_configured",
        };
        assert_eq!(c.status.as_str(), expected, "{c:?}");
    }

    let (status, body) = get_health(&sdk, &table, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "healthy");
    for name in ["database", "redis", "oauth", "certificates"] {
        assert_eq!(
            body["components"][name],
            serde_json::json!({"healthy": true, "status": "not_configured"}),
            "{name}"
        );
    }
    assert_eq!(
        body["components"]["drift_detection"],
        serde_json::json!({"healthy": true})
    );

    let (status, ietf) = get_health(&sdk, &table, &[("accept", "application/health+json")]).await;
    assert_eq!(status, 200, "{ietf}");
    assert_eq!(ietf["status"], "pass");
    assert_eq!(
        ietf["notes"],
        serde_json::json!([
            "database: not_configured",
            "redis: not_configured",
            "oauth: not_configured",
            "certificates: not_configured"
        ])
    );

    let components = emf_components(&run.metrics.lines(), &namespace, "ComponentUp");
    assert_eq!(components, ["drift_detection".to_owned()].into());
}
