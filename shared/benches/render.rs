//! Renders the public sample corpus with paved and with Python's Jinja2 on the same templates
//! and namespaces, and prints per-template and total times and their ratio.
//!
//! `cargo bench -p paved-core --no-default-features --bench render` (`make bench`).
//! PAVED_SAMPLES overrides the corpus path; PAVED_BENCH_ITERATIONS the repetitions (default 200).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let corpus = std::env::var("PAVED_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("conformance/proton-cfn-samples"));
    let iterations: u32 = std::env::var("PAVED_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let jobs = paved_core::app::corpus::sample_jobs(&corpus);
    println!(
        "{} template files from {}, {iterations} renders each\n",
        jobs.len(),
        corpus.display()
    );

    let mut paved = Vec::new();
    for (name, job) in &jobs {
        job.render().unwrap_or_else(|e| panic!("{name}: {e}"));
        let start = Instant::now();
        for _ in 0..iterations {
            std::hint::black_box(job.render().expect("rendered once already"));
        }
        paved.push(start.elapsed().as_secs_f64() / f64::from(iterations) * 1e6);
    }

    let exported: Vec<serde_json::Value> = jobs
        .iter()
        .map(|(name, job)| serde_json::json!({"name": name, "source": job.source, "context": job.context}))
        .collect();
    let contexts = std::env::temp_dir().join(format!("paved-bench-{}.json", std::process::id()));
    std::fs::write(
        &contexts,
        serde_json::to_vec(&exported).expect("contexts serialise"),
    )
    .expect("contexts written");
    let python = root.join(".venv/bin/python");
    let output = Command::new(&python)
        .arg(root.join("scripts/bench_jinja2.py"))
        .arg(&contexts)
        .arg(iterations.to_string())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run `make setup` first)", python.display()));
    let _ = std::fs::remove_file(&contexts);
    assert!(
        output.status.success(),
        "Jinja2 run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let jinja: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("Jinja2 timings are JSON");

    println!(
        "{:<78} {:>10} {:>10} {:>7}",
        "template", "paved µs", "Jinja2 µs", "ratio"
    );
    let (mut total_paved, mut total_jinja) = (0.0, 0.0);
    for ((name, _), paved_us) in jobs.iter().zip(&paved) {
        let jinja_us = jinja[name.as_str()].as_f64().expect("a time per template");
        total_paved += paved_us;
        total_jinja += jinja_us;
        println!(
            "{name:<78} {paved_us:>10.1} {jinja_us:>10.1} {:>6.1}x",
            jinja_us / paved_us
        );
    }
    println!(
        "{:<78} {total_paved:>10.1} {total_jinja:>10.1} {:>6.1}x",
        "TOTAL (one render of every file)",
        total_jinja / total_paved
    );
    println!(
        "\npaved's times include parsing the template and its YAML structure check; Jinja2's are parse and render only."
    );
}
