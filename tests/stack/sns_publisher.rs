//! The SNS publisher against moto, observed through subscribed SQS queues:
//! what is published arrives once, with its attributes; subscription filter
//! policies on those attributes work; FIFO topics get a group and dedup id;
//! an unreachable SNS is `Unavailable`, quickly. Incidents go out with
//! `MessageStructure=json`: an e-mail subject and plain-text body for
//! e-mail subscribers, the incident JSON unchanged for every other protocol
//! (what the notifier and the responder parse).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use monitoring_adapters::sns_publisher::{MAX_MESSAGE_BYTES, SnsPublisher};
use monitoring_core::ports::{IncidentPublisher, OutgoingMessage, PublishError};
use test_support::receiver::incident;
use test_support::sns::{
    create_topic, drain, subscribe_queue, subscribe_queue_enveloped, topic_with_queue,
    unreachable_publisher,
};
use test_support::stack::sdk;

fn message(rule: &str, category: &str, severity: &str, status: &str) -> OutgoingMessage {
    let body = serde_json::json!({
        "schema": "blindspotx.incident/v1",
        "rule": rule,
        "category": category,
        "severity": severity,
        "status": status,
    })
    .to_string();
    OutgoingMessage {
        body,
        attributes: BTreeMap::from([
            ("rule".to_owned(), rule.to_owned()),
            ("category".to_owned(), category.to_owned()),
            ("severity".to_owned(), severity.to_owned()),
            ("status".to_owned(), status.to_owned()),
        ]),
        dedup_id: format!("{rule}#{severity}#{status}"),
    }
}

#[tokio::test]
async fn a_published_message_arrives_once_with_its_attributes() {
    let sdk = sdk().await;
    let (topic, queue) = topic_with_queue(&sdk, false, None).await;
    let publisher = SnsPublisher::new(&sdk, &topic);
    assert!(!publisher.is_fifo());
    let sent = message("auth_failures", "security", "high", "firing");
    publisher.publish(&sent).await.unwrap();

    let delivered = drain(&sdk, &queue).await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let (body, attributes) = &delivered[0];
    assert_eq!(body, &sent.body, "raw delivery: the body as published");
    assert_eq!(attributes, &sent.attributes);
    assert!(drain(&sdk, &queue).await.is_empty(), "drained");
}

#[tokio::test]
async fn filter_policies_on_attributes_select_messages() {
    let sdk = sdk().await;
    let topic = create_topic(&sdk, false).await;
    let everything = subscribe_queue(&sdk, &topic, None).await;
    let pager = subscribe_queue(
        &sdk,
        &topic,
        Some(r#"{"category":["security"],"severity":["critical"]}"#),
    )
    .await;
    let publisher = SnsPublisher::new(&sdk, &topic);
    let wanted = message("brute_force", "security", "critical", "firing");
    for m in [
        message("auth_failures", "security", "high", "firing"),
        wanted.clone(),
        message("api_errors", "performance", "critical", "firing"),
        message("component_down", "system", "critical", "resolved"),
    ] {
        publisher.publish(&m).await.unwrap();
    }
    assert_eq!(drain(&sdk, &everything).await.len(), 4);
    let paged = drain(&sdk, &pager).await;
    assert_eq!(paged.len(), 1, "{paged:?}");
    assert_eq!(paged[0].0, wanted.body);
    assert_eq!(paged[0].1, wanted.attributes);
}

#[tokio::test]
async fn fifo_topics_get_a_group_and_the_dedup_id() {
    let sdk = sdk().await;
    let (topic, queue) = topic_with_queue(&sdk, true, None).await;
    let publisher = SnsPublisher::new(&sdk, &topic);
    assert!(publisher.is_fifo());
    let firing = message("auth_failures", "security", "high", "firing");
    // moto refuses a FIFO publish without MessageGroupId or
    // MessageDeduplicationId, so success shows both were sent.
    publisher.publish(&firing).await.unwrap();
    publisher.publish(&firing).await.unwrap();
    let resolved = message("auth_failures", "security", "high", "resolved");
    publisher.publish(&resolved).await.unwrap();
    let delivered = drain(&sdk, &queue).await;
    let bodies: Vec<&str> = delivered.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(
        bodies,
        [firing.body.as_str(), resolved.body.as_str()],
        "the FIFO queue drops the republished dedup id"
    );
}

#[tokio::test]
async fn oversized_messages_are_rejected_without_a_request() {
    let sdk = sdk().await;
    let (topic, queue) = topic_with_queue(&sdk, false, None).await;
    let mut big = message("auth_failures", "security", "high", "firing");
    big.body = "x".repeat(MAX_MESSAGE_BYTES);
    let err = SnsPublisher::new(&sdk, &topic)
        .publish(&big)
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Rejected(_)), "{err}");
    assert!(drain(&sdk, &queue).await.is_empty());
}

#[tokio::test]
async fn a_missing_topic_is_rejected_for_good() {
    // A deleted or misnamed topic is a deployment fault no retry fixes: the
    // engine moves the notice to the dead letters, which alarm, and the
    // runbook requeues it once the topic is back.
    let sdk = sdk().await;
    let topic = create_topic(&sdk, false).await;
    let missing = format!("{topic}-missing");
    let err = SnsPublisher::new(&sdk, missing)
        .publish(&message("auth_failures", "security", "high", "firing"))
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Rejected(_)), "{err}");
    assert!(err.to_string().contains("NotFound"), "{err}");
}

#[tokio::test]
async fn an_unreachable_sns_is_unavailable_quickly() {
    let sdk = sdk().await;
    let publisher = unreachable_publisher(
        &sdk,
        "arn:aws:sns:us-east-1:123456789012:blindspotx-incidents",
    );
    let started = Instant::now();
    let err = publisher
        .publish(&message("auth_failures", "security", "high", "firing"))
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Unavailable(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn incidents_carry_an_email_subject_and_keep_their_json_for_other_protocols() {
    use monitoring_core::domain::security_response::accept_incident;
    use monitoring_core::domain::security_response::payloads::{email_structure, email_subject};

    let sdk = sdk().await;
    let topic = create_topic(&sdk, false).await;
    let raw = subscribe_queue(&sdk, &topic, None).await;
    let enveloped = subscribe_queue_enveloped(&sdk, &topic).await;
    let firing = incident("5e1f0c2d3b4a59687766554433221100");
    let sent = firing.to_message();
    SnsPublisher::new(&sdk, &topic)
        .publish(&sent)
        .await
        .unwrap();

    // Raw delivery (SQS, and what Lambda's `Sns.Message` holds): the
    // incident JSON of `default`, byte for byte, with its attributes.
    let delivered = drain(&sdk, &raw).await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].0, sent.body);
    assert_eq!(delivered[0].1, sent.attributes);
    let mut rejected = BTreeMap::new();
    let parsed = accept_incident(&delivered[0].0, "m-1", &mut rejected)
        .expect("the notifier and the responder still parse it");
    assert_eq!(parsed, firing);

    // The envelope: SNS's Subject is the e-mail subject, and the Message
    // the JSON (only e-mail subscribers get the `email` text).
    let delivered = drain(&sdk, &enveloped).await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let envelope: serde_json::Value = serde_json::from_str(&delivered[0].0).unwrap();
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["Subject"], email_subject(&firing).as_str());
    assert!(
        envelope["Subject"]
            .as_str()
            .unwrap()
            .starts_with("[CRITICAL] brute_force firing for user: u-victim"),
        "{envelope}"
    );
    assert_eq!(envelope["Message"], sent.body.as_str());

    // What e-mail subscribers read: the plain text published as `email`.
    let structure = email_structure(&sent.body).unwrap();
    let text: serde_json::Value = serde_json::from_str(&structure.message).unwrap();
    assert!(
        text["email"]
            .as_str()
            .unwrap()
            .contains("Runbook: https://runbooks.example/brute_force.md"),
        "{text}"
    );
}
