//! Renders the public sample corpus with paved and with Python's Jinja2 on the same templates
//! and namespaces, and prints per-template and total times and their ratio.
//!
//! `cargo bench -p paved-core --no-default-features --bench render` (`make bench`).
//! PAVED_SAMPLES overrides the corpus path; PAVED_BENCH_ITERATIONS the repetitions (default 200).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use paved_core::app::authoring::{
    BundleKind, Job, KnownOutputs, Part, Workbench, declared_outputs,
};
use paved_core::domain::bundle::Bundle;
use paved_core::domain::spec::Spec;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let corpus = std::env::var("PAVED_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("conformance/proton-cfn-samples"));
    let iterations: u32 = std::env::var("PAVED_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let jobs = corpus_jobs(&corpus);
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

/// Every template file of the corpus with the namespace paved renders it with.
fn corpus_jobs(corpus: &Path) -> Vec<(String, Job)> {
    let mut bundles: Vec<PathBuf> = Vec::new();
    collect_bundles(corpus, &mut bundles);
    bundles.sort();
    let mut environment_outputs = std::collections::BTreeMap::new();
    let mut ordered: Vec<(BundleKind, PathBuf, Workbench)> = bundles
        .into_iter()
        .map(|path| {
            let workbench =
                Workbench::new(load(&path), name_of(&path)).expect("corpus bundles are valid");
            (workbench.kind, path, workbench)
        })
        .collect();
    // Environments first: services read their outputs.
    ordered.sort_by_key(|(kind, _, _)| *kind != BundleKind::Environment);
    let mut jobs = Vec::new();
    for (kind, path, workbench) in ordered {
        let label = path
            .strip_prefix(corpus)
            .unwrap_or(&path)
            .display()
            .to_string();
        let mut outputs = KnownOutputs::default();
        if kind == BundleKind::Service {
            let compatible =
                std::fs::read_to_string(path.join(".compatible-envs")).unwrap_or_default();
            let env = compatible
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            outputs.environment = environment_outputs.get(&env).cloned();
        }
        let spec = match find_spec(&path, kind) {
            Some(spec) => spec,
            None => Spec::Service {
                pipeline: None,
                instances: vec![],
            },
        };
        let parts: &[Part] = match kind {
            BundleKind::Service => &[Part::Instance, Part::Pipeline],
            _ => &[Part::Infrastructure],
        };
        for part in parts {
            let part_jobs = workbench
                .jobs(&spec, *part, None, &outputs)
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            // One instance is enough per template file.
            let job = part_jobs
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("{label}: nothing to render"));
            if kind == BundleKind::Environment {
                let rendered = job.render().unwrap_or_else(|e| panic!("{label}: {e}"));
                environment_outputs
                    .insert(workbench.name.clone(), declared_outputs(&rendered.text));
            }
            jobs.push((format!("{label}/{}", job.file), job));
        }
    }
    jobs
}

fn collect_bundles(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let is_bundle =
            path.join("schema/schema.yaml").is_file() || path.join("manifest.yaml").is_file();
        if is_bundle {
            out.push(path);
        } else {
            collect_bundles(&path, out);
        }
    }
}

fn load(path: &Path) -> Bundle {
    fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).expect("readable corpus").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned();
                files.push((relative, std::fs::read(&path).expect("readable file")));
            }
        }
    }
    let mut files = Vec::new();
    walk(path, path, &mut files);
    Bundle::from_files(files).expect("corpus bundle")
}

fn name_of(path: &Path) -> String {
    let last = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("template");
    if last == "v1" {
        path.parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or(last)
            .to_string()
    } else {
        last.to_string()
    }
}

fn find_spec(bundle: &Path, kind: BundleKind) -> Option<Spec> {
    for dir in bundle.ancestors().take(4) {
        for folder in ["spec", "specs"] {
            let Ok(entries) = std::fs::read_dir(dir.join(folder)) else {
                continue;
            };
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for path in paths {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if text.contains(&format!("proton: {}", kind.spec_kind())) {
                    return Spec::parse(&text).ok();
                }
            }
        }
    }
    None
}
