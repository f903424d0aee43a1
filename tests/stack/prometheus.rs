//! Prometheus for real: Debian's Prometheus server (from scripts/bootstrap.sh)
//! runs `infra/prometheus/prometheus.yml` with its alert rules, the scrape
//! target templated to a health-api served on a loopback port and the
//! bearer token read from a token file, as a deployment does. Through
//! Prometheus' HTTP API: the target is up, a series stored in DynamoDB
//! (moto) has the value written, the alert rules loaded, and a scrape with
//! a wrong token leaves the target down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use health_api::router;
use monitoring_adapters::dynamodb_series::DynamoSeriesStore;
use monitoring_config::Secret;
use monitoring_core::domain::metrics::aggregate::{BatchMetrics, CardinalityGuard, Update};
use monitoring_core::domain::metrics::series::SeriesKey;
use monitoring_core::domain::pipeline::pipeline_metrics;
use monitoring_core::domain::rules::RuleSet;
use monitoring_core::ports::SeriesStore;
use serde_yaml_ng::Value as Yaml;
use test_support::servers::free_port;
use test_support::stack::{create_table, sdk, unique, var};
use test_support::tools::{root, serve, tool};
use tokio::process::{Child, Command};

const METRICS_TOKEN: &str = "prometheus-scrape-token-0123456789";

/// health-api's `/metrics` over a fresh table holding `log_events_total`
/// = `events`, on a loopback port.
async fn metrics_endpoint(events: f64) -> String {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let series = DynamoSeriesStore::new(&sdk, &table, Duration::from_secs(86_400));
    let mut batch = BatchMetrics::default();
    batch
        .apply(
            SeriesKey::new("log_events_total", Vec::<(String, String)>::new()),
            Update::CounterAdd(events),
            &mut CardinalityGuard::default(),
        )
        .unwrap();
    series
        .apply_batch(&unique("batch"), &batch, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let mut metrics = RuleSet::default_rules().unwrap().metrics().to_vec();
    metrics.extend(pipeline_metrics());
    let state = crate::bundle::health_state(&sdk, &table, None).with_metrics(
        series,
        Some(&Secret::new(METRICS_TOKEN)),
        metrics,
    );
    serve(router(Arc::new(state))).await.to_string()
}

/// The committed configuration with the target, the token file, the rule
/// file and the Alertmanager pointed at local ones, scraping every second.
fn config(dir: &Path, target: &str, token: &str) -> PathBuf {
    let committed = root().join("infra/prometheus/prometheus.yml");
    let mut c: Yaml =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&committed).unwrap()).unwrap();
    c["global"]["scrape_interval"] = "1s".into();
    c["global"]["evaluation_interval"] = "1s".into();
    let rules = c["rule_files"][0].as_str().unwrap().to_owned();
    c["rule_files"][0] = root()
        .join("infra/prometheus")
        .join(rules)
        .display()
        .to_string()
        .into();
    let am = var("ALERTMANAGER_URL");
    let am = am.trim_start_matches("http://").trim_end_matches('/');
    c["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0] = am.into();
    let job = &mut c["scrape_configs"][0];
    assert_eq!(job["authorization"]["type"].as_str(), Some("Bearer"));
    // Plain HTTP on loopback; API Gateway serves the same path over HTTPS.
    job["scheme"] = "http".into();
    let token_file = dir.join("blindspotx-token");
    std::fs::write(&token_file, token).unwrap();
    job["authorization"]["credentials_file"] = token_file.display().to_string().into();
    job["static_configs"][0]["targets"][0] = target.into();
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, serde_yaml_ng::to_string(&c).unwrap()).unwrap();
    path
}

/// A Prometheus server the test owns, stopped on drop.
struct Prometheus {
    base: String,
    _child: Child,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn prometheus(target: &str, token: &str) -> Prometheus {
    let dir = std::env::temp_dir().join(unique("prometheus"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = config(&dir, target, token);
    let check = Command::new(tool("promtool"))
        .args(["check", "config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let port = free_port().await;
    let child = Command::new(tool("prometheus"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..120 {
        if reqwest::get(format!("{base}/-/ready"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Prometheus {
                base,
                _child: child,
                dir,
            };
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "prometheus did not become ready: {}",
        std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
    );
}

impl Prometheus {
    async fn api(&self, path: &str, query: &[(&str, &str)]) -> serde_json::Value {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.base), query).unwrap();
        let body: serde_json::Value = reqwest::Client::new()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "{body}");
        body["data"].clone()
    }

    /// The target's health once Prometheus has scraped it.
    async fn target_health(&self) -> (String, String) {
        for _ in 0..80 {
            let targets = self.api("/api/v1/targets", &[]).await;
            let target = &targets["activeTargets"][0];
            let health = target["health"].as_str().unwrap_or_default().to_owned();
            if health == "up" || health == "down" {
                let error = target["lastError"].as_str().unwrap_or_default().to_owned();
                return (health, error);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("prometheus never scraped the target");
    }

    /// The value of an instant query's only sample.
    async fn value(&self, query: &str) -> Option<String> {
        let data = self.api("/api/v1/query", &[("query", query)]).await;
        let result = data["result"].as_array().unwrap();
        assert!(result.len() <= 1, "{data}");
        result
            .first()
            .map(|s| s["value"][1].as_str().unwrap().to_owned())
    }
}

#[tokio::test]
async fn prometheus_scrapes_the_health_api_with_the_committed_config() {
    let target = metrics_endpoint(7.0).await;
    let prom = prometheus(&target, METRICS_TOKEN).await;

    let (health, error) = prom.target_health().await;
    assert_eq!(health, "up", "{error}");
    let target_info = &prom.api("/api/v1/targets", &[]).await["activeTargets"][0];
    assert_eq!(target_info["labels"]["job"], "blindspotx");
    assert_eq!(target_info["scrapeUrl"], format!("http://{target}/metrics"));

    assert_eq!(
        prom.value(r#"up{job="blindspotx"}"#).await.as_deref(),
        Some("1")
    );
    assert_eq!(
        prom.value(r#"log_events_total{job="blindspotx"}"#)
            .await
            .as_deref(),
        Some("7")
    );

    // The alert rules loaded, the scrape-health rule among them, and
    // nothing fires for a target that is up.
    let rules = prom.api("/api/v1/rules", &[]).await;
    let loaded: Vec<&str> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| {
            assert_eq!(r["health"], "ok", "{r}");
            r["name"].as_str().unwrap()
        })
        .collect();
    assert!(loaded.contains(&"blindspotx_metrics_down"), "{loaded:?}");
    assert!(loaded.contains(&"auth_failures"), "{loaded:?}");
}

#[tokio::test]
async fn a_wrong_token_leaves_the_target_down() {
    let target = metrics_endpoint(1.0).await;
    let prom = prometheus(&target, "not-the-metrics-token").await;
    let (health, error) = prom.target_health().await;
    assert_eq!(health, "down");
    assert!(error.contains("401"), "{error}");
    assert_eq!(
        prom.value(r#"up{job="blindspotx"}"#).await.as_deref(),
        Some("0")
    );
    assert_eq!(prom.value("log_events_total").await, None);
}
