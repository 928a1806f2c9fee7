//! Services: CreateService deploys one instance per spec entry into its environment, then the
//! service's pipeline once every instance is deployed (the pipeline reads their outputs).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::environments::Deployer;
use super::targets::Loaded;
use crate::domain::bundle::BundleLayout;
use crate::domain::environment::{
    Deployed, DeployedState, Deployment, DeploymentStatus, DeploymentType, Operation, Target,
    target_version,
};
use crate::domain::names::{Description, ResourceName, Timestamp, VersionPart};
use crate::domain::schema::InputRole;
use crate::domain::service::{
    EnvironmentFacts, Repository, Service, ServiceInstance, ServiceStatus, TemplateOffer,
    check_new_service,
};
use crate::domain::spec::{Inputs, Spec, keep_current_values, resolve_inputs};
use crate::domain::template::{TemplateKind, VersionStatus};
use crate::domain::{Error, Result};
use crate::ports::{
    DeploymentChange, DeploymentWrite, InstanceWrite, Page, PageRequest, ServiceWrite, StoreError,
    VersionUsage, Workflow,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceUpdate {
    pub name: ResourceName,
    pub service_name: ResourceName,
    pub deployment_type: DeploymentType,
    pub spec: Option<String>,
    pub template_major_version: Option<VersionPart>,
    pub template_minor_version: Option<VersionPart>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewService {
    pub name: ResourceName,
    pub template_name: ResourceName,
    pub template_major_version: VersionPart,
    pub template_minor_version: Option<VersionPart>,
    pub spec: String,
    pub description: Option<Description>,
    pub repository_connection_arn: Option<String>,
    pub repository_id: Option<String>,
    pub branch_name: Option<String>,
}

/// CloudFormation stack names are at most 128 characters: long names keep a readable prefix
/// and a hash of the whole.
pub fn stack_name(parts: &[&str]) -> String {
    let name = format!("paved-{}", parts.join("-"));
    if name.len() <= 128 {
        return name;
    }
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{}-{hash:016x}", &name[..111])
}

fn fresh(
    state: DeployedState,
    stack_name: String,
    role_arn: String,
    id: Option<String>,
    now: Timestamp,
) -> Deployed {
    Deployed {
        state,
        stack_name,
        role_arn,
        deployment_status: DeploymentStatus::InProgress,
        deployment_status_message: None,
        last_deployment_attempted_at: now,
        last_deployment_succeeded_at: now,
        last_attempted_deployment_id: id,
        last_succeeded_deployment_id: None,
        outputs: vec![],
        resources: vec![],
    }
}

fn deployment(
    id: &str,
    environment: &ResourceName,
    target: Target,
    state: DeployedState,
    created: Timestamp,
    now: Timestamp,
) -> Deployment {
    Deployment {
        id: id.to_string(),
        environment_name: environment.clone(),
        target,
        operation: Operation::Deploy,
        status: DeploymentStatus::InProgress,
        status_message: None,
        initial_state: None,
        target_state: state,
        target_created_at: created,
        created_at: now,
        last_modified_at: now,
        completed_at: None,
        cancel_requested: false,
        previous_succeeded_id: None,
        rev: 1,
    }
}

pub struct Services {
    d: Deployer,
}

impl Services {
    pub fn new(deployer: Deployer) -> Self {
        Self { d: deployer }
    }

    #[tracing::instrument(skip_all, fields(service = %new.name))]
    pub async fn create(&self, new: NewService) -> Result<Service> {
        let d = &self.d;
        let (template, number) = d
            .requested_version(
                TemplateKind::Service,
                &new.template_name,
                new.template_major_version.0,
                new.template_minor_version.map(|m| m.0),
            )
            .await?;
        let (major, minor) = (number.major, number.minor);
        let version = d
            .version_of(TemplateKind::Service, &new.template_name, number)
            .await?;
        if version.status != VersionStatus::Published {
            return Err(Error::validation(format!(
                "version {number} of service template {} is not published",
                new.template_name
            )));
        }
        let spec = Spec::parse(&new.spec).map_err(Error::Validation)?;
        let mut environments = BTreeMap::new();
        let mut records = BTreeMap::new();
        if let Spec::Service { instances, .. } = &spec {
            for instance in instances {
                if let Some(environment) = d.store.environment(&instance.environment).await? {
                    environments.insert(
                        instance.environment.clone(),
                        EnvironmentFacts {
                            template_name: environment.deployed.state.template_name.clone(),
                            major: environment.deployed.state.major,
                            deleting: environment.deployed.deployment_status
                                == DeploymentStatus::DeleteInProgress,
                        },
                    );
                    records.insert(instance.environment.clone(), environment);
                }
            }
        }
        let pipeline = version.has_pipeline && template.provisioning.is_none();
        let offer = TemplateOffer {
            name: &new.template_name,
            version: number.to_string(),
            compatible: &version.compatible_environment_templates,
            pipeline,
        };
        let repository = Repository {
            connection_arn: new.repository_connection_arn.clone(),
            id: new.repository_id.clone(),
            branch: new.branch_name.clone(),
        };
        let instances =
            check_new_service(&spec, &offer, &repository, &environments, d.instance_quota)?;
        if let Some(existing) = d.store.service(&new.name).await? {
            return if existing.template_name == new.template_name
                && (existing.major, existing.minor) == (major, minor)
                && existing.spec == new.spec
            {
                Ok(existing)
            } else {
                Err(Error::conflict(format!(
                    "service {} already exists",
                    new.name
                )))
            };
        }
        let pipeline_role = match (pipeline, &d.pipeline_role_arn) {
            (true, None) => {
                return Err(Error::validation(
                    "this service template has a pipeline, and paved has no pipeline role configured (PAVED_PIPELINE_ROLE_ARN)",
                ));
            }
            (_, role) => role.clone().unwrap_or_default(),
        };
        let schema = BundleLayout::Service {
            pipeline: version.has_pipeline,
        }
        .parse_schema(&version.schema)
        .map_err(Error::Validation)?;
        let state = |inputs: Inputs| DeployedState {
            template_name: new.template_name.clone(),
            major,
            minor,
            spec: new.spec.clone(),
            inputs,
        };

        let now = Timestamp::now();
        let pipeline_inputs = match &spec {
            Spec::Service {
                pipeline: Some(given),
                ..
            } if pipeline => {
                resolve_inputs(schema.input(InputRole::Pipeline), given, "spec.pipeline")
                    .map_err(Error::Validation)?
            }
            _ if pipeline => resolve_inputs(
                schema.input(InputRole::Pipeline),
                &Inputs::new(),
                "spec.pipeline",
            )
            .map_err(Error::Validation)?,
            _ => Inputs::new(),
        };
        let service = Service {
            name: new.name.clone(),
            description: new.description.clone(),
            template_name: new.template_name.clone(),
            major,
            minor,
            spec: new.spec.clone(),
            repository,
            status: ServiceStatus::CreateInProgress,
            status_message: None,
            created_at: now,
            last_modified_at: now,
            pipeline: pipeline.then(|| {
                fresh(
                    state(pipeline_inputs),
                    stack_name(&["pipeline", new.name.as_str()]),
                    pipeline_role,
                    None,
                    now,
                )
            }),
            rev: 1,
        };
        let mut change = DeploymentChange {
            services: vec![ServiceWrite::Create(service.clone())],
            ..Default::default()
        };
        let mut started = Vec::new();
        for (index, item) in instances.iter().enumerate() {
            let at = format!("instances[{index}] ({}).spec", item.name);
            let inputs = resolve_inputs(schema.input(InputRole::Service), &item.inputs, &at)
                .map_err(Error::Validation)?;
            let environment = &records[&item.environment];
            let id = uuid::Uuid::new_v4().to_string();
            let instance = ServiceInstance {
                service: new.name.clone(),
                name: item.name.clone(),
                environment: item.environment.clone(),
                created_at: now,
                deployed: fresh(
                    state(inputs),
                    stack_name(&["instance", new.name.as_str(), item.name.as_str()]),
                    environment.deployed.role_arn.clone(),
                    Some(id.clone()),
                    now,
                ),
                rev: 1,
            };
            let target = Target::ServiceInstance {
                service: new.name.clone(),
                instance: item.name.clone(),
            };
            let record = deployment(
                &id,
                &item.environment,
                target,
                instance.deployed.state.clone(),
                now,
                now,
            );
            // Rendered now, so a spec that breaks the template is refused before anything runs.
            Loaded::Instance {
                service: service.clone(),
                instance: instance.clone(),
            }
            .render(d, &record)
            .await?;
            change.instances.push(InstanceWrite::Create(instance));
            change.deployments.push(DeploymentWrite::Create(record));
            started.push(id);
        }
        let uses = instances.len() as i64 + i64::from(pipeline);
        if uses > 0 {
            change.usage.push(VersionUsage {
                version,
                delta: uses,
            });
        }
        match d.store.change(change).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed) => {
                return Err(Error::conflict(format!(
                    "service {} was created, or its template version changed, by another request",
                    new.name
                )));
            }
            Err(other) => return Err(other.into()),
        }
        for id in &started {
            d.launch(Workflow::Deploy, id).await;
        }
        if started.is_empty() {
            settle(d, &new.name).await?;
        }
        self.get(&new.name).await
    }

    /// Deletes a service: its instances' and its pipeline's stacks, then the service.
    #[tracing::instrument(skip_all, fields(service = %name))]
    pub async fn delete(&self, name: &ResourceName) -> Result<Service> {
        let d = &self.d;
        let service = self.get(name).await?;
        if service.status == ServiceStatus::DeleteInProgress {
            return Ok(service);
        }
        let instances = d.store.instances(name).await?;
        let busy = instances
            .iter()
            .map(|i| &i.deployed)
            .chain(service.pipeline.iter())
            .any(|deployed| {
                deployed.deployment_status.is_active()
                    && deployed.last_attempted_deployment_id.is_some()
            });
        if busy || service.status == ServiceStatus::CreateInProgress {
            return Err(Error::conflict(format!(
                "service {name} has deployments in progress; wait for them to end, then delete it"
            )));
        }
        let now = Timestamp::now();
        let mut change = DeploymentChange::default();
        let mut started = Vec::new();
        for instance in &instances {
            let id = uuid::Uuid::new_v4().to_string();
            let mut next = instance.clone();
            next.deployed
                .begin(&id, DeploymentStatus::DeleteInProgress, now);
            next.rev = instance.rev + 1;
            let target = Target::ServiceInstance {
                service: name.clone(),
                instance: instance.name.clone(),
            };
            let mut record = deployment(
                &id,
                &instance.environment,
                target,
                instance.deployed.state.clone(),
                instance.created_at,
                now,
            );
            record.operation = Operation::Delete;
            record.status = DeploymentStatus::DeleteInProgress;
            record.initial_state = Some(instance.deployed.state.clone());
            change.instances.push(InstanceWrite::Replace {
                instance: next,
                expected_rev: instance.rev,
            });
            change.deployments.push(DeploymentWrite::Create(record));
            started.push(id);
        }
        let mut next = service.clone();
        next.status = ServiceStatus::DeleteInProgress;
        next.status_message = None;
        next.last_modified_at = now;
        next.rev = service.rev + 1;
        if let Some(pipeline) = &service.pipeline {
            let mut deleting = pipeline.clone();
            if pipeline.last_attempted_deployment_id.is_some() {
                let id = uuid::Uuid::new_v4().to_string();
                let environment = instances
                    .first()
                    .map(|i| i.environment.clone())
                    .unwrap_or_else(|| name.clone());
                let mut record = deployment(
                    &id,
                    &environment,
                    Target::ServicePipeline {
                        service: name.clone(),
                    },
                    pipeline.state.clone(),
                    service.created_at,
                    now,
                );
                record.operation = Operation::Delete;
                record.status = DeploymentStatus::DeleteInProgress;
                record.initial_state = Some(pipeline.state.clone());
                deleting.begin(&id, DeploymentStatus::DeleteInProgress, now);
                change.deployments.push(DeploymentWrite::Create(record));
                started.push(id);
            } else {
                // Never deployed: nothing to remove.
                deleting.deployment_status = DeploymentStatus::DeleteComplete;
            }
            next.pipeline = Some(deleting);
        }
        change.services.push(ServiceWrite::Replace {
            service: next.clone(),
            expected_rev: service.rev,
        });
        d.store.change(change).await?;
        for id in &started {
            d.launch(Workflow::Delete, id).await;
        }
        if started.is_empty() {
            settle(d, name).await?;
        }
        Ok(next)
    }

    /// Redeploys one instance: its spec (`${Proton::CURRENT_VAL}` keeps a value) or another
    /// version of the service template, by Proton's `deploymentType` rules.
    #[tracing::instrument(skip_all, fields(service = %update.service_name, instance = %update.name))]
    pub async fn update_instance(&self, update: InstanceUpdate) -> Result<ServiceInstance> {
        let d = &self.d;
        let service = self.get(&update.service_name).await?;
        let current = self.instance(&update.service_name, &update.name).await?;
        if current.deployed.deployment_status.is_active()
            || service.status == ServiceStatus::DeleteInProgress
        {
            return Err(Error::conflict(format!(
                "service instance {} has a deployment in progress; wait for it or cancel it",
                update.name
            )));
        }
        if update.deployment_type == DeploymentType::None {
            return Ok(current);
        }
        let template = d
            .catalog
            .template(TemplateKind::Service, &service.template_name)
            .await?
            .ok_or_else(|| {
                Error::validation(format!(
                    "service template {} no longer exists",
                    service.template_name
                ))
            })?;
        let number = target_version(
            current.deployed.state.version(),
            update.deployment_type,
            update.template_major_version.map(|v| v.0),
            update.template_minor_version.map(|v| v.0),
            &template.versions,
        )
        .map_err(Error::Validation)?;
        let version = d
            .version_of(TemplateKind::Service, &service.template_name, number)
            .await?;
        let (spec_text, given) = match &update.spec {
            None => (
                current.deployed.state.spec.clone(),
                current.deployed.state.inputs.clone(),
            ),
            Some(text) => {
                let Spec::Service { instances, .. } =
                    Spec::parse(text).map_err(Error::Validation)?
                else {
                    return Err(Error::validation(
                        "spec: a service instance takes `proton: ServiceSpec`",
                    ));
                };
                let entry = instances
                    .into_iter()
                    .find(|i| i.name == update.name)
                    .ok_or_else(|| {
                        Error::validation(format!(
                            "spec: no entry in instances names {}",
                            update.name
                        ))
                    })?;
                let inputs =
                    keep_current_values(&entry.inputs, &current.deployed.state.inputs, "spec")
                        .map_err(Error::Validation)?;
                (text.clone(), inputs)
            }
        };
        let schema = BundleLayout::Service {
            pipeline: version.has_pipeline,
        }
        .parse_schema(&version.schema)
        .map_err(Error::Validation)?;
        let at = format!("instances ({}).spec", update.name);
        let inputs = resolve_inputs(schema.input(InputRole::Service), &given, &at)
            .map_err(Error::Validation)?;
        let state = DeployedState {
            template_name: service.template_name.clone(),
            major: number.major,
            minor: number.minor,
            spec: spec_text,
            inputs,
        };
        let now = Timestamp::now();
        let id = uuid::Uuid::new_v4().to_string();
        let target = Target::ServiceInstance {
            service: service.name.clone(),
            instance: update.name.clone(),
        };
        let mut record = deployment(
            &id,
            &current.environment,
            target,
            state.clone(),
            current.created_at,
            now,
        );
        record.initial_state = Some(current.deployed.state.clone());
        record.previous_succeeded_id = current.deployed.last_succeeded_deployment_id.clone();
        let mut next = current.clone();
        next.deployed.state = state;
        next.deployed.begin(&id, DeploymentStatus::InProgress, now);
        next.rev = current.rev + 1;
        Loaded::Instance {
            service: service.clone(),
            instance: next.clone(),
        }
        .render(d, &record)
        .await?;
        let mut change = DeploymentChange {
            instances: vec![InstanceWrite::Replace {
                instance: next.clone(),
                expected_rev: current.rev,
            }],
            deployments: vec![DeploymentWrite::Create(record)],
            ..Default::default()
        };
        if number != current.deployed.state.version() {
            let old = d
                .version_of(
                    TemplateKind::Service,
                    &service.template_name,
                    current.deployed.state.version(),
                )
                .await?;
            change.usage.push(VersionUsage { version, delta: 1 });
            change.usage.push(VersionUsage {
                version: old,
                delta: -1,
            });
        }
        d.store.change(change).await?;
        if !d.launch(Workflow::Deploy, &id).await {
            return self.instance(&update.service_name, &update.name).await;
        }
        Ok(next)
    }

    /// Asks a running instance deployment to stop (see the environment's cancel for what that means).
    pub async fn cancel_instance(
        &self,
        service: &ResourceName,
        name: &ResourceName,
    ) -> Result<ServiceInstance> {
        let target = Loaded::Instance {
            service: self.get(service).await?,
            instance: self.instance(service, name).await?,
        };
        match super::targets::request_cancel(&self.d, target, &format!("service instance {name}"))
            .await?
        {
            Loaded::Instance { instance, .. } => Ok(instance),
            _ => unreachable!("request_cancel returns the target it was given"),
        }
    }

    pub async fn get(&self, name: &ResourceName) -> Result<Service> {
        let service = self.load(name).await?;
        // A pipeline deployment whose workflow ended unrecorded is failed here (as are instances').
        match &service.pipeline {
            Some(pipeline) if self.d.reconcile(pipeline).await => self.load(name).await,
            _ => Ok(service),
        }
    }

    async fn load(&self, name: &ResourceName) -> Result<Service> {
        self.d
            .store
            .service(name)
            .await?
            .ok_or_else(|| Error::not_found(format!("service {name} does not exist")))
    }

    pub async fn list(&self, page: PageRequest) -> Result<Page<Service>> {
        Ok(self.d.store.services(page).await?)
    }

    pub async fn instance(
        &self,
        service: &ResourceName,
        name: &ResourceName,
    ) -> Result<ServiceInstance> {
        let instance = self.load_instance(service, name).await?;
        if self.d.reconcile(&instance.deployed).await {
            self.load_instance(service, name).await
        } else {
            Ok(instance)
        }
    }

    async fn load_instance(
        &self,
        service: &ResourceName,
        name: &ResourceName,
    ) -> Result<ServiceInstance> {
        self.d.store.instance(service, name).await?.ok_or_else(|| {
            Error::not_found(format!(
                "service instance {name} of service {service} does not exist"
            ))
        })
    }

    pub async fn instances(&self, service: &ResourceName) -> Result<Vec<ServiceInstance>> {
        self.get(service).await?;
        let mut instances = self.d.store.instances(service).await?;
        instances.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(instances)
    }
}

/// Moves a service on after one of its deployments ended.
pub async fn settle(d: &Deployer, name: &ResourceName) -> Result<()> {
    let Some(service) = d.store.service(name).await? else {
        return Ok(());
    };
    if service.status == ServiceStatus::DeleteInProgress {
        return settle_deletion(d, service).await;
    }
    if service.status != ServiceStatus::CreateInProgress {
        return Ok(());
    }
    let instances = d.store.instances(name).await?;
    let failed = instances.iter().find(|i| {
        matches!(
            i.deployed.deployment_status,
            DeploymentStatus::Failed | DeploymentStatus::Cancelled
        )
    });
    let mut next = service.clone();
    let mut change = DeploymentChange::default();
    let mut start = None;
    if let Some(instance) = failed {
        next.status = ServiceStatus::CreateFailed;
        next.status_message = Some(format!(
            "instance {} failed: {}",
            instance.name,
            instance
                .deployed
                .deployment_status_message
                .as_deref()
                .unwrap_or("no reason recorded")
        ));
    } else if instances
        .iter()
        .any(|i| i.deployed.deployment_status != DeploymentStatus::Succeeded)
    {
        return Ok(());
    } else {
        match &service.pipeline {
            None => next.status = ServiceStatus::Active,
            Some(pipeline) if pipeline.last_attempted_deployment_id.is_none() => {
                let id = uuid::Uuid::new_v4().to_string();
                let now = Timestamp::now();
                let environment = instances
                    .first()
                    .map(|i| i.environment.clone())
                    .unwrap_or_else(|| name.clone());
                let target = Target::ServicePipeline {
                    service: name.clone(),
                };
                let record = deployment(
                    &id,
                    &environment,
                    target,
                    pipeline.state.clone(),
                    service.created_at,
                    now,
                );
                let mut started = pipeline.clone();
                started.begin(&id, DeploymentStatus::InProgress, now);
                next.pipeline = Some(started);
                change.deployments.push(DeploymentWrite::Create(record));
                start = Some(id);
            }
            Some(pipeline) => match pipeline.deployment_status {
                DeploymentStatus::Succeeded => next.status = ServiceStatus::Active,
                DeploymentStatus::Failed | DeploymentStatus::Cancelled => {
                    next.status = ServiceStatus::CreateFailed;
                    next.status_message = Some(format!(
                        "the pipeline failed: {}",
                        pipeline
                            .deployment_status_message
                            .as_deref()
                            .unwrap_or("no reason recorded")
                    ));
                }
                _ => return Ok(()),
            },
        }
    }
    next.last_modified_at = Timestamp::now();
    next.rev = service.rev + 1;
    change.services.push(ServiceWrite::Replace {
        service: next,
        expected_rev: service.rev,
    });
    d.store.change(change).await?;
    if let Some(id) = start {
        // Boxed: launching can record a failure, which settles the service again.
        Box::pin(d.launch(Workflow::Deploy, &id)).await;
    }
    Ok(())
}

/// A service being deleted goes once its instances and pipeline are gone, or becomes
/// DELETE_FAILED with the reason of the first that could not be deleted.
async fn settle_deletion(d: &Deployer, service: Service) -> Result<()> {
    let instances = d.store.instances(&service.name).await?;
    let failed_instance = instances
        .iter()
        .find(|i| i.deployed.deployment_status == DeploymentStatus::DeleteFailed);
    let pipeline_failed = service
        .pipeline
        .as_ref()
        .filter(|p| p.deployment_status == DeploymentStatus::DeleteFailed);
    let reason = match (failed_instance, pipeline_failed) {
        (Some(instance), _) => Some(format!(
            "instance {} could not be deleted: {}",
            instance.name,
            instance
                .deployed
                .deployment_status_message
                .as_deref()
                .unwrap_or("no reason recorded")
        )),
        (None, Some(pipeline)) => Some(format!(
            "the pipeline could not be deleted: {}",
            pipeline
                .deployment_status_message
                .as_deref()
                .unwrap_or("no reason recorded")
        )),
        (None, None) => None,
    };
    let pipeline_gone = service
        .pipeline
        .as_ref()
        .is_none_or(|p| p.deployment_status == DeploymentStatus::DeleteComplete);
    let change = match reason {
        Some(reason) => {
            let mut next = service.clone();
            next.status = ServiceStatus::DeleteFailed;
            next.status_message = Some(reason);
            next.last_modified_at = Timestamp::now();
            next.rev = service.rev + 1;
            DeploymentChange {
                services: vec![ServiceWrite::Replace {
                    service: next,
                    expected_rev: service.rev,
                }],
                ..Default::default()
            }
        }
        None if instances.is_empty() && pipeline_gone => DeploymentChange {
            services: vec![ServiceWrite::Delete {
                name: service.name.clone(),
                expected_rev: service.rev,
            }],
            ..Default::default()
        },
        None => return Ok(()),
    };
    d.store.change(change).await?;
    Ok(())
}
