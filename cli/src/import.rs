//! `paved import`: adopt the stacks Proton left in the account and region, through paved's
//! `GetImportPlan`, `ImportStacks` and `ConfirmAdoption` operations (see `app::imports`).

use std::collections::BTreeMap;

use crate::client::{Endpoint, paved as call};
use serde_json::{Value, json};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ImportArgs {
    #[command(subcommand)]
    action: Option<ImportAction>,
    /// Only print the plan: what each stack was and what adopting it takes.
    #[arg(long)]
    plan: bool,
    /// A spec the resource was deployed with: `environment/NAME=FILE` or `service/NAME=FILE`.
    #[arg(long = "spec", value_name = "RESOURCE=FILE")]
    specs: Vec<String>,
    /// The version a template's stacks run, if not its recommended one: `TEMPLATE=MAJOR.MINOR`.
    #[arg(long = "version", value_name = "TEMPLATE=MAJOR.MINOR")]
    versions: Vec<String>,
    /// The repository a service's pipeline builds:
    /// `SERVICE=CONNECTION_ARN,OWNER/REPOSITORY,BRANCH`.
    #[arg(
        long = "repository",
        value_name = "SERVICE=CONNECTION,REPOSITORY,BRANCH"
    )]
    repositories: Vec<String>,
    /// Print paved's answer as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(clap::Subcommand)]
enum ImportAction {
    /// Let an adopted resource's next deployment apply the plan its first deployment stopped
    /// on (the code is in that deployment's message).
    Confirm {
        /// The environment, service instance, service pipeline or component.
        resource_arn: String,
        /// The code of the plan, from the deployment's message.
        confirmation: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
}

fn pairs(values: &[String], what: &str) -> Result<Vec<(String, String)>, String> {
    values
        .iter()
        .map(|v| {
            v.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| format!("--{what} {v}: write it as KEY=VALUE"))
        })
        .collect()
}

fn request(args: &ImportArgs) -> Result<Value, Box<dyn std::error::Error>> {
    let mut specs = BTreeMap::new();
    for (resource, file) in pairs(&args.specs, "spec")? {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("--spec {resource}={file}: {e}"))?;
        specs.insert(resource, text);
    }
    let versions: BTreeMap<String, String> =
        pairs(&args.versions, "version")?.into_iter().collect();
    let mut repositories = BTreeMap::new();
    for (service, value) in pairs(&args.repositories, "repository")? {
        let parts: Vec<&str> = value.splitn(3, ',').collect();
        let [connection, repository, branch] = parts.as_slice() else {
            return Err(format!(
                "--repository {service}={value}: write it as SERVICE=CONNECTION_ARN,OWNER/REPOSITORY,BRANCH"
            )
            .into());
        };
        repositories.insert(
            service,
            json!({"repositoryConnectionArn": connection, "repositoryId": repository, "branchName": branch}),
        );
    }
    Ok(json!({ "specs": specs, "templateVersions": versions, "repositories": repositories }))
}

pub async fn run(args: ImportArgs) -> Result<bool, Box<dyn std::error::Error>> {
    if let Some(ImportAction::Confirm {
        resource_arn,
        confirmation,
        endpoint,
    }) = &args.action
    {
        let body = json!({ "resourceArn": resource_arn, "confirmation": confirmation });
        let Some(_) = call(&endpoint.endpoint, "ConfirmAdoption", &body).await? else {
            return Ok(false);
        };
        println!(
            "confirmed: the next deployment of {resource_arn} applies plan {confirmation}; deploy it again"
        );
        return Ok(true);
    }
    let body = request(&args)?;
    let operation = if args.plan {
        "GetImportPlan"
    } else {
        "ImportStacks"
    };
    let Some(answer) = call(&args.endpoint.endpoint, operation, &body).await? else {
        return Ok(false);
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", table(&answer, args.plan));
    }
    let items = answer["items"].as_array().cloned().unwrap_or_default();
    let left = items
        .iter()
        .filter(|i| i["status"] != "ADOPTED" && !(args.plan && i["status"] == "READY"))
        .count();
    // A plan answers; an import that left stacks behind fails, so scripts notice.
    Ok(args.plan || left == 0)
}

/// The plan as a person reads it: one line a stack, what it needs and what blocks it below.
fn table(answer: &Value, plan: bool) -> String {
    let items = answer["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return "no stacks of Proton's were found in this account and region\n".into();
    }
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut out = format!(
        "{:<56} {:<17} {:<24} {:<16} {}\n",
        "STACK", "KIND", "NAME", "TEMPLATE", "STATUS"
    );
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for item in &items {
        let name = match (item["serviceName"].as_str(), item["name"].as_str()) {
            (Some(service), Some(name)) if item["kind"] == "SERVICE_INSTANCE" => {
                format!("{service}/{name}")
            }
            (Some(service), None) => service.to_string(),
            (_, Some(name)) => name.to_string(),
            _ => "?".into(),
        };
        let template = match (
            item["templateName"].as_str(),
            item["templateVersion"].as_str(),
        ) {
            (Some(t), Some(v)) => format!("{t} {v}"),
            (Some(t), None) => t.to_string(),
            _ => String::new(),
        };
        let status = s(&item["status"]);
        *counts.entry(status.clone()).or_default() += 1;
        out.push_str(&format!(
            "{:<56} {:<17} {:<24} {:<16} {}\n",
            s(&item["stackName"]),
            s(&item["kind"]),
            name,
            template,
            status
        ));
        if item["versionFrom"] == "recommended" && status != "ADOPTED" {
            out.push_str("    version: taken to be the recommended one (--version TEMPLATE=MAJOR.MINOR names another)\n");
        }
        for need in item["needs"].as_array().into_iter().flatten() {
            out.push_str(&format!("    needs: {}\n", s(need)));
        }
        for blocker in item["blockers"].as_array().into_iter().flatten() {
            out.push_str(&format!("    blocked: {}\n", s(blocker)));
        }
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|(status, n)| format!("{n} {}", status.to_lowercase().replace('_', " ")))
        .collect();
    out.push_str(&format!("\n{} stacks: {}", items.len(), summary.join(", ")));
    if plan {
        out.push_str(". Nothing was changed (--plan).\n");
    } else {
        out.push_str(&format!(
            ". {} adopted now; nothing was deployed.\n",
            answer["adopted"].as_u64().unwrap_or(0)
        ));
    }
    out
}
