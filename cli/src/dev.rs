//! `paved dev`: moto as the local AWS, paved's table and bucket in it, and the Proton API on
//! loopback, all stopped together.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use paved_core::config::{self, Config};
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
    /// The moto_server executable (the project's setup installs it in .venv).
    #[arg(
        long,
        env = "PAVED_MOTO_SERVER",
        default_value = ".venv/bin/moto_server"
    )]
    moto_server: PathBuf,
    /// Folder for logs of the processes paved starts.
    #[arg(long, env = "PAVED_STATE_DIR", default_value = ".paved")]
    state_dir: PathBuf,
    #[arg(long, env = "PAVED_TABLE", default_value = "paved")]
    table: String,
    #[arg(long, env = "PAVED_BUCKET", default_value = "paved-bundles")]
    bucket: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
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
    let mut moto = start_moto(&args, &log_path)?;
    let outcome = serve(&args, &mut moto, &log_path).await;
    // Whatever happened, moto goes down with paved.
    let _ = moto.start_kill();
    let _ = moto.wait().await;
    outcome
}

fn start_moto(args: &DevArgs, log_path: &std::path::Path) -> Result<Child, DevError> {
    let log = std::fs::File::create(log_path).map_err(io("creating the moto log"))?;
    let err_log = log.try_clone().map_err(io("opening the moto log"))?;
    Command::new(&args.moto_server)
        .args(["-H", "127.0.0.1", "-p", &args.aws_port.to_string()])
        // Step Functions inside moto call AWS back on this port.
        .env("MOTO_PORT", args.aws_port.to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| DevError::MotoMissing {
            path: args.moto_server.display().to_string(),
            source,
        })
}

async fn serve(
    args: &DevArgs,
    moto: &mut Child,
    log_path: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let log = log_path.display().to_string();
    wait_healthy(args.aws_port, moto, &log).await?;
    let (status, body) = http(
        args.aws_port,
        "POST",
        "/moto-api/config",
        r#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#,
    )
    .await
    .map_err(|e| DevError::MotoConfig(e.to_string()))?;
    if !(200..300).contains(&status) {
        return Err(DevError::MotoConfig(format!("HTTP {status}: {body}")).into());
    }

    let aws_endpoint = format!("http://127.0.0.1:{}", args.aws_port);
    let settings = Config {
        table: args.table.clone(),
        bucket: args.bucket.clone(),
        region: args.region.clone(),
        account_id: LOCAL_ACCOUNT.into(),
    };
    let sdk = config::local_sdk_config(&aws_endpoint, &args.region).await;
    config::ensure_local_resources(&settings, &sdk)
        .await
        .map_err(DevError::Resources)?;
    let app = Arc::new(config::app(&settings, &sdk));

    // Listen for Ctrl-C and SIGTERM before announcing readiness, so an early stop is graceful.
    let stop = stop_signal().map_err(io("installing signal handlers"))?;
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(io(format!("listening on 127.0.0.1:{}", args.port)))?;
    println!("paved is ready");
    println!("  Proton API:    http://127.0.0.1:{}", args.port);
    println!("  local AWS:     {aws_endpoint}");
    println!("  bundle bucket: {}", args.bucket);
    println!("  table:         {}", args.table);
    println!("Stop with Ctrl-C.");
    use std::io::Write;
    let _ = std::io::stdout().flush();

    let server = axum::serve(listener, paved_core::api::router(app)).with_graceful_shutdown(stop);
    tokio::select! {
        served = server => served.map_err(io("serving the Proton API"))?,
        exited = moto.wait() => {
            let status = exited.map_err(io("watching moto"))?;
            return Err(DevError::MotoExited { status, log }.into());
        }
    }
    println!("paved stopped");
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
