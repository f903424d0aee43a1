//! The service's own defences as signals (LOG-CONTRACT.md section 4): the
//! default log rules of group "defence" turn each wording of BlindspotX
//! holding off an attack — its login rate limiter blocking an address,
//! other rate-limit refusals, requests from a blocked address, revoked
//! tokens and tokens of revoked users presented, logins by inactive users
//! and with unknown e-mail addresses — into one
//! `auth_defence_events_total{defence}` and one signal, keyed by the
//! address (pseudonymized) or the user where the line names one; lines that
//! only look alike count nothing. The default alert rules count those
//! signals (checked at load against the log rules). No AWS needed.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use monitoring_core::domain::alerts::AlertRules;
use monitoring_core::domain::alerts::crosscheck::{self, SignalCatalog};
use monitoring_core::domain::logs::parse::{ParseSettings, RecordParser, group_lines};
use monitoring_core::domain::logs::record::LogEvent;
use monitoring_core::domain::logs::redact::{PseudonymKind, Redactor};
use monitoring_core::domain::metrics::aggregate::Update;
use monitoring_core::domain::rules::{Evaluation, RuleSet};

const KEY: &[u8] = b"defences-test-key-0123456789abcdef";
const USER: &str = "7c0e8a42-1d2b-4c3e-9f4a-5b6c7d8e9f01";

/// Compiled once: the default rules' regexes take a while to build.
static RULES: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::default_rules().unwrap());

/// What one line gave: `auth_defence_events_total` by `defence`, and the
/// signals with their keys.
struct Outcome {
    defences: BTreeMap<String, f64>,
    signals: Vec<(String, BTreeMap<String, String>)>,
}

fn evaluate(line: &str) -> Outcome {
    let rules = &*RULES;
    let redactor = Redactor::new(KEY).unwrap();
    let mut parser = RecordParser::new(ParseSettings {
        time_bounds: None,
        ..ParseSettings::default()
    });
    let mut eval = Evaluation::default();
    for (i, message) in group_lines(std::iter::once(line)).enumerate() {
        let event = LogEvent {
            id: format!("{i}"),
            timestamp_ms: 0,
            message,
        };
        let record = parser.parse(&event).unwrap();
        rules.evaluate(&record, &redactor, &mut eval);
    }
    let mut defences = BTreeMap::new();
    for (key, update) in eval.keyed_updates() {
        if key.name() != "auth_defence_events_total" {
            continue;
        }
        let Update::CounterAdd(v) = update else {
            panic!("{update:?}")
        };
        let defence = key
            .labels()
            .iter()
            .find(|(k, _)| k == "defence")
            .map(|(_, v)| v.clone())
            .unwrap();
        *defences.entry(defence).or_default() += v;
    }
    let signals = eval
        .signals
        .iter()
        .filter(|s| {
            [
                "rate_limit_blocks",
                "rate_limited_requests",
                "blocked_address_requests",
                "revoked_token_use",
                "inactive_user_logins",
                "unknown_email_logins",
            ]
            .contains(&&*s.name)
        })
        .map(|s| {
            let keys = s.keys.iter().map(|(k, v)| (k.to_string(), v.clone()));
            (s.name.to_string(), keys.collect())
        })
        .collect();
    Outcome { defences, signals }
}

fn ip(address: &str) -> String {
    Redactor::new(KEY)
        .unwrap()
        .pseudonym(PseudonymKind::Ip, address)
}

fn email(address: &str) -> String {
    Redactor::new(KEY)
        .unwrap()
        .pseudonym(PseudonymKind::Email, address)
}

fn text(logger: &str, level: &str, message: &str) -> String {
    format!("2025-05-18 07:43:15,521 - {logger} - {level} - {message}")
}

/// `line` is one `defence`, and one `signal` with exactly `keys`.
fn expect(line: &str, defence: &str, signal: &str, keys: &[(&str, String)]) {
    let o = evaluate(line);
    assert_eq!(
        o.defences,
        BTreeMap::from([(defence.to_owned(), 1.0)]),
        "{line}"
    );
    let keys: BTreeMap<String, String> = keys
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    assert_eq!(o.signals, [(signal.to_owned(), keys)], "{line}");
}

#[test]
fn the_login_rate_limiter_blocking_an_address() {
    for (message, address) in [
        (
            "IP 203.0.113.7 blocked for 15 minutes after 5 failed login attempts",
            "203.0.113.7",
        ),
        (
            "Too many login attempts from 203.0.113.8; blocking for 900 seconds",
            "203.0.113.8",
        ),
        (
            "Blocked IP 203.0.113.9 for 15 minutes (too many login attempts)",
            "203.0.113.9",
        ),
        (
            "Rate limit exceeded: blocked address 2001:db8::7 for 15 min",
            "2001:db8::7",
        ),
    ] {
        let line = text("app.core.rate_limit", "WARNING", message);
        expect(
            &line,
            "login_rate_limit_block",
            "rate_limit_blocks",
            &[("ip", ip(address))],
        );
    }
    // The address is pseudonymized, never the raw one.
    let o = evaluate(&text(
        "app.core.rate_limit",
        "WARNING",
        "IP 203.0.113.7 blocked for 15 minutes",
    ));
    assert!(!format!("{:?}", o.signals).contains("203.0.113.7"));
}

#[test]
fn requests_from_a_blocked_address_and_other_rate_limit_refusals() {
    for (message, address) in [
        (
            "Request from blocked IP 203.0.113.7 rejected",
            "203.0.113.7",
        ),
        (
            "Rejected login from blocked address 198.51.100.4",
            "198.51.100.4",
        ),
        (
            "203.0.113.7 is blocked (12 minutes remaining)",
            "203.0.113.7",
        ),
    ] {
        let line = text("app.core.rate_limit", "WARNING", message);
        expect(
            &line,
            "blocked_address",
            "blocked_address_requests",
            &[("ip", ip(address))],
        );
    }
    for line in [
        text(
            "app.core.rate_limit",
            "WARNING",
            "Rate limit exceeded for /api/auth/refresh",
        ),
        text(
            "app.api.middleware",
            "WARNING",
            "Client was rate limited on POST /api/auth/login",
        ),
        // A near miss of the failure-wording corpus (no failed login), but
        // the service's limiter refusing a request.
        "WARNING:app.middleware.rate_limit:Rate limit reached for 203.0.113.24 on /api/drift/reports"
            .to_owned(),
    ] {
        expect(&line, "rate_limited", "rate_limited_requests", &[]);
    }
    // An access-log line names the client: the signal carries it.
    expect(
        "INFO:     203.0.113.41:52344 - \"POST /api/auth/token HTTP/1.1\" 429 Too Many Requests",
        "rate_limited",
        "rate_limited_requests",
        &[("ip", ip("203.0.113.41"))],
    );
}

#[test]
fn revoked_tokens_and_tokens_of_revoked_users() {
    // Lines 19 and 20 of tests/data/fastapi_auth_failures.log.
    expect(
        &text(
            "app.api.deps",
            "WARNING",
            &format!(
                "Token has been revoked: jti=6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b user={USER}"
            ),
        ),
        "revoked_token",
        "revoked_token_use",
        &[("user", USER.to_owned())],
    );
    expect(
        &text(
            "app.api.deps",
            "WARNING",
            &format!(
                "Rejected token of revoked user {USER} (all tokens revoked: security_incident)"
            ),
        ),
        "revoked_user",
        "revoked_token_use",
        &[("user", USER.to_owned())],
    );
    expect(
        &text("app.api.deps", "WARNING", "Rejected revoked refresh token"),
        "revoked_token",
        "revoked_token_use",
        &[],
    );
}

#[test]
fn logins_by_inactive_users_and_with_unknown_emails() {
    // Lines 21 and 23 of tests/data/fastapi_auth_failures.log.
    expect(
        &text(
            "app.api.routes.auth",
            "WARNING",
            "Login rejected for erin@example.com: Inactive user",
        ),
        "inactive_user",
        "inactive_user_logins",
        &[("user", email("erin@example.com"))],
    );
    expect(
        &text(
            "app.api.routes.auth",
            "WARNING",
            "Login attempt with unknown email frank@example.com from 198.51.100.17",
        ),
        "unknown_email",
        "unknown_email_logins",
        &[("ip", ip("198.51.100.17"))],
    );
    expect(
        &text(
            "app.api.routes.auth",
            "INFO",
            "No user found with email grace@example.com",
        ),
        "unknown_email",
        "unknown_email_logins",
        &[],
    );
}

#[test]
fn look_alikes_count_no_defence() {
    let mut lines: Vec<String> = [
        ("app.core.security", "INFO", "Refresh token revoked for user ana@example.com (reason: logout)"),
        ("app.core.security", "INFO", "Refresh token has been revoked (logout)"),
        ("app.tasks.cleanup", "INFO", "Removed 17 expired tokens from blocklist"),
        ("app.tasks.cleanup", "INFO", "Deactivated 3 inactive users (no sign-in for 90 days)"),
        ("app.services.security", "WARNING", "All tokens revoked for user 7c0e8a42-1d2b-4c3e-9f4a-5b6c7d8e9f01 (reason: security_incident)"),
        ("app.services.drift", "WARNING", "Rate limited or server error from Graph API (/v1.0/users). Retrying after 30s..."),
        ("app.services.oauth", "WARNING", "Sign-in blocked: AADSTS53003: Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."),
        ("app.core.security", "INFO", "Access token created for user ana@example.com, expires at 2025-05-18 10:42:54.855515"),
    ]
    .iter()
    .map(|(logger, level, message)| text(logger, level, message))
    .collect();
    // Every near miss of the failure-wording corpus (not failed logins),
    // but the one that is the service's rate limiter at work.
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/auth_near_misses.log");
    lines.extend(
        std::fs::read_to_string(&corpus)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains("Rate limit reached for"))
            .map(str::to_owned),
    );
    for line in &lines {
        let o = evaluate(line);
        assert!(
            o.defences.is_empty() && o.signals.is_empty(),
            "{line}: {:?}",
            o.defences
        );
    }
}

#[test]
fn the_default_alert_rules_count_every_defence_signal() {
    let rules = AlertRules::default_rules().unwrap();
    // As log-metrics checks them at start: every signal produced by a log
    // rule, every key carried.
    crosscheck::check(&rules, &SignalCatalog::new(&RULES)).unwrap();
    for (rule, signal) in [
        ("login_rate_limit_blocks", "rate_limit_blocks"),
        ("rate_limited_requests", "rate_limited_requests"),
        ("blocked_address_requests", "blocked_address_requests"),
        ("revoked_token_use", "revoked_token_use"),
        ("inactive_user_logins", "inactive_user_logins"),
        ("unknown_email_logins", "unknown_email_logins"),
    ] {
        let r = rules
            .rules()
            .iter()
            .find(|r| &*r.name == rule)
            .unwrap_or_else(|| panic!("no default alert rule {rule}"));
        assert_eq!(&*r.signal, signal);
        assert_eq!(r.category.as_str(), "security");
    }
}
