//! The `oauth` probe: the identity provider's OIDC discovery document must
//! name the configured issuer and point at a JWKS with at least one key.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use tokio::time::Instant;

use monitoring_core::config::ConfigError;
use monitoring_core::domain::probe_result::{
    Component, Measurement, Observation, Reason, Status, Unit,
};
use monitoring_core::ports::Probe;

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// The issuer the discovery document must name.
    pub issuer: String,
    pub discovery_url: String,
}

pub struct OidcProbe {
    http: reqwest::Client,
    settings: Option<OidcSettings>,
}

impl OidcProbe {
    pub fn new(settings: Option<OidcSettings>, timeout: Duration) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("blindspotx-monitoring/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Invalid {
                var: "OIDC_ISSUER".into(),
                value: String::new(),
                reason: format!("cannot build HTTP client: {e}"),
            })?;
        Ok(OidcProbe { http, settings })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, Observation> {
        let response = self.http.get(url).send().await.map_err(|e| {
            let reason = if e.is_timeout() {
                Reason::Timeout
            } else {
                Reason::Unreachable
            };
            Observation::failed(reason, format!("GET {url}: {e}"))
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(Observation::failed(
                Reason::UnexpectedResponse,
                format!("GET {url}: HTTP {status}"),
            ));
        }
        response.json::<T>().await.map_err(|e| {
            Observation::failed(
                Reason::UnexpectedResponse,
                format!("GET {url}: invalid document: {e}"),
            )
        })
    }

    async fn check(&self, settings: &OidcSettings) -> Result<Observation, Observation> {
        let started = Instant::now();
        let discovery: Discovery = self.get_json(&settings.discovery_url).await?;
        if discovery.issuer != settings.issuer {
            return Err(Observation::failed(
                Reason::IssuerMismatch,
                format!(
                    "discovery names issuer {:?}, expected {:?}",
                    discovery.issuer, settings.issuer
                ),
            ));
        }
        let jwks: Jwks = self.get_json(&discovery.jwks_uri).await?;
        let response_ms = started.elapsed().as_secs_f64() * 1000.0;
        let keys = jwks.keys.len() as f64;
        let mut observation = Observation::measured(vec![
            Measurement::new("responseTime", response_ms, Unit::Milliseconds),
            Measurement::new("signingKeys", keys, Unit::Count),
        ]);
        if jwks.keys.is_empty() {
            observation = observation.with_reason(
                Status::Fail,
                Reason::NoSigningKeys,
                format!("{} lists no keys", discovery.jwks_uri),
            );
        }
        Ok(observation)
    }
}

impl Probe for OidcProbe {
    fn component(&self) -> Component {
        Component::Oauth
    }

    fn observe(&self) -> BoxFuture<'_, Observation> {
        Box::pin(async move {
            match &self.settings {
                None => Observation::not_configured("OIDC_ISSUER is not set"),
                Some(settings) => self.check(settings).await.unwrap_or_else(|failed| failed),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unset means off: no `OIDC_ISSUER` is `not_configured`, not a failure.
    #[tokio::test]
    async fn unconfigured_oauth_is_not_configured_not_failing() {
        let probe = OidcProbe::new(None, Duration::from_secs(1)).unwrap();
        let obs = probe.observe().await;
        assert_eq!(obs.overall_status(), Status::NotConfigured);
        assert_eq!(obs.reason, None);
        assert_eq!(obs.detail.as_deref(), Some("OIDC_ISSUER is not set"));
    }
}
