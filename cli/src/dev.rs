//! `paved dev`: moto as the local AWS, paved's table and bucket in it, and the Proton API on
//! loopback, all stopped together.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use paved_core::config::{self, Config};

use crate::local_aws::{self, LocalAws, TASKS_FUNCTION};
use crate::local_pushes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

#[derive(clap::Args)]
pub struct DevArgs {
    /// Port of the Proton API.
    #[arg(long, env = "PAVED_PORT", default_value_t = 4000)]
    port: u16,
    /// Port of the local AWS (moto).
    #[arg(long, env = "PAVED_AWS_PORT", default_value_t = 5000)]
    aws_port: u16,
    /// The command that runs moto's server (the project's setup installs moto in .venv;
    /// scripts/moto_server.py adds the fixes paved needs).
    #[arg(
        long,
        env = "PAVED_MOTO_SERVER",
        default_value = ".venv/bin/python scripts/moto_server.py"
    )]
    moto_server: String,
    /// Folder for logs of the processes paved starts.
    #[arg(long, env = "PAVED_STATE_DIR", default_value = ".paved")]
    state_dir: PathBuf,
    #[arg(long, env = "PAVED_TABLE", default_value = "paved")]
    table: String,
    #[arg(long, env = "PAVED_BUCKET", default_value = "paved-bundles")]
    bucket: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// The folder of the state machine definitions.
    #[arg(long, env = "PAVED_STATEMACHINES", default_value = "statemachines")]
    statemachines: PathBuf,
    /// Seconds the state machines wait between checks of CloudFormation.
    #[arg(long, env = "PAVED_POLL_SECONDS", default_value_t = 1)]
    poll_seconds: u64,
    /// The secret local GitHub webhook deliveries are signed with (kept in moto's Secrets
    /// Manager as paved/github-webhook).
    #[arg(
        long,
        env = "PAVED_WEBHOOK_SECRET",
        default_value = "paved-local-webhook-secret"
    )]
    webhook_secret: String,
    /// Fail this share (0 to 1) of paved's own AWS calls the ways AWS calls fail: refused,
    /// throttled, or applied with the answer lost (for resilience tests; 0 = never).
    #[arg(long, env = "PAVED_FAULTS", default_value_t = 0.0)]
    faults: f64,
    /// The seed of the fault draws, so a failing run can be repeated.
    #[arg(long, env = "PAVED_FAULTS_SEED", default_value_t = 1)]
    faults_seed: u64,
}

/// moto's default account: role ARNs in local templates must use it.
const LOCAL_ACCOUNT: &str = "123456789012";

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error(
        "could not start {path}: {source} (run `make dev`, which installs it, or pass --moto-server)"
    )]
    MotoMissing {
        path: String,
        source: std::io::Error,
    },
    #[error("moto did not become healthy on port {port} within {seconds} s; see {log}")]
    MotoUnhealthy {
        port: u16,
        seconds: u64,
        log: String,
    },
    #[error("moto exited early ({status}); see {log}")]
    MotoExited {
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("configuring moto failed: {0}")]
    MotoConfig(String),
    #[error("creating paved's table and bucket failed")]
    Resources(#[source] paved_core::ports::BoxError),
    #[error("{what} failed")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DevError {
    let what = what.into();
    move |source| DevError::Io { what, source }
}

pub async fn run(args: DevArgs) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&args.state_dir).map_err(io("creating the state folder"))?;
    let log_path = args.state_dir.join("moto.log");
    let moto_port = free_port().map_err(io("finding a free port for moto"))?;
    let mut moto = start_moto(&args, moto_port, &log_path)?;
    let outcome = serve(&args, moto_port, &mut moto, &log_path).await;
    // Whatever happened, moto goes down with paved.
    let _ = moto.start_kill();
    let _ = moto.wait().await;
    outcome
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

fn start_moto(
    args: &DevArgs,
    moto_port: u16,
    log_path: &std::path::Path,
) -> Result<Child, DevError> {
    let log = std::fs::File::create(log_path).map_err(io("creating the moto log"))?;
    let err_log = log.try_clone().map_err(io("opening the moto log"))?;
    let mut words = args.moto_server.split_whitespace();
    let program = words.next().unwrap_or("moto_server");
    Command::new(program)
        .args(words)
        .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
        // Step Functions inside moto call AWS back on this port: paved's local AWS endpoint.
        .env("MOTO_PORT", args.aws_port.to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| DevError::MotoMissing {
            path: args.moto_server.clone(),
            source,
        })
}

async fn serve(
    args: &DevArgs,
    moto_port: u16,
    moto: &mut Child,
    log_path: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let log = log_path.display().to_string();
    wait_healthy(moto_port, moto, &log).await?;
    let (status, body) = http(
        moto_port,
        "POST",
        "/moto-api/config",
        r#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#,
    )
    .await
    .map_err(|e| DevError::MotoConfig(e.to_string()))?;
    if !(200..300).contains(&status) {
        return Err(DevError::MotoConfig(format!("HTTP {status}: {body}")).into());
    }

    let state_machine = |name: &str| {
        format!(
            "arn:aws:states:{}:{LOCAL_ACCOUNT}:stateMachine:{name}",
            args.region
        )
    };
    let mut settings = Config {
        table: args.table.clone(),
        bucket: args.bucket.clone(),
        region: args.region.clone(),
        account_id: LOCAL_ACCOUNT.into(),
        deploy_state_machine_arn: state_machine("paved-deploy"),
        delete_state_machine_arn: state_machine("paved-delete"),
        redeploy_state_machine_arn: state_machine("paved-redeploy"),
        upgrade_state_machine_arn: state_machine("paved-upgrade"),
        webhook_secret_id: Some(local_pushes::WEBHOOK_SECRET_ID.into()),
        poll_seconds: args.poll_seconds,
        event_bus: "default".into(),
        pipeline_role_arn: Some(format!("arn:aws:iam::{LOCAL_ACCOUNT}:role/paved-pipeline")),
        instance_quota: paved_core::domain::service::DEFAULT_INSTANCE_QUOTA,
        deployment_retention_days: paved_core::config::DEFAULT_RETENTION_DAYS,
        // Pipelines' CodeBuild projects call the local Proton API.
        proton_endpoint: Some(format!("http://127.0.0.1:{}", args.port)),
        // Any role of the local account, unless PAVED_ROLE_PATTERN narrows it as in AWS.
        role_pattern: std::env::var("PAVED_ROLE_PATTERN").unwrap_or_else(|_| "*".into()),
        platform_principals: vec![],
        developer_principals: vec![],
        readonly_principals: vec![],
        // Locally a tag put on an identity's IAM user counts at once.
        principal_tags_seconds: 0,
        stack_prefix: std::env::var("PAVED_STACK_PREFIX")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| paved_core::adapters::cloudformation::DEFAULT_STACK_PREFIX.into()),
    };
    let aws_endpoint = format!("http://127.0.0.1:{}", args.aws_port);
    let api_endpoint = format!("http://127.0.0.1:{}", args.port);
    let identities = crate::identities::ensure(
        &args.state_dir,
        LOCAL_ACCOUNT,
        &args.region,
        &api_endpoint,
        &aws_endpoint,
    )
    .map_err(io("writing the local identities"))?;
    let shell = write_shell_env(args, &identities, &api_endpoint, &aws_endpoint)
        .map_err(io("writing the shell environment"))?;
    settings.platform_principals = vec![identities.arn("paved-platform")];
    settings.developer_principals = vec![identities.arn("paved-developer")];
    settings.readonly_principals = vec![identities.arn("paved-readonly")];
    let sdk = config::local_sdk_config(&aws_endpoint, &args.region).await;

    // Listen for Ctrl-C and SIGTERM before announcing readiness, so an early stop is graceful.
    let stop = stop_signal().map_err(io("installing signal handlers"))?;
    let (stopped, _) = tokio::sync::watch::channel(false);
    let aws_listener = TcpListener::bind(("127.0.0.1", args.aws_port))
        .await
        .map_err(io(format!("listening on 127.0.0.1:{}", args.aws_port)))?;
    // Locally, pipelines are stand-ins in moto's CodePipeline (see local_pushes).
    let mut deployer = config::deployer(&settings, &sdk);
    deployer.pipelines = Arc::new(local_pushes::LocalPipelines::new(
        &sdk,
        format!("arn:aws:iam::{LOCAL_ACCOUNT}:role/paved-local-pipeline"),
    ));
    let faults =
        (args.faults > 0.0).then(|| crate::local_aws::Faults::new(args.faults, args.faults_seed));
    let local_aws = Arc::new(LocalAws::new(
        moto_port,
        paved_core::app::tasks::Tasks::new(deployer.clone()),
        faults,
    ));
    let mut aws_stop = stopped.subscribe();
    let aws_server = tokio::spawn(
        axum::serve(aws_listener, local_aws::router(local_aws.clone()))
            .with_graceful_shutdown(async move {
                let _ = aws_stop.changed().await;
            })
            .into_future(),
    );

    config::ensure_local_resources(&settings, &sdk)
        .await
        .map_err(DevError::Resources)?;
    create_state_machines(&args.statemachines, &settings, &sdk).await?;
    local_pushes::ensure_pipeline_role(&sdk)
        .await
        .map_err(DevError::Resources)?;
    crate::identities::register(&sdk)
        .await
        .map_err(DevError::Resources)?;
    crate::identities::ensure_roles(&sdk)
        .await
        .map_err(DevError::Resources)?;
    let queue = local_pushes::setup(&sdk, &args.webhook_secret)
        .await
        .map_err(DevError::Resources)?;
    let catalog =
        paved_core::app::catalog::Catalog::new(deployer.catalog.clone(), deployer.bundles.clone())
            .with_events(deployer.events.clone(), deployer.arns.clone());
    let security = paved_core::api::Security {
        authenticate: Arc::new(paved_core::api::authn::LocalKeys::new(
            &args.region,
            identities.keys(),
        )),
        access: config::access(&settings, &sdk),
    };
    let app = Arc::new(paved_core::api::App::new(
        catalog,
        deployer.clone(),
        security,
    ));
    let webhook = Arc::new(config::webhook(&settings, &sdk));
    // As the schedules do in AWS: the sweep (every 10 minutes there, every minute here) and
    // drift detection (hourly there, every 10 minutes here).
    let sweeper = {
        let tasks = paved_core::app::tasks::Tasks::new(deployer.clone());
        let drift = paved_core::app::drift::Drift::new(deployer.clone());
        let mut stop = stopped.subscribe();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            every.tick().await;
            let mut minutes = 0u64;
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        if let Err(error) = tasks.sweep().await {
                            tracing::warn!(error = %error, "the sweep failed; it runs again in a minute");
                        }
                        minutes += 1;
                        if minutes.is_multiple_of(10)
                            && let Err(error) = drift.sweep().await
                        {
                            tracing::warn!(error = %error, "drift detection failed; it runs again in 10 minutes");
                        }
                    }
                    _ = stop.changed() => return,
                }
            }
        })
    };
    let poller = tokio::spawn(local_pushes::poll(
        sdk.clone(),
        queue,
        Arc::new(paved_core::app::pushes::Pushes::new(deployer.clone())),
        stopped.subscribe(),
    ));
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(io(format!("listening on 127.0.0.1:{}", args.port)))?;
    local_aws.arm_faults();
    println!("paved is ready");
    if args.faults > 0.0 {
        println!(
            "  faults:        {:.0}% of paved's AWS calls fail (refused, throttled or answer lost), seed {}",
            args.faults * 100.0,
            args.faults_seed
        );
    }
    println!("  Proton API:    http://127.0.0.1:{}", args.port);
    println!("  local AWS:     {aws_endpoint}");
    println!("  bundle bucket: {}", args.bucket);
    println!("  table:         {}", args.table);
    println!(
        "  GitHub webhook: http://127.0.0.1:{}{} (secret: {})",
        args.port,
        paved_core::api::webhook::PATH,
        args.webhook_secret
    );
    println!(
        "  identities:    {} (profiles {}), endpoints in {}",
        identities.credentials_file.display(),
        crate::identities::PERSONAS
            .iter()
            .map(|(p, _)| *p)
            .collect::<Vec<_>>()
            .join(", "),
        identities.config_file.display()
    );
    println!(
        "  shell:         source {} (paved and the aws CLI on PATH, signed in as paved-platform)",
        shell.display()
    );
    println!(
        "  try:           AWS_CONFIG_FILE={} AWS_SHARED_CREDENTIALS_FILE={} aws --profile paved-developer proton list-services",
        identities.config_file.display(),
        identities.credentials_file.display()
    );
    println!("Stop with Ctrl-C.");
    use std::io::Write;
    let _ = std::io::stdout().flush();

    let routes = paved_core::api::router(app).merge(paved_core::api::webhook::router(webhook));
    let server = axum::serve(
        listener,
        routes.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(stop);
    let outcome = tokio::select! {
        served = server => served.map_err(|e| io("serving the Proton API")(e).into()),
        exited = moto.wait() => match exited {
            Ok(status) => Err(DevError::MotoExited { status, log }.into()),
            Err(error) => Err(io("watching moto")(error).into()),
        },
    };
    let _ = stopped.send(true);
    let _ = aws_server.await;
    let _ = poller.await;
    let _ = sweeper.await;
    if outcome.is_ok() {
        println!("paved stopped");
    }
    outcome
}

/// Creates (or updates) the deploy and delete state machines from `statemachines/`, with the
/// substitutions the SAM template makes in AWS.
async fn create_state_machines(
    folder: &std::path::Path,
    settings: &Config,
    sdk: &aws_config::SdkConfig,
) -> Result<(), Box<dyn std::error::Error>> {
    let client = aws_sdk_sfn::Client::new(sdk);
    let role = format!("arn:aws:iam::{LOCAL_ACCOUNT}:role/paved-state-machines");
    let tasks = format!(
        "arn:aws:lambda:{}:{LOCAL_ACCOUNT}:function:{TASKS_FUNCTION}",
        settings.region
    );
    for (file, arn) in [
        ("deploy.asl.json", &settings.deploy_state_machine_arn),
        ("delete.asl.json", &settings.delete_state_machine_arn),
        ("redeploy.asl.json", &settings.redeploy_state_machine_arn),
        ("upgrade.asl.json", &settings.upgrade_state_machine_arn),
    ] {
        let path = folder.join(file);
        let definition = std::fs::read_to_string(&path)
            .map_err(|e| {
                format!(
                    "{}: {e} (run paved dev from the repository, or pass --statemachines)",
                    path.display()
                )
            })?
            .replace("${TasksFunctionArn}", &tasks);
        let name = arn.rsplit(':').next().unwrap_or_default();
        let created = client
            .create_state_machine()
            .name(name)
            .definition(&definition)
            .role_arn(&role)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_state_machine_already_exists()) =>
            {
                client
                    .update_state_machine()
                    .state_machine_arn(arn)
                    .definition(&definition)
                    .send()
                    .await?;
            }
            Err(error) => return Err(Box::new(error)),
        }
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM; the handlers are installed when this is called.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

async fn wait_healthy(port: u16, moto: &mut Child, log: &str) -> Result<(), DevError> {
    const SECONDS: u64 = 30;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(SECONDS);
    while tokio::time::Instant::now() < deadline {
        if let Some(status) = moto.try_wait().map_err(io("watching moto"))? {
            return Err(DevError::MotoExited {
                status,
                log: log.into(),
            });
        }
        if let Ok((200, _)) = http(port, "GET", "/moto-api/", "").await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(DevError::MotoUnhealthy {
        port,
        seconds: SECONDS,
        log: log.into(),
    })
}

/// A minimal HTTP/1.0 exchange with moto's control API on loopback.
async fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status line"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Writes `<state dir>/env`, which a shell sources to work with this `paved dev` as the README's
/// walkthroughs do: `paved` (linked into `<state dir>/bin`) and the aws CLI beside moto's Python
/// on PATH, the platform engineer's profile, and `$PROTON` / `$LOCAL_AWS` as endpoint options.
fn write_shell_env(
    args: &DevArgs,
    identities: &crate::identities::Identities,
    api: &str,
    aws: &str,
) -> std::io::Result<std::path::PathBuf> {
    let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let state = absolute(&args.state_dir);
    let bin = state.join("bin");
    std::fs::create_dir_all(&bin)?;
    let link = bin.join("paved");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(std::env::current_exe()?, &link)?;
    let mut path = vec![bin.display().to_string()];
    // The aws CLI is installed beside the Python moto runs on (`make setup`'s .venv).
    if let Some(python) = args.moto_server.split_whitespace().next()
        && let Some(dir) = std::path::Path::new(python).parent()
        && dir.join("aws").exists()
    {
        path.push(absolute(dir).display().to_string());
    }
    let text = format!(
        "# Made by `paved dev`: `source` it to use this local paved as the README's walkthroughs do.\n\
         export AWS_CONFIG_FILE={config} AWS_SHARED_CREDENTIALS_FILE={credentials}\n\
         export AWS_PROFILE=paved-platform AWS_REGION={region} AWS_DEFAULT_REGION={region}\n\
         export AWS_ENDPOINT_URL_PROTON={api}\n\
         export PATH=\"{path}:$PATH\"\n\
         PROTON=\"--endpoint-url {api}\"\n\
         LOCAL_AWS=\"--endpoint-url {aws}\"\n",
        config = absolute(&identities.config_file).display(),
        credentials = absolute(&identities.credentials_file).display(),
        region = args.region,
        path = path.join(":"),
    );
    let file = state.join("env");
    std::fs::write(&file, text)?;
    Ok(file)
}
