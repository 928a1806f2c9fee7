//! The lifecycle every deployment shares: the template version it runs on, replayed client
//! tokens, the write that records it, handing it to its workflow, and reconciling one whose
//! workflow ended without recording a result.

use super::target::{Ended, Loaded};
use super::{Deployer, Steps};
use crate::app::{Error, Result};
use crate::domain::environment::{Deployed, DeploymentStatus, Operation};
use crate::domain::names::{Arn, ClientToken, ResourceName, Timestamp};
use crate::domain::roles::check_role;
use crate::domain::template::{Template, TemplateKind, TemplateVersion, VersionNumber};
use crate::ports::{DeploymentChange, ExecutionState, StoreError, TokenRecord, Workflow};

/// A deployment whose workflow has not been seen running this long after it was recorded is
/// taken as never started.
const START_GRACE_SECONDS: f64 = 120.0;

/// How long a deployment request's `clientToken` is remembered (Proton's 8 hours).
const TOKEN_SECONDS: u64 = 8 * 60 * 60;

/// Whether a recorded deployment's workflow started.
#[derive(Debug)]
pub enum Launch {
    Started,
    /// It did not; the deployment was recorded as failed (`None` if even that failed, in
    /// which case the next read records it).
    Failed(Option<Box<Ended>>),
}

impl Launch {
    pub fn started(&self) -> bool {
        matches!(self, Self::Started)
    }
}

/// A request's parameters as one canonical string, its `clientToken` left out.
pub fn fingerprint<T: serde::Serialize>(request: &T) -> String {
    let mut value = serde_json::to_value(request).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("clientToken");
    }
    value.to_string()
}

impl Deployer {
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

    /// The role a new service's pipeline deploys under: the account settings'
    /// `pipelineServiceRoleArn`, else the one paved was deployed with.
    pub async fn pipeline_role(&self) -> Result<Option<String>> {
        Ok(self
            .account
            .settings()
            .await?
            .pipeline_service_role_arn
            .or_else(|| self.pipeline_role_arn.clone()))
    }

    /// Whether a request that failed with `error` lost to its twin: a request with the same
    /// `clientToken` and parameters that ran at the same time and recorded first. The request
    /// then answers as the twin did, so concurrent retries all get one answer.
    pub async fn lost_to_twin(
        &self,
        scope: &str,
        token: Option<&ClientToken>,
        fingerprint: &str,
        error: &Error,
    ) -> Result<bool> {
        if token.is_none() || !matches!(error, Error::Conflict(_)) {
            return Ok(false);
        }
        Ok(self.replay(scope, token, fingerprint).await?.is_some())
    }

    /// What still runs in an environment (service instances, components: up to five of each),
    /// said as the refusal of its deletion; `None` if nothing does.
    pub async fn dependents_of(&self, environment: &ResourceName) -> Result<Option<String>> {
        let instances = self.store.instances_in(environment, 5).await?;
        if !instances.is_empty() {
            let names: Vec<String> = instances
                .iter()
                .map(|i| format!("{}/{}", i.service, i.name))
                .collect();
            return Ok(Some(format!(
                "environment {environment} still runs service instances ({}); delete them first",
                names.join(", ")
            )));
        }
        let components = self
            .store
            .components(
                Some(environment),
                crate::ports::PageRequest {
                    limit: Some(5),
                    cursor: None,
                },
            )
            .await?;
        if !components.items.is_empty() {
            let names: Vec<&str> = components.items.iter().map(|c| c.name.as_str()).collect();
            return Ok(Some(format!(
                "environment {environment} still has components ({}); delete them first",
                names.join(", ")
            )));
        }
        Ok(None)
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
    /// rather than waiting for a workflow that will never run.
    pub async fn launch(&self, workflow: Workflow, id: &str) -> Launch {
        let input = serde_json::json!({ "deploymentId": id });
        let Err(error) = self.workflows.start(workflow, id, input).await else {
            return Launch::Started;
        };
        tracing::error!(deployment = id, error = %error, "workflow not started");
        let failed = Steps::new(self.clone())
            .fail(
                id,
                "paved could not start the deployment workflow; retry the request",
            )
            .await;
        match failed {
            Ok(ended) => Launch::Failed(ended.map(Box::new)),
            Err(error) => {
                // Left as it is, the next read finds no workflow and records the failure.
                tracing::error!(deployment = id, error = %error, "failure not recorded");
                Launch::Failed(None)
            }
        }
    }

    /// Records as failed a deployment still marked running whose workflow ended (timed out,
    /// stopped, failed without recording) or never started, so nothing stays in progress.
    /// What it recorded, if anything.
    pub async fn reconcile(&self, deployed: &Deployed) -> Option<Ended> {
        let id = deployed.last_attempted_deployment_id.as_deref()?;
        if !deployed.deployment_status.is_active() {
            return None;
        }
        let Ok(Some(deployment)) = self.store.deployment(id).await else {
            return None;
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
            return None;
        }
        let message = "the deployment workflow ended without recording a result (it timed out, was stopped or never started); deploy again";
        match Steps::new(self.clone()).fail(id, message).await {
            Ok(ended) => ended,
            Err(error) => {
                tracing::warn!(deployment = %id, error = %error, "stale deployment not recorded as failed yet");
                None
            }
        }
    }

    /// Checks a role a request names (`member`) against the roles paved may deploy under.
    pub fn check_role(&self, member: &str, arn: &Arn) -> Result<()> {
        check_role(arn, &self.arns.account_id, &self.role_pattern)
            .map_err(|reason| Error::validation(format!("{member}: {reason}")))
    }

    /// Checks, where paved may read IAM, that CloudFormation can assume the role: it exists and
    /// its trust policy trusts `cloudformation.amazonaws.com`; the refusal says what to add.
    /// IAM that cannot be read (no permission, throttled) leaves the role unchecked: the
    /// deployment's own failure will name it.
    pub async fn check_trust(&self, member: &str, arn: &Arn) -> Result<()> {
        use crate::domain::roles::{CLOUDFORMATION, trust_statement, trusts};
        let Some(roles) = &self.roles else {
            return Ok(());
        };
        match roles.trust(arn.as_str()).await {
            Ok(crate::ports::RoleTrust::Missing) => Err(Error::validation(format!(
                "{member}: role {} does not exist in account {}",
                arn.as_str(),
                self.arns.account_id
            ))),
            Ok(crate::ports::RoleTrust::Policy(policy)) if !trusts(&policy, CLOUDFORMATION) => {
                Err(Error::validation(format!(
                    "{member}: CloudFormation cannot assume {}: its trust policy does not trust {CLOUDFORMATION} (roles written for Proton trust proton.amazonaws.com only); add this statement to its trust policy: {}",
                    arn.as_str(),
                    trust_statement(CLOUDFORMATION)
                )))
            }
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::warn!(role = arn.as_str(), error = %error, "the role's trust policy could not be read; not checked");
                Ok(())
            }
        }
    }

    /// Puts a target's status change on the bus. The status is recorded already; the event is
    /// a notification on top of it, so failing to publish it is logged, not returned.
    pub async fn announce(&self, target: &Loaded, previous: Option<DeploymentStatus>) {
        self.announce_for(target, previous, None).await
    }

    /// As [`Self::announce`], for a deployment started by `by` (a task carrying it on).
    /// Puts a service's status change on the bus (`AWS Proton Service Status Change`), as
    /// Proton did; a notification, so failing to publish it is logged, not returned.
    pub async fn announce_service(
        &self,
        service: &crate::domain::service::Service,
        previous: Option<crate::domain::service::ServiceStatus>,
    ) {
        let name = |status: crate::domain::service::ServiceStatus| {
            serde_json::to_value(status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let change = crate::ports::StatusChange {
            resource: "Service",
            name: service.name.to_string(),
            arn: self.arns.proton(&format!("service/{}", service.name)),
            status: name(service.status),
            previous_status: previous.map(name),
            initiated_by: crate::app::deploy::audit::current(),
        };
        if let Err(error) = self.events.publish(change).await {
            tracing::warn!(error = %error, "status change event not published");
        }
    }

    pub async fn announce_for(
        &self,
        target: &Loaded,
        previous: Option<DeploymentStatus>,
        by: Option<&crate::domain::access::Initiator>,
    ) {
        let mut change = target.status_change(self, previous);
        if let Some(by) = by {
            change.initiated_by = Some(by.clone());
        }
        if let Err(error) = self.events.publish(change).await {
            tracing::warn!(error = %error, "status change event not published");
        }
    }
}

impl Deployer {
    /// Deploys `target` to `state` (a template version and spec it ran before: a rollback),
    /// as the record of the deployment `to` names it; answers the new deployment's id. The
    /// state is rendered before anything is written, and the versions' in-use counts move with
    /// the target.
    pub async fn redeploy_to(
        &self,
        target: Loaded,
        state: crate::domain::environment::DeployedState,
        to: &crate::domain::environment::Deployment,
    ) -> Result<String> {
        use crate::domain::environment::DeploymentStatus as S;
        let current = target.deployed().clone();
        if current.deployment_status.is_active() {
            return Err(Error::conflict(format!(
                "{} has a deployment in progress; wait for it or cancel it",
                target.noun()
            )));
        }
        let now = Timestamp::now();
        let id = super::records::new_id();
        let mut next = target.clone();
        next.deployed_mut().state = state.clone();
        next.deployed_mut().begin(&id, S::InProgress, now);
        let record = super::records::redeployment_of(
            &id,
            &to.environment_name,
            to.target.clone(),
            &current,
            state.clone(),
            to.target_created_at,
            now,
        );
        next.render(self, &record).await?;
        let mut usage = Vec::new();
        if let Some(kind) = target.template_kind()
            && state.version() != current.state.version()
        {
            let old = self
                .version_of(kind, &current.state.template_name, current.state.version())
                .await?;
            let new = self
                .version_of(kind, &state.template_name, state.version())
                .await?;
            usage.push(crate::ports::VersionUsage {
                version: new,
                delta: 1,
            });
            usage.push(crate::ports::VersionUsage {
                version: old,
                delta: -1,
            });
        }
        let mut change = next.replace(&target);
        change
            .deployments
            .push(crate::ports::DeploymentWrite::Create(record));
        change.usage = usage;
        let noun = target.noun();
        self.write(change, || {
            format!("{noun} was changed by another request; read it again and retry")
        })
        .await?;
        self.announce(&next, Some(current.deployment_status)).await;
        self.launch(Workflow::Deploy, &id).await;
        Ok(id)
    }
}
