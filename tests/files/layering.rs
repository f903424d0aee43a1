//! Layering the compiler does not check by itself: the core's
//! `[dependencies]` hold no I/O crates, and no crate's files import each
//! other in a circle.
//!
//! Crates cannot depend on each other in a circle, so the direction
//! core ← adapters ← config ← functions is the compiler's to enforce; what
//! a crate may depend on besides, and the import graph between the files of
//! one crate, are this test's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What the core must not depend on: the runtime, AWS, HTTP, TLS, database
/// clients, the Lambda runtime, the tracing subscriber, the other layers.
const FORBIDDEN_IN_CORE: &[&str] = &[
    "tokio",
    "aws-",
    "aws_",
    "serde_dynamo",
    "reqwest",
    "hyper",
    "rustls",
    "webpki",
    "postgres",
    "redis",
    "lambda_",
    "lambda-",
    "axum",
    "tower",
    "http",
    "tracing-subscriber",
    "monitoring-",
];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates")
}

/// The names in the `[dependencies]` tables of a Cargo.toml (not the dev-
/// or build-dependencies).
fn dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            // Platform-specific ones too: `[target.'cfg(..)'.dependencies]`.
            inside = line == "[dependencies]"
                || (line.starts_with("[target.") && line.ends_with(".dependencies]"));
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            let end = line.find(['.', '=', ' ']).unwrap_or(line.len());
            names.push(line[..end].trim_matches('"').to_owned());
        }
    }
    names
}

/// The dependencies `FORBIDDEN_IN_CORE` names.
fn io_crates(deps: &[String]) -> Vec<&String> {
    deps.iter()
        .filter(|d| {
            FORBIDDEN_IN_CORE
                .iter()
                .any(|f| d.starts_with(f) || d.contains(&format!("-{f}")))
        })
        .collect()
}

#[test]
fn the_dependency_check_knows_an_io_crate() {
    let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nserde.workspace = true\n\
                    tokio = { workspace = true }\naws-sdk-s3 = \"1\"\nreqwest.workspace = true\n\
                    tokio-postgres = \"0.7\"\nlambda_runtime = \"1\"\n\n\
                    [target.'cfg(unix)'.dependencies]\nredis = \"1\"\n\n\
                    [dev-dependencies]\nhyper = \"1\"\n";
    let deps = dependencies(manifest);
    assert_eq!(
        io_crates(&deps),
        [
            "tokio",
            "aws-sdk-s3",
            "reqwest",
            "tokio-postgres",
            "lambda_runtime",
            "redis"
        ]
    );
}

#[test]
fn the_core_depends_on_no_io_crate() {
    let manifest = read(&crates_dir().join("monitoring-core/Cargo.toml"));
    let deps = dependencies(&manifest);
    assert!(deps.contains(&"serde".to_owned()), "parsed: {deps:?}");
    let bad = io_crates(&deps);
    assert!(
        bad.is_empty(),
        "monitoring-core's [dependencies] must hold no I/O crate (move the code that needs \
         it to monitoring-adapters, behind a port): {bad:?}"
    );
}

#[test]
fn the_adapters_do_not_depend_on_the_configuration() {
    let manifest = read(&crates_dir().join("monitoring-adapters/Cargo.toml"));
    let deps = dependencies(&manifest);
    assert!(
        deps.contains(&"monitoring-core".to_owned()),
        "parsed: {deps:?}"
    );
    assert!(
        !deps.contains(&"monitoring-config".to_owned()),
        "adapters take settings types (their own or the core's), never the environment's"
    );
}

/// Circles the core is allowed to keep: each one listed must be
/// justified beside it, and is broken by moving the shared item to the
/// file lower in the graph; a new circle, or a file joining a listed one,
/// fails. None is left (the circles of `domain/logs` and `domain/rules`
/// were broken by moving timestamps, exception lines and
/// `RuleSet::from_toml` to lower files).
const CORE_CYCLES_ALLOWED: &[&[&str]] = &[];

#[test]
fn the_core_has_no_module_cycles() {
    assert_no_cycles("monitoring-core", CORE_CYCLES_ALLOWED);
}

#[test]
fn the_adapters_have_no_module_cycles() {
    assert_no_cycles("monitoring-adapters", &[]);
}

#[test]
fn the_configuration_has_no_module_cycles() {
    assert_no_cycles("monitoring-config", &[]);
}

#[test]
fn the_cycle_check_sees_imports_through_re_exports_and_ignores_tests() {
    let src = std::env::temp_dir().join(format!("layering-{}", std::process::id()));
    let files = [
        (
            "lib.rs",
            "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub use c::Thing;\n",
        ),
        // a and b: a circle, one way through a `{}` group, one through `super`.
        ("a.rs", "use crate::{b::B, c};\npub struct A;\n"),
        (
            "b.rs",
            "use super::a::A;\npub struct B;\n\n#[cfg(test)]\nmod tests {\n    use crate::d::D;\n}\n",
        ),
        // c is below everything; d imports it through the root's re-export
        // and uses b (b's test module importing d is no circle).
        ("c.rs", "pub struct Thing;\n"),
        ("d.rs", "use crate::Thing;\npub struct D(crate::b::B);\n"),
    ];
    std::fs::create_dir_all(&src).unwrap();
    for (name, text) in files {
        std::fs::write(src.join(name), text).unwrap();
    }
    let graph = ModuleGraph::read(&src);
    let cycles: Vec<Vec<&str>> = graph
        .cycles()
        .iter()
        .map(|c| c.iter().map(|f| graph.files[*f].as_str()).collect())
        .collect();
    let edges = |from: &str| -> Vec<&str> {
        let index = graph.files.iter().position(|f| f == from).unwrap();
        graph.edges[&index]
            .keys()
            .map(|t| graph.files[*t].as_str())
            .collect()
    };
    let d_uses = edges("d.rs");
    std::fs::remove_dir_all(&src).unwrap();
    assert_eq!(cycles, [["a.rs", "b.rs"]]);
    assert_eq!(d_uses, ["b.rs", "c.rs"]);
}

/// Fails naming every circle of file imports in `krate` except those on
/// `allowed` (each a set of files, relative to `src/`, that may form one).
fn assert_no_cycles(krate: &str, allowed: &[&[&str]]) {
    let graph = ModuleGraph::read(&crates_dir().join(krate).join("src"));
    assert!(graph.files.len() > 3, "{krate}: found {:?}", graph.files);
    let mut found = Vec::new();
    for component in graph.cycles() {
        let names: BTreeSet<&str> = component.iter().map(|f| graph.files[*f].as_str()).collect();
        let listed = allowed
            .iter()
            .any(|a| a.iter().copied().collect::<BTreeSet<_>>() == names);
        if !listed {
            found.push(graph.describe(&component));
        }
    }
    assert!(
        found.is_empty(),
        "{krate}: files import each other in a circle (move the shared item to the file \
         lower in the graph):\n{}",
        found.join("\n")
    );
}

/// Files of a crate (by module path) and the imports between them.
struct ModuleGraph {
    /// Paths relative to `src/`.
    files: Vec<String>,
    modules: BTreeMap<Vec<String>, usize>,
    /// (module, name) → the path it re-exports (`pub use` in `mod.rs`).
    reexports: BTreeMap<(Vec<String>, String), Vec<String>>,
    /// from → to → an example of the path that makes the edge.
    edges: BTreeMap<usize, BTreeMap<usize, String>>,
}

impl ModuleGraph {
    fn read(src: &Path) -> ModuleGraph {
        let mut paths = Vec::new();
        walk(src, &mut paths);
        paths.sort();
        let mut graph = ModuleGraph {
            files: Vec::new(),
            modules: BTreeMap::new(),
            reexports: BTreeMap::new(),
            edges: BTreeMap::new(),
        };
        let mut sources = Vec::new();
        for path in &paths {
            let rel = path
                .strip_prefix(src)
                .unwrap_or(path)
                .to_string_lossy()
                .replace('\\', "/");
            let mut module: Vec<String> = rel
                .trim_end_matches(".rs")
                .split('/')
                .map(str::to_owned)
                .collect();
            let facade = matches!(module.last().map(String::as_str), Some("mod" | "lib"));
            if facade {
                module.pop();
            }
            graph.modules.insert(module.clone(), graph.files.len());
            graph.files.push(rel);
            let text = without_tests(&read(path));
            sources.push((module, facade, text));
        }
        // Re-exports first: an import of `alerts::Incident` depends on
        // `alerts/incident.rs`, not on `alerts/mod.rs`.
        let mut uses = Vec::new();
        for (index, (module, facade, text)) in sources.iter().enumerate() {
            for (public, tree) in use_statements(text) {
                for (path, alias) in expand(&tree) {
                    let Some(absolute) = graph.absolute(module, *facade, &path) else {
                        continue;
                    };
                    if public {
                        let name =
                            alias.unwrap_or_else(|| path.last().cloned().unwrap_or_default());
                        graph
                            .reexports
                            .insert((module.clone(), name.clone()), absolute.clone());
                        // A re-export is a name, not a dependency, unless
                        // the file's own code uses it too.
                        if *facade || mentions(text, &name) < 2 {
                            continue;
                        }
                    }
                    uses.push((index, absolute, path.join("::")));
                }
            }
            for path in inline_paths(text) {
                if let Some(absolute) = graph.absolute(module, *facade, &path) {
                    uses.push((index, absolute, path.join("::")));
                }
            }
        }
        for (from, absolute, written) in uses {
            if let Some(to) = graph.resolve(&absolute, 0)
                && to != from
            {
                graph
                    .edges
                    .entry(from)
                    .or_default()
                    .entry(to)
                    .or_insert(written);
            }
        }
        graph
    }

    /// `path` as written in `module` made absolute (from the crate root);
    /// `None` for other crates' paths.
    fn absolute(&self, module: &[String], facade: bool, path: &[String]) -> Option<Vec<String>> {
        let _ = facade;
        let mut at: Vec<String> = module.to_vec();
        let mut rest = path;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                at.clear();
                rest = &rest[1..];
            }
            Some("self") => rest = &rest[1..],
            Some("super") => {
                while rest.first().map(String::as_str) == Some("super") {
                    at.pop()?;
                    rest = &rest[1..];
                }
            }
            Some(first) => {
                // A child module, named relative to this one.
                let mut child = module.to_vec();
                child.push(first.to_owned());
                if !self.modules.contains_key(&child) {
                    return None;
                }
            }
            None => return None,
        }
        at.extend(rest.iter().cloned());
        Some(at)
    }

    /// The file that defines what `path` names.
    fn resolve(&self, path: &[String], depth: usize) -> Option<usize> {
        let split = (0..=path.len())
            .rev()
            .find(|n| self.modules.contains_key(&path[..*n]))?;
        let module = &path[..split];
        if let Some(item) = path.get(split)
            && depth < 8
            && let Some(target) = self.reexports.get(&(module.to_vec(), item.clone()))
        {
            let mut target = target.clone();
            target.extend(path[split + 1..].iter().cloned());
            if let Some(file) = self.resolve(&target, depth + 1) {
                return Some(file);
            }
        }
        self.modules.get(module).copied()
    }

    /// The strongly connected components with more than one file (Tarjan).
    fn cycles(&self) -> Vec<Vec<usize>> {
        struct State<'a> {
            graph: &'a ModuleGraph,
            index: Vec<Option<usize>>,
            low: Vec<usize>,
            on_stack: Vec<bool>,
            stack: Vec<usize>,
            next: usize,
            out: Vec<Vec<usize>>,
        }
        fn visit(s: &mut State<'_>, v: usize) {
            s.index[v] = Some(s.next);
            s.low[v] = s.next;
            s.next += 1;
            s.stack.push(v);
            s.on_stack[v] = true;
            let targets: Vec<usize> = s
                .graph
                .edges
                .get(&v)
                .map(|e| e.keys().copied().collect())
                .unwrap_or_default();
            for w in targets {
                match s.index[w] {
                    None => {
                        visit(s, w);
                        s.low[v] = s.low[v].min(s.low[w]);
                    }
                    Some(i) if s.on_stack[w] => s.low[v] = s.low[v].min(i),
                    Some(_) => {}
                }
            }
            if Some(s.low[v]) == s.index[v] {
                let mut component = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort_unstable();
                    s.out.push(component);
                }
            }
        }
        let n = self.files.len();
        let mut s = State {
            graph: self,
            index: vec![None; n],
            low: vec![0; n],
            on_stack: vec![false; n],
            stack: Vec::new(),
            next: 0,
            out: Vec::new(),
        };
        for v in 0..n {
            if s.index[v].is_none() {
                visit(&mut s, v);
            }
        }
        s.out
    }

    /// One circle through the component, each step with the import behind it.
    fn describe(&self, component: &[usize]) -> String {
        let inside: BTreeSet<usize> = component.iter().copied().collect();
        let start = component[0];
        // Shortest way back to `start` (breadth first).
        let mut came_from: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut end = None;
        'search: while let Some(v) = queue.pop_front() {
            for &w in self.edges.get(&v).map(|e| e.keys()).into_iter().flatten() {
                if !inside.contains(&w) {
                    continue;
                }
                if w == start {
                    end = Some(v);
                    break 'search;
                }
                if let std::collections::btree_map::Entry::Vacant(e) = came_from.entry(w) {
                    e.insert(v);
                    queue.push_back(w);
                }
            }
        }
        let mut back = Vec::new();
        let mut at = end.unwrap_or(start);
        while at != start {
            back.push(at);
            at = came_from[&at];
        }
        let mut circle = vec![start];
        circle.extend(back.into_iter().rev());
        circle.push(start);
        let steps: Vec<String> = circle
            .windows(2)
            .map(|w| format!("  {} uses {}", self.files[w[0]], self.edges[&w[0]][&w[1]]))
            .collect();
        let all: Vec<&str> = component.iter().map(|f| self.files[*f].as_str()).collect();
        format!("{all:?}:\n{}", steps.join("\n"))
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file without comment lines and `#[cfg(test)]` modules (their
/// imports are the tests', not the module's).
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed == "#[cfg(test)]"
            && let Some(next) = lines.peek()
            && next.trim_start().starts_with("mod ")
        {
            let indent = &line[..line.len() - trimmed.len()];
            let declaration = lines.next().unwrap_or_default();
            if declaration.trim_end().ends_with('{') {
                let closing = format!("{indent}}}");
                for inner in lines.by_ref() {
                    if inner.trim_end() == closing {
                        break;
                    }
                }
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Each `use` statement: whether it is `pub` (any visibility), and its tree.
fn use_statements(text: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = find_keyword(rest, "use ") {
        let before = rest[..at].trim_end();
        let public = before.ends_with("pub") || before.ends_with(')');
        let after = &rest[at + 4..];
        let Some(end) = after.find(';') else { break };
        out.push((
            public,
            after[..end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        ));
        rest = &after[end..];
    }
    out
}

/// Where `keyword` starts a statement (after a line start, `;`, `{`, `}`
/// or a visibility).
fn find_keyword(text: &str, keyword: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find(keyword) {
        let at = from + found;
        let before = text[..at].trim_end();
        let ok = before.is_empty()
            || before.ends_with(['\n', ';', '{', '}', ')', ']'])
            || before.ends_with("pub")
            || text[..at].ends_with('\n')
            || text[..at].ends_with("    ");
        let word_start =
            at == 0 || !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if ok && word_start {
            return Some(at);
        }
        from = at + keyword.len();
    }
    None
}

/// The paths a use tree names (`a::{b, c::{self, d}}` → `a::b`, `a::c`,
/// `a::c::d`), each with its alias. Globs name their module.
fn expand(tree: &str) -> Vec<(Vec<String>, Option<String>)> {
    let tree = tree.trim().trim_start_matches("::");
    if let Some(open) = tree.find('{') {
        let prefix: Vec<String> = segments(tree[..open].trim_end_matches("::"));
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut out = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        let mut parts = Vec::new();
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&inner[start..]);
        for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            if part == "self" {
                out.push((prefix.clone(), None));
                continue;
            }
            for (path, alias) in expand(part) {
                let mut full = prefix.clone();
                full.extend(path);
                out.push((full, alias));
            }
        }
        return out;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p, Some(a.trim().to_owned())),
        None => (tree, None),
    };
    let mut path = segments(path);
    if path.last().map(String::as_str) == Some("*") {
        path.pop();
    }
    let alias = alias.filter(|a| a != "_");
    vec![(path, alias)]
}

/// How often `word` occurs in `text` as a whole word.
fn mentions(text: &str, word: &str) -> usize {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word)
        .filter(|(at, _)| {
            !text[..*at].ends_with(is_word) && !text[at + word.len()..].starts_with(is_word)
        })
        .count()
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `crate::a::b` and `super::a` paths written in code (not in `use`).
fn inline_paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("use ") || trimmed.starts_with("pub use ") {
            continue;
        }
        for start in ["crate::", "super::"] {
            let mut from = 0;
            while let Some(found) = line[from..].find(start) {
                let at = from + found;
                from = at + start.len();
                let preceded = line[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':');
                if preceded {
                    continue;
                }
                let end = line[at..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .map_or(line.len(), |e| at + e);
                out.push(segments(&line[at..end]));
            }
        }
    }
    out
}
