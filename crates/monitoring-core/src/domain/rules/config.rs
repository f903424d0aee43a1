//! The serde model of a rule file (TOML). Every table refuses unknown keys,
//! so a typo fails at load with its line and column instead of being
//! ignored. Semantic checks (names, patterns, captures, one type per metric)
//! happen afterwards in [`super::validate`].

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A whole rule file: a list of `[[rule]]` tables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rules, evaluated in file order (with their place in the file,
    /// for error messages).
    #[serde(default, rename = "rule")]
    pub rules: Vec<toml::Spanned<RuleConfig>>,
}

/// One `[[rule]]`: which records it matches, and the metric updates and
/// alert signals a matching record produces.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name; appears in errors and in the per-rule miss counts.
    pub name: String,
    /// Free text for people reading the file.
    #[serde(default)]
    pub description: Option<String>,
    /// Rules sharing a group are alternatives: only the first matching rule
    /// of the group (in file order) applies to a record, so a message is
    /// never classified twice. Rules without a group always apply. A list
    /// puts the rule in several groups: when it matches, the later rules
    /// of each are skipped (a drift scan's own token failure is neither a
    /// failed login nor a second scan failure).
    #[serde(default)]
    pub group: Option<OneOrMany>,
    /// A CloudWatch Logs filter pattern (terms, `%regex%` or a JSON
    /// pattern), matched against the raw event text and, for JSON records,
    /// the JSON object. `""` matches every record.
    #[serde(default, rename = "match")]
    pub match_pattern: Option<String>,
    /// A regular expression (Rust `regex` syntax) searched in the record's
    /// message (JSON `message`/`msg`, or the text after the level); its
    /// named captures are available to values as `${name}`. At most one of
    /// `match` and `regex`.
    #[serde(default)]
    pub regex: Option<String>,
    /// Shortcut: the record's logger (`logger`/`name`) equals this.
    #[serde(default)]
    pub logger: Option<String>,
    /// Shortcut: the record's level is one of these (case-insensitive).
    #[serde(default)]
    pub level: Option<OneOrMany>,
    /// Shortcut: the record's message (`message`/`msg`, whichever alias
    /// the record uses) equals one of these exactly.
    #[serde(default)]
    pub message: Option<OneOrMany>,
    /// Metric updates of a matching record.
    #[serde(default, rename = "metric")]
    pub metrics: Vec<MetricConfig>,
    /// Alert signals of a matching record.
    #[serde(default, rename = "signal")]
    pub signals: Vec<SignalConfig>,
}

/// One string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

/// What a gauge update does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GaugeOp {
    /// Add `value` (default 1).
    Inc,
    /// Subtract `value` (default 1).
    Dec,
    /// Set to `value` (required).
    Set,
}

/// The unit a numeric value arrives in; it is recorded in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Seconds (no conversion).
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

impl Unit {
    /// The factor that turns a value of this unit into seconds.
    pub fn to_seconds(self) -> f64 {
        match self {
            Unit::S => 1.0,
            Unit::Ms => 1e-3,
            Unit::Us => 1e-6,
            Unit::Ns => 1e-9,
        }
    }
}

/// One `[[rule.metric]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    /// Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`, no `__` prefix).
    pub name: String,
    /// `counter`, `gauge` or `histogram`; one type per metric name across
    /// all rules.
    #[serde(rename = "type")]
    pub kind: MetricType,
    /// HELP text of the exposition.
    #[serde(default)]
    pub help: Option<String>,
    /// Label name → value spec. Every rule updating a metric must give it
    /// the same label names.
    #[serde(default)]
    pub labels: BTreeMap<String, ValueSpecConfig>,
    /// Gauges only: `inc` (default), `dec` or `set`.
    #[serde(default)]
    pub op: Option<GaugeOp>,
    /// The number: a counter's increment (default 1), a gauge's step
    /// (default 1) or set value, a histogram's observation (required).
    #[serde(default)]
    pub value: Option<ValueSpecConfig>,
    /// Unit of `value`; it is converted to seconds.
    #[serde(default)]
    pub unit: Option<Unit>,
    /// An extra filter pattern this metric alone requires.
    #[serde(default)]
    pub when: Option<String>,
}

/// One `[[rule.signal]]`: an event the alert engine counts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalConfig {
    /// Signal name (`[a-zA-Z_][a-zA-Z0-9_]*`), e.g. `auth_failures`.
    pub name: String,
    /// An extra filter pattern this signal alone requires.
    #[serde(default)]
    pub when: Option<String>,
    /// The keys alert rules group by or count, by name:
    /// `keys = { ip = "$.ip_address", user = "$.user_id" }`. A key whose
    /// source the record lacks (and that has no default) is left out of
    /// the signal; alert rules reading it count the signal as
    /// `missing_key`.
    #[serde(default)]
    pub keys: BTreeMap<String, ValueSpecConfig>,
    /// One key, the short form of `keys = { <key_name> = <key> }`.
    #[serde(default)]
    pub key: Option<ValueSpecConfig>,
    /// The name of `key` (`ip`, `user`); default `key`.
    #[serde(default)]
    pub key_name: Option<String>,
    /// Replace keys by a keyed-HMAC pseudonym: `"ip"` for `key`, or per key
    /// name, `{ ip = "ip", user = "email" }`.
    #[serde(default)]
    pub pseudonymize: Option<PseudonymizeConfig>,
}

/// `pseudonymize = "ip"` or `pseudonymize = { ip = "ip" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PseudonymizeConfig {
    One(PseudonymizeAs),
    PerKey(BTreeMap<String, PseudonymizeAs>),
}

/// Pseudonym kinds of [`crate::domain::logs::redact::PseudonymKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PseudonymizeAs {
    Ip,
    Email,
}

/// How a label, key or number is obtained. In TOML either a string —
/// a literal, `"$.path"` (a record field) or `"${name}"` (a regex capture) —
/// a number or boolean literal, or a table (see [`ValueTable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSpecConfig {
    Simple(String),
    Table(ValueTable),
}

/// `{ from = "$.success", map = { "true" = "success" }, default = "success",
/// transform = "snake_case" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueTable {
    /// `"$.path"`, `"${capture}"` or a literal, as for the string form.
    pub from: String,
    /// Replacements of exact values (`true`/`false`/numbers as their text);
    /// a mapped value is not transformed.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// Used when the source is missing (or null); without it the update
    /// is skipped and counted as a miss.
    #[serde(default)]
    pub default: Option<String>,
    /// Applied to values the map does not replace.
    #[serde(default)]
    pub transform: Option<Transform>,
}

/// Value transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// URL path → route template: numeric, UUID and long hex segments
    /// become `:id`, the query string is dropped.
    Route,
    /// `Role modified` → `role_modified`.
    SnakeCase,
    /// Lower case.
    Lower,
}

impl<'de> Deserialize<'de> for ValueSpecConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpecVisitor;

        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = ValueSpecConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or a { from = ... } table")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ValueSpecConfig::Simple(v.to_owned()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ValueSpecConfig::Simple(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ValueSpecConfig::Simple(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ValueSpecConfig::Simple(v.to_string()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(ValueSpecConfig::Simple(v.to_string()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                ValueTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ValueSpecConfig::Table)
            }
        }

        deserializer.deserialize_any(SpecVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_specs_take_every_form() {
        let file: RuleFile = toml::from_str(
            r#"
            [[rule]]
            name = "r"
            match = ""
            [[rule.metric]]
            name = "m"
            type = "counter"
            value = 2
            labels = { a = "x", b = true, c = { from = "$.s", map = { "true" = "ok" }, default = "ok", transform = "lower" } }
            "#,
        )
        .unwrap();
        let m = &file.rules[0].get_ref().metrics[0];
        assert_eq!(m.value, Some(ValueSpecConfig::Simple("2".into())));
        assert_eq!(m.labels["b"], ValueSpecConfig::Simple("true".into()));
        let ValueSpecConfig::Table(t) = &m.labels["c"] else {
            panic!("table expected");
        };
        assert_eq!(t.from, "$.s");
        assert_eq!(t.map["true"], "ok");
        assert_eq!(t.transform, Some(Transform::Lower));
    }

    #[test]
    fn rules_know_their_place() {
        let text = "# c\n\n[[rule]]\nname = \"a\"\n\n[[rule]]\nname = \"b\"\n";
        let file: RuleFile = toml::from_str(text).unwrap();
        let starts: Vec<&str> = file.rules.iter().map(|r| &text[r.span()]).collect();
        assert_eq!(starts, ["[[rule]]", "[[rule]]"]);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err =
            toml::from_str::<RuleFile>("[[rule]]\nname = \"r\"\nmatcher = \"x\"\n").unwrap_err();
        assert!(err.message().contains("unknown field `matcher`"), "{err}");
    }
}
