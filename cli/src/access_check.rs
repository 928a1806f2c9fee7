//! `paved access check`: what an access document allows a principal to do, answered offline by
//! the same Cedar evaluation the API runs (`app::access::check_offline`), so a platform team
//! can try a policy before it puts it (`PutAccessPolicy`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use paved_core::app::access::check_offline;
use paved_core::domain::access::{
    AccessDocument, AccessRequest, Caller, Decision, Principal, Resource, ResourceKind,
};
use serde_json::Value;

#[derive(Subcommand)]
pub enum AccessCommand {
    /// Decide requests offline against an access document (or the default personas).
    Check(CheckArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// The caller: an IAM principal ARN (an assumed-role session matches its role's groups).
    #[arg(long)]
    principal: String,
    /// A tag of the principal (KEY=VALUE), for groups by principal tag; repeatable.
    #[arg(long = "principal-tag", value_parser = pair)]
    principal_tags: Vec<(String, String)>,
    /// The access document: a JSON file of `{groups, policies}`, or what GetAccessPolicy
    /// answers. Without it, the default personas with the groups of PAVED_PLATFORM_PRINCIPALS,
    /// PAVED_DEVELOPER_PRINCIPALS, PAVED_READONLY_PRINCIPALS and PAVED_PIPELINE_ROLE_ARN.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The actions to decide (Proton operations, paved's own, PassRole); repeatable. Without
    /// it, every action.
    #[arg(long = "action")]
    actions: Vec<String>,
    /// The resource ARN the requests name (default: the account).
    #[arg(long)]
    resource: Option<String>,
    /// A tag of the resource (KEY=VALUE); repeatable.
    #[arg(long = "resource-tag", value_parser = pair)]
    resource_tags: Vec<(String, String)>,
    /// The environment ARN the resource is in.
    #[arg(long)]
    environment: Option<String>,
    /// A tag of that environment (KEY=VALUE); repeatable.
    #[arg(long = "environment-tag", value_parser = pair)]
    environment_tags: Vec<(String, String)>,
    /// The template ARN of the request: `proton:EnvironmentTemplate` or
    /// `proton:ServiceTemplate`, by its kind.
    #[arg(long)]
    template: Option<String>,
    /// A tag the request sets (`aws:RequestTag/KEY`, `aws:TagKeys`); repeatable.
    #[arg(long = "request-tag", value_parser = pair)]
    request_tags: Vec<(String, String)>,
    /// The caller's address (`aws:SourceIp`).
    #[arg(long)]
    source_ip: Option<String>,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, default_value = "123456789012")]
    account: String,
    /// Print one JSON object per decision instead of a table.
    #[arg(long)]
    json: bool,
}

fn pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

type Failure = Box<dyn std::error::Error>;

pub fn run(command: AccessCommand) -> Result<bool, Failure> {
    match command {
        AccessCommand::Check(args) => check(args),
    }
}

fn document(path: Option<&PathBuf>, account: &str) -> Result<AccessDocument, Failure> {
    let Some(path) = path else {
        let var =
            |name: &str| paved_core::config::patterns(&std::env::var(name).unwrap_or_default());
        return Ok(AccessDocument::defaults(
            var("PAVED_PLATFORM_PRINCIPALS"),
            var("PAVED_DEVELOPER_PRINCIPALS"),
            var("PAVED_READONLY_PRINCIPALS"),
            std::env::var("PAVED_PIPELINE_ROLE_ARN")
                .ok()
                .filter(|r| !r.is_empty()),
            account,
            &std::env::var("PAVED_STACK_PREFIX")
                .ok()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| {
                    paved_core::adapters::cloudformation::DEFAULT_STACK_PREFIX.into()
                }),
        ));
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let value = value.get("accessPolicy").cloned().unwrap_or(value);
    let groups = value
        .get("groups")
        .cloned()
        .ok_or_else(|| format!("{}: no `groups`", path.display()))?;
    let policies = value
        .get("policies")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{}: no `policies` text", path.display()))?;
    Ok(AccessDocument {
        groups: serde_json::from_value(groups)
            .map_err(|e| format!("{}: groups: {e}", path.display()))?,
        policies: policies.to_string(),
    })
}

fn check(args: CheckArgs) -> Result<bool, Failure> {
    let document = document(args.policy.as_ref(), &args.account)?;
    let known = paved_core::api::authz::actions();
    let everything = args.actions.is_empty();
    let actions: Vec<String> = if everything {
        known.iter().map(|a| a.to_string()).collect()
    } else {
        args.actions.clone()
    };
    if let Some(unknown) = actions.iter().find(|a| !known.contains(&a.as_str())) {
        return Err(format!("{unknown:?} is not an action paved knows").into());
    }
    let map = |pairs: &[(String, String)]| pairs.iter().cloned().collect::<BTreeMap<_, _>>();
    let arn = args
        .resource
        .clone()
        .unwrap_or_else(|| format!("arn:aws:proton:{}:{}:*", args.region, args.account));
    let kind = ResourceKind::of_proton_arn(&arn).unwrap_or(ResourceKind::Account);
    let mut resource = Resource::new(kind, &arn).tagged(map(&args.resource_tags));
    if let Some(environment) = &args.environment {
        resource = resource.in_environment(
            Resource::new(ResourceKind::Environment, environment)
                .tagged(map(&args.environment_tags)),
        );
    }
    let requests: Vec<AccessRequest> = actions
        .iter()
        .map(|action| {
            let mut request = AccessRequest::new(action, resource.clone()).with_request_tags(
                args.request_tags
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
            if let Some(template) = &args.template {
                let key = match ResourceKind::of_proton_arn(template) {
                    Some(ResourceKind::ServiceTemplate) => "proton:ServiceTemplate",
                    _ => "proton:EnvironmentTemplate",
                };
                request = request.with(key, template);
            }
            request
        })
        .collect();
    let caller = Caller {
        principal: Principal {
            arn: args.principal.clone(),
            tags: map(&args.principal_tags),
        },
        source_ip: args.source_ip.clone(),
        request_id: "paved-access-check".into(),
    };
    let decisions = check_offline(&document, &known, &caller, &requests)?;
    for (action, decision) in actions.iter().zip(&decisions) {
        print(action, decision, args.json);
    }
    if everything {
        let allowed = decisions.iter().filter(|d| d.allowed).count();
        if !args.json {
            println!("{allowed} of {} actions allowed on {arn}", decisions.len());
        }
        return Ok(true);
    }
    Ok(decisions.iter().all(|d| d.allowed))
}

fn print(action: &str, decision: &Decision, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "action": action,
                "allowed": decision.allowed,
                "policies": decision.policies,
                "errors": decision.errors,
            })
        );
        return;
    }
    let why = match (decision.allowed, decision.policies.is_empty()) {
        (false, true) => "no policy allows it".to_string(),
        (false, false) => format!("denied by {}", decision.policies.join(", ")),
        (true, _) => format!("allowed by {}", decision.policies.join(", ")),
    };
    println!(
        "{:5}  {action:40}  {why}",
        if decision.allowed { "ALLOW" } else { "DENY" }
    );
    for error in &decision.errors {
        println!("       (a policy could not be evaluated: {error})");
    }
}
