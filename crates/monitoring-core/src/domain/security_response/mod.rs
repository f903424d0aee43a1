//! The response to incidents, above all the security response to a
//! compromise (token revocation), the pure part: routing of incidents to
//! channels ([`routing`]), what each channel receives and the webhook
//! signature ([`payloads`]), the incident records the notifier and the
//! responder accept ([`inbound`]), the security responder's guard rails
//! and record ([`revocation`]), and the row it writes into the service's
//! token blocklist ([`blocklist`]). The I/O is in
//! `monitoring_adapters::{webhook_http, blocklist_revoker, http_revoker,
//! dynamodb_response}`.

pub mod blocklist;
pub mod inbound;
pub mod payloads;
pub mod revocation;
pub mod routing;

pub use blocklist::{BlocklistEntry, BlocklistError, Verification};
pub use inbound::{
    Field, Refusal, Rejection, accept_incident, count_refusal, from_topic, parse_incident,
    plausible_incident_id, verify_stored,
};
pub use payloads::{Signer, pagerduty_event, slack_message};
pub use revocation::{Decision, Guardrails, Mode, Plan, ResponseRecord, plan, rule_gate};
pub use routing::{Channel, Routing, RoutingError};
