//! The DynamoDB adapter against a fake DynamoDB that cancels transactions as DynamoDB does
//! (moto serialises them and never cancels for contention): a conflict with another transaction
//! or throttling is retried under the same client request token, a failed condition is the
//! caller's conflict, and persistent contention is throttling, not a conflict.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use paved_core::adapters::dynamodb::DynamoStore;
use paved_core::ports::{DeploymentChange, DeploymentStore, StoreError, TokenRecord};
use serde_json::{Value, json};

#[derive(Default)]
struct Fake {
    /// The answers to the next TransactWriteItems calls, in order; then success.
    script: Mutex<VecDeque<Value>>,
    /// The ClientRequestToken of every TransactWriteItems call.
    tokens: Mutex<Vec<String>>,
}

async fn answer(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(target, "DynamoDB_20120810.TransactWriteItems");
    let request: Value = serde_json::from_slice(&body).unwrap();
    fake.tokens.lock().unwrap().push(
        request["ClientRequestToken"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    let next = fake.script.lock().unwrap().pop_front();
    let (status, body) = match next {
        Some(error) => (StatusCode::BAD_REQUEST, error),
        None => (StatusCode::OK, json!({})),
    };
    (
        status,
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
}

fn cancelled(codes: &[&str]) -> Value {
    json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", codes.join(", ")),
        "CancellationReasons": codes.iter().map(|c| json!({"Code": c})).collect::<Vec<_>>(),
    })
}

async fn store(script: Vec<Value>) -> (DynamoStore, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    fake.script.lock().unwrap().extend(script);
    let app = Router::new()
        .route("/", post(answer))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let sdk = paved_core::config::local_sdk_config(&format!("http://{address}"), "us-east-1").await;
    (
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), "paved"),
        fake,
    )
}

/// A write of one item.
fn change() -> DeploymentChange {
    DeploymentChange {
        token: Some(TokenRecord {
            scope: "UpdateServiceInstance/web/a".into(),
            token: "t-1".into(),
            fingerprint: "{}".into(),
            deployment_id: "d-1".into(),
            expires_at: 4_000_000_000,
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_transaction_cancelled_by_contention_is_retried_under_one_token_until_it_is_applied() {
    let (store, fake) = store(vec![
        cancelled(&["TransactionConflict"]),
        cancelled(&["ThrottlingError"]),
    ])
    .await;
    store.change(change()).await.unwrap();
    let tokens = fake.tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 3, "two retries");
    assert!(!tokens[0].is_empty());
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
}

#[tokio::test]
async fn a_failed_condition_is_a_conflict_at_once() {
    let (store, fake) = store(vec![cancelled(&["ConditionalCheckFailed"])]).await;
    let error = store.change(change()).await.unwrap_err();
    assert!(matches!(error, StoreError::ConditionFailed), "{error:?}");
    assert_eq!(fake.tokens.lock().unwrap().len(), 1, "not retried");
}

#[tokio::test]
async fn contention_that_persists_is_throttling_not_a_conflict() {
    let (store, fake) = store(vec![cancelled(&["TransactionConflict"]); 10]).await;
    let error = store.change(change()).await.unwrap_err();
    assert!(matches!(error, StoreError::Throttled(_)), "{error:?}");
    assert_eq!(
        fake.tokens.lock().unwrap().len(),
        6,
        "the first try and five retries"
    );
}
