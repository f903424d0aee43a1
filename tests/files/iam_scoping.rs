//! Least privilege on the monitoring table (issue 15, item 4): every
//! role's DynamoDB grants in template.yaml are scoped with
//! `dynamodb:LeadingKeys` (`ForAllValues:StringLike`) to exactly the
//! partition-key families its function's adapters read and write, as
//! `monitoring_adapters::key_layout` lays them out.
//!
//! Works on files only: template.yaml and the functions' entry points
//! (whose adapter wiring must match what key_layout says they use).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use monitoring_adapters::key_layout::{FUNCTIONS, Family, FunctionAccess};
use serde_yaml_ng::Value as Yaml;

/// Actions that read items, and the ones that write them (the items of a
/// TransactWriteItems are authorized as Put/Update/Delete).
const READS: [&str; 3] = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
];
const WRITES: [&str; 4] = [
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
];

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn template() -> Yaml {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn patterns(families: &[Family]) -> BTreeSet<String> {
    families.iter().map(|f| f.leading_keys_pattern()).collect()
}

fn strings(v: &Yaml) -> Vec<String> {
    match v {
        Yaml::String(s) => vec![s.clone()],
        Yaml::Sequence(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// A statement, looking through `!If [cond, statement, !Ref AWS::NoValue]`.
fn statements(role: &Yaml) -> Vec<Yaml> {
    let mut out = Vec::new();
    for policy in role["Properties"]["Policies"].as_sequence().unwrap() {
        for s in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
            match s {
                Yaml::Tagged(t) if t.tag == "If" => out.push(t.value[1].clone()),
                other => out.push(other.clone()),
            }
        }
    }
    out
}

/// Whether the statement's resource is the monitoring table (or its
/// indexes, or everything).
fn on_table(statement: &Yaml) -> bool {
    let resource = &statement["Resource"];
    let text = serde_yaml_ng::to_string(resource).unwrap();
    text.contains("MonitoringTable") || resource.as_str() == Some("*")
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Granted {
    reads: BTreeSet<String>,
    writes: BTreeSet<String>,
}

/// The LeadingKeys patterns each of a role's table statements grants,
/// failing on what cannot be scoped at all.
fn granted(role_name: &str, role: &Yaml) -> Granted {
    let mut g = Granted::default();
    for s in statements(role) {
        let actions = strings(&s["Action"]);
        let dynamo: Vec<&String> = actions
            .iter()
            .filter(|a| a.starts_with("dynamodb:"))
            .collect();
        if dynamo.is_empty() {
            continue;
        }
        let sid = s["Sid"].as_str().unwrap_or("?");
        assert!(
            on_table(&s),
            "{role_name}/{sid}: DynamoDB access outside the monitoring table"
        );
        for a in &dynamo {
            assert!(
                READS.contains(&a.as_str()) || WRITES.contains(&a.as_str()),
                "{role_name}/{sid}: {a} cannot be scoped by dynamodb:LeadingKeys \
                 (Scan, wildcards and table-level actions are never granted)"
            );
        }
        let condition = &s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
        let keys: BTreeSet<String> = strings(condition).into_iter().collect();
        assert!(
            !keys.is_empty(),
            "{role_name}/{sid}: no ForAllValues:StringLike dynamodb:LeadingKeys condition"
        );
        let reads = dynamo.iter().any(|a| READS.contains(&a.as_str()));
        let writes = dynamo.iter().any(|a| WRITES.contains(&a.as_str()));
        if reads {
            g.reads.extend(keys.iter().cloned());
        }
        if writes {
            g.writes.extend(keys);
        }
    }
    g
}

fn roles(template: &Yaml) -> BTreeMap<String, Yaml> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::IAM::Role"))
        .map(|(k, r)| (k.as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

#[test]
fn every_role_is_granted_exactly_the_key_families_its_adapters_use() {
    let template = template();
    let roles = roles(&template);
    let mut failures = Vec::new();
    for f in FUNCTIONS {
        let role = roles
            .get(f.role)
            .unwrap_or_else(|| panic!("{}: no role {} in template.yaml", f.function, f.role));
        let expected = Granted {
            reads: patterns(&f.reads()),
            writes: patterns(&f.writes()),
        };
        let got = granted(f.role, role);
        if got != expected {
            failures.push(format!(
                "{} ({}):\n  reads granted {:?}\n        needed  {:?}\n  writes granted {:?}\n         needed  {:?}",
                f.function, f.role, got.reads, expected.reads, got.writes, expected.writes
            ));
        }
    }
    // Roles of functions without table access grant none.
    let listed: BTreeSet<&str> = FUNCTIONS.iter().map(|f| f.role).collect();
    for (name, role) in &roles {
        if !listed.contains(name.as_str()) {
            let got = granted(name, role);
            if got != Granted::default() {
                failures.push(format!("{name}: table access not in key_layout: {got:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The entry point wires exactly the adapters key_layout lists for it,
/// so a new adapter cannot slip in without its keys being granted.
#[test]
fn key_layout_lists_the_adapters_each_entry_point_wires() {
    let adapter_calls =
        regex::Regex::new(r"\b(Dynamo[A-Za-z]+::(?:new|from_client)\(|deployed_alert_engine\()")
            .unwrap();
    let all_functions: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let by_name: BTreeMap<&str, &FunctionAccess> =
        FUNCTIONS.iter().map(|f| (f.function, f)).collect();
    for function in &all_functions {
        // The entry point, and the wiring it shares with the tools
        // (`src/deployed.rs`, where a function has one).
        let src = root().join("functions").join(function).join("src");
        let mut main = std::fs::read_to_string(src.join("main.rs")).unwrap();
        if let Ok(shared_wiring) = std::fs::read_to_string(src.join("deployed.rs")) {
            main.push_str(&shared_wiring);
        }
        let wired: BTreeSet<String> = adapter_calls
            .find_iter(&main)
            .map(|m| m.as_str().replace("::from_client(", "::new("))
            .collect();
        let declared: BTreeSet<String> = by_name
            .get(function.as_str())
            .map(|f| f.uses.iter().map(|u| u.wiring.to_owned()).collect())
            .unwrap_or_default();
        assert_eq!(wired, declared, "functions/{function}/src/main.rs");
    }
}

/// The public health function may read only probe, series and silence
/// items, and write only silences.
#[test]
fn the_public_health_function_reads_only_probe_series_and_silence_items() {
    let health = FUNCTIONS
        .iter()
        .find(|f| f.function == "health-api")
        .unwrap();
    assert_eq!(
        health.reads(),
        [Family::ProbeLatest, Family::Series, Family::Silence]
    );
    assert_eq!(health.writes(), [Family::Silence]);
}

/// The check itself notices a grant that is too wide or too narrow, and
/// one without the condition.
#[test]
fn the_check_notices_a_wider_or_missing_scope() {
    let template = template();
    let roles = roles(&template);
    let health = roles["HealthApiRole"].clone();
    let baseline = granted("HealthApiRole", &health);
    let mut wider = health.clone();
    {
        let policies = wider["Properties"]["Policies"].as_sequence_mut().unwrap();
        let statements = policies[0]["PolicyDocument"]["Statement"]
            .as_sequence_mut()
            .unwrap();
        let read = statements
            .iter_mut()
            .find(|s| s["Sid"].as_str() == Some("ReadHealthItems"))
            .unwrap();
        read["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            .as_sequence_mut()
            .unwrap()
            .push(Yaml::String("WINDOW#*".into()));
    }
    assert_ne!(granted("HealthApiRole", &wider), baseline);

    let mut unscoped = health.clone();
    {
        let policies = unscoped["Properties"]["Policies"]
            .as_sequence_mut()
            .unwrap();
        let statements = policies[0]["PolicyDocument"]["Statement"]
            .as_sequence_mut()
            .unwrap();
        let read = statements
            .iter_mut()
            .find(|s| s["Sid"].as_str() == Some("ReadHealthItems"))
            .unwrap();
        read.as_mapping_mut().unwrap().remove("Condition");
    }
    let refused = std::panic::catch_unwind(|| granted("HealthApiRole", &unscoped));
    assert!(
        refused.is_err(),
        "a statement without LeadingKeys is refused"
    );
}
