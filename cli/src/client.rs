//! Calls to paved's API from the `paved` command, signed (SigV4, signing name `execute-api`,
//! which API Gateway verifies and `paved dev` accepts) with the caller's own AWS credentials
//! from the standard chain (`AWS_PROFILE`, `AWS_SHARED_CREDENTIALS_FILE`, ...).

use aws_credential_types::provider::ProvideCredentials;
use axum::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// POSTs `body` to `endpoint` as `target`; the answer's status and JSON.
pub async fn call(
    endpoint: &str,
    target: &str,
    body: &Value,
) -> Result<(u16, Value), Box<dyn std::error::Error>> {
    let sdk = paved_core::config::sdk_config().await;
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let credentials = sdk
        .credentials_provider()
        .ok_or("no AWS credentials (set AWS_PROFILE, or see the README's \"Signing in\")")?
        .provide_credentials()
        .await?;
    let uri: axum::http::Uri = endpoint.parse()?;
    let host = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let url = if uri.path().is_empty() || uri.path() == "/" {
        format!("{}://{host}/", uri.scheme_str().unwrap_or("http"))
    } else {
        endpoint.to_string()
    };
    let payload = body.to_string();
    let mut headers = vec![
        ("host", host.as_str()),
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", target),
    ];
    let token = credentials.session_token().map(str::to_string);
    if let Some(token) = &token {
        headers.push(("x-amz-security-token", token.as_str()));
    }
    let signed = paved_core::api::authn::sign(
        "POST",
        &url,
        &headers,
        payload.as_bytes(),
        credentials.access_key_id(),
        credentials.secret_access_key(),
        &region,
        "execute-api",
        std::time::SystemTime::now(),
    )?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build(connector);
    let mut request = axum::http::Request::post(&url);
    for (name, value) in headers.iter().filter(|(n, _)| *n != "host") {
        request = request.header(*name, *value);
    }
    for (name, value) in &signed {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = client.request(request.body(Body::from(payload))?).await?;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), 4 * 1024 * 1024).await?;
    let answer: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{endpoint} answered HTTP {status} with no JSON: {e}"))?;
    Ok((status, answer))
}

/// paved's API, as the `paved` commands that call it take it.
#[derive(clap::Args)]
pub struct Endpoint {
    /// paved's API (the stack's ProtonEndpoint output, or `paved dev`'s).
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL_PROTON",
        default_value = "http://127.0.0.1:4000"
    )]
    pub endpoint: String,
}

/// Calls one of paved's own operations; its answer, or `None` after printing the error paved
/// answered with.
pub async fn paved(
    endpoint: &str,
    operation: &str,
    body: &Value,
) -> Result<Option<Value>, Box<dyn std::error::Error>> {
    let target = format!("{}{operation}", paved_core::api::PAVED_TARGET_PREFIX);
    let (status, answer) = call(endpoint, &target, body).await?;
    if !(200..300).contains(&status) {
        eprintln!(
            "paved: {}: {}",
            answer["__type"].as_str().unwrap_or("error"),
            answer["message"].as_str().unwrap_or("")
        );
        return Ok(None);
    }
    Ok(Some(answer))
}
