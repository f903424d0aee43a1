//! The `redis` probe: the guide's Cache Monitoring — PING latency, memory use
//! against `maxmemory`, evictions, keyspace hit rate, connected clients.
//!
//! Only `PING` and `INFO`: nothing that walks the keyspace (no `SCAN`,
//! no `KEYS`), so a probe costs the cache the same whatever it holds.
//! The URL must be `rediss://` (TLS, certificate checked) unless the host
//! is loopback or a Unix socket: the URL carries the password.

use std::collections::HashMap;

use futures::future::BoxFuture;
use redis::{ErrorKind, RedisError};
use tokio::time::Instant;

use monitoring_core::config::{ConfigError, Secret};
use monitoring_core::domain::probe_result::{Component, Measurement, Observation, Reason, Unit};
use monitoring_core::ports::Probe;

/// Warn / fail levels of the Redis measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheThresholds {
    /// Percent of `maxmemory` used.
    pub memory_utilization: (f64, f64),
    /// Percent of `maxclients` connected.
    pub client_utilization: (f64, f64),
}

impl Default for CacheThresholds {
    fn default() -> Self {
        CacheThresholds {
            memory_utilization: (80.0, 95.0),
            client_utilization: (80.0, 95.0),
        }
    }
}

pub struct RedisProbe {
    client: Option<redis::Client>,
    thresholds: CacheThresholds,
}

impl RedisProbe {
    /// `url` is `None` when no Redis is configured (`REDIS_URL` unset): the
    /// probe then reports `not_configured`.
    pub fn new(url: Option<&Secret>, thresholds: CacheThresholds) -> Result<Self, ConfigError> {
        let client = url
            .map(|u| {
                require_tls(u.expose()).map_err(|reason| ConfigError::InvalidSecret {
                    var: "REDIS_URL".into(),
                    reason,
                })?;
                redis::Client::open(u.expose()).map_err(|e| ConfigError::InvalidSecret {
                    var: "REDIS_URL".into(),
                    reason: format!("not a Redis URL ({:?})", e.kind()),
                })
            })
            .transpose()?;
        Ok(RedisProbe { client, thresholds })
    }

    async fn check(&self, client: &redis::Client) -> Result<Observation, Observation> {
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| failure(&e, Reason::Unreachable))?;
        let started = Instant::now();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| failure(&e, Reason::QueryFailed))?;
        let response_ms = started.elapsed().as_secs_f64() * 1000.0;
        let info: String = redis::cmd("INFO")
            .query_async(&mut conn)
            .await
            .map_err(|e| failure(&e, Reason::QueryFailed))?;
        let info = parse_info(&info);
        let mut measurements = vec![Measurement::new(
            "responseTime",
            response_ms,
            Unit::Milliseconds,
        )];
        measurements.extend(self.measure(&info));
        Ok(Observation::measured(measurements))
    }

    fn measure(&self, info: &HashMap<&str, f64>) -> Vec<Measurement> {
        let t = &self.thresholds;
        let get = |k: &str| info.get(k).copied();
        let mut out = Vec::new();
        if let Some(used) = get("used_memory") {
            out.push(Measurement::new("memoryUsed", used, Unit::Bytes));
            if let Some(max) = get("maxmemory").filter(|m| *m > 0.0) {
                out.push(
                    Measurement::new("memoryUtilization", 100.0 * used / max, Unit::Percent)
                        .rated_above(t.memory_utilization.0, t.memory_utilization.1),
                );
            }
        }
        if let Some(evicted) = get("evicted_keys") {
            out.push(Measurement::new("evictedKeys", evicted, Unit::Count));
        }
        if let (Some(hits), Some(misses)) = (get("keyspace_hits"), get("keyspace_misses"))
            && hits + misses > 0.0
        {
            out.push(Measurement::new(
                "hitRate",
                100.0 * hits / (hits + misses),
                Unit::Percent,
            ));
        }
        if let Some(clients) = get("connected_clients") {
            out.push(Measurement::new("connectedClients", clients, Unit::Count));
            if let Some(max) = get("maxclients").filter(|m| *m > 0.0) {
                out.push(
                    Measurement::new("clientUtilization", 100.0 * clients / max, Unit::Percent)
                        .rated_above(t.client_utilization.0, t.client_utilization.1),
                );
            }
        }
        out
    }
}

fn failure(err: &RedisError, otherwise: Reason) -> Observation {
    let reason = match err.kind() {
        ErrorKind::AuthenticationFailed => Reason::AuthenticationFailed,
        _ if err.is_io_error() || err.is_connection_refusal() => Reason::Unreachable,
        _ => otherwise,
    };
    Observation::failed(reason, err.to_string())
}

/// The numeric `key:value` lines of an `INFO` reply.
/// `rediss://` with the certificate checked, or a loopback host, or a
/// Unix socket. The reason never contains the URL (it holds the password).
fn require_tls(url: &str) -> Result<(), String> {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        // redis::Client::open names the problem.
        return Ok(());
    };
    match parsed.scheme() {
        "rediss" if parsed.fragment() == Some("insecure") => {
            Err("rediss://...#insecure turns certificate checks off; remove #insecure".into())
        }
        "rediss" | "unix" | "redis+unix" => Ok(()),
        "redis" => {
            let host = parsed
                .host_str()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err("redis:// (no TLS) is accepted only to a loopback host; use rediss://".into())
            }
        }
        _ => Ok(()),
    }
}

pub fn parse_info(info: &str) -> HashMap<&str, f64> {
    info.lines()
        .filter_map(|line| line.trim_end().split_once(':'))
        .filter_map(|(k, v)| v.parse::<f64>().ok().map(|v| (k, v)))
        .collect()
}

impl Probe for RedisProbe {
    fn component(&self) -> Component {
        Component::Redis
    }

    fn observe(&self) -> BoxFuture<'_, Observation> {
        Box::pin(async move {
            match &self.client {
                None => Observation::not_configured("REDIS_URL is not set"),
                Some(client) => self.check(client).await.unwrap_or_else(|failed| failed),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitoring_core::domain::probe_result::Status;

    const INFO: &str = "# Memory\r\nused_memory:900\r\nused_memory_human:900B\r\nmaxmemory:1000\r\n\
        # Stats\r\nevicted_keys:7\r\nkeyspace_hits:90\r\nkeyspace_misses:10\r\n\
        # Clients\r\nconnected_clients:3\r\nmaxclients:10000\r\n";

    #[test]
    fn info_lines_become_measurements() {
        let probe = RedisProbe::new(None, CacheThresholds::default()).unwrap();
        let info = parse_info(INFO);
        assert_eq!(info.get("used_memory"), Some(&900.0));
        assert!(!info.contains_key("used_memory_human"));
        let ms = probe.measure(&info);
        let by_name = |n: &str| ms.iter().find(|m| m.name == n).unwrap();
        assert_eq!(by_name("memoryUtilization").value, 90.0);
        assert_eq!(by_name("memoryUtilization").status, Status::Warn);
        assert_eq!(by_name("evictedKeys").value, 7.0);
        assert_eq!(by_name("hitRate").value, 90.0);
        assert_eq!(by_name("connectedClients").value, 3.0);
        assert_eq!(by_name("clientUtilization").status, Status::Pass);
    }

    #[test]
    fn no_maxmemory_means_no_utilization() {
        let probe = RedisProbe::new(None, CacheThresholds::default()).unwrap();
        let ms = probe.measure(&parse_info("used_memory:5\nmaxmemory:0\n"));
        assert!(ms.iter().all(|m| m.name != "memoryUtilization"));
    }

    #[test]
    fn invalid_url_names_the_variable_not_the_value() {
        let err = RedisProbe::new(
            Some(&Secret::new("http://:pw@x")),
            CacheThresholds::default(),
        )
        .err()
        .unwrap();
        let text = err.to_string();
        assert!(text.starts_with("REDIS_URL is invalid"), "{text}");
        assert!(!text.contains("pw"), "{text}");
    }

    #[test]
    fn a_remote_redis_needs_tls() {
        let probe =
            |url: &str| RedisProbe::new(Some(&Secret::new(url)), CacheThresholds::default());
        for ok in [
            "rediss://:pw@cache.example.com:6380",
            "redis://127.0.0.1:6379",
            "redis://localhost:6379/0",
            "redis://[::1]:6379",
        ] {
            assert!(probe(ok).is_ok(), "{ok}");
        }
        for bad in [
            "redis://:pw@cache.example.com:6379",
            "redis://:pw@10.0.0.7:6379",
            "rediss://:pw@cache.example.com:6380/#insecure",
        ] {
            let text = probe(bad).err().unwrap().to_string();
            assert!(text.starts_with("REDIS_URL is invalid"), "{text}");
            assert!(!text.contains("pw"), "{text}");
        }
    }

    /// Unset means off: no `REDIS_URL` is `not_configured`, not a failure.
    #[tokio::test]
    async fn unconfigured_redis_is_not_configured_not_failing() {
        let probe = RedisProbe::new(None, CacheThresholds::default()).unwrap();
        let obs = probe.observe().await;
        assert_eq!(obs.overall_status(), Status::NotConfigured);
        assert_eq!(obs.reason, None);
        assert_eq!(obs.detail.as_deref(), Some("REDIS_URL is not set"));
    }
}
