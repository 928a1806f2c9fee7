//! `paved pipeline-state`: a service's redeploys and its pipeline's executions and stages, from
//! paved's `GetServicePipelineState` operation (the Proton model has none).

use paved_core::api::PAVED_TARGET_PREFIX;
use serde_json::json;

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
    let body = json!({ "serviceName": args.service, "maxResults": args.max_results });
    let target = format!("{PAVED_TARGET_PREFIX}GetServicePipelineState");
    let (status, answer) = crate::client::call(&args.endpoint, &target, &body).await?;
    if !(200..300).contains(&status) {
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
