//! Backtest of the attack corpus `data/compromise.log` (issue 15): failed
//! logins alone raise high incidents that notify, and only a successful
//! login after a burst of failures raises the critical
//! `suspected_compromise` incidents the security responder acts on.
//!
//! The corpus, in event time (2025-06-03):
//! - 09:00: 12 failures against user …0a from one address; …0a logs in
//!   from another address half an hour later;
//! - 10:00: 6 failures against …0b, then …0b logs in at 10:01:30;
//! - 11:00: 4 failures against …0c, then a success (below the threshold);
//! - 12:00: 5 failures against …0d, the success 10 min 20 s after the last;
//! - 13:00: 6 failures against …0e, then text records whose
//!   outsider-chosen username spells a successful login of …0e.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const USER_A: &str = "7c0e9b1a-0000-4000-8000-00000000000a";
const USER_B: &str = "7c0e9b1a-0000-4000-8000-00000000000b";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/compromise.log")
}

/// Every line of `replay --alerts` on the corpus.
fn transitions() -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_replay-cli"))
        .arg("--alerts")
        .arg(corpus())
        .env_remove("REPLAY_REDACTION_KEY")
        .output()
        .unwrap_or_else(|e| panic!("cannot run replay: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn text<'a>(t: &'a Value, field: &str) -> &'a str {
    t[field]
        .as_str()
        .unwrap_or_else(|| panic!("{t}: no {field}"))
}

#[test]
fn failures_alone_are_high_and_only_a_success_after_them_is_critical() {
    let all = transitions();
    let firing: Vec<&Value> = all.iter().filter(|t| t["status"] == "firing").collect();

    // Failures alone: brute_force fires for …0a (and …0b, …0e), high.
    let brute: Vec<(&str, &str)> = firing
        .iter()
        .filter(|t| t["rule"] == "brute_force")
        .map(|t| (text(t, "key"), text(t, "severity")))
        .collect();
    assert!(brute.contains(&(USER_A, "high")), "{brute:?}");
    assert!(brute.iter().all(|(_, s)| *s == "high"), "{brute:?}");

    // Nothing critical but the one compromised account, once per rule.
    let critical: Vec<(&str, &str, &str, u64)> = firing
        .iter()
        .filter(|t| t["severity"] == "critical")
        .map(|t| {
            (
                text(t, "rule"),
                text(t, "at"),
                text(t, "subject"),
                t["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        critical,
        [
            (
                "suspected_compromise",
                "2025-06-03T10:01:30.000Z",
                USER_B,
                6
            ),
            (
                "suspected_compromise_by_ip",
                "2025-06-03T10:01:30.000Z",
                USER_B,
                6
            ),
        ],
        "{all:#?}"
    );
    let keys: Vec<&str> = firing
        .iter()
        .filter(|t| t["severity"] == "critical")
        .map(|t| text(t, "key"))
        .collect();
    assert_eq!(keys[0], USER_B);
    assert!(
        keys[1].starts_with("ip:") && !keys[1].contains("198.51.100.23"),
        "the address stays pseudonymized: {}",
        keys[1]
    );

    // Counting rules carry no subject.
    assert!(
        all.iter()
            .filter(|t| !text(t, "rule").starts_with("suspected_compromise"))
            .all(|t| t.get("subject").is_none())
    );
}
