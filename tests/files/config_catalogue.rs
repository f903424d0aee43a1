//! The configuration catalogue (`docs/configuration.md`) against the code
//! and `template.yaml`, and the documentation's relative links against the
//! files. Works on files only: no local stack.
//!
//! The variables the code reads are found where they are read: every call
//! of the form `reader("NAME")` or `reader(env, "NAME")` outside the test
//! modules of `crates/monitoring-config/src/`,
//! `crates/monitoring-adapters/src/{aws,telemetry,rules_loader}.rs` and
//! `functions/*/src` (`env.get`,
//! `parse_or`, `duration_or`, local helpers such as `positive`, the secret
//! resolvers). `SecretSource::from_env(env, "NAME")` reads `NAME`,
//! `NAME_SECRET_ARN` and `NAME_SSM_PARAMETER`;
//! `from_env_prefixed(env, "P")` reads `P_FILE` and `P_SSM_PARAMETER`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;
use serde_yaml_ng::Value as Yaml;

const CATALOGUE: &str = "docs/configuration.md";
const README_MAX_LINES: usize = 250;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The sources that read configuration.
fn config_sources() -> Vec<PathBuf> {
    let root = root();
    let mut files = Vec::new();
    rust_files(&root.join("crates/monitoring-config/src"), &mut files);
    files.push(root.join("crates/monitoring-adapters/src/aws.rs"));
    files.push(root.join("crates/monitoring-adapters/src/telemetry.rs"));
    // `RulesSource::from_env`, beside the loader that reads the source.
    files.push(root.join("crates/monitoring-adapters/src/rules_loader.rs"));
    for entry in std::fs::read_dir(root.join("functions")).unwrap() {
        let src = entry.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    files.sort();
    files
}

/// Variable name → the files reading it, from the non-test code of `files`.
fn variables_read_in(files: &[PathBuf]) -> BTreeMap<String, BTreeSet<String>> {
    let test_module = Regex::new(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{").unwrap();
    let call =
        Regex::new(r#"\b([a-z_]+)(?:::<[^>]*>)?\(\s*(?:env\s*,\s*)?"([A-Z][A-Z0-9_]*)""#).unwrap();
    let mut found = BTreeMap::<String, BTreeSet<String>>::new();
    for file in files {
        let text = read(file);
        let code = match test_module.find(&text) {
            Some(m) => &text[..m.start()],
            None => &text[..],
        };
        let name = file
            .strip_prefix(root())
            .unwrap_or(file)
            .display()
            .to_string();
        let mut add = |var: String| {
            found.entry(var).or_default().insert(name.clone());
        };
        for c in call.captures_iter(code) {
            let (function, var) = (&c[1], &c[2]);
            match function {
                // `unwrap_or("UTC")` is a default value, not a variable;
                // `resolve("NAME", &source)` fetches a secret whose source
                // `from_env` already read, and names it only in errors.
                "unwrap_or" | "resolve" | "resolve_opt" => {}
                "from_env" => {
                    for suffix in ["", "_SECRET_ARN", "_SSM_PARAMETER"] {
                        add(format!("{var}{suffix}"));
                    }
                }
                "from_env_prefixed" => {
                    for suffix in ["_FILE", "_SSM_PARAMETER"] {
                        add(format!("{var}{suffix}"));
                    }
                }
                _ => add(var.to_owned()),
            }
        }
        // tracing-subscriber reads its filter from `RUST_LOG` (its
        // `EnvFilter::DEFAULT_ENV`) without naming it here.
        if code.contains("EnvFilter::try_from_default_env") {
            add("RUST_LOG".to_owned());
        }
    }
    found
}

/// The backticked upper-case names of a table cell, with a `(secret)`
/// cell's `_SECRET_ARN` and `_SSM_PARAMETER` forms.
fn names_in_cell(cell: &str) -> Vec<String> {
    let name = Regex::new(r"`([A-Z][A-Z0-9_]*)`").unwrap();
    let secret = cell.contains("(secret)");
    let mut out = Vec::new();
    for c in name.captures_iter(cell) {
        out.push(c[1].to_owned());
        if secret {
            out.push(format!("{}_SECRET_ARN", &c[1]));
            out.push(format!("{}_SSM_PARAMETER", &c[1]));
        }
    }
    out
}

/// The first cells of the table whose header row starts with `header`.
fn table_first_cells<'a>(doc: &'a str, header: &str) -> Vec<&'a str> {
    let mut lines = doc.lines().skip_while(|l| !l.starts_with(header));
    assert!(
        lines.next().is_some(),
        "{CATALOGUE}: no table headed {header:?}"
    );
    lines
        .skip(1) // the |---| row
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_start_matches('|').split(" | ").next().unwrap_or(""))
        .collect()
}

struct Catalogue {
    variables: BTreeSet<String>,
    parameters: BTreeSet<String>,
}

fn catalogue_of(doc: &str) -> Catalogue {
    let variables = table_first_cells(doc, "| variable | functions | default | meaning |")
        .into_iter()
        .flat_map(names_in_cell)
        .collect();
    let param = Regex::new(r"`([A-Za-z0-9]+)`").unwrap();
    let parameters = table_first_cells(doc, "| parameter | default | meaning |")
        .into_iter()
        .flat_map(|cell| {
            param
                .captures_iter(cell)
                .map(|c| c[1].to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    Catalogue {
        variables,
        parameters,
    }
}

struct Template {
    parameters: BTreeSet<String>,
    /// Variable → the functions (logical ids) the template sets it on.
    variables: BTreeMap<String, BTreeSet<String>>,
}

fn template() -> Template {
    let t: Yaml = serde_yaml_ng::from_str(&read(&root().join("template.yaml"))).unwrap();
    let keys = |v: &Yaml| -> Vec<String> {
        v.as_mapping()
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let parameters = keys(&t["Parameters"]).into_iter().collect();
    let mut variables = BTreeMap::<String, BTreeSet<String>>::new();
    for var in keys(&t["Globals"]["Function"]["Environment"]["Variables"]) {
        variables.entry(var).or_default().insert("Globals".into());
    }
    let resources = t["Resources"].as_mapping().unwrap();
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        for var in keys(&resource["Properties"]["Environment"]["Variables"]) {
            variables
                .entry(var)
                .or_default()
                .insert(id.as_str().unwrap_or("?").to_owned());
        }
    }
    Template {
        parameters,
        variables,
    }
}

/// Everything the catalogue gets wrong, one line each.
fn problems(
    code: &BTreeMap<String, BTreeSet<String>>,
    catalogue: &Catalogue,
    template: &Template,
) -> Vec<String> {
    let mut out = Vec::new();
    for (var, files) in code {
        if !catalogue.variables.contains(var) {
            out.push(format!(
                "{var} is read by {files:?} but missing from the catalogue"
            ));
        }
    }
    for var in &catalogue.variables {
        if !code.contains_key(var) {
            out.push(format!("{var} is in the catalogue but no code reads it"));
        }
    }
    for (var, functions) in &template.variables {
        if !catalogue.variables.contains(var) {
            out.push(format!(
                "{var} is set by template.yaml on {functions:?} but missing from the catalogue"
            ));
        }
        if !code.contains_key(var) {
            out.push(format!(
                "{var} is set by template.yaml on {functions:?} but no code reads it"
            ));
        }
    }
    for p in &template.parameters {
        if !catalogue.parameters.contains(p) {
            out.push(format!(
                "template parameter {p} is missing from the catalogue"
            ));
        }
    }
    for p in &catalogue.parameters {
        if !template.parameters.contains(p) {
            out.push(format!(
                "parameter {p} is in the catalogue but not in template.yaml"
            ));
        }
    }
    out
}

#[test]
fn the_catalogue_matches_the_code_and_the_template() {
    let code = variables_read_in(&config_sources());
    // The extraction itself: a few reads of each kind must be found, or the
    // comparison below would pass vacuously.
    for var in [
        "TABLE_NAME",
        "DATABASE_URL_SECRET_ARN",
        "RULES_SSM_PARAMETER",
        "NOTIFIER_ROUTING_FILE",
        "MAX_EVENT_BYTES",
        "TOKEN_REFRESH_SECONDS",
        "AWS_ENDPOINT_URL",
        "RUST_LOG",
    ] {
        assert!(code.contains_key(var), "the extraction misses {var}");
    }
    assert!(
        !code.contains_key("UTC"),
        "a default value taken for a variable"
    );
    let catalogue = catalogue_of(&read(&root().join(CATALOGUE)));
    let template = template();
    assert!(template.parameters.len() > 50 && template.variables.len() > 40);
    let found = problems(&code, &catalogue, &template);
    assert!(
        found.is_empty(),
        "{CATALOGUE} is out of date:\n{}",
        found.join("\n")
    );
}

#[test]
fn a_missing_row_or_parameter_is_reported() {
    let code = variables_read_in(&config_sources());
    let doc = read(&root().join(CATALOGUE));
    let template = template();
    let drop_row = |doc: &str, starts: &str| -> String {
        let before = doc.lines().count();
        let out: String = doc
            .lines()
            .filter(|l| !l.starts_with(starts))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(out.lines().count(), before - 1, "no single row {starts:?}");
        out
    };
    let without_var = catalogue_of(&drop_row(&doc, "| `REVOKER` |"));
    let found = problems(&code, &without_var, &template);
    assert!(
        found.iter().any(|p| p.starts_with("REVOKER is read by")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("REVOKER is set by template.yaml")),
        "{found:?}"
    );
    let without_param = catalogue_of(&drop_row(&doc, "| `ResponderMode` |"));
    let found = problems(&code, &without_param, &template);
    assert_eq!(
        found,
        vec!["template parameter ResponderMode is missing from the catalogue"]
    );
    let mut stale = catalogue_of(&doc);
    stale.variables.insert("NOBODY_READS_THIS".into());
    assert_eq!(
        problems(&code, &stale, &template),
        vec!["NOBODY_READS_THIS is in the catalogue but no code reads it"]
    );
}

#[test]
fn the_readme_fits_on_a_screen_or_two() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines; at most {README_MAX_LINES}: move the detail to docs/"
    );
}

fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut files);
    files
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces
/// as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn without_code_blocks(text: &str) -> String {
    let fence = Regex::new(r"(?s)```.*?```").unwrap();
    fence.replace_all(text, "").into_owned()
}

fn anchors_of(path: &Path) -> BTreeSet<String> {
    let heading = Regex::new(r"(?m)^#+ (.*)$").unwrap();
    heading
        .captures_iter(&without_code_blocks(&read(path)))
        .map(|c| anchor(&c[1]))
        .collect()
}

#[test]
fn every_relative_link_in_the_docs_points_to_a_file() {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let scheme = Regex::new(r"^[a-z]+:").unwrap();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let text = without_code_blocks(&read(&file));
        for c in link.captures_iter(&text) {
            let target = &c[1];
            if scheme.is_match(target) {
                continue;
            }
            checked += 1;
            let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let name = file.strip_prefix(root()).unwrap_or(&file).display();
            if !resolved.exists() {
                broken.push(format!("{name}: {target} (no such file)"));
            } else if !fragment.is_empty()
                && resolved.extension().is_some_and(|e| e == "md")
                && !anchors_of(&resolved).contains(fragment)
            {
                broken.push(format!("{name}: {target} (no such heading)"));
            }
        }
    }
    assert!(checked > 50, "only {checked} links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
