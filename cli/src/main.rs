//! `paved`: the local platform and, later, tools for template authors.

mod access_check;
mod client;
mod client_setup;
mod dev;
mod fleet;
mod identities;
mod import;
mod local_aws;
mod local_pushes;
mod pipeline_state;
mod template;
mod upgrade;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "paved",
    version,
    about = "A self-hosted platform that speaks the AWS Proton API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform locally against moto, serving the Proton API until stopped.
    Dev(dev::DevArgs),
    /// Render and test template bundles offline.
    #[command(subcommand)]
    Template(template::TemplateCommand),
    /// Answer offline what an access document allows a principal to do.
    #[command(subcommand)]
    Access(access_check::AccessCommand),
    /// Set up the stock AWS clients (CLI v1 and v2, boto3) to call paved's API in AWS.
    #[command(subcommand)]
    Client(client_setup::ClientCommand),
    /// Show a service's redeploys and its pipeline's latest executions and stage states.
    PipelineState(pipeline_state::PipelineStateArgs),
    /// Adopt the stacks AWS Proton left in this account and region (`--plan` only prints).
    Import(import::ImportArgs),
    /// Every target of a template: the version it runs, how far behind, its last deployment.
    Fleet(fleet::FleetArgs),
    /// Deploy a target back to the version and spec of an earlier successful deployment.
    Rollback(fleet::RollbackArgs),
    /// What deploying a template version (or a spec) would do to each target: nothing applied.
    Preview(fleet::PreviewArgs),
    /// The template a deployment rendered and handed to its engine.
    Rendered(fleet::RenderedArgs),
    /// Compare every target of a template with what paved deployed (drift detection).
    Drift(fleet::DriftArgs),
    /// Staged fleet upgrades: start one, follow it, approve, pause, resume or cancel it.
    #[command(subcommand)]
    Upgrade(upgrade::UpgradeCommand),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PAVED_LOG")
                .unwrap_or_else(|_| "info,aws_config=warn,aws_smithy_runtime=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Dev(args) => dev::run(args).await.map(|()| true),
        Command::Template(command) => template::run(command),
        Command::PipelineState(args) => pipeline_state::run(args).await,
        Command::Import(args) => import::run(args).await,
        Command::Fleet(args) => fleet::fleet(args).await,
        Command::Rollback(args) => fleet::rollback(args).await,
        Command::Preview(args) => fleet::preview(args).await,
        Command::Upgrade(command) => upgrade::run(command).await,
        Command::Drift(args) => fleet::drift(args).await,
        Command::Rendered(args) => fleet::rendered(args).await,
        Command::Client(command) => client_setup::run(command),
        Command::Access(command) => access_check::run(command),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("paved: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            std::process::ExitCode::FAILURE
        }
    }
}
