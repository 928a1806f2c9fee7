//! Environments: the API's use cases. Each deployment is recorded, then handed to the deploy or
//! delete workflow, whose steps the deployment kernel runs.

use crate::domain::names::Tags;
use serde::Deserialize;

use super::deploy::records::{deletion_of, deployment, fresh, new_id, redeployment_of};
use super::deploy::{ArnBuilder, Deployer, Loaded, request_cancel};
use crate::app::{Error, Result};
use crate::domain::bundle::BundleLayout;
use crate::domain::environment::{
    DeployedState, DeploymentStatus, DeploymentType, Environment, Target, target_version,
};
use crate::domain::names::{Arn, Description, ResourceName, Timestamp, VersionPart};
use crate::domain::schema::InputRole;
use crate::domain::spec::{Spec, keep_current_values, resolve_inputs};
use crate::domain::template::{TemplateKind, TemplateVersion, VersionNumber, VersionStatus};
use crate::ports::{
    DeploymentChange, DeploymentWrite, EnvironmentWrite, Page, PageRequest, VersionUsage, Workflow,
};

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
    #[serde(default)]
    pub tags: Tags,
    /// Members of Proton's model paved does not provision with yet: refused, never dropped.
    #[serde(flatten, default)]
    pub unsupported: Unsupported,
}

/// The members of CreateEnvironment and UpdateEnvironment for provisioning paved does not do
/// yet (self-managed Terraform through pull requests, CodeBuild provisioning, environment
/// account connections). A request naming one is refused with what paved does instead.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unsupported {
    provisioning_repository: Option<serde_json::Value>,
    codebuild_role_arn: Option<serde_json::Value>,
    environment_account_connection_id: Option<serde_json::Value>,
}

impl Unsupported {
    pub fn refuse(&self) -> Result<()> {
        let (member, what) = if self.provisioning_repository.is_some() {
            (
                "provisioningRepository",
                "self-managed provisioning (Terraform through pull requests)",
            )
        } else if self.codebuild_role_arn.is_some() {
            ("codebuildRoleArn", "CodeBuild provisioning")
        } else if self.environment_account_connection_id.is_some() {
            (
                "environmentAccountConnectionId",
                "environment account connections",
            )
        } else {
            return Ok(());
        };
        Err(Error::validation(format!(
            "{member}: paved does not support {what} yet; it provisions environments with CloudFormation under protonServiceRoleArn, in its own account"
        )))
    }
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
    #[serde(flatten, default)]
    pub unsupported: Unsupported,
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
        new.unsupported.refuse()?;
        let Some(role) = new.proton_service_role_arn.clone() else {
            return Err(Error::validation(
                "protonServiceRoleArn is required: paved provisions environments with CloudFormation under that role",
            ));
        };
        d.check_role("protonServiceRoleArn", &role)?;
        d.check_trust("protonServiceRoleArn", &role).await?;
        if let Some(role) = &new.component_role_arn {
            d.check_role("componentRoleArn", role)?;
            d.check_trust("componentRoleArn", role).await?;
        }
        let (_, number) = d
            .requested_version(
                TemplateKind::Environment,
                &new.template_name,
                new.template_major_version.0,
                new.template_minor_version.map(|m| m.0),
            )
            .await?;
        if let Some(existing) = d.store.environment(&new.name).await? {
            // A retry of the request that created it gets it; any other request is refused.
            return if existing.deployed.state.template_name == new.template_name
                && existing.deployed.state.version() == number
                && existing.deployed.state.spec == new.spec
                && existing.deployed.role_arn == role.as_str()
                && existing.component_role_arn.as_deref()
                    == new.component_role_arn.as_ref().map(Arn::as_str)
                && existing.description == new.description
                && existing.tags == new.tags
            {
                Ok(existing)
            } else {
                Err(Error::conflict(format!(
                    "environment {} already exists, created with other parameters",
                    new.name
                )))
            };
        }
        let (state, version) = self
            .resolve_state(&new.template_name, number, &new.spec, None)
            .await?;
        let now = Timestamp::now();
        let id = new_id();
        let environment = Environment {
            name: new.name.clone(),
            description: new.description,
            component_role_arn: new.component_role_arn.map(|arn| arn.as_str().to_string()),
            created_at: now,
            deployed: fresh(
                state.clone(),
                d.provisioners.default_engine().as_ref(),
                &["environment", new.name.as_str()],
                role.as_str().to_string(),
                Some(id.clone()),
                now,
            ),
            tags: new.tags.clone(),
            rev: 1,
        };
        let deployment = deployment(&id, &new.name, Target::Environment, state, now, now);
        // Rendered before anything is written: a spec that breaks the template writes nothing.
        let loaded = Loaded::Environment(environment.clone());
        loaded.render(d, &deployment).await?;
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
        d.announce(&loaded, None).await;
        self.start(Workflow::Deploy, environment, &id).await
    }

    async fn start(
        &self,
        workflow: Workflow,
        environment: Environment,
        id: &str,
    ) -> Result<Environment> {
        if self.deployer.launch(workflow, id).await.started() {
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
        if self
            .deployer
            .reconcile(&environment.deployed)
            .await
            .is_none()
        {
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
        update.unsupported.refuse()?;
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
            d.check_role("protonServiceRoleArn", role)?;
            d.check_trust("protonServiceRoleArn", role).await?;
            next.deployed.role_arn = role.as_str().to_string();
        }
        if let Some(role) = &update.component_role_arn {
            d.check_role("componentRoleArn", role)?;
            d.check_trust("componentRoleArn", role).await?;
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
        let (state, version) = self
            .resolve_state(
                &current.deployed.state.template_name,
                number,
                &spec,
                Some(&current.deployed.state),
            )
            .await?;
        let now = Timestamp::now();
        let id = new_id();
        next.deployed.state = state.clone();
        next.deployed.begin(&id, DeploymentStatus::InProgress, now);
        let deployment = redeployment_of(
            &id,
            &update.name,
            Target::Environment,
            &current.deployed,
            state,
            current.created_at,
            now,
        );
        let loaded = Loaded::Environment(next.clone());
        loaded.render(d, &deployment).await?;
        let mut usage = Vec::new();
        if number != current.deployed.state.version() {
            let old = d
                .version_of(
                    TemplateKind::Environment,
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
        d.announce(&loaded, Some(current.deployed.deployment_status))
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
        if let Some(refusal) = d.dependents_of(name).await? {
            return Err(Error::conflict(refusal));
        }
        let now = Timestamp::now();
        let id = new_id();
        let mut next = current.clone();
        next.deployed
            .begin(&id, DeploymentStatus::DeleteInProgress, now);
        next.rev = current.rev + 1;
        let deployment = deletion_of(
            &id,
            name,
            Target::Environment,
            &current.deployed,
            current.created_at,
            now,
        );
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
        d.announce(
            &Loaded::Environment(next.clone()),
            Some(current.deployed.deployment_status),
        )
        .await;
        self.start(Workflow::Delete, next, &id).await
    }

    #[tracing::instrument(skip_all, fields(environment = %name))]
    pub async fn cancel(&self, name: &ResourceName) -> Result<Environment> {
        let current = self.get(name).await?;
        let what = format!("environment {name}");
        match request_cancel(&self.deployer, Loaded::Environment(current), &what).await? {
            Loaded::Environment(environment) => Ok(environment),
            _ => unreachable!("request_cancel returns the target it was given"),
        }
    }
}

impl Environments {
    /// The state a spec asks for on a version, checked against its schema.
    async fn resolve_state(
        &self,
        template: &ResourceName,
        number: VersionNumber,
        spec_text: &str,
        current: Option<&DeployedState>,
    ) -> Result<(DeployedState, TemplateVersion)> {
        let version = self
            .deployer
            .version_of(TemplateKind::Environment, template, number)
            .await?;
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
}
