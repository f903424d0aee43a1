//! incident-notifier against the local stack: the real HTTP channels
//! ([`HttpChannels`]) posting to a local receiver that records requests
//! (standing in for Slack, the webhook consumer and PagerDuty), and the real
//! delivery markers in a moto DynamoDB table.
//!
//! The issue's cases: the three payloads have the documented shape (the
//! webhook signature verifies with the key); a receiver answering 500 then
//! 200 gets exactly one successful delivery; a redelivered SNS message
//! sends nothing again; routing sends each severity where configured.
//! Beyond them: a 4xx is a permanent failure that fails the invocation,
//! and the retry sends only the channel that failed; a record of another
//! topic than the incidents topic is refused, counted and sent nowhere.
//! Microsoft Teams: an Adaptive Card message to the Workflows webhook,
//! routed by severity, retried on 5xx, never twice for one transition.

use std::sync::Arc;
use std::time::Duration;

use incident_notifier::{Notifier, NotifierError};
use monitoring_adapters::dynamodb_response::DynamoDeliveryLog;
use monitoring_adapters::webhook_http::{ChannelSettings, HttpChannels, RetryPolicy};
use monitoring_config::Secret;
use monitoring_core::domain::alerts::{Category, Severity, TransitionKind};
use monitoring_core::domain::security_response::Routing;
use monitoring_core::domain::security_response::payloads::verify_signature;
use monitoring_core::ports::SystemClock;
use test_support::receiver::{
    INCIDENTS_TOPIC, Receiver, incident, incidents_event, sns_event_from,
};
use test_support::stack::{create_table, dump_table, sdk};

const SIGNING_KEY: &str = "notifier-test-signing-key-0123456789";
const ROUTING_KEY: &str = "pd-routing-key-0123456789abcdef";

async fn notifier(receiver: &Receiver) -> (Notifier<HttpChannels, DynamoDeliveryLog>, String) {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let sender = HttpChannels::new(ChannelSettings {
        slack_webhook_url: Some(Secret::new(receiver.url("/slack"))),
        webhook_url: Some(Secret::new(receiver.url("/hook"))),
        webhook_signing_key: Some(Secret::new(SIGNING_KEY)),
        pagerduty_routing_key: Some(Secret::new(ROUTING_KEY)),
        pagerduty_events_url: receiver.url("/pagerduty"),
        retry: RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(20),
            timeout: Duration::from_secs(2),
        },
        // Teams and Alertmanager off here: their own tests below and in
        // tests/stack/alertmanager.rs.
        ..ChannelSettings::default()
    })
    .unwrap();
    (
        Notifier {
            incidents_topic: INCIDENTS_TOPIC.into(),
            routing: Arc::new(Routing::default_routing().unwrap()),
            sender,
            markers: DynamoDeliveryLog::new(&sdk, &table),
            clock: Arc::new(SystemClock),
        },
        table,
    )
}

#[tokio::test]
async fn slack_webhook_and_pagerduty_payloads_have_the_documented_shape() {
    let receiver = Receiver::start().await;
    let (n, table) = notifier(&receiver).await;
    let firing = incident("a1b2c3d4e5f60718293a4b5c6d7e8f90");
    let summary = n.handle(&incidents_event(&[&firing])).await.unwrap();
    assert_eq!(summary.delivered, 3, "{summary:?}");

    // Slack: Block Kit, header with severity and rule, the fields, links.
    let slack = receiver.requests_to("/slack");
    assert_eq!(slack.len(), 1);
    let m = slack[0].json();
    assert_eq!(slack[0].header("content-type"), "application/json");
    assert!(
        m["text"]
            .as_str()
            .unwrap()
            .starts_with("[CRITICAL] brute_force firing for user: u-victim")
    );
    let blocks = m["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    let header = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(
        header.contains("FIRING · CRITICAL · brute_force"),
        "{header}"
    );
    let fields: Vec<&str> = blocks[2]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "*Key*\nuser: u-victim",
            "*Count / threshold*\n10 / 10",
            "*Window*\n2 min",
            "*Episode*\n1",
            "*First event*\n2026-11-30T08:00:00.000Z",
            "*Last event*\n2026-11-30T08:01:48.000Z",
        ]
    );
    let links = blocks[3]["elements"][0]["text"].as_str().unwrap();
    assert!(
        links.contains("<https://dashboards.example/d/auth|Dashboard>"),
        "{links}"
    );
    assert!(
        links.contains("<https://runbooks.example/brute_force.md|Runbook>"),
        "{links}"
    );

    // Webhook: the incident JSON, signed over "<timestamp>.<body>".
    let hook = &receiver.requests_to("/hook")[0];
    assert_eq!(hook.body, firing.to_json().into_bytes());
    let ts: i64 = hook.header("x-blindspotx-timestamp").parse().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let sig = hook.header("x-blindspotx-signature");
    assert!(sig.starts_with("sha256="), "{sig}");
    verify_signature(SIGNING_KEY.as_bytes(), ts, &hook.body, sig, now).unwrap();
    assert!(verify_signature(b"another key", ts, &hook.body, sig, now).is_err());
    assert_eq!(hook.header("x-blindspotx-delivery"), firing.transition_id);

    // PagerDuty: trigger, dedup_key = incident id, severity mapped.
    let pd = receiver.requests_to("/pagerduty")[0].json();
    assert_eq!(pd["routing_key"], ROUTING_KEY);
    assert_eq!(pd["event_action"], "trigger");
    assert_eq!(pd["dedup_key"], firing.id.as_str());
    assert_eq!(pd["payload"]["severity"], "critical");
    assert_eq!(pd["payload"]["source"], "blindspotx-monitoring");
    assert_eq!(pd["payload"]["class"], "brute_force");
    assert_eq!(pd["payload"]["group"], "security");
    assert_eq!(pd["payload"]["timestamp"], "2026-11-30T08:01:48.000Z");

    // The resolution: Slack says so, PagerDuty resolves the same dedup_key.
    let mut resolved = firing.clone();
    resolved.status = TransitionKind::Resolved;
    resolved.transition_id = format!("{}:resolved", firing.id);
    n.handle(&incidents_event(&[&resolved])).await.unwrap();
    let slack = receiver.requests_to("/slack");
    assert_eq!(slack.len(), 2);
    let header = slack[1].json()["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(header.contains("RESOLVED"), "{header}");
    let pd = receiver.requests_to("/pagerduty")[1].json();
    assert_eq!(
        pd,
        serde_json::json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": firing.id})
    );

    // Markers, and no secret in the table.
    let dump = dump_table(&sdk().await, &table).await;
    assert!(
        dump.contains(&format!("{}:firing#pagerduty", firing.id)),
        "{dump}"
    );
    for secret in [SIGNING_KEY, ROUTING_KEY, "/slack", "/hook"] {
        assert!(!dump.contains(secret), "{secret} in {dump}");
    }
}

#[tokio::test]
async fn a_receiver_answering_500_then_200_gets_exactly_one_delivery() {
    let receiver = Receiver::start().await;
    let (n, _) = notifier(&receiver).await;
    receiver.script("/slack", &[500]);
    let mut medium = incident("00000000000000000000000000000500");
    medium.severity = Severity::Medium;
    let summary = n.handle(&incidents_event(&[&medium])).await.unwrap();
    assert_eq!(summary.delivered, 1, "{summary:?}");
    let statuses: Vec<u16> = receiver
        .requests_to("/slack")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [500, 200]);
    assert_eq!(receiver.accepted("/slack").len(), 1);
    // Medium goes to Slack only.
    assert!(receiver.requests_to("/hook").is_empty());
    assert!(receiver.requests_to("/pagerduty").is_empty());

    // SNS redelivers it: nothing is sent again.
    let again = n.handle(&incidents_event(&[&medium])).await.unwrap();
    assert_eq!((again.delivered, again.already_delivered), (0, 1));
    assert_eq!(receiver.requests_to("/slack").len(), 2);
}

#[tokio::test]
async fn a_redelivered_sns_message_sends_nothing_again() {
    let receiver = Receiver::start().await;
    let (n, _) = notifier(&receiver).await;
    let firing = incident("0000000000000000000000000000dup1");
    let event = incidents_event(&[&firing]);
    n.handle(&event).await.unwrap();
    assert_eq!(receiver.requests().len(), 3);
    for _ in 0..2 {
        let s = n.handle(&event).await.unwrap();
        assert_eq!((s.delivered, s.already_delivered), (0, 3), "{s:?}");
    }
    assert_eq!(receiver.requests().len(), 3);
    // A reminder of the same incident is a new transition: delivered again.
    let mut reminder = firing.clone();
    reminder.status = TransitionKind::Reminder;
    reminder.transition_id = format!("{}:reminder:1", firing.id);
    let s = n.handle(&incidents_event(&[&reminder])).await.unwrap();
    assert_eq!(s.delivered, 3);
}

#[tokio::test]
async fn routing_sends_each_severity_where_configured() {
    let receiver = Receiver::start().await;
    let (n, _) = notifier(&receiver).await;
    let mut all = Vec::new();
    for (n, severity) in [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ]
    .into_iter()
    .enumerate()
    {
        let mut i = incident(&format!("0000000000000000000000000000r{n:03}"));
        i.severity = severity;
        i.category = Category::System;
        i.rule = format!("rule_{}", severity.as_str());
        all.push(i);
    }
    let refs: Vec<_> = all.iter().collect();
    let s = n.handle(&incidents_event(&refs)).await.unwrap();
    assert_eq!(s.delivered, 3 + 2 + 1, "{s:?}");
    let rules = |path: &str| -> Vec<String> {
        let mut r: Vec<String> = receiver
            .requests_to(path)
            .iter()
            .map(|r| match path {
                "/hook" => r.json()["rule"].as_str().unwrap().to_owned(),
                "/pagerduty" => r.json()["payload"]["class"].as_str().unwrap().to_owned(),
                _ => r.json()["text"]
                    .as_str()
                    .unwrap()
                    .split(' ')
                    .nth(1)
                    .unwrap()
                    .to_owned(),
            })
            .collect();
        r.sort();
        r
    };
    assert_eq!(rules("/pagerduty"), ["rule_critical"]);
    assert_eq!(rules("/hook"), ["rule_critical", "rule_high"]);
    assert_eq!(
        rules("/slack"),
        ["rule_critical", "rule_high", "rule_medium"]
    );
}

#[tokio::test]
async fn a_4xx_is_permanent_and_the_retry_sends_only_that_channel() {
    let receiver = Receiver::start().await;
    let (n, _) = notifier(&receiver).await;
    receiver.script("/hook", &[400]);
    let firing = incident("0000000000000000000000000000f400");
    let event = incidents_event(&[&firing]);
    let err = n.handle(&event).await.unwrap_err();
    assert!(
        matches!(
            err,
            NotifierError::Delivery {
                failed: 1,
                refused: 1
            }
        ),
        "{err}"
    );
    // Refused once, not retried within the invocation.
    assert_eq!(receiver.requests_to("/hook").len(), 1);
    assert_eq!(receiver.accepted("/slack").len(), 1);
    assert_eq!(receiver.accepted("/pagerduty").len(), 1);
    // Lambda's retry: only the webhook is sent.
    let s = n.handle(&event).await.unwrap();
    assert_eq!((s.delivered, s.already_delivered), (1, 2), "{s:?}");
    assert_eq!(receiver.requests_to("/hook").len(), 2);
    assert_eq!(receiver.requests().len(), 4);
}

#[tokio::test]
async fn bad_messages_are_acknowledged_and_counted() {
    let receiver = Receiver::start().await;
    let (n, _) = notifier(&receiver).await;
    let event = test_support::receiver::sns_event(&[
        ("not json".to_owned(), Default::default()),
        (
            r#"{"schema":"blindspotx.incident/v2"}"#.to_owned(),
            Default::default(),
        ),
    ]);
    let s = n.handle(&event).await.unwrap();
    assert_eq!(s.rejected.get("invalid_json"), Some(&1));
    assert_eq!(s.rejected.get("wrong_schema"), Some(&1));
    assert!(receiver.requests().is_empty());
}

#[tokio::test]
async fn a_record_of_another_topic_is_refused_and_sent_nowhere() {
    let receiver = Receiver::start().await;
    let (n, table) = notifier(&receiver).await;
    let firing = incident("0000000000000000000000000000f403");
    let m = firing.to_message();
    let forged = sns_event_from(
        "arn:aws:sns:us-east-1:123456789012:someone-elses-topic",
        &[(m.body, m.attributes)],
    );
    let s = n.handle(&forged).await.unwrap();
    assert_eq!(s.rejected.get("wrong_topic"), Some(&1), "{s:?}");
    assert_eq!((s.incidents, s.delivered), (0, 0));
    assert!(receiver.requests().is_empty());
    assert!(!dump_table(&sdk().await, &table).await.contains("DELIVERY#"));
    // The same incident from the incidents topic goes out.
    let s = n.handle(&incidents_event(&[&firing])).await.unwrap();
    assert_eq!(s.delivered, 3, "{s:?}");
}

/// The sample events (`events/sns-incident-*.json`) are SNS events whose
/// messages are valid incidents, routed as their severity says.
#[tokio::test]
async fn the_sample_events_carry_valid_incidents() {
    let receiver = Receiver::start().await;
    let (n, _) = notifier(&receiver).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
    let mut delivered = Vec::new();
    for name in [
        "sns-incident-brute-force-critical.json",
        "sns-incident-brute-force-resolved.json",
        "sns-incident-auth-failures-high.json",
    ] {
        let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        let event: aws_lambda_events::event::sns::SnsEvent = serde_json::from_str(&text).unwrap();
        let s = n.handle(&event).await.unwrap();
        assert_eq!((s.incidents, s.rejected.len()), (1, 0), "{name}");
        delivered.push(s.delivered);
    }
    assert_eq!(delivered, [3, 3, 2]);
}

#[tokio::test]
async fn teams_gets_an_adaptive_card_routed_by_severity() {
    let receiver = Receiver::start().await;
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let sender = HttpChannels::new(ChannelSettings {
        teams_webhook_url: Some(Secret::new(receiver.url("/teams"))),
        retry: RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(20),
            timeout: Duration::from_secs(2),
        },
        ..ChannelSettings::default()
    })
    .unwrap();
    let n = Notifier {
        incidents_topic: INCIDENTS_TOPIC.into(),
        routing: Arc::new(Routing::default_routing().unwrap()),
        sender,
        markers: DynamoDeliveryLog::new(&sdk, &table),
        clock: Arc::new(SystemClock),
    };
    // Teams' Workflows answer 202; a 502 first is retried.
    receiver.script("/teams", &[502, 202]);
    let firing = incident("7ea3500000000000000000000000c0de");
    let s = n.handle(&incidents_event(&[&firing])).await.unwrap();
    assert_eq!((s.delivered, s.not_configured), (1, 4), "{s:?}");
    let statuses: Vec<u16> = receiver
        .requests_to("/teams")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [502, 202]);

    let posted = &receiver.requests_to("/teams")[1];
    assert_eq!(posted.header("content-type"), "application/json");
    let m = posted.json();
    assert_eq!(m["type"], "message");
    let attachments = m["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(
        attachments[0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachments[0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert_eq!(card["body"][0]["text"], "FIRING · CRITICAL · brute_force");
    let facts: Vec<(String, String)> = card["body"][2]["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["title"].as_str().unwrap().to_owned(),
                f["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(facts[0], ("Key".to_owned(), "user: u-victim".to_owned()));
    assert_eq!(
        facts[1],
        ("Count / threshold".to_owned(), "10 / 10".to_owned())
    );
    let actions: Vec<(&str, &str)> = card["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["title"].as_str().unwrap(), a["url"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("Dashboard", "https://dashboards.example/d/auth"),
            ("Runbook", "https://runbooks.example/brute_force.md")
        ]
    );

    // Redelivered: the marker keeps Teams from hearing it twice.
    let again = n.handle(&incidents_event(&[&firing])).await.unwrap();
    assert_eq!((again.delivered, again.already_delivered), (0, 1));
    assert!(
        dump_table(&sdk, &table)
            .await
            .contains(&format!("{}:firing#teams", firing.id))
    );

    // Routed like Slack: high and medium too, low not.
    for (n_, severity) in [Severity::High, Severity::Medium, Severity::Low]
        .into_iter()
        .enumerate()
    {
        let mut i = incident(&format!("7ea3500000000000000000000000d{n_:03}"));
        i.severity = severity;
        let s = n.handle(&incidents_event(&[&i])).await.unwrap();
        let to_teams = s
            .deliveries
            .iter()
            .filter(|d| d.channel.as_str() == "teams")
            .count();
        assert_eq!(
            to_teams,
            usize::from(severity != Severity::Low),
            "{severity:?}"
        );
    }
    assert_eq!(receiver.accepted("/teams").len(), 3);
}
