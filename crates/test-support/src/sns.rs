//! Observing SNS in the local stack: a throwaway topic with SQS queues
//! subscribed to it (raw delivery, so a queue message is exactly the
//! published body and its attributes), and a drain that reads a queue empty.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use monitoring_adapters::sns_publisher::SnsPublisher;

use crate::stack::unique;

/// One delivered message: the body and its string message attributes.
pub type Delivered = (String, BTreeMap<String, String>);

/// A fresh topic (FIFO when `fifo`, with content-based dedup off so the
/// publisher's dedup id is what counts). Returns its ARN.
pub async fn create_topic(sdk: &SdkConfig, fifo: bool) -> String {
    let client = aws_sdk_sns::Client::new(sdk);
    let mut request = client.create_topic();
    if fifo {
        request = request
            .name(format!("{}.fifo", unique("test-topic")))
            .attributes("FifoTopic", "true")
            .attributes("ContentBasedDeduplication", "false");
    } else {
        request = request.name(unique("test-topic"));
    }
    request
        .send()
        .await
        .expect("create topic in moto")
        .topic_arn()
        .expect("topic ARN")
        .to_owned()
}

/// A fresh queue subscribed to `topic_arn` with raw delivery and, when
/// given, a filter policy (JSON, on message attributes). A FIFO topic gets
/// a FIFO queue, the only kind it can deliver to. Returns the queue URL.
pub async fn subscribe_queue(
    sdk: &SdkConfig,
    topic_arn: &str,
    filter_policy: Option<&str>,
) -> String {
    subscribe(sdk, topic_arn, filter_policy, true).await
}

/// A fresh queue subscribed to `topic_arn` without raw delivery: each
/// message is SNS's JSON envelope (`Type`, `Subject`, `Message`, ...), as a
/// Lambda or an e-mail-to-queue bridge sees it.
pub async fn subscribe_queue_enveloped(sdk: &SdkConfig, topic_arn: &str) -> String {
    subscribe(sdk, topic_arn, None, false).await
}

async fn subscribe(
    sdk: &SdkConfig,
    topic_arn: &str,
    filter_policy: Option<&str>,
    raw: bool,
) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let fifo = topic_arn.ends_with(".fifo");
    let mut create = sqs.create_queue();
    if fifo {
        create = create
            .queue_name(format!("{}.fifo", unique("test-queue")))
            .attributes(QueueAttributeName::FifoQueue, "true");
    } else {
        create = create.queue_name(unique("test-queue"));
    }
    let queue_url = create
        .send()
        .await
        .expect("create queue in moto")
        .queue_url()
        .expect("queue URL")
        .to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("queue ARN");
    let mut subscribe = aws_sdk_sns::Client::new(sdk)
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", if raw { "true" } else { "false" });
    if let Some(policy) = filter_policy {
        subscribe = subscribe
            .attributes("FilterPolicy", policy)
            .attributes("FilterPolicyScope", "MessageAttributes");
    }
    subscribe.send().await.expect("subscribe queue to topic");
    queue_url
}

/// A fresh topic with one subscribed queue: `(topic ARN, queue URL)`.
pub async fn topic_with_queue(
    sdk: &SdkConfig,
    fifo: bool,
    filter_policy: Option<&str>,
) -> (String, String) {
    let topic = create_topic(sdk, fifo).await;
    let queue = subscribe_queue(sdk, &topic, filter_policy).await;
    (topic, queue)
}

/// Every message now in the queue, in arrival order, deleted as read. moto
/// delivers SNS to SQS during the Publish call itself, so what was
/// published before the call is there; the drain stops at the first empty
/// receive.
pub async fn drain(sdk: &SdkConfig, queue_url: &str) -> Vec<Delivered> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut delivered = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(0)
            .send()
            .await
            .expect("receive from the test queue");
        let messages = out.messages();
        if messages.is_empty() {
            return delivered;
        }
        for m in messages {
            let attributes = m
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_owned()))
                .collect();
            delivered.push((m.body().unwrap_or_default().to_owned(), attributes));
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete from the test queue");
            }
        }
    }
}

/// Every message the queue receives until it has stayed empty for two polls
/// in a row, `pause` apart, deleted as read: a bounded wait, so counting
/// "exactly one" also catches a late duplicate.
///
/// Short polls with a pause on this side rather than SQS long polling: the
/// local moto handles one request at a time (scripts/moto_server.py), so a
/// long poll on an empty queue would hold every other request, the Publish
/// that would fill it included, for its whole wait.
pub async fn drain_settled(
    sdk: &SdkConfig,
    queue_url: &str,
    pause: std::time::Duration,
) -> Vec<Delivered> {
    let mut delivered = Vec::new();
    let mut empty_polls = 0;
    loop {
        let got = drain(sdk, queue_url).await;
        if got.is_empty() {
            empty_polls += 1;
            if empty_polls == 2 {
                return delivered;
            }
        } else {
            empty_polls = 0;
            delivered.extend(got);
        }
        tokio::time::sleep(pause).await;
    }
}

/// An SNS client pointed at a closed port, with short timeouts: every
/// publication fails as unavailable, quickly.
pub fn unreachable_publisher(sdk: &SdkConfig, topic: &str) -> SnsPublisher {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
        // Dropped here: the port is closed, connections are refused.
    };
    let config = aws_sdk_sns::config::Builder::from(sdk)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_timeout(Duration::from_secs(2))
                .build(),
        )
        .build();
    SnsPublisher::from_client(aws_sdk_sns::Client::from_conf(config), topic)
}
