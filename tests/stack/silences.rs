//! Silences in DynamoDB (moto), directly and through health-api's
//! `/api/silences`: created, listed soonest end first, expired ones hidden
//! unless asked for, kept with a TTL, and guarded by the admin token;
//! expired early with `DELETE /api/silences/{id}` (kept, marked, moved to
//! its new end), bounded in duration and number, refused when they would
//! mute every rule, or a security rule without `"security": true`; and
//! `created_by` is the token's identity.

use std::sync::Arc;

use axum::body::Body;
use health_api::router;
use http_body_util::BodyExt;
use monitoring_adapters::dynamodb_silences::{DEFAULT_RETENTION, DynamoSilenceStore};
use monitoring_config::Secret;
use monitoring_core::domain::silence::{Matcher, NewSilence, RuleLabels, Silence, SilencePolicy};
use monitoring_core::ports::{ExpireOutcome, SilenceStore, StoreError};
use test_support::stack::{create_table, dump_table, sdk, unique};
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
        requested_by: None,
        security: false,
    }
    .validate(created, "admin-token", &SilencePolicy::default())
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
            requested_by: None,
            security: false,
        }
    }
    .validate(now, "admin-token", &SilencePolicy::default())
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
    call_with(sdk, table, request, SilencePolicy::default()).await
}

async fn call_with(
    sdk: &aws_config::SdkConfig,
    table: &str,
    request: http::Request<Body>,
    policy: SilencePolicy,
) -> (http::StatusCode, serde_json::Value) {
    let state = crate::bundle::health_state(sdk, table, None)
        .with_silences(
            DynamoSilenceStore::new(sdk, table),
            Some(&Secret::new(ADMIN)),
        )
        .with_silence_policy(policy);
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
                    "duration_seconds":1800,"comment":"red team exercise","created_by":"alice",
                    "security":true}"#,
            ))
            .unwrap()
    };
    let (status, created) = call(&sdk, &table, post(ADMIN)).await;
    assert_eq!(status, http::StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "active");
    assert_eq!(
        created["created_by"], "admin-token",
        "the token, not the body"
    );
    assert_eq!(created["requested_by"], "alice");
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

fn post(body: &str) -> http::Request<Body> {
    http::Request::post("/api/silences")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn delete(id: &str) -> http::Request<Body> {
    http::Request::delete(format!("/api/silences/{id}"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn delete_expires_a_silence_in_dynamodb_and_keeps_it() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let (status, created) = call(
        &sdk,
        &table,
        post(r#"{"matchers":[{"name":"rule","value":"api_errors"}],"duration_seconds":3600,"comment":"deploy"}"#),
    )
    .await;
    assert_eq!(status, http::StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, expired) = call(&sdk, &table, delete(&id)).await;
    assert_eq!(status, http::StatusCode::OK, "{expired}");
    assert_eq!(expired["status"], "expired");
    assert_eq!(expired["expired_by"], "admin-token");
    assert!(expired["expired_at"].is_string());

    let (_, active) = call(&sdk, &table, list("", ADMIN)).await;
    assert_eq!(active, serde_json::json!([]), "no longer in force");
    let (_, all) = call(&sdk, &table, list("?all=true", ADMIN)).await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 1, "moved, not duplicated: {all:?}");
    assert_eq!(all[0]["id"], id.as_str());
    assert_eq!(all[0]["expired_by"], "admin-token");
    assert_eq!(all[0]["comment"], "deploy");

    let (status, body) = call(&sdk, &table, delete(&id)).await;
    assert_eq!(status, http::StatusCode::CONFLICT, "{body}");
    let (status, _) = call(&sdk, &table, delete(&"a".repeat(32))).await;
    assert_eq!(status, http::StatusCode::NOT_FOUND);

    // Two expiries racing on the store: one wins, the other sees it ended.
    let store = DynamoSilenceStore::new(&sdk, &table);
    let now = OffsetDateTime::now_utc();
    let s = silence("race", 60, now);
    store.create(&s).await.unwrap();
    let (a, b) = tokio::join!(
        store.expire(&s.id, now + time::Duration::seconds(1), "admin-token"),
        store.expire(
            &s.id,
            now + time::Duration::seconds(2),
            "admin-token:previous"
        ),
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, ExpireOutcome::Expired(_)))
            .count(),
        1,
        "{outcomes:?}"
    );
    let stored: Vec<Silence> = store
        .list(now, true)
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.id == s.id)
        .collect();
    assert_eq!(stored.len(), 1, "one record: {stored:?}");
}

#[tokio::test]
async fn bounds_and_guards_refuse_with_clear_4xx_against_dynamodb() {
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let policy = SilencePolicy {
        max_duration: time::Duration::hours(2),
        max_active: 2,
        rules: vec![
            RuleLabels::new("brute_force", "security", "critical"),
            RuleLabels::new("api_errors", "performance", "medium"),
        ],
    };
    let send = |body: &'static str| call_with(&sdk, &table, post(body), policy.clone());

    let (status, body) = send(
        r#"{"matchers":[{"name":"rule","value":"api_errors"}],"duration_seconds":10800,"comment":"c"}"#,
    )
    .await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "too_long");
    assert!(
        body["message"].as_str().unwrap().contains("7200 seconds"),
        "{body}"
    );

    let (status, body) = send(
        r#"{"matchers":[{"name":"severity","value":"medium|critical","is_regex":true}],"duration_seconds":60,"comment":"c","security":true}"#,
    )
    .await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "matches_everything", "{body}");

    let (status, body) = send(
        r#"{"matchers":[{"name":"rule","value":"brute_force"}],"duration_seconds":60,"comment":"pen test"}"#,
    )
    .await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "security_flag_required", "{body}");
    let (status, body) = send(
        r#"{"matchers":[{"name":"rule","value":"brute_force"}],"duration_seconds":60,"comment":"","security":true}"#,
    )
    .await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "comment: must not be empty");
    let (status, body) = send(
        r#"{"matchers":[{"name":"rule","value":"brute_force"}],"duration_seconds":60,"comment":"pen test SEC-1","security":true}"#,
    )
    .await;
    assert_eq!(status, http::StatusCode::CREATED, "{body}");
    assert_eq!(body["security"], true);
    let first = body["id"].as_str().unwrap().to_owned();

    let (status, _) = send(
        r#"{"matchers":[{"name":"rule","value":"api_errors"}],"duration_seconds":60,"comment":"deploy"}"#,
    )
    .await;
    assert_eq!(status, http::StatusCode::CREATED);
    let (status, body) = send(
        r#"{"matchers":[{"name":"rule","value":"api_errors"},{"name":"key","value":"k"}],"duration_seconds":60,"comment":"deploy"}"#,
    )
    .await;
    assert_eq!(status, http::StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "too_many_silences");

    let (status, _) = call_with(&sdk, &table, delete(&first), policy.clone()).await;
    assert_eq!(status, http::StatusCode::OK);
    let (status, body) = send(
        r#"{"matchers":[{"name":"rule","value":"api_errors"},{"name":"key","value":"k"}],"duration_seconds":60,"comment":"deploy"}"#,
    )
    .await;
    assert_eq!(
        status,
        http::StatusCode::CREATED,
        "expiring made room: {body}"
    );
    let (_, all) = call(&sdk, &table, list("?all=true", ADMIN)).await;
    assert_eq!(
        all.as_array().unwrap().len(),
        3,
        "refused requests wrote nothing"
    );
}
