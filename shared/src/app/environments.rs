//! Environments: the API's use cases. Each deployment is recorded, then handed to the deploy or
//! delete workflow (see `engine`), which does the CloudFormation work.

use std::sync::Arc;

use serde::Deserialize;

use super::targets::Loaded;
use crate::domain::bundle::{self, Bundle, BundleLayout};
use crate::domain::environment::{
    Deployed, DeployedState, Deployment, DeploymentStatus, DeploymentType, Environment, Operation,
    Target, target_version,
};
use crate::domain::names::{Arn, ClientToken, Description, ResourceName, Timestamp, VersionPart};
use crate::domain::render;
use crate::domain::schema::InputRole;
use crate::domain::spec::{Spec, keep_current_values, resolve_inputs};
use crate::domain::template::{
    Template, TemplateKind, TemplateVersion, VersionNumber, VersionStatus,
};
use crate::app::{Error, Result};
use crate::ports::{
    BundleStore, CatalogStore, DeploymentChange, DeploymentStore, DeploymentWrite,
    EnvironmentWrite, Events, ExecutionState, Page, PageRequest, Pipelines, Stacks, StatusChange,
    StoreError, TokenRecord, VersionUsage, Workflow, Workflows,
};

/// A deployment whose workflow has not been seen running this long after it was recorded is
/// taken as never started.
const START_GRACE_SECONDS: f64 = 120.0;

/// How long a deployment request's `clientToken` is remembered (Proton's 8 hours).
const TOKEN_SECONDS: u64 = 8 * 60 * 60;

/// A request's parameters as one canonical string, its `clientToken` left out.
pub fn fingerprint<T: serde::Serialize>(request: &T) -> String {
    let mut value = serde_json::to_value(request).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("clientToken");
    }
    value.to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewEnvironment {
    pub name: ResourceName,
    pub template_name: ResourceName,
    pub template_major_version: VersionPart,
    pub template_minor_version: Option<VersionPart>,
    pub spec: String,
    pub proton_service_role_arn: Option<Arn>,
    pub component_role_arn: Option<Arn>,
    pub description: Option<Description>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentUpdate {
    pub name: ResourceName,
    pub deployment_type: DeploymentType,
    pub spec: Option<String>,
    pub template_major_version: Option<VersionPart>,
    pub template_minor_version: Option<VersionPart>,
    pub proton_service_role_arn: Option<Arn>,
    pub component_role_arn: Option<Arn>,
    pub description: Option<Description>,
}

/// Everything a deployment reads and writes.
#[derive(Clone)]
pub struct Deployer {
    pub catalog: Arc<dyn CatalogStore>,
    pub store: Arc<dyn DeploymentStore>,
    pub bundles: Arc<dyn BundleStore>,
    pub workflows: Arc<dyn Workflows>,
    pub events: Arc<dyn Events>,
    pub stacks: Arc<dyn Stacks>,
    pub pipelines: Arc<dyn Pipelines>,
    pub arns: ArnBuilder,
    /// The role service pipelines deploy under (`PAVED_PIPELINE_ROLE_ARN`).
    pub pipeline_role_arn: Option<String>,
    /// paved's Proton API as pipelines reach it (`PAVED_PROTON_ENDPOINT`); see `domain::pipeline`.
    pub proton_endpoint: Option<String>,
    /// Instances per service (`PAVED_INSTANCE_QUOTA`, default 20).
    pub instance_quota: usize,
}

#[derive(Debug, Clone)]
pub struct ArnBuilder {
    pub region: String,
    pub account_id: String,
}

impl ArnBuilder {
    pub fn proton(&self, resource: &str) -> String {
        format!(
            "arn:aws:proton:{}:{}:{resource}",
            self.region, self.account_id
        )
    }

    pub fn environment(&self, name: &str) -> String {
        self.proton(&format!("environment/{name}"))
    }

    pub fn deployment(&self, id: &str) -> String {
        self.proton(&format!("deployment/{id}"))
    }
}

pub fn stack_name(environment: &ResourceName) -> String {
    format!("paved-environment-{environment}")
}

impl Deployer {
    pub async fn version(
        &self,
        name: &ResourceName,
        number: VersionNumber,
    ) -> Result<TemplateVersion> {
        self.version_of(TemplateKind::Environment, name, number)
            .await
    }

    pub async fn version_of(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        number: VersionNumber,
    ) -> Result<TemplateVersion> {
        self.catalog
            .version(kind, name, number)
            .await?
            .ok_or_else(|| {
                Error::validation(format!("{} {name} has no version {number}", kind.noun()))
            })
    }

    /// Renders an environment's template for a state: the one CloudFormation file of its bundle.
    pub async fn render(
        &self,
        environment: &ResourceName,
        state: &DeployedState,
    ) -> Result<String> {
        let version = self.version(&state.template_name, state.version()).await?;
        let context = render::environment_context(environment.as_str(), &state.inputs);
        self.render_part(
            &version,
            BundleLayout::Environment,
            "infrastructure",
            context,
        )
        .await
    }

    /// Renders the one CloudFormation file of a folder of a version's kept bundle.
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

    /// The state a spec asks for on a version, checked against its schema.
    async fn resolve_state(
        &self,
        template: &ResourceName,
        number: VersionNumber,
        spec_text: &str,
        current: Option<&DeployedState>,
    ) -> Result<(DeployedState, TemplateVersion)> {
        let version = self.version(template, number).await?;
        if version.status != VersionStatus::Published {
            return Err(Error::validation(format!(
                "version {number} of environment template {template} is not published"
            )));
        }
        let Spec::Environment { inputs } = Spec::parse(spec_text).map_err(Error::Validation)?
        else {
            return Err(Error::validation(
                "spec: an environment takes `proton: EnvironmentSpec`",
            ));
        };
        let inputs = match current {
            Some(current) => {
                keep_current_values(&inputs, &current.inputs, "spec").map_err(Error::Validation)?
            }
            None => inputs,
        };
        let schema = BundleLayout::Environment
            .parse_schema(&version.schema)
            .map_err(Error::Validation)?;
        let inputs = resolve_inputs(schema.input(InputRole::Environment), &inputs, "spec")
            .map_err(Error::Validation)?;
        let state = DeployedState {
            template_name: template.clone(),
            major: number.major,
            minor: number.minor,
            spec: spec_text.to_string(),
            inputs,
            component: None,
        };
        Ok((state, version))
    }

    /// Records as failed a deployment still marked running whose workflow ended (timed out,
    /// stopped, failed without recording) or never started, so nothing stays in progress.
    /// `true` if it recorded one.
    pub async fn reconcile(&self, deployed: &Deployed) -> bool {
        let Some(id) = deployed.last_attempted_deployment_id.as_deref() else {
            return false;
        };
        if !deployed.deployment_status.is_active() {
            return false;
        }
        let Ok(Some(deployment)) = self.store.deployment(id).await else {
            return false;
        };
        let workflow = match deployment.operation {
            Operation::Deploy => Workflow::Deploy,
            Operation::Delete => Workflow::Delete,
        };
        let stale = match self.workflows.state(workflow, id).await {
            Ok(Some(ExecutionState::Running | ExecutionState::Succeeded)) => false,
            Ok(Some(ExecutionState::Ended)) => true,
            Ok(None) => Timestamp::now().0 - deployment.created_at.0 > START_GRACE_SECONDS,
            Err(error) => {
                tracing::warn!(deployment = %id, error = %error, "workflow state unknown");
                false
            }
        };
        if !stale {
            return false;
        }
        let message = "the deployment workflow ended without recording a result (it timed out, was stopped or never started); deploy again";
        match Box::pin(super::engine::Engine::new(self.clone()).fail(id, message)).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(deployment = %id, error = %error, "stale deployment not recorded as failed yet");
                false
            }
        }
    }

    /// The template a request names and the version it asks for: `major`, and `minor` or the
    /// major's recommended (highest published) minor.
    pub async fn requested_version(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        major: u64,
        minor: Option<u64>,
    ) -> Result<(Template, VersionNumber)> {
        let template = self.catalog.template(kind, name).await?.ok_or_else(|| {
            Error::validation(format!(
                "templateName: {} {name} does not exist",
                kind.noun()
            ))
        })?;
        let minor = match minor {
            Some(minor) => minor,
            None => template.versions.recommended_minor(major).ok_or_else(|| {
                Error::validation(format!(
                    "templateMajorVersion: {} {name} has no published minor version in major {major}",
                    kind.noun()
                ))
            })?,
        };
        Ok((template, VersionNumber { major, minor }))
    }

    /// What a request with `clientToken` did before: `Some(deployment id)` if the token was
    /// used with the same request (`fingerprint`) in the last 8 hours; a ValidationException if
    /// it was used with another.
    pub async fn replay(
        &self,
        scope: &str,
        token: Option<&ClientToken>,
        fingerprint: &str,
    ) -> Result<Option<String>> {
        let Some(token) = token else {
            return Ok(None);
        };
        let Some(record) = self.store.token(scope, token.as_str()).await? else {
            return Ok(None);
        };
        if record.expires_at < Timestamp::now().0 as u64 {
            return Ok(None);
        }
        if record.fingerprint != fingerprint {
            return Err(Error::validation(format!(
                "clientToken {:?} was already used with different parameters",
                token.as_str()
            )));
        }
        Ok(Some(record.deployment_id))
    }

    /// The record that lets a retry with the same token replay this request.
    pub fn token_record(
        scope: &str,
        token: Option<&ClientToken>,
        fingerprint: &str,
        deployment_id: &str,
    ) -> Option<TokenRecord> {
        token.map(|token| TokenRecord {
            scope: scope.to_string(),
            token: token.as_str().to_string(),
            fingerprint: fingerprint.to_string(),
            deployment_id: deployment_id.to_string(),
            expires_at: Timestamp::now().0 as u64 + TOKEN_SECONDS,
        })
    }

    /// Applies a change; if a condition fails (another request changed what it read), the
    /// caller gets a ConflictException saying `conflict()`.
    pub async fn write(
        &self,
        change: DeploymentChange,
        conflict: impl FnOnce() -> String,
    ) -> Result<()> {
        match self.store.change(change).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed) => Err(Error::conflict(conflict())),
            Err(other) => Err(other.into()),
        }
    }

    /// Hands a recorded deployment to its workflow. If that fails, the deployment fails now
    /// rather than waiting for a workflow that will never run; `false` says so.
    pub async fn launch(&self, workflow: Workflow, id: &str) -> bool {
        let input = serde_json::json!({ "deploymentId": id });
        let Err(error) = self.workflows.start(workflow, id, input).await else {
            return true;
        };
        tracing::error!(deployment = id, error = %error, "workflow not started");
        // Boxed: recording a failure can settle a service, which can launch its pipeline.
        let failed = Box::pin(super::engine::Engine::new(self.clone()).fail(
            id,
            "paved could not start the deployment workflow; retry the request",
        ))
        .await;
        if let Err(error) = failed {
            // Left as it is, the next read finds no workflow and records the failure.
            tracing::error!(deployment = id, error = %error, "failure not recorded");
        }
        false
    }

    pub async fn publish(&self, environment: &Environment, previous: Option<DeploymentStatus>) {
        let change = StatusChange {
            resource: "Environment",
            name: environment.name.to_string(),
            arn: self.arns.environment(environment.name.as_str()),
            status: status_name(environment.deployed.deployment_status),
            previous_status: previous.map(status_name),
        };
        if let Err(error) = self.events.publish(change).await {
            // The status is recorded; the event is a notification on top of it.
            tracing::warn!(environment = %environment.name, error = %error, "status change event not published");
        }
    }
}

pub fn status_name(status: DeploymentStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub struct Environments {
    deployer: Deployer,
}

impl Environments {
    pub fn new(deployer: Deployer) -> Self {
        Self { deployer }
    }

    pub fn arns(&self) -> &ArnBuilder {
        &self.deployer.arns
    }

    #[tracing::instrument(skip_all, fields(environment = %new.name))]
    pub async fn create(&self, new: NewEnvironment) -> Result<Environment> {
        let d = &self.deployer;
        let (_, number) = d
            .requested_version(
                TemplateKind::Environment,
                &new.template_name,
                new.template_major_version.0,
                new.template_minor_version.map(|m| m.0),
            )
            .await?;
        let Some(role) = new.proton_service_role_arn.clone() else {
            return Err(Error::validation(
                "protonServiceRoleArn is required: paved provisions environments with CloudFormation under that role",
            ));
        };
        if let Some(existing) = d.store.environment(&new.name).await? {
            return if existing.deployed.state.template_name == new.template_name
                && existing.deployed.state.version() == number
                && existing.deployed.state.spec == new.spec
            {
                Ok(existing)
            } else {
                Err(Error::conflict(format!(
                    "environment {} already exists",
                    new.name
                )))
            };
        }
        let (state, version) = d
            .resolve_state(&new.template_name, number, &new.spec, None)
            .await?;
        d.render(&new.name, &state).await?;

        let now = Timestamp::now();
        let id = uuid::Uuid::new_v4().to_string();
        let environment = Environment {
            name: new.name.clone(),
            description: new.description,
            component_role_arn: new.component_role_arn.map(|arn| arn.as_str().to_string()),
            created_at: now,
            deployed: Deployed {
                state: state.clone(),
                role_arn: role.as_str().to_string(),
                stack_name: stack_name(&new.name),
                deployment_status: DeploymentStatus::InProgress,
                deployment_status_message: None,
                last_deployment_attempted_at: now,
                last_deployment_succeeded_at: now,
                last_attempted_deployment_id: Some(id.clone()),
                last_succeeded_deployment_id: None,
                outputs: vec![],
                resources: vec![],
            },
            rev: 1,
        };
        let deployment =
            new_deployment(&id, &environment, Operation::Deploy, None, state, now, None);
        let change = DeploymentChange {
            environments: vec![EnvironmentWrite::Create(environment.clone())],
            deployments: vec![DeploymentWrite::Create(deployment)],
            usage: vec![VersionUsage { version, delta: 1 }],
            ..Default::default()
        };
        d.write(change, || {
            format!(
                "environment {} was created, or its template version changed, by another request",
                new.name
            )
        })
        .await?;
        d.publish(&environment, None).await;
        self.start(Workflow::Deploy, environment, &id).await
    }

    async fn start(
        &self,
        workflow: Workflow,
        environment: Environment,
        id: &str,
    ) -> Result<Environment> {
        if self.deployer.launch(workflow, id).await {
            Ok(environment)
        } else {
            self.load(&environment.name).await
        }
    }

    pub async fn get(&self, name: &ResourceName) -> Result<Environment> {
        let environment = self.load(name).await?;
        self.reconcile(environment).await
    }

    async fn load(&self, name: &ResourceName) -> Result<Environment> {
        self.deployer
            .store
            .environment(name)
            .await?
            .ok_or_else(|| Error::not_found(format!("environment {name} does not exist")))
    }

    /// A deployment still marked running whose workflow ended (timed out, aborted, failed
    /// without recording) or never started is recorded as failed, so nothing stays in progress.
    async fn reconcile(&self, environment: Environment) -> Result<Environment> {
        if !self.deployer.reconcile(&environment.deployed).await {
            return Ok(environment);
        }
        match self.deployer.store.environment(&environment.name).await? {
            Some(updated) => Ok(updated),
            None => Err(Error::not_found(format!(
                "environment {} does not exist",
                environment.name
            ))),
        }
    }

    pub async fn list(&self, page: PageRequest) -> Result<Page<Environment>> {
        Ok(self.deployer.store.environments(page).await?)
    }

    #[tracing::instrument(skip_all, fields(environment = %update.name))]
    pub async fn update(&self, update: EnvironmentUpdate) -> Result<Environment> {
        let d = &self.deployer;
        let current = self.get(&update.name).await?;
        if current.deployed.deployment_status.is_active() {
            return Err(Error::conflict(format!(
                "environment {} has a deployment in progress ({}); wait for it or cancel it",
                update.name,
                current
                    .deployed
                    .last_attempted_deployment_id
                    .as_deref()
                    .unwrap_or("unknown")
            )));
        }
        let mut next = current.clone();
        if let Some(description) = update.description.clone() {
            next.description = Some(description);
        }
        if let Some(role) = &update.proton_service_role_arn {
            next.deployed.role_arn = role.as_str().to_string();
        }
        if let Some(role) = &update.component_role_arn {
            next.component_role_arn = Some(role.as_str().to_string());
        }
        next.rev = current.rev + 1;
        if update.deployment_type == DeploymentType::None {
            if update.spec.is_some()
                || update.template_major_version.is_some()
                || update.template_minor_version.is_some()
            {
                return Err(Error::validation(
                    "deploymentType NONE changes metadata only; use CURRENT_VERSION, MINOR_VERSION or MAJOR_VERSION to deploy a spec or version",
                ));
            }
            d.store
                .change(DeploymentChange {
                    environments: vec![EnvironmentWrite::Replace {
                        environment: next.clone(),
                        expected_rev: current.rev,
                    }],
                    ..Default::default()
                })
                .await?;
            return Ok(next);
        }
        let template = d
            .catalog
            .template(
                TemplateKind::Environment,
                &current.deployed.state.template_name,
            )
            .await?
            .ok_or_else(|| {
                Error::validation(format!(
                    "environment template {} no longer exists",
                    current.deployed.state.template_name
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
        let spec = update
            .spec
            .clone()
            .unwrap_or_else(|| current.deployed.state.spec.clone());
        let (state, version) = d
            .resolve_state(
                &current.deployed.state.template_name,
                number,
                &spec,
                Some(&current.deployed.state),
            )
            .await?;
        d.render(&update.name, &state).await?;

        let now = Timestamp::now();
        let id = uuid::Uuid::new_v4().to_string();
        next.deployed.state = state.clone();
        next.deployed.begin(&id, DeploymentStatus::InProgress, now);
        let deployment = new_deployment(
            &id,
            &next,
            Operation::Deploy,
            Some(current.deployed.state.clone()),
            state,
            now,
            current.deployed.last_succeeded_deployment_id.clone(),
        );
        let mut usage = Vec::new();
        if number != current.deployed.state.version() {
            let old = d
                .version(
                    &current.deployed.state.template_name,
                    current.deployed.state.version(),
                )
                .await?;
            usage.push(VersionUsage { version, delta: 1 });
            usage.push(VersionUsage {
                version: old,
                delta: -1,
            });
        }
        d.store
            .change(DeploymentChange {
                environments: vec![EnvironmentWrite::Replace {
                    environment: next.clone(),
                    expected_rev: current.rev,
                }],
                deployments: vec![DeploymentWrite::Create(deployment)],
                usage,
                ..Default::default()
            })
            .await?;
        d.publish(&next, Some(current.deployed.deployment_status))
            .await;
        self.start(Workflow::Deploy, next, &id).await
    }

    #[tracing::instrument(skip_all, fields(environment = %name))]
    pub async fn delete(&self, name: &ResourceName) -> Result<Environment> {
        let d = &self.deployer;
        let current = self.get(name).await?;
        match current.deployed.deployment_status {
            DeploymentStatus::DeleteInProgress => return Ok(current),
            status if status.is_active() => {
                return Err(Error::conflict(format!(
                    "environment {name} has a deployment in progress; wait for it or cancel it first"
                )));
            }
            _ => {}
        }
        let instances = d.store.instances_in(name, 5).await?;
        if !instances.is_empty() {
            let names: Vec<String> = instances
                .iter()
                .map(|i| format!("{}/{}", i.service, i.name))
                .collect();
            return Err(Error::conflict(format!(
                "environment {name} still runs service instances ({}); delete them first",
                names.join(", ")
            )));
        }
        let components = d
            .store
            .components(
                Some(name),
                PageRequest {
                    limit: Some(5),
                    cursor: None,
                },
            )
            .await?;
        if !components.items.is_empty() {
            let names: Vec<&str> = components.items.iter().map(|c| c.name.as_str()).collect();
            return Err(Error::conflict(format!(
                "environment {name} still has components ({}); delete them first",
                names.join(", ")
            )));
        }
        let now = Timestamp::now();
        let id = uuid::Uuid::new_v4().to_string();
        let mut next = current.clone();
        next.deployed
            .begin(&id, DeploymentStatus::DeleteInProgress, now);
        next.rev = current.rev + 1;
        let mut deployment = new_deployment(
            &id,
            &next,
            Operation::Delete,
            Some(current.deployed.state.clone()),
            current.deployed.state.clone(),
            now,
            current.deployed.last_succeeded_deployment_id.clone(),
        );
        deployment.status = DeploymentStatus::DeleteInProgress;
        d.store
            .change(DeploymentChange {
                environments: vec![EnvironmentWrite::Replace {
                    environment: next.clone(),
                    expected_rev: current.rev,
                }],
                deployments: vec![DeploymentWrite::Create(deployment)],
                usage: vec![],
                ..Default::default()
            })
            .await?;
        d.publish(&next, Some(current.deployed.deployment_status))
            .await;
        self.start(Workflow::Delete, next, &id).await
    }

    #[tracing::instrument(skip_all, fields(environment = %name))]
    pub async fn cancel(&self, name: &ResourceName) -> Result<Environment> {
        let current = self.get(name).await?;
        let what = format!("environment {name}");
        match super::targets::request_cancel(&self.deployer, Loaded::Environment(current), &what)
            .await?
        {
            Loaded::Environment(environment) => Ok(environment),
            _ => unreachable!("request_cancel returns the target it was given"),
        }
    }

    pub async fn deployment(&self, id: &str) -> Result<Deployment> {
        let deployment = self
            .deployer
            .store
            .deployment(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("deployment {id} does not exist")))?;
        if deployment.status.is_active()
            && let Ok(environment) = self.load(&deployment.environment_name).await
        {
            self.reconcile(environment).await?;
            if let Some(fresh) = self.deployer.store.deployment(id).await? {
                return Ok(fresh);
            }
        }
        Ok(deployment)
    }

    pub async fn deployments(
        &self,
        environment: Option<&ResourceName>,
        page: PageRequest,
    ) -> Result<Page<Deployment>> {
        Ok(self.deployer.store.deployments(environment, page).await?)
    }

    pub async fn delete_deployment(&self, id: &str) -> Result<Deployment> {
        let deployment = self.deployment(id).await?;
        if deployment.status.is_active() {
            return Err(Error::conflict(format!("deployment {id} is still running")));
        }
        if let Ok(environment) = self.load(&deployment.environment_name).await
            && (environment.deployed.last_attempted_deployment_id.as_deref() == Some(id)
                || environment.deployed.last_succeeded_deployment_id.as_deref() == Some(id))
        {
            return Err(Error::conflict(format!(
                "deployment {id} is the latest of environment {}; only older deployments can be deleted",
                environment.name
            )));
        }
        self.deployer
            .store
            .change(DeploymentChange {
                deployments: vec![DeploymentWrite::Delete {
                    id: id.to_string(),
                    expected_rev: deployment.rev,
                }],
                ..Default::default()
            })
            .await?;
        Ok(deployment)
    }
}

fn new_deployment(
    id: &str,
    environment: &Environment,
    operation: Operation,
    initial: Option<DeployedState>,
    target: DeployedState,
    now: Timestamp,
    previous_succeeded_id: Option<String>,
) -> Deployment {
    Deployment {
        id: id.to_string(),
        environment_name: environment.name.clone(),
        target: Target::Environment,
        operation,
        status: DeploymentStatus::InProgress,
        status_message: None,
        initial_state: initial,
        target_state: target,
        target_created_at: environment.created_at,
        created_at: now,
        last_modified_at: now,
        completed_at: None,
        cancel_requested: false,
        previous_succeeded_id,
        rev: 1,
    }
}
