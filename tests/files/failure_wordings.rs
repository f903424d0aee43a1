//! The failure-wording corpus (issue 14): what the default rules make of
//! each wording a FastAPI / OAuth2 service and its libraries write for a
//! failed authentication, and of the near misses that must not count.
//!
//! - `tests/data/fastapi_auth_failures.log`: one failure per line; each must
//!   give exactly one `auth_failures` signal and count once as
//!   `auth_requests_total{...,status="failure"}`. Most lines are Python
//!   logging records; the others are plain records (uvicorn's own lines,
//!   `logging.basicConfig`'s `LEVEL:name:message`, a printed dict).
//! - `tests/data/auth_near_misses.log`: lines that look like failures but
//!   are not; each must give neither.
//! - [`CASES`]: records over several lines (tracebacks, dicts printed after
//!   the message), each delivered as a file and as CloudWatch subscription
//!   events, with the number of failures each must give.
//! - [`KNOWN_GAPS`]: what the engine still cannot classify, and why.
//!
//! Every line and case is replayed alone through the built `replay` binary:
//! once with `--format json` (with the default rules plus one counter per
//! rule, to see which rules matched), once with `--alerts` and an alert rule
//! file holding the guide's service-wide `auth_failures` rule: its stderr
//! summary says which signals were raised (`replay: 2 signals (auth_failures
//! 1, error_logs 1)`) and how many the rule counted (`replay: rule
//! auth_failures: 1 counted`). The rules are passed as files of this
//! checkout (`infra/rules/default.toml`, `infra/alerts/default.toml`)
//! rather than relied on as embedded: the binary in a shared target
//! directory may have been built from another checkout.
//!
//! `docs/failure-wordings.md` is the resulting table; `table_is_current`
//! fails when it is stale. Regenerate it with
//!
//! ```text
//! cargo test -p replay --test failure_wordings -- --ignored regenerate_failure_wordings_table
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use test_support::logs;

use serde_json::Value;

use crate::replay_support::{TempDir, replay, subscription_payload};

const FAILURES: &str = "fastapi_auth_failures.log";
const NEAR_MISSES: &str = "auth_near_misses.log";
const TABLE: &str = "docs/failure-wordings.md";
/// The counter the instrumented rules add to every rule, labelled `rule`.
const MATCHED: &str = "failure_wordings_rule_matches_total";
/// The guide's ALERT_CONFIG entry, as LOG-CONTRACT.md section 3 states it:
/// across the whole service, 5 in 300 s, high.
const CONTRACT_AUTH_ALERT: &str = r#"
[[rule]]
name = "auth_failures"
description = "ALERT_CONFIG auth_failures, across the whole service (LOG-CONTRACT.md section 3)."
signal = "auth_failures"
group_by = "none"
threshold = 5
window = 300
severity = "high"
category = "security"
"#;
/// Pipeline counters every record or line updates: left out of a line's
/// series (the table shows them as "read as" and "logger" / "level").
const EVERY_RECORD: [&str; 4] = [
    "log_events_total{",
    "log_messages_total{",
    "log_records_total{",
    "log_lines_joined_total{",
];
/// CloudWatch's time of the first event of a subscription batch the test
/// builds: 2025-05-18T08:00:00Z, after every record of the cases (records
/// up to 24 h older than their event keep their own time).
const BATCH_TIME_MS: i64 = 1_747_555_200_000;

/// How a case reaches the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// A log file, one line after the other (replay's plain input).
    File,
    /// One CloudWatch subscription batch holding the whole text as one
    /// event (a multi-line start pattern, or a handler sending each
    /// record as one event).
    OneEvent,
    /// One subscription batch, one event per non-blank line (the awslogs
    /// driver without a multi-line pattern).
    EventPerLine,
    /// Two subscription batches, one event per line, the second starting
    /// at the given line: the lines after a batch boundary are read
    /// without the record they continue.
    TwoBatches(usize),
}

impl Delivery {
    fn describe(self) -> String {
        match self {
            Delivery::File => "a file".to_owned(),
            Delivery::OneEvent => "one CloudWatch event".to_owned(),
            Delivery::EventPerLine => "one CloudWatch event per line".to_owned(),
            Delivery::TwoBatches(at) => format!(
                "one CloudWatch event per line, in two subscription batches, the second starting at line {}",
                at + 1
            ),
        }
    }
}

/// Every delivery a handled case is checked with.
const ALL: &[Delivery] = &[Delivery::File, Delivery::OneEvent, Delivery::EventPerLine];
/// Line by line only: as one event, the lines after the first are read as
/// the record's continuation, where only exception lines are searched.
const LINE_BY_LINE: &[Delivery] = &[Delivery::File, Delivery::EventPerLine];

/// A record over several lines (or a few records), with the number of
/// authentication failures it must give.
struct Case {
    why: &'static str,
    lines: &'static [&'static str],
    failures: u64,
    deliveries: &'static [Delivery],
}

/// Records over several lines the engine classifies: regexes search the
/// message plus the exception lines of the traceback joined to it, never
/// the source lines the traceback quotes.
const CASES: [Case; 8] = [
    Case {
        why: "python-jose's error named only in the traceback's exception line, under uvicorn's `Exception in ASGI application`",
        lines: &[
            "2025-05-18 07:49:10,004 - uvicorn.error - ERROR - Exception in ASGI application",
            "Traceback (most recent call last):",
            "  File \"/app/app/core/security.py\", line 88, in decode_token",
            "    payload = jwt.decode(token, settings.SECRET_KEY, algorithms=[settings.ALGORITHM])",
            "jose.exceptions.ExpiredSignatureError: Signature has expired.",
        ],
        failures: 1,
        deliveries: ALL,
    },
    Case {
        why: "the same from uvicorn's default logging (a plain record), a chained python-jose traceback ending in `JWTError`",
        lines: &[
            "ERROR:    Exception in ASGI application",
            "Traceback (most recent call last):",
            "  File \"/usr/local/lib/python3.11/site-packages/jose/jws.py\", line 262, in _verify_signature",
            "    raise JWSSignatureError()",
            "jose.exceptions.JWSSignatureError",
            "",
            "During handling of the above exception, another exception occurred:",
            "",
            "Traceback (most recent call last):",
            "  File \"/usr/local/lib/python3.11/site-packages/jose/jwt.py\", line 142, in decode",
            "    payload = jws.verify(token, key, algorithms, verify=verify_signature)",
            "jose.exceptions.JWSError: Signature verification failed.",
            "",
            "During handling of the above exception, another exception occurred:",
            "",
            "Traceback (most recent call last):",
            "  File \"/app/app/core/security.py\", line 88, in decode_token",
            "    payload = jwt.decode(token, settings.SECRET_KEY, algorithms=[settings.ALGORITHM])",
            "  File \"/usr/local/lib/python3.11/site-packages/jose/jwt.py\", line 144, in decode",
            "    raise JWTError(e)",
            "jose.exceptions.JWTError: Signature verification failed.",
        ],
        failures: 1,
        deliveries: ALL,
    },
    Case {
        why: "FastAPI's `HTTPException` raised in a middleware, named in the exception line",
        lines: &[
            "2025-05-18 07:49:12,377 - uvicorn.error - ERROR - Exception in ASGI application",
            "Traceback (most recent call last):",
            "  File \"/app/app/middleware/auth.py\", line 52, in dispatch",
            "    user = await get_current_user(request)",
            "  File \"/app/app/api/deps.py\", line 41, in get_current_user",
            "    raise credentials_exception",
            "fastapi.exceptions.HTTPException: 401: Could not validate credentials",
        ],
        failures: 1,
        deliveries: ALL,
    },
    Case {
        why: "a JSON record whose `exc_info` ends in PyJWT's error, matched by the exception's name (its message names no failure)",
        lines: &[
            r#"{"timestamp": "2025-05-18T07:49:20.512Z", "level": "ERROR", "logger": "uvicorn.error", "message": "Exception in ASGI application", "exc_info": "Traceback (most recent call last):\n  File \"/app/app/services/oauth.py\", line 97, in validate_id_token\n    claims = jwt.decode(id_token, key, algorithms=[\"RS256\"], audience=settings.CLIENT_ID)\njwt.exceptions.InvalidIssuedAtError: Issued At claim (iat) must be an integer."}"#,
        ],
        failures: 1,
        deliveries: ALL,
    },
    Case {
        why: "MSAL's error result pretty-printed after the message (`pprint` sorts the keys): the dict's lines are plain records of their own, the one starting with `'error'` counts",
        lines: &[
            "2025-05-18 07:49:14,250 - app.services.oauth - ERROR - Unexpected response from the token endpoint:",
            "{'correlation_id': '9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',",
            " 'error': 'invalid_grant',",
            " 'error_codes': [70008],",
            " 'error_description': 'AADSTS70008: The provided authorization code or refresh '",
            "                      'token has expired due to inactivity. Trace ID: '",
            "                      '1f2e3d4c-5b6a-4978-8a6b-5c4d3e2f1a0b',",
            " 'error_uri': 'https://login.microsoftonline.com/error?code=70008',",
            " 'timestamp': '2025-05-18 07:49:14Z',",
            " 'trace_id': '1f2e3d4c-5b6a-4978-8a6b-5c4d3e2f1a0b'}",
        ],
        failures: 1,
        deliveries: LINE_BY_LINE,
    },
    Case {
        why: "MSAL's error result as indented JSON after the message: the lines from `\"error\"` on are one plain record",
        lines: &[
            "2025-05-18 07:49:16,007 - app.services.oauth - ERROR - Entra ID token endpoint answered:",
            "{",
            "  \"error\": \"invalid_grant\",",
            "  \"error_description\": \"AADSTS700082: The refresh token has expired due to inactivity.\",",
            "  \"error_codes\": [",
            "    700082",
            "  ],",
            "  \"timestamp\": \"2025-05-18 07:49:16Z\"",
            "}",
        ],
        failures: 1,
        deliveries: LINE_BY_LINE,
    },
    Case {
        why: "not a failure: the traceback's source lines quote `HTTPException(status_code=401, detail=\"Could not validate credentials\")`, but the exception is a `KeyError`",
        lines: &[
            "2025-05-18 07:50:02,118 - uvicorn.error - ERROR - Exception in ASGI application",
            "Traceback (most recent call last):",
            "  File \"/app/app/api/deps.py\", line 37, in get_current_user",
            "    credentials_exception = HTTPException(status_code=401, detail=\"Could not validate credentials\")",
            "  File \"/app/app/api/deps.py\", line 44, in get_current_user",
            "    tenant = settings.TENANTS[payload[\"tid\"]]",
            "KeyError: 'tid'",
        ],
        failures: 0,
        deliveries: ALL,
    },
    Case {
        why: "not a failure: a database time-out in the login route, whose source lines quote an invalid-credentials error",
        lines: &[
            "2025-05-18 07:50:09,640 - uvicorn.error - ERROR - Exception in ASGI application",
            "Traceback (most recent call last):",
            "  File \"/app/app/api/routes/auth.py\", line 63, in login",
            "    user = await authenticate_user(db, form.username, form.password)  # raises 401 Invalid authentication credentials",
            "  File \"/usr/local/lib/python3.11/site-packages/sqlalchemy/pool/impl.py\", line 168, in _do_get",
            "    raise exc.TimeoutError(",
            "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00",
        ],
        failures: 0,
        deliveries: ALL,
    },
];

/// What the engine cannot classify yet, each with the delivery that shows
/// it and the number of failures it should give. Shown in the table with
/// what it gives today; `known_gaps_are_classified` (ignored) expects
/// `failures`.
const KNOWN_GAPS: [Case; 4] = [
    Case {
        why: "MSAL's result dict printed after the message, delivered as one event: the dict's lines are the record's continuation, and of a continuation only exception lines are searched (by design: the others quote source code)",
        lines: &[
            "2025-05-18 07:49:14,250 - app.services.oauth - ERROR - Unexpected response from the token endpoint:",
            "{'correlation_id': '9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',",
            " 'error': 'invalid_grant',",
            " 'error_codes': [70008],",
            " 'error_description': 'AADSTS70008: The provided authorization code or refresh token has expired due to inactivity.'}",
        ],
        failures: 1,
        deliveries: &[Delivery::OneEvent],
    },
    Case {
        why: "a dict printed over several lines with the error in its first two lines (`pprint(result, sort_dicts=False)`), line by line: a line starting with `{` takes no continuation lines (it may be a JSON record), so the line after it starts a plain record of its own, and both name the error",
        lines: &[
            "2025-05-18 07:49:14,250 - app.services.oauth - ERROR - Unexpected response from the token endpoint:",
            "{'error': 'invalid_grant',",
            " 'error_description': 'AADSTS70008: The provided authorization code or refresh token has expired due to inactivity.',",
            " 'error_codes': [70008]}",
        ],
        failures: 1,
        deliveries: &[Delivery::File],
    },
    Case {
        why: "a message that names the failure, with the result dict on the lines after it, line by line: the dict's plain record counts again",
        lines: &[
            "2025-05-18 07:49:18,731 - app.services.oauth - ERROR - Sign-in failed, the token endpoint answered:",
            "{'correlation_id': '2d1e0f9a-8b7c-4d5e-9f4a-3b2c1d0e9f8a',",
            " 'error': 'invalid_client',",
            " 'error_codes': [7000215],",
            " 'error_description': 'AADSTS7000215: Invalid client secret provided.'}",
        ],
        failures: 1,
        deliveries: &[Delivery::EventPerLine],
    },
    Case {
        why: "a traceback split between two subscription batches (two Lambda invocations): the second batch starts with a quoted source line, which is then read as a plain record of its own and matched",
        lines: &[
            "2025-05-18 07:50:02,118 - uvicorn.error - ERROR - Exception in ASGI application",
            "Traceback (most recent call last):",
            "  File \"/app/app/api/deps.py\", line 37, in get_current_user",
            "    credentials_exception = HTTPException(status_code=401, detail=\"Could not validate credentials\")",
            "  File \"/app/app/api/deps.py\", line 44, in get_current_user",
            "    tenant = settings.TENANTS[payload[\"tid\"]]",
            "KeyError: 'tid'",
        ],
        failures: 0,
        deliveries: &[Delivery::TwoBatches(3)],
    },
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn project_root() -> PathBuf {
    manifest_dir().join("..")
}

fn data(name: &str) -> PathBuf {
    manifest_dir().join("data").join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn rules_file() -> PathBuf {
    project_root().join("infra/rules/default.toml")
}

fn default_alert_rules() -> PathBuf {
    project_root().join("infra/alerts/default.toml")
}

/// A CloudWatch Logs subscription payload carrying `messages` as events
/// `e{first_id}`, ... one millisecond apart from `BATCH_TIME_MS + first_id`.
fn subscription_batch(messages: &[String], first_id: usize) -> Vec<u8> {
    let events = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let n = first_id + i;
            logs::event(format!("e{n}"), BATCH_TIME_MS + n as i64, m.as_str())
        })
        .collect();
    subscription_payload(events)
}

/// The files that deliver `lines` as `delivery`, named after `name`.
fn deliver(dir: &TempDir, name: &str, lines: &[String], delivery: Delivery) -> Vec<PathBuf> {
    let per_line = |lines: &[String]| -> Vec<String> {
        // CloudWatch Logs takes no empty event.
        lines
            .iter()
            .filter(|l| !l.trim().is_empty())
            .cloned()
            .collect()
    };
    match delivery {
        Delivery::File => vec![dir.file(&format!("{name}.log"), lines.join("\n") + "\n")],
        Delivery::OneEvent => vec![dir.file(
            &format!("{name}.json"),
            subscription_batch(&[lines.join("\n")], 0),
        )],
        Delivery::EventPerLine => vec![dir.file(
            &format!("{name}.json"),
            subscription_batch(&per_line(lines), 0),
        )],
        Delivery::TwoBatches(at) => {
            let first = per_line(&lines[..at]);
            let second = per_line(&lines[at..]);
            vec![
                dir.file(&format!("{name}-1.json"), subscription_batch(&first, 0)),
                dir.file(
                    &format!("{name}-2.json"),
                    subscription_batch(&second, first.len()),
                ),
            ]
        }
    }
}

/// Runs replay; stdout and stderr of a successful run.
fn replay_ok(args: &[&Path]) -> (String, String) {
    let out = replay(args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "replay {args:?} failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// `replay --format json`: series → value.
fn metrics(rules: &Path, logs: &[PathBuf]) -> BTreeMap<String, f64> {
    let mut args = vec![
        Path::new("--format"),
        Path::new("json"),
        Path::new("--rules"),
        rules,
    ];
    args.extend(logs.iter().map(PathBuf::as_path));
    let (stdout, _) = replay_ok(&args);
    let json: BTreeMap<String, Value> =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("replay JSON: {e}: {stdout}"));
    json.into_iter()
        .map(|(k, v)| {
            let n = v
                .as_f64()
                .unwrap_or_else(|| panic!("{k}: {v} is not a number"));
            (k, n)
        })
        .collect()
}

/// What `replay --alerts` reports on stderr beside the transitions.
#[derive(Debug, Default)]
struct AlertSummary {
    /// Signals raised, by name: `replay: 58 signals (auth_failures 52,
    /// error_logs 6)`.
    raised: BTreeMap<String, u64>,
    /// Signals each alert rule counted: `replay: rule auth_failures: 52
    /// counted[, dropped missing_key 3, ...]`. A rule no signal was offered
    /// to has no line.
    counted: BTreeMap<String, u64>,
}

impl AlertSummary {
    fn parse(stderr: &str) -> Self {
        let mut summary = AlertSummary::default();
        let mut total: Option<u64> = None;
        let number = |text: &str| -> u64 {
            text.trim()
                .parse()
                .unwrap_or_else(|_| panic!("not a count: {text:?} in {stderr:?}"))
        };
        for line in stderr.lines() {
            let Some(rest) = line.strip_prefix("replay: ") else {
                continue;
            };
            if let Some(rest) = rest.strip_prefix("rule ") {
                let (rule, rest) = rest
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("rule line {line:?}"));
                let (n, _) = rest
                    .split_once(" counted")
                    .unwrap_or_else(|| panic!("rule line {line:?}"));
                summary.counted.insert(rule.to_owned(), number(n));
            } else if let Some((n, by_name)) = rest.split_once(" signals")
                && n.bytes().all(|b| b.is_ascii_digit())
            {
                assert!(total.is_none(), "two signal lines in {stderr:?}");
                total = Some(number(n));
                let by_name = by_name.trim();
                if let Some(list) = by_name.strip_prefix('(').and_then(|l| l.strip_suffix(')')) {
                    for item in list.split(", ") {
                        let (name, n) = item
                            .rsplit_once(' ')
                            .unwrap_or_else(|| panic!("signal count {item:?} in {line:?}"));
                        summary.raised.insert(name.to_owned(), number(n));
                    }
                }
            }
        }
        let total = total.unwrap_or_else(|| panic!("no `replay: N signals` line in {stderr:?}"));
        assert_eq!(
            summary.raised.values().sum::<u64>(),
            total,
            "signals by name do not add up in {stderr:?}"
        );
        summary
    }

    /// Signals `rule` counted (none when it has no line).
    fn counted(&self, rule: &str) -> u64 {
        self.counted.get(rule).copied().unwrap_or(0)
    }

    fn raised(&self, signal: &str) -> u64 {
        self.raised.get(signal).copied().unwrap_or(0)
    }
}

/// `replay --alerts`: the transitions and the stderr summary.
fn backtest(rules: &Path, alert_rules: &Path, logs: &[PathBuf]) -> (Vec<Value>, AlertSummary) {
    let mut args = vec![
        Path::new("--alerts"),
        Path::new("--alert-rules"),
        alert_rules,
        Path::new("--rules"),
        rules,
    ];
    args.extend(logs.iter().map(PathBuf::as_path));
    let (stdout, stderr) = replay_ok(&args);
    let transitions = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    (transitions, AlertSummary::parse(&stderr))
}

/// Sum of the `auth_requests_total` / `token_operations_total` series with
/// `status=failure`.
fn failure_count(series: &BTreeMap<String, f64>) -> f64 {
    series
        .iter()
        .filter(|(k, _)| {
            (k.starts_with("auth_requests_total{") || k.starts_with("token_operations_total{"))
                && k.contains("status=failure")
        })
        .map(|(_, v)| v)
        .sum()
}

/// What the rules file declares, read line by line (the test has no TOML
/// parser): rule names in file order, the `auth` group.
struct RulesInfo {
    text: String,
    rules: Vec<String>,
    auth_group: BTreeSet<String>,
}

fn quoted(line: &str, key: &str) -> Option<String> {
    let rest = line.trim().strip_prefix(key)?.trim_start();
    let rest = rest.strip_prefix('=')?.trim();
    Some(rest.strip_prefix('"')?.strip_suffix('"')?.to_owned())
}

fn rules_info() -> RulesInfo {
    let text = read(&rules_file());
    let mut info = RulesInfo {
        text: text.clone(),
        rules: Vec::new(),
        auth_group: BTreeSet::new(),
    };
    // The table the following `name =` belongs to.
    let mut table = "";
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("[[") {
            table = trimmed;
            continue;
        }
        if table == "[[rule]]" {
            if let Some(name) = quoted(line, "name") {
                info.rules.push(name);
            } else if quoted(line, "group").as_deref() == Some("auth") {
                let rule = info.rules.last().cloned().unwrap_or_default();
                info.auth_group.insert(rule);
            }
        }
    }
    assert!(info.rules.len() > 10 && info.auth_group.len() >= 4);
    info
}

/// The rules with one more counter per rule, `MATCHED{rule=<name>}`: the
/// JSON output then names the rules a record matched.
fn instrumented(info: &RulesInfo) -> String {
    let tag = |name: &str| {
        format!(
            "\n[[rule.metric]]\nname = \"{MATCHED}\"\ntype = \"counter\"\nlabels = {{ rule = \"{name}\" }}\n\n"
        )
    };
    let mut out = String::new();
    let mut names = info.rules.iter();
    let mut open = false;
    for line in info.text.lines() {
        if line.trim() == "[[rule]]" {
            if open {
                let name = names.next().unwrap_or_else(|| panic!("rule count"));
                out.push_str(&tag(name));
            }
            open = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    if open {
        let name = names.next().unwrap_or_else(|| panic!("rule count"));
        out.push_str(&tag(name));
    }
    assert!(names.next().is_none(), "every rule tagged");
    out
}

/// A line or case and what it became.
#[derive(Debug, Clone)]
struct Outcome {
    /// The text replayed, lines joined by `\n`.
    text: String,
    /// Rules that matched, in file order, `all_records` left out.
    rules: Vec<String>,
    /// Series updated, but for the `EVERY_RECORD` counters and the
    /// instrumentation counter.
    series: BTreeMap<String, f64>,
    /// Records by format (`log_records_total{format}`).
    formats: BTreeMap<String, u64>,
    /// Lines (or events) joined to the record before them.
    joined: u64,
    /// (logger, level) of the records (`log_messages_total{level,logger}`),
    /// with how many records had them.
    loggers: BTreeMap<(String, String), u64>,
    /// Signals raised, by name.
    signals: BTreeMap<String, u64>,
    /// `auth_failures` signals the guide's service-wide alert rule counted.
    auth_failures: u64,
}

impl Outcome {
    fn records(&self) -> u64 {
        self.formats.values().sum()
    }

    /// What decides whether a case is classified alike in two deliveries.
    fn verdict(&self) -> (u64, u64, &[String], Vec<&String>) {
        (
            self.auth_failures,
            failure_count(&self.series) as u64,
            &self.rules,
            self.signals.keys().collect(),
        )
    }
}

/// `name{a=x,b=y}` → the value of `label`.
fn label<'k>(key: &'k str, label: &str) -> Option<&'k str> {
    let inner = key.split_once('{')?.1.strip_suffix('}')?;
    inner
        .split(',')
        .find_map(|kv| kv.strip_prefix(label)?.strip_prefix('='))
}

/// One replay job: the text, and how it is delivered.
struct Job {
    lines: Vec<String>,
    delivery: Delivery,
}

fn classify_all(jobs: &[Job], info: &RulesInfo, dir: &TempDir) -> Vec<Outcome> {
    let rules = dir.file("instrumented.toml", instrumented(info));
    let auth_only = dir.file("auth-only.toml", CONTRACT_AUTH_ALERT);
    let classify = |index: usize, job: &Job| -> Outcome {
        let logs = deliver(dir, &format!("job-{index}"), &job.lines, job.delivery);
        let mut outcome = Outcome {
            text: job.lines.join("\n"),
            rules: Vec::new(),
            series: BTreeMap::new(),
            formats: BTreeMap::new(),
            joined: 0,
            loggers: BTreeMap::new(),
            signals: BTreeMap::new(),
            auth_failures: 0,
        };
        let mut matched: BTreeSet<String> = BTreeSet::new();
        for (key, value) in metrics(&rules, &logs) {
            if let Some(rule) = key
                .strip_prefix(MATCHED)
                .and_then(|k| k.strip_prefix("{rule="))
                .and_then(|k| k.strip_suffix('}'))
            {
                matched.insert(rule.to_owned());
            } else if key.starts_with("log_records_total{") {
                let format = label(&key, "format").unwrap_or_else(|| panic!("{key}"));
                outcome.formats.insert(format.to_owned(), value as u64);
            } else if key.starts_with("log_lines_joined_total{") {
                outcome.joined = value as u64;
            } else if key.starts_with("log_messages_total{") {
                let get = |l| label(&key, l).unwrap_or_else(|| panic!("{key}")).to_owned();
                outcome
                    .loggers
                    .insert((get("logger"), get("level")), value as u64);
            } else if !EVERY_RECORD.iter().any(|p| key.starts_with(p)) {
                outcome.series.insert(key, value);
            }
        }
        outcome.rules = info
            .rules
            .iter()
            .filter(|r| matched.contains(*r) && *r != "all_records")
            .cloned()
            .collect();
        let (_, summary) = backtest(&rules, &auth_only, &logs);
        outcome.auth_failures = summary.counted("auth_failures");
        // The service-wide rule counts every signal it is offered.
        assert_eq!(
            outcome.auth_failures,
            summary.raised("auth_failures"),
            "{:?}: {summary:?}",
            outcome.text
        );
        outcome.signals = summary.raised;
        outcome
    };
    // A few jobs per thread: every job is two short process runs.
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let mut results: Vec<Option<Outcome>> = vec![None; jobs.len()];
    std::thread::scope(|scope| {
        let chunk = jobs.len().div_ceil(workers).max(1);
        for (n, (jobs, slots)) in jobs
            .chunks(chunk)
            .zip(results.chunks_mut(chunk))
            .enumerate()
        {
            let classify = &classify;
            scope.spawn(move || {
                for (i, (job, slot)) in jobs.iter().zip(slots.iter_mut()).enumerate() {
                    *slot = Some(classify(n * chunk + i, job));
                }
            });
        }
    });
    results
        .into_iter()
        .map(|o| o.unwrap_or_else(|| panic!("a job was not classified")))
        .collect()
}

fn corpus_lines(name: &str) -> Vec<String> {
    read(&data(name))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn case_lines(case: &Case) -> Vec<String> {
    case.lines.iter().map(|l| (*l).to_owned()).collect()
}

struct Corpus {
    failures: Vec<Outcome>,
    near_misses: Vec<Outcome>,
    /// Per case, one outcome per delivery, in the order of its `deliveries`.
    cases: Vec<Vec<Outcome>>,
    gaps: Vec<Outcome>,
    auth_group: BTreeSet<String>,
}

/// Every corpus line, case and known gap, classified once per test run
/// (the tests share it).
fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let info = rules_info();
        let dir = TempDir::new("lines");
        let failures = corpus_lines(FAILURES);
        let near_misses = corpus_lines(NEAR_MISSES);
        let mut jobs: Vec<Job> = failures
            .iter()
            .chain(&near_misses)
            .map(|l| Job {
                lines: vec![l.clone()],
                delivery: Delivery::File,
            })
            .collect();
        for case in &CASES {
            for delivery in case.deliveries {
                jobs.push(Job {
                    lines: case_lines(case),
                    delivery: *delivery,
                });
            }
        }
        for gap in &KNOWN_GAPS {
            assert_eq!(gap.deliveries.len(), 1, "{}", gap.why);
            jobs.push(Job {
                lines: case_lines(gap),
                delivery: gap.deliveries[0],
            });
        }
        let mut outcomes = classify_all(&jobs, &info, &dir).into_iter();
        let mut take = |n: usize| outcomes.by_ref().take(n).collect::<Vec<_>>();
        let failures = take(failures.len());
        let near_misses = take(near_misses.len());
        let cases = CASES.iter().map(|c| take(c.deliveries.len())).collect();
        let gaps = take(KNOWN_GAPS.len());
        Corpus {
            failures,
            near_misses,
            cases,
            gaps,
            auth_group: info.auth_group,
        }
    })
}

/// How a corpus line is written.
#[derive(Debug, PartialEq, Eq)]
enum Shape<'a> {
    /// `2025-05-18 07:42:54,855 - logger - LEVEL - message`.
    Python {
        time: &'a str,
        logger: &'a str,
        level: &'a str,
        message: &'a str,
    },
    /// Any other line: a plain record, logger `unknown`, the level of a
    /// leading `LEVEL:` (uvicorn, logging.basicConfig), else `unknown`.
    Plain { level: &'a str, message: &'a str },
}

const LEVELS: [&str; 5] = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

fn shape(line: &str) -> Shape<'_> {
    let python_time = |t: &str| {
        t.len() == 23
            && t.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                10 => b == b' ',
                13 | 16 => b == b':',
                19 => b == b',',
                _ => b.is_ascii_digit(),
            })
    };
    let mut parts = line.splitn(4, " - ");
    if let (Some(time), Some(logger), Some(level), Some(message)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
        && python_time(time)
    {
        return Shape::Python {
            time,
            logger,
            level,
            message,
        };
    }
    match line.split_once(':') {
        Some((level, message)) if LEVELS.contains(&level) => Shape::Plain {
            level,
            message: message.trim(),
        },
        _ => Shape::Plain {
            level: "unknown",
            message: line.trim(),
        },
    }
}

/// The message column: what the regexes search.
fn message(line: &str) -> &str {
    match shape(line) {
        Shape::Python { message, .. } | Shape::Plain { message, .. } => message,
    }
}

/// The time of a Python logging line.
fn python_time(line: &str) -> &str {
    match shape(line) {
        Shape::Python { time, .. } => time,
        Shape::Plain { .. } => panic!("not a Python logging record: {line}"),
    }
}

fn describe(o: &Outcome) -> String {
    format!(
        "{:?}: formats {:?}, rules {:?}, series {:?}, signals {:?}, auth_failures {}",
        o.text, o.formats, o.rules, o.series, o.signals, o.auth_failures
    )
}

#[test]
fn the_corpus_is_large_and_distinct() {
    for (name, at_least, plain_at_least) in [(FAILURES, 55, 8), (NEAR_MISSES, 35, 7)] {
        let lines = corpus_lines(name);
        assert!(lines.len() >= at_least, "{name}: {} lines", lines.len());
        let messages: BTreeSet<&str> = lines.iter().map(|l| message(l)).collect();
        assert_eq!(messages.len(), lines.len(), "{name}: a message repeats");
        let mut plain = 0;
        for line in &lines {
            match shape(line) {
                Shape::Python {
                    logger,
                    level,
                    message,
                    ..
                } => {
                    assert!(!logger.is_empty() && !logger.contains(' '), "{line}");
                    assert!(LEVELS.contains(&level), "{line}");
                    assert!(!message.is_empty(), "{line}");
                }
                Shape::Plain { message, .. } => {
                    plain += 1;
                    assert!(!message.is_empty(), "{line}");
                }
            }
            // The table puts each line in a code span.
            assert!(!line.contains('`'), "{line}");
        }
        assert!(plain >= plain_at_least, "{name}: {plain} plain lines");
    }
}

/// Each corpus line is one record, read as the test expects: a Python
/// logging line as a text record with its logger and level, uvicorn's
/// access line as an access record, any other line as a plain record
/// (logger `unknown`, the level of its prefix).
#[test]
fn every_line_is_one_record() {
    let corpus = corpus();
    let mut wrong = Vec::new();
    for o in corpus.failures.iter().chain(&corpus.near_misses) {
        let (format, logger, level) = match shape(&o.text) {
            Shape::Python { logger, level, .. } => ("text", logger, level),
            // uvicorn's own access line: an access record with its fields.
            Shape::Plain { level, message } if message.contains(" HTTP/") => {
                ("access", "uvicorn.access", level)
            }
            Shape::Plain { level, .. } => ("plain", "unknown", level),
        };
        let expected_formats = BTreeMap::from([(format.to_owned(), 1)]);
        let expected_loggers = BTreeMap::from([((logger.to_owned(), level.to_owned()), 1)]);
        if o.formats != expected_formats || o.loggers != expected_loggers || o.joined != 0 {
            wrong.push(format!(
                "{}, loggers {:?}, joined {}",
                describe(o),
                o.loggers,
                o.joined
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "not read as expected:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_failure_wording_counts_once() {
    let corpus = corpus();
    let mut wrong = Vec::new();
    for o in &corpus.failures {
        let auth_rules = o
            .rules
            .iter()
            .filter(|r| corpus.auth_group.contains(*r))
            .count();
        let auth_failure_series = o
            .series
            .iter()
            .filter(|(k, _)| k.starts_with("auth_requests_total{") && k.contains("status=failure"))
            .map(|(_, v)| v)
            .sum::<f64>();
        if auth_rules != 1
            || o.auth_failures != 1
            || auth_failure_series != 1.0
            || failure_count(&o.series) != 1.0
        {
            wrong.push(describe(o));
        }
    }
    assert!(
        wrong.is_empty(),
        "not counted exactly once:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_near_miss_counts() {
    let corpus = corpus();
    let wrong: Vec<String> = corpus
        .near_misses
        .iter()
        .filter(|o| o.auth_failures != 0 || failure_count(&o.series) != 0.0)
        .map(describe)
        .collect();
    assert!(
        wrong.is_empty(),
        "counted as failures:\n{}",
        wrong.join("\n")
    );
}

/// Each case gives its number of failures, and the same in every delivery
/// it is checked with.
#[test]
fn records_over_several_lines_count_as_expected() {
    let corpus = corpus();
    let mut wrong = Vec::new();
    for (case, outcomes) in CASES.iter().zip(&corpus.cases) {
        for (delivery, o) in case.deliveries.iter().zip(outcomes) {
            if o.auth_failures != case.failures
                || failure_count(&o.series) != case.failures as f64
                || o.verdict() != outcomes[0].verdict()
            {
                wrong.push(format!(
                    "{} as {}: {}",
                    case.why,
                    delivery.describe(),
                    describe(o)
                ));
            }
        }
        // A traceback is joined into its record, whatever the delivery.
        let file = &outcomes[0];
        if case
            .lines
            .get(1)
            .is_some_and(|l| l.starts_with("Traceback"))
            && file.records() != 1
        {
            wrong.push(format!("{}: not one record: {}", case.why, describe(file)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The cases one after the other in one file, and in one subscription
/// batch: no case's lines join another's record.
#[test]
fn the_cases_replayed_together() {
    let dir = TempDir::new("cases");
    let rules = rules_file();
    let auth_only = dir.file("auth-only.toml", CONTRACT_AUTH_ALERT);
    let lines: Vec<String> = CASES.iter().flat_map(case_lines).collect();
    let expected: u64 = CASES.iter().map(|c| c.failures).sum();
    for delivery in [Delivery::File, Delivery::EventPerLine] {
        let logs = deliver(&dir, "cases", &lines, delivery);
        let series = metrics(&rules, &logs);
        assert_eq!(
            failure_count(&series),
            expected as f64,
            "{delivery:?}: {series:?}"
        );
        let (_, summary) = backtest(&rules, &auth_only, &logs);
        assert_eq!(
            summary.counted("auth_failures"),
            expected,
            "{delivery:?}: {summary:?}"
        );
    }
}

/// The whole files, as a user backtesting the rules would replay them.
#[test]
fn whole_files_give_one_failure_per_line() {
    let dir = TempDir::new("files");
    let rules = rules_file();
    let auth_only = dir.file("auth-only.toml", CONTRACT_AUTH_ALERT);
    let failures = corpus_lines(FAILURES);
    let near_misses = corpus_lines(NEAR_MISSES);

    for (name, lines, per_line) in [(FAILURES, &failures, 1.0), (NEAR_MISSES, &near_misses, 0.0)] {
        let n = lines.len() as f64;
        let series = metrics(&rules, &[data(name)]);
        assert_eq!(failure_count(&series), n * per_line, "{name}: {series:?}");
        assert_eq!(series["log_events_total{}"], n, "{name}");
        let records: f64 = series
            .iter()
            .filter(|(k, _)| k.starts_with("log_records_total{"))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(records, n, "{name}: {series:?}");
        assert_eq!(
            series
                .get("log_lines_joined_total{}")
                .copied()
                .unwrap_or(0.0),
            0.0,
            "{name}: {series:?}"
        );
    }

    let (_, summary) = backtest(&rules, &auth_only, &[data(FAILURES)]);
    assert_eq!(summary.counted("auth_failures"), failures.len() as u64);
    assert_eq!(summary.raised("auth_failures"), failures.len() as u64);
    let (transitions, summary) = backtest(&rules, &auth_only, &[data(NEAR_MISSES)]);
    assert_eq!(transitions.len(), 0, "{transitions:?}");
    assert_eq!(summary.raised("auth_failures"), 0, "{summary:?}");
}

/// `2025-05-18 07:42:54,855` → `2025-05-18T07:42:54.855Z`.
fn rfc3339(python_time: &str) -> String {
    format!(
        "{}Z",
        python_time.replacen(' ', "T", 1).replacen(',', ".", 1)
    )
}

/// The first transition of `rule`: firing at the fifth failure, count 5,
/// severity high.
fn assert_fires_at_the_fifth_failure(transitions: &[Value], rule: &str) {
    let fifth = python_time(&corpus_lines(FAILURES)[4]).to_owned();
    let first = transitions
        .iter()
        .find(|t| t["rule"] == rule)
        .unwrap_or_else(|| panic!("{rule} did not fire: {transitions:?}"));
    assert_eq!(first["status"], "firing");
    assert_eq!(first["count"], 5);
    assert_eq!(first["severity"], "high");
    assert_eq!(first["at"], Value::String(rfc3339(&fifth)));
}

/// The guide's `auth_failures` alert (5 in 300 s across the service) fires
/// on the failure corpus, at its fifth line.
#[test]
fn the_auth_failures_alert_fires_on_the_corpus() {
    let dir = TempDir::new("alert");
    let alert = dir.file("auth-only.toml", CONTRACT_AUTH_ALERT);
    let (transitions, _) = backtest(&rules_file(), &alert, &[data(FAILURES)]);
    assert_eq!(transitions[0]["rule"], "auth_failures", "{transitions:?}");
    assert_fires_at_the_fifth_failure(&transitions, "auth_failures");
}

/// The same with the default alert rules (`infra/alerts/default.toml`),
/// whose `auth_failures` counts across the service: every failure of the
/// corpus counts, though none names an address or a user.
#[test]
fn the_default_auth_failures_alert_fires_on_the_corpus() {
    let failures = corpus_lines(FAILURES).len() as u64;
    let (transitions, summary) = backtest(&rules_file(), &default_alert_rules(), &[data(FAILURES)]);
    assert_fires_at_the_fifth_failure(&transitions, "auth_failures");
    assert_eq!(summary.counted("auth_failures"), failures, "{summary:?}");
}

/// Ignored until the engine handles them (see each gap's reason).
#[test]
#[ignore = "the engine does not handle these yet: see KNOWN_GAPS"]
fn known_gaps_are_classified() {
    let wrong: Vec<String> = KNOWN_GAPS
        .iter()
        .zip(&corpus().gaps)
        .filter(|(gap, o)| {
            o.auth_failures != gap.failures || failure_count(&o.series) != gap.failures as f64
        })
        .map(|(gap, o)| format!("{}: {}", gap.why, describe(o)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Markdown code span of `text`, `|` escaped for a table cell.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('|', "\\|"))
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    if items.is_empty() {
        "—".to_owned()
    } else {
        items.join("<br>")
    }
}

fn series_cell(o: &Outcome) -> String {
    list(o.series.iter().map(|(k, v)| {
        if *v == 1.0 {
            code(k)
        } else {
            format!("{} {v}", code(k))
        }
    }))
}

fn signals_cell(o: &Outcome) -> String {
    list(o.signals.iter().map(|(s, n)| {
        if *n == 1 {
            code(s)
        } else {
            format!("{} ×{n}", code(s))
        }
    }))
}

/// `text 1`, `text 1, plain 2`.
fn formats_cell(o: &Outcome) -> String {
    o.formats
        .iter()
        .map(|(f, n)| format!("{f} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn rows(out: &mut String, outcomes: &[Outcome]) {
    out.push_str("| # | read as | logger | level | message | rule | series | signals |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for (i, o) in outcomes.iter().enumerate() {
        let (logger, level) = o
            .loggers
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| panic!("no record: {}", describe(o)));
        let format = o.formats.keys().next().cloned().unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {format} | {} | {level} | {} | {} | {} | {} |",
            i + 1,
            code(&logger),
            code(message(&o.text)),
            list(o.rules.iter().map(|r| code(r))),
            series_cell(o),
            signals_cell(o),
        );
    }
}

/// One case: its reason, its text, what it became.
fn case_item(out: &mut String, case: &Case, o: &Outcome, deliveries: &str) {
    let _ = write!(
        out,
        "\n- {}:\n\n  ```text\n{}\n  ```\n\n  {deliveries}: read as {}, {} line(s) joined; rule: {}; series: {}; signals: {}\n",
        case.why,
        o.text
            .lines()
            .map(|l| if l.is_empty() {
                String::new()
            } else {
                format!("  {l}")
            })
            .collect::<Vec<_>>()
            .join("\n"),
        formats_cell(o),
        o.joined,
        list(o.rules.iter().map(|r| code(r))).replace("<br>", ", "),
        series_cell(o).replace("<br>", ", "),
        signals_cell(o).replace("<br>", ", "),
    );
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn table(corpus: &Corpus) -> String {
    let mut out = String::new();
    out.push_str(
        "# What each failure wording becomes\n\
         \n\
         <!-- Generated by tests/files/failure_wordings.rs: do not edit. -->\n\
         \n\
         Every line of `tests/data/fastapi_auth_failures.log` and\n\
         `tests/data/auth_near_misses.log`, then records over several\n\
         lines (tracebacks, dicts printed after a message), each replayed alone\n\
         through the built `replay` binary with the default rules\n\
         (`infra/rules/default.toml`). Regenerate after changing the corpus, the\n\
         cases in the test or the rules:\n\
         \n\
         ```sh\n\
         cargo test -p replay --test failure_wordings -- --ignored regenerate_failure_wordings_table\n\
         ```\n\
         \n\
         (`failure_wordings::table_is_current` fails while this file is stale.)\n\
         \n\
         - **read as**: `text`, a Python logging record\n  \
           (`%(asctime)s - %(name)s - %(levelname)s - %(message)s`); `plain`, any\n  \
           other line (uvicorn's own output, `logging.basicConfig`'s\n  \
           `LEVEL:name:message`, a printed dict), whose logger is `unknown` and\n  \
           whose level is that of a leading `LEVEL:` (else `unknown`); `json`.\n\
         - **logger**, **level**: as the engine read them (the labels of\n  \
           `log_messages_total`).\n\
         - **message**: what the rules' regexes search: the text after the level\n  \
           (of a plain line, after its `LEVEL:`). Of a record over several lines\n  \
           they search the message and the exception lines of its traceback\n  \
           (`jose.exceptions.JWTError: ...`), not the source lines the traceback\n  \
           quotes.\n\
         - **rule**: the rules that matched, but for `all_records`, which every\n  \
           record matches. The `auth` group (`auth_attempt`, `oauth_flow_initiated`,\n  \
           `oauth_invalid_state`, `oauth_error_text`, `auth_failure_text`) counts\n  \
           a record once: the first of them that matches.\n\
         - **series**: the metric series updated (by 1 unless a value is shown), but\n  \
           for `log_events_total`, `log_records_total{format}`,\n  \
           `log_lines_joined_total` and `log_messages_total{level,logger}`, which\n  \
           every line or record updates.\n\
         - **signals**: the alert signals raised. `auth_failures` is what the\n  \
           guide's `auth_failures` alert counts (5 in 300 s across the service,\n  \
           LOG-CONTRACT.md section 3, `group_by = \"none\"` in\n  \
           `infra/alerts/default.toml`). Text and plain records name no address\n  \
           or user, so `auth_failures_by_ip`, `auth_failures_by_user` and the\n  \
           other per-key rules drop their signals as `missing_key`. `error_logs`\n  \
           comes from any ERROR or CRITICAL record.\n\
         \n",
    );
    let _ = writeln!(
        out,
        "## Failures: {} lines, each one `auth_failures` signal\n",
        corpus.failures.len()
    );
    rows(&mut out, &corpus.failures);
    let _ = writeln!(
        out,
        "\n## Near misses: {} lines, none an authentication failure\n",
        corpus.near_misses.len()
    );
    rows(&mut out, &corpus.near_misses);
    let _ = writeln!(
        out,
        "\n## Records over several lines: {} cases\n\n\
         Each replayed alone in the deliveries shown, with the same failures,\n\
         rules and signals in each: a file; one CloudWatch subscription event\n\
         holding the whole text; one event per line of one subscription batch.\n\
         A line that continues a record (indented, `Traceback (...`,\n\
         `During handling ...`, an exception line `module.SomeError: message`)\n\
         is joined to it, in a file as in a batch; what is shown below is the\n\
         file's.",
        CASES.len()
    );
    for (case, outcomes) in CASES.iter().zip(&corpus.cases) {
        let deliveries: Vec<String> = case.deliveries.iter().map(|d| d.describe()).collect();
        let failures = match case.failures {
            0 => "no failure".to_owned(),
            1 => "1 failure".to_owned(),
            n => format!("{n} failures"),
        };
        let head = format!("{failures}, as {}", and_list(&deliveries));
        case_item(&mut out, case, &outcomes[0], &head);
    }
    out.push_str(
        "\n## Known gaps\n\
         \n\
         What the engine cannot classify yet, and why; a rule cannot help, as\n\
         it sees one record at a time, its message and the exception lines of\n\
         its traceback. Each is replayed alone, delivered as shown.\n",
    );
    for (gap, o) in KNOWN_GAPS.iter().zip(&corpus.gaps) {
        let head = format!(
            "should give {} failure(s), gives {}, as {}",
            gap.failures,
            o.auth_failures,
            gap.deliveries[0].describe()
        );
        case_item(&mut out, gap, o, &head);
    }
    out
}

#[test]
fn table_is_current() {
    let path = project_root().join(TABLE);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let fresh = table(corpus());
    assert!(
        committed == fresh,
        "{TABLE} is stale: regenerate it with\n  \
         cargo test -p replay --test failure_wordings -- --ignored regenerate_failure_wordings_table"
    );
}

#[test]
#[ignore = "rewrites docs/failure-wordings.md; run on purpose"]
fn regenerate_failure_wordings_table() {
    let path = project_root().join(TABLE);
    write(&path, table(corpus()));
}
