//! The security responder's decisions, before any I/O: who may have their
//! tokens revoked for an incident, under which guard rails, and the record
//! that lists every action and how to undo it.
//!
//! Guard rails (a wrong page is a nuisance, a wrong mass revocation is an
//! outage):
//! - dry-run by default: nothing is revoked, the record says what would be;
//! - only incidents keyed by a user (`key_name` in the configured list), or
//!   naming a `subject` (a sequence rule's account that logged in, whatever
//!   the key), name someone to revoke; pseudonymized keys (`ip:…`,
//!   `email:…`), `unknown` and values that are not plain identifiers name
//!   nobody;
//! - only incidents of the allowed rules revoke ([`Guardrails::rules`]:
//!   the sequence rules whose evidence is a success after a burst of
//!   failures; a failures-only rule such as `brute_force` can be produced by
//!   anyone who knows a user name and never revokes);
//! - protected principals (break-glass accounts) are never revoked;
//! - an incident naming more principals than the per-incident cap revokes
//!   none of them (a human decides);
//! - a per-user cooldown (one revocation per user per period) and a
//!   per-rule hourly cap, both counted in the store by the responder;
//! - one response per incident (claimed in the store).
//!
//! Every outcome is a [`Decision`], recorded and counted.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::alerts::{Incident, TransitionKind};
use crate::domain::logs::redact::{MASK, PseudonymKind};
use crate::domain::security_response::blocklist::{BlocklistEntry, Verification};

/// Longest principal id accepted as a revocation target.
pub const MAX_PRINCIPAL_CHARS: usize = 128;

/// Whether revocations happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Decide and record, touch nothing (the default).
    DryRun,
    /// Revoke.
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::DryRun => "dry_run",
            Mode::Enforce => "enforce",
        }
    }
}

/// The responder's guard rails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardrails {
    pub mode: Mode,
    /// More principals than this in one incident: none is revoked.
    pub max_per_incident: u32,
    /// Revocations allowed per clock hour, across invocations.
    pub max_per_hour: u32,
    /// Never revoked (compared ignoring ASCII case).
    pub protected: BTreeSet<String>,
    /// Incident `key_name`s whose key is a user id (default `user`).
    pub user_key_names: Vec<String>,
    /// The rules whose incidents may revoke ([`DEFAULT_RULES`]); any other
    /// rule's incident is recorded and notified, never acted on.
    pub rules: Vec<String>,
    /// After a revocation, the same user is not revoked again for this long
    /// (by any incident); 24 hours by default.
    pub user_cooldown: Duration,
}

/// The rules that may revoke by default: a successful authentication after
/// a burst of failures, keyed by the user and by the address.
pub const DEFAULT_RULES: [&str; 2] = ["suspected_compromise", "suspected_compromise_by_ip"];
/// Default [`Guardrails::user_cooldown`].
pub const DEFAULT_USER_COOLDOWN: Duration = Duration::from_secs(24 * 3600);

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            mode: Mode::DryRun,
            max_per_incident: 5,
            max_per_hour: 20,
            protected: BTreeSet::new(),
            user_key_names: vec!["user".to_owned()],
            rules: DEFAULT_RULES.iter().map(|r| (*r).to_owned()).collect(),
            user_cooldown: DEFAULT_USER_COOLDOWN,
        }
    }
}

impl Guardrails {
    pub fn is_protected(&self, principal: &str) -> bool {
        self.protected
            .iter()
            .any(|p| p.eq_ignore_ascii_case(principal))
    }

    /// Whether incidents of `rule` may revoke (exact names).
    pub fn allows_rule(&self, rule: &str) -> bool {
        self.rules.iter().any(|r| r == rule)
    }
}

/// Whether the incident's rule may revoke at all; `Some` (the decision and
/// a note for the record) when it may not. Checked before [`plan`].
pub fn rule_gate(incident: &Incident, rails: &Guardrails) -> Option<(Decision, String)> {
    if rails.allows_rule(&incident.rule) {
        return None;
    }
    Some((
        Decision::NotAllowedRule,
        format!(
            "rule {} is not one the responder may revoke for ({}): notify only",
            incident.rule,
            if rails.rules.is_empty() {
                "none allowed".to_owned()
            } else {
                rails.rules.join(", ")
            }
        ),
    ))
}

/// What the responder decided, per principal (on its action) or, when no
/// principal was considered, for the whole incident (on the record).
/// Counted by label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Revoked (enforce mode).
    Acted,
    /// Would have been revoked (dry run).
    DryRun,
    /// The revoker refused (not a user id it can block, the database
    /// refused the write or the read-back did not show it).
    Refused,
    /// The rule's hourly cap was used up.
    HourlyCap,
    /// A protected principal.
    Protected,
    /// More principals than the per-incident cap.
    IncidentCap,
    /// The user was revoked by another incident within the cooldown.
    Cooldown,
    /// The incident's rule is not on the responder's list.
    NotAllowedRule,
    /// Nobody to revoke (a resolution, an incident keyed by an address or a
    /// pseudonym): notify only.
    NotifyOnly,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Acted => "acted",
            Decision::DryRun => "dry_run",
            Decision::Refused => "refused",
            Decision::HourlyCap => "hourly_cap",
            Decision::Protected => "protected",
            Decision::IncidentCap => "incident_cap",
            Decision::Cooldown => "cooldown",
            Decision::NotAllowedRule => "not_allowed_rule",
            Decision::NotifyOnly => "notify_only",
        }
    }
}

impl From<SkipReason> for Decision {
    fn from(reason: SkipReason) -> Self {
        match reason {
            SkipReason::Protected => Decision::Protected,
            SkipReason::IncidentCap => Decision::IncidentCap,
            SkipReason::HourlyCap => Decision::HourlyCap,
        }
    }
}

/// Why a principal is not revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// On the protected-principal list.
    Protected,
    /// The incident names more principals than the per-incident cap.
    IncidentCap,
    /// This hour's revocations are used up.
    HourlyCap,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Protected => "protected",
            SkipReason::IncidentCap => "incident_cap",
            SkipReason::HourlyCap => "hourly_cap",
        }
    }
}

/// What the responder decided for one incident, before the hourly cap.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Principals to revoke (or, in dry-run, that would be).
    pub revoke: Vec<String>,
    /// Principals named but kept, with why.
    pub skipped: Vec<(String, SkipReason)>,
    /// For people: why there is nothing to revoke, when there is not.
    pub notes: Vec<String>,
}

/// Whether `key` is a plain user id a revoker may act on: not a pseudonym,
/// a mask or `unknown`, and only `[A-Za-z0-9._@+-]`. The blocklist revoker
/// is stricter still: it needs the service's user id type, a UUID
/// (`blocklist::canonical_uuid`).
pub fn is_revocable_id(key: &str) -> bool {
    !key.is_empty()
        && key.chars().count() <= MAX_PRINCIPAL_CHARS
        && !key.eq_ignore_ascii_case("unknown")
        && !key.contains(MASK)
        && !PseudonymKind::Email.is_pseudonym(key)
        && !PseudonymKind::Ip.is_pseudonym(key)
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'+' | b'-'))
}

/// The decision for one incident.
pub fn plan(incident: &Incident, rails: &Guardrails) -> Plan {
    let mut plan = Plan::default();
    if incident.status == TransitionKind::Resolved {
        plan.notes
            .push("resolved transition: nothing to revoke, notify only".to_owned());
        return plan;
    }
    // A sequence incident names the account that logged in (its subject),
    // whatever its key is: an address-keyed one names a user this way.
    let principal = match incident.subject.as_deref() {
        Some(subject) => subject,
        None => match user_key(incident, rails) {
            Ok(key) => key,
            Err(note) => {
                plan.notes.push(note);
                return plan;
            }
        },
    };
    if !is_revocable_id(principal) {
        plan.notes.push(
            "the user key is pseudonymized, unknown or not a plain id: no user to revoke, notify only"
                .to_owned(),
        );
        return plan;
    }
    let candidates = vec![principal.to_owned()];
    let (protected, rest): (Vec<String>, Vec<String>) =
        candidates.into_iter().partition(|p| rails.is_protected(p));
    plan.skipped
        .extend(protected.into_iter().map(|p| (p, SkipReason::Protected)));
    if rest.len() > rails.max_per_incident as usize {
        plan.notes.push(format!(
            "{} principals exceed the per-incident cap of {}: none revoked, a human decides",
            rest.len(),
            rails.max_per_incident
        ));
        plan.skipped
            .extend(rest.into_iter().map(|p| (p, SkipReason::IncidentCap)));
        return plan;
    }
    plan.revoke = rest;
    plan
}

/// The incident's key when its `key_name` names users, else why not.
fn user_key<'a>(incident: &'a Incident, rails: &Guardrails) -> Result<&'a str, String> {
    let key_name = incident.key_name.as_deref().unwrap_or("");
    if rails.user_key_names.iter().any(|n| n == key_name) {
        return Ok(&incident.key);
    }
    Err(format!(
        "incident keyed by {} ({}): no user to revoke, notify only",
        if key_name.is_empty() {
            "nothing"
        } else {
            key_name
        },
        if incident.key.is_empty() {
            "ungrouped"
        } else {
            "pseudonymized or not a principal"
        }
    ))
}

/// What was done to one principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// Revoked (enforce mode).
    Revoked,
    /// Would have been revoked (dry-run).
    DryRun,
    /// Another action (the notification) completed.
    Done,
    /// Kept by a guard rail.
    Skipped,
    /// The revoker refused (the user key is not a user id, the database
    /// refused the write or the read-back did not match, the auth service
    /// answered 4xx): a human has to look.
    Failed,
}

/// One line of the response record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseAction {
    /// `revoke_user` or `notify_security_team`.
    pub action: String,
    /// The user id, or the notification target.
    pub target: String,
    pub status: ActionStatus,
    /// What happened, for people (the row written, the endpoint's answer,
    /// the reason).
    pub detail: String,
    /// How to undo it, when there is something to undo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<String>,
    /// The service's blocklist row: as read back after the write, or (dry
    /// run) exactly as it would be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocklist_row: Option<BlocklistEntry>,
    /// The read-back after the write: whether the service's own check now
    /// rejects the user's tokens. Absent when nothing was written, and for
    /// revokers that cannot read back (http).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The guard rails' decision for this principal (`revoke_user` actions;
    /// absent in records written before decisions were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

impl ResponseAction {
    /// An action without a blocklist row or verification.
    pub fn new(
        action: &str,
        target: &str,
        status: ActionStatus,
        detail: String,
        undo: Option<String>,
    ) -> Self {
        ResponseAction {
            action: action.to_owned(),
            target: target.to_owned(),
            status,
            detail,
            undo,
            blocklist_row: None,
            verification: None,
            decision: None,
        }
    }

    /// The same action with its decision.
    pub fn decided(mut self, decision: Decision) -> Self {
        self.decision = Some(decision);
        self
    }
}

/// The security incident log: one per incident, stored and logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseRecord {
    pub incident_id: String,
    pub transition_id: String,
    pub rule: String,
    pub severity: String,
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    pub key: String,
    pub mode: Mode,
    /// When the responder acted (RFC 3339).
    pub responded_at: String,
    /// Revoker used (`blocklist`, `http`, `none`).
    pub revoker: String,
    pub actions: Vec<ResponseAction>,
    pub notes: Vec<String>,
    /// Whether the security team was notified (set after the publication).
    pub notified: bool,
    /// The decision for the whole incident when no principal was
    /// considered (`not_allowed_rule`, `notify_only`); the reason is in
    /// `notes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

impl ResponseRecord {
    pub fn new(incident: &Incident, mode: Mode, revoker: &str, responded_at: String) -> Self {
        ResponseRecord {
            incident_id: incident.id.clone(),
            transition_id: incident.transition_id.clone(),
            rule: incident.rule.clone(),
            severity: incident.severity.as_str().to_owned(),
            category: incident.category.as_str().to_owned(),
            key_name: incident.key_name.clone(),
            key: incident.key.clone(),
            mode,
            responded_at,
            revoker: revoker.to_owned(),
            actions: Vec::new(),
            notes: Vec::new(),
            notified: false,
            decision: None,
        }
    }

    /// Every decision of this record (the incident's, then each action's).
    pub fn decisions(&self) -> impl Iterator<Item = Decision> + '_ {
        self.decision
            .into_iter()
            .chain(self.actions.iter().filter_map(|a| a.decision))
    }

    /// The skipped principals of a plan, as actions.
    pub fn add_skips(&mut self, skipped: &[(String, SkipReason)]) {
        for (principal, reason) in skipped {
            self.actions.push(
                ResponseAction::new(
                    "revoke_user",
                    principal,
                    ActionStatus::Skipped,
                    format!("kept: {}", reason.as_str()),
                    None,
                )
                .decided((*reason).into()),
            );
        }
    }

    /// Principals actually revoked.
    pub fn revoked(&self) -> impl Iterator<Item = &str> {
        self.actions
            .iter()
            .filter(|a| a.status == ActionStatus::Revoked)
            .map(|a| a.target.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alerts::Severity;
    use crate::domain::security_response::payloads::tests::incident;

    fn firing(key_name: Option<&str>, key: &str) -> Incident {
        let mut i = incident(TransitionKind::Firing, Severity::Critical);
        i.key_name = key_name.map(str::to_owned);
        i.key = key.to_owned();
        i
    }

    #[test]
    fn dry_run_is_the_default() {
        assert_eq!(Guardrails::default().mode, Mode::DryRun);
    }

    #[test]
    fn a_user_keyed_incident_names_its_user() {
        let p = plan(&firing(Some("user"), "u-victim"), &Guardrails::default());
        assert_eq!(p.revoke, ["u-victim"]);
        assert!(p.skipped.is_empty() && p.notes.is_empty());
    }

    #[test]
    fn ip_keyed_and_pseudonymized_incidents_name_nobody() {
        let ip = plan(
            &firing(Some("ip"), "ip:0123456789ab"),
            &Guardrails::default(),
        );
        assert!(ip.revoke.is_empty());
        assert!(ip.notes[0].contains("no user to revoke"), "{:?}", ip.notes);
        for key in [
            "email:0123456789ab",
            "unknown",
            "***",
            "a:b",
            "a*",
            "",
            "u 1",
        ] {
            let p = plan(&firing(Some("user"), key), &Guardrails::default());
            assert!(p.revoke.is_empty(), "{key}");
            assert!(p.notes[0].contains("no user to revoke"), "{key}");
        }
        let long = "u".repeat(MAX_PRINCIPAL_CHARS + 1);
        assert!(!is_revocable_id(&long));
        assert!(is_revocable_id("alice@example.org"));
    }

    #[test]
    fn a_sequence_incident_names_its_subject_whatever_its_key() {
        let mut i = firing(Some("ip"), "ip:0123456789ab");
        i.subject = Some("u-admin".to_owned());
        let p = plan(&i, &Guardrails::default());
        assert_eq!(p.revoke, ["u-admin"]);
        // The same checks as a key: a subject that is no plain id names nobody.
        for subject in ["unknown", "email:0123456789ab", "a b", ""] {
            i.subject = Some(subject.to_owned());
            let p = plan(&i, &Guardrails::default());
            assert!(p.revoke.is_empty(), "{subject}");
            assert!(p.notes[0].contains("no user to revoke"), "{subject}");
        }
        // And the same guard rails.
        i.subject = Some("break-glass".to_owned());
        let rails = Guardrails {
            protected: BTreeSet::from(["Break-Glass".to_owned()]),
            ..Guardrails::default()
        };
        assert_eq!(
            plan(&i, &rails).skipped,
            [("break-glass".to_owned(), SkipReason::Protected)]
        );
    }

    #[test]
    fn protected_principals_are_kept() {
        let rails = Guardrails {
            protected: BTreeSet::from(["Break-Glass".to_owned()]),
            ..Guardrails::default()
        };
        let p = plan(&firing(Some("user"), "break-glass"), &rails);
        assert!(p.revoke.is_empty());
        assert_eq!(
            p.skipped,
            [("break-glass".to_owned(), SkipReason::Protected)]
        );
    }

    #[test]
    fn over_the_incident_cap_nobody_is_revoked() {
        let rails = Guardrails {
            max_per_incident: 0,
            ..Guardrails::default()
        };
        let p = plan(&firing(Some("user"), "u-1"), &rails);
        assert!(p.revoke.is_empty());
        assert_eq!(p.skipped, [("u-1".to_owned(), SkipReason::IncidentCap)]);
        assert!(p.notes[0].contains("a human decides"));
    }

    #[test]
    fn resolutions_revoke_nothing() {
        let mut i = firing(Some("user"), "u-1");
        i.status = TransitionKind::Resolved;
        let p = plan(&i, &Guardrails::default());
        assert!(p.revoke.is_empty());
        assert!(p.notes[0].contains("resolved"));
    }

    #[test]
    fn only_the_allowed_rules_may_revoke() {
        let rails = Guardrails::default();
        let mut i = firing(Some("user"), "u-1");
        // The failures-only rule: anyone who knows a user name can cause it.
        i.rule = "brute_force".into();
        let (decision, note) = rule_gate(&i, &rails).unwrap();
        assert_eq!(decision, Decision::NotAllowedRule);
        assert!(note.contains("suspected_compromise"), "{note}");
        for rule in DEFAULT_RULES {
            i.rule = rule.into();
            assert!(rule_gate(&i, &rails).is_none(), "{rule}");
        }
        i.rule = "Suspected_Compromise".into();
        assert!(rule_gate(&i, &rails).is_some(), "names match exactly");
        let none = Guardrails {
            rules: vec![],
            ..Guardrails::default()
        };
        i.rule = "suspected_compromise".into();
        assert!(rule_gate(&i, &none).unwrap().1.contains("none allowed"));
    }

    #[test]
    fn decisions_are_recorded_per_principal_and_per_incident() {
        let i = firing(Some("user"), "u-1");
        let mut r = ResponseRecord::new(&i, Mode::Enforce, "blocklist", "t".into());
        r.decision = Some(Decision::NotifyOnly);
        r.add_skips(&[("admin".into(), SkipReason::Protected)]);
        r.actions.push(ResponseAction::new(
            "notify_security_team",
            "topic",
            ActionStatus::Done,
            "d".into(),
            None,
        ));
        assert_eq!(
            r.decisions().map(Decision::as_str).collect::<Vec<_>>(),
            ["notify_only", "protected"]
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["decision"], "notify_only");
        assert_eq!(v["actions"][0]["decision"], "protected");
        assert!(v["actions"][1].get("decision").is_none());
        // Records stored before decisions were recorded still read.
        let mut old = v.clone();
        old.as_object_mut().unwrap().remove("decision");
        old["actions"][0]
            .as_object_mut()
            .unwrap()
            .remove("decision");
        let back: ResponseRecord = serde_json::from_value(old).unwrap();
        assert_eq!(back.decisions().count(), 0);
    }

    #[test]
    fn records_list_skips_and_serialize() {
        let i = firing(Some("user"), "u-1");
        let mut r = ResponseRecord::new(&i, Mode::DryRun, "blocklist", "t".into());
        r.add_skips(&[("admin".into(), SkipReason::Protected)]);
        assert_eq!(r.actions[0].status, ActionStatus::Skipped);
        assert_eq!(r.revoked().count(), 0);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["mode"], "dry_run");
        assert_eq!(v["actions"][0]["detail"], "kept: protected");
        let back: ResponseRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
