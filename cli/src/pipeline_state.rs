//! `paved pipeline-state`: a service's redeploys and its pipeline's executions and stages, from
//! paved's `GetServicePipelineState` operation (the Proton model has none).

use serde_json::json;

#[derive(clap::Args)]
pub struct PipelineStateArgs {
    /// The service.
    service: String,
    #[command(flatten)]
    endpoint: crate::client::Endpoint,
    /// How many of the pipeline's latest executions to show.
    #[arg(long, default_value_t = 10)]
    max_results: u32,
}

pub async fn run(args: PipelineStateArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let body = json!({ "serviceName": args.service, "maxResults": args.max_results });
    let Some(answer) =
        crate::client::paved(&args.endpoint.endpoint, "GetServicePipelineState", &body).await?
    else {
        return Ok(false);
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&answer["pipelineState"])?
    );
    Ok(true)
}
