//! Silences in the single monitoring table.
//!
//! Items: `SILENCE` / `<ends_at, RFC 3339 millis>#<id>`. All silences share
//! one partition, sorted by their end, so the unexpired ones are one Query
//! with `sk >= <now>` and never a Scan; the partition stays small because
//! each item expires through `ttl` some days after its end (kept that long
//! so `?all=true` can show what recently ran out).

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::aws::describe_sdk_error;
use crate::domain::silence::Silence;
use crate::domain::timefmt::rfc3339_millis;
use crate::ports::{SilenceStore, StoreError};

const PK: &str = "SILENCE";
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

impl SilenceStore for DynamoSilenceStore {
    async fn create(&self, silence: &Silence) -> Result<(), StoreError> {
        let item = SilenceItem {
            pk: PK.to_owned(),
            sk: sort_key(silence),
            ttl: (silence.ends_at + self.retention).unix_timestamp(),
            silence: silence.clone(),
        };
        let attributes: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(&item).map_err(|e| StoreError::Malformed {
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
            .map_err(|e| StoreError::Unavailable(describe_sdk_error(&e)))?;
        Ok(())
    }

    async fn list(
        &self,
        now: OffsetDateTime,
        include_expired: bool,
    ) -> Result<Vec<Silence>, StoreError> {
        let mut silences = Vec::new();
        let mut start_key = None;
        for _ in 0..MAX_PAGES {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", AttributeValue::S(PK.into()))
                .set_exclusive_start_key(start_key.take());
            query = if include_expired {
                query.key_condition_expression("pk = :pk")
            } else {
                // Millisecond keys are coarser than the times themselves:
                // the key bound keeps a few just-ended ones, the exact
                // filter below drops them.
                query
                    .key_condition_expression("pk = :pk AND sk >= :now")
                    .expression_attribute_values(":now", AttributeValue::S(rfc3339_millis(now)))
            };
            let out = query
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(describe_sdk_error(&e)))?;
            for item in out.items() {
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
                if include_expired || decoded.silence.ends_at > now {
                    silences.push(decoded.silence);
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => return Ok(silences),
            }
        }
        Err(StoreError::Unavailable(format!(
            "more than {MAX_PAGES} pages of silences"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::silence::{Matcher, NewSilence};
    use time::macros::datetime;

    #[test]
    fn items_sort_by_end_and_expire_after_retention() {
        let s = NewSilence {
            matchers: vec![Matcher::equal("rule", "x")],
            starts_at: None,
            ends_at: None,
            duration_seconds: Some(90),
            comment: "c".into(),
            created_by: "me".into(),
        }
        .validate(datetime!(2026-11-30 12:00:00.25 UTC))
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
