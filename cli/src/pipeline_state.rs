//! `paved pipeline-state`: a service's redeploys and its pipeline's executions and stages, from
//! paved's `GetServicePipelineState` operation (the Proton model has none).

use axum::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use paved_core::api::PAVED_TARGET_PREFIX;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct PipelineStateArgs {
    /// The service.
    service: String,
    /// paved's API (the stack's ProtonEndpoint output, or `paved dev`'s).
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL_PROTON",
        default_value = "http://127.0.0.1:4000"
    )]
    endpoint: String,
    /// How many of the pipeline's latest executions to show.
    #[arg(long, default_value_t = 10)]
    max_results: u32,
}

pub async fn run(args: PipelineStateArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build(connector);
    let body = json!({ "serviceName": args.service, "maxResults": args.max_results });
    let request = axum::http::Request::post(&args.endpoint)
        .header(
            "x-amz-target",
            format!("{PAVED_TARGET_PREFIX}GetServicePipelineState"),
        )
        .header("content-type", "application/x-amz-json-1.0")
        .body(Body::from(body.to_string()))?;
    let response = client.request(request).await?;
    let status = response.status();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), 4 * 1024 * 1024).await?;
    let answer: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} answered HTTP {status} with no JSON: {e}", args.endpoint))?;
    if !status.is_success() {
        eprintln!(
            "paved: {}: {}",
            answer["__type"].as_str().unwrap_or("error"),
            answer["message"].as_str().unwrap_or("")
        );
        return Ok(false);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&answer["pipelineState"])?
    );
    Ok(true)
}
