//! The target of a deployment, loaded: what the kernel reads, writes and announces of it.

use super::Deployer;
use crate::app::{Error, Result};
use crate::domain::component::Component;
use crate::domain::environment::{
    Deployed, Deployment, DeploymentStatus, Environment, Target, status_name,
};
use crate::domain::service::{Service, ServiceInstance};
use crate::domain::template::TemplateKind;
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
