//! Configuration of incident-notifier, read once per cold start.
//!
//! Channel URLs and keys are secrets: each is given as `NAME` (local stack),
//! `NAME_SECRET_ARN` or `NAME_SSM_PARAMETER` (AWS), never as a plain
//! template parameter. A channel without its secret is off; the routing may
//! still name it (the start log lists the routed channels that are off).

use std::time::Duration;

use super::env::{ConfigError, Env};
use super::log_metrics::RulesSource;
use super::probe::DEFAULT_TABLE_NAME;
use super::secret::SecretSource;
use monitoring_adapters::dynamodb_response::DEFAULT_MARKER_TTL;
use monitoring_adapters::secrets::SecretResolver;
use monitoring_adapters::webhook_http::{ChannelSettings, PAGERDUTY_EVENTS_URL, RetryPolicy};
use monitoring_core::domain::security_response::{Routing, RoutingError};

/// Bounds of `DELIVERY_ATTEMPTS`: a Lambda invocation must end well within
/// its timeout, and SNS/Lambda retry the whole invocation anyway.
pub const MAX_DELIVERY_ATTEMPTS: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierConfig {
    /// `TABLE_NAME`: the delivery markers.
    pub table_name: String,
    /// `INCIDENTS_TOPIC_ARN` (required, locally too): records of any other
    /// topic are refused.
    pub incidents_topic_arn: String,
    /// `NOTIFIER_ROUTING_FILE` or `NOTIFIER_ROUTING_SSM_PARAMETER`, else the
    /// embedded `infra/notifier/routing.toml`.
    pub routing: RulesSource,
    /// `SLACK_WEBHOOK_URL`: the Slack incoming-webhook URL.
    pub slack_webhook_url: Option<SecretSource>,
    /// `WEBHOOK_URL`: the generic webhook.
    pub webhook_url: Option<SecretSource>,
    /// `WEBHOOK_SIGNING_KEY`: the HMAC-SHA256 key of the webhook signature
    /// (required with `WEBHOOK_URL`).
    pub webhook_signing_key: Option<SecretSource>,
    /// `PAGERDUTY_ROUTING_KEY`: the integration key of a PagerDuty service
    /// (Events API v2).
    pub pagerduty_routing_key: Option<SecretSource>,
    /// `PAGERDUTY_EVENTS_URL` (default PagerDuty's endpoint; tests point it
    /// at a local receiver).
    pub pagerduty_events_url: String,
    /// `TEAMS_WEBHOOK_URL`: the URL of a Teams Workflows webhook ("Post to
    /// a channel when a webhook request is received").
    pub teams_webhook_url: Option<SecretSource>,
    /// `ALERTMANAGER_URL`: the base URL of an Alertmanager
    /// (`http://alertmanager:9093`); unset, the channel is off.
    pub alertmanager_url: Option<SecretSource>,
    /// `DELIVERY_ATTEMPTS` (3), `DELIVERY_BACKOFF_MS` (500),
    /// `DELIVERY_TIMEOUT_MS` (5000).
    pub retry: RetryPolicy,
    /// `DELIVERY_MARKER_TTL_DAYS` (30): how long delivery markers are kept.
    pub marker_ttl: Duration,
}

impl NotifierConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = RetryPolicy::default();
        let attempts = env.parse_or::<u32>("DELIVERY_ATTEMPTS", defaults.attempts)?;
        if !(1..=MAX_DELIVERY_ATTEMPTS).contains(&attempts) {
            return Err(ConfigError::Invalid {
                var: "DELIVERY_ATTEMPTS".into(),
                value: attempts.to_string(),
                reason: format!("expected 1 to {MAX_DELIVERY_ATTEMPTS}"),
            });
        }
        let webhook_url = SecretSource::from_env(env, "WEBHOOK_URL")?;
        let webhook_signing_key = SecretSource::from_env(env, "WEBHOOK_SIGNING_KEY")?;
        if webhook_url.is_some() && webhook_signing_key.is_none() {
            return Err(ConfigError::Missing {
                var: "WEBHOOK_SIGNING_KEY".into(),
                hint: "the webhook is always signed: give the HMAC key (e.g. `openssl rand -hex 32`) as WEBHOOK_SIGNING_KEY, _SECRET_ARN or _SSM_PARAMETER",
            });
        }
        let pagerduty_events_url = env.string_or("PAGERDUTY_EVENTS_URL", PAGERDUTY_EVENTS_URL);
        if reqwest::Url::parse(&pagerduty_events_url).is_err() {
            return Err(ConfigError::Invalid {
                var: "PAGERDUTY_EVENTS_URL".into(),
                value: pagerduty_events_url,
                reason: "expected an http(s) URL".into(),
            });
        }
        let alertmanager_url = SecretSource::from_env(env, "ALERTMANAGER_URL")?;
        if let Some(SecretSource::Plain(url)) = &alertmanager_url
            && !matches!(reqwest::Url::parse(url.expose()), Ok(u) if u.scheme() == "http" || u.scheme() == "https")
        {
            return Err(ConfigError::Invalid {
                var: "ALERTMANAGER_URL".into(),
                value: url.expose().chars().take(200).collect(),
                reason: "expected the http(s) base URL of an Alertmanager, e.g. http://alertmanager:9093".into(),
            });
        }
        Ok(NotifierConfig {
            table_name: env.string_or("TABLE_NAME", DEFAULT_TABLE_NAME),
            incidents_topic_arn: super::incidents_topic_arn(env)?,
            routing: RulesSource::from_env_prefixed(env, "NOTIFIER_ROUTING")?,
            slack_webhook_url: SecretSource::from_env(env, "SLACK_WEBHOOK_URL")?,
            webhook_url,
            webhook_signing_key,
            pagerduty_routing_key: SecretSource::from_env(env, "PAGERDUTY_ROUTING_KEY")?,
            pagerduty_events_url,
            teams_webhook_url: SecretSource::from_env(env, "TEAMS_WEBHOOK_URL")?,
            alertmanager_url,
            retry: RetryPolicy {
                attempts,
                backoff: env.duration_or(
                    "DELIVERY_BACKOFF_MS",
                    defaults.backoff,
                    Duration::from_millis,
                )?,
                timeout: env.duration_or(
                    "DELIVERY_TIMEOUT_MS",
                    defaults.timeout,
                    Duration::from_millis,
                )?,
            },
            marker_ttl: env.duration_or("DELIVERY_MARKER_TTL_DAYS", DEFAULT_MARKER_TTL, |d| {
                Duration::from_secs(d.saturating_mul(24 * 3600))
            })?,
        })
    }

    /// Reads the channel secrets.
    pub async fn channel_settings(
        &self,
        secrets: &SecretResolver,
    ) -> Result<ChannelSettings, ConfigError> {
        Ok(ChannelSettings {
            slack_webhook_url: secrets
                .resolve_opt("SLACK_WEBHOOK_URL", self.slack_webhook_url.as_ref())
                .await?,
            webhook_url: secrets
                .resolve_opt("WEBHOOK_URL", self.webhook_url.as_ref())
                .await?,
            webhook_signing_key: secrets
                .resolve_opt("WEBHOOK_SIGNING_KEY", self.webhook_signing_key.as_ref())
                .await?,
            pagerduty_routing_key: secrets
                .resolve_opt("PAGERDUTY_ROUTING_KEY", self.pagerduty_routing_key.as_ref())
                .await?,
            pagerduty_events_url: self.pagerduty_events_url.clone(),
            teams_webhook_url: secrets
                .resolve_opt("TEAMS_WEBHOOK_URL", self.teams_webhook_url.as_ref())
                .await?,
            alertmanager_url: secrets
                .resolve_opt("ALERTMANAGER_URL", self.alertmanager_url.as_ref())
                .await?,
            retry: self.retry,
        })
    }
}

/// A routing file that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RoutingLoadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Routing(#[from] RoutingError),
}

/// The routing the notifier was configured with.
pub async fn load_routing(
    source: &RulesSource,
    secrets: &SecretResolver,
) -> Result<Routing, RoutingLoadError> {
    Ok(match source {
        RulesSource::Embedded => Routing::default_routing()?,
        RulesSource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            Routing::from_toml(&text, &path.display().to_string())?
        }
        RulesSource::SsmParameter(name) => {
            let text = secrets
                .resolve(
                    "NOTIFIER_ROUTING",
                    &SecretSource::SsmParameter(name.clone()),
                )
                .await?;
            Routing::from_toml(text.expose(), &format!("ssm:{name}"))?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:blindspotx-incidents";

    #[test]
    fn defaults() {
        let c =
            NotifierConfig::from_env(&Env::from_pairs([("INCIDENTS_TOPIC_ARN", TOPIC)])).unwrap();
        assert_eq!(c.incidents_topic_arn, TOPIC);
        assert_eq!(c.routing, RulesSource::Embedded);
        assert_eq!(c.retry, RetryPolicy::default());
        assert_eq!(c.pagerduty_events_url, PAGERDUTY_EVENTS_URL);
        assert!(c.slack_webhook_url.is_none() && c.pagerduty_routing_key.is_none());
        assert!(c.teams_webhook_url.is_none() && c.alertmanager_url.is_none());
        assert_eq!(c.marker_ttl, DEFAULT_MARKER_TTL);
        let on = NotifierConfig::from_env(&Env::from_pairs([
            ("INCIDENTS_TOPIC_ARN", TOPIC),
            ("ALERTMANAGER_URL", "http://127.0.0.1:9093"),
            (
                "TEAMS_WEBHOOK_URL",
                "https://prod.westeurope.logic.azure.com/workflows/x",
            ),
        ]))
        .unwrap();
        assert!(on.alertmanager_url.is_some() && on.teams_webhook_url.is_some());
    }

    #[test]
    fn secrets_and_overrides() {
        let c = NotifierConfig::from_env(&Env::from_pairs([
            (
                "SLACK_WEBHOOK_URL_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:s",
            ),
            ("WEBHOOK_URL", "http://127.0.0.1:9/hook"),
            ("WEBHOOK_SIGNING_KEY_SSM_PARAMETER", "/k"),
            ("DELIVERY_ATTEMPTS", "2"),
            ("DELIVERY_BACKOFF_MS", "10"),
            ("NOTIFIER_ROUTING_FILE", "r.toml"),
            ("INCIDENTS_TOPIC_ARN", TOPIC),
        ]))
        .unwrap();
        assert!(matches!(
            c.slack_webhook_url,
            Some(SecretSource::SecretsManager(_))
        ));
        assert_eq!(c.retry.attempts, 2);
        assert_eq!(c.retry.backoff, Duration::from_millis(10));
        assert_eq!(c.routing, RulesSource::File("r.toml".into()));
    }

    #[test]
    fn an_unsigned_webhook_and_bad_numbers_are_refused() {
        let err = NotifierConfig::from_env(&Env::from_pairs([
            ("WEBHOOK_URL", "http://x"),
            ("INCIDENTS_TOPIC_ARN", TOPIC),
        ]))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("WEBHOOK_SIGNING_KEY is required"),
            "{err}"
        );
        for (var, value) in [
            ("DELIVERY_ATTEMPTS", "0"),
            ("DELIVERY_ATTEMPTS", "11"),
            ("DELIVERY_BACKOFF_MS", "0"),
            ("PAGERDUTY_EVENTS_URL", "not a url"),
            ("ALERTMANAGER_URL", "alertmanager:9093"),
        ] {
            assert!(
                NotifierConfig::from_env(&Env::from_pairs([
                    (var, value),
                    ("INCIDENTS_TOPIC_ARN", TOPIC)
                ]))
                .is_err(),
                "{var}={value}"
            );
        }
        let err = NotifierConfig::from_env(&Env::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("INCIDENTS_TOPIC_ARN is required"),
            "{err}"
        );
    }
}
