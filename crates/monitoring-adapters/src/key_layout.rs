//! The single table's key layout: every partition-key family the DynamoDB
//! adapters build keys from, and which families each function reads and
//! writes through the adapters its entry point wires.
//!
//! The adapters build their partition keys with [`Family::key`] (or use a
//! singleton's [`Family::prefix`]), so this is the one place the layout is
//! written down. The IAM test (`tests/files/iam_scoping.rs`) derives each role's
//! `dynamodb:LeadingKeys` grants from [`FUNCTIONS`] and fails when
//! template.yaml grants more or less.

/// A family of items, by the start of its partition key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `PROBE#LATEST` / `<component>`: the latest result of each component.
    ProbeLatest,
    /// `PROBE#<component>` / `AT#<time>`: probe history.
    ProbeHistory,
    /// `HEARTBEAT#<name>` / `LATEST`: liveness marks.
    Heartbeat,
    /// `WINDOW#<rule>#<key>` / `STATE`: alert windows.
    Window,
    /// `INCIDENT#<id>` / `META`: incidents and their outbox.
    Incident,
    /// `OPEN#INCIDENTS` / `<incident>`: the open-incident index.
    OpenIncidents,
    /// `OUTBOX#PENDING` / `<incident>`: the unpublished-transition index.
    Outbox,
    /// `DEADLETTER#NOTICES` / `<transition>`: notices the topic refused
    /// for good.
    DeadLetter,
    /// `SERIES#<metric>` / `<labels>`: Prometheus series.
    Series,
    /// `BATCH#<id>` / `DONE#<chunk>`: idempotency markers of log batches.
    BatchMarker,
    /// `SILENCE` / `<ends_at>#<id>`: silences.
    Silence,
    /// `DELIVERY#<incident>` / `<transition>#<channel>`: notifier markers.
    Delivery,
    /// `RESPONSE#<incident>` / `CLAIM`, `ACTIONS`: security responses.
    Response,
    /// `RESPONSE_RATE#<rule>#<hour>` / `COUNT`: the responder's hourly
    /// budget, per rule.
    ResponseRate,
    /// `RESPONSE_COOLDOWN#<user>` / `USER`: the responder's per-user
    /// cooldown.
    ResponseCooldown,
}

impl Family {
    pub const ALL: [Family; 15] = [
        Family::ProbeLatest,
        Family::ProbeHistory,
        Family::Heartbeat,
        Family::Window,
        Family::Incident,
        Family::OpenIncidents,
        Family::Outbox,
        Family::DeadLetter,
        Family::Series,
        Family::BatchMarker,
        Family::Silence,
        Family::Delivery,
        Family::Response,
        Family::ResponseRate,
        Family::ResponseCooldown,
    ];

    /// The fixed start of the partition key: the whole key of a singleton
    /// partition.
    pub const fn prefix(self) -> &'static str {
        match self {
            Family::ProbeLatest => "PROBE#LATEST",
            Family::ProbeHistory => "PROBE#",
            Family::Heartbeat => "HEARTBEAT#",
            Family::Window => "WINDOW#",
            Family::Incident => "INCIDENT#",
            Family::OpenIncidents => "OPEN#INCIDENTS",
            Family::Outbox => "OUTBOX#PENDING",
            Family::DeadLetter => "DEADLETTER#NOTICES",
            Family::Series => "SERIES#",
            Family::BatchMarker => "BATCH#",
            Family::Silence => "SILENCE",
            Family::Delivery => "DELIVERY#",
            Family::Response => "RESPONSE#",
            Family::ResponseRate => "RESPONSE_RATE#",
            Family::ResponseCooldown => "RESPONSE_COOLDOWN#",
        }
    }

    /// Whether the family is one partition (its key is the prefix).
    pub const fn is_singleton(self) -> bool {
        matches!(
            self,
            Family::ProbeLatest
                | Family::OpenIncidents
                | Family::Outbox
                | Family::DeadLetter
                | Family::Silence
        )
    }

    /// The partition key of the item `rest` names in this family.
    pub fn key(self, rest: impl std::fmt::Display) -> String {
        format!("{}{rest}", self.prefix())
    }

    /// The `dynamodb:LeadingKeys` pattern (`ForAllValues:StringLike`)
    /// that admits this family and, for a singleton, nothing else.
    pub fn leading_keys_pattern(self) -> String {
        if self.is_singleton() {
            self.prefix().to_owned()
        } else {
            format!("{}*", self.prefix())
        }
    }
}

/// One adapter as a function's entry point wires it, and what it does
/// with the table there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdapterUse {
    /// The call in the entry point (`functions/<name>/src/main.rs`, or the
    /// `src/deployed.rs` it shares with the tools) that
    /// builds the adapter.
    pub wiring: &'static str,
    /// Families read (GetItem, BatchGetItem, Query).
    pub reads: &'static [Family],
    /// Families written (PutItem, UpdateItem, DeleteItem, BatchWriteItem,
    /// and the items of TransactWriteItems, authorized as those).
    pub writes: &'static [Family],
}

/// A function's table access: its IAM role and the adapters it wires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionAccess {
    /// The crate under `functions/`.
    pub function: &'static str,
    /// The `AWS::IAM::Role` resource in template.yaml.
    pub role: &'static str,
    pub uses: &'static [AdapterUse],
}

impl FunctionAccess {
    /// Every family the function reads.
    pub fn reads(&self) -> Vec<Family> {
        collect(self.uses.iter().flat_map(|u| u.reads))
    }

    /// Every family the function writes.
    pub fn writes(&self) -> Vec<Family> {
        collect(self.uses.iter().flat_map(|u| u.writes))
    }
}

fn collect<'a>(families: impl Iterator<Item = &'a Family>) -> Vec<Family> {
    let mut out: Vec<Family> = families.copied().collect();
    out.sort();
    out.dedup();
    out
}

use Family as F;

/// The alert engine (`deployed_alert_engine`): windows, incidents and
/// their indexes, the log-delivery heartbeat; silences and the latest
/// probe results read for suppression.
pub const ALERT_ENGINE: AdapterUse = AdapterUse {
    wiring: "deployed_alert_engine(",
    reads: &[
        F::Window,
        F::Incident,
        F::OpenIncidents,
        F::Outbox,
        F::DeadLetter,
        F::Heartbeat,
        F::Silence,
        F::ProbeLatest,
    ],
    writes: &[
        F::Window,
        F::Incident,
        F::OpenIncidents,
        F::Outbox,
        F::DeadLetter,
        F::Heartbeat,
    ],
};

/// Every function with table access. A function not listed has none.
pub const FUNCTIONS: &[FunctionAccess] = &[
    FunctionAccess {
        function: "component-probe",
        role: "ComponentProbeRole",
        uses: &[
            // Saves results (latest read first) and reads the drift
            // scanner's heartbeat.
            AdapterUse {
                wiring: "DynamoStore::new(",
                reads: &[F::ProbeLatest, F::Heartbeat],
                writes: &[F::ProbeLatest, F::ProbeHistory],
            },
            ALERT_ENGINE,
        ],
    },
    FunctionAccess {
        function: "health-api",
        role: "HealthApiRole",
        uses: &[
            // The latest probe results only.
            AdapterUse {
                wiring: "DynamoStore::new(",
                reads: &[F::ProbeLatest],
                writes: &[],
            },
            // Reading only.
            AdapterUse {
                wiring: "DynamoSeriesStore::new(",
                reads: &[F::Series],
                writes: &[],
            },
            AdapterUse {
                wiring: "DynamoSilenceStore::new(",
                reads: &[F::Silence],
                writes: &[F::Silence],
            },
        ],
    },
    FunctionAccess {
        function: "log-metrics",
        role: "LogMetricsRole",
        uses: &[
            AdapterUse {
                wiring: "DynamoSeriesStore::new(",
                reads: &[],
                writes: &[F::Series, F::BatchMarker],
            },
            // Heartbeats only: the drift scanner's, from its log lines.
            AdapterUse {
                wiring: "DynamoStore::new(",
                reads: &[],
                writes: &[F::Heartbeat],
            },
            ALERT_ENGINE,
        ],
    },
    FunctionAccess {
        function: "alert-evaluator",
        role: "AlertEvaluatorRole",
        uses: &[ALERT_ENGINE],
    },
    FunctionAccess {
        function: "incident-notifier",
        role: "IncidentNotifierRole",
        uses: &[AdapterUse {
            wiring: "DynamoDeliveryLog::new(",
            reads: &[F::Delivery],
            writes: &[F::Delivery],
        }],
    },
    FunctionAccess {
        function: "security-responder",
        role: "SecurityResponderRole",
        uses: &[
            AdapterUse {
                wiring: "DynamoResponseStore::new(",
                // The hourly counters and the cooldowns are only ever
                // written (conditionally); a cooldown not used is deleted.
                reads: &[F::Response],
                writes: &[F::Response, F::ResponseRate, F::ResponseCooldown],
            },
            // The delivered incident, checked against the stored one
            // before anything acts on it (only its `incident` attribute).
            AdapterUse {
                wiring: "DynamoAlertStore::new(",
                reads: &[F::Incident],
                writes: &[],
            },
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_distinct_and_patterns_admit_only_their_family() {
        for a in Family::ALL {
            for b in Family::ALL {
                if a != b {
                    assert_ne!(a.prefix(), b.prefix());
                }
            }
        }
        assert_eq!(Family::Silence.leading_keys_pattern(), "SILENCE");
        assert_eq!(Family::Series.leading_keys_pattern(), "SERIES#*");
        assert_eq!(
            Family::Series.key("auth_failures_total"),
            "SERIES#auth_failures_total"
        );
        // A singleton's pattern has no wildcard: granting PROBE#LATEST
        // does not grant the history.
        assert!(!Family::ProbeLatest.leading_keys_pattern().contains('*'));
    }
}
