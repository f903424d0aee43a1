//! Alert windows, incidents and their outbox in the monitoring table.
//!
//! Items:
//! - `WINDOW#<rule>#<key>` / `STATE`: `version` (optimistic concurrency),
//!   `state` (JSON of the window), `ttl` (a window idle for a day past its
//!   horizon goes);
//! - `INCIDENT#<id>` / `META`: `incident` (JSON of the latest transition),
//!   `status`, `rule`, and `outbox`, a map transition id → notice JSON of
//!   what is not yet published;
//! - `OPEN#INCIDENTS` / `<id>`: one per firing incident (`open`, JSON), so
//!   the evaluator finds resolutions and reminders with one Query;
//! - `OUTBOX#PENDING` / `<transition id>`: one per unsent notice
//!   (`notice`, `lease_until`), so leftovers are found with one Query;
//! - `DEADLETTER#NOTICES` / `<transition id>`: a notice the topic refused
//!   for good (`dead`, JSON of [`DeadLetter`]), moved out of the outbox and
//!   the pending index in one transaction; requeued by
//!   [`DynamoAlertStore::requeue_dead_letter`];
//! - `HEARTBEAT#log_delivery` / `LATEST` with `at`: the last ingested batch
//!   (the format of [`super::dynamodb_store`]'s heartbeats). Every batch
//!   writes it, so it is kept out of the window transactions (it would
//!   make every concurrent commit conflict with every other): a put of its
//!   own, conditional on being newer than the stored time ("newer wins"),
//!   so a late or slow invocation never moves it back.
//!
//! A window change is one TransactWriteItems action list: the window put
//! conditional on the version read, the incident put or update, the index
//! puts and deletes. Several changes share a transaction up to its 100
//! actions; when it is cancelled every change in it is reported as a
//! conflict, and the engine re-reads and applies them again.

use super::key_layout::Family;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::aws::describe_sdk_error;
use monitoring_core::domain::alerts::{
    CommitResult, DeadLetter, Incident, Notice, OpenIncident, PendingNotice, StoredIncident,
    StoredWindow, WindowChange, WindowId, WindowState,
};
use monitoring_core::domain::heartbeat::Heartbeat;
use monitoring_core::domain::timefmt::rfc3339_millis;
use monitoring_core::ports::{AlertStore, IncidentSource, StoreError};

const OPEN_PK: &str = Family::OpenIncidents.prefix();
const OUTBOX_PK: &str = Family::Outbox.prefix();
const DEAD_PK: &str = Family::DeadLetter.prefix();
/// TransactWriteItems' limit.
const MAX_ACTIONS: usize = 100;
/// BatchGetItem's limit.
const MAX_GET: usize = 100;
const MAX_UNPROCESSED_RETRIES: u32 = 5;
/// A window idle this long past its horizon expires.
const WINDOW_IDLE_TTL: Duration = Duration::from_secs(24 * 3600);

use super::dynamodb_pages::{Item, query_items};

/// One partition's pages, at most (1 MB each): far past any partition the
/// bundle writes (an incident list, an outbox).
const QUERY_MAX_PAGES: usize = 1_000;

#[derive(Debug, Clone)]
pub struct DynamoAlertStore {
    client: Client,
    table: String,
    /// Requests sent, retries included (shared by clones).
    requests: Arc<AtomicUsize>,
}

impl DynamoAlertStore {
    pub fn new(sdk: &SdkConfig, table: impl Into<String>) -> Self {
        Self::from_client(Client::new(sdk), table)
    }

    pub fn from_client(client: Client, table: impl Into<String>) -> Self {
        DynamoAlertStore {
            client,
            table: table.into(),
            requests: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// DynamoDB requests sent so far by this store and its clones.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn key(pk: String, sk: &str) -> Item {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(pk)),
            ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
        ])
    }

    /// The actions of one change.
    fn actions(
        &self,
        change: &WindowChange,
        now: OffsetDateTime,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let pk = change.id.storage_key();
        let malformed = |reason: String| StoreError::Malformed {
            pk: pk.clone(),
            sk: "STATE".into(),
            reason,
        };
        let state = serde_json::to_string(&change.state).map_err(|e| malformed(e.to_string()))?;
        let version = change.expected_version.map_or(1, |v| v + 1);
        let horizon_s = change.state.max_ts.map_or(0, |m| m / 1000);
        let ttl = horizon_s.max(now.unix_timestamp()) + WINDOW_IDLE_TTL.as_secs() as i64;
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::key(pk.clone(), "STATE")))
            .item("rule", AttributeValue::S(change.id.rule.clone()))
            .item("key", AttributeValue::S(change.id.key.clone()))
            .item("version", AttributeValue::N(version.to_string()))
            .item("state", AttributeValue::S(state));
        // A window with a firing incident never expires: the evaluator
        // needs it to resolve the incident.
        if change.state.open.is_none() {
            put = put.item("ttl", AttributeValue::N(ttl.to_string()));
        }
        put = match change.expected_version {
            Some(v) => put
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":expected", AttributeValue::N(v.to_string())),
            None => put.condition_expression("attribute_not_exists(pk)"),
        };
        let mut actions = vec![
            TransactWriteItem::builder()
                .put(put.build().map_err(|e| malformed(e.to_string()))?)
                .build(),
        ];

        for write in &change.incidents {
            let ipk = Family::Incident.key(&write.incident_id);
            let bad = |reason: String| StoreError::Malformed {
                pk: ipk.clone(),
                sk: "META".into(),
                reason,
            };
            let snapshot =
                serde_json::to_string(&write.snapshot).map_err(|e| bad(e.to_string()))?;
            let mut notices = Vec::with_capacity(write.notices.len());
            for n in &write.notices {
                notices.push((n, serde_json::to_string(n).map_err(|e| bad(e.to_string()))?));
            }
            let status = AttributeValue::S(write.snapshot.status.as_str().to_owned());
            if write.create {
                let outbox: Item = notices
                    .iter()
                    .map(|(n, json)| (n.transition_id.clone(), AttributeValue::S(json.clone())))
                    .collect();
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(Self::key(ipk.clone(), "META")))
                    .item("incident", AttributeValue::S(snapshot))
                    .item("status", status)
                    .item("rule", AttributeValue::S(change.id.rule.clone()))
                    .item("outbox", AttributeValue::M(outbox))
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                actions.push(TransactWriteItem::builder().put(put).build());
            } else {
                let mut set = vec!["#inc = :inc".to_owned(), "#st = :st".to_owned()];
                let mut names = HashMap::from([
                    ("#inc".to_owned(), "incident".to_owned()),
                    ("#st".to_owned(), "status".to_owned()),
                ]);
                let mut values = HashMap::from([
                    (":inc".to_owned(), AttributeValue::S(snapshot)),
                    (":st".to_owned(), status),
                ]);
                if !notices.is_empty() {
                    names.insert("#o".into(), "outbox".into());
                }
                for (i, (n, json)) in notices.iter().enumerate() {
                    set.push(format!("#o.#t{i} = :n{i}"));
                    names.insert(format!("#t{i}"), n.transition_id.clone());
                    values.insert(format!(":n{i}"), AttributeValue::S(json.clone()));
                }
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(ipk.clone(), "META")))
                    .update_expression(format!("SET {}", set.join(", ")))
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(values))
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                actions.push(TransactWriteItem::builder().update(update).build());
            }
            for (n, json) in notices {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(Self::key(OUTBOX_PK.into(), &n.transition_id)))
                    .item("incident_id", AttributeValue::S(n.incident_id.clone()))
                    .item("notice", AttributeValue::S(json))
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                actions.push(TransactWriteItem::builder().put(put).build());
            }
        }
        if let Some(open) = &change.open {
            let json = serde_json::to_string(open).map_err(|e| malformed(e.to_string()))?;
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(Self::key(OPEN_PK.into(), &open.incident_id)))
                .item("open", AttributeValue::S(json))
                .build()
                .map_err(|e| malformed(e.to_string()))?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        for id in &change.closed {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(OPEN_PK.into(), id)))
                .build()
                .map_err(|e| malformed(e.to_string()))?;
            actions.push(TransactWriteItem::builder().delete(delete).build());
        }
        Ok(actions)
    }

    /// Removes one notice from its incident's outbox (if still there) and
    /// from the pending index.
    fn sent_actions(&self, notice: &Notice) -> Result<[TransactWriteItem; 2], StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                Family::Incident.key(&notice.incident_id),
                "META",
            )))
            .update_expression("REMOVE #o.#t")
            .condition_expression("attribute_exists(#o.#t)")
            .expression_attribute_names("#o", "outbox")
            .expression_attribute_names("#t", notice.transition_id.clone())
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(OUTBOX_PK.into(), &notice.transition_id)))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok([
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().delete(delete).build(),
        ])
    }

    /// Puts a dead letter back in the outbox and the pending index (the
    /// evaluator's next run publishes it, its grace being long over), in
    /// one transaction; `false` when there is no such dead letter (already
    /// requeued). Its incident must still exist.
    pub async fn requeue_dead_letter(&self, transition_id: &str) -> Result<bool, StoreError> {
        let Some(item) = self.get(DEAD_PK.into(), transition_id).await? else {
            return Ok(false);
        };
        let dead: DeadLetter = decode(&item, "dead")?;
        let notice = &dead.notice;
        let json = serde_json::to_string(notice).map_err(|e| StoreError::Malformed {
            pk: DEAD_PK.into(),
            sk: transition_id.into(),
            reason: e.to_string(),
        })?;
        let bad = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Unavailable(e.to_string());
        let outbox = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                Family::Incident.key(&notice.incident_id),
                "META",
            )))
            .update_expression("SET #o.#t = :n")
            .condition_expression("attribute_exists(#o)")
            .expression_attribute_names("#o", "outbox")
            .expression_attribute_names("#t", notice.transition_id.clone())
            .expression_attribute_values(":n", AttributeValue::S(json.clone()))
            .build()
            .map_err(bad)?;
        let pending = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::key(OUTBOX_PK.into(), &notice.transition_id)))
            .item("incident_id", AttributeValue::S(notice.incident_id.clone()))
            .item("notice", AttributeValue::S(json))
            .build()
            .map_err(bad)?;
        let gone = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(DEAD_PK.into(), transition_id)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(bad)?;
        self.transact(vec![
            TransactWriteItem::builder().update(outbox).build(),
            TransactWriteItem::builder().put(pending).build(),
            TransactWriteItem::builder().delete(gone).build(),
        ])
        .await
    }

    /// Writes the log-delivery heartbeat unless a newer one is stored
    /// (the fixed-width RFC 3339 times compare as strings).
    async fn put_heartbeat_if_newer(&self, at: OffsetDateTime) -> Result<(), StoreError> {
        self.count();
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::key(
                Family::Heartbeat.key(Heartbeat::LogDelivery.name()),
                "LATEST",
            )))
            .item("at", AttributeValue::S(rfc3339_millis(at)))
            .condition_expression("attribute_not_exists(#at) OR #at < :at")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":at", AttributeValue::S(rfc3339_millis(at)))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            // A newer heartbeat is stored: nothing to do.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::Unavailable(describe_sdk_error(&e))),
        }
    }

    async fn transact(&self, actions: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        self.count();
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_cancelled(&e) => Ok(false),
            Err(e) => Err(StoreError::Unavailable(describe_sdk_error(&e))),
        }
    }

    async fn query_all(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true);
        query_items(query, QUERY_MAX_PAGES, pk, || self.count()).await
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        self.count();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe_sdk_error(&e)))?;
        Ok(out.item)
    }
}

/// Cancelled for a failed condition or a conflicting transaction: the
/// caller re-reads. Anything else is an error.
fn is_cancelled<R>(err: &SdkError<TransactWriteItemsError, R>) -> bool {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
        err.as_service_error()
    else {
        return false;
    };
    let reasons = cancel.cancellation_reasons();
    // moto and older endpoints may omit the reasons: a cancellation is then
    // treated as a conflict, which a re-read resolves either way.
    reasons.is_empty()
        || reasons.iter().any(|r| {
            matches!(
                r.code(),
                Some("ConditionalCheckFailed" | "TransactionConflict")
            )
        })
}

fn string_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn decode<T: serde::de::DeserializeOwned>(item: &Item, attr: &str) -> Result<T, StoreError> {
    let malformed = |reason: String| StoreError::Malformed {
        pk: string_attr(item, "pk").unwrap_or("?").to_owned(),
        sk: string_attr(item, "sk").unwrap_or("?").to_owned(),
        reason,
    };
    let text = string_attr(item, attr).ok_or_else(|| malformed(format!("no `{attr}` string")))?;
    serde_json::from_str(text).map_err(|e| malformed(format!("`{attr}`: {e}")))
}

/// The responder's read: the `incident` attribute of `INCIDENT#<id>` /
/// `META` only (its role may read nothing else of the item family).
impl IncidentSource for DynamoAlertStore {
    async fn stored_incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        self.count();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(format!("INCIDENT#{id}"), "META")))
            .consistent_read(true)
            .projection_expression("pk, sk, incident")
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe_sdk_error(&e)))?;
        match out.item {
            Some(item) if !item.is_empty() => decode(&item, "incident").map(Some),
            _ => Ok(None),
        }
    }
}

impl AlertStore for DynamoAlertStore {
    async fn load_windows(
        &self,
        ids: &[WindowId],
    ) -> Result<Vec<Option<StoredWindow>>, StoreError> {
        let mut found: HashMap<String, StoredWindow> = HashMap::new();
        for chunk in ids.chunks(MAX_GET) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|id| Self::key(id.storage_key(), "STATE"))
                .collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?,
            );
            let mut attempt = 0;
            while let Some(keys) = request.take() {
                self.count();
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(|e| StoreError::Unavailable(describe_sdk_error(&e)))?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    let pk = string_attr(&item, "pk").unwrap_or_default().to_owned();
                    let version = item
                        .get("version")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse::<u64>().ok())
                        .ok_or_else(|| StoreError::Malformed {
                            pk: pk.clone(),
                            sk: "STATE".into(),
                            reason: "no numeric `version`".into(),
                        })?;
                    let state: WindowState = decode(&item, "state")?;
                    found.insert(pk, StoredWindow { version, state });
                }
                request = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
                if request.is_some() {
                    attempt += 1;
                    if attempt > MAX_UNPROCESSED_RETRIES {
                        return Err(StoreError::Unavailable(
                            "windows still unprocessed after retries".into(),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
                }
            }
        }
        Ok(ids
            .iter()
            .map(|id| found.remove(&id.storage_key()))
            .collect())
    }

    async fn commit(
        &self,
        changes: &[WindowChange],
        log_delivery: Option<OffsetDateTime>,
    ) -> Result<Vec<CommitResult>, StoreError> {
        let now = log_delivery.unwrap_or_else(OffsetDateTime::now_utc);
        let mut results = vec![CommitResult::Committed; changes.len()];
        let mut batch: Vec<TransactWriteItem> = Vec::new();
        let mut members: Vec<usize> = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            let actions = self.actions(change, now)?;
            if actions.len() > MAX_ACTIONS {
                return Err(StoreError::Malformed {
                    pk: change.id.storage_key(),
                    sk: "STATE".into(),
                    reason: format!("{} write actions exceed one transaction", actions.len()),
                });
            }
            if batch.len() + actions.len() > MAX_ACTIONS {
                let full = std::mem::take(&mut batch);
                if !self.transact(full).await? {
                    for m in &members {
                        results[*m] = CommitResult::Conflict;
                    }
                }
                members.clear();
            }
            batch.extend(actions);
            members.push(i);
        }
        if !batch.is_empty() && !members.is_empty() && !self.transact(batch).await? {
            for m in &members {
                results[*m] = CommitResult::Conflict;
            }
        }
        // After the windows: a heartbeat means the batch was counted.
        if let Some(at) = log_delivery {
            self.put_heartbeat_if_newer(at).await?;
        }
        Ok(results)
    }

    /// One transaction per 50 notices; when one of them was already
    /// marked (the transaction is cancelled), one per notice.
    async fn mark_sent(&self, notices: &[Notice]) -> Result<usize, StoreError> {
        let mut marked = 0;
        for chunk in sent_chunks(notices, MAX_ACTIONS / 2) {
            let mut actions = Vec::with_capacity(chunk.len() * 2);
            for notice in &chunk {
                actions.extend(self.sent_actions(notice)?);
            }
            if self.transact(actions).await? {
                marked += chunk.len();
                continue;
            }
            for notice in &chunk {
                if self.transact(self.sent_actions(notice)?.to_vec()).await? {
                    marked += 1;
                }
            }
        }
        Ok(marked)
    }

    async fn open_incidents(&self) -> Result<Vec<OpenIncident>, StoreError> {
        self.query_all(OPEN_PK)
            .await?
            .iter()
            .map(|i| decode(i, "open"))
            .collect()
    }

    async fn pending_notices(&self) -> Result<Vec<PendingNotice>, StoreError> {
        self.query_all(OUTBOX_PK)
            .await?
            .iter()
            .map(|item| {
                Ok(PendingNotice {
                    notice: decode(item, "notice")?,
                    lease_until_ms: item
                        .get("lease_until")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse().ok()),
                })
            })
            .collect()
    }

    async fn claim_notice(
        &self,
        transition_id: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        self.count();
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(OUTBOX_PK.into(), transition_id)))
            .update_expression("SET lease_until = :until")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(lease_until) OR lease_until < :now)")
            .expression_attribute_values(":until", AttributeValue::N(now_ms.saturating_add(lease_ms).to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::Unavailable(describe_sdk_error(&e))),
        }
    }

    async fn incident(&self, id: &str) -> Result<Option<StoredIncident>, StoreError> {
        let Some(item) = self.get(Family::Incident.key(id), "META").await? else {
            return Ok(None);
        };
        let incident: Incident = decode(&item, "incident")?;
        let mut outbox: Vec<String> = item
            .get("outbox")
            .and_then(|v| v.as_m().ok())
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        outbox.sort();
        Ok(Some(StoredIncident { incident, outbox }))
    }

    /// One transaction: out of the incident's outbox (conditional, so two
    /// runs move it once), out of the pending index, into the dead letters.
    async fn dead_letter(
        &self,
        notice: &Notice,
        reason: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let dead = DeadLetter {
            notice: notice.clone(),
            // Bounded: the SDK's error text can carry a whole response.
            reason: reason.chars().take(1000).collect(),
            at_ms: monitoring_core::domain::alerts::incident::time_to_ms(at),
        };
        let json = serde_json::to_string(&dead).map_err(|e| StoreError::Malformed {
            pk: DEAD_PK.into(),
            sk: notice.transition_id.clone(),
            reason: e.to_string(),
        })?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::key(DEAD_PK.into(), &notice.transition_id)))
            .item("incident_id", AttributeValue::S(notice.incident_id.clone()))
            .item("dead", AttributeValue::S(json))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let mut actions = self.sent_actions(notice)?.to_vec();
        actions.push(TransactWriteItem::builder().put(put).build());
        self.transact(actions).await
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.query_all(DEAD_PK)
            .await?
            .iter()
            .map(|i| decode(i, "dead"))
            .collect()
    }

    async fn last_log_delivery(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let pk = Family::Heartbeat.key(Heartbeat::LogDelivery.name());
        let Some(item) = self.get(pk.clone(), "LATEST").await? else {
            return Ok(None);
        };
        let at = string_attr(&item, "at").ok_or_else(|| StoreError::Malformed {
            pk: pk.clone(),
            sk: "LATEST".into(),
            reason: "no `at` string".into(),
        })?;
        OffsetDateTime::parse(at, &Rfc3339)
            .map(Some)
            .map_err(|e| StoreError::Malformed {
                pk,
                sk: "LATEST".into(),
                reason: format!("`at` is not RFC 3339: {e}"),
            })
    }
}
/// Groups notices into transactions of at most `max` where no two touch the
/// same incident item: DynamoDB refuses a transaction with two actions on
/// one item (a validation error, not a cancellation), which would leave
/// every notice of the chunk in the outbox to be published again.
fn sent_chunks(notices: &[Notice], max: usize) -> Vec<Vec<&Notice>> {
    let mut chunks: Vec<Vec<&Notice>> = Vec::new();
    for notice in notices {
        let fits = chunks.iter().position(|c| {
            c.len() < max.max(1) && !c.iter().any(|n| n.incident_id == notice.incident_id)
        });
        match fits {
            Some(i) => chunks[i].push(notice),
            None => chunks.push(vec![notice]),
        }
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(incident: &str, transition: &str) -> Notice {
        Notice {
            transition_id: transition.into(),
            incident_id: incident.into(),
            at_ms: 0,
            created_ms: 0,
            body: String::new(),
            attributes: Default::default(),
            dedup_id: transition.into(),
        }
    }

    #[test]
    fn no_transaction_touches_one_incident_twice() {
        let notices = [
            notice("a", "a-firing"),
            notice("b", "b-firing"),
            notice("a", "a-resolved"),
            notice("c", "c-firing"),
            notice("a", "a-reminder"),
        ];
        let chunks = sent_chunks(&notices, 2);
        for chunk in &chunks {
            assert!(chunk.len() <= 2);
            let mut ids: Vec<&str> = chunk.iter().map(|n| n.incident_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), chunk.len(), "{chunk:?}");
        }
        let total: usize = chunks.iter().map(Vec::len).sum();
        assert_eq!(total, notices.len(), "every notice once");
    }
}
