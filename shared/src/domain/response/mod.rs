//! Incident delivery and response, the pure part: routing of incidents to
//! channels ([`routing`]), what each channel receives and the webhook
//! signature ([`payloads`]), and the security responder's guard rails and
//! record ([`revocation`]). The I/O is in `adapters::{webhook_http,
//! redis_revoker, http_revoker, dynamodb_response}`.

pub mod inbound;
pub mod payloads;
pub mod revocation;
pub mod routing;

pub use inbound::{Rejection, accept_incident, parse_incident};
pub use payloads::{Signer, pagerduty_event, slack_message};
pub use revocation::{Guardrails, Mode, Plan, ResponseRecord, plan};
pub use routing::{Channel, Routing, RoutingError};
