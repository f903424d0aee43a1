//! `ops redrive [--dry-run] [--dead-letters] [--log-metrics-queue URL]
//! [--notifier-queue URL] [--emf-file PATH] [--max N]` and
//! `ops load [--senders N] [--batches N] [--events N] [--page-every N]`.
//! Reports are JSON on stdout; exit code 1 when something was left behind
//! (a message not applied, a page not seen), 2 on an error.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context;
use clap::{Arg, ArgAction, Command, value_parser};
use monitoring_adapters::aws::load_sdk_config;
use monitoring_adapters::dynamodb_alerts::DynamoAlertStore;
use monitoring_config::Env;
use ops::load::{self, LoadOptions};
use ops::redrive::{self, LogMetricsHandler, NotifierHandler, Options};

fn cli() -> Command {
    Command::new("ops")
        .about("Operations commands of the BlindspotX monitoring bundle (docs/runbooks/redrive.md)")
        .subcommand_required(true)
        .subcommand(
            Command::new("redrive")
                .about("Feed what the failure queues hold back through the functions' handlers, exactly once; requeue dead-lettered incident notices")
                .arg(Arg::new("dry-run").long("dry-run").action(ArgAction::SetTrue).help("report what would be applied; apply and delete nothing"))
                .arg(Arg::new("dead-letters").long("dead-letters").action(ArgAction::SetTrue).help("also put dead-lettered incident notices back in the outbox (after fixing the topic)"))
                .arg(Arg::new("log-metrics-queue").long("log-metrics-queue").env("LOG_METRICS_FAILURE_QUEUE_URL").help("URL of the log-metrics on-failure queue"))
                .arg(Arg::new("notifier-queue").long("notifier-queue").env("NOTIFIER_FAILURE_QUEUE_URL").help("URL of the incident-notifier on-failure queue"))
                .arg(Arg::new("emf-file").long("emf-file").help("where the EMF documents of the redriven log batches go (default: stderr)"))
                .arg(Arg::new("max").long("max").value_parser(value_parser!(usize)).default_value("10000").help("messages per queue at most")),
        )
        .subcommand(
            Command::new("load")
                .about("Bounded load test against the local stack (docs/scaling.md, BENCHMARKS.md)")
                .arg(Arg::new("senders").long("senders").value_parser(value_parser!(usize)).default_value("8"))
                .arg(Arg::new("batches").long("batches").value_parser(value_parser!(usize)).default_value("20").help("batches per sender"))
                .arg(Arg::new("events").long("events").value_parser(value_parser!(usize)).default_value("100").help("log events per batch"))
                .arg(Arg::new("page-every").long("page-every").value_parser(value_parser!(usize)).default_value("5").help("every n-th batch of a sender crosses a threshold")),
        )
}

fn main() -> ExitCode {
    monitoring_adapters::telemetry::init_stderr();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "ops: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "ops: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `Ok(false)`: something was left behind.
async fn run() -> anyhow::Result<bool> {
    let matches = cli().get_matches();
    let sdk = load_sdk_config().await;
    // stdout is locked only to print the report, never across an await:
    // a lock held by this task would block any worker thread that prints.
    match matches.subcommand() {
        Some(("redrive", m)) => {
            let options = Options {
                dry_run: m.get_flag("dry-run"),
                max_messages: m.get_one::<usize>("max").copied().unwrap_or(10_000),
                ..Options::default()
            };
            let env = Env::from_process();
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            let emf = Mutex::new(Vec::new());
            let mut clean = true;
            let mut report = serde_json::Map::new();
            if let Some(queue) = m.get_one::<String>("log-metrics-queue") {
                let app = log_metrics::deployed::deployed(&env, &sdk)
                    .await
                    .context("log-metrics configuration")?;
                let handler = LogMetricsHandler {
                    app: &app,
                    emf: &emf,
                };
                let r = redrive::redrive_queue(&sqs, queue, &handler, &options).await?;
                clean &= r.failed == 0 && r.unreadable == 0;
                report.insert("log_metrics".into(), serde_json::to_value(r)?);
            }
            if let Some(queue) = m.get_one::<String>("notifier-queue") {
                let notifier = incident_notifier::deployed::deployed(&env, &sdk)
                    .await
                    .context("incident-notifier configuration")?;
                let handler = NotifierHandler {
                    notifier: &notifier,
                };
                let r = redrive::redrive_queue(&sqs, queue, &handler, &options).await?;
                clean &= r.failed == 0 && r.unreadable == 0;
                report.insert("incident_notifier".into(), serde_json::to_value(r)?);
            }
            if m.get_flag("dead-letters") {
                let table =
                    env.string_or("TABLE_NAME", monitoring_config::probe::DEFAULT_TABLE_NAME);
                let store = DynamoAlertStore::new(&sdk, table);
                let r = redrive::requeue_dead_letters(&store, options.dry_run).await?;
                report.insert("dead_letters".into(), serde_json::to_value(r)?);
            }
            if report.is_empty() {
                anyhow::bail!(
                    "nothing to redrive: give --log-metrics-queue, --notifier-queue (or LOG_METRICS_FAILURE_QUEUE_URL, NOTIFIER_FAILURE_QUEUE_URL) or --dead-letters"
                );
            }
            match m.get_one::<String>("emf-file") {
                Some(path) => {
                    let mut f = std::fs::File::create(path).with_context(|| path.clone())?;
                    redrive::write_emf(&mut f, &emf)?;
                }
                None => redrive::write_emf(&mut std::io::stderr().lock(), &emf)?,
            }
            writeln!(
                std::io::stdout().lock(),
                "{}",
                serde_json::to_string_pretty(&report)?
            )?;
            Ok(clean)
        }
        Some(("load", m)) => {
            let get = |name: &str| m.get_one::<usize>(name).copied().unwrap_or_default();
            let options = LoadOptions {
                senders: get("senders"),
                batches: get("batches"),
                events: get("events"),
                page_every: get("page-every"),
            };
            let run_id = format!("{}", time::OffsetDateTime::now_utc().unix_timestamp_nanos());
            let report = load::run(&sdk, options, &run_id).await?;
            writeln!(
                std::io::stdout().lock(),
                "{}",
                serde_json::to_string_pretty(&report)?
            )?;
            Ok(report.pages_seen == report.pages_expected)
        }
        _ => anyhow::bail!("unknown subcommand"),
    }
}
