//! One SNS delivery of incident messages: each incident transition goes to
//! the channels its (category, severity) is routed to, each channel once.
//!
//! For every record: the record's topic must be the configured incidents
//! topic (`INCIDENTS_TOPIC_ARN`; a record of another is refused as
//! `wrong_topic`, counted, logged and acknowledged); the body is checked
//! against `blindspotx.incident/v1`
//! (a bad one is counted by reason, logged and acknowledged: a retry cannot
//! fix it); suppressed transitions are skipped; then each routed channel is
//! checked against its delivery marker (`DELIVERY#<id>` /
//! `<transition>#<channel>`), sent with bounded retries, and marked after
//! it went out. A channel that still fails, a refusal (4xx) included, fails
//! the invocation: SNS and Lambda retry it, the markers keep the channels
//! that succeeded from hearing it twice, and after the last retry the
//! on-failure destination keeps the message.

pub mod deployed;

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::event::sns::SnsEvent;
use monitoring_core::domain::alerts::Incident;
use monitoring_core::domain::security_response::{
    Channel, Routing, accept_incident, count_refusal, from_topic,
};
use monitoring_core::ports::{ChannelSender, Clock, DeliveryError, DeliveryLog, StoreError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    /// Some channel did not take an incident: retry the message.
    #[error("{failed} deliveries failed ({refused} refused with 4xx): the message is retried")]
    Delivery { failed: usize, refused: usize },
    /// The delivery markers could not be read or written.
    #[error("delivery markers: {0}")]
    Store(#[from] StoreError),
}

/// One channel's delivery of one transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub incident_id: String,
    pub transition_id: String,
    pub channel: Channel,
    /// `delivered`, `already_delivered`, `not_configured`, `refused`,
    /// `unavailable`, `marker_failed`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an invocation did: logged, and the invocation's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NotifySummary {
    pub records: usize,
    pub incidents: usize,
    /// Rejected messages by reason (`wrong_topic`, `invalid_json`,
    /// `wrong_schema`).
    pub rejected: BTreeMap<&'static str, usize>,
    /// Suppressed transitions (silenced or inhibited), not delivered.
    pub suppressed: usize,
    pub delivered: usize,
    pub already_delivered: usize,
    /// Routed to a channel without URL or key.
    pub not_configured: usize,
    /// 4xx: permanent failures.
    pub refused: usize,
    /// Still failing after the retries.
    pub unavailable: usize,
    pub deliveries: Vec<DeliveryReport>,
}

impl NotifySummary {
    fn failed(&self) -> usize {
        self.refused + self.unavailable
    }
}

/// The notifier, built once per cold start.
pub struct Notifier<S, L> {
    /// The incidents topic: records of any other topic are refused.
    pub incidents_topic: String,
    pub routing: Arc<Routing>,
    pub sender: S,
    pub markers: L,
    pub clock: Arc<dyn Clock>,
}

impl<S: ChannelSender, L: DeliveryLog> Notifier<S, L> {
    /// The channels routed somewhere that have no URL or key.
    pub fn unconfigured_routed_channels(&self) -> Vec<Channel> {
        self.routing
            .used_channels()
            .into_iter()
            .filter(|c| !self.sender.configured(*c))
            .collect()
    }

    /// One SNS invocation.
    pub async fn handle(&self, event: &SnsEvent) -> Result<NotifySummary, NotifierError> {
        let mut summary = NotifySummary {
            records: event.records.len(),
            ..NotifySummary::default()
        };
        for record in &event.records {
            let topic = record.sns.topic_arn.as_str();
            if let Err(refusal) = from_topic(topic, &self.incidents_topic) {
                count_refusal(refusal, &record.sns.message_id, None, &mut summary.rejected);
                continue;
            }
            let Some(incident) = accept_incident(
                &record.sns.message,
                &record.sns.message_id,
                &mut summary.rejected,
            ) else {
                continue;
            };
            summary.incidents += 1;
            if !incident.is_published() {
                summary.suppressed += 1;
                continue;
            }
            self.deliver(&incident, &mut summary).await?;
        }
        log(&summary);
        if summary.failed() > 0 {
            return Err(NotifierError::Delivery {
                failed: summary.failed(),
                refused: summary.refused,
            });
        }
        Ok(summary)
    }

    async fn deliver(
        &self,
        incident: &Incident,
        summary: &mut NotifySummary,
    ) -> Result<(), StoreError> {
        let channels = self.routing.channels(incident.category, incident.severity);
        let results = futures::future::join_all(
            channels
                .iter()
                .map(|channel| self.deliver_one(*channel, incident)),
        )
        .await;
        let mut store_error = None;
        for (channel, result) in channels.iter().zip(results) {
            let (outcome, error) = match result {
                Ok(Outcome::Delivered) => {
                    summary.delivered += 1;
                    ("delivered", None)
                }
                Ok(Outcome::Already) => {
                    summary.already_delivered += 1;
                    ("already_delivered", None)
                }
                Ok(Outcome::Failed(DeliveryError::NotConfigured)) => {
                    summary.not_configured += 1;
                    ("not_configured", None)
                }
                Ok(Outcome::Failed(e @ DeliveryError::Refused { .. })) => {
                    summary.refused += 1;
                    ("refused", Some(e.to_string()))
                }
                Ok(Outcome::Failed(e)) => {
                    summary.unavailable += 1;
                    ("unavailable", Some(e.to_string()))
                }
                Err(e) => {
                    let text = e.to_string();
                    store_error.get_or_insert(e);
                    ("marker_failed", Some(text))
                }
            };
            if let Some(error) = &error {
                tracing::warn!(
                    channel = channel.as_str(),
                    incident = %incident.id,
                    transition = %incident.transition_id,
                    rule = %incident.rule,
                    outcome,
                    error = %error,
                    "incident delivery failed"
                );
            }
            summary.deliveries.push(DeliveryReport {
                incident_id: incident.id.clone(),
                transition_id: incident.transition_id.clone(),
                channel: *channel,
                outcome,
                error,
            });
        }
        match store_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn deliver_one(
        &self,
        channel: Channel,
        incident: &Incident,
    ) -> Result<Outcome, StoreError> {
        if !self.sender.configured(channel) {
            return Ok(Outcome::Failed(DeliveryError::NotConfigured));
        }
        if self
            .markers
            .delivered(&incident.id, &incident.transition_id, channel)
            .await?
        {
            return Ok(Outcome::Already);
        }
        if let Err(e) = self.sender.send(channel, incident).await {
            return Ok(Outcome::Failed(e));
        }
        self.markers
            .mark_delivered(
                &incident.id,
                &incident.transition_id,
                channel,
                self.clock.now(),
            )
            .await?;
        Ok(Outcome::Delivered)
    }
}

enum Outcome {
    Delivered,
    Already,
    Failed(DeliveryError),
}

fn log(summary: &NotifySummary) {
    let outcome = serde_json::to_string(summary).unwrap_or_default();
    tracing::info!(
        records = summary.records,
        incidents = summary.incidents,
        rejected = summary.rejected.values().sum::<usize>(),
        delivered = summary.delivered,
        already_delivered = summary.already_delivered,
        not_configured = summary.not_configured,
        refused = summary.refused,
        unavailable = summary.unavailable,
        %outcome,
        "incident notifications"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use monitoring_core::domain::alerts::{INCIDENT_SCHEMA, Severity, TransitionKind};
    use monitoring_core::ports::SystemClock;

    use super::*;

    /// Records sends; fails a channel as told.
    #[derive(Default)]
    struct FakeSender {
        sent: Mutex<Vec<(Channel, String)>>,
        fail: Option<(Channel, DeliveryError)>,
        off: Vec<Channel>,
    }

    impl ChannelSender for FakeSender {
        fn configured(&self, channel: Channel) -> bool {
            !self.off.contains(&channel)
        }
        async fn send(&self, channel: Channel, incident: &Incident) -> Result<(), DeliveryError> {
            if let Some((c, e)) = &self.fail
                && *c == channel
            {
                return Err(e.clone());
            }
            self.sent
                .lock()
                .unwrap()
                .push((channel, incident.transition_id.clone()));
            Ok(())
        }
    }

    #[derive(Default)]
    struct Markers(Mutex<Vec<String>>);

    impl DeliveryLog for Markers {
        async fn delivered(&self, i: &str, t: &str, c: Channel) -> Result<bool, StoreError> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .contains(&format!("{i}|{t}|{}", c.as_str())))
        }
        async fn mark_delivered(
            &self,
            i: &str,
            t: &str,
            c: Channel,
            _: time::OffsetDateTime,
        ) -> Result<(), StoreError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("{i}|{t}|{}", c.as_str()));
            Ok(())
        }
    }

    fn incident(severity: &str) -> String {
        serde_json::json!({
            "schema": INCIDENT_SCHEMA, "id": "i1", "episode": 1, "transition_id": "i1:firing",
            "status": "firing", "rule": "r", "category": "security", "severity": severity,
            "key": "k", "count": 5, "threshold": 5, "window_seconds": 60,
            "first_event_at": "2026-11-30T08:00:00.000Z", "last_event_at": "2026-11-30T08:00:00.000Z",
            "transition_at": "2026-11-30T08:00:00.000Z", "samples": [],
            "dashboard_url": "https://d", "runbook_url": "https://runbooks.example/r.md"
        })
        .to_string()
    }

    fn event(messages: &[String]) -> SnsEvent {
        let records: Vec<serde_json::Value> = messages
            .iter()
            .enumerate()
            .map(|(n, m)| {
                serde_json::json!({
                    "EventSource": "aws:sns", "EventVersion": "1.0",
                    "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:t:s",
                    "Sns": {
                        "Type": "Notification", "MessageId": format!("m{n}"),
                        "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
                        "Timestamp": "2026-11-30T08:00:00.000Z", "SignatureVersion": "1",
                        "Signature": "x", "SigningCertUrl": "https://x", "UnsubscribeUrl": "https://x",
                        "Message": m, "MessageAttributes": {}
                    }
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:t";

    fn notifier(sender: FakeSender) -> Notifier<FakeSender, Markers> {
        Notifier {
            incidents_topic: TOPIC.into(),
            routing: Arc::new(Routing::default_routing().unwrap()),
            sender,
            markers: Markers::default(),
            clock: Arc::new(SystemClock),
        }
    }

    #[tokio::test]
    async fn routes_by_severity_and_never_twice() {
        let n = notifier(FakeSender::default());
        let s = n.handle(&event(&[incident("critical")])).await.unwrap();
        assert_eq!(s.delivered, 5);
        let again = n.handle(&event(&[incident("critical")])).await.unwrap();
        assert_eq!((again.delivered, again.already_delivered), (0, 5));
        assert_eq!(n.sender.sent.lock().unwrap().len(), 5);
        // Low severity reaches only Alertmanager, which routes for itself.
        let low = n.handle(&event(&[incident("low")])).await.unwrap();
        let channels: Vec<Channel> = low.deliveries.iter().map(|d| d.channel).collect();
        assert_eq!(channels, [Channel::Alertmanager]);
        let _ = (Severity::Low, TransitionKind::Firing);
    }

    #[tokio::test]
    async fn bad_messages_are_counted_and_acknowledged() {
        let n = notifier(FakeSender::default());
        let s = n
            .handle(&event(&["{".into(), r#"{"schema":"x/v9"}"#.into()]))
            .await
            .unwrap();
        assert_eq!(s.rejected.get("invalid_json"), Some(&1));
        assert_eq!(s.rejected.get("wrong_schema"), Some(&1));
    }

    #[tokio::test]
    async fn a_record_of_another_topic_is_refused_and_counted() {
        let n = notifier(FakeSender::default());
        let mut e = event(&[incident("critical"), incident("critical")]);
        e.records[0].sns.topic_arn = "arn:aws:sns:us-east-1:123456789012:elsewhere".into();
        let s = n.handle(&e).await.unwrap();
        assert_eq!(s.rejected.get("wrong_topic"), Some(&1));
        assert_eq!((s.incidents, s.delivered), (1, 5));
    }

    #[tokio::test]
    async fn a_failing_channel_fails_the_invocation_and_the_others_are_kept() {
        let n = notifier(FakeSender {
            fail: Some((
                Channel::Pagerduty,
                DeliveryError::Refused {
                    status: 400,
                    detail: "bad".into(),
                },
            )),
            ..FakeSender::default()
        });
        let err = n.handle(&event(&[incident("critical")])).await.unwrap_err();
        assert!(matches!(
            err,
            NotifierError::Delivery {
                failed: 1,
                refused: 1
            }
        ));
        assert_eq!(n.markers.0.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn unconfigured_channels_are_reported_not_failed() {
        let n = notifier(FakeSender {
            off: vec![Channel::Pagerduty],
            ..FakeSender::default()
        });
        assert_eq!(n.unconfigured_routed_channels(), [Channel::Pagerduty]);
        let s = n.handle(&event(&[incident("critical")])).await.unwrap();
        assert_eq!((s.delivered, s.not_configured), (4, 1));
    }
}
