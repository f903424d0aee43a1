//! Each probe against a real dependency with a real fault: a listener that
//! never answers, a wrong issuer, expiring and untrusted certificates, a
//! wrong password.

use std::time::{Duration, Instant};

use monitoring_adapters::probe_runner::{ProbeLimits, run_probes};
use monitoring_adapters::probes::certificates::CertificateProbe;
use monitoring_adapters::probes::drift::{DriftProbe, LastScanSource};
use monitoring_adapters::probes::oidc::OidcProbe;
use monitoring_adapters::probes::postgres::{DatabaseThresholds, PostgresConnector, PostgresProbe};
use monitoring_adapters::probes::redis::{CacheThresholds, RedisProbe};
use monitoring_adapters::probes::tls;
use monitoring_config::Secret;
use monitoring_config::probe::{CertificateSettings, Endpoint, OidcSettings};
use monitoring_core::domain::probe_result::{Component, ProbeResult, Reason, Status};
use monitoring_core::domain::scrub::Scrubber;
use monitoring_core::ports::{Probe, SystemClock};
use test_support::servers::{oidc_provider, silent_listener, tls_server};
use test_support::stack::var;

async fn run_one(probe: Box<dyn Probe>, timeout: Duration) -> ProbeResult {
    let limits = ProbeLimits {
        timeout,
        deadline: timeout * 4,
    };
    run_probes(&[probe], limits, &SystemClock, &Scrubber::default())
        .await
        .remove(0)
}

fn database_probe(url: &str) -> Box<dyn Probe> {
    let connector =
        PostgresConnector::new(&Secret::new(url), tls::client_config(None).unwrap()).unwrap();
    Box::new(PostgresProbe::new(
        Some(connector),
        vec!["users".into(), "roles".into()],
        DatabaseThresholds::default(),
    ))
}

#[tokio::test]
async fn a_database_that_never_answers_fails_within_the_timeout() {
    let addr = silent_listener().await;
    let probe = database_probe(&format!("postgres://app:pw@{addr}/blindspotx"));
    let started = Instant::now();
    let result = run_one(probe, Duration::from_millis(500)).await;
    let took = started.elapsed();
    assert_eq!(result.component, Component::Database);
    assert_eq!(result.status, Status::Fail);
    assert_eq!(result.reason, Some(Reason::Timeout));
    assert!(took < Duration::from_secs(3), "hung for {took:?}");
}

#[tokio::test]
async fn the_real_database_passes_and_reports_index_usage() {
    // Read `roles` once by index and once by sequential scan, on a connection
    // that then closes (which flushes its statistics).
    let connector = PostgresConnector::new(
        &Secret::new(var("DATABASE_URL")),
        tls::client_config(None).unwrap(),
    )
    .unwrap();
    let client = connector.connect().await.unwrap();
    client
        .batch_execute(
            "SET enable_seqscan = off; SELECT * FROM roles WHERE id = 1; \
             SET enable_seqscan = on; SET enable_indexscan = off; SET enable_bitmapscan = off; \
             SELECT count(*) FROM roles;",
        )
        .await
        .unwrap();
    drop(client);

    let mut ratio = None;
    for _ in 0..40 {
        let result = run_one(database_probe(&var("DATABASE_URL")), Duration::from_secs(5)).await;
        assert_eq!(result.status, Status::Pass, "{result:?}");
        assert!(
            result
                .measurements
                .iter()
                .any(|m| m.name == "connectionUtilization")
        );
        ratio = result
            .measurements
            .iter()
            .find(|m| m.name == "indexScanRatio" && m.target.as_deref() == Some("roles"))
            .map(|m| m.value);
        if ratio.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ratio = ratio.expect("index usage of `roles` is reported");
    assert!(ratio > 0.0 && ratio < 100.0, "{ratio}");
}

#[tokio::test]
async fn a_wrong_database_password_is_an_authentication_failure_without_the_password() {
    let url = var("DATABASE_URL");
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    let wrong = format!("{scheme}://{user}:Wr0ngPassw0rd@{host}");
    let connector =
        PostgresConnector::new(&Secret::new(&wrong), tls::client_config(None).unwrap()).unwrap();
    let probe: Box<dyn Probe> = Box::new(PostgresProbe::new(
        Some(connector),
        vec![],
        DatabaseThresholds::default(),
    ));
    let result = run_probes(
        &[probe],
        ProbeLimits::default(),
        &SystemClock,
        &Scrubber::new([wrong.clone(), "Wr0ngPassw0rd".to_owned()]),
    )
    .await
    .remove(0);
    assert_eq!(
        result.reason,
        Some(Reason::AuthenticationFailed),
        "{result:?}"
    );
    assert!(!format!("{result:?}").contains("Wr0ngPassw0rd"));
}

fn oidc(issuer: &str, discovery_base: &str) -> Box<dyn Probe> {
    Box::new(
        OidcProbe::new(
            Some(OidcSettings {
                issuer: issuer.to_owned(),
                discovery_url: format!("{discovery_base}/.well-known/openid-configuration"),
            }),
            Duration::from_secs(2),
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn the_local_oidc_fixture_passes() {
    let issuer = var("OIDC_ISSUER");
    let result = run_one(oidc(&issuer, &issuer), Duration::from_secs(2)).await;
    assert_eq!(result.status, Status::Pass, "{result:?}");
    let keys = result
        .measurements
        .iter()
        .find(|m| m.name == "signingKeys")
        .unwrap();
    assert!(keys.value >= 1.0);
}

#[tokio::test]
async fn a_wrong_issuer_makes_oauth_unhealthy() {
    let base = oidc_provider(Some("https://impostor.example/v2.0"), 1).await;
    let result = run_one(oidc(&base, &base), Duration::from_secs(2)).await;
    assert_eq!(result.status, Status::Fail);
    assert_eq!(result.reason, Some(Reason::IssuerMismatch));
    assert!(result.detail.unwrap().contains("impostor.example"));
}

#[tokio::test]
async fn an_empty_jwks_makes_oauth_unhealthy() {
    let base = oidc_provider(None, 0).await;
    let result = run_one(oidc(&base, &base), Duration::from_secs(2)).await;
    assert_eq!(result.reason, Some(Reason::NoSigningKeys));
    assert_eq!(result.status, Status::Fail);
}

#[tokio::test]
async fn an_oidc_provider_that_hangs_times_out() {
    let addr = silent_listener().await;
    let base = format!("http://{addr}");
    let started = Instant::now();
    let result = run_one(oidc(&base, &base), Duration::from_millis(500)).await;
    assert_eq!(result.status, Status::Fail);
    assert!(matches!(result.reason, Some(Reason::Timeout)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

async fn certificate_result(days_left: i64, trust_ca: bool) -> ProbeResult {
    let (port, ca) = tls_server(days_left).await;
    let settings = CertificateSettings {
        endpoints: vec![Endpoint {
            host: "localhost".into(),
            port,
        }],
        extra_ca_file: trust_ca.then(|| ca.clone()),
        warn_days: 14.0,
        fail_days: 3.0,
    };
    let tls = tls::client_config(settings.extra_ca_file.as_deref()).unwrap();
    run_one(
        Box::new(CertificateProbe::new(settings, tls)),
        Duration::from_secs(2),
    )
    .await
}

#[tokio::test]
async fn certificates_warn_under_14_days_and_fail_under_3() {
    let ok = certificate_result(60, true).await;
    assert_eq!(ok.status, Status::Pass, "{ok:?}");
    let days = ok.measurements[0].value;
    assert!((59.0..=60.0).contains(&days), "{days}");
    assert_eq!(
        ok.measurements[0]
            .target
            .as_deref()
            .map(|t| t.starts_with("localhost:")),
        Some(true)
    );

    let warn = certificate_result(10, true).await;
    assert_eq!(warn.status, Status::Warn, "{warn:?}");
    assert_eq!(warn.reason, Some(Reason::CertificateExpiring));

    let fail = certificate_result(2, true).await;
    assert_eq!(fail.status, Status::Fail);
    assert_eq!(fail.reason, Some(Reason::CertificateExpiring));
}

#[tokio::test]
async fn an_untrusted_certificate_is_invalid() {
    let result = certificate_result(60, false).await;
    assert_eq!(result.status, Status::Fail);
    assert_eq!(
        result.reason,
        Some(Reason::CertificateInvalid),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_unreachable_certificate_endpoint_fails() {
    let port = test_support::servers::free_port().await;
    let settings = CertificateSettings {
        endpoints: vec![Endpoint {
            host: "127.0.0.1".into(),
            port,
        }],
        extra_ca_file: None,
        warn_days: 14.0,
        fail_days: 3.0,
    };
    let probe = CertificateProbe::new(settings, tls::client_config(None).unwrap());
    let result = run_one(Box::new(probe), Duration::from_secs(2)).await;
    assert_eq!(result.reason, Some(Reason::Unreachable));
}

/// Unset means off: every probe whose settings are empty reports
/// `not_configured`, not a failure, through the runner as the function runs it.
#[tokio::test]
async fn probes_without_settings_are_not_configured() {
    let certificates = CertificateSettings {
        endpoints: vec![],
        extra_ca_file: None,
        warn_days: 14.0,
        fail_days: 3.0,
    };
    let probes: Vec<Box<dyn Probe>> = vec![
        Box::new(PostgresProbe::new(
            None,
            vec![],
            DatabaseThresholds::default(),
        )),
        Box::new(RedisProbe::new(None, CacheThresholds::default()).unwrap()),
        Box::new(OidcProbe::new(None, Duration::from_secs(2)).unwrap()),
        Box::new(CertificateProbe::new(
            certificates,
            tls::client_config(None).unwrap(),
        )),
    ];
    let results = run_probes(
        &probes,
        ProbeLimits::default(),
        &SystemClock,
        &Scrubber::default(),
    )
    .await;
    assert_eq!(results.len(), 4);
    for r in results {
        assert_eq!(r.status, Status::NotConfigured, "{r:?}");
        assert_eq!(r.reason, None, "{r:?}");
    }
}

#[tokio::test]
async fn drift_freshness_from_sql() {
    let connector = PostgresConnector::new(
        &Secret::new(var("DATABASE_URL")),
        tls::client_config(None).unwrap(),
    )
    .unwrap();
    let drift = |query: &str| {
        let probe = DriftProbe::new(
            LastScanSource::Sql {
                connector: Box::new(connector.clone()),
                query: query.to_owned(),
            },
            Duration::from_secs(3600),
        );
        run_one(Box::new(probe), Duration::from_secs(5))
    };

    let result = drift("SELECT now() - interval '5 minutes'").await;
    assert_eq!(result.status, Status::Pass, "{result:?}");
    let age = result.measurements[0].value;
    assert!((290.0..400.0).contains(&age), "{age}");

    let result = drift("SELECT (now() - interval '3 hours')::timestamp").await;
    assert_eq!(result.reason, Some(Reason::ScanOverdue), "{result:?}");

    // A query over a table of scans that holds none (the guide defines no
    // such table: `DRIFT_SQL` is whatever the deployment records scans in).
    let result = drift("SELECT max(t) FROM (SELECT now() AS t) AS scans WHERE false").await;
    assert_eq!(result.reason, Some(Reason::NoScanRecorded), "{result:?}");

    let result = drift("SELECT max(finished_at) FROM no_such_table").await;
    assert_eq!(result.reason, Some(Reason::QueryFailed), "{result:?}");
}
