//! `paved upgrade`: staged fleet upgrades (paved's `StartFleetUpgrade`, `GetFleetUpgrade`,
//! `ListFleetUpgrades`, and `Approve`/`Pause`/`Resume`/`CancelFleetUpgrade`), with a progress
//! bar while one runs.

use crate::client::{Endpoint, paved as call};
use serde_json::{Value, json};

#[derive(clap::Subcommand)]
pub enum UpgradeCommand {
    /// Upgrade a template's targets to a version, in waves.
    Start(StartArgs),
    /// An upgrade's waves and targets; with --wait, follow it.
    Status(IdArgs),
    /// Upgrades, newest first.
    List(ListArgs),
    /// Approve the wave an upgrade waits on.
    Approve(IdArgs),
    /// Let what runs end and start nothing new until resumed.
    Pause(IdArgs),
    /// Go on after a pause.
    Resume(IdArgs),
    /// Start nothing new; the upgrade ends once what runs has ended.
    Cancel(IdArgs),
}

#[derive(clap::Args)]
pub struct StartArgs {
    /// The template.
    template: String,
    /// The version: `MAJOR` (its recommended minor) or `MAJOR.MINOR`.
    #[arg(long)]
    version: String,
    /// It is a service template (its instances and pipelines); otherwise an environment template.
    #[arg(long)]
    service: bool,
    /// A wave: its environments, comma-separated, in order (`--wave dev --wave staging,prod`);
    /// targets elsewhere form a last wave.
    #[arg(long = "wave")]
    waves: Vec<String>,
    /// At most this many targets a wave.
    #[arg(long)]
    wave_size: Option<u32>,
    /// Deployments at once (default 5).
    #[arg(long)]
    concurrency: Option<u32>,
    /// Failed targets tolerated before the upgrade halts (default 0).
    #[arg(long)]
    max_failures: Option<u32>,
    /// Wait for an approval (`paved upgrade approve`) before each wave after the first.
    #[arg(long)]
    approval: bool,
    /// Roll a failed target back to its deployment before the upgrade.
    #[arg(long)]
    rollback_failed: bool,
    /// Only targets in this environment (repeatable).
    #[arg(long = "environment")]
    environments: Vec<String>,
    /// Only this service's instances and pipeline (repeatable).
    #[arg(long = "service-name")]
    services: Vec<String>,
    /// Only targets with this tag, `KEY=VALUE` (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Leave service pipelines as they are.
    #[arg(long)]
    no_pipelines: bool,
    /// Follow the upgrade with a progress bar until it ends or waits for an approval.
    #[arg(long)]
    wait: bool,
    /// Print paved's answer as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(clap::Args)]
pub struct IdArgs {
    /// The upgrade.
    upgrade_id: String,
    /// Follow the upgrade with a progress bar until it ends or waits for an approval.
    #[arg(long)]
    wait: bool,
    /// Print paved's answer as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    endpoint: Endpoint,
}

pub async fn run(command: UpgradeCommand) -> Result<bool, Box<dyn std::error::Error>> {
    match command {
        UpgradeCommand::Start(args) => start(args).await,
        UpgradeCommand::Status(args) => {
            let body = json!({ "upgradeId": args.upgrade_id });
            let Some(answer) = call(&args.endpoint.endpoint, "GetFleetUpgrade", &body).await?
            else {
                return Ok(false);
            };
            show(&answer["upgrade"], args.json)?;
            if args.wait {
                return follow(&args.endpoint.endpoint, &args.upgrade_id).await;
            }
            Ok(true)
        }
        UpgradeCommand::List(args) => {
            let mut token: Option<String> = None;
            let mut all = Vec::new();
            loop {
                let mut body = json!({});
                if let Some(t) = &token {
                    body["nextToken"] = json!(t);
                }
                let Some(answer) =
                    call(&args.endpoint.endpoint, "ListFleetUpgrades", &body).await?
                else {
                    return Ok(false);
                };
                all.extend(answer["upgrades"].as_array().cloned().unwrap_or_default());
                token = answer["nextToken"].as_str().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "upgrades": all }))?
                );
                return Ok(true);
            }
            println!(
                "{:<38} {:<24} {:<8} {:<18} PROGRESS",
                "UPGRADE", "TEMPLATE", "VERSION", "STATUS"
            );
            for u in &all {
                println!(
                    "{:<38} {:<24} {:<8} {:<18} {}",
                    s(&u["upgradeId"]),
                    s(&u["templateName"]),
                    s(&u["templateVersion"]),
                    s(&u["status"]),
                    counts(&u["counts"])
                );
            }
            Ok(true)
        }
        UpgradeCommand::Approve(args) => command_on(args, "ApproveFleetUpgrade", "approved").await,
        UpgradeCommand::Pause(args) => command_on(args, "PauseFleetUpgrade", "pausing").await,
        UpgradeCommand::Resume(args) => command_on(args, "ResumeFleetUpgrade", "resumed").await,
        UpgradeCommand::Cancel(args) => command_on(args, "CancelFleetUpgrade", "cancelling").await,
    }
}

async fn command_on(
    args: IdArgs,
    operation: &str,
    done: &str,
) -> Result<bool, Box<dyn std::error::Error>> {
    let body = json!({ "upgradeId": args.upgrade_id });
    let Some(answer) = call(&args.endpoint.endpoint, operation, &body).await? else {
        return Ok(false);
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!("upgrade {}: {done}", args.upgrade_id);
    }
    if args.wait {
        return follow(&args.endpoint.endpoint, &args.upgrade_id).await;
    }
    Ok(true)
}

async fn start(args: StartArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let (major, minor) = match args.version.split_once('.') {
        Some((major, minor)) => (major.to_string(), Some(minor.to_string())),
        None => (args.version.clone(), None),
    };
    let mut tags = serde_json::Map::new();
    for tag in &args.tags {
        let (k, v) = tag
            .split_once('=')
            .ok_or_else(|| format!("--tag {tag}: KEY=VALUE"))?;
        tags.insert(k.to_string(), json!(v));
    }
    let waves: Vec<Vec<&str>> = args
        .waves
        .iter()
        .map(|w| {
            w.split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .collect()
        })
        .collect();
    let mut body = json!({
        "templateName": args.template,
        "templateType": if args.service { "SERVICE" } else { "ENVIRONMENT" },
        "templateMajorVersion": major,
        "waves": waves,
        "environments": args.environments,
        "services": args.services,
        "tags": tags,
        "approval": args.approval,
        "rollbackFailed": args.rollback_failed,
    });
    let optional = [
        ("templateMinorVersion", minor.map(Value::from)),
        ("waveSize", args.wave_size.map(Value::from)),
        ("concurrency", args.concurrency.map(Value::from)),
        ("maxFailures", args.max_failures.map(Value::from)),
        (
            "includePipelines",
            args.no_pipelines.then_some(Value::Bool(false)),
        ),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            body[key] = value;
        }
    }
    let Some(answer) = call(&args.endpoint.endpoint, "StartFleetUpgrade", &body).await? else {
        return Ok(false);
    };
    let upgrade = &answer["upgrade"];
    show(upgrade, args.json)?;
    if args.wait {
        return follow(&args.endpoint.endpoint, s(&upgrade["upgradeId"])).await;
    }
    Ok(true)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn counts(c: &Value) -> String {
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    let mut parts = vec![format!(
        "{}/{} done",
        n("succeeded") + n("failed") + n("rolledBack") + n("notStarted"),
        n("total")
    )];
    for (key, word) in [
        ("deploying", "deploying"),
        ("succeeded", "succeeded"),
        ("failed", "failed"),
        ("rolledBack", "rolled back"),
        ("notStarted", "not started"),
    ] {
        if n(key) > 0 {
            parts.push(format!("{} {word}", n(key)));
        }
    }
    parts.join(", ")
}

fn show(upgrade: &Value, as_json: bool) -> Result<(), Box<dyn std::error::Error>> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(upgrade)?);
        return Ok(());
    }
    println!(
        "upgrade {}: {} {} to {}: {}{}",
        s(&upgrade["upgradeId"]),
        s(&upgrade["templateType"]).to_lowercase(),
        s(&upgrade["templateName"]),
        s(&upgrade["templateVersion"]),
        s(&upgrade["status"]),
        upgrade["statusMessage"]
            .as_str()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default()
    );
    for (i, wave) in upgrade["waves"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let approved = wave["approvedBy"]["principal"]
            .as_str()
            .map(|p| format!(", approved by {p}"))
            .unwrap_or_default();
        println!(
            "  wave {} {}: {}{approved}",
            i + 1,
            s(&wave["name"]),
            counts(&wave["counts"])
        );
        for t in wave["targets"].as_array().into_iter().flatten() {
            let name = match (s(&t["kind"]), t["serviceName"].as_str()) {
                ("SERVICE_INSTANCE", Some(service)) => format!("{service}/{}", s(&t["name"])),
                ("SERVICE_PIPELINE", Some(service)) => format!("{service} (pipeline)"),
                _ => s(&t["name"]).to_string(),
            };
            println!(
                "    {:<40} {:<8} {:<15} {}{}",
                name,
                s(&t["fromVersion"]),
                s(&t["status"]),
                s(&t["deploymentId"]),
                t["message"]
                    .as_str()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Follows an upgrade with a progress bar: until it ends (true if it succeeded) or waits for an
/// approval or a resume (true: it is where it should be).
async fn follow(endpoint: &str, id: &str) -> Result<bool, Box<dyn std::error::Error>> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}",
        )?
        .progress_chars("=> "),
    );
    loop {
        let Some(answer) = call(endpoint, "GetFleetUpgrade", &json!({ "upgradeId": id })).await?
        else {
            bar.abandon();
            return Ok(false);
        };
        let u = &answer["upgrade"];
        let c = &u["counts"];
        let n = |k: &str| c[k].as_u64().unwrap_or(0);
        bar.set_length(n("total"));
        bar.set_position(n("succeeded") + n("failed") + n("rolledBack") + n("notStarted"));
        let wave = u["wave"].as_u64().unwrap_or(0) as usize;
        let waves = u["waves"].as_array().map_or(0, Vec::len);
        let status = s(&u["status"]);
        bar.set_message(format!(
            "wave {}/{waves}, {status}, {} deploying, {} failed",
            (wave + 1).min(waves),
            n("deploying"),
            n("failed") + n("rolledBack")
        ));
        match status {
            "SUCCEEDED" | "FAILED" | "CANCELLED" => {
                bar.finish();
                show(u, false)?;
                return Ok(status == "SUCCEEDED");
            }
            "AWAITING_APPROVAL" => {
                bar.finish();
                println!(
                    "waiting for an approval of wave {}: paved upgrade approve {id}",
                    wave + 1
                );
                return Ok(true);
            }
            "PAUSED" if n("deploying") == 0 => {
                bar.finish();
                println!("paused: paved upgrade resume {id}");
                return Ok(true);
            }
            _ => {}
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}
