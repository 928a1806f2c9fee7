//! The target of a deployment, loaded: everything the kernel knows per kind of target (what it
//! reads, renders, writes and announces of it). A new kind of target is an arm here.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use super::Deployer;
use crate::app::{Error, Result};
use crate::domain::bundle::{self, Bundle, BundleLayout};
use crate::domain::component::{Component, service_inputs};
use crate::domain::environment::{
    Deployed, DeployedState, Deployment, DeploymentStatus, Environment, Target, status_name,
};
use crate::domain::names::Tags;
use crate::domain::provisioning::stack_tags;
use crate::domain::render::{self, Outputs, PipelineInstance, ServiceNames};
use crate::domain::service::{Service, ServiceInstance};
use crate::domain::template::{TemplateKind, TemplateVersion};
use crate::ports::{
    ComponentWrite, DeploymentChange, DeploymentWrite, EnvironmentWrite, InstanceWrite,
    ServiceWrite, StatusChange,
};

/// A deployment that ended, as the kernel recorded it. The owner of the target decides what
/// follows (a service's next step, an instance redeploy after its component's outputs changed).
#[derive(Debug, Clone)]
pub struct Ended {
    pub deployment: Deployment,
    /// The target before the end was recorded; `None` if it had been recorded already (a
    /// retried step), so that what follows can still run.
    pub before: Option<Loaded>,
    /// The target as recorded now; `None` if the deployment removed it.
    pub after: Option<Loaded>,
}

#[derive(Debug, Clone)]
pub enum Loaded {
    Environment(Environment),
    Instance {
        service: Service,
        instance: ServiceInstance,
    },
    Pipeline {
        service: Service,
        pipeline: Deployed,
    },
    Component(Component),
}

impl Loaded {
    /// Loads a deployment's target; `None` if it no longer exists.
    pub async fn load(d: &Deployer, deployment: &Deployment) -> Result<Option<Self>> {
        Ok(match &deployment.target {
            Target::Environment => d
                .store
                .environment(&deployment.environment_name)
                .await?
                .map(Self::Environment),
            Target::ServiceInstance { service, instance } => {
                match (
                    d.store.service(service).await?,
                    d.store.instance(service, instance).await?,
                ) {
                    (Some(service), Some(instance)) => Some(Self::Instance { service, instance }),
                    _ => None,
                }
            }
            Target::ServicePipeline { service } => {
                d.store.service(service).await?.and_then(|service| {
                    let pipeline = service.pipeline.clone()?;
                    Some(Self::Pipeline { service, pipeline })
                })
            }
            Target::Component { component } => {
                d.store.component(component).await?.map(Self::Component)
            }
        })
    }

    pub fn deployed(&self) -> &Deployed {
        match self {
            Self::Environment(environment) => &environment.deployed,
            Self::Instance { instance, .. } => &instance.deployed,
            Self::Pipeline { pipeline, .. } => pipeline,
            Self::Component(component) => &component.deployed,
        }
    }

    pub fn deployed_mut(&mut self) -> &mut Deployed {
        match self {
            Self::Environment(environment) => &mut environment.deployed,
            Self::Instance { instance, .. } => &mut instance.deployed,
            Self::Pipeline { pipeline, .. } => pipeline,
            Self::Component(component) => &mut component.deployed,
        }
    }

    /// The target as a message names it: `environment dev`, `the pipeline of service web`.
    pub fn noun(&self) -> String {
        match self {
            Self::Environment(environment) => format!("environment {}", environment.name),
            Self::Instance { instance, .. } => format!(
                "service instance {} of service {}",
                instance.name, instance.service
            ),
            Self::Pipeline { service, .. } => format!("the pipeline of service {}", service.name),
            Self::Component(component) => format!("component {}", component.name),
        }
    }

    /// The kind of catalog template the target runs on; `None` for a component, which
    /// brings its own.
    pub fn template_kind(&self) -> Option<TemplateKind> {
        match self {
            Self::Environment(_) => Some(TemplateKind::Environment),
            Self::Component(_) => None,
            _ => Some(TemplateKind::Service),
        }
    }

    /// The write that replaces the stored target with this one, if it still is as `original`.
    pub fn replace(&self, original: &Loaded) -> DeploymentChange {
        match (self, original) {
            (Self::Environment(next), Self::Environment(before)) => DeploymentChange {
                environments: vec![EnvironmentWrite::Replace {
                    environment: Environment {
                        rev: before.rev + 1,
                        ..next.clone()
                    },
                    expected_rev: before.rev,
                }],
                ..Default::default()
            },
            (
                Self::Instance { instance, .. },
                Self::Instance {
                    instance: before, ..
                },
            ) => DeploymentChange {
                instances: vec![InstanceWrite::Replace {
                    instance: ServiceInstance {
                        rev: before.rev + 1,
                        ..instance.clone()
                    },
                    expected_rev: before.rev,
                }],
                ..Default::default()
            },
            (
                Self::Pipeline { service, pipeline },
                Self::Pipeline {
                    service: before, ..
                },
            ) => DeploymentChange {
                services: vec![ServiceWrite::Replace {
                    service: Service {
                        pipeline: Some(pipeline.clone()),
                        rev: before.rev + 1,
                        ..service.clone()
                    },
                    expected_rev: before.rev,
                }],
                ..Default::default()
            },
            (Self::Component(next), Self::Component(before)) => DeploymentChange {
                components: vec![ComponentWrite::Replace {
                    component: Component {
                        rev: before.rev + 1,
                        ..next.clone()
                    },
                    expected_rev: before.rev,
                }],
                ..Default::default()
            },
            _ => DeploymentChange::default(),
        }
    }

    /// The tags the target's stack carries (`domain::provisioning::stack_tags`): paved's
    /// `proton:*` tags naming the account, template and the resources the target belongs to,
    /// then the customer's (an instance's own over its service's). The second value names the
    /// customer tags left off for want of room.
    pub fn stack_tags(&self, d: &Deployer) -> (BTreeMap<String, String>, Vec<String>) {
        let a = &d.arns;
        let instance_arn = |service: &str, name: &str| {
            a.proton(&format!("service/{service}/service-instance/{name}"))
        };
        let template =
            |kind: TemplateKind, name: &str| a.proton(&format!("{}/{name}", kind.arn_resource()));
        let mut managed: Vec<(&str, String)> = vec![("account", a.account_id.clone())];
        let customer: Vec<&Tags> = match self {
            Self::Environment(e) => {
                managed.push((
                    "template",
                    template(
                        TemplateKind::Environment,
                        e.deployed.state.template_name.as_str(),
                    ),
                ));
                managed.push(("environment", a.environment(e.name.as_str())));
                vec![&e.tags]
            }
            Self::Instance { service, instance } => {
                managed.push((
                    "template",
                    template(
                        TemplateKind::Service,
                        instance.deployed.state.template_name.as_str(),
                    ),
                ));
                managed.push(("environment", a.environment(instance.environment.as_str())));
                managed.push(("service", a.proton(&format!("service/{}", service.name))));
                managed.push((
                    "service-instance",
                    instance_arn(service.name.as_str(), instance.name.as_str()),
                ));
                vec![&instance.tags, &service.tags]
            }
            Self::Pipeline { service, pipeline } => {
                managed.push((
                    "template",
                    template(TemplateKind::Service, pipeline.state.template_name.as_str()),
                ));
                managed.push(("service", a.proton(&format!("service/{}", service.name))));
                vec![&service.tags]
            }
            Self::Component(c) => {
                managed.push(("environment", a.environment(c.environment.as_str())));
                if let Some((service, instance)) = c.attachment() {
                    managed.push(("service", a.proton(&format!("service/{service}"))));
                    managed.push((
                        "service-instance",
                        instance_arn(service.as_str(), instance.as_str()),
                    ));
                }
                managed.push(("component", a.proton(&format!("component/{}", c.name))));
                vec![&c.tags]
            }
        };
        stack_tags(&managed, &customer)
    }

    /// The status change to announce, Proton style.
    pub fn status_change(&self, d: &Deployer, previous: Option<DeploymentStatus>) -> StatusChange {
        let (resource, name, arn) = match self {
            Self::Environment(e) => (
                "Environment",
                e.name.to_string(),
                d.arns.environment(e.name.as_str()),
            ),
            Self::Instance { instance, .. } => (
                "Service Instance",
                instance.name.to_string(),
                d.arns.proton(&format!(
                    "service/{}/service-instance/{}",
                    instance.service, instance.name
                )),
            ),
            Self::Pipeline { service, .. } => (
                "Service Pipeline",
                service.name.to_string(),
                d.arns.proton(&format!("service/{}/pipeline", service.name)),
            ),
            Self::Component(component) => (
                "Component",
                component.name.to_string(),
                d.arns.proton(&format!("component/{}", component.name)),
            ),
        };
        StatusChange {
            resource,
            name,
            arn,
            status: status_name(self.deployed().deployment_status),
            previous_status: previous.map(status_name),
            initiated_by: crate::app::deploy::audit::current(),
        }
    }

    /// The write that removes the target once its deletion succeeded. A pipeline's record stays
    /// on its service, DELETE_COMPLETE, until the service goes; a component is detached from its
    /// instance.
    pub async fn removal(&self, d: &Deployer) -> Result<DeploymentChange> {
        Ok(match self {
            Self::Environment(environment) => DeploymentChange {
                environments: vec![EnvironmentWrite::Delete {
                    name: environment.name.clone(),
                    expected_rev: environment.rev,
                }],
                ..Default::default()
            },
            Self::Instance { instance, .. } => DeploymentChange {
                instances: vec![InstanceWrite::Delete {
                    service: instance.service.clone(),
                    name: instance.name.clone(),
                    expected_rev: instance.rev,
                }],
                ..Default::default()
            },
            Self::Pipeline { .. } => {
                let mut gone = self.clone();
                gone.deployed_mut().deployment_status = DeploymentStatus::DeleteComplete;
                gone.replace(self)
            }
            Self::Component(component) => {
                let mut change = DeploymentChange {
                    components: vec![ComponentWrite::Delete {
                        name: component.name.clone(),
                        expected_rev: component.rev,
                    }],
                    ..Default::default()
                };
                if let Some((service, instance)) = component.attachment()
                    && let Some(instance) = d.store.instance(service, instance).await?
                    && instance.component.as_ref() == Some(&component.name)
                {
                    change.instances.push(InstanceWrite::Replace {
                        instance: ServiceInstance {
                            component: None,
                            rev: instance.rev + 1,
                            ..instance.clone()
                        },
                        expected_rev: instance.rev,
                    });
                }
                change
            }
        })
    }
}

/// Asks the running deployment of a target to stop: its state machine acts on the request (see
/// the README on cancellation). Asking again while it stops is not an error.
pub async fn request_cancel(d: &Deployer, target: Loaded, what: &str) -> Result<Loaded> {
    let status = target.deployed().deployment_status;
    if status == DeploymentStatus::Cancelling {
        return Ok(target);
    }
    if status != DeploymentStatus::InProgress {
        return Err(Error::validation(format!(
            "{what} has no deployment in progress to cancel (it is {})",
            status_name(status)
        )));
    }
    let id = target
        .deployed()
        .last_attempted_deployment_id
        .clone()
        .unwrap_or_default();
    let running = d
        .store
        .deployment(&id)
        .await?
        .ok_or_else(|| Error::not_found(format!("deployment {id} does not exist")))?;
    let mut cancelled = running.clone();
    cancelled.cancel_requested = true;
    cancelled.status = DeploymentStatus::Cancelling;
    cancelled.last_modified_at = crate::domain::names::Timestamp::now();
    cancelled.rev = running.rev + 1;
    let mut next = target.clone();
    next.deployed_mut().deployment_status = DeploymentStatus::Cancelling;
    let mut change = next.replace(&target);
    change.deployments.push(DeploymentWrite::Replace {
        deployment: cancelled,
        expected_rev: running.rev,
    });
    d.store.change(change).await?;
    d.announce(&next, Some(status)).await;
    Ok(next)
}

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
