//! Which channels an incident goes to: by severity, with per-category
//! overrides, from a TOML file (`infra/notifier/routing.toml`, embedded)
//! validated once at start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::alerts::{Category, Severity};

/// The embedded default routing.
pub const DEFAULT_ROUTING: &str = include_str!("../../../../../infra/notifier/routing.toml");
pub const DEFAULT_ROUTING_FILE: &str = "infra/notifier/routing.toml";

/// A delivery channel of the notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Slack incoming webhook (Block Kit message).
    Slack,
    /// Generic webhook: the incident JSON, HMAC-signed.
    Webhook,
    /// PagerDuty Events API v2.
    Pagerduty,
    /// Microsoft Teams Workflows webhook (Adaptive Card message).
    Teams,
    /// Alertmanager's v2 API (`POST /api/v2/alerts`): firing with an end
    /// in the future, resolved with the resolution time as `endsAt`.
    Alertmanager,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Slack,
        Channel::Webhook,
        Channel::Pagerduty,
        Channel::Teams,
        Channel::Alertmanager,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Slack => "slack",
            Channel::Webhook => "webhook",
            Channel::Pagerduty => "pagerduty",
            Channel::Teams => "teams",
            Channel::Alertmanager => "alertmanager",
        }
    }
}

/// Channels per severity; every severity must be listed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeverityRoutes {
    critical: Vec<Channel>,
    high: Vec<Channel>,
    medium: Vec<Channel>,
    low: Vec<Channel>,
}

/// A category's overrides: only the severities listed replace the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryRoutes {
    critical: Option<Vec<Channel>>,
    high: Option<Vec<Channel>>,
    medium: Option<Vec<Channel>>,
    low: Option<Vec<Channel>>,
}

/// The file's shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingFile {
    /// The default channels of each severity.
    severity: SeverityRoutes,
    /// Overrides by category (`security`, `performance`, `system`).
    #[serde(default)]
    category: BTreeMap<String, CategoryRoutes>,
}

/// A routing file that cannot be used; names the file and the place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("{file}: {reason}")]
    Syntax { file: String, reason: String },
    #[error(
        "{file}: [category.{category}]: unknown category (expected security, performance or system)"
    )]
    UnknownCategory { file: String, category: String },
    #[error("{file}: {place}: channel {channel} is listed twice")]
    Duplicate {
        file: String,
        place: String,
        channel: &'static str,
    },
}

const CATEGORIES: [Category; 3] = [Category::Security, Category::Performance, Category::System];
const SEVERITIES: [Severity; 4] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
];

/// The compiled routing: one channel list per (category, severity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    file: String,
    table: BTreeMap<(&'static str, Severity), Vec<Channel>>,
}

impl Routing {
    /// The embedded default.
    pub fn default_routing() -> Result<Self, RoutingError> {
        Self::from_toml(DEFAULT_ROUTING, DEFAULT_ROUTING_FILE)
    }

    /// Parses and validates a routing file; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Self, RoutingError> {
        let parsed: RoutingFile = toml::from_str(text).map_err(|e| RoutingError::Syntax {
            file: file.to_owned(),
            reason: e.to_string().trim().replace('\n', " "),
        })?;
        let mut overrides: BTreeMap<&'static str, CategoryRoutes> = BTreeMap::new();
        for (name, routes) in parsed.category {
            let Some(category) = CATEGORIES.iter().find(|c| c.as_str() == name) else {
                return Err(RoutingError::UnknownCategory {
                    file: file.to_owned(),
                    category: name,
                });
            };
            overrides.insert(category.as_str(), routes);
        }
        let mut table = BTreeMap::new();
        for category in CATEGORIES {
            let over = overrides
                .get(category.as_str())
                .cloned()
                .unwrap_or_default();
            for severity in SEVERITIES {
                let (default, specific) = match severity {
                    Severity::Critical => (&parsed.severity.critical, &over.critical),
                    Severity::High => (&parsed.severity.high, &over.high),
                    Severity::Medium => (&parsed.severity.medium, &over.medium),
                    Severity::Low => (&parsed.severity.low, &over.low),
                };
                let (channels, place) = match specific {
                    Some(list) => (
                        list,
                        format!("[category.{}] {}", category.as_str(), severity.as_str()),
                    ),
                    None => (default, format!("[severity] {}", severity.as_str())),
                };
                let mut seen = Vec::new();
                for c in channels {
                    if seen.contains(c) {
                        return Err(RoutingError::Duplicate {
                            file: file.to_owned(),
                            place,
                            channel: c.as_str(),
                        });
                    }
                    seen.push(*c);
                }
                table.insert((category.as_str(), severity), seen);
            }
        }
        Ok(Routing {
            file: file.to_owned(),
            table,
        })
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// The channels of an incident of this category and severity.
    pub fn channels(&self, category: Category, severity: Severity) -> &[Channel] {
        self.table
            .get(&(category.as_str(), severity))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Every channel some route uses.
    pub fn used_channels(&self) -> Vec<Channel> {
        let mut used: Vec<Channel> = self.table.values().flatten().copied().collect();
        used.sort();
        used.dedup();
        used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_routing_escalates_by_severity() {
        let r = Routing::default_routing().unwrap();
        assert_eq!(
            r.channels(Category::Security, Severity::Critical),
            [
                Channel::Pagerduty,
                Channel::Slack,
                Channel::Teams,
                Channel::Webhook,
                Channel::Alertmanager
            ]
        );
        assert_eq!(
            r.channels(Category::System, Severity::High),
            [
                Channel::Slack,
                Channel::Teams,
                Channel::Webhook,
                Channel::Alertmanager
            ]
        );
        assert_eq!(
            r.channels(Category::Performance, Severity::Medium),
            [Channel::Slack, Channel::Teams, Channel::Alertmanager]
        );
        // Alertmanager routes for itself: it hears every severity.
        assert_eq!(
            r.channels(Category::Security, Severity::Low),
            [Channel::Alertmanager]
        );
        assert_eq!(r.used_channels(), Channel::ALL.to_vec().tap_sort());
    }

    trait TapSort {
        fn tap_sort(self) -> Self;
    }
    impl TapSort for Vec<Channel> {
        fn tap_sort(mut self) -> Self {
            self.sort();
            self
        }
    }

    #[test]
    fn category_overrides_replace_only_what_they_list() {
        let r = Routing::from_toml(
            r#"
[severity]
critical = ["pagerduty"]
high = ["slack"]
medium = []
low = []
[category.performance]
high = []
"#,
            "r.toml",
        )
        .unwrap();
        assert!(r.channels(Category::Performance, Severity::High).is_empty());
        assert_eq!(
            r.channels(Category::Performance, Severity::Critical),
            [Channel::Pagerduty]
        );
        assert_eq!(
            r.channels(Category::Security, Severity::High),
            [Channel::Slack]
        );
    }

    #[test]
    fn bad_files_are_named() {
        let missing = Routing::from_toml("[severity]\ncritical = []\n", "r.toml").unwrap_err();
        assert!(missing.to_string().starts_with("r.toml: "), "{missing}");
        assert!(missing.to_string().contains("high"), "{missing}");
        let unknown_channel = Routing::from_toml(
            "[severity]\ncritical = [\"sms\"]\nhigh = []\nmedium = []\nlow = []\n",
            "r.toml",
        )
        .unwrap_err();
        assert!(
            unknown_channel.to_string().contains("sms"),
            "{unknown_channel}"
        );
        let unknown_category = Routing::from_toml(
            "[severity]\ncritical = []\nhigh = []\nmedium = []\nlow = []\n[category.billing]\nlow = []\n",
            "r.toml",
        )
        .unwrap_err();
        assert!(matches!(
            unknown_category,
            RoutingError::UnknownCategory { .. }
        ));
        let twice = Routing::from_toml(
            "[severity]\ncritical = [\"slack\", \"slack\"]\nhigh = []\nmedium = []\nlow = []\n",
            "r.toml",
        )
        .unwrap_err();
        assert_eq!(
            twice.to_string(),
            "r.toml: [severity] critical: channel slack is listed twice"
        );
        let extra = Routing::from_toml(
            "[severity]\ncritical = []\nhigh = []\nmedium = []\nlow = []\ninfo = []\n",
            "r.toml",
        )
        .unwrap_err();
        assert!(extra.to_string().contains("info"), "{extra}");
    }
}
