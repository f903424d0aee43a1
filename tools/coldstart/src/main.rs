//! `coldstart`: cold start and peak memory of each function's release
//! binary under a local Lambda Runtime API stub (issue 7). Usage in `USAGE`;
//! `bench/coldstart.sh` builds the binaries and runs it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use axum::body::Bytes;
use coldstart::stub::{Stub, StubEvent};
use coldstart::{
    Endpoints, FUNCTIONS, FunctionReport, Invocation, SUBSCRIPTION_MESSAGE_BYTES, TARGETS,
    function_env, misses, render_json, render_table, sample_events, status_kib,
    subscription_payload, summarize,
};
use tokio::process::{Child, Command};

const USAGE: &str = "\
usage: coldstart [--runs N] [--format table|json] [--check] [--only F1,F2]
                 [--target-dir DIR] [--profile NAME] [--events DIR]
                 [--payload-bytes N] [--invoke-timeout SECONDS]

Starts <target-dir>/<profile>/<function> (profile default: lambda, the
size-optimised profile the Lambda artifacts are built with) for each function against a local stub of
the Lambda Runtime API. Init time: from just before the spawn to the stub
receiving the first GET /runtime/invocation/next, N times (default 20, after
one uncounted warm-up start). Then one more start is fed the function's
sample events (events/*.json; log-metrics also a generated subscription
payload of --payload-bytes of log messages, default 1 MiB) and its VmHWM is
read from /proc after the last response. AWS clients point at
$AWS_ENDPOINT_URL when set (the local stack: eval \"$(scripts/stack.sh env)\"),
else at a local port nothing listens on. Child logs go to
<target-dir>/coldstart/<function>.log.

--check exits 1 when a target is missed (init median <= 20 ms, peak RSS <= 40
MiB, stripped binary <= 10 MB).";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Table,
    Json,
}

#[derive(Debug)]
struct Options {
    runs: usize,
    format: Format,
    check: bool,
    only: Vec<String>,
    target_dir: PathBuf,
    profile: String,
    events_dir: PathBuf,
    payload_bytes: usize,
    invoke_timeout: Duration,
}

fn parse_args(args: &[String]) -> anyhow::Result<Option<Options>> {
    let mut o = Options {
        runs: 20,
        format: Format::Table,
        check: false,
        only: Vec::new(),
        target_dir: PathBuf::from("target"),
        profile: "lambda".to_owned(),
        events_dir: PathBuf::from("events"),
        payload_bytes: SUBSCRIPTION_MESSAGE_BYTES,
        invoke_timeout: Duration::from_secs(60),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--runs" => o.runs = value()?.parse().context("--runs")?,
            "--format" => {
                o.format = match value()?.as_str() {
                    "table" => Format::Table,
                    "json" => Format::Json,
                    other => bail!("--format {other}: expected table or json"),
                }
            }
            "--check" => o.check = true,
            "--only" => {
                o.only = value()?.split(',').map(|s| s.trim().to_owned()).collect();
                if let Some(f) = o.only.iter().find(|f| !FUNCTIONS.contains(&f.as_str())) {
                    bail!(
                        "--only: unknown function {f} (known: {})",
                        FUNCTIONS.join(", ")
                    );
                }
            }
            "--target-dir" => o.target_dir = PathBuf::from(value()?),
            "--profile" => o.profile = value()?.clone(),
            "--events" => o.events_dir = PathBuf::from(value()?),
            "--payload-bytes" => o.payload_bytes = value()?.parse().context("--payload-bytes")?,
            "--invoke-timeout" => {
                o.invoke_timeout =
                    Duration::from_secs(value()?.parse().context("--invoke-timeout")?)
            }
            other => bail!("unknown argument {other}\n\n{USAGE}"),
        }
    }
    if o.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(Some(o))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "coldstart: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "coldstart: {text}");
}

async fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let Some(opts) = parse_args(args)? else {
        coldstart::print(&format!("{USAGE}\n"))?;
        return Ok(ExitCode::SUCCESS);
    };
    let aws = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            // A port that was free a moment ago: AWS calls are refused at once.
            let port = std::net::TcpListener::bind(("127.0.0.1", 0))?
                .local_addr()?
                .port();
            note(&format!(
                "AWS_ENDPOINT_URL is not set: AWS calls go to 127.0.0.1:{port}, where nothing listens"
            ));
            format!("http://127.0.0.1:{port}")
        }
    };
    let log_dir = opts.target_dir.join("coldstart");
    std::fs::create_dir_all(&log_dir).with_context(|| log_dir.display().to_string())?;
    let mut reports = Vec::new();
    for function in FUNCTIONS {
        if !opts.only.is_empty() && !opts.only.iter().any(|f| f == function) {
            continue;
        }
        let events = load_events(function, &opts)?;
        let report = measure(function, &opts, &aws, &log_dir, &events).await;
        let missed = misses(&report, &TARGETS);
        note(&format!(
            "{function}: init median {}, peak RSS {}, {} missed",
            report
                .init
                .map_or_else(|| "-".to_owned(), |s| format!("{:.1} ms", s.median_ms)),
            report.peak_rss_kib.map_or_else(
                || "-".to_owned(),
                |k| format!("{:.1} MiB", coldstart::kib_to_mib(k))
            ),
            missed.len()
        ));
        reports.push(report);
    }
    let text = match opts.format {
        Format::Table => render_table(&reports, &TARGETS),
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&render_json(&reports, &TARGETS))?
        ),
    };
    coldstart::print(&text)?;
    let missed = reports.iter().any(|r| !misses(r, &TARGETS).is_empty());
    Ok(if opts.check && missed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The function's sample events, smallest first, then (log-metrics) the
/// generated subscription payload.
fn load_events(function: &str, opts: &Options) -> anyhow::Result<Vec<(String, Bytes)>> {
    let mut events = Vec::new();
    for name in sample_events(function) {
        let path = opts.events_dir.join(name);
        let body = std::fs::read(&path).with_context(|| path.display().to_string())?;
        events.push(((*name).to_owned(), Bytes::from(body)));
    }
    if function == "log-metrics" && opts.payload_bytes > 0 {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let p = subscription_payload(opts.payload_bytes, now_ms)?;
        note(&format!(
            "log-metrics: generated subscription payload: {} events, {} bytes of messages, event {} bytes",
            p.log_events,
            p.message_bytes,
            p.event.len()
        ));
        events.push((
            format!(
                "generated {:.1} MiB subscription",
                p.message_bytes as f64 / (1 << 20) as f64
            ),
            Bytes::from(p.event),
        ));
    }
    Ok(events)
}

/// A started process that reached `/next`.
struct Started {
    init: Duration,
    child: Child,
    stub: Stub,
}

async fn measure(
    function: &str,
    opts: &Options,
    aws: &str,
    log_dir: &Path,
    events: &[(String, Bytes)],
) -> FunctionReport {
    let binary = opts.target_dir.join(&opts.profile).join(function);
    let mut report = FunctionReport {
        function: function.to_owned(),
        binary: binary.display().to_string(),
        binary_bytes: std::fs::metadata(&binary).ok().map(|m| m.len()),
        init: None,
        init_failures: Vec::new(),
        rss_after_init_kib: None,
        peak_rss_kib: None,
        invocations: Vec::new(),
    };
    if report.binary_bytes.is_none() {
        report
            .init_failures
            .push(format!("{} not found: build it first", binary.display()));
        return report;
    }
    let init_log = log_dir.join(format!("{function}.init.log"));
    let deadline = opts.invoke_timeout;
    // One uncounted start: the binary into the page cache.
    if let Ok(s) = start(function, &binary, aws, &init_log, deadline).await {
        stop(s).await;
    }
    let mut samples = Vec::new();
    for _ in 0..opts.runs {
        match start(function, &binary, aws, &init_log, deadline).await {
            Ok(s) => {
                samples.push(s.init);
                stop(s).await;
            }
            Err(e) => report.init_failures.push(e),
        }
    }
    report.init = summarize(&samples);

    let log = log_dir.join(format!("{function}.log"));
    let mut s = match start(function, &binary, aws, &log, deadline).await {
        Ok(s) => s,
        Err(e) => {
            report.init_failures.push(e);
            return report;
        }
    };
    report.rss_after_init_kib = proc_status(&s.child, "VmRSS");
    for (n, (name, body)) in events.iter().enumerate() {
        let invocation = invoke(&mut s, n, name, body.clone(), opts.invoke_timeout).await;
        let stop_here = matches!(invocation.outcome.as_str(), "exited" | "timeout");
        report.invocations.push(invocation);
        if stop_here {
            break;
        }
    }
    report.peak_rss_kib = proc_status(&s.child, "VmHWM");
    stop(s).await;
    report
}

/// Spawns the binary and waits for its first `/next`.
async fn start(
    function: &str,
    binary: &Path,
    aws: &str,
    log: &Path,
    deadline: Duration,
) -> Result<Started, String> {
    let mut stub = Stub::start(function, deadline)
        .await
        .map_err(|e| format!("stub: {e}"))?;
    let endpoints = Endpoints {
        stub: stub.url(),
        aws: aws.to_owned(),
    };
    let env = function_env(function, &endpoints, &|k| std::env::var(k).ok());
    let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true);
    let t0 = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let timeout = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(timeout);
    loop {
        tokio::select! {
            event = stub.events.recv() => match event {
                Some(StubEvent::Next { at }) => {
                    return Ok(Started { init: at.saturating_duration_since(t0), child, stub });
                }
                Some(StubEvent::InitError { detail, .. }) => {
                    let _ = child.kill().await;
                    return Err(format!("init error: {detail}"));
                }
                Some(_) => {}
                None => return Err("the stub stopped".to_owned()),
            },
            status = child.wait() => {
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                return Err(format!(
                    "exited ({status}) before its first /next; log: {}{}",
                    log.display(),
                    last_line(log)
                ));
            }
            () = &mut timeout => {
                let _ = child.kill().await;
                return Err(format!("no /next within 30 s; log: {}", log.display()));
            }
        }
    }
}

/// Queues one event and waits for its response or error.
async fn invoke(
    s: &mut Started,
    n: usize,
    name: &str,
    body: Bytes,
    timeout: Duration,
) -> Invocation {
    let id = format!("c01d57a7-0000-4000-8000-{n:012x}");
    let event_bytes = body.len();
    let t0 = Instant::now();
    let result = |outcome: &str, at: Instant, detail: Option<String>| Invocation {
        event: name.to_owned(),
        event_bytes,
        outcome: outcome.to_owned(),
        ms: at.saturating_duration_since(t0).as_secs_f64() * 1e3,
        detail,
    };
    if !s.stub.invoke(&id, body) {
        return result("exited", Instant::now(), Some("the stub stopped".into()));
    }
    let limit = tokio::time::sleep(timeout);
    tokio::pin!(limit);
    loop {
        tokio::select! {
            event = s.stub.events.recv() => match event {
                Some(StubEvent::Response { id: got, at, .. }) if got == id => {
                    return result("response", at, None);
                }
                Some(StubEvent::Error { id: got, at, detail }) if got == id => {
                    return result("error", at, Some(detail));
                }
                Some(_) => {}
                None => return result("exited", Instant::now(), Some("the stub stopped".into())),
            },
            status = s.child.wait() => {
                let status = status.map_or_else(|e| e.to_string(), |st| st.to_string());
                return result("exited", Instant::now(), Some(format!("process exited ({status})")));
            }
            () = &mut limit => {
                return result("timeout", Instant::now(), Some(format!("no answer within {} s", timeout.as_secs())));
            }
        }
    }
}

async fn stop(mut s: Started) {
    let _ = s.child.kill().await;
    drop(s.stub);
}

/// A kB field of the live child's `/proc/<pid>/status`, in KiB.
fn proc_status(child: &Child, field: &str) -> Option<u64> {
    let pid = child.id()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_kib(&status, field)
}

/// `": <last line of the log>"`, shortened, or nothing.
fn last_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_owned)
        })
        .map(|l| format!(": {}", l.chars().take(300).collect::<String>()))
        .unwrap_or_default()
}
