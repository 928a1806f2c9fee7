//! The local AWS endpoint of `paved dev`: requests go to moto, except Lambda invocations of the
//! task function, which run paved's own task handlers in-process, answering as Lambda does
//! (a failed task is HTTP 200 with `X-Amz-Function-Error: Unhandled` and its `errorType`), so
//! the state machines' Retry and Catch behave as on AWS.
//!
//! With `--faults RATE` it also fails that share of paved's own AWS calls the ways AWS calls
//! fail: refused with a 500 before anything is done, throttled with the error each protocol
//! uses, or applied and then answered with a 500 (the answer lost). Only calls made by paved's
//! SDK clients are touched: tests and the aws CLI see moto as it is.

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
    faults: Option<Faults>,
}

/// How one call is failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// A 500 before the call reaches moto: nothing was done.
    Refused,
    /// The protocol's throttling error: nothing was done.
    Throttled,
    /// The call is applied, then answered with a 500: done, but the caller cannot know.
    AnswerLost,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Throttled => "throttled",
            Self::AnswerLost => "answerLost",
        }
    }
}

/// Which calls fail: a `rate` share of paved's own, each fault as likely as the others.
pub struct Faults {
    rate: f64,
    state: Mutex<u64>,
    /// Off while `paved dev` sets itself up; on once it serves.
    armed: std::sync::atomic::AtomicBool,
}

impl Faults {
    pub fn new(rate: f64, seed: u64) -> Self {
        Self {
            rate: rate.clamp(0.0, 1.0),
            state: Mutex::new(seed | 1),
            armed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// A uniform draw in [0, 1) (xorshift64*: reproducible from the seed, no dependency).
    fn draw(&self) -> f64 {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        let value = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (value >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick(&self) -> Option<Fault> {
        if !self.armed.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let draw = self.draw();
        if draw >= self.rate {
            return None;
        }
        Some(match (draw / self.rate * 3.0) as u32 {
            0 => Fault::Refused,
            1 => Fault::Throttled,
            _ => Fault::AnswerLost,
        })
    }
}

/// The answer AWS gives a throttled call, in the call's protocol: awsJson (an `X-Amz-Target`
/// header), awsQuery (a form body: CloudFormation), or REST-XML (S3).
fn throttled(headers: &axum::http::HeaderMap) -> Response {
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if headers.contains_key("x-amz-target") {
        let mut response = (
            StatusCode::BAD_REQUEST,
            json!({"__type": "ThrottlingException", "message": "Rate exceeded (paved dev --faults)"}).to_string(),
        )
            .into_response();
        response.headers_mut().insert(
            "x-amzn-errortype",
            HeaderValue::from_static("ThrottlingException"),
        );
        response
    } else if form {
        (
            StatusCode::BAD_REQUEST,
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded (paved dev --faults)</Message></Error><RequestId>paved-faults</RequestId></ErrorResponse>",
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "<Error><Code>SlowDown</Code><Message>Please reduce your request rate (paved dev --faults)</Message></Error>",
        )
            .into_response()
    }
}

fn internal_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"__type": "InternalFailure", "message": "paved dev --faults"}).to_string(),
    )
        .into_response()
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
    /// Calls failed on purpose (`--faults`), by fault.
    faults: BTreeMap<String, u64>,
}

impl LocalAws {
    pub fn new(moto_port: u16, tasks: Tasks, faults: Option<Faults>) -> Self {
        Self {
            moto_port,
            client: Client::builder(TokioExecutor::new()).build_http(),
            tasks,
            stats: Mutex::default(),
            faults,
        }
    }

    /// Starts failing calls, if `--faults` asked for it.
    pub fn arm_faults(&self) {
        if let Some(faults) = &self.faults {
            faults.arm();
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
    let ours = parts
        .headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.contains("aws-sdk-rust"));
    let fault = local
        .faults
        .as_ref()
        .filter(|_| ours)
        .and_then(Faults::pick);
    if let Some(fault) = fault {
        *local.stats().faults.entry(fault.name().into()).or_default() += 1;
        match fault {
            Fault::Refused => return internal_error(),
            Fault::Throttled => return throttled(&parts.headers),
            Fault::AnswerLost => {}
        }
    }
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
        Ok(_) if fault == Some(Fault::AnswerLost) => internal_error(),
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
    fn faults_come_at_their_rate_in_each_kind() {
        let faults = Faults::new(0.3, 7);
        assert!(faults.pick().is_none(), "not before it is armed");
        faults.arm();
        let mut kinds = BTreeMap::new();
        for _ in 0..30_000 {
            if let Some(fault) = faults.pick() {
                *kinds.entry(fault.name()).or_insert(0) += 1;
            }
        }
        let total: i32 = kinds.values().sum();
        assert!((8_400..9_600).contains(&total), "{kinds:?}");
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert!(
            kinds.values().all(|n| (2_600..3_400).contains(n)),
            "{kinds:?}"
        );
        let never = Faults::new(0.0, 7);
        never.arm();
        assert!(never.pick().is_none());
    }

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
