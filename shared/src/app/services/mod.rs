//! Services: CreateService deploys one instance per spec entry into its environment, then the
//! service's pipeline once every instance is deployed (the pipeline reads their outputs).
//! UpdateService adds and removes instances, then redeploys the pipeline for the new list.
//! Instances (`instances`), the pipeline (`pipeline`) and how a service moves on after one of
//! its deployments ended (`settle`) have a file each.

mod instances;
mod pipeline;
mod settle;

use crate::domain::names::Tags;
pub use instances::{InstanceUpdate, NewInstance};
use pipeline::pipeline_redeployment;
pub use pipeline::{PipelineUpdate, pipeline_of};
pub use settle::settle;

use std::collections::BTreeMap;

use serde::Deserialize;

use super::deploy::records::{deletion_of, deployment, fresh, new_id};
use super::deploy::{Deployer, Launch, Loaded};
use crate::app::{Error, Result};
use crate::domain::bundle::BundleLayout;
use crate::domain::environment::{
    DeployedState, Deployment, DeploymentStatus, DeploymentType, Environment, Target,
    target_version,
};
use crate::domain::names::{
    Arn, BranchName, Description, RepositoryId, ResourceName, Timestamp, VersionPart,
};
use crate::domain::schema::{InputRole, TemplateSchema};
use crate::domain::service::{
    EnvironmentFacts, Repository, Service, ServiceInstance, ServiceStatus, TemplateOffer,
    check_instances, check_new_service, instance_changes,
};
use crate::domain::spec::{Inputs, InstanceSpec, Spec, keep_current_values, resolve_inputs};
use crate::domain::template::{TemplateKind, TemplateVersion, VersionStatus};
use crate::ports::{
    DeploymentChange, DeploymentWrite, InstanceWrite, Page, PageRequest, ServiceWrite,
    VersionUsage, Workflow,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceUpdate {
    pub name: ResourceName,
    pub description: Option<Description>,
    pub spec: Option<String>,
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
    pub repository_connection_arn: Option<Arn>,
    pub repository_id: Option<RepositoryId>,
    pub branch_name: Option<BranchName>,
    #[serde(default)]
    pub tags: Tags,
}

/// The deletion of one instance: the instance marked DELETE_IN_PROGRESS and its record.
pub(super) fn instance_deletion(
    instance: &ServiceInstance,
    now: Timestamp,
) -> (InstanceWrite, Deployment) {
    let id = new_id();
    let mut next = instance.clone();
    next.deployed
        .begin(&id, DeploymentStatus::DeleteInProgress, now);
    next.rev = instance.rev + 1;
    let target = Target::ServiceInstance {
        service: instance.service.clone(),
        instance: instance.name.clone(),
    };
    let record = deletion_of(
        &id,
        &instance.environment,
        target,
        &instance.deployed,
        instance.created_at,
        now,
    );
    let write = InstanceWrite::Replace {
        instance: next,
        expected_rev: instance.rev,
    };
    (write, record)
}

pub(super) fn conflict_if_busy(service: &Service) -> Result<()> {
    let doing = match service.status {
        ServiceStatus::CreateInProgress => "being created",
        ServiceStatus::UpdateInProgress => "being updated",
        ServiceStatus::DeleteInProgress => "being deleted",
        _ => return Ok(()),
    };
    Err(Error::conflict(format!(
        "service {} is {doing}; wait for it to end",
        service.name
    )))
}

/// What an update of an instance or of the pipeline asks for: the state to deploy, the
/// version it runs on, and the usage moves if the version changes.
pub(super) struct Redeploy {
    pub(super) state: DeployedState,
    pub(super) usage: Vec<VersionUsage>,
}

pub struct Services {
    d: Deployer,
}

impl Services {
    pub fn new(deployer: Deployer) -> Self {
        Self { d: deployer }
    }

    /// Hands recorded deployments to their workflows; `true` if one could not start (it was
    /// recorded as failed, and the service must move on from that).
    pub(super) async fn launch_all(&self, launches: Vec<(Workflow, String)>) -> bool {
        let mut failed = false;
        for (workflow, id) in &launches {
            let workflow = *workflow;
            failed |= matches!(self.d.launch(workflow, id).await, Launch::Failed(_));
        }
        failed
    }

    /// The instance and deployment records for one spec entry, rendered once so that a spec
    /// that breaks the template is refused before anything is written.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn plan_instance(
        &self,
        service: &Service,
        version: &TemplateVersion,
        schema: &TemplateSchema,
        item: &InstanceSpec,
        environment: &Environment,
        at: &str,
        now: Timestamp,
    ) -> Result<(ServiceInstance, Deployment)> {
        let inputs = resolve_inputs(schema.input(InputRole::Service), &item.inputs, at)
            .map_err(Error::Validation)?;
        let id = new_id();
        let state = DeployedState {
            template_name: version.template_name.clone(),
            major: version.number.major,
            minor: version.number.minor,
            spec: service.spec.clone(),
            inputs,
            component: None,
        };
        let instance = ServiceInstance {
            service: service.name.clone(),
            name: item.name.clone(),
            environment: item.environment.clone(),
            created_at: now,
            deployed: fresh(
                state,
                self.d.provisioners.default_engine().as_ref(),
                &["instance", service.name.as_str(), item.name.as_str()],
                environment.deployed.role_arn.clone(),
                Some(id.clone()),
                now,
            ),
            component: None,
            tags: Tags::default(),
            rev: 1,
        };
        let target = Target::ServiceInstance {
            service: service.name.clone(),
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
        Loaded::Instance {
            service: service.clone(),
            instance: instance.clone(),
        }
        .render(&self.d, &record)
        .await?;
        Ok((instance, record))
    }

    /// The environments a list of instances names, as the rules see them and as stored.
    pub(super) async fn environments_of(
        &self,
        instances: &[InstanceSpec],
    ) -> Result<(
        BTreeMap<ResourceName, EnvironmentFacts>,
        BTreeMap<ResourceName, Environment>,
    )> {
        let mut facts = BTreeMap::new();
        let mut records = BTreeMap::new();
        for instance in instances {
            if records.contains_key(&instance.environment) {
                continue;
            }
            if let Some(environment) = self.d.store.environment(&instance.environment).await? {
                facts.insert(
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
        Ok((facts, records))
    }

    /// That the environments new instances land in are still as read (see `EnvironmentCheck`).
    pub(super) fn still_as_read(
        records: &BTreeMap<ResourceName, Environment>,
    ) -> Vec<crate::ports::EnvironmentCheck> {
        records
            .values()
            .map(|e| crate::ports::EnvironmentCheck {
                name: e.name.clone(),
                rev: e.rev,
            })
            .collect()
    }

    pub(super) async fn schema_of(&self, version: &TemplateVersion) -> Result<TemplateSchema> {
        BundleLayout::Service {
            pipeline: version.has_pipeline,
        }
        .parse_schema(&version.schema)
        .map_err(Error::Validation)
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
        let wanted = match &spec {
            Spec::Service { instances, .. } => instances.as_slice(),
            Spec::Environment { .. } => &[],
        };
        let (environments, records) = self.environments_of(wanted).await?;
        let pipeline = version.has_pipeline && template.provisioning.is_none();
        let offer = TemplateOffer {
            name: &new.template_name,
            version: number.to_string(),
            compatible: &version.compatible_environment_templates,
            pipeline,
        };
        let repository = Repository {
            connection_arn: new.repository_connection_arn.clone().map(String::from),
            id: new.repository_id.clone().map(String::from),
            branch: new.branch_name.clone().map(String::from),
        };
        let instances =
            check_new_service(&spec, &offer, &repository, &environments, d.instance_quota)?;
        if let Some(existing) = d.store.service(&new.name).await? {
            // A retry of the request that created it gets it; any other request is refused.
            return if existing.template_name == new.template_name
                && (existing.major, existing.minor) == (major, minor)
                && existing.spec == new.spec
                && existing.repository == repository
                && existing.description == new.description
                && existing.tags == new.tags
            {
                Ok(existing)
            } else {
                Err(Error::conflict(format!(
                    "service {} already exists, created with other parameters",
                    new.name
                )))
            };
        }
        let pipeline_role = match (pipeline, d.pipeline_role().await?) {
            (true, None) => {
                return Err(Error::validation(
                    "this service template has a pipeline, and paved has no pipeline role: set one with UpdateAccountSettings (pipelineServiceRoleArn)",
                ));
            }
            (_, role) => role.unwrap_or_default(),
        };
        let schema = self.schema_of(&version).await?;
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
                    DeployedState {
                        template_name: new.template_name.clone(),
                        major,
                        minor,
                        spec: new.spec.clone(),
                        inputs: pipeline_inputs,
                        component: None,
                    },
                    d.provisioners.default_engine().as_ref(),
                    &["pipeline", new.name.as_str()],
                    pipeline_role,
                    None,
                    now,
                )
            }),
            awaiting: vec![],
            redeploys: Default::default(),
            tags: new.tags.clone(),
            rev: 1,
        };
        let mut change = DeploymentChange {
            services: vec![ServiceWrite::Create(service.clone())],
            environment_checks: Self::still_as_read(&records),
            ..Default::default()
        };
        let mut started = Vec::new();
        for (index, item) in instances.iter().enumerate() {
            let at = format!("instances[{index}] ({}).spec", item.name);
            let environment = &records[&item.environment];
            let (instance, record) = self
                .plan_instance(&service, &version, &schema, item, environment, &at, now)
                .await?;
            started.push(record.id.clone());
            change.instances.push(InstanceWrite::Create(instance));
            change.deployments.push(DeploymentWrite::Create(record));
        }
        let uses = instances.len() as i64 + i64::from(pipeline);
        if uses > 0 {
            change.usage.push(VersionUsage {
                version,
                delta: uses,
            });
        }
        d.write(change, || {
            format!(
                "service {} was created, or its template version changed, by another request",
                new.name
            )
        })
        .await?;
        d.announce_service(&service, None).await;
        let failed = self
            .launch_all(
                started
                    .iter()
                    .map(|id| (Workflow::Deploy, id.clone()))
                    .collect(),
            )
            .await;
        if started.is_empty() || failed {
            settle(d, &new.name).await?;
        }
        self.get(&new.name).await
    }

    /// Changes a service's description, and with a spec, adds the instances it newly lists and
    /// deletes those it no longer lists; then the pipeline is redeployed for the new list.
    /// Instances it keeps are not redeployed (that is UpdateServiceInstance).
    #[tracing::instrument(skip_all, fields(service = %update.name))]
    pub async fn update(&self, update: ServiceUpdate) -> Result<Service> {
        let d = &self.d;
        let service = self.get(&update.name).await?;
        let mut next = service.clone();
        next.rev = service.rev + 1;
        next.last_modified_at = Timestamp::now();
        if let Some(description) = &update.description {
            next.description = Some(description.clone());
        }
        // The spec it already has changes nothing: a retried update is answered, not refused.
        let Some(text) = update.spec.clone().filter(|text| *text != service.spec) else {
            if service.status == ServiceStatus::DeleteInProgress {
                conflict_if_busy(&service)?;
            }
            if update.description.is_none() || next.description == service.description {
                return Ok(service);
            }
            d.store
                .change(DeploymentChange {
                    services: vec![ServiceWrite::Replace {
                        service: next.clone(),
                        expected_rev: service.rev,
                    }],
                    ..Default::default()
                })
                .await?;
            return Ok(next);
        };
        conflict_if_busy(&service)?;
        let Spec::Service {
            pipeline: pipeline_inputs,
            instances: wanted,
        } = Spec::parse(&text).map_err(Error::Validation)?
        else {
            return Err(Error::validation(
                "spec: a service takes `proton: ServiceSpec`",
            ));
        };
        if pipeline_inputs.is_some() && service.pipeline.is_none() {
            return Err(Error::validation(format!(
                "spec.pipeline: service {} has no pipeline",
                service.name
            )));
        }
        let current = d.store.instances(&service.name).await?;
        let placed: BTreeMap<_, _> = current
            .iter()
            .map(|i| (i.name.clone(), i.environment.clone()))
            .collect();
        let changes = instance_changes(&placed, &wanted)?;
        if wanted.len() > d.instance_quota {
            return Err(Error::QuotaExceeded(format!(
                "the spec names {} instances; a service may have at most {}",
                wanted.len(),
                d.instance_quota
            )));
        }
        let busy = current
            .iter()
            .map(|i| &i.deployed)
            .chain(service.pipeline.iter())
            .any(|deployed| deployed.deployment_status.is_active());
        if busy && !(changes.added.is_empty() && changes.removed.is_empty()) {
            return Err(Error::conflict(format!(
                "service {} has deployments in progress; wait for them to end, then update it",
                service.name
            )));
        }
        let version = d
            .version_of(
                TemplateKind::Service,
                &service.template_name,
                crate::domain::template::VersionNumber {
                    major: service.major,
                    minor: service.minor,
                },
            )
            .await?;
        let (environments, records) = self.environments_of(&changes.added).await?;
        let offer = TemplateOffer {
            name: &service.template_name,
            version: version.number.to_string(),
            compatible: &version.compatible_environment_templates,
            pipeline: service.pipeline.is_some(),
        };
        check_instances(&changes.added, &offer, &environments, usize::MAX)?;
        if !changes.added.is_empty() && version.status != VersionStatus::Published {
            return Err(Error::validation(format!(
                "version {} of service template {} is no longer published; new instances cannot run on it",
                version.number, service.template_name
            )));
        }
        let mut change = DeploymentChange {
            environment_checks: Self::still_as_read(&records),
            ..Default::default()
        };
        let now = Timestamp::now();
        next.spec = text.clone();
        let schema = self.schema_of(&version).await?;
        let mut deploys = Vec::new();
        for item in &changes.added {
            let at = format!("instances ({}).spec", item.name);
            let (instance, record) = self
                .plan_instance(
                    &next,
                    &version,
                    &schema,
                    item,
                    &records[&item.environment],
                    &at,
                    now,
                )
                .await?;
            deploys.push(record.id.clone());
            change.instances.push(InstanceWrite::Create(instance));
            change.deployments.push(DeploymentWrite::Create(record));
        }
        let mut deletes = Vec::new();
        for name in &changes.removed {
            let instance = current
                .iter()
                .find(|i| &i.name == name)
                .expect("removed instances come from the current ones");
            if let Some(component) = &instance.component {
                return Err(Error::conflict(format!(
                    "instance {name} has component {component} attached; delete the component first"
                )));
            }
            let (write, record) = instance_deletion(instance, now);
            deletes.push(record.id.clone());
            change.instances.push(write);
            change.deployments.push(DeploymentWrite::Create(record));
        }
        if !changes.added.is_empty() {
            change.usage.push(VersionUsage {
                version,
                delta: changes.added.len() as i64,
            });
        }
        if !(deploys.is_empty() && deletes.is_empty()) {
            next.status = ServiceStatus::UpdateInProgress;
            next.status_message = None;
            next.awaiting = deploys.iter().chain(&deletes).cloned().collect();
        }
        change.services.push(ServiceWrite::Replace {
            service: next.clone(),
            expected_rev: service.rev,
        });
        d.write(change, || {
            format!(
                "service {} changed while this update was prepared; retry",
                service.name
            )
        })
        .await?;
        if next.status != service.status {
            d.announce_service(&next, Some(service.status)).await;
        }
        let launches = deploys
            .iter()
            .map(|id| (Workflow::Deploy, id.clone()))
            .chain(deletes.iter().map(|id| (Workflow::Delete, id.clone())))
            .collect();
        if self.launch_all(launches).await {
            settle(d, &service.name).await?;
        }
        self.get(&service.name).await
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
        if busy
            || matches!(
                service.status,
                ServiceStatus::CreateInProgress | ServiceStatus::UpdateInProgress
            )
        {
            return Err(Error::conflict(format!(
                "service {name} has deployments in progress; wait for them to end, then delete it"
            )));
        }
        if let Some((instance, component)) = instances
            .iter()
            .find_map(|i| Some((&i.name, i.component.as_ref()?)))
        {
            return Err(Error::conflict(format!(
                "instance {instance} has component {component} attached; delete the component first"
            )));
        }
        let now = Timestamp::now();
        let mut change = DeploymentChange::default();
        let mut started = Vec::new();
        for instance in &instances {
            let (write, record) = instance_deletion(instance, now);
            started.push(record.id.clone());
            change.instances.push(write);
            change.deployments.push(DeploymentWrite::Create(record));
        }
        let mut next = service.clone();
        next.status = ServiceStatus::DeleteInProgress;
        next.status_message = None;
        next.last_modified_at = now;
        next.awaiting = vec![];
        next.rev = service.rev + 1;
        if let Some(pipeline) = &service.pipeline {
            let mut deleting = pipeline.clone();
            if pipeline.last_attempted_deployment_id.is_some() {
                let environment = instances
                    .first()
                    .map(|i| i.environment.clone())
                    .unwrap_or_else(|| name.clone());
                let id = new_id();
                let target = Target::ServicePipeline {
                    service: name.clone(),
                };
                let created = service.created_at;
                let record = deletion_of(&id, &environment, target, pipeline, created, now);
                let mut begun = pipeline.clone();
                begun.begin(&id, DeploymentStatus::DeleteInProgress, now);
                deleting = begun;
                started.push(record.id.clone());
                change.deployments.push(DeploymentWrite::Create(record));
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
        d.announce_service(&next, Some(service.status)).await;
        let failed = self
            .launch_all(
                started
                    .iter()
                    .map(|id| (Workflow::Delete, id.clone()))
                    .collect(),
            )
            .await;
        if started.is_empty() || failed {
            settle(d, name).await?;
        }
        Ok(next)
    }

    /// The state an update asks for by Proton's `deploymentType` rules: `given` is a new spec
    /// and its raw inputs (`${Proton::CURRENT_VAL}` keeps a value), `None` keeps both.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn redeploy(
        &self,
        service: &Service,
        current: &DeployedState,
        deployment_type: DeploymentType,
        major: Option<VersionPart>,
        minor: Option<VersionPart>,
        given: Option<(String, Inputs)>,
        role: InputRole,
        at: &str,
    ) -> Result<Redeploy> {
        let d = &self.d;
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
            current.version(),
            deployment_type,
            major.map(|v| v.0),
            minor.map(|v| v.0),
            &template.versions,
        )
        .map_err(Error::Validation)?;
        let version = d
            .version_of(TemplateKind::Service, &service.template_name, number)
            .await?;
        let (spec, inputs) = match given {
            None => (current.spec.clone(), current.inputs.clone()),
            Some((text, raw)) => {
                let inputs = keep_current_values(&raw, &current.inputs, "spec")
                    .map_err(Error::Validation)?;
                (text, inputs)
            }
        };
        let schema = self.schema_of(&version).await?;
        let inputs = resolve_inputs(schema.input(role), &inputs, at).map_err(Error::Validation)?;
        let mut usage = Vec::new();
        if number != current.version() {
            let old = d
                .version_of(
                    TemplateKind::Service,
                    &service.template_name,
                    current.version(),
                )
                .await?;
            usage.push(VersionUsage { version, delta: 1 });
            usage.push(VersionUsage {
                version: old,
                delta: -1,
            });
        }
        Ok(Redeploy {
            state: DeployedState {
                template_name: service.template_name.clone(),
                major: number.major,
                minor: number.minor,
                spec,
                inputs,
                component: None,
            },
            usage,
        })
    }

    pub async fn get(&self, name: &ResourceName) -> Result<Service> {
        let service = self.load(name).await?;
        // A deployment whose workflow ended unrecorded is failed here: the pipeline's, and while
        // the service waits on its instances, theirs, so that its status (and the waiters that
        // poll it) never hang on a deployment that will not report.
        let mut reconciled = match &service.pipeline {
            Some(pipeline) => self.d.reconcile(pipeline).await.is_some(),
            None => false,
        };
        if matches!(
            service.status,
            ServiceStatus::CreateInProgress
                | ServiceStatus::UpdateInProgress
                | ServiceStatus::DeleteInProgress
        ) {
            for instance in self.d.store.instances(name).await? {
                reconciled |= self.d.reconcile(&instance.deployed).await.is_some();
            }
        }
        if reconciled {
            // The service moves on from what was recorded (CREATE_FAILED, the pipeline, ...).
            settle(&self.d, name).await?;
            self.load(name).await
        } else {
            Ok(service)
        }
    }

    pub(super) async fn load(&self, name: &ResourceName) -> Result<Service> {
        self.d
            .store
            .service(name)
            .await?
            .ok_or_else(|| Error::not_found(format!("service {name} does not exist")))
    }

    pub async fn list(&self, page: PageRequest) -> Result<Page<Service>> {
        Ok(self.d.store.services(page).await?)
    }
}
