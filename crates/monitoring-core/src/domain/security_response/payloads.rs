//! What each channel receives for one incident transition: a Slack Block
//! Kit message, a Microsoft Teams Adaptive Card message, a PagerDuty Events
//! API v2 event, an Alertmanager v2 alert, and the signed body of the
//! generic webhook.
//!
//! Webhook signature: the receiver gets the incident JSON as the body and
//! two headers,
//! - `X-BlindspotX-Timestamp: <unix seconds>`,
//! - `X-BlindspotX-Signature: sha256=<hex HMAC-SHA256(key, "<timestamp>.<body>")>`.
//!
//! To verify: recompute the HMAC over the timestamp header, a dot and the raw
//! body bytes with the shared key, compare in constant time, and refuse
//! timestamps more than five minutes old (replays). [`verify_signature`] is
//! that check.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::domain::alerts::{Incident, Severity, TransitionKind};

pub const SIGNATURE_HEADER: &str = "X-BlindspotX-Signature";
pub const TIMESTAMP_HEADER: &str = "X-BlindspotX-Timestamp";
/// Unique per transition: receivers can drop a redelivery with it.
pub const DELIVERY_HEADER: &str = "X-BlindspotX-Delivery";
/// How old a signed timestamp may be for [`verify_signature`].
pub const MAX_SIGNATURE_AGE_SECONDS: i64 = 300;
/// PagerDuty's limit on `payload.summary`.
const PAGERDUTY_SUMMARY_CHARS: usize = 1024;
/// Slack's limit on a header block's text.
const SLACK_HEADER_CHARS: usize = 150;

/// PagerDuty's severity for ours.
pub fn pagerduty_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "info",
    }
}

fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars.saturating_sub(1)) {
        Some((at, _)) if text.chars().count() > max_chars => format!("{}…", &text[..at]),
        _ => text.to_owned(),
    }
}

/// Slack mrkdwn needs `&`, `<` and `>` escaped.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn key_text(incident: &Incident) -> String {
    match (&incident.key_name, incident.key.is_empty()) {
        (_, true) => "(all)".to_owned(),
        (Some(name), false) => format!("{name}: {}", incident.key),
        (None, false) => incident.key.clone(),
    }
}

fn window_text(seconds: u64) -> String {
    if seconds.is_multiple_of(3600) && seconds >= 3600 {
        format!("{} h", seconds / 3600)
    } else if seconds.is_multiple_of(60) && seconds >= 60 {
        format!("{} min", seconds / 60)
    } else {
        format!("{seconds} s")
    }
}

/// One line for people: `[CRITICAL] brute_force firing for user: u-1 (10 ≥ 10 in 2 min)`.
pub fn summary_line(incident: &Incident) -> String {
    let status = match incident.status {
        TransitionKind::Firing => "firing",
        TransitionKind::Reminder => "still firing",
        TransitionKind::Resolved => "resolved",
    };
    format!(
        "[{}] {} {} for {} ({} ≥ {} in {})",
        incident.severity.as_str().to_uppercase(),
        incident.rule,
        status,
        key_text(incident),
        incident.count,
        incident.threshold,
        window_text(incident.window_seconds)
    )
}

/// The Slack incoming-webhook message (Block Kit, with a plain `text`
/// fallback for notifications).
pub fn slack_message(incident: &Incident) -> Value {
    let (emoji, state) = match incident.status {
        TransitionKind::Firing => (severity_emoji(incident.severity), "FIRING"),
        TransitionKind::Reminder => (severity_emoji(incident.severity), "STILL FIRING"),
        TransitionKind::Resolved => (":white_check_mark:", "RESOLVED"),
    };
    let header = cut(
        &format!(
            "{emoji} {state} · {} · {}",
            incident.severity.as_str().to_uppercase(),
            incident.rule
        ),
        SLACK_HEADER_CHARS,
    );
    let field = |label: &str, value: &str| json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", slack_escape(value))});
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": header, "emoji": true}
    })];
    let lead = if incident.status == TransitionKind::Resolved {
        format!(
            "*Resolved* at {}: no new signal for the quiet period.",
            incident.transition_at
        )
    } else if incident.description.is_empty() {
        format!("Category *{}*.", incident.category.as_str())
    } else {
        format!(
            "{} (category *{}*)",
            slack_escape(&incident.description),
            incident.category.as_str()
        )
    };
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&lead, 2900)}}));
    blocks.push(json!({
        "type": "section",
        "fields": [
            field("Key", &key_text(incident)),
            field("Count / threshold", &format!("{} / {}", incident.count, incident.threshold)),
            field("Window", &window_text(incident.window_seconds)),
            field("Episode", &incident.episode.to_string()),
            field("First event", &incident.first_event_at),
            field("Last event", &incident.last_event_at),
        ]
    }));
    blocks.push(json!({
        "type": "context",
        "elements": [{
            "type": "mrkdwn",
            "text": format!(
                "<{}|Dashboard> · <{}|Runbook> · incident `{}`",
                incident.dashboard_url, incident.runbook_url, incident.id
            )
        }]
    }));
    json!({"text": summary_line(incident), "blocks": blocks})
}

fn severity_emoji(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => ":rotating_light:",
        Severity::High => ":red_circle:",
        Severity::Medium => ":large_orange_circle:",
        Severity::Low => ":large_blue_circle:",
    }
}

/// The PagerDuty Events API v2 event: `trigger` for firing and reminders
/// (PagerDuty folds them into one alert by `dedup_key`), `resolve` for
/// resolutions.
pub fn pagerduty_event(incident: &Incident, routing_key: &str) -> Value {
    if incident.status == TransitionKind::Resolved {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": incident.id,
        });
    }
    let mut links = vec![json!({"href": incident.dashboard_url, "text": "Dashboard"})];
    if incident.runbook_url.starts_with("http://") || incident.runbook_url.starts_with("https://") {
        links.push(json!({"href": incident.runbook_url, "text": "Runbook"}));
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": incident.id,
        "payload": {
            "summary": cut(&summary_line(incident), PAGERDUTY_SUMMARY_CHARS),
            "source": "blindspotx-monitoring",
            "severity": pagerduty_severity(incident.severity),
            "timestamp": incident.transition_at,
            "component": incident.key_name.clone().unwrap_or_else(|| "bundle".to_owned()),
            "group": incident.category.as_str(),
            "class": incident.rule,
            "custom_details": {
                "key": incident.key,
                "count": incident.count,
                "threshold": incident.threshold,
                "window_seconds": incident.window_seconds,
                "first_event_at": incident.first_event_at,
                "last_event_at": incident.last_event_at,
                "episode": incident.episode,
                "transition_id": incident.transition_id,
                "runbook_url": incident.runbook_url,
                "description": incident.description,
            }
        },
        "links": links,
    })
}

/// How long past its latest transition Alertmanager keeps a firing
/// incident firing without hearing from it again. Our resolution arrives as
/// an explicit `endsAt`; this bound only matters when a resolution never
/// arrives (then it resolves itself a day later instead of never), and a
/// reminder pushes it forward.
pub const ALERTMANAGER_FIRING_HOLD: time::Duration = time::Duration::hours(24);

/// A label name Alertmanager accepts (`[a-zA-Z_][a-zA-Z0-9_]*`): other
/// characters become `_`.
fn label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn parse_time(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

fn is_absolute(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// The body of Alertmanager's `POST /api/v2/alerts` for one transition: a
/// list of one alert. Labels: `alertname` (the rule), `severity`,
/// `category`, `key` and the key's own name (`ip`, `user`, ...) when the
/// rule groups, `source`. Annotations: `summary`, `description`,
/// `runbook_url`, `dashboard`, `incident_id`. `startsAt` is the episode's
/// first event; `endsAt` is the resolution time for a resolution, else
/// [`ALERTMANAGER_FIRING_HOLD`] past the transition.
pub fn alertmanager_alerts(incident: &Incident) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".into(), json!(incident.rule));
    labels.insert("severity".into(), json!(incident.severity.as_str()));
    labels.insert("category".into(), json!(incident.category.as_str()));
    labels.insert("source".into(), json!("blindspotx-monitoring"));
    if !incident.key.is_empty() {
        labels.insert("key".into(), json!(incident.key));
        if let Some(name) = &incident.key_name {
            let name = label_name(name);
            // Never let a rule's key name overwrite one of the labels above.
            labels.entry(name).or_insert_with(|| json!(incident.key));
        }
    }
    let mut annotations = serde_json::Map::new();
    annotations.insert("summary".into(), json!(summary_line(incident)));
    if !incident.description.is_empty() {
        annotations.insert("description".into(), json!(incident.description));
    }
    annotations.insert("runbook_url".into(), json!(incident.runbook_url));
    annotations.insert("dashboard".into(), json!(incident.dashboard_url));
    annotations.insert("incident_id".into(), json!(incident.id));
    let at = parse_time(&incident.transition_at);
    let ends = at.map(|at| match incident.status {
        TransitionKind::Resolved => at,
        TransitionKind::Firing | TransitionKind::Reminder => at + ALERTMANAGER_FIRING_HOLD,
    });
    let starts = match (parse_time(&incident.first_event_at), ends) {
        // Alertmanager refuses an end before the start.
        (Some(start), Some(end)) => Some(start.min(end)),
        (start, _) => start.or(at),
    };
    let mut alert = json!({"labels": labels, "annotations": annotations});
    if let Some(starts) = starts {
        alert["startsAt"] = json!(crate::domain::timefmt::rfc3339_millis(starts));
    }
    if let Some(ends) = ends {
        alert["endsAt"] = json!(crate::domain::timefmt::rfc3339_millis(ends));
    }
    if is_absolute(&incident.dashboard_url) {
        alert["generatorURL"] = json!(incident.dashboard_url);
    }
    json!([alert])
}

/// Adaptive Card text is Markdown: escape what could make a link or
/// formatting out of attacker-influenced values (keys, descriptions).
fn teams_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '[' | ']' | '(' | ')' | '`' | '#' | '<' | '>' | '~' | '!'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The Microsoft Teams message for a Workflows webhook ("Post to a channel
/// when a webhook request is received"): one Adaptive Card 1.4 attachment
/// with a headline, the description, the facts and links to the dashboard
/// and the runbook.
pub fn teams_message(incident: &Incident) -> Value {
    let (state, color) = match incident.status {
        TransitionKind::Firing => ("FIRING", teams_color(incident.severity)),
        TransitionKind::Reminder => ("STILL FIRING", teams_color(incident.severity)),
        TransitionKind::Resolved => ("RESOLVED", "Good"),
    };
    let headline = cut(
        &format!(
            "{state} · {} · {}",
            incident.severity.as_str().to_uppercase(),
            incident.rule
        ),
        SLACK_HEADER_CHARS,
    );
    let lead = if incident.status == TransitionKind::Resolved {
        format!(
            "Resolved at {}: no new signal for the quiet period.",
            incident.transition_at
        )
    } else if incident.description.is_empty() {
        format!("Category {}.", incident.category.as_str())
    } else {
        format!(
            "{} (category {})",
            teams_escape(&incident.description),
            incident.category.as_str()
        )
    };
    let fact = |title: &str, value: String| json!({"title": title, "value": value});
    let mut actions = Vec::new();
    if is_absolute(&incident.dashboard_url) {
        actions.push(
            json!({"type": "Action.OpenUrl", "title": "Dashboard", "url": incident.dashboard_url}),
        );
    }
    if is_absolute(&incident.runbook_url) {
        actions.push(
            json!({"type": "Action.OpenUrl", "title": "Runbook", "url": incident.runbook_url}),
        );
    }
    let card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": headline, "size": "Large", "weight": "Bolder",
             "color": color, "wrap": true},
            {"type": "TextBlock", "text": cut(&lead, 2900), "wrap": true},
            {"type": "FactSet", "facts": [
                fact("Key", teams_escape(&key_text(incident))),
                fact("Count / threshold", format!("{} / {}", incident.count, incident.threshold)),
                fact("Window", window_text(incident.window_seconds)),
                fact("Episode", incident.episode.to_string()),
                fact("First event", incident.first_event_at.clone()),
                fact("Last event", incident.last_event_at.clone()),
                fact("Incident", incident.id.clone()),
            ]},
        ],
        "actions": actions,
        "msteams": {"width": "Full"},
    });
    json!({
        "type": "message",
        "summary": cut(&summary_line(incident), 250),
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

fn teams_color(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "Attention",
        Severity::Medium => "Warning",
        Severity::Low => "Accent",
    }
}

/// SNS's limit on `Subject`: under 100 characters.
pub const MAX_EMAIL_SUBJECT_CHARS: usize = 99;

/// The e-mail subject of a transition. SNS wants ASCII without line breaks
/// or control characters, under 100 characters: anything else becomes `?`
/// and a longer line is cut with `...`.
pub fn email_subject(incident: &Incident) -> String {
    let line: String = summary_line(incident)
        .replace('≥', ">=")
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect();
    if line.len() <= MAX_EMAIL_SUBJECT_CHARS {
        line
    } else {
        format!("{}...", &line[..MAX_EMAIL_SUBJECT_CHARS - 3])
    }
}

/// The plain-text e-mail body of a transition: the summary, the facts, the
/// links and the samples, for people reading mail.
pub fn email_text(incident: &Incident) -> String {
    let mut out = String::new();
    out.push_str(&summary_line(incident));
    out.push_str("\n\n");
    if incident.status == TransitionKind::Resolved {
        out.push_str(&format!(
            "Resolved at {}: no new signal for the quiet period.\n\n",
            incident.transition_at
        ));
    } else if !incident.description.is_empty() {
        out.push_str(&incident.description);
        out.push_str("\n\n");
    }
    for (label, value) in [
        ("Rule", incident.rule.clone()),
        ("Severity", incident.severity.as_str().to_owned()),
        ("Category", incident.category.as_str().to_owned()),
        ("Key", key_text(incident)),
        (
            "Count / threshold",
            format!("{} / {}", incident.count, incident.threshold),
        ),
        ("Window", window_text(incident.window_seconds)),
        ("Episode", incident.episode.to_string()),
        ("First event", incident.first_event_at.clone()),
        ("Last event", incident.last_event_at.clone()),
        ("Incident", incident.id.clone()),
        ("Dashboard", incident.dashboard_url.clone()),
        ("Runbook", incident.runbook_url.clone()),
    ] {
        out.push_str(&format!("{label}: {value}\n"));
    }
    if !incident.samples.is_empty() {
        out.push_str("\nSamples (redacted):\n");
        for sample in &incident.samples {
            out.push_str("  ");
            out.push_str(sample);
            out.push('\n');
        }
    }
    out
}

/// An incident message as SNS publishes it with `MessageStructure=json`:
/// `message` is `{"default": <incident JSON>, "email": <plain text>}`, so
/// e-mail subscribers get [`email_text`] under [`email_subject`] while
/// every other protocol (Lambda, SQS, HTTP, `email-json`) keeps the
/// incident JSON of `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailStructure {
    pub message: String,
    pub subject: String,
}

/// The structure for `body` when it is an incident
/// (`blindspotx.incident/v1`); `None` for anything else, which is
/// published as it is.
pub fn email_structure(body: &str) -> Option<EmailStructure> {
    let incident: Incident = serde_json::from_str(body).ok()?;
    if incident.schema != crate::domain::alerts::INCIDENT_SCHEMA {
        return None;
    }
    let message = json!({"default": body, "email": email_text(&incident)}).to_string();
    Some(EmailStructure {
        message,
        subject: email_subject(&incident),
    })
}

/// Signs webhook bodies with the shared key (built once per cold start).
#[derive(Clone)]
pub struct Signer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(***)")
    }
}

impl Signer {
    /// Refuses an empty key (HMAC would take it, but it protects nothing).
    pub fn new(key: &[u8]) -> Result<Self, SignatureError> {
        if key.is_empty() {
            return Err(SignatureError::InvalidKey);
        }
        let mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| SignatureError::InvalidKey)?;
        Ok(Signer { mac })
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// `sha256=<hex>` of `"<timestamp>.<body>"`.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        format!(
            "sha256={}",
            hex(&self.mac(timestamp, body).finalize().into_bytes())
        )
    }

    /// The receiver's check: `header` is `X-BlindspotX-Signature`,
    /// `timestamp` the `X-BlindspotX-Timestamp` value, `now` the receiver's
    /// clock (unix seconds).
    pub fn verify(
        &self,
        timestamp: i64,
        body: &[u8],
        header: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        let hex_sig = header
            .strip_prefix("sha256=")
            .filter(|h| h.len() == 64 && h.is_ascii())
            .ok_or(SignatureError::Malformed)?;
        let mut expected = Vec::with_capacity(32);
        for i in (0..64).step_by(2) {
            expected.push(
                u8::from_str_radix(&hex_sig[i..i + 2], 16)
                    .map_err(|_| SignatureError::Malformed)?,
            );
        }
        if (now - timestamp).abs() > MAX_SIGNATURE_AGE_SECONDS {
            return Err(SignatureError::Stale);
        }
        self.mac(timestamp, body)
            .verify_slice(&expected)
            .map_err(|_| SignatureError::Mismatch)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a key or a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signing key is empty")]
    InvalidKey,
    #[error("the signature header is not sha256=<64 hex digits>")]
    Malformed,
    #[error("the timestamp is more than {MAX_SIGNATURE_AGE_SECONDS} s away from now")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// [`Signer::verify`] with a key given directly (receivers, tests).
pub fn verify_signature(
    key: &[u8],
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
) -> Result<(), SignatureError> {
    Signer::new(key)?.verify(timestamp, body, header, now)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::alerts::INCIDENT_SCHEMA;
    use crate::domain::alerts::config::Category;

    pub(crate) fn incident(status: TransitionKind, severity: Severity) -> Incident {
        let status_str = status.as_str();
        Incident {
            schema: INCIDENT_SCHEMA.into(),
            id: "0123456789abcdef0123456789abcdef".into(),
            episode: 1,
            transition_id: format!("0123456789abcdef0123456789abcdef:{status_str}"),
            status,
            rule: "brute_force".into(),
            description: "Many failed <authentications> & more".into(),
            category: Category::Security,
            severity,
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
            dashboard_url: "https://dash.example/d".into(),
            runbook_url: "https://runbooks.example/brute_force.md".into(),
        }
    }

    #[test]
    fn slack_message_has_header_fields_and_links() {
        let m = slack_message(&incident(TransitionKind::Firing, Severity::Critical));
        let blocks = m["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(
            header.contains("CRITICAL") && header.contains("brute_force"),
            "{header}"
        );
        assert!(header.contains("FIRING"));
        let lead = blocks[1]["text"]["text"].as_str().unwrap();
        assert!(
            lead.contains("&lt;authentications&gt; &amp; more"),
            "{lead}"
        );
        let fields: Vec<&str> = blocks[2]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        assert_eq!(fields[0], "*Key*\nuser: u-victim");
        assert_eq!(fields[1], "*Count / threshold*\n10 / 10");
        assert_eq!(fields[2], "*Window*\n2 min");
        assert_eq!(fields[4], "*First event*\n2026-11-30T08:00:00.000Z");
        let links = blocks[3]["elements"][0]["text"].as_str().unwrap();
        assert!(links.contains("<https://dash.example/d|Dashboard>"));
        assert!(links.contains("<https://runbooks.example/brute_force.md|Runbook>"));
        assert!(
            m["text"]
                .as_str()
                .unwrap()
                .starts_with("[CRITICAL] brute_force firing")
        );
    }

    #[test]
    fn resolved_slack_messages_say_resolved() {
        let m = slack_message(&incident(TransitionKind::Resolved, Severity::High));
        let header = m["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(header.contains("RESOLVED"), "{header}");
        assert!(
            m["blocks"][1]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("*Resolved*")
        );
        assert!(m["text"].as_str().unwrap().contains("resolved"));
    }

    #[test]
    fn pagerduty_trigger_and_resolve() {
        let i = incident(TransitionKind::Firing, Severity::High);
        let e = pagerduty_event(&i, "rk");
        assert_eq!(e["event_action"], "trigger");
        assert_eq!(e["dedup_key"], i.id.as_str());
        assert_eq!(e["routing_key"], "rk");
        assert_eq!(e["payload"]["severity"], "error");
        assert_eq!(e["payload"]["source"], "blindspotx-monitoring");
        assert_eq!(e["payload"]["class"], "brute_force");
        assert_eq!(e["links"].as_array().unwrap().len(), 2);
        let r = pagerduty_event(&incident(TransitionKind::Resolved, Severity::High), "rk");
        assert_eq!(
            r,
            json!({"routing_key": "rk", "event_action": "resolve", "dedup_key": i.id})
        );
        let mapped: Vec<&str> = [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
        ]
        .into_iter()
        .map(pagerduty_severity)
        .collect();
        assert_eq!(mapped, ["critical", "error", "warning", "info"]);
    }

    #[test]
    fn alertmanager_alerts_carry_labels_annotations_and_the_lifecycle() {
        let firing = alertmanager_alerts(&incident(TransitionKind::Firing, Severity::High));
        let a = &firing[0];
        assert_eq!(firing.as_array().unwrap().len(), 1);
        assert_eq!(
            a["labels"],
            json!({"alertname": "brute_force", "severity": "high", "category": "security",
                   "source": "blindspotx-monitoring", "key": "u-victim", "user": "u-victim"})
        );
        assert_eq!(
            a["annotations"]["runbook_url"],
            "https://runbooks.example/brute_force.md"
        );
        assert_eq!(a["annotations"]["dashboard"], "https://dash.example/d");
        assert!(
            a["annotations"]["summary"]
                .as_str()
                .unwrap()
                .starts_with("[HIGH] brute_force firing")
        );
        assert_eq!(a["startsAt"], "2026-11-30T08:00:00.000Z");
        assert_eq!(
            a["endsAt"], "2026-12-01T08:01:48.000Z",
            "a day past the transition"
        );
        assert_eq!(a["generatorURL"], "https://dash.example/d");
        // The resolution: same labels (the same Alertmanager alert), ended
        // at the resolution time.
        let resolved = alertmanager_alerts(&incident(TransitionKind::Resolved, Severity::High));
        assert_eq!(resolved[0]["labels"], a["labels"]);
        assert_eq!(resolved[0]["endsAt"], "2026-11-30T08:01:48.000Z");
        assert_eq!(resolved[0]["startsAt"], a["startsAt"]);
        // A hostile key name cannot make an invalid label or overwrite one.
        let mut odd = incident(TransitionKind::Firing, Severity::Low);
        odd.key_name = Some("severity".into());
        assert_eq!(alertmanager_alerts(&odd)[0]["labels"]["severity"], "low");
        odd.key_name = Some("9 x-y".into());
        assert_eq!(alertmanager_alerts(&odd)[0]["labels"]["_9_x_y"], "u-victim");
    }

    #[test]
    fn teams_messages_are_adaptive_cards() {
        let mut i = incident(TransitionKind::Firing, Severity::Critical);
        i.key = "[click](https://evil.example)".into();
        let m = teams_message(&i);
        assert_eq!(m["type"], "message");
        let attachment = &m["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachment["content"];
        assert_eq!(
            (card["type"].as_str(), card["version"].as_str()),
            (Some("AdaptiveCard"), Some("1.4"))
        );
        let headline = card["body"][0]["text"].as_str().unwrap();
        assert_eq!(headline, "FIRING · CRITICAL · brute_force");
        assert_eq!(card["body"][0]["color"], "Attention");
        let facts = card["body"][2]["facts"].as_array().unwrap();
        assert_eq!(facts[0]["title"], "Key");
        assert_eq!(
            facts[0]["value"], "user: \\[click\\]\\(https://evil.example\\)",
            "no link out of a key"
        );
        let urls: Vec<&str> = card["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["url"].as_str().unwrap())
            .collect();
        assert_eq!(
            urls,
            [
                "https://dash.example/d",
                "https://runbooks.example/brute_force.md"
            ]
        );
        let resolved = teams_message(&incident(TransitionKind::Resolved, Severity::Critical));
        let card = &resolved["attachments"][0]["content"];
        assert!(
            card["body"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("RESOLVED")
        );
        assert_eq!(card["body"][0]["color"], "Good");
    }

    #[test]
    fn email_structure_keeps_the_json_as_default() {
        let mut i = incident(TransitionKind::Firing, Severity::High);
        i.key = "zoë@example.com".into();
        i.samples = vec!["sample line".into()];
        let body = i.to_json();
        let s = email_structure(&body).unwrap();
        let m: Value = serde_json::from_str(&s.message).unwrap();
        assert_eq!(m["default"], body.as_str(), "Lambda and SQS keep the JSON");
        let text = m["email"].as_str().unwrap();
        assert!(text.starts_with("[HIGH] brute_force firing for user: zoë@example.com"));
        assert!(text.contains("Runbook: https://runbooks.example/brute_force.md\n"));
        assert!(text.contains("Samples (redacted):\n  sample line\n"));
        assert_eq!(
            s.subject,
            "[HIGH] brute_force firing for user: zo?@example.com (10 >= 10 in 2 min)"
        );
        i.key = "k".repeat(300);
        let long = email_subject(&i);
        assert_eq!(long.len(), MAX_EMAIL_SUBJECT_CHARS);
        assert!(long.ends_with("...") && long.is_ascii());
        assert_eq!(email_structure(r#"{"schema":"other/v1"}"#), None);
        assert_eq!(email_structure("not json"), None);
    }

    #[test]
    fn signatures_verify_and_refuse_tampering() {
        let body = br#"{"a":1}"#;
        let signer = Signer::new(b"key").unwrap();
        let sig = signer.sign(1_800_000_000, body);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert_eq!(
            verify_signature(b"key", 1_800_000_000, body, &sig, 1_800_000_010),
            Ok(())
        );
        assert_eq!(
            verify_signature(b"key", 1_800_000_001, body, &sig, 1_800_000_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"other", 1_800_000_000, body, &sig, 1_800_000_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"key", 1_800_000_000, b"{}", &sig, 1_800_000_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"key", 1_800_000_000, body, &sig, 1_800_001_000),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(b"key", 1, body, "md5=00", 1),
            Err(SignatureError::Malformed)
        );
        assert_eq!(Signer::new(b"").unwrap_err(), SignatureError::InvalidKey);
        // Known vector: HMAC-SHA256("key", "1.{}").
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"key").unwrap();
        m.update(b"1.{}");
        assert_eq!(
            signer.sign(1, b"{}"),
            format!("sha256={}", hex(&m.finalize().into_bytes()))
        );
    }
}
