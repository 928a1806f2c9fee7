//! Components: directly defined infrastructure deployed as its own stack, attached to a
//! service instance (whose template then reads its outputs) or standing alone in an
//! environment. An attached instance is redeployed when its component's outputs change.

use crate::domain::names::Tags;
use serde::{Deserialize, Serialize};

use super::deploy::records::{deletion_of, deployment, fresh, new_id, redeployment_of};
use super::deploy::{Deployer, Ended, Loaded, fingerprint, request_cancel};
use crate::app::{Error, Result};
use crate::domain::component::{Component, check_definition};
use crate::domain::environment::{
    ComponentDefinition, DeployedState, DeploymentStatus, DeploymentType, Target,
};
use crate::domain::names::{ClientToken, Description, ResourceName, Timestamp};
use crate::domain::service::{ServiceInstance, ServiceStatus};
use crate::domain::template::{ComponentSource, TemplateKind};
use crate::ports::{
    ComponentWrite, DeploymentChange, DeploymentWrite, InstanceWrite, Page, PageRequest, Workflow,
};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewComponent {
    pub name: ResourceName,
    pub description: Option<Description>,
    pub environment_name: Option<ResourceName>,
    pub service_name: Option<ResourceName>,
    pub service_instance_name: Option<ResourceName>,
    pub manifest: String,
    pub template_file: String,
    pub service_spec: Option<String>,
    pub client_token: Option<ClientToken>,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentUpdate {
    pub name: ResourceName,
    pub deployment_type: DeploymentType,
    pub description: Option<Description>,
    pub service_name: Option<ResourceName>,
    pub service_instance_name: Option<ResourceName>,
    pub service_spec: Option<String>,
    pub template_file: Option<String>,
    pub client_token: Option<ClientToken>,
}

/// Which components a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct ComponentFilter {
    pub environment: Option<ResourceName>,
    pub service: Option<ResourceName>,
    pub instance: Option<ResourceName>,
}

fn component_state(
    name: &ResourceName,
    definition: ComponentDefinition,
    service_spec: Option<String>,
) -> DeployedState {
    DeployedState {
        // A component has no catalog template: the state names the component itself.
        template_name: name.clone(),
        major: 0,
        minor: 0,
        spec: service_spec.unwrap_or_default(),
        inputs: Default::default(),
        component: Some(definition),
    }
}

pub struct Components {
    d: Deployer,
}

impl Components {
    pub fn new(deployer: Deployer) -> Self {
        Self { d: deployer }
    }

    /// The instance a component attaches to, checked: it exists, its template version allows
    /// directly defined components, and neither it nor its service is busy.
    async fn attachable(
        &self,
        service_name: &ResourceName,
        instance_name: &ResourceName,
        component: &ResourceName,
    ) -> Result<ServiceInstance> {
        let d = &self.d;
        let service =
            d.store.service(service_name).await?.ok_or_else(|| {
                Error::not_found(format!("service {service_name} does not exist"))
            })?;
        if service.status == ServiceStatus::DeleteInProgress {
            return Err(Error::conflict(format!(
                "service {service_name} is being deleted"
            )));
        }
        let instance = d
            .store
            .instance(service_name, instance_name)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "service instance {instance_name} of service {service_name} does not exist"
                ))
            })?;
        let state = &instance.deployed.state;
        let version = d
            .version_of(TemplateKind::Service, &state.template_name, state.version())
            .await?;
        if !version
            .supported_component_sources
            .contains(&ComponentSource::DirectlyDefined)
        {
            return Err(Error::validation(format!(
                "service instance {instance_name} runs service template {} {}, whose supportedComponentSources does not include DIRECTLY_DEFINED: it takes no components",
                state.template_name,
                state.version()
            )));
        }
        if instance.deployed.deployment_status.is_active() {
            return Err(Error::conflict(format!(
                "service instance {instance_name} has a deployment in progress; wait for it to end"
            )));
        }
        if let Some(other) = &instance.component
            && other != component
        {
            return Err(Error::conflict(format!(
                "service instance {instance_name} already has component {other} attached"
            )));
        }
        Ok(instance)
    }

    /// Creates a component and deploys it. Requests with one `clientToken` get one answer,
    /// even when they arrive together.
    #[tracing::instrument(skip_all, fields(component = %new.name))]
    pub async fn create(&self, new: NewComponent) -> Result<Component> {
        let scope = format!("CreateComponent/{}", new.name);
        let print = fingerprint(&new);
        match self.create_once(&new, &scope, &print).await {
            Err(error)
                if self
                    .d
                    .lost_to_twin(&scope, new.client_token.as_ref(), &print, &error)
                    .await? =>
            {
                self.get(&new.name).await
            }
            answer => answer,
        }
    }

    async fn create_once(&self, new: &NewComponent, scope: &str, print: &str) -> Result<Component> {
        let d = &self.d;
        let (scope, print) = (scope.to_string(), print.to_string());
        let token = new.client_token.as_ref();
        if d.replay(&scope, token, &print).await?.is_some() {
            return self.get(&new.name).await;
        }
        let definition = ComponentDefinition {
            manifest: new.manifest.clone(),
            template_file: new.template_file.clone(),
            service: new.service_name.clone(),
            instance: new.service_instance_name.clone(),
        };
        check_definition(&definition, new.service_spec.as_deref())?;
        if let Some(existing) = d.store.component(&new.name).await? {
            let same = existing.definition() == Some(&definition)
                && new
                    .environment_name
                    .as_ref()
                    .is_none_or(|e| e == &existing.environment);
            return if same {
                Ok(existing)
            } else {
                Err(Error::conflict(format!(
                    "component {} already exists",
                    new.name
                )))
            };
        }
        let instance = match (&definition.service, &definition.instance) {
            (Some(service), Some(instance)) => {
                Some(self.attachable(service, instance, &new.name).await?)
            }
            _ => None,
        };
        let environment_name = match (&instance, &new.environment_name) {
            (Some(instance), Some(given)) if given != &instance.environment => {
                return Err(Error::validation(format!(
                    "environmentName: service instance {} runs in environment {}, not {given}",
                    instance.name, instance.environment
                )));
            }
            (Some(instance), _) => instance.environment.clone(),
            (None, Some(given)) => given.clone(),
            (None, None) => {
                return Err(Error::validation(
                    "environmentName is required for a component not attached to a service instance",
                ));
            }
        };
        let environment = d
            .store
            .environment(&environment_name)
            .await?
            .ok_or_else(|| {
                Error::validation(format!(
                    "environmentName: environment {environment_name} does not exist"
                ))
            })?;
        if environment.deployed.deployment_status == DeploymentStatus::DeleteInProgress {
            return Err(Error::conflict(format!(
                "environment {environment_name} is being deleted"
            )));
        }
        let Some(role) = environment.component_role_arn.clone() else {
            return Err(Error::validation(format!(
                "environment {environment_name} has no componentRoleArn; set one (update-environment --component-role-arn) to allow components in it"
            )));
        };
        // The role was checked when the environment named it; it may have changed since.
        if let Ok(arn) = crate::domain::names::Arn::parse(role.clone()) {
            d.check_trust(
                &format!("the componentRoleArn of environment {environment_name}"),
                &arn,
            )
            .await?;
        }
        let now = Timestamp::now();
        let id = new_id();
        let state = component_state(&new.name, definition, new.service_spec.clone());
        let component = Component {
            name: new.name.clone(),
            description: new.description.clone(),
            environment: environment_name.clone(),
            created_at: now,
            last_modified_at: now,
            last_client_request_token: token.map(|t| t.as_str().to_string()),
            deployed: fresh(
                state.clone(),
                d.provisioners.default_engine().as_ref(),
                &["component", new.name.as_str()],
                role,
                Some(id.clone()),
                now,
            ),
            tags: new.tags.clone(),
            rev: 1,
        };
        let target = Target::Component {
            component: new.name.clone(),
        };
        let record = deployment(&id, &environment_name, target, state, now, now);
        Loaded::Component(component.clone())
            .render(d, &record)
            .await?;
        let mut change = DeploymentChange {
            components: vec![ComponentWrite::Create(component.clone())],
            deployments: vec![DeploymentWrite::Create(record)],
            token: Deployer::token_record(&scope, token, &print, &id),
            // Fails if a DeleteEnvironment (or any write of the environment) came first.
            environment_checks: vec![crate::ports::EnvironmentCheck {
                name: environment.name.clone(),
                rev: environment.rev,
            }],
            ..Default::default()
        };
        if let Some(instance) = instance {
            // Written with the instance's revision: an instance deployment that started since
            // it was read makes this create fail instead of racing it.
            change.instances.push(InstanceWrite::Replace {
                instance: ServiceInstance {
                    component: Some(new.name.clone()),
                    rev: instance.rev + 1,
                    ..instance.clone()
                },
                expected_rev: instance.rev,
            });
        }
        self.write(change, &new.name).await?;
        d.launch(Workflow::Deploy, &id).await;
        self.get(&new.name).await
    }

    async fn write(&self, change: DeploymentChange, name: &ResourceName) -> Result<()> {
        self.d
            .write(change, || {
                format!(
                    "component {name}, its service instance or its environment changed while this request was prepared (a DeleteEnvironment?); retry"
                )
            })
            .await
    }

    /// Redeploys a component with a new template file or service spec (CURRENT_VERSION), or
    /// changes its description (NONE). A component stays on the instance it was created on.
    #[tracing::instrument(skip_all, fields(component = %update.name))]
    pub async fn update(&self, update: ComponentUpdate) -> Result<Component> {
        let scope = format!("UpdateComponent/{}", update.name);
        let print = fingerprint(&update);
        match self.update_once(&update, &scope, &print).await {
            Err(error)
                if self
                    .d
                    .lost_to_twin(&scope, update.client_token.as_ref(), &print, &error)
                    .await? =>
            {
                self.get(&update.name).await
            }
            answer => answer,
        }
    }

    async fn update_once(
        &self,
        update: &ComponentUpdate,
        scope: &str,
        print: &str,
    ) -> Result<Component> {
        let d = &self.d;
        let (scope, print) = (scope.to_string(), print.to_string());
        let token = update.client_token.as_ref();
        if d.replay(&scope, token, &print).await?.is_some() {
            return self.get(&update.name).await;
        }
        let current = self.get(&update.name).await?;
        if current.deployed.deployment_status.is_active() {
            return Err(Error::conflict(format!(
                "component {} has a deployment in progress; wait for it or cancel it",
                update.name
            )));
        }
        let Some(definition) = current.definition().cloned() else {
            return Err(Error::validation(format!(
                "component {} has no definition",
                update.name
            )));
        };
        let now = Timestamp::now();
        let mut next = current.clone();
        next.last_modified_at = now;
        next.rev = current.rev + 1;
        if let Some(description) = &update.description {
            next.description = Some(description.clone());
        }
        match update.deployment_type {
            DeploymentType::None => {
                if update.template_file.is_some() || update.service_spec.is_some() {
                    return Err(Error::validation(
                        "deploymentType NONE changes the description only; use CURRENT_VERSION to deploy a template file or service spec",
                    ));
                }
                self.write(
                    DeploymentChange {
                        components: vec![ComponentWrite::Replace {
                            component: next.clone(),
                            expected_rev: current.rev,
                        }],
                        ..Default::default()
                    },
                    &update.name,
                )
                .await?;
                return Ok(next);
            }
            DeploymentType::CurrentVersion => {}
            other => {
                return Err(Error::validation(format!(
                    "deploymentType {}: a component takes NONE or CURRENT_VERSION",
                    serde_json::to_value(other)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                )));
            }
        }
        let wanted = (&update.service_name, &update.service_instance_name);
        let attachment = (&definition.service, &definition.instance);
        if (wanted.0.is_some() || wanted.1.is_some()) && wanted != attachment {
            return Err(Error::validation(format!(
                "serviceName/serviceInstanceName: component {} stays attached where it was created; delete it and create it again to move it",
                update.name
            )));
        }
        let next_definition = ComponentDefinition {
            template_file: update
                .template_file
                .clone()
                .unwrap_or(definition.template_file.clone()),
            ..definition.clone()
        };
        let current_spec =
            (!current.deployed.state.spec.is_empty()).then(|| current.deployed.state.spec.clone());
        let service_spec = update.service_spec.clone().or(current_spec);
        check_definition(&next_definition, service_spec.as_deref())?;
        let instance = match (&definition.service, &definition.instance) {
            (Some(service), Some(instance)) => {
                Some(self.attachable(service, instance, &update.name).await?)
            }
            _ => None,
        };
        let id = new_id();
        let state = component_state(&update.name, next_definition, service_spec);
        let target = Target::Component {
            component: update.name.clone(),
        };
        let record = redeployment_of(
            &id,
            &current.environment,
            target,
            &current.deployed,
            state.clone(),
            current.created_at,
            now,
        );
        next.deployed.state = state;
        next.deployed.begin(&id, DeploymentStatus::InProgress, now);
        next.last_client_request_token =
            update.client_token.as_ref().map(|t| t.as_str().to_string());
        Loaded::Component(next.clone()).render(d, &record).await?;
        let mut change = DeploymentChange {
            components: vec![ComponentWrite::Replace {
                component: next.clone(),
                expected_rev: current.rev,
            }],
            deployments: vec![DeploymentWrite::Create(record)],
            token: Deployer::token_record(&scope, token, &print, &id),
            ..Default::default()
        };
        if let Some(instance) = instance {
            // The instance's revision moves too, so an instance update racing this one fails.
            change.instances.push(InstanceWrite::Replace {
                instance: ServiceInstance {
                    rev: instance.rev + 1,
                    ..instance.clone()
                },
                expected_rev: instance.rev,
            });
        }
        self.write(change, &update.name).await?;
        if !d.launch(Workflow::Deploy, &id).await.started() {
            return self.get(&update.name).await;
        }
        Ok(next)
    }

    /// Deletes a component's stack, then the component; its instance is redeployed without it.
    #[tracing::instrument(skip_all, fields(component = %name))]
    pub async fn delete(&self, name: &ResourceName) -> Result<Component> {
        let d = &self.d;
        let current = self.get(name).await?;
        match current.deployed.deployment_status {
            DeploymentStatus::DeleteInProgress => return Ok(current),
            status if status.is_active() => {
                return Err(Error::conflict(format!(
                    "component {name} has a deployment in progress; wait for it or cancel it"
                )));
            }
            _ => {}
        }
        let now = Timestamp::now();
        let id = new_id();
        let mut next = current.clone();
        next.deployed
            .begin(&id, DeploymentStatus::DeleteInProgress, now);
        next.last_modified_at = now;
        next.rev = current.rev + 1;
        let target = Target::Component {
            component: name.clone(),
        };
        let record = deletion_of(
            &id,
            &current.environment,
            target,
            &current.deployed,
            current.created_at,
            now,
        );
        self.write(
            DeploymentChange {
                components: vec![ComponentWrite::Replace {
                    component: next.clone(),
                    expected_rev: current.rev,
                }],
                deployments: vec![DeploymentWrite::Create(record)],
                ..Default::default()
            },
            name,
        )
        .await?;
        d.launch(Workflow::Delete, &id).await;
        Ok(next)
    }

    pub async fn cancel(&self, name: &ResourceName) -> Result<Component> {
        let target = Loaded::Component(self.get(name).await?);
        match request_cancel(&self.d, target, &format!("component {name}")).await? {
            Loaded::Component(component) => Ok(component),
            _ => unreachable!("request_cancel returns the target it was given"),
        }
    }

    pub async fn get(&self, name: &ResourceName) -> Result<Component> {
        let component = self.load(name).await?;
        if self.d.reconcile(&component.deployed).await.is_some() {
            self.load(name).await
        } else {
            Ok(component)
        }
    }

    async fn load(&self, name: &ResourceName) -> Result<Component> {
        self.d
            .store
            .component(name)
            .await?
            .ok_or_else(|| Error::not_found(format!("component {name} does not exist")))
    }

    /// Components by name, filtered by environment, service or service instance.
    pub async fn list(
        &self,
        filter: ComponentFilter,
        page: PageRequest,
    ) -> Result<Page<Component>> {
        let d = &self.d;
        if filter.instance.is_some() && filter.service.is_none() {
            return Err(Error::validation(
                "serviceInstanceName: give serviceName with it",
            ));
        }
        let Some(service) = &filter.service else {
            return Ok(d
                .store
                .components(filter.environment.as_ref(), page)
                .await?);
        };
        // A service's components are found through its instances (at most the quota of them).
        let mut items = Vec::new();
        for instance in d.store.instances(service).await? {
            if filter
                .instance
                .as_ref()
                .is_some_and(|i| i != &instance.name)
            {
                continue;
            }
            if let Some(name) = &instance.component
                && let Some(component) = d.store.component(name).await?
                && filter
                    .environment
                    .as_ref()
                    .is_none_or(|e| e == &component.environment)
            {
                items.push(component);
            }
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Page {
            items,
            cursor: None,
        })
    }
}

/// After a component deployment ended: its instance is redeployed if the outputs it reads
/// changed, or if the component was deleted while the instance read its outputs.
pub async fn follow(d: &Deployer, ended: &Ended) {
    match (&ended.before, &ended.after) {
        (Some(Loaded::Component(before)), Some(Loaded::Component(after)))
            if before.deployed.outputs != after.deployed.outputs =>
        {
            redeploy_attached(d, after, "its component's outputs changed").await;
        }
        (Some(Loaded::Component(before)), None) if !before.deployed.outputs.is_empty() => {
            redeploy_attached(d, before, "its component was deleted").await;
        }
        _ => {}
    }
}

/// Redeploys the instance a component is attached to, as it is (same version, same spec).
/// A failure here is logged: the component's own deployment has ended either way.
async fn redeploy_attached(d: &Deployer, component: &Component, why: &str) {
    let Some((service, instance)) = component.attachment() else {
        return;
    };
    match redeploy_instance(d, service, instance).await {
        Ok(Some(id)) => {
            tracing::info!(%service, %instance, deployment = %id, why, "instance redeployed");
        }
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(%service, %instance, error = %error, why, "instance not redeployed");
        }
    }
}

async fn redeploy_instance(
    d: &Deployer,
    service: &ResourceName,
    name: &ResourceName,
) -> Result<Option<String>> {
    let Some(instance) = d.store.instance(service, name).await? else {
        return Ok(None);
    };
    if instance.deployed.deployment_status.is_active() {
        return Err(Error::conflict(format!(
            "service instance {name} is deploying already"
        )));
    }
    let now = Timestamp::now();
    let id = new_id();
    let target = Target::ServiceInstance {
        service: service.clone(),
        instance: name.clone(),
    };
    let record = redeployment_of(
        &id,
        &instance.environment,
        target,
        &instance.deployed,
        instance.deployed.state.clone(),
        instance.created_at,
        now,
    );
    let mut next = instance.clone();
    next.deployed.begin(&id, DeploymentStatus::InProgress, now);
    next.rev = instance.rev + 1;
    d.store
        .change(DeploymentChange {
            instances: vec![InstanceWrite::Replace {
                instance: next,
                expected_rev: instance.rev,
            }],
            deployments: vec![DeploymentWrite::Create(record)],
            ..Default::default()
        })
        .await?;
    // Its service is not waiting on this deployment: however it ends, nothing else follows.
    d.launch(Workflow::Deploy, &id).await;
    Ok(Some(id))
}
