//! Silences in DynamoDB (moto), directly and through health-api's
//! `/api/silences`: created, listed soonest end first, expired ones hidden
//! unless asked for, kept with a TTL, and guarded by the admin token.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use health_api::{AppState, router};
use http_body_util::BodyExt;
use shared::adapters::dynamodb_silences::{DEFAULT_RETENTION, DynamoSilenceStore};
use shared::adapters::dynamodb_store::DynamoStore;
use shared::config::Secret;
use shared::domain::silence::{Matcher, NewSilence, Silence};
use shared::ports::{SilenceStore, StoreError, SystemClock};
use support::stack::{create_table, dump_table, sdk, unique};
use time::OffsetDateTime;
use tower::ServiceExt;

const ADMIN: &str = "integration-admin-token";

fn silence(rule: &str, minutes: u64, created: OffsetDateTime) -> Silence {
    NewSilence {
        matchers: vec![
            Matcher::equal("rule", rule),
            Matcher::regex("key", "10\\.0\\..*"),
        ],
        starts_at: None,
        ends_at: None,
        duration_seconds: Some(minutes * 60),
        comment: format!("silence {rule}"),
        created_by: "it".into(),
    }
    .validate(created)
    .unwrap()
}

#[tokio::test]
async fn the_store_lists_unexpired_silences_with_one_query_order() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let store = DynamoSilenceStore::new(&sdk, &table);
    let now = OffsetDateTime::now_utc();
    let expired = silence("expired", 10, now - time::Duration::hours(1));
    let long = silence("long", 120, now);
    let short = silence("short", 30, now);
    let pending = NewSilence {
        starts_at: Some(now + time::Duration::minutes(10)),
        ..NewSilence {
            matchers: vec![Matcher::equal("severity", "low")],
            starts_at: None,
            ends_at: None,
            duration_seconds: Some(60 * 60),
            comment: "later".into(),
            created_by: "it".into(),
        }
    }
    .validate(now)
    .unwrap();
    for s in [&long, &expired, &short, &pending] {
        store.create(s).await.unwrap();
    }

    let active = store.list(now, false).await.unwrap();
    assert_eq!(active, [short.clone(), pending.clone(), long.clone()]);
    assert!(active[0].matches(&[("rule", "short"), ("key", "10.0.3.4")], now));
    let all = store.list(now, true).await.unwrap();
    assert_eq!(all, [expired.clone(), short, pending, long]);

    let dump = dump_table(&sdk, &table).await;
    let ttl = (expired.ends_at + DEFAULT_RETENTION).unix_timestamp();
    assert!(
        dump.contains(&ttl.to_string()),
        "items expire through ttl: {dump}"
    );

    // Creating the same silence again replaces it.
    store.create(&expired).await.unwrap();
    assert_eq!(store.list(now, true).await.unwrap().len(), 4);
}

#[tokio::test]
async fn a_missing_table_is_a_store_error() {
    let sdk = sdk().await;
    let store = DynamoSilenceStore::new(&sdk, unique("no-such-table"));
    let err = store
        .list(OffsetDateTime::now_utc(), false)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
}

async fn call(
    sdk: &aws_config::SdkConfig,
    table: &str,
    request: http::Request<Body>,
) -> (http::StatusCode, serde_json::Value) {
    let state = AppState::new(
        DynamoStore::new(sdk, table),
        None,
        Duration::from_secs(180),
        Duration::from_secs(10),
        Arc::new(SystemClock),
    )
    .with_silences(
        DynamoSilenceStore::new(sdk, table),
        Some(&Secret::new(ADMIN)),
    );
    let response = router(Arc::new(state)).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn list(query: &str, token: &str) -> http::Request<Body> {
    http::Request::get(format!("/api/silences{query}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn the_api_creates_and_lists_silences_in_dynamodb() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let post = |token: &str| {
        http::Request::post("/api/silences")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"matchers":[{"name":"category","value":"security"},{"name":"severity","value":"critical"}],
                    "duration_seconds":1800,"comment":"red team exercise","created_by":"alice"}"#,
            ))
            .unwrap()
    };
    let (status, created) = call(&sdk, &table, post(ADMIN)).await;
    assert_eq!(status, http::StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "active");
    let id = created["id"].as_str().unwrap().to_owned();

    // An expired silence, written as an older request would have left it.
    let old = silence(
        "auth_failures",
        5,
        OffsetDateTime::now_utc() - time::Duration::hours(2),
    );
    DynamoSilenceStore::new(&sdk, &table)
        .create(&old)
        .await
        .unwrap();

    let (status, active) = call(&sdk, &table, list("", ADMIN)).await;
    assert_eq!(status, http::StatusCode::OK);
    let ids: Vec<&str> = active
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()], "the expired one is hidden");
    assert_eq!(active[0]["comment"], "red team exercise");
    assert_eq!(active[0]["matchers"][1]["value"], "critical");

    let (_, all) = call(&sdk, &table, list("?all=true", ADMIN)).await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["id"], old.id.as_str());
    assert_eq!(all[0]["status"], "expired");

    for token in ["wrong", "integration-admin-toke", "integration-test-token"] {
        let (status, body) = call(&sdk, &table, post(token)).await;
        assert_eq!(status, http::StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body["error"], "unauthorized");
        let (status, _) = call(&sdk, &table, list("", token)).await;
        assert_eq!(status, http::StatusCode::UNAUTHORIZED, "{token:?}");
    }
    let (_, all) = call(&sdk, &table, list("?all=true", ADMIN)).await;
    assert_eq!(
        all.as_array().unwrap().len(),
        2,
        "refused requests wrote nothing"
    );
}
