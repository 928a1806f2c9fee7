//! Cold start and size of the function binaries (`make bench-lambda`): each binary is started
//! as Lambda starts it, under a local Lambda Runtime API, and timed from exec to its first
//! answer, for an event it answers without calling AWS (so the figure is paved's own start:
//! the runtime, the SDK configuration, the wiring). Prints figures; asserts nothing.
//!
//! PAVED_LAMBDA_BIN_DIR names the folder of the binaries (default: the folder of this build's);
//! PAVED_BENCH_RUNS the starts per binary (default 20).

use std::path::PathBuf;
use std::time::Duration;

use paved_tests::{Function, api_gateway_event, paved_env};
use serde_json::{Value, json};

fn events() -> Vec<(&'static str, Value)> {
    vec![
        (
            "api",
            api_gateway_event(
                "v1",
                "/",
                &[("X-Amz-Target", "AwsProton20200720.Frobnicate")],
                "{}",
            ),
        ),
        ("tasks", json!({"task": "prepare", "deploymentId": "x"})),
        (
            "push",
            json!({"source": "paved.push", "detail-type": "Source Push", "detail": {}}),
        ),
        (
            "webhook",
            api_gateway_event(
                "v1",
                "/webhooks/github",
                &[("X-GitHub-Event", "ping")],
                "{}",
            ),
        ),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[tokio::main]
async fn main() {
    let dir = std::env::var("PAVED_LAMBDA_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let exe = std::env::current_exe().expect("bench executable");
            exe.parent()
                .and_then(|p| p.parent())
                .expect("target/<profile>")
                .to_path_buf()
        });
    let runs: usize = std::env::var("PAVED_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let env = paved_env("paved");
    println!("binaries in {}, {runs} cold starts each", dir.display());
    println!(
        "{:<8} {:>10} {:>12} {:>12} {:>12}",
        "function", "size (MB)", "p50 (ms)", "p90 (ms)", "max (ms)"
    );
    for (name, event) in events() {
        let path = dir.join(name);
        let Ok(metadata) = std::fs::metadata(&path) else {
            println!(
                "{name:<8} not built ({}): cargo build --release first",
                path.display()
            );
            continue;
        };
        let mut times = Vec::new();
        for _ in 0..runs {
            let mut function = Function::start(&path, &env).await;
            function.invoke(event.clone()).await;
            times.push(function.started.elapsed());
            function.stop().await;
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{name:<8} {:>10.1} {:>12.1} {:>12.1} {:>12.1}",
            metadata.len() as f64 / 1_000_000.0,
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.9)),
            ms(*times.last().unwrap()),
        );
    }
}
