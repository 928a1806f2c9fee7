//! The local AWS endpoint of `paved dev`: requests go to moto, except Lambda invocations of the
//! task function, which run paved's own task handlers in-process, answering as Lambda does
//! (a failed task is HTTP 200 with `X-Amz-Function-Error: Unhandled` and its `errorType`), so
//! the state machines' Retry and Catch behave as on AWS.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use paved_core::app::tasks::Tasks;
use serde_json::json;

/// The name the state machines invoke (`${TasksFunctionArn}` locally).
pub const TASKS_FUNCTION: &str = "paved-tasks";

pub struct LocalAws {
    moto_port: u16,
    client: Client<HttpConnector, Body>,
    tasks: Tasks,
    stats: Mutex<Stats>,
}

/// What went through the local endpoint, for `scripts/bench_deploy.py`: AWS calls by service
/// and the time moto took, task steps and the time they took (their AWS calls included).
#[derive(Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    aws_calls: BTreeMap<String, u64>,
    aws_seconds: f64,
    task_steps: BTreeMap<String, u64>,
    task_seconds: f64,
}

impl LocalAws {
    pub fn new(moto_port: u16, tasks: Tasks) -> Self {
        Self {
            moto_port,
            client: Client::builder(TokioExecutor::new()).build_http(),
            tasks,
            stats: Mutex::default(),
        }
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub fn router(local: Arc<LocalAws>) -> axum::Router {
    axum::Router::new()
        .route(
            "/paved/local-stats",
            axum::routing::get(read_stats).delete(reset_stats),
        )
        .fallback(handle)
        .with_state(local)
}

async fn read_stats(State(local): State<Arc<LocalAws>>) -> Response {
    let mut value = serde_json::to_value(&*local.stats()).unwrap_or_default();
    value["motoPort"] = local.moto_port.into();
    (StatusCode::OK, value.to_string()).into_response()
}

async fn reset_stats(State(local): State<Arc<LocalAws>>) -> StatusCode {
    *local.stats() = Stats::default();
    StatusCode::NO_CONTENT
}

/// The service a signed request is for, from its credential scope (`.../REGION/SERVICE/aws4_request`).
fn service_of(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|credential| credential.split('/').nth(3))
        .unwrap_or("unsigned")
        .to_string()
}

/// `/2015-03-31/functions/{name or ARN}/invocations` → the function's name.
fn invoked_function(uri: &Uri) -> Option<String> {
    let rest = uri.path().strip_prefix("/2015-03-31/functions/")?;
    let name = rest.strip_suffix("/invocations")?;
    let name = name.replace("%3A", ":").replace("%3a", ":");
    Some(name.rsplit(':').next().unwrap_or(&name).to_string())
}

async fn handle(State(local): State<Arc<LocalAws>>, request: Request) -> Response {
    if let Some(function) = invoked_function(request.uri()) {
        let body = axum::body::to_bytes(request.into_body(), 6 * 1024 * 1024)
            .await
            .unwrap_or_default();
        return invoke(&local, &function, body).await;
    }
    let (mut parts, body) = request.into_parts();
    let service = service_of(&parts.headers);
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    parts.uri = match format!("http://127.0.0.1:{}{path}", local.moto_port).parse() {
        Ok(uri) => uri,
        Err(_) => return (StatusCode::BAD_REQUEST, "bad request path").into_response(),
    };
    let started = Instant::now();
    let answer = local.client.request(Request::from_parts(parts, body)).await;
    {
        let mut stats = local.stats();
        *stats.aws_calls.entry(service).or_default() += 1;
        stats.aws_seconds += started.elapsed().as_secs_f64();
    }
    match answer {
        Ok(response) => response.map(Body::new).into_response(),
        Err(error) => (
            StatusCode::BAD_GATEWAY,
            format!("moto did not answer: {error}"),
        )
            .into_response(),
    }
}

async fn invoke(local: &LocalAws, function: &str, body: Bytes) -> Response {
    if function != TASKS_FUNCTION {
        let error = json!({ "Type": "User", "Message": format!("Function not found: {function}") });
        let mut response = (StatusCode::NOT_FOUND, error.to_string()).into_response();
        response.headers_mut().insert(
            "x-amzn-errortype",
            HeaderValue::from_static("ResourceNotFoundException"),
        );
        return response;
    }
    let payload: serde_json::Value =
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let task = payload["task"].as_str().unwrap_or("unknown").to_string();
    let started = Instant::now();
    let result = local.tasks.run(payload).await;
    {
        let mut stats = local.stats();
        *stats.task_steps.entry(task).or_default() += 1;
        stats.task_seconds += started.elapsed().as_secs_f64();
    }
    match result {
        Ok(result) => (StatusCode::OK, result.to_string()).into_response(),
        Err(error) => {
            let body = json!({ "errorType": error.name(), "errorMessage": error.to_string() });
            let mut response = (StatusCode::OK, body.to_string()).into_response();
            response.headers_mut().insert(
                "x-amz-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocations_are_told_by_name_or_arn() {
        let by_arn: Uri = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Apaved-tasks/invocations".parse().unwrap();
        assert_eq!(invoked_function(&by_arn).as_deref(), Some("paved-tasks"));
        let by_name: Uri = "/2015-03-31/functions/paved-tasks/invocations"
            .parse()
            .unwrap();
        assert_eq!(invoked_function(&by_name).as_deref(), Some("paved-tasks"));
        let other: Uri = "/2015-03-31/functions/paved-tasks".parse().unwrap();
        assert_eq!(invoked_function(&other), None);
    }
}
