//! Probe results and heartbeats in the single monitoring table.
//!
//! Items:
//! - `PROBE#LATEST` / `<component>`: the latest result of each component, so
//!   the health endpoint reads everything with one Query;
//! - `PROBE#<component>` / `AT#<time>`: history, expiring through `ttl`;
//! - `HEARTBEAT#<name>` / `LATEST` with `at` (RFC 3339): liveness marks.

use super::key_layout::Family;
use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::aws::describe_sdk_error;
use monitoring_core::domain::heartbeat::Heartbeat;
use monitoring_core::domain::probe_result::ProbeResult;
use monitoring_core::domain::timefmt::rfc3339_millis;
use monitoring_core::ports::{HeartbeatSink, HeartbeatSource, ProbeStore, StoreError};

const LATEST_PK: &str = Family::ProbeLatest.prefix();
/// BatchWriteItem's limit.
const MAX_BATCH: usize = 25;
/// Unprocessed items are retried this many times with backoff before giving up.
const MAX_BATCH_RETRIES: u32 = 5;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

#[derive(Serialize, Deserialize)]
struct ResultItem {
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
    #[serde(flatten)]
    result: ProbeResult,
}

impl DynamoStore {
    pub fn new(sdk: &SdkConfig, table: impl Into<String>) -> Self {
        DynamoStore {
            client: Client::new(sdk),
            table: table.into(),
        }
    }

    pub fn from_client(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// Records a heartbeat (used by tests and by the writers of heartbeats).
    pub async fn put_heartbeat(
        &self,
        heartbeat: Heartbeat,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(
                "pk",
                AttributeValue::S(Family::Heartbeat.key(heartbeat.name())),
            )
            .item("sk", AttributeValue::S("LATEST".into()))
            .item("at", AttributeValue::S(rfc3339_millis(at)))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe_sdk_error(&e)))?;
        Ok(())
    }

    fn to_item(&self, item: &ResultItem) -> Result<HashMap<String, AttributeValue>, StoreError> {
        serde_dynamo::to_item(item).map_err(|e| StoreError::Malformed {
            pk: item.pk.clone(),
            sk: item.sk.clone(),
            reason: e.to_string(),
        })
    }

    async fn write_all(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        while !requests.is_empty() {
            let rest = requests.split_off(requests.len().min(MAX_BATCH));
            let mut pending = std::mem::replace(&mut requests, rest);
            let mut attempt = 0;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| StoreError::Unavailable(describe_sdk_error(&e)))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                attempt += 1;
                if attempt > MAX_BATCH_RETRIES {
                    return Err(StoreError::Unavailable(format!(
                        "{} items still unprocessed after {MAX_BATCH_RETRIES} retries",
                        pending.len()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }
}

impl ProbeStore for DynamoStore {
    async fn save(&self, results: &[ProbeResult], history_ttl: Duration) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(results.len() * 2);
        for result in results {
            let expires = result.checked_at + history_ttl;
            let items = [
                ResultItem {
                    pk: LATEST_PK.to_owned(),
                    sk: result.component.as_str().to_owned(),
                    ttl: None,
                    result: result.clone(),
                },
                ResultItem {
                    pk: Family::ProbeHistory.key(result.component),
                    sk: format!("AT#{}", rfc3339_millis(result.checked_at)),
                    ttl: Some(expires.unix_timestamp()),
                    result: result.clone(),
                },
            ];
            for item in &items {
                let put = PutRequest::builder()
                    .set_item(Some(self.to_item(item)?))
                    .build()
                    .map_err(|e| StoreError::Malformed {
                        pk: item.pk.clone(),
                        sk: item.sk.clone(),
                        reason: e.to_string(),
                    })?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
        }
        self.write_all(requests).await
    }

    async fn latest(&self) -> Result<Vec<ProbeResult>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(LATEST_PK.into()))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe_sdk_error(&e)))?;
        out.items()
            .iter()
            .map(|item| {
                serde_dynamo::from_item::<_, ResultItem>(item.clone())
                    .map(|i| i.result)
                    .map_err(|e| StoreError::Malformed {
                        pk: LATEST_PK.to_owned(),
                        sk: string_attr(item, "sk").unwrap_or("?").to_owned(),
                        reason: e.to_string(),
                    })
            })
            .collect()
    }
}

impl HeartbeatSource for DynamoStore {
    fn last_heartbeat(
        &self,
        heartbeat: Heartbeat,
    ) -> BoxFuture<'_, Result<Option<OffsetDateTime>, StoreError>> {
        Box::pin(async move {
            let pk = Family::Heartbeat.key(heartbeat.name());
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(pk.clone()))
                .key("sk", AttributeValue::S("LATEST".into()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(describe_sdk_error(&e)))?;
            let Some(item) = out.item else {
                return Ok(None);
            };
            let malformed = |reason: String| StoreError::Malformed {
                pk: pk.clone(),
                sk: "LATEST".into(),
                reason,
            };
            let at = string_attr(&item, "at").ok_or_else(|| malformed("no `at` string".into()))?;
            OffsetDateTime::parse(at, &Rfc3339)
                .map(Some)
                .map_err(|e| malformed(format!("`at` is not RFC 3339: {e}")))
        })
    }
}

impl HeartbeatSink for DynamoStore {
    async fn beat(&self, heartbeat: Heartbeat, at: OffsetDateTime) -> Result<(), StoreError> {
        self.put_heartbeat(heartbeat, at).await
    }
}

fn string_attr<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}
