//! The GitHub webhook endpoint: `POST /webhooks/github`, answered as GitHub expects (2xx when
//! taken, 401 unsigned or forged or stale, 409 replayed, 400 not a push payload).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use crate::app::webhook::{Delivery, Outcome, Rejection, Webhook};
use crate::domain::push::WebhookError;

pub const PATH: &str = "/webhooks/github";

pub fn router(webhook: Arc<Webhook>) -> Router {
    Router::new().route(PATH, post(handle)).with_state(webhook)
}

async fn handle(State(webhook): State<Arc<Webhook>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let delivery = Delivery {
        event: header("x-github-event"),
        signature: header("x-hub-signature-256"),
        body: &body,
    };
    let (status, message) = match webhook.receive(delivery).await {
        Ok(Outcome::Accepted(push)) => (
            StatusCode::ACCEPTED,
            json!({ "accepted": true, "repositoryId": push.repository_id, "branchName": push.branch, "commitId": push.commit_id }),
        ),
        Ok(Outcome::Ignored(why)) => (
            StatusCode::ACCEPTED,
            json!({ "accepted": false, "message": why }),
        ),
        Err(Rejection::Refused(error)) => {
            let status = match error {
                WebhookError::Replayed => StatusCode::CONFLICT,
                WebhookError::Payload(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::UNAUTHORIZED,
            };
            tracing::warn!(error = %error, "webhook delivery refused");
            (status, json!({ "message": error.to_string() }))
        }
        Err(Rejection::Unavailable(reason)) => {
            tracing::error!(%reason, "webhook delivery not handled");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "message": "paved could not handle the delivery now; it may be retried" }),
            )
        }
    };
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        message.to_string(),
    )
        .into_response()
}
