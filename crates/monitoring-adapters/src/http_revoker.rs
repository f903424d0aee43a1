//! Revocation through the auth service's revoke endpoint: `POST <url>` with
//! `{"user_id", "incident_id", "reason"}` and `Authorization: Bearer
//! <service credential>`. 2xx is done; 5xx, 408, 429, timeouts and
//! connection errors are retried (bounded); any other 4xx is refused.
//!
//! The endpoint must be `https`: the request carries the service credential
//! and names the account to cut off. Plain `http` is accepted only to a
//! loopback host (the local stack's receiver), checked when the
//! configuration is read and again when the revoker is built.

use crate::webhook_http::RetryPolicy;
use monitoring_core::config::{ConfigError, Secret};
use monitoring_core::domain::scrub::Scrubber;
use monitoring_core::ports::{Revocation, RevokeError, Revoker};

/// Why a revoke endpoint is refused (the reason of a
/// `REVOKE_ENDPOINT_URL` configuration error).
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(endpoint).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(
            "http:// is accepted only to a loopback host; use https:// so the service credential is never sent in clear"
                .into(),
        ),
        other => Err(format!("scheme {other:?}: expected https://")),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub struct HttpRevoker {
    client: reqwest::Client,
    endpoint: String,
    credential: Secret,
    retry: RetryPolicy,
    scrubber: Scrubber,
}

impl HttpRevoker {
    pub fn new(
        endpoint: &str,
        credential: Secret,
        retry: RetryPolicy,
    ) -> Result<Self, ConfigError> {
        check_endpoint(endpoint).map_err(|reason| ConfigError::Invalid {
            var: "REVOKE_ENDPOINT_URL".into(),
            value: endpoint.to_owned(),
            reason,
        })?;
        let client = reqwest::Client::builder()
            .timeout(retry.timeout)
            .connect_timeout(retry.timeout)
            .user_agent(concat!("blindspotx-monitoring/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Invalid {
                var: "REVOKE_ENDPOINT_URL".into(),
                value: endpoint.to_owned(),
                reason: format!("cannot build HTTP client: {}", e.without_url()),
            })?;
        Ok(HttpRevoker {
            client,
            endpoint: endpoint.to_owned(),
            scrubber: Scrubber::new([credential.expose().to_owned()]),
            credential,
            retry: RetryPolicy {
                attempts: retry.attempts.max(1),
                ..retry
            },
        })
    }

    async fn once(&self, user_id: &str, incident_id: &str) -> Result<(), RevokeError> {
        let response = self
            .client
            .post(&self.endpoint)
            .bearer_auth(self.credential.expose())
            .json(&serde_json::json!({
                "user_id": user_id,
                "incident_id": incident_id,
                "reason": "blindspotx security incident",
            }))
            .send()
            .await
            .map_err(|e| {
                RevokeError::Unavailable(if e.is_timeout() {
                    "request timed out".to_owned()
                } else if e.is_connect() {
                    "connection failed".to_owned()
                } else {
                    "request failed".to_owned()
                })
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let detail = format!(
            "HTTP {}: {}",
            status.as_u16(),
            self.scrubber
                .scrub(&body.chars().take(300).collect::<String>())
        );
        if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
            Err(RevokeError::Unavailable(detail))
        } else {
            Err(RevokeError::Refused(detail))
        }
    }
}

impl Revoker for HttpRevoker {
    fn name(&self) -> &'static str {
        "http"
    }

    async fn revoke_user(
        &self,
        user_id: &str,
        incident_id: &str,
    ) -> Result<Revocation, RevokeError> {
        let mut attempt = 1;
        loop {
            match self.once(user_id, incident_id).await {
                Ok(()) => {
                    return Ok(Revocation {
                        detail: format!("auth service revoked every token of {user_id}"),
                        undo: format!(
                            "re-enable {user_id} in the auth service (admin API); revoked tokens cannot be restored, the user signs in again"
                        ),
                    });
                }
                Err(RevokeError::Unavailable(reason)) if attempt < self.retry.attempts => {
                    tracing::warn!(attempt, reason = %reason, "revoke endpoint failed; retrying");
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod endpoint_tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_accepted() {
        for ok in [
            "https://auth.example.com/internal/revoke",
            "http://127.0.0.1:8080/revoke",
            "http://localhost/revoke",
            "http://[::1]:9000/revoke",
        ] {
            assert_eq!(check_endpoint(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://auth.example.com/revoke",
            "http://10.0.0.5/revoke",
            "http://127.0.0.1.example.com/revoke",
            "ftp://auth.example.com/revoke",
            "auth.example.com/revoke",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
        let err = HttpRevoker::new(
            "http://auth.example.com/revoke",
            Secret::new("c"),
            RetryPolicy {
                attempts: 1,
                backoff: std::time::Duration::ZERO,
                timeout: std::time::Duration::from_secs(1),
            },
        )
        .err()
        .unwrap();
        assert!(
            err.to_string().starts_with("REVOKE_ENDPOINT_URL=")
                && err.to_string().contains("loopback"),
            "{err}"
        );
    }
}
