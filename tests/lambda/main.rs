//! The four function binaries started as Lambda starts them (under a Lambda Runtime API, with
//! the variables Lambda sets) and fed the events AWS sends them: API Gateway REST proxy events
//! for the deployed stage, Step Functions task payloads, EventBridge events, a GitHub delivery
//! through API Gateway. Their AWS is moto (PAVED_TEST_AWS_ENDPOINT, started by `make test`).

use std::collections::HashMap;

use paved_tests::{
    Answer, DEVELOPER_ARN, Function, api_gateway_event, api_gateway_event_as, binary, paved_env,
};
use serde_json::{Value, json};

/// The stage `infra/template.yaml` deploys both APIs to.
const STAGE: &str = "v1";

struct Aws {
    env: HashMap<String, String>,
    endpoint: String,
}

/// paved's configuration for a fresh table in moto, as the SAM template sets it.
async fn aws() -> Aws {
    let endpoint = std::env::var("PAVED_TEST_AWS_ENDPOINT")
        .expect("PAVED_TEST_AWS_ENDPOINT is not set: run these tests through `make test`");
    let sdk = paved_core::config::local_sdk_config(&endpoint, "us-east-1").await;
    let table = format!("paved-lambda-{}", uuid::Uuid::new_v4());
    paved_core::adapters::dynamodb::ensure_table(&aws_sdk_dynamodb::Client::new(&sdk), &table)
        .await
        .expect("table created");
    let mut env = paved_env(&table);
    env.insert("AWS_ENDPOINT_URL".into(), endpoint.clone());
    Aws { env, endpoint }
}

fn proton_call(operation: &str, body: &str) -> Value {
    api_gateway_event(
        STAGE,
        "/",
        &[
            ("Content-Type", "application/x-amz-json-1.0"),
            ("X-Amz-Target", &format!("AwsProton20200720.{operation}")),
            ("Host", "abcdefghij.execute-api.us-east-1.amazonaws.com"),
        ],
        body,
    )
}

/// The HTTP answer of an API Gateway proxy integration: status and parsed body. The body must
/// be text: a REST API without binary media types hands a base64 body to clients as it is.
fn http(answer: Answer) -> (u64, Value) {
    let Answer::Response(response) = answer else {
        panic!("the function did not answer: {answer:?}");
    };
    assert_eq!(response["isBase64Encoded"], false, "{response}");
    let status = response["statusCode"].as_u64().expect("statusCode");
    let body = response["body"].as_str().unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_api_answers_proton_calls_on_its_deployed_stage() {
    let aws = aws().await;
    let mut api = Function::start(&binary("api"), &aws.env).await;
    let (status, body) = http(
        api.invoke(proton_call("ListEnvironmentTemplates", "{}"))
            .await,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["templates"], json!([]));
    let created = r#"{"name": "vpc", "displayName": "Shared VPC"}"#;
    let (status, body) = http(
        api.invoke(proton_call("CreateEnvironmentTemplate", created))
            .await,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["environmentTemplate"]["arn"],
        "arn:aws:proton:us-east-1:123456789012:environment-template/vpc"
    );
    let (status, body) = http(
        api.invoke(proton_call("GetEnvironmentTemplate", r#"{"name": "vpc"}"#))
            .await,
    );
    assert_eq!(
        (status, body["environmentTemplate"]["displayName"].clone()),
        (200, json!("Shared VPC"))
    );
    let (status, body) = http(
        api.invoke(proton_call("GetEnvironmentTemplate", r#"{"name": "nope"}"#))
            .await,
    );
    assert_eq!(
        (status, body["__type"].clone()),
        (404, json!("ResourceNotFoundException"))
    );
    let (status, body) = http(api.invoke(proton_call("Frobnicate", "{}")).await);
    assert_eq!(
        (status, body["__type"].clone()),
        (400, json!("UnknownOperationException"))
    );
    api.stop().await;
}

#[tokio::test]
async fn the_api_decides_each_call_for_the_principal_api_gateway_verified() {
    let aws = aws().await;
    let mut api = Function::start(&binary("api"), &aws.env).await;
    let event = |user: Option<&str>, operation: &str, body: &str| {
        api_gateway_event_as(
            user,
            STAGE,
            "/",
            &[
                ("Content-Type", "application/x-amz-json-1.0"),
                ("X-Amz-Target", &format!("AwsProton20200720.{operation}")),
            ],
            body,
        )
    };
    let create = r#"{"name": "vpc"}"#;
    let (status, body) = http(
        api.invoke(event(
            Some(DEVELOPER_ARN),
            "CreateEnvironmentTemplate",
            create,
        ))
        .await,
    );
    assert_eq!(
        (status, body["__type"].clone()),
        (403, json!("AccessDeniedException"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("user/paved-developer"),
        "{body}"
    );
    let (status, body) = http(
        api.invoke(event(None, "ListEnvironmentTemplates", "{}"))
            .await,
    );
    assert_eq!(
        (status, body["__type"].clone()),
        (403, json!("MissingAuthenticationTokenException"))
    );
    let (status, body) = http(
        api.invoke(event(Some(DEVELOPER_ARN), "ListEnvironmentTemplates", "{}"))
            .await,
    );
    assert_eq!(
        (status, body["templates"].clone()),
        (200, json!([])),
        "{body}"
    );
    api.stop().await;
}

#[tokio::test]
async fn the_api_answers_a_path_outside_its_routes_with_404() {
    let aws = aws().await;
    let mut api = Function::start(&binary("api"), &aws.env).await;
    let event = api_gateway_event(
        STAGE,
        "/elsewhere",
        &[("X-Amz-Target", "AwsProton20200720.ListEnvironments")],
        "{}",
    );
    let Answer::Response(response) = api.invoke(event).await else {
        panic!("no answer");
    };
    assert_eq!(response["statusCode"], 404);
    api.stop().await;
}

#[tokio::test]
async fn the_tasks_function_runs_step_functions_payloads_and_names_its_errors() {
    let aws = aws().await;
    let mut tasks = Function::start(&binary("tasks"), &aws.env).await;
    // The payload the deploy state machine's first state sends, for a deployment that is not
    // recorded: a named error the Catch matches, not a crash.
    let answer = tasks
        .invoke(json!({"task": "plan", "deploymentId": "0b8b5d4e-0000-4000-8000-000000000000"}))
        .await;
    let Answer::Error(error) = answer else {
        panic!("expected an error: {answer:?}");
    };
    assert_eq!(error["errorType"], "InvalidTask");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{error}"
    );
    let answer = tasks
        .invoke(json!({"task": "prepare", "deploymentId": "x"}))
        .await;
    let Answer::Error(error) = answer else {
        panic!("expected an error: {answer:?}");
    };
    assert_eq!(error["errorType"], "InvalidTask");
    // The redeploy state machine's last step for a service that does not exist.
    let answer = tasks
        .invoke(json!({"task": "failRedeploy", "service": "gone", "execution": "push-1", "error": {"Error": "States.Timeout", "Cause": ""}}))
        .await;
    let Answer::Error(error) = answer else {
        panic!("expected an error: {answer:?}");
    };
    assert_eq!(error["errorType"], "InvalidTask", "{error}");
    // The upgrade state machine's first step, for an upgrade that is not recorded.
    let answer = tasks
        .invoke(json!({"task": "advanceUpgrade", "upgradeId": "gone", "pollSeconds": 10}))
        .await;
    let Answer::Error(error) = answer else {
        panic!("expected an error: {answer:?}");
    };
    assert_eq!(error["errorType"], "InvalidTask", "{error}");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("upgrade gone"),
        "{error}"
    );
    // What the Sweep schedule delivers (its Input, as the SAM template sets it): a sweep of
    // the table's recent deployments, answered with what it did.
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"),
    )
    .unwrap();
    let input = template
        .lines()
        .find_map(|l| l.trim().strip_prefix("Input: '"))
        .and_then(|l| l.strip_suffix('\''))
        .expect("the Sweep schedule's Input");
    let answer = tasks.invoke(serde_json::from_str(input).unwrap()).await;
    let Answer::Response(swept) = answer else {
        panic!("the sweep failed: {answer:?}");
    };
    assert_eq!(swept["recorded"], 0, "{swept}");
    assert!(swept["lookedAt"].is_number(), "{swept}");
    // What the DriftSchedule delivers: drift detection over a fleet with nothing in it yet.
    let input = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Input: '"))
        .filter_map(|l| l.strip_suffix('\''))
        .find(|l| l.contains("detectDrift"))
        .expect("the DriftSchedule's Input");
    let answer = tasks.invoke(serde_json::from_str(input).unwrap()).await;
    let Answer::Response(drift) = answer else {
        panic!("drift detection failed: {answer:?}");
    };
    assert_eq!(drift["started"], 0, "{drift}");
    tasks.stop().await;
}

/// An EventBridge event as a rule delivers it to its Lambda target.
fn eventbridge(source: &str, detail_type: &str, detail: Value) -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-12-01T09:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail
    })
}

#[tokio::test]
async fn the_push_function_takes_eventbridge_events() {
    let aws = aws().await;
    let mut push = Function::start(&binary("push"), &aws.env).await;
    let commit = "3f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39";
    let answer = push
        .invoke(eventbridge(
            "paved.push",
            "Source Push",
            json!({"repositoryId": "acme/web", "branchName": "main", "commitId": commit}),
        ))
        .await;
    assert_eq!(
        answer,
        Answer::Response(json!({"started": []})),
        "no service tracks the branch"
    );
    let answer = push
        .invoke(eventbridge(
            "aws.codecommit",
            "CodeCommit Repository State Change",
            json!({"event": "referenceUpdated", "referenceType": "branch", "repositoryName": "web",
                   "referenceName": "main", "commitId": commit}),
        ))
        .await;
    assert_eq!(answer, Answer::Response(json!({"started": []})));
    push.stop().await;
}

fn github_signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, body).as_ref())
    )
}

#[tokio::test]
async fn the_webhook_takes_github_deliveries_on_its_deployed_stage() {
    let mut aws = aws().await;
    let sdk = paved_core::config::local_sdk_config(&aws.endpoint, "us-east-1").await;
    let secret_name = format!("paved-lambda-webhook-{}", uuid::Uuid::new_v4());
    let secret = "lambda-test-secret";
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&secret_name)
        .secret_string(secret)
        .send()
        .await
        .expect("secret created");
    aws.env
        .insert("PAVED_WEBHOOK_SECRET_ID".into(), secret_name);
    let mut webhook = Function::start(&binary("webhook"), &aws.env).await;
    let body = r#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#;
    let signature = github_signature(secret.as_bytes(), body.as_bytes());
    let delivery = |signature: &str| {
        api_gateway_event(
            STAGE,
            "/webhooks/github",
            &[
                ("Content-Type", "application/json"),
                ("X-GitHub-Event", "ping"),
                ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                ("X-Hub-Signature-256", signature),
                ("User-Agent", "GitHub-Hookshot/044aadd"),
            ],
            body,
        )
    };
    let (status, answer) = http(webhook.invoke(delivery(&signature)).await);
    assert_eq!((status, answer["message"].clone()), (202, json!("pong")));
    let forged = github_signature(b"another secret", body.as_bytes());
    let (status, _) = http(webhook.invoke(delivery(&forged)).await);
    assert_eq!(status, 401);
    webhook.stop().await;
}
