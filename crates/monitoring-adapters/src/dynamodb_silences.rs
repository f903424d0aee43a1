//! Silences in the single monitoring table.
//!
//! Items: `SILENCE` / `<ends_at, RFC 3339 millis>#<id>`. All silences share
//! one partition, sorted by their end, so the unexpired ones are one Query
//! with `sk >= <now>` and never a Scan; the partition stays small because
//! each item expires through `ttl` some days after its end (kept that long
//! so `?all=true` can show what recently ran out).
//!
//! Expiring a silence early moves its end to now, so its item moves to
//! the new sort key: one transaction deletes the old item (which must
//! still exist) and puts the new one, so two concurrent expiries cannot
//! both win and the record is never lost.

use super::key_layout::Family;
use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::aws::describe_sdk_error;
use super::dynamodb_pages::query_items;
use monitoring_core::domain::silence::Silence;
use monitoring_core::domain::timefmt::rfc3339_millis;
use monitoring_core::ports::{ExpireOutcome, SilenceStore, StoreError};

const PK: &str = Family::Silence.prefix();
/// How long an ended silence is kept before DynamoDB's TTL removes it.
pub const DEFAULT_RETENTION: Duration = Duration::days(7);
/// Pages read per list before giving up: far beyond any sane number of
/// silences (a page is up to 1 MB), and a bound on a runaway partition.
const MAX_PAGES: usize = 20;

#[derive(Debug, Clone)]
pub struct DynamoSilenceStore {
    client: Client,
    table: String,
    retention: Duration,
}

#[derive(Serialize, Deserialize)]
struct SilenceItem {
    pk: String,
    sk: String,
    ttl: i64,
    #[serde(flatten)]
    silence: Silence,
}

impl DynamoSilenceStore {
    pub fn new(sdk: &SdkConfig, table: impl Into<String>) -> Self {
        Self::from_client(Client::new(sdk), table)
    }

    pub fn from_client(client: Client, table: impl Into<String>) -> Self {
        DynamoSilenceStore {
            client,
            table: table.into(),
            retention: DEFAULT_RETENTION,
        }
    }

    /// Keeps ended silences for `retention` instead of the default week.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }
}

fn sort_key(silence: &Silence) -> String {
    format!("{}#{}", rfc3339_millis(silence.ends_at), silence.id)
}

type Item = HashMap<String, AttributeValue>;

impl DynamoSilenceStore {
    fn item(&self, silence: &Silence) -> Result<Item, StoreError> {
        let item = SilenceItem {
            pk: PK.to_owned(),
            sk: sort_key(silence),
            ttl: (silence.ends_at + self.retention).unix_timestamp(),
            silence: silence.clone(),
        };
        serde_dynamo::to_item(&item).map_err(|e| StoreError::Malformed {
            pk: item.pk.clone(),
            sk: item.sk.clone(),
            reason: e.to_string(),
        })
    }

    /// Pages of the silence partition, each item decoded, optionally
    /// narrowed by a filter (still one Query per page, never a Scan).
    async fn query(
        &self,
        now: Option<OffsetDateTime>,
        id: Option<&str>,
    ) -> Result<Vec<Silence>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", AttributeValue::S(PK.into()));
        query = match now {
            None => query.key_condition_expression("pk = :pk"),
            // Millisecond keys are coarser than the times themselves: the
            // key bound keeps a few just-ended ones, the exact filter below
            // drops them.
            Some(now) => query
                .key_condition_expression("pk = :pk AND sk >= :now")
                .expression_attribute_values(":now", AttributeValue::S(rfc3339_millis(now))),
        };
        if let Some(id) = id {
            query = query
                .filter_expression("#id = :id")
                .expression_attribute_names("#id", "id")
                .expression_attribute_values(":id", AttributeValue::S(id.to_owned()));
        }
        let mut silences = Vec::new();
        for item in query_items(query, MAX_PAGES, "silences", || {}).await? {
            let decoded: SilenceItem =
                serde_dynamo::from_item(item.clone()).map_err(|e| StoreError::Malformed {
                    pk: PK.to_owned(),
                    sk: item
                        .get("sk")
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_else(|| "?".into()),
                    reason: e.to_string(),
                })?;
            if now.is_none_or(|now| decoded.silence.ends_at > now) {
                silences.push(decoded.silence);
            }
        }
        Ok(silences)
    }

    /// The silence with `id`, whatever its state.
    async fn find(&self, id: &str) -> Result<Option<Silence>, StoreError> {
        Ok(self.query(None, Some(id)).await?.into_iter().next())
    }

    /// Replaces `current` by `expired` in one transaction; `false` when
    /// `current` is no longer stored as it was (another expiry won).
    async fn replace(&self, current: &Silence, expired: &Silence) -> Result<bool, StoreError> {
        // Only a silence nobody expired yet may be replaced.
        const UNTOUCHED: &str = "attribute_exists(pk) AND attribute_not_exists(expired_at)";
        let build_error = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError::Unavailable(format!("cannot build the expiry: {e}"))
        };
        let old_sk = sort_key(current);
        let same_key = sort_key(expired) == old_sk;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.item(expired)?))
            // A transaction may not touch one item twice: when the end
            // moved by less than a millisecond the put replaces in place.
            .condition_expression(if same_key {
                UNTOUCHED
            } else {
                "attribute_not_exists(pk)"
            })
            .build()
            .map_err(build_error)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        if !same_key {
            let delete = Delete::builder()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(PK.into()))
                .key("sk", AttributeValue::S(old_sk))
                .condition_expression(UNTOUCHED)
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        self.transact(items).await
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let lost = matches!(
                    e.as_service_error(),
                    Some(TransactWriteItemsError::TransactionCanceledException(c))
                        if c.cancellation_reasons().iter().any(|r| matches!(
                            r.code(),
                            Some("ConditionalCheckFailed" | "TransactionConflict")
                        ))
                );
                if lost {
                    Ok(false)
                } else {
                    Err(StoreError::Unavailable(describe_sdk_error(&e)))
                }
            }
        }
    }
}

impl SilenceStore for DynamoSilenceStore {
    async fn create(&self, silence: &Silence) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item(silence)?))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe_sdk_error(&e)))?;
        Ok(())
    }

    async fn list(
        &self,
        now: OffsetDateTime,
        include_expired: bool,
    ) -> Result<Vec<Silence>, StoreError> {
        self.query((!include_expired).then_some(now), None).await
    }

    async fn expire(
        &self,
        id: &str,
        at: OffsetDateTime,
        by: &str,
    ) -> Result<ExpireOutcome, StoreError> {
        // Two rounds: a lost race re-reads once, and then the winner's
        // record answers.
        for _ in 0..2 {
            let Some(current) = self.find(id).await? else {
                return Ok(ExpireOutcome::NotFound);
            };
            let Ok(expired) = current.expire(at, by) else {
                return Ok(ExpireOutcome::AlreadyEnded(current));
            };
            if self.replace(&current, &expired).await? {
                return Ok(ExpireOutcome::Expired(expired));
            }
        }
        match self.find(id).await? {
            Some(s) => Ok(ExpireOutcome::AlreadyEnded(s)),
            None => Ok(ExpireOutcome::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitoring_core::domain::silence::{Matcher, NewSilence};
    use time::macros::datetime;

    #[test]
    fn items_sort_by_end_and_expire_after_retention() {
        let s = NewSilence {
            matchers: vec![Matcher::equal("rule", "x")],
            starts_at: None,
            ends_at: None,
            duration_seconds: Some(90),
            comment: "c".into(),
            requested_by: None,
            security: false,
        }
        .validate(
            datetime!(2026-11-30 12:00:00.25 UTC),
            "admin-token",
            &Default::default(),
        )
        .unwrap();
        assert_eq!(sort_key(&s), format!("2026-11-30T12:01:30.250Z#{}", s.id));
        let item = SilenceItem {
            pk: PK.into(),
            sk: sort_key(&s),
            ttl: (s.ends_at + DEFAULT_RETENTION).unix_timestamp(),
            silence: s.clone(),
        };
        let attributes: HashMap<String, AttributeValue> = serde_dynamo::to_item(&item).unwrap();
        assert_eq!(
            attributes["ttl"],
            AttributeValue::N(
                (datetime!(2026-12-07 12:01:30 UTC))
                    .unix_timestamp()
                    .to_string()
            )
        );
        let back: SilenceItem = serde_dynamo::from_item(attributes).unwrap();
        assert_eq!(back.silence, s);
    }
}
