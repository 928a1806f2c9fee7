//! `paved fleet` and `paved rollback`: a template's fleet (paved's `GetTemplateFleet`) and a
//! target sent back to an earlier successful deployment (`RollbackDeployment`).

use paved_core::api::PAVED_TARGET_PREFIX;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct FleetArgs {
    /// The template.
    template: String,
    /// It is a service template (its instances and pipelines); otherwise an environment template.
    #[arg(long)]
    service: bool,
    /// Print paved's answer as JSON.
    #[arg(long)]
    json: bool,
    /// paved's API (the stack's ProtonEndpoint output, or `paved dev`'s).
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL_PROTON",
        default_value = "http://127.0.0.1:4000"
    )]
    endpoint: String,
}

#[derive(clap::Args)]
pub struct RollbackArgs {
    /// The earlier deployment to go back to (it must have succeeded).
    deployment_id: String,
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL_PROTON",
        default_value = "http://127.0.0.1:4000"
    )]
    endpoint: String,
}

async fn call(
    endpoint: &str,
    operation: &str,
    body: &Value,
) -> Result<Option<Value>, Box<dyn std::error::Error>> {
    let target = format!("{PAVED_TARGET_PREFIX}{operation}");
    let (status, answer) = crate::client::call(endpoint, &target, body).await?;
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

pub async fn fleet(args: FleetArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let kind = if args.service {
        "SERVICE"
    } else {
        "ENVIRONMENT"
    };
    let body = json!({ "templateName": args.template, "templateType": kind });
    let Some(answer) = call(&args.endpoint, "GetTemplateFleet", &body).await? else {
        return Ok(false);
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(true);
    }
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    println!(
        "{} {}: recommended version {}",
        kind.to_lowercase(),
        s(&answer["template"]["name"]),
        answer["template"]["recommendedVersion"]
            .as_str()
            .unwrap_or("none")
    );
    let targets = answer["targets"].as_array().cloned().unwrap_or_default();
    if targets.is_empty() {
        println!("nothing runs on it");
        return Ok(true);
    }
    println!(
        "{:<17} {:<40} {:<24} {:<8} {:<13} {:<20} LAST DEPLOYMENT",
        "KIND", "NAME", "ENVIRONMENT", "VERSION", "", "STATUS"
    );
    for t in &targets {
        let name = match t["serviceName"].as_str() {
            Some(service) if t["kind"] == "SERVICE_INSTANCE" => {
                format!("{service}/{}", s(&t["name"]))
            }
            _ => s(&t["name"]),
        };
        println!(
            "{:<17} {:<40} {:<24} {:<8} {:<13} {:<20} {}",
            s(&t["kind"]),
            name,
            s(&t["environmentName"]),
            s(&t["version"]),
            s(&t["staleness"]).to_lowercase().replace('_', " "),
            s(&t["deploymentStatus"]),
            s(&t["lastDeploymentId"])
        );
    }
    Ok(true)
}

pub async fn rollback(args: RollbackArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let body = json!({ "deploymentId": args.deployment_id });
    let Some(answer) = call(&args.endpoint, "RollbackDeployment", &body).await? else {
        return Ok(false);
    };
    println!(
        "deployment {} goes back to what deployment {} deployed",
        s_of(&answer["deploymentId"]),
        args.deployment_id
    );
    Ok(true)
}

fn s_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}
