//! `paved template`: render and test template bundles offline, with no AWS at all.

use std::path::{Path, PathBuf};
use std::process::Command;

use paved_core::app::authoring::{
    BundleKind, KnownOutputs, Part, Rendered, Workbench, declared_outputs,
};
use paved_core::domain::bundle::Bundle;
use paved_core::domain::spec::Spec;

#[derive(clap::Subcommand)]
pub enum TemplateCommand {
    /// Print the rendered CloudFormation of a bundle for a spec.
    Render(RenderArgs),
    /// Check a bundle, render it with every sample spec found (or given), lint the result.
    Test(TestArgs),
    /// Print, as JSON, the outputs a rendered template declares (literal values where the
    /// template gives them, examples where CloudFormation computes them): feed them to
    /// `--outputs` when rendering the templates that read them.
    Outputs(RenderArgs),
}

#[derive(clap::Args)]
pub struct RenderArgs {
    /// A bundle folder (such as `my-template/v1`) or its .tar.gz.
    bundle: PathBuf,
    /// The spec file (`proton: EnvironmentSpec` or `proton: ServiceSpec`).
    #[arg(long)]
    spec: PathBuf,
    /// Outputs the template reads, as YAML or JSON:
    /// `{environment: {...}, component: {...}, instances: {NAME: {...}}}`.
    /// Outputs not given get example values.
    #[arg(long)]
    outputs: Option<PathBuf>,
    /// For service bundles: the instance template or the pipeline template.
    #[arg(long, value_enum, default_value = "instance")]
    part: PartArg,
    /// For service bundles: the instance to render (default: the spec's first).
    #[arg(long)]
    instance: Option<String>,
    /// The resource name the template sees (`environment.name`, `service.name`);
    /// default: the bundle's folder name.
    #[arg(long)]
    name: Option<String>,
}

#[derive(clap::Args)]
pub struct TestArgs {
    /// A bundle folder (such as `my-template/v1`) or its .tar.gz.
    bundle: PathBuf,
    /// Spec files to render; default: the `spec/` and `specs/` folders next to the bundle
    /// (up to three levels up) that hold specs of the bundle's kind.
    #[arg(long)]
    spec: Vec<PathBuf>,
    #[arg(long)]
    outputs: Option<PathBuf>,
    #[arg(long)]
    name: Option<String>,
    /// The cfn-lint executable (default: `cfn-lint` on PATH, then `.venv/bin/cfn-lint`).
    #[arg(long)]
    cfn_lint: Option<PathBuf>,
    /// Render only; do not lint.
    #[arg(long)]
    no_lint: bool,
    /// cfn-lint rules to ignore (passed to `cfn-lint --ignore-checks`), e.g. `E2533`.
    #[arg(long, value_delimiter = ',')]
    ignore_checks: Vec<String>,
    /// Fail on cfn-lint warnings too, not only on errors.
    #[arg(long)]
    strict: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PartArg {
    Instance,
    Pipeline,
}

type Failure = Box<dyn std::error::Error>;

pub fn run(command: TemplateCommand) -> Result<bool, Failure> {
    match command {
        TemplateCommand::Render(args) => render(args, false).map(|()| true),
        TemplateCommand::Outputs(args) => render(args, true).map(|()| true),
        TemplateCommand::Test(args) => test(args),
    }
}

fn render(args: RenderArgs, outputs_only: bool) -> Result<(), Failure> {
    let workbench = load(&args.bundle, args.name.as_deref())?;
    let spec = read_spec(&args.spec)?;
    let outputs = read_outputs(args.outputs.as_deref())?;
    let part = match (workbench.kind, args.part) {
        (BundleKind::Service, PartArg::Pipeline) => Part::Pipeline,
        (BundleKind::Service, PartArg::Instance) => Part::Instance,
        _ => Part::Infrastructure,
    };
    let instance = args.instance.as_deref().or(match (&spec, part) {
        (Spec::Service { instances, .. }, Part::Instance) => {
            instances.first().map(|i| i.name.as_str())
        }
        _ => None,
    });
    let rendered = workbench.render(&spec, part, instance, &outputs)?;
    if outputs_only {
        let declared: serde_json::Map<String, serde_json::Value> = rendered
            .iter()
            .flat_map(|file| declared_outputs(&file.text))
            .collect();
        println!("{}", serde_json::to_string_pretty(&declared)?);
        return Ok(());
    }
    let many = rendered.len() > 1;
    for file in rendered {
        if many {
            println!("# {}: {}", file.target, file.file);
        }
        println!("{}", file.text);
    }
    Ok(())
}

fn test(args: TestArgs) -> Result<bool, Failure> {
    let mut report = Report::default();
    let workbench = match load(&args.bundle, args.name.as_deref()) {
        Ok(workbench) => {
            report.pass(format!(
                "bundle {}: layout, manifests and schema",
                args.bundle.display()
            ));
            workbench
        }
        Err(error) => {
            report.fail(
                format!("bundle {}", args.bundle.display()),
                error.to_string(),
            );
            return Ok(report.finish());
        }
    };
    let outputs = read_outputs(args.outputs.as_deref())?;
    let specs = if args.spec.is_empty() {
        discover_specs(&args.bundle, workbench.kind)
    } else {
        args.spec.clone()
    };
    // A component has no inputs of its own: it renders without a spec.
    let specs: Vec<Option<PathBuf>> = if specs.is_empty() && workbench.kind == BundleKind::Component
    {
        vec![None]
    } else {
        specs.into_iter().map(Some).collect()
    };
    if specs.is_empty() {
        report.fail(
            "specs".into(),
            "no spec given and none found in spec/ or specs/ next to the bundle".into(),
        );
    }
    let lint = if args.no_lint {
        None
    } else {
        Some(find_cfn_lint(args.cfn_lint.as_deref())?)
    };
    let out_dir = std::env::temp_dir().join(format!("paved-template-test-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir)?;
    let discovered = args.spec.is_empty() && specs.len() > 1;
    let mut rendered_any = false;
    let mut to_lint: Vec<(String, String, PathBuf)> = Vec::new();
    for spec_path in &specs {
        let (label, spec) = match spec_path {
            None => (
                "no spec".to_string(),
                Ok(Spec::Service {
                    pipeline: None,
                    instances: vec![],
                }),
            ),
            Some(path) => (path.display().to_string(), read_spec(path)),
        };
        let spec = match spec {
            Ok(spec) => spec,
            Err(error) => {
                report.fail(label, error.to_string());
                continue;
            }
        };
        let mut parts = vec![Part::Infrastructure];
        if workbench.kind == BundleKind::Service {
            parts = vec![Part::Instance];
            if workbench.has_pipeline() {
                parts.push(Part::Pipeline);
            }
        }
        let mut files: Vec<Rendered> = Vec::new();
        let mut failed = None;
        for part in parts {
            match workbench.render(&spec, part, None, &outputs) {
                Ok(rendered) => files.extend(rendered),
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        if let Some(error) = failed {
            // Specs found by looking around may belong to a sibling template: skip those whose
            // inputs do not fit, but never skip a spec the author named.
            if discovered && error.contains(".spec") && !error.contains(".yaml") {
                report.skip(label, format!("inputs do not fit this template ({error})"));
            } else {
                report.fail(format!("{label}: render"), error);
            }
            continue;
        }
        rendered_any = true;
        for file in files {
            let name = format!("{}: {} {}", label, file.target, file.file);
            if lint.is_none() {
                report.pass(format!("{name} rendered"));
                continue;
            }
            let path = out_dir.join(format!("{}.yaml", to_lint.len()));
            std::fs::write(&path, &file.text)?;
            to_lint.push((name, file.file, path));
        }
    }
    if let (Some(lint), false) = (&lint, to_lint.is_empty()) {
        lint_all(lint, &args, &to_lint, &mut report)?;
    }
    if !specs.is_empty() && !rendered_any {
        report.fail("specs".into(), "no spec rendered this template".into());
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    Ok(report.finish())
}

/// Lints every rendered file in one cfn-lint run and reports each file on its own.
fn lint_all(
    lint: &Path,
    args: &TestArgs,
    files: &[(String, String, PathBuf)],
    report: &mut Report,
) -> Result<(), Failure> {
    let mut command = Command::new(lint);
    command.args(["--format", "parseable"]);
    if !args.ignore_checks.is_empty() {
        command.arg("--ignore-checks").args(&args.ignore_checks);
    }
    command
        .arg("--")
        .args(files.iter().map(|(_, _, path)| path));
    let result = command.output()?;
    let stdout = String::from_utf8_lossy(&result.stdout);
    if result.status.code().is_none_or(|code| code == 1) {
        return Err(format!(
            "cfn-lint failed to run: {}",
            String::from_utf8_lossy(&result.stderr)
        )
        .into());
    }
    for (name, file, path) in files {
        let prefix = format!("{}:", path.display());
        // parseable: PATH:LINE:COL:END_LINE:END_COL:RULE:MESSAGE
        let findings: Vec<(String, String)> = stdout
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .filter_map(|rest| {
                let parts: Vec<&str> = rest.splitn(6, ':').collect();
                (parts.len() == 6).then(|| {
                    (
                        parts[4].to_string(),
                        format!("{} {file}:{} {}", parts[4], parts[0], parts[5]),
                    )
                })
            })
            .collect();
        let errors = findings.iter().any(|(rule, _)| rule.starts_with('E'));
        let warnings = findings.iter().any(|(rule, _)| rule.starts_with('W'));
        let text = findings
            .iter()
            .map(|(_, text)| text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        if errors || (args.strict && warnings) {
            report.fail(format!("{name}: cfn-lint"), text);
        } else if warnings {
            report.pass(format!(
                "{name} rendered and passed cfn-lint, with warnings"
            ));
            for line in text.lines() {
                println!("     {line}");
            }
        } else {
            report.pass(format!("{name} rendered and passed cfn-lint"));
        }
    }
    Ok(())
}

#[derive(Default)]
struct Report {
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Report {
    fn pass(&mut self, what: String) {
        self.passed += 1;
        println!("PASS {what}");
    }

    fn fail(&mut self, what: String, why: String) {
        self.failed += 1;
        println!("FAIL {what}");
        for line in why.lines() {
            println!("     {line}");
        }
    }

    fn skip(&mut self, what: String, why: String) {
        self.skipped += 1;
        println!("SKIP {what}: {why}");
    }

    fn finish(self) -> bool {
        println!(
            "template test: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        );
        self.failed == 0
    }
}

fn load(path: &Path, name: Option<&str>) -> Result<Workbench, Failure> {
    let bundle = if path.is_dir() {
        let mut files = Vec::new();
        collect(path, path, &mut files)?;
        Bundle::from_files(files)?
    } else {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Bundle::unpack(&bytes)?
    };
    let name = match name {
        Some(name) => name.to_string(),
        None => default_name(path),
    };
    Ok(Workbench::new(bundle, name)?)
}

/// `service-templates/web/v1` → `web`; `web.tar.gz` → `web`.
fn default_name(path: &Path) -> String {
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut parts = absolute.iter().rev().filter_map(|p| p.to_str());
    let last = parts.next().unwrap_or("template");
    let is_version =
        last.starts_with('v') && last[1..].chars().all(|c| c.is_ascii_digit()) && last.len() > 1;
    let name = if is_version {
        parts.next().unwrap_or(last)
    } else {
        last
    };
    name.trim_end_matches(".tar.gz")
        .trim_end_matches(".tgz")
        .to_string()
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, Vec<u8>)>) -> Result<(), Failure> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_symlink() {
            return Err(format!("{}: a bundle may not hold links", path.display()).into());
        } else if kind.is_dir() {
            collect(root, &path, files)?;
        } else {
            let relative = path
                .strip_prefix(root)?
                .to_string_lossy()
                .replace('\\', "/");
            files.push((relative, std::fs::read(&path)?));
        }
    }
    Ok(())
}

fn read_spec(path: &Path) -> Result<Spec, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Spec::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?)
}

fn read_outputs(path: Option<&Path>) -> Result<KnownOutputs, Failure> {
    let Some(path) = path else {
        return Ok(KnownOutputs::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(
        paved_core::domain::yaml::from_str(&text)
            .map_err(|e| format!("{}: {e}", path.display()))?,
    )
}

fn discover_specs(bundle: &Path, kind: BundleKind) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let start = std::fs::canonicalize(bundle).unwrap_or_else(|_| bundle.to_path_buf());
    for dir in start.ancestors().take(4) {
        for folder in ["spec", "specs"] {
            let Ok(entries) = std::fs::read_dir(dir.join(folder)) else {
                continue;
            };
            let mut paths: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for path in paths {
                let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if is_yaml && text.contains(&format!("proton: {}", kind.spec_kind())) {
                    found.push(path);
                }
            }
        }
        if !found.is_empty() {
            break;
        }
    }
    found
}

fn find_cfn_lint(given: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("cfn-lint"))
        .find(|candidate| candidate.is_file());
    let local = PathBuf::from(".venv/bin/cfn-lint");
    on_path
        .or_else(|| local.is_file().then_some(local))
        .ok_or_else(|| "cfn-lint not found: install it (`make setup` puts it in .venv), pass --cfn-lint, or --no-lint".into())
}
