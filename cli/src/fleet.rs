//! `paved fleet`, `paved drift` and `paved rollback`: a template's fleet (paved's
//! `GetTemplateFleet`), drift detection on its targets (`DetectDrift`) and a target sent back
//! to an earlier successful deployment (`RollbackDeployment`).

use crate::client::{Endpoint, paved as call};
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
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(clap::Args)]
pub struct RollbackArgs {
    /// The earlier deployment to go back to (it must have succeeded).
    deployment_id: String,
    #[command(flatten)]
    endpoint: Endpoint,
}

pub async fn fleet(args: FleetArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let kind = if args.service {
        "SERVICE"
    } else {
        "ENVIRONMENT"
    };
    let body = json!({ "templateName": args.template, "templateType": kind });
    let Some(answer) = call(&args.endpoint.endpoint, "GetTemplateFleet", &body).await? else {
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
        "{:<17} {:<40} {:<24} {:<8} {:<13} {:<20} {:<10} LAST DEPLOYMENT",
        "KIND", "NAME", "ENVIRONMENT", "VERSION", "", "STATUS", "DRIFT"
    );
    for t in &targets {
        let name = match t["serviceName"].as_str() {
            Some(service) if t["kind"] == "SERVICE_INSTANCE" => {
                format!("{service}/{}", s(&t["name"]))
            }
            _ => s(&t["name"]),
        };
        println!(
            "{:<17} {:<40} {:<24} {:<8} {:<13} {:<20} {:<10} {}",
            s(&t["kind"]),
            name,
            s(&t["environmentName"]),
            s(&t["version"]),
            s(&t["staleness"]).to_lowercase().replace('_', " "),
            s(&t["deploymentStatus"]),
            t["drift"]["status"].as_str().unwrap_or("unchecked"),
            s(&t["lastDeploymentId"])
        );
    }
    Ok(true)
}

pub async fn rollback(args: RollbackArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let body = json!({ "deploymentId": args.deployment_id });
    let Some(answer) = call(&args.endpoint.endpoint, "RollbackDeployment", &body).await? else {
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

#[derive(clap::Args)]
pub struct PreviewArgs {
    /// The template.
    template: String,
    /// The version to preview: `MAJOR` (its recommended minor) or `MAJOR.MINOR`.
    #[arg(long)]
    version: String,
    /// It is a service template; otherwise an environment template.
    #[arg(long)]
    service: bool,
    /// Targets (all the template's if none): `ENVIRONMENT`, `SERVICE/INSTANCE` or
    /// `SERVICE:pipeline`.
    #[arg(long = "target")]
    targets: Vec<String>,
    /// A new spec for the one target named.
    #[arg(long)]
    spec: Option<std::path::PathBuf>,
    /// Print each target's template diff too.
    #[arg(long)]
    diff: bool,
    /// Print paved's answer as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    endpoint: Endpoint,
}

pub async fn preview(args: PreviewArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let (major, minor) = match args.version.split_once('.') {
        Some((major, minor)) => (major.to_string(), Some(minor.to_string())),
        None => (args.version.clone(), None),
    };
    let targets: Vec<Value> = args
        .targets
        .iter()
        .map(|t| {
            if let Some(service) = t.strip_suffix(":pipeline") {
                json!({ "serviceName": service, "pipeline": true })
            } else if let Some((service, instance)) = t.split_once('/') {
                json!({ "serviceName": service, "serviceInstanceName": instance })
            } else {
                json!({ "environmentName": t })
            }
        })
        .collect();
    let spec = match &args.spec {
        Some(path) => Some(
            std::fs::read_to_string(path).map_err(|e| format!("--spec {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let mut body = json!({
        "templateName": args.template,
        "templateType": if args.service { "SERVICE" } else { "ENVIRONMENT" },
        "templateMajorVersion": major,
        "targets": targets,
    });
    if let Some(minor) = minor {
        body["templateMinorVersion"] = json!(minor);
    }
    if let Some(spec) = spec {
        body["spec"] = json!(spec);
    }
    let Some(answer) = call(&args.endpoint.endpoint, "PreviewDeployment", &body).await? else {
        return Ok(false);
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(true);
    }
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    for t in answer["targets"].as_array().into_iter().flatten() {
        let name = match t["serviceName"].as_str() {
            Some(service) if t["kind"] == "SERVICE_INSTANCE" => {
                format!("{service}/{}", s(&t["name"]))
            }
            _ => s(&t["name"]),
        };
        println!(
            "{} {name}: {} -> {}: {}{}",
            s(&t["kind"]).to_lowercase().replace('_', " "),
            s(&t["fromVersion"]),
            s(&t["toVersion"]),
            s(&t["outcome"]).to_lowercase(),
            t["message"]
                .as_str()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
        for a in t["actions"].as_array().into_iter().flatten() {
            println!(
                "    {:<8} {} ({})",
                s(&a["action"]).to_lowercase(),
                s(&a["logicalId"]),
                s(&a["resourceType"])
            );
        }
        if args.diff && !s(&t["diff"]).is_empty() {
            println!("{}", s(&t["diff"]));
        }
    }
    let summary = &answer["summary"];
    let n = |key: &str| summary[key].as_u64().unwrap_or(0);
    println!(
        "\n{} targets: {} to add, {} to modify, {} to replace, {} to remove",
        n("targets"),
        n("add"),
        n("modify"),
        n("replace"),
        n("remove")
    );
    for (what, verb) in [("replaced", "replaces"), ("removed", "removes")] {
        for (kind, count) in summary[what].as_object().into_iter().flatten() {
            println!("this change {verb} {count} {kind}");
        }
    }
    Ok(true)
}

#[derive(clap::Args)]
pub struct DriftArgs {
    /// The template whose targets to check.
    template: String,
    /// It is a service template (its instances and pipelines); otherwise an environment template.
    #[arg(long)]
    service: bool,
    /// Print paved's answer as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    endpoint: Endpoint,
}

/// Detects drift on every target of a template; prints each target's finding and what
/// differs.
pub async fn drift(args: DriftArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let kind = if args.service {
        "SERVICE"
    } else {
        "ENVIRONMENT"
    };
    let body = json!({ "templateName": args.template, "templateType": kind });
    let Some(answer) = call(&args.endpoint.endpoint, "DetectDrift", &body).await? else {
        return Ok(false);
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(true);
    }
    let drifts = answer["drifts"].as_array().cloned().unwrap_or_default();
    if drifts.is_empty() {
        println!("nothing runs on {} {}", kind.to_lowercase(), args.template);
    }
    for d in &drifts {
        println!(
            "{}: {}{}",
            s_of(&d["stackName"]),
            s_of(&d["status"]),
            d["message"]
                .as_str()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
        for r in d["resources"].as_array().into_iter().flatten() {
            println!(
                "    {} {} ({})",
                s_of(&r["status"]).to_lowercase(),
                s_of(&r["logicalId"]),
                s_of(&r["resourceType"])
            );
            for difference in r["differences"].as_array().into_iter().flatten() {
                println!("        {}", s_of(difference));
            }
        }
    }
    Ok(true)
}

#[derive(clap::Args)]
pub struct RenderedArgs {
    /// The deployment.
    deployment_id: String,
    #[command(flatten)]
    endpoint: Endpoint,
}

/// Prints the template a deployment rendered and handed to its engine.
pub async fn rendered(args: RenderedArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let body = json!({ "deploymentId": args.deployment_id });
    let Some(answer) = call(&args.endpoint.endpoint, "GetDeploymentTemplate", &body).await? else {
        return Ok(false);
    };
    print!("{}", s_of(&answer["template"]));
    Ok(true)
}
