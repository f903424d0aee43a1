//! The notifier's HTTP channels: Slack incoming webhook, Microsoft Teams
//! Workflows webhook, the signed generic webhook, PagerDuty Events API v2
//! and Alertmanager's v2 API, with bounded retries.
//!
//! Each send tries up to `attempts` times, waiting `backoff`, `2 × backoff`,
//! ... between tries, on timeouts, connection errors, HTTP 5xx, 408 and 429.
//! Any other 4xx is a [`DeliveryError::Refused`] at once. Error texts never
//! carry a URL or key: reqwest's URL is dropped and response bodies are
//! scrubbed of the configured secrets and of secret shapes.

use std::time::Duration;

use monitoring_core::config::Secret;
use monitoring_core::domain::alerts::Incident;
use monitoring_core::domain::scrub::Scrubber;
use monitoring_core::domain::security_response::Channel;
use monitoring_core::domain::security_response::payloads::{
    DELIVERY_HEADER, SIGNATURE_HEADER, Signer, TIMESTAMP_HEADER, alertmanager_alerts,
    pagerduty_event, slack_message, teams_message,
};
use monitoring_core::ports::{ChannelSender, DeliveryError};

/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// How hard a send tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per send, the first included (at least 1).
    pub attempts: u32,
    /// Wait before the second try; doubled before each next one.
    pub backoff: Duration,
    /// Per request, connection included.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed try number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
    }
}

/// The resolved channel settings (secrets already read).
#[derive(Debug, Clone, Default)]
pub struct ChannelSettings {
    pub slack_webhook_url: Option<Secret>,
    pub webhook_url: Option<Secret>,
    pub webhook_signing_key: Option<Secret>,
    pub pagerduty_routing_key: Option<Secret>,
    /// Where PagerDuty events go ([`PAGERDUTY_EVENTS_URL`] unless a test
    /// points it at a local receiver).
    pub pagerduty_events_url: String,
    /// The Teams Workflows webhook URL (it carries its own signature).
    pub teams_webhook_url: Option<Secret>,
    /// The Alertmanager base URL (`http://alertmanager:9093`); alerts go to
    /// `<base>/api/v2/alerts`.
    pub alertmanager_url: Option<Secret>,
    pub retry: RetryPolicy,
}

/// `<base>/api/v2/alerts`, whether or not the base already names the path.
pub fn alertmanager_alerts_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/api/v2/alerts") {
        base.to_owned()
    } else {
        format!("{base}/api/v2/alerts")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelSetupError {
    #[error("WEBHOOK_URL is set but WEBHOOK_SIGNING_KEY is not: webhook bodies are always signed")]
    UnsignedWebhook,
    #[error("WEBHOOK_SIGNING_KEY: {0}")]
    SigningKey(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// The HTTP channels, built once per cold start.
#[derive(Clone)]
pub struct HttpChannels {
    client: reqwest::Client,
    slack: Option<Secret>,
    webhook: Option<(Secret, Signer)>,
    pagerduty: Option<(Secret, String)>,
    teams: Option<Secret>,
    /// The full `/api/v2/alerts` URL.
    alertmanager: Option<Secret>,
    retry: RetryPolicy,
    scrubber: Scrubber,
}

impl std::fmt::Debug for HttpChannels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpChannels")
            .field("slack", &self.slack.is_some())
            .field("webhook", &self.webhook.is_some())
            .field("pagerduty", &self.pagerduty.is_some())
            .field("teams", &self.teams.is_some())
            .field("alertmanager", &self.alertmanager.is_some())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// One request: the URL and the JSON body, and for the webhook its signer.
struct Request<'a> {
    url: &'a str,
    body: Vec<u8>,
    signer: Option<&'a Signer>,
    delivery_id: &'a str,
}

impl HttpChannels {
    pub fn new(settings: ChannelSettings) -> Result<Self, ChannelSetupError> {
        let webhook = match (settings.webhook_url, settings.webhook_signing_key.as_ref()) {
            (Some(url), Some(key)) => {
                let signer = Signer::new(key.expose().as_bytes())
                    .map_err(|e| ChannelSetupError::SigningKey(e.to_string()))?;
                Some((url, signer))
            }
            (Some(_), None) => return Err(ChannelSetupError::UnsignedWebhook),
            (None, _) => None,
        };
        let pagerduty = settings.pagerduty_routing_key.map(|k| {
            let url = if settings.pagerduty_events_url.is_empty() {
                PAGERDUTY_EVENTS_URL.to_owned()
            } else {
                settings.pagerduty_events_url.clone()
            };
            (k, url)
        });
        let alertmanager = settings
            .alertmanager_url
            .map(|base| Secret::new(alertmanager_alerts_url(base.expose())));
        let secrets: Vec<String> = [
            settings.slack_webhook_url.as_ref(),
            webhook.as_ref().map(|(u, _)| u),
            settings.webhook_signing_key.as_ref(),
            pagerduty.as_ref().map(|(k, _)| k),
            settings.teams_webhook_url.as_ref(),
            alertmanager.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|s| s.expose().to_owned())
        .collect();
        let client = reqwest::Client::builder()
            .timeout(settings.retry.timeout)
            .connect_timeout(settings.retry.timeout)
            .user_agent(concat!("blindspotx-monitoring/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ChannelSetupError::Client(e.without_url().to_string()))?;
        Ok(HttpChannels {
            client,
            slack: settings.slack_webhook_url,
            webhook,
            pagerduty,
            teams: settings.teams_webhook_url,
            alertmanager,
            retry: RetryPolicy {
                attempts: settings.retry.attempts.max(1),
                ..settings.retry
            },
            scrubber: Scrubber::new(secrets),
        })
    }

    async fn post_with_retries(
        &self,
        channel: Channel,
        req: Request<'_>,
    ) -> Result<(), DeliveryError> {
        let mut attempt = 1;
        loop {
            match self.post_once(&req).await {
                Ok(()) => return Ok(()),
                Err(DeliveryError::Unavailable(reason)) if attempt < self.retry.attempts => {
                    let wait = self.retry.delay(attempt);
                    tracing::warn!(
                        channel = channel.as_str(),
                        attempt,
                        retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        reason = %reason,
                        "delivery failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn post_once(&self, req: &Request<'_>) -> Result<(), DeliveryError> {
        let mut builder = self
            .client
            .post(req.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(DELIVERY_HEADER, req.delivery_id);
        if let Some(signer) = req.signer {
            let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
            builder = builder
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, signer.sign(timestamp, &req.body));
        }
        let response = builder
            .body(req.body.clone())
            .send()
            .await
            .map_err(|e| DeliveryError::Unavailable(describe(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let detail = self
            .scrubber
            .scrub(&body.chars().take(300).collect::<String>());
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            Err(DeliveryError::Unavailable(format!(
                "HTTP {}: {detail}",
                status.as_u16()
            )))
        } else {
            Err(DeliveryError::Refused {
                status: status.as_u16(),
                detail,
            })
        }
    }
}

/// reqwest's kinds, without the URL (a Slack webhook URL is a secret).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "request timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else if e.is_request() {
        "request failed".to_owned()
    } else if e.is_body() || e.is_decode() {
        "unreadable response".to_owned()
    } else {
        "HTTP error".to_owned()
    }
}

impl ChannelSender for HttpChannels {
    fn configured(&self, channel: Channel) -> bool {
        match channel {
            Channel::Slack => self.slack.is_some(),
            Channel::Webhook => self.webhook.is_some(),
            Channel::Pagerduty => self.pagerduty.is_some(),
            Channel::Teams => self.teams.is_some(),
            Channel::Alertmanager => self.alertmanager.is_some(),
        }
    }

    async fn send(&self, channel: Channel, incident: &Incident) -> Result<(), DeliveryError> {
        let (url, body, signer) = match channel {
            Channel::Slack => {
                let url = self.slack.as_ref().ok_or(DeliveryError::NotConfigured)?;
                (
                    url.expose(),
                    slack_message(incident).to_string().into_bytes(),
                    None,
                )
            }
            Channel::Webhook => {
                let (url, signer) = self.webhook.as_ref().ok_or(DeliveryError::NotConfigured)?;
                (url.expose(), incident.to_json().into_bytes(), Some(signer))
            }
            Channel::Pagerduty => {
                let (key, url) = self
                    .pagerduty
                    .as_ref()
                    .ok_or(DeliveryError::NotConfigured)?;
                (
                    url.as_str(),
                    pagerduty_event(incident, key.expose())
                        .to_string()
                        .into_bytes(),
                    None,
                )
            }
            Channel::Teams => {
                let url = self.teams.as_ref().ok_or(DeliveryError::NotConfigured)?;
                (
                    url.expose(),
                    teams_message(incident).to_string().into_bytes(),
                    None,
                )
            }
            Channel::Alertmanager => {
                let url = self
                    .alertmanager
                    .as_ref()
                    .ok_or(DeliveryError::NotConfigured)?;
                (
                    url.expose(),
                    alertmanager_alerts(incident).to_string().into_bytes(),
                    None,
                )
            }
        };
        self.post_with_retries(
            channel,
            Request {
                url,
                body,
                signer,
                delivery_id: &incident.transition_id,
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles() {
        let p = RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(100),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(3), Duration::from_millis(400));
    }

    #[test]
    fn alertmanager_urls_get_the_alerts_path_once() {
        for base in [
            "http://am:9093",
            "http://am:9093/",
            "http://am:9093/api/v2/alerts",
        ] {
            assert_eq!(
                alertmanager_alerts_url(base),
                "http://am:9093/api/v2/alerts"
            );
        }
        assert_eq!(
            alertmanager_alerts_url("https://x/am/"),
            "https://x/am/api/v2/alerts"
        );
    }

    #[test]
    fn a_webhook_needs_its_signing_key() {
        let unsigned = HttpChannels::new(ChannelSettings {
            webhook_url: Some(Secret::new("https://hooks.example/x")),
            ..ChannelSettings::default()
        });
        assert!(matches!(unsigned, Err(ChannelSetupError::UnsignedWebhook)));
        let ok = HttpChannels::new(ChannelSettings {
            slack_webhook_url: Some(Secret::new("https://hooks.slack.com/services/T/B/x")),
            ..ChannelSettings::default()
        })
        .unwrap();
        assert!(ok.configured(Channel::Slack));
        assert!(!ok.configured(Channel::Webhook) && !ok.configured(Channel::Pagerduty));
        assert!(!ok.configured(Channel::Teams) && !ok.configured(Channel::Alertmanager));
        assert!(!format!("{ok:?}").contains("hooks.slack.com"));
    }
}
