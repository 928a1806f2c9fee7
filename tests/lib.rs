//! What paved's integration tests share: a Lambda Runtime API that starts a function binary as
//! Lambda does and feeds it events, one at a time. The tests live in `emulator/` (adapters
//! against moto), `lambda/` (the function binaries under this runtime API) and `structure/`
//! (the library's import graph); `benches/cold_start.rs` measures the binaries with it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, mpsc};

/// What a function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `POST .../invocation/{id}/response`
    Response(Value),
    /// `POST .../invocation/{id}/error`: `{errorType, errorMessage}`
    Error(Value),
    /// `POST .../init/error`: the function failed before taking an event.
    InitError(Value),
}

struct Runtime {
    events: Mutex<mpsc::Receiver<(String, Value)>>,
    answers: mpsc::Sender<(String, Answer)>,
}

/// A function binary running under a local Lambda Runtime API.
pub struct Function {
    child: Child,
    events: mpsc::Sender<(String, Value)>,
    answers: mpsc::Receiver<(String, Answer)>,
    next_id: u64,
    /// When the binary was started.
    pub started: Instant,
}

/// Where cargo put the workspace's binaries for this build (`target/<profile>/`), found from
/// the running test executable (`target/<profile>/deps/<test>`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` first (make test does)",
        path.display()
    );
    path
}

impl Function {
    /// Starts `binary` with `env` (and the variables Lambda itself sets), serving it events
    /// from a runtime API on a free loopback port.
    pub async fn start(binary: &Path, env: &HashMap<String, String>) -> Self {
        let (events_tx, events_rx) = mpsc::channel(16);
        let (answers_tx, answers_rx) = mpsc::channel(16);
        let runtime = Arc::new(Runtime {
            events: Mutex::new(events_rx),
            answers: answers_tx,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(runtime);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("bound");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let started = Instant::now();
        let child = Command::new(binary)
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", format!("paved-{name}"))
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/paved-{name}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/01/[$LATEST]test")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the function binary starts");
        Self {
            child,
            events: events_tx,
            answers: answers_rx,
            next_id: 0,
            started,
        }
    }

    /// Invokes the function with one event and waits (at most 30 s) for its answer.
    pub async fn invoke(&mut self, event: Value) -> Answer {
        self.next_id += 1;
        let id = format!("request-{}", self.next_id);
        self.events
            .send((id.clone(), event))
            .await
            .expect("runtime API running");
        loop {
            let (answered, answer) =
                tokio::time::timeout(Duration::from_secs(30), self.answers.recv())
                    .await
                    .expect("the function answered within 30 s")
                    .expect("runtime API running");
            if answered == id || matches!(answer, Answer::InitError(_)) {
                return answer;
            }
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn next(State(runtime): State<Arc<Runtime>>) -> Response {
    let Some((id, event)) = runtime.events.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        + 30_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:paved".into(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into(),
    );
    set("content-type", "application/json".into());
    (headers, event.to_string()).into_response()
}

fn parsed(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()))
}

async fn response(
    State(runtime): State<Arc<Runtime>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let _ = runtime
        .answers
        .send((id, Answer::Response(parsed(&body))))
        .await;
    StatusCode::ACCEPTED
}

async fn error(
    State(runtime): State<Arc<Runtime>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let _ = runtime
        .answers
        .send((id, Answer::Error(parsed(&body))))
        .await;
    StatusCode::ACCEPTED
}

async fn init_error(State(runtime): State<Arc<Runtime>>, body: Bytes) -> StatusCode {
    let _ = runtime
        .answers
        .send((String::new(), Answer::InitError(parsed(&body))))
        .await;
    StatusCode::ACCEPTED
}

/// paved's configuration as the SAM template gives it to every function, for a table, with
/// throwaway credentials.
pub fn paved_env(table: &str) -> HashMap<String, String> {
    let machine = |name: &str| format!("arn:aws:states:us-east-1:123456789012:stateMachine:{name}");
    [
        ("PAVED_TABLE", table.to_string()),
        ("PAVED_BUCKET", "paved-bundles".to_string()),
        ("PAVED_ACCOUNT_ID", "123456789012".to_string()),
        ("PAVED_DEPLOY_STATE_MACHINE_ARN", machine("paved-deploy")),
        ("PAVED_DELETE_STATE_MACHINE_ARN", machine("paved-delete")),
        (
            "PAVED_REDEPLOY_STATE_MACHINE_ARN",
            machine("paved-redeploy"),
        ),
        ("PAVED_UPGRADE_STATE_MACHINE_ARN", machine("paved-upgrade")),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("PAVED_PLATFORM_PRINCIPALS", PLATFORM_ARN.to_string()),
        ("PAVED_DEVELOPER_PRINCIPALS", DEVELOPER_ARN.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The principals `paved_env` puts in the platform and developer groups.
pub const PLATFORM_ARN: &str = "arn:aws:iam::123456789012:user/paved-platform";
pub const DEVELOPER_ARN: &str = "arn:aws:iam::123456789012:user/paved-developer";

/// An API Gateway REST API proxy event, as API Gateway sends it for a deployed stage whose
/// method uses IAM authorization, for a call signed by the platform engineer.
pub fn api_gateway_event(stage: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Value {
    api_gateway_event_as(Some(PLATFORM_ARN), stage, path, headers, body)
}

/// As [`api_gateway_event`], for a call API Gateway verified as `user_arn` (`None`: a method
/// without IAM authorization, where the identity has no principal).
pub fn api_gateway_event_as(
    user_arn: Option<&str>,
    stage: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Value {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let multi: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::Array(vec![v.clone()])))
        .collect();
    serde_json::json!({
        "resource": path,
        "path": path,
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": path,
            "httpMethod": "POST",
            "extendedRequestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTime": "01/Dec/2026:09:00:00 +0000",
            "path": format!("/{stage}{path}"),
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": "abcdefghij",
            "requestTimeEpoch": 1_796_115_600_000_i64,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {
                "cognitoIdentityPoolId": null,
                "accountId": user_arn.map(|_| "123456789012"),
                "cognitoIdentityId": null,
                "caller": user_arn.map(|_| "AIDAEXAMPLEUSERID0001"),
                "sourceIp": "203.0.113.10",
                "principalOrgId": null,
                "accessKey": user_arn.map(|_| "AKIAEXAMPLEACCESSKEY"),
                "cognitoAuthenticationType": null,
                "cognitoAuthenticationProvider": null,
                "userArn": user_arn,
                "userAgent": "aws-cli/2.17.0",
                "user": null
            },
            "domainName": "abcdefghij.execute-api.us-east-1.amazonaws.com",
            "apiId": "abcdefghij"
        },
        "body": body,
        "isBase64Encoded": false
    })
}
