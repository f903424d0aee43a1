//! A first deploy (docs/deploy.md, sections 2 and 3): `sam build` makes the
//! size-optimised arm64 binaries through the Makefile, and `sam deploy
//! --guided` with samconfig.toml, given only the log group name, makes a
//! stack that needs no other value and pages nobody. Read from the files
//! SAM reads; no stack needed. (`sam validate --lint` and cfn-lint check
//! the template itself in `make test`.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value as Yaml;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn template() -> Yaml {
    serde_yaml_ng::from_str(&read("template.yaml")).unwrap()
}

/// `!Ref Name` as serde_yaml_ng reads a CloudFormation short tag.
fn ref_name(v: &Yaml) -> Option<String> {
    match v {
        Yaml::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(str::to_owned),
        _ => None,
    }
}

fn default_of(template: &Yaml, parameter: &str) -> Option<String> {
    let p = &template["Parameters"][parameter];
    assert!(!p.is_null(), "no parameter {parameter}");
    match &p["Default"] {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Null => None,
        other => panic!("{parameter}: default {other:?}"),
    }
}

#[test]
fn samconfig_asks_only_for_the_log_group() {
    let config: toml::Table = read("samconfig.toml").parse().unwrap();
    let default = &config["default"];
    let global = &default["global"]["parameters"];
    assert_eq!(global["stack_name"].as_str(), Some("blindspotx-monitoring"));
    assert!(global["region"].as_str().is_some_and(|r| !r.is_empty()));
    let deploy = &default["deploy"]["parameters"];
    assert_eq!(deploy["capabilities"].as_str(), Some("CAPABILITY_IAM"));
    assert_eq!(deploy["resolve_s3"].as_bool(), Some(true));
    assert_eq!(deploy["confirm_changeset"].as_bool(), Some(true));
    let overrides = deploy["parameter_overrides"].as_str().unwrap();
    let names: Vec<&str> = overrides
        .split_whitespace()
        .map(|kv| kv.split_once('=').unwrap().0)
        .collect();
    assert_eq!(names, ["AuthLogGroupName"], "{overrides}");
    assert_eq!(
        default["build"]["parameters"]["build_in_source"].as_bool(),
        Some(true),
        "the Makefile builds in the workspace (cargo's cache, one Cargo.lock)"
    );

    // Every other parameter has a default: the guided deploy can take them all.
    let template = template();
    let required: Vec<String> = template["Parameters"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, p)| p["Default"].is_null())
        .map(|(k, _)| k.as_str().unwrap().to_owned())
        .collect();
    assert!(
        required.is_empty(),
        "parameters without a default: {required:?}"
    );
}

#[test]
fn the_defaults_page_nobody() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let mut subscriptions = 0;
    for (id, r) in resources {
        if r["Type"].as_str() != Some("AWS::SNS::Subscription") {
            continue;
        }
        subscriptions += 1;
        let id = id.as_str().unwrap();
        // Lambda subscriptions (notifier, responder) are the bundle's own;
        // e-mail ones reach people and must be off by default.
        if r["Properties"]["Protocol"].as_str() == Some("lambda") {
            continue;
        }
        assert!(
            r["Condition"].is_string(),
            "{id} is created unconditionally"
        );
        let endpoint = ref_name(&r["Properties"]["Endpoint"])
            .unwrap_or_else(|| panic!("{id}: endpoint is no parameter"));
        assert_eq!(
            default_of(&template, &endpoint).as_deref(),
            Some(""),
            "{id}"
        );
    }
    assert!(subscriptions >= 3, "{subscriptions} subscriptions");
    for channel in [
        "SlackWebhookUrlSecretArn",
        "WebhookUrlSecretArn",
        "PagerDutyRoutingKeySecretArn",
        "IncidentEmail",
        "OpsEmail",
        "SecurityTeamEmail",
    ] {
        assert_eq!(
            default_of(&template, channel).as_deref(),
            Some(""),
            "{channel}"
        );
    }
    assert_eq!(
        default_of(&template, "ResponderMode").as_deref(),
        Some("dry-run")
    );
    // The one secret log-metrics cannot run without is generated.
    assert_eq!(
        default_of(&template, "RedactionKeySecretArn").as_deref(),
        Some("")
    );
    let generated = &template["Resources"]["GeneratedRedactionKeySecret"];
    assert_eq!(
        generated["Condition"].as_str(),
        Some("GenerateRedactionKey")
    );
    assert!(!generated["Properties"]["GenerateSecretString"].is_null());
}

#[test]
fn sam_build_makes_the_size_optimised_arm64_binaries() {
    let template = template();
    let makefile = read("Makefile");
    let recipe = makefile
        .split("define sam_function")
        .nth(1)
        .and_then(|rest| rest.split("endef").next())
        .expect("the Makefile's sam_function recipe");
    assert!(
        recipe.contains("cargo lambda build --profile lambda --arm64"),
        "{recipe}"
    );
    assert!(recipe.contains("$(ARTIFACTS_DIR)/bootstrap"), "{recipe}");
    let package = makefile
        .lines()
        .find(|l| l.contains("cargo lambda build") && l.contains("--output-format zip"))
        .expect("make package");
    assert!(package.contains("--profile lambda --arm64"), "{package}");

    let functions: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut built = BTreeSet::new();
    for (id, r) in template["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap();
        assert_eq!(
            r["Metadata"]["BuildMethod"].as_str(),
            Some("makefile"),
            "{id}"
        );
        let target = format!("build-{id}:");
        let body = makefile
            .split(&target)
            .nth(1)
            .unwrap_or_else(|| panic!("the Makefile has no {target}"));
        let call = body.lines().nth(1).unwrap().trim();
        let bin = call
            .strip_prefix("$(call sam_function,")
            .and_then(|b| b.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{target} {call}"));
        assert!(functions.contains(bin), "{target} builds {bin}");
        built.insert(bin.to_owned());
    }
    assert_eq!(built, functions, "every function is built by sam build");
    assert_eq!(
        template["Globals"]["Function"]["Architectures"][0].as_str(),
        Some("arm64")
    );
}
