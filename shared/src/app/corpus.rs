//! The public sample corpus (`conformance/`) as render jobs: every template file of every
//! sample bundle with the namespace paved renders it with (environments first, so services read
//! their outputs; the sample's own spec where it has one). The rendering benchmark and the
//! injection corpus test use it; a corpus that does not load is a broken checkout, so this
//! panics with the file at fault.

use std::path::{Path, PathBuf};

use super::authoring::{BundleKind, Job, KnownOutputs, Part, Workbench, declared_outputs};
use crate::domain::bundle::Bundle;
use crate::domain::spec::Spec;

/// Every template file of the corpus with the namespace paved renders it with.
pub fn sample_jobs(corpus: &Path) -> Vec<(String, Job)> {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value as Json;

    use super::*;

    /// Strings that try every way a value has to become template syntax: YAML structure
    /// (new lines and keys, flow collections, quotes, anchors, aliases, tags, comments),
    /// CloudFormation syntax (dynamic references, substitutions, intrinsics), Jinja, and text
    /// that closes a quote or a line.
    const PAYLOADS: &[&str] = &[
        "x\nEvil: true",
        "x'\nEvil:\n  Type: AWS::IAM::Role",
        "x\"\n  Evil: true",
        "x\n  - Action: '*'",
        "{Evil: true}",
        "[a, b]",
        "a: b",
        "&anchor x",
        "*alias",
        "!Ref AWS::AccountId",
        "!!binary aGVsbG8=",
        "x # comment",
        "{{resolve:ssm:/prod/db-password}}",
        "${AWS::AccountId}",
        "{{ 7 * 7 }}{% if true %}y{% endif %}",
        "x\r\nEvil: true",
        "'",
        "\"",
    ];

    /// What a payload must not change: the resources (logical id and type), the outputs, and
    /// how many mapping entries and sequence items the document has.
    #[derive(Debug, PartialEq)]
    struct Shape {
        resources: BTreeMap<String, String>,
        outputs: Vec<String>,
        entries: usize,
        items: usize,
    }

    fn shape(text: &str) -> Option<Shape> {
        let document: yaml_serde::Value = yaml_serde::from_str(text).ok()?;
        fn count(value: &yaml_serde::Value, entries: &mut usize, items: &mut usize) {
            match value {
                yaml_serde::Value::Mapping(map) => {
                    *entries += map.len();
                    for (_, v) in map {
                        count(v, entries, items);
                    }
                }
                yaml_serde::Value::Sequence(list) => {
                    *items += list.len();
                    for v in list {
                        count(v, entries, items);
                    }
                }
                yaml_serde::Value::Tagged(tagged) => count(&tagged.value, entries, items),
                _ => {}
            }
        }
        let (mut entries, mut items) = (0, 0);
        count(&document, &mut entries, &mut items);
        let resources = document
            .get("Resources")
            .and_then(|r| r.as_mapping())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().unwrap_or_default().to_string(),
                            v.get("Type")
                                .and_then(|t| t.as_str())
                                .unwrap_or_default()
                                .to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let outputs = document
            .get("Outputs")
            .and_then(|o| o.as_mapping())
            .map(|m| {
                m.keys()
                    .map(|k| k.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        Some(Shape {
            resources,
            outputs,
            entries,
            items,
        })
    }

    /// Every string of a namespace, by path: values, and the keys of input maps.
    fn strings(value: &Json, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, bool)>) {
        match value {
            Json::String(_) => out.push((path.clone(), false)),
            Json::Object(map) => {
                for (key, inner) in map {
                    path.push(key.clone());
                    if path.iter().rev().nth(1).is_some_and(|p| p == "inputs") {
                        out.push((path.clone(), true));
                    }
                    strings(inner, path, out);
                    path.pop();
                }
            }
            Json::Array(list) => {
                for (i, inner) in list.iter().enumerate() {
                    path.push(i.to_string());
                    strings(inner, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// The namespace with the string at `path` (or, for a key, the key itself) replaced.
    fn with_payload(context: &Json, path: &[String], key: bool, payload: &str) -> Json {
        let mut context = context.clone();
        let (last, parents) = path.split_last().expect("a path");
        let mut at = &mut context;
        for step in parents {
            at = match at {
                Json::Object(map) => map.get_mut(step).expect("a path of the namespace"),
                Json::Array(list) => &mut list[step.parse::<usize>().expect("an index")],
                _ => unreachable!("paths go through collections"),
            };
        }
        match at {
            Json::Object(map) if key => {
                let value = map.remove(last).expect("the key");
                map.insert(payload.to_string(), value);
            }
            Json::Object(map) => {
                map.insert(last.clone(), Json::String(payload.to_string()));
            }
            Json::Array(list) => {
                list[last.parse::<usize>().expect("an index")] = Json::String(payload.to_string());
            }
            _ => unreachable!("paths go through collections"),
        }
        context
    }

    /// The injection corpus through every string that reaches a template (input values and
    /// keys, names, repository fields, environment, instance and component outputs), on every
    /// template file of the sample corpus: each render has the structure of the render
    /// without the payload, or is refused.
    #[test]
    fn no_string_from_any_source_changes_any_samples_structure() {
        let corpus =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/proton-cfn-samples");
        let jobs = sample_jobs(&corpus);
        assert!(jobs.len() >= 40, "{} jobs", jobs.len());
        let (mut refused, mut kept, mut sources, mut skipped) = (0, 0, 0, 0);
        for (name, job) in &jobs {
            // The namespace as data (example outputs, which answer any name, become the names
            // the template reads): the baseline is the render of that data.
            let context = serde_json::to_value(&job.context).expect("a namespace is data");
            let as_data = Job {
                context: minijinja::Value::from(minijinja::value::Serde(context.clone())),
                ..job.clone()
            };
            let Ok(baseline) = as_data.render() else {
                skipped += 1;
                continue;
            };
            let expected = shape(&baseline.text).unwrap_or_else(|| panic!("{name}: not YAML"));
            let mut paths = Vec::new();
            strings(&context, &mut Vec::new(), &mut paths);
            // Every source kind, a bounded number of each per file.
            let mut per_root: BTreeMap<String, usize> = BTreeMap::new();
            paths.retain(|(path, _)| {
                let seen = per_root
                    .entry(path[..path.len().min(2)].join("."))
                    .or_default();
                *seen += 1;
                *seen <= 3
            });
            sources += paths.len();
            for (path, key) in &paths {
                for payload in PAYLOADS {
                    let injected = Job {
                        context: minijinja::Value::from(minijinja::value::Serde(with_payload(
                            &context, path, *key, payload,
                        ))),
                        ..job.clone()
                    };
                    match injected.render() {
                        Err(_) => refused += 1,
                        Ok(rendered) => {
                            let got = shape(&rendered.text);
                            assert_eq!(
                                got.as_ref(),
                                Some(&expected),
                                "{name}: {payload:?} through {}{} changed the structure:\n{}",
                                path.join("."),
                                if *key { " (as a key)" } else { "" },
                                rendered.text
                            );
                            kept += 1;
                        }
                    }
                }
            }
        }
        assert!(sources > 100, "{sources} sources");
        assert!(
            skipped * 4 < jobs.len(),
            "{skipped} of {} files skipped",
            jobs.len()
        );
        eprintln!(
            "{} files ({skipped} skipped), {sources} sources, {} payloads: {refused} refused, {kept} rendered with the same structure",
            jobs.len(),
            PAYLOADS.len()
        );
    }
}
