//! Template authoring without AWS: load a bundle, resolve a spec against its schema, render
//! each template file with Proton's namespaces. `paved template` is built on this.

use serde_json::{Map, Value as Json};

use crate::domain::bundle::{self, Bundle, BundleLayout, CheckedBundle};
pub use crate::domain::render::declared_outputs;
use crate::domain::render::{self, Outputs, PipelineInstance, RenderError, ServiceNames};
use crate::domain::schema::InputRole;
use crate::domain::spec::{Inputs, Spec, resolve_inputs};

/// What a bundle is for, told from its layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    Environment,
    Service,
    /// A directly defined component: `manifest.yaml` and its template file at the root.
    Component,
}

impl BundleKind {
    pub fn detect(bundle: &Bundle) -> Result<Self, String> {
        if bundle.has_folder("instance_infrastructure") {
            Ok(Self::Service)
        } else if bundle.has_folder("infrastructure") || bundle.file("schema/schema.yaml").is_some()
        {
            Ok(Self::Environment)
        } else if bundle.file("manifest.yaml").is_some() {
            Ok(Self::Component)
        } else {
            Err("not a template bundle: found none of schema/schema.yaml, infrastructure/, instance_infrastructure/, manifest.yaml".into())
        }
    }

    pub fn spec_kind(self) -> &'static str {
        match self {
            Self::Environment => "EnvironmentSpec",
            Self::Service | Self::Component => "ServiceSpec",
        }
    }
}

/// A loaded bundle with its layout checked (components have no schema to check).
pub struct Workbench {
    pub kind: BundleKind,
    pub bundle: Bundle,
    pub checked: Option<CheckedBundle>,
    /// The resource name used where a template reads its own name (`environment.name`, ...).
    pub name: String,
}

/// Which templates of a bundle to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Infrastructure,
    Instance,
    Pipeline,
}

/// One template file to render, with the namespace it is rendered with.
#[derive(Debug, Clone)]
pub struct Job {
    pub target: String,
    pub file: String,
    pub source: String,
    pub context: minijinja::Value,
}

impl Job {
    pub fn render(&self) -> Result<Rendered, String> {
        let text = render::render(&self.file, &self.source, self.context.clone())
            .map_err(|e: RenderError| e.to_string())?;
        Ok(Rendered {
            target: self.target.clone(),
            file: self.file.clone(),
            text,
        })
    }
}

/// One rendered template file.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// What it was rendered for: `environment dev`, `instance web-prod`, `pipeline`.
    pub target: String,
    pub file: String,
    pub text: String,
}

/// Outputs known to the author: the environment's, an attached component's, and each instance's.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownOutputs {
    pub environment: Option<Map<String, Json>>,
    pub component: Option<Map<String, Json>>,
    #[serde(default)]
    pub instances: Map<String, Json>,
}

impl Workbench {
    pub fn new(bundle: Bundle, name: impl Into<String>) -> Result<Self, String> {
        let kind = BundleKind::detect(&bundle)?;
        let checked = match kind {
            BundleKind::Environment if !bundle.has_folder("infrastructure") => Some(bundle::check(
                &bundle,
                BundleLayout::CustomerManagedEnvironment,
            )?),
            BundleKind::Environment => Some(bundle::check(&bundle, BundleLayout::Environment)?),
            BundleKind::Service => {
                let pipeline = bundle.has_folder("pipeline_infrastructure");
                Some(bundle::check(&bundle, BundleLayout::Service { pipeline })?)
            }
            BundleKind::Component => None,
        };
        Ok(Self {
            kind,
            bundle,
            checked,
            name: name.into(),
        })
    }

    fn files(&self, folder: &str) -> Vec<String> {
        match &self.checked {
            Some(checked) => checked
                .parts
                .iter()
                .filter(|p| p.folder == folder)
                .flat_map(|p| p.files.clone())
                .collect(),
            None => vec!["cloudformation.yaml".to_string()],
        }
    }

    fn source(&self, file: &str) -> Result<&str, String> {
        self.bundle
            .text(file)?
            .ok_or_else(|| format!("{file} is missing from the bundle"))
    }

    fn input_schema(&self, role: InputRole) -> Option<&crate::domain::schema::PropertySchema> {
        self.checked.as_ref().and_then(|c| c.schema.input(role))
    }

    pub fn has_pipeline(&self) -> bool {
        self.checked
            .as_ref()
            .is_some_and(CheckedBundle::has_pipeline)
    }

    /// Renders the chosen part for a spec. `instance` picks one instance (all if `None`).
    pub fn render(
        &self,
        spec: &Spec,
        part: Part,
        instance: Option<&str>,
        outputs: &KnownOutputs,
    ) -> Result<Vec<Rendered>, String> {
        self.jobs(spec, part, instance, outputs)?
            .iter()
            .map(Job::render)
            .collect()
    }

    /// The template files the chosen part renders, each with its namespace. A pipeline's
    /// namespace holds its instances' outputs, so their templates are rendered on the way.
    pub fn jobs(
        &self,
        spec: &Spec,
        part: Part,
        instance: Option<&str>,
        outputs: &KnownOutputs,
    ) -> Result<Vec<Job>, String> {
        match (self.kind, spec) {
            (BundleKind::Environment, Spec::Environment { inputs }) => {
                let inputs =
                    resolve_inputs(self.input_schema(InputRole::Environment), inputs, "spec")?;
                let context = render::environment_context(&self.name, &inputs);
                self.folder_jobs(
                    "infrastructure",
                    &format!("environment {}", self.name),
                    context,
                )
            }
            (
                BundleKind::Service,
                Spec::Service {
                    pipeline,
                    instances,
                },
            ) => {
                let service = ServiceNames {
                    name: self.name.clone(),
                    repository_id: Some("my-org/my-repo".into()),
                    repository_connection_arn: Some(
                        "arn:aws:codestar-connections:us-east-1:123456789012:connection/example"
                            .into(),
                    ),
                    branch_name: Some("main".into()),
                };
                let environment_outputs = known_or_examples(&outputs.environment);
                let component = outputs.component.clone().map(Outputs::Known);
                let mut resolved = Vec::new();
                for (index, item) in instances.iter().enumerate() {
                    let at = format!("instances[{index}] ({}).spec", item.name);
                    let inputs =
                        resolve_inputs(self.input_schema(InputRole::Service), &item.inputs, &at)?;
                    resolved.push((item, inputs));
                }
                if let Some(wanted) = instance
                    && !instances.iter().any(|i| i.name.as_str() == wanted)
                {
                    let names: Vec<&str> = instances.iter().map(|i| i.name.as_str()).collect();
                    return Err(format!(
                        "the spec has no instance {wanted:?} (it has: {})",
                        names.join(", ")
                    ));
                }
                let mut jobs = Vec::new();
                let mut pipeline_instances = Vec::new();
                for (item, inputs) in &resolved {
                    let context = render::instance_context(
                        &service,
                        item.name.as_str(),
                        inputs,
                        item.environment.as_str(),
                        &environment_outputs,
                        component.as_ref().map(|c| ("component", c)),
                    );
                    let files = self.folder_jobs(
                        "instance_infrastructure",
                        &format!("instance {}", item.name),
                        context,
                    )?;
                    let instance_outputs = match outputs.instances.get(item.name.as_str()) {
                        Some(Json::Object(known)) => known.clone(),
                        _ if part == Part::Pipeline => {
                            let mut declared = Map::new();
                            for job in &files {
                                declared.extend(declared_outputs(&job.render()?.text));
                            }
                            declared
                        }
                        _ => Map::new(),
                    };
                    pipeline_instances.push(PipelineInstance {
                        name: item.name.to_string(),
                        inputs: inputs.clone(),
                        outputs: Outputs::Known(instance_outputs),
                        environment_name: item.environment.to_string(),
                        environment_account_id: "123456789012".into(),
                        environment_outputs: environment_outputs.clone(),
                    });
                    if part == Part::Instance && instance.is_none_or(|w| w == item.name.as_str()) {
                        jobs.extend(files);
                    }
                }
                if part == Part::Pipeline {
                    if !self.has_pipeline() {
                        return Err("this service template has no pipeline_infrastructure/".into());
                    }
                    let inputs = resolve_inputs(
                        self.input_schema(InputRole::Pipeline),
                        pipeline.as_ref().unwrap_or(&Inputs::new()),
                        "pipeline",
                    )?;
                    let context = render::pipeline_context(&service, &inputs, &pipeline_instances);
                    jobs.extend(self.folder_jobs(
                        "pipeline_infrastructure",
                        "pipeline",
                        context,
                    )?);
                }
                Ok(jobs)
            }
            (BundleKind::Component, Spec::Service { instances, .. }) => {
                let environment_outputs = known_or_examples(&outputs.environment);
                let service = ServiceNames {
                    name: "service".into(),
                    ..Default::default()
                };
                let (instance_name, environment, inputs) = match instances.first() {
                    Some(i) => (
                        i.name.to_string(),
                        i.environment.to_string(),
                        i.inputs.clone(),
                    ),
                    None => ("instance".into(), "environment".into(), Inputs::new()),
                };
                let context = render::component_context(
                    &self.name,
                    Some((&service, &instance_name, &inputs)),
                    &environment,
                    &environment_outputs,
                );
                self.folder_jobs("", &format!("component {}", self.name), context)
            }
            (kind, _) => Err(format!(
                "this {kind:?} bundle needs a spec with `proton: {}`",
                kind.spec_kind()
            )),
        }
    }

    fn folder_jobs(
        &self,
        folder: &str,
        target: &str,
        context: minijinja::Value,
    ) -> Result<Vec<Job>, String> {
        self.files(folder)
            .into_iter()
            .map(|file| {
                let source = self.source(&file)?.to_string();
                Ok(Job {
                    target: target.to_string(),
                    file,
                    source,
                    context: context.clone(),
                })
            })
            .collect()
    }
}

fn known_or_examples(known: &Option<Map<String, Json>>) -> Outputs {
    match known {
        Some(map) => Outputs::Known(map.clone()),
        None => Outputs::Examples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_outputs_keep_literals_and_give_examples_for_computed_values() {
        let rendered = "Resources: {}\nOutputs:\n  Runtime:\n    Value: nodejs12.x\n  Port:\n    Value: 80\n  VpcId:\n    Value: !Ref VPC\n  RoleArn:\n    Value: !GetAtt Role.Arn\n";
        let outputs = declared_outputs(rendered);
        assert_eq!(outputs["Runtime"], "nodejs12.x");
        assert_eq!(outputs["Port"], "80");
        assert!(outputs["VpcId"].as_str().unwrap().starts_with("vpc-"));
        assert!(
            outputs["RoleArn"]
                .as_str()
                .unwrap()
                .starts_with("arn:aws:iam::")
        );
    }
}
