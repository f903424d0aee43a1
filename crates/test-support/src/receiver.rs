//! A local HTTP receiver standing in for Slack, a webhook consumer,
//! PagerDuty or the auth service's revoke endpoint: it records every
//! request (path, headers, body) and answers scripted statuses per path
//! (200 once the script is used up).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sns::SnsEvent;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use tokio::net::TcpListener;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// The status the receiver answered.
    pub status: u16,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    scripts: HashMap<String, VecDeque<u16>>,
}

/// The receiver; it runs until the test ends.
#[derive(Clone)]
pub struct Receiver {
    base: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .fallback(record)
            .with_state(inner.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            base: format!("http://{addr}"),
            inner,
        }
    }

    /// The URL of `path` (`/slack`, `/hook`, ...).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The next answers of `path`, in order.
    pub fn script(&self, path: &str, statuses: &[u16]) {
        self.inner
            .lock()
            .unwrap()
            .scripts
            .entry(path.to_owned())
            .or_default()
            .extend(statuses);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// The requests of `path` answered with a 2xx.
    pub fn accepted(&self, path: &str) -> Vec<Recorded> {
        self.requests_to(path)
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }
}

async fn record(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut inner = inner.lock().unwrap();
    let path = uri.path().to_owned();
    let status = inner
        .scripts
        .get_mut(&path)
        .and_then(VecDeque::pop_front)
        .unwrap_or(200);
    inner.requests.push(Recorded {
        path,
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: body.to_vec(),
        status,
    });
    StatusCode::from_u16(status).unwrap()
}

/// The incidents topic the SNS events of [`sns_event`] come from: the topic
/// a notifier or responder under test is configured with.
pub const INCIDENTS_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:blindspotx-incidents";

/// An SNS Lambda event carrying these message bodies (what Lambda hands a
/// subscriber), each with the incident's message attributes when given,
/// from [`INCIDENTS_TOPIC`].
pub fn sns_event(messages: &[(String, BTreeMap<String, String>)]) -> SnsEvent {
    sns_event_from(INCIDENTS_TOPIC, messages)
}

/// [`sns_event`] from another topic (a forged or misrouted record).
pub fn sns_event_from(
    topic_arn: &str,
    messages: &[(String, BTreeMap<String, String>)],
) -> SnsEvent {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .enumerate()
        .map(|(n, (body, attributes))| {
            let attributes: serde_json::Map<String, serde_json::Value> = attributes
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::json!({"Type": "String", "Value": v})))
                .collect();
            serde_json::json!({
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:blindspotx-incidents:0b1c",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": format!("00000000-0000-0000-0000-{n:012}"),
                    "TopicArn": topic_arn,
                    "Subject": null,
                    "Message": body,
                    "Timestamp": "2026-11-30T08:01:48.123Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": attributes
                }
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).expect("an SNS event")
}

/// An incident as the alert engine publishes it (the brute-force one by
/// default); tests change the fields they need.
pub fn incident(id: &str) -> monitoring_core::domain::alerts::Incident {
    use monitoring_core::domain::alerts::{
        Category, INCIDENT_SCHEMA, Incident, Severity, TransitionKind,
    };
    Incident {
        schema: INCIDENT_SCHEMA.into(),
        id: id.into(),
        episode: 1,
        transition_id: format!("{id}:firing"),
        status: TransitionKind::Firing,
        rule: "brute_force".into(),
        description: "Many failed authentications against one user within minutes.".into(),
        category: Category::Security,
        severity: Severity::Critical,
        key_name: Some("user".into()),
        key: "u-victim".into(),
        subject: None,
        count: 10,
        threshold: 10,
        window_seconds: 120,
        first_event_at: "2026-11-30T08:00:00.000Z".into(),
        last_event_at: "2026-11-30T08:01:48.000Z".into(),
        transition_at: "2026-11-30T08:01:48.000Z".into(),
        samples: vec![],
        inhibited_by: vec![],
        silenced_by: None,
        reason: None,
        dashboard_url: "https://dashboards.example/d/auth".into(),
        runbook_url: "https://runbooks.example/brute_force.md".into(),
    }
}

/// The SNS event Lambda hands a subscriber for these incidents.
pub fn incidents_event(incidents: &[&monitoring_core::domain::alerts::Incident]) -> SnsEvent {
    let messages: Vec<(String, BTreeMap<String, String>)> = incidents
        .iter()
        .map(|i| {
            let m = i.to_message();
            (m.body, m.attributes)
        })
        .collect();
    sns_event(&messages)
}
