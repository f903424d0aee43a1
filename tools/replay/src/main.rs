//! `replay [--rules PATH] [--format prometheus|openmetrics|json|emf] FILE...`: metrics to
//! stdout, a summary to stderr; exit code 2 on any error.

use std::io::{BufWriter, ErrorKind, Write};
use std::process::ExitCode;

use anyhow::Context;
use replay::{
    Command, KEY_ENV, OutputFormat, USAGE, alerts, load_rules, parse_args, redactor, render, replay,
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "replay: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args = match parse_args(std::env::args_os().skip(1))? {
        Command::Help => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{USAGE}")?;
            return Ok(());
        }
        Command::Run(args) => args,
    };
    // Detached: if it is still running at exit, nothing was waiting for it.
    std::thread::spawn(monitoring_core::domain::logs::redact::prepare);
    let rules = load_rules(args.rules.as_deref())?;
    let key = std::env::var(KEY_ENV).ok();
    let redactor = redactor(key.as_deref())?;
    if args.alerts {
        let alert_rules = alerts::load_alert_rules(args.alert_rules.as_deref())?;
        let report = alerts::backtest_files(
            &args.files,
            &rules,
            &redactor,
            alert_rules,
            args.text_utc_offset_ms,
        )?;
        let mut out = BufWriter::new(std::io::stdout().lock());
        match out
            .write_all(alerts::render_alerts(&report.lines).as_bytes())
            .and_then(|()| out.flush())
        {
            Err(e) if e.kind() != ErrorKind::BrokenPipe => return Err(e).context("writing stdout"),
            _ => {}
        }
        writeln!(std::io::stderr().lock(), "{}", report.render())?;
        return Ok(());
    }
    let emf_namespace = (args.format == OutputFormat::Emf).then_some(args.namespace.as_str());
    let result = replay(
        &args.files,
        &rules,
        &redactor,
        args.text_utc_offset_ms,
        emf_namespace,
    )?;

    let mut out = BufWriter::new(std::io::stdout().lock());
    match out
        .write_all(render(&result, args.format).as_bytes())
        .and_then(|()| out.flush())
    {
        // A closed pipe (`replay ... | head`) is the reader's choice.
        Err(e) if e.kind() != ErrorKind::BrokenPipe => {
            return Err(e).context("writing stdout");
        }
        _ => {}
    }
    writeln!(
        std::io::stderr().lock(),
        "{}",
        result.summary.render(result.series.len())
    )?;
    Ok(())
}
