//! Rendering a target's template for a deployment: the namespaces Proton gives environments,
//! instances, pipelines and components, filled from the records.

use serde_json::{Map, Value as Json};

use super::Deployer;
use super::target::Loaded;
use crate::app::{Error, Result};
use crate::domain::bundle::{self, Bundle, BundleLayout};
use crate::domain::component::{Component, service_inputs};
use crate::domain::environment::{Deployed, DeployedState, Deployment};
use crate::domain::render::{self, Outputs, PipelineInstance, ServiceNames};
use crate::domain::service::Service;
use crate::domain::template::{TemplateKind, TemplateVersion};

impl Loaded {
    /// Renders the target's template for its deployment's target state.
    pub async fn render(&self, d: &Deployer, deployment: &Deployment) -> Result<String> {
        let state = &deployment.target_state;
        match self {
            Self::Environment(environment) => {
                let version = d
                    .version_of(
                        TemplateKind::Environment,
                        &state.template_name,
                        state.version(),
                    )
                    .await?;
                let context = render::environment_context(environment.name.as_str(), &state.inputs);
                d.render_part(
                    &version,
                    BundleLayout::Environment,
                    "infrastructure",
                    context,
                )
                .await
            }
            Self::Instance { service, instance } => {
                let version = d
                    .version_of(TemplateKind::Service, &state.template_name, state.version())
                    .await?;
                let environment = d
                    .store
                    .environment(&instance.environment)
                    .await?
                    .ok_or_else(|| {
                        Error::validation(format!(
                            "environment {} does not exist",
                            instance.environment
                        ))
                    })?;
                let component = match &instance.component {
                    Some(name) => d.store.component(name).await?,
                    None => None,
                };
                let component_outputs = component.as_ref().map(|c| outputs_of(&c.deployed));
                let context = render::instance_context(
                    &service_names(service),
                    instance.name.as_str(),
                    &state.inputs,
                    instance.environment.as_str(),
                    &outputs_of(&environment.deployed),
                    component
                        .as_ref()
                        .zip(component_outputs.as_ref())
                        .map(|(c, outputs)| (c.name.as_str(), outputs)),
                );
                let layout = BundleLayout::Service {
                    pipeline: version.has_pipeline,
                };
                d.render_part(&version, layout, "instance_infrastructure", context)
                    .await
            }
            Self::Pipeline { service, .. } => {
                let version = d
                    .version_of(TemplateKind::Service, &state.template_name, state.version())
                    .await?;
                let mut instances = Vec::new();
                for instance in d.store.instances(&service.name).await? {
                    let environment = d.store.environment(&instance.environment).await?;
                    instances.push(PipelineInstance {
                        name: instance.name.to_string(),
                        inputs: instance.deployed.state.inputs.clone(),
                        outputs: outputs_of(&instance.deployed),
                        environment_name: instance.environment.to_string(),
                        environment_account_id: d.arns.account_id.clone(),
                        environment_outputs: environment
                            .map_or_else(Outputs::none, |e| outputs_of(&e.deployed)),
                    });
                }
                let context =
                    render::pipeline_context(&service_names(service), &state.inputs, &instances);
                let layout = BundleLayout::Service { pipeline: true };
                let rendered = d
                    .render_part(&version, layout, "pipeline_infrastructure", context)
                    .await?;
                match &d.proton_endpoint {
                    Some(endpoint) => {
                        crate::domain::pipeline::with_proton_endpoint(&rendered, endpoint)
                            .map_err(Error::Validation)
                    }
                    None => Ok(rendered),
                }
            }
            Self::Component(component) => render_component(d, component, state).await,
        }
    }
}

impl Deployer {
    /// Renders the one template file of a folder of a version's kept bundle.
    pub async fn render_part(
        &self,
        version: &TemplateVersion,
        layout: BundleLayout,
        folder: &str,
        context: minijinja::Value,
    ) -> Result<String> {
        let archive = self.bundles.read_kept(&version.bundle_key).await?;
        let bundle =
            Bundle::unpack(&archive).map_err(|e| Error::validation(format!("kept bundle: {e}")))?;
        let checked = bundle::check(&bundle, layout).map_err(Error::Validation)?;
        let files: Vec<&String> = checked
            .parts
            .iter()
            .filter(|p| p.folder == folder)
            .flat_map(|p| &p.files)
            .collect();
        let [file] = files.as_slice() else {
            return Err(Error::validation(format!(
                "{folder}/manifest.yaml lists {} template files; a CloudFormation stack has exactly one",
                files.len()
            )));
        };
        let source = bundle
            .text(file)
            .map_err(Error::Validation)?
            .unwrap_or_default();
        render::render(file, source, context).map_err(|e| Error::validation(e.to_string()))
    }
}

/// Renders a component's own template file with the component namespace: its environment's
/// outputs and, when attached, its service and instance (inputs from its service spec).
async fn render_component(
    d: &Deployer,
    component: &Component,
    state: &DeployedState,
) -> Result<String> {
    let definition = state.component.as_ref().ok_or_else(|| {
        Error::validation(format!("component {} has no definition", component.name))
    })?;
    let environment = d
        .store
        .environment(&component.environment)
        .await?
        .ok_or_else(|| {
            Error::validation(format!(
                "environment {} does not exist",
                component.environment
            ))
        })?;
    let environment_outputs = outputs_of(&environment.deployed);
    let attached = match (&definition.service, &definition.instance) {
        (Some(service_name), Some(instance_name)) => {
            let service = d.store.service(service_name).await?.ok_or_else(|| {
                Error::validation(format!("service {service_name} does not exist"))
            })?;
            let instance = d
                .store
                .instance(service_name, instance_name)
                .await?
                .ok_or_else(|| {
                    Error::validation(format!(
                        "service instance {instance_name} of service {service_name} does not exist"
                    ))
                })?;
            let spec = (!state.spec.is_empty()).then_some(state.spec.as_str());
            let inputs = service_inputs(spec, instance_name, &instance.deployed.state.inputs)?;
            Some((service_names(&service), instance_name.to_string(), inputs))
        }
        _ => None,
    };
    let context = render::component_context(
        component.name.as_str(),
        attached
            .as_ref()
            .map(|(names, instance, inputs)| (names, instance.as_str(), inputs)),
        component.environment.as_str(),
        &environment_outputs,
    );
    let file = crate::domain::bundle::manifest_files(&definition.manifest, "manifest")
        .map_err(Error::Validation)?
        .into_iter()
        .next()
        .unwrap_or_else(|| "cloudformation.yaml".into());
    render::render(&file, &definition.template_file, context)
        .map_err(|e| Error::validation(e.to_string()))
}

pub fn service_names(service: &Service) -> ServiceNames {
    ServiceNames {
        name: service.name.to_string(),
        repository_id: service.repository.id.clone(),
        repository_connection_arn: service.repository.connection_arn.clone(),
        branch_name: service.repository.branch.clone(),
    }
}

pub fn outputs_of(deployed: &Deployed) -> Outputs {
    let map: Map<String, Json> = deployed
        .outputs
        .iter()
        .map(|o| (o.key.clone(), Json::String(o.value.clone())))
        .collect();
    Outputs::Known(map)
}
