//! The notifier's delivery markers and the security responder's claims,
//! hourly counters and records, in the single monitoring table.
//!
//! Items:
//! - `DELIVERY#<incident id>` / `<transition id>#<channel>`: one per
//!   delivered (transition, channel), written after the delivery with
//!   `attribute_not_exists`, expiring through `ttl` (30 days by default);
//! - `RESPONSE#<incident id>` / `CLAIM`: the responder's lease on an
//!   incident (`lease_until`, epoch ms), taken with a conditional put;
//! - `RESPONSE#<incident id>` / `ACTIONS`: the response record (every
//!   action, its status and how to undo it), kept (no TTL) as the audit trail;
//! - `RESPONSE_RATE#<rule>#<yyyy-mm-ddThh>` / `COUNT`: revocations for
//!   that rule in that clock hour, a conditional counter
//!   (`revocations < :cap`), expiring after two days;
//! - `RESPONSE_COOLDOWN#<user>` / `USER`: the incident that last revoked
//!   the user (`incident_id`) and until when no other may (`until_ms`),
//!   taken with a conditional put, expiring a day after `until_ms`.

use super::key_layout::Family;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::aws::describe_sdk_error;
use monitoring_core::domain::security_response::{Channel, ResponseRecord};
use monitoring_core::domain::timefmt::rfc3339_millis;
use monitoring_core::ports::{DeliveryLog, ResponseStore, StoreError};

/// How long delivery markers are kept: longer than SNS and Lambda retry.
pub const DEFAULT_MARKER_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
const RATE_TTL: Duration = Duration::from_secs(2 * 24 * 3600);
/// A cooldown mark outlives its period by a day (TTL deletion is lazy; the
/// condition reads `until_ms`, never the TTL).
const COOLDOWN_TTL_MARGIN: Duration = Duration::from_secs(24 * 3600);

fn unavailable<E, R>(e: &SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(describe_sdk_error(e))
}

fn is_condition_failure<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(aws_sdk_dynamodb::error::ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

/// A conditional write's outcome: `true` when it was made, `false` when
/// its condition did not hold.
fn conditional<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failure(&e) => Ok(false),
        Err(e) => Err(unavailable(&e)),
    }
}

/// `now` plus `d`, in epoch milliseconds.
fn ms_after(now: OffsetDateTime, d: Duration) -> i64 {
    monitoring_core::domain::alerts::incident::time_to_ms(now)
        .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn epoch_plus(now: OffsetDateTime, d: Duration) -> i64 {
    now.unix_timestamp()
        .saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

// ------------------------------------------------------------------ deliveries

#[derive(Debug, Clone)]
pub struct DynamoDeliveryLog {
    client: Client,
    table: String,
    ttl: Duration,
}

impl DynamoDeliveryLog {
    pub fn new(sdk: &SdkConfig, table: impl Into<String>) -> Self {
        DynamoDeliveryLog {
            client: Client::new(sdk),
            table: table.into(),
            ttl: DEFAULT_MARKER_TTL,
        }
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

fn delivery_key(incident_id: &str, transition_id: &str, channel: Channel) -> (String, String) {
    (
        Family::Delivery.key(incident_id),
        format!("{transition_id}#{}", channel.as_str()),
    )
}

impl DeliveryLog for DynamoDeliveryLog {
    async fn delivered(
        &self,
        incident_id: &str,
        transition_id: &str,
        channel: Channel,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = delivery_key(incident_id, transition_id, channel);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .projection_expression("pk")
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(out.item().is_some_and(|i| !i.is_empty()))
    }

    async fn mark_delivered(
        &self,
        incident_id: &str,
        transition_id: &str,
        channel: Channel,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (pk, sk) = delivery_key(incident_id, transition_id, channel);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("channel", s(channel.as_str()))
            .item("delivered_at", s(rfc3339_millis(at)))
            .item("ttl", n(epoch_plus(at, self.ttl)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(unavailable(&e)),
        }
    }
}

// -------------------------------------------------------------------- response

#[derive(Debug, Clone)]
pub struct DynamoResponseStore {
    client: Client,
    table: String,
}

#[derive(Serialize, Deserialize)]
struct RecordItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    record: ResponseRecord,
}

impl DynamoResponseStore {
    pub fn new(sdk: &SdkConfig, table: impl Into<String>) -> Self {
        DynamoResponseStore {
            client: Client::new(sdk),
            table: table.into(),
        }
    }
}

fn response_pk(incident_id: &str) -> String {
    Family::Response.key(incident_id)
}

/// `RESPONSE_RATE#suspected_compromise#2026-11-30T08`.
pub fn rate_pk(rule: &str, now: OffsetDateTime) -> String {
    let at = now.to_offset(time::UtcOffset::UTC);
    Family::ResponseRate.key(format_args!(
        "{rule}#{:04}-{:02}-{:02}T{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour()
    ))
}

/// `RESPONSE_COOLDOWN#<user>`, the user id in lower case (the service's
/// UUIDs compare ignoring case).
pub fn cooldown_pk(user: &str) -> String {
    Family::ResponseCooldown.key(user.to_ascii_lowercase())
}

impl ResponseStore for DynamoResponseStore {
    async fn record(&self, incident_id: &str) -> Result<Option<ResponseRecord>, StoreError> {
        let pk = response_pk(incident_id);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk.clone()))
            .key("sk", s("ACTIONS"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        match out.item {
            Some(item) if !item.is_empty() => {
                let decoded: RecordItem =
                    serde_dynamo::from_item(item).map_err(|e| StoreError::Malformed {
                        pk,
                        sk: "ACTIONS".into(),
                        reason: e.to_string(),
                    })?;
                Ok(Some(decoded.record))
            }
            _ => Ok(None),
        }
    }

    async fn claim(
        &self,
        incident_id: &str,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let now_ms = monitoring_core::domain::alerts::incident::time_to_ms(now);
        let until = ms_after(now, lease);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(response_pk(incident_id)))
            .item("sk", s("CLAIM"))
            .item("lease_until", n(until))
            .item("claimed_at", s(rfc3339_millis(now)))
            .condition_expression("attribute_not_exists(pk) OR lease_until < :now")
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        conditional(result)
    }

    async fn take_hourly_slot(
        &self,
        rule: &str,
        now: OffsetDateTime,
        cap: u32,
    ) -> Result<bool, StoreError> {
        if cap == 0 {
            return Ok(false);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(rate_pk(rule, now)))
            .key("sk", s("COUNT"))
            .update_expression("ADD revocations :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(revocations) OR revocations < :cap")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(cap))
            .expression_attribute_values(":ttl", n(epoch_plus(now, RATE_TTL)))
            .send()
            .await;
        conditional(result)
    }

    async fn take_user_cooldown(
        &self,
        user: &str,
        incident_id: &str,
        now: OffsetDateTime,
        period: Duration,
    ) -> Result<bool, StoreError> {
        let now_ms = monitoring_core::domain::alerts::incident::time_to_ms(now);
        let until = ms_after(now, period);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(cooldown_pk(user)))
            .item("sk", s("USER"))
            .item("incident_id", s(incident_id))
            .item("until_ms", n(until))
            .item("revoked_at", s(rfc3339_millis(now)))
            .item("ttl", n(epoch_plus(now, period + COOLDOWN_TTL_MARGIN)))
            .condition_expression(
                "attribute_not_exists(pk) OR until_ms <= :now OR incident_id = :incident",
            )
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":incident", s(incident_id))
            .send()
            .await;
        conditional(result)
    }

    async fn release_user_cooldown(&self, user: &str, incident_id: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(cooldown_pk(user)))
            .key("sk", s("USER"))
            .condition_expression("incident_id = :incident")
            .expression_attribute_values(":incident", s(incident_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(unavailable(&e)),
        }
    }

    async fn save(&self, record: &ResponseRecord) -> Result<(), StoreError> {
        let item = RecordItem {
            pk: response_pk(&record.incident_id),
            sk: "ACTIONS".to_owned(),
            record: record.clone(),
        };
        let attributes = serde_dynamo::to_item(&item).map_err(|e| StoreError::Malformed {
            pk: item.pk.clone(),
            sk: item.sk.clone(),
            reason: e.to_string(),
        })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attributes))
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            delivery_key("i1", "i1:firing", Channel::Pagerduty),
            ("DELIVERY#i1".to_owned(), "i1:firing#pagerduty".to_owned())
        );
        assert_eq!(
            rate_pk("suspected_compromise", datetime!(2026-11-30 08:59:59 UTC)),
            "RESPONSE_RATE#suspected_compromise#2026-11-30T08"
        );
        assert_eq!(
            rate_pk("r", datetime!(2026-11-30 10:30 +02:00)),
            "RESPONSE_RATE#r#2026-11-30T08"
        );
        assert_eq!(
            cooldown_pk("7C0E4F2A-0000-4000-8000-00000000ABCD"),
            "RESPONSE_COOLDOWN#7c0e4f2a-0000-4000-8000-00000000abcd"
        );
    }
}
