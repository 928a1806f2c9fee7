//! The task steps the deploy and delete state machines run, on whichever provisioning engine
//! the target records. Every step is safe to run again (Step Functions retries them), and every
//! way a deployment can end is recorded: SUCCEEDED, CANCELLED, FAILED, DELETE_COMPLETE or
//! DELETE_FAILED.

use std::sync::Arc;

use serde_json::{Value as Json, json};

use super::Deployer;
use super::target::{Ended, Loaded};
use super::task::{DeploymentTask, TaskError};
use crate::domain::adoption;
use crate::domain::environment::{Deployment, DeploymentStatus, Operation, status_name};
use crate::domain::names::Timestamp;
use crate::domain::provisioning::MAX_STACK_TAGS;
use crate::ports::{
    DeploymentChange, DeploymentWrite, Placement, PlanState, Planning, Progress, ProvisionError,
    Provisioner, Removal, VersionUsage,
};

pub struct Steps {
    d: Deployer,
    /// The longest wait between two checks (`pollSeconds`); the waits grow to it.
    poll: u64,
}

/// The default longest wait between checks (the SAM template's `PollSeconds`).
const POLL_SECONDS: u64 = 10;

/// How long to wait before the next check of a deployment that started `elapsed` seconds ago:
/// a quarter of that, from 1 s up to `poll`. A stack that settles in 3 s is seen in about 4,
/// and a long one is checked about every `poll` seconds; never more than a quarter of a
/// deployment's time is spent waiting past its end.
pub fn wait_seconds(elapsed: f64, poll: u64) -> u64 {
    ((elapsed.max(0.0) / 4.0).ceil() as u64).clamp(1, poll.max(1))
}

/// What a step answers the state machine, and the deployment it ended, if it ended one.
pub type StepResult = Result<(Json, Option<Ended>), TaskError>;

impl Steps {
    pub fn new(deployer: Deployer) -> Self {
        Self {
            d: deployer,
            poll: POLL_SECONDS,
        }
    }

    /// A step's answer with the wait before the next check.
    fn waited(&self, mut answer: Json, deployment: &Deployment, poll: u64) -> Json {
        let elapsed = Timestamp::now().0 - deployment.created_at.0;
        answer["waitSeconds"] = wait_seconds(elapsed, poll).into();
        answer
    }

    /// Runs one step.
    #[tracing::instrument(skip_all, fields(task = ?std::mem::discriminant(&task), deployment = task.deployment_id()))]
    pub async fn run(&self, task: DeploymentTask) -> StepResult {
        let poll = task.poll_seconds().unwrap_or(self.poll);
        let answer = |json: Json| Ok((json, None));
        match task {
            DeploymentTask::Plan { deployment_id, .. } => {
                answer(self.plan(&deployment_id, poll).await?)
            }
            DeploymentTask::CheckPlan {
                deployment_id,
                plan,
                ..
            } => answer(self.check_plan(&deployment_id, &plan, poll).await?),
            DeploymentTask::Apply {
                deployment_id,
                plan,
                ..
            } => answer(self.apply(&deployment_id, &plan, poll).await?),
            DeploymentTask::CheckProgress { deployment_id, .. } => {
                answer(self.check_progress(&deployment_id, poll).await?)
            }
            DeploymentTask::Finish {
                deployment_id,
                cancelled,
            } => Ok((json!({}), self.finish(&deployment_id, cancelled).await?)),
            DeploymentTask::Fail {
                deployment_id,
                error,
            } => {
                let message = caught_message(error.as_ref());
                Ok((json!({}), self.fail(&deployment_id, &message).await?))
            }
            DeploymentTask::Remove { deployment_id, .. } => {
                answer(self.remove(&deployment_id, poll).await?)
            }
            DeploymentTask::CheckRemoval { deployment_id, .. } => {
                answer(self.check_removal(&deployment_id, poll).await?)
            }
            DeploymentTask::FinishRemoval { deployment_id } => {
                Ok((json!({}), self.finish_removal(&deployment_id).await?))
            }
        }
    }

    async fn load(&self, id: &str) -> Result<(Deployment, Loaded), TaskError> {
        let deployment = self
            .d
            .store
            .deployment(id)
            .await?
            .ok_or_else(|| TaskError::InvalidTask(format!("deployment {id} does not exist")))?;
        let target = Loaded::load(&self.d, &deployment).await?.ok_or_else(|| {
            TaskError::InvalidTask(format!(
                "the {} of deployment {id} does not exist",
                deployment
                    .target
                    .resource_type()
                    .to_lowercase()
                    .replace('_', " ")
            ))
        })?;
        Ok((deployment, target))
    }

    /// The engine the target is provisioned by.
    fn engine(&self, target: &Loaded) -> Result<Arc<dyn Provisioner>, TaskError> {
        let engine = target.deployed().engine;
        self.d.provisioners.get(engine).cloned().ok_or_else(|| {
            TaskError::InvalidTask(format!(
                "no provisioning engine {} is configured",
                engine.wire_name()
            ))
        })
    }

    /// Renders the template and asks the engine to plan it, unless the deployment was
    /// cancelled, there is nothing to change, or the target must first settle.
    async fn plan(&self, id: &str, poll: u64) -> Result<Json, TaskError> {
        let (deployment, target) = self.load(id).await?;
        let outcome = |outcome: &str, plan: Option<String>| {
            self.waited(
                json!({ "outcome": outcome, "plan": plan }),
                &deployment,
                poll,
            )
        };
        if deployment.cancel_requested {
            return Ok(outcome("cancelled", None));
        }
        let engine = self.engine(&target)?;
        let rendered = target.render(&self.d, &deployment).await?;
        // Kept so that what any deployment deployed can be read back (GetDeploymentTemplate).
        let kept = super::records::rendered_key(id);
        if let Err(error) = self
            .d
            .bundles
            .keep(&kept, rendered.clone().into_bytes())
            .await
        {
            tracing::warn!(deployment = id, error = %error, "the rendered template was not kept");
        }
        let (tags, left_off) = target.stack_tags(&self.d);
        if !left_off.is_empty() {
            tracing::warn!(
                deployment = id,
                left_off = ?left_off,
                "the stack can carry only {MAX_STACK_TAGS} tags; these customer tags are left off it"
            );
        }
        Ok(
            match engine
                .plan(placement(&target), id, &rendered, &tags)
                .await?
            {
                Planning::Settling => outcome("settling", None),
                Planning::Unchanged => outcome("unchanged", None),
                Planning::Planned(plan) => outcome("planned", Some(plan)),
            },
        )
    }

    async fn check_plan(&self, id: &str, plan: &str, poll: u64) -> Result<Json, TaskError> {
        let (deployment, target) = self.load(id).await?;
        let engine = self.engine(&target)?;
        match engine.plan_state(plan).await? {
            PlanState::Pending => Ok(self.waited(
                json!({ "ready": false, "changes": true }),
                &deployment,
                poll,
            )),
            PlanState::Ready => {
                self.check_adoption(&deployment, &target, engine.as_ref(), plan)
                    .await?;
                Ok(self.waited(json!({ "ready": true, "changes": true }), &deployment, poll))
            }
            PlanState::Unchanged => Ok(self.waited(
                json!({ "ready": true, "changes": false }),
                &deployment,
                poll,
            )),
            PlanState::Failed(reason) => Err(TaskError::PlanFailed(reason)),
        }
    }

    /// The first deployment of an adopted target changes nothing by surprise: a plan that would
    /// replace or remove a resource of the stack is dropped, and the deployment fails saying
    /// what it would do and how to confirm exactly that plan. A plan that goes ahead is recorded
    /// on the deployment (its `statusMessage`), resource by resource.
    async fn check_adoption(
        &self,
        deployment: &Deployment,
        target: &Loaded,
        engine: &dyn Provisioner,
        plan: &str,
    ) -> Result<(), TaskError> {
        let Some(adoption) = &target.deployed().adoption else {
            return Ok(());
        };
        let actions = engine.actions(plan).await?;
        let stack = &target.deployed().stack_name;
        let described = adoption::describe(&actions);
        tracing::info!(deployment = %deployment.id, %stack, actions = %described, "first deployment of an adopted stack");
        if adoption::needs_confirmation(&actions) {
            let code = adoption::confirmation(&actions);
            if adoption.confirmed.as_deref() != Some(code.as_str()) {
                engine.discard(plan).await?;
                let arn = target.status_change(&self.d, None).arn;
                return Err(TaskError::PlanFailed(format!(
                    "{} runs on the stack {stack} paved adopted, and its first deployment would {described}. Nothing was changed. To apply exactly this plan, confirm it (`paved import confirm {arn} {code}`, or ConfirmAdoption with resourceArn {arn} and confirmation {code}), then deploy again.",
                    target.noun(),
                )));
            }
        }
        let message = format!("the first deployment of the adopted stack {stack}: {described}");
        if deployment.status_message.as_deref() != Some(message.as_str()) {
            let mut noted = deployment.clone();
            noted.status_message = Some(message);
            noted.rev = deployment.rev + 1;
            self.d
                .store
                .change(DeploymentChange {
                    deployments: vec![DeploymentWrite::Replace {
                        deployment: noted,
                        expected_rev: deployment.rev,
                    }],
                    ..Default::default()
                })
                .await?;
        }
        Ok(())
    }

    async fn apply(&self, id: &str, plan: &str, poll: u64) -> Result<Json, TaskError> {
        let (deployment, target) = self.load(id).await?;
        let engine = self.engine(&target)?;
        if deployment.cancel_requested {
            engine.discard(plan).await?;
            return Ok(self.waited(json!({ "cancelled": true }), &deployment, poll));
        }
        engine.apply(plan).await?;
        Ok(self.waited(json!({ "cancelled": false }), &deployment, poll))
    }

    async fn check_progress(&self, id: &str, poll: u64) -> Result<Json, TaskError> {
        let (deployment, target) = self.load(id).await?;
        let engine = self.engine(&target)?;
        match engine
            .progress(placement(&target), deployment.cancel_requested)
            .await?
        {
            Progress::Running => Ok(self.waited(
                json!({ "done": false, "cancelled": false }),
                &deployment,
                poll,
            )),
            Progress::Done => Ok(self.waited(
                json!({ "done": true, "cancelled": false }),
                &deployment,
                poll,
            )),
            Progress::Cancelled => Ok(self.waited(
                json!({ "done": true, "cancelled": true }),
                &deployment,
                poll,
            )),
            Progress::Failed(reason) => Err(TaskError::ProvisioningFailed(reason)),
        }
    }

    /// An end recorded already (a retried step): what follows may still have to run.
    async fn already_ended(&self, deployment: Deployment) -> Result<Option<Ended>, TaskError> {
        let after = Loaded::load(&self.d, &deployment).await?;
        Ok(Some(Ended {
            deployment,
            before: None,
            after,
        }))
    }

    /// Records a deployment's success (or its cancellation), with what the engine provisioned.
    pub async fn finish(&self, id: &str, cancelled: bool) -> Result<Option<Ended>, TaskError> {
        let (deployment, target) = self.load(id).await?;
        if !deployment.status.is_active() {
            return self.already_ended(deployment).await;
        }
        let engine = self.engine(&target)?;
        let now = Timestamp::now();
        let kind = target.template_kind();
        let mut next = target.clone();
        let mut done = deployment.clone();
        let mut usage = Vec::new();
        if let Some(provisioned) = engine.provisioned(placement(&target)).await? {
            next.deployed_mut().outputs = provisioned.outputs;
            next.deployed_mut().resources = provisioned.resources;
        }
        let deployed = next.deployed_mut();
        if cancelled {
            done.status = DeploymentStatus::Cancelled;
            done.status_message = Some("the deployment was cancelled".into());
            deployed.deployment_status = DeploymentStatus::Cancelled;
            deployed.deployment_status_message = done.status_message.clone();
            if let Some(initial) = &deployment.initial_state {
                let target_state = &deployment.target_state;
                if let Some(kind) = kind
                    && initial.version() != target_state.version()
                {
                    let old = self
                        .d
                        .version_of(kind, &initial.template_name, initial.version())
                        .await?;
                    let new = self
                        .d
                        .version_of(kind, &target_state.template_name, target_state.version())
                        .await?;
                    usage.push(VersionUsage {
                        version: old,
                        delta: 1,
                    });
                    usage.push(VersionUsage {
                        version: new,
                        delta: -1,
                    });
                }
                deployed.state = initial.clone();
            }
        } else {
            done.status = DeploymentStatus::Succeeded;
            deployed.deployment_status = DeploymentStatus::Succeeded;
            deployed.deployment_status_message = None;
            deployed.last_deployment_succeeded_at = now;
            deployed.last_succeeded_deployment_id = Some(id.to_string());
            // paved has now deployed it: an adopted stack is paved's like any other.
            deployed.adoption = None;
        }
        close(
            &mut done,
            &deployment,
            now,
            self.d.deployment_retention_days,
        );
        let change = next.replace(&target);
        self.record(change, &deployment, &done, usage).await?;
        self.d
            .announce_for(
                &next,
                Some(target.deployed().deployment_status),
                deployment.initiated_by.as_ref(),
            )
            .await;
        Ok(Some(Ended {
            deployment: done,
            before: Some(target),
            after: Some(next),
        }))
    }

    /// Records a deployment's failure with its reason. Safe to call for a finished deployment.
    pub async fn fail(&self, id: &str, message: &str) -> Result<Option<Ended>, TaskError> {
        let (deployment, target) = self.load(id).await?;
        if !deployment.status.is_active() {
            return self.already_ended(deployment).await;
        }
        let status = match deployment.operation {
            Operation::Deploy => DeploymentStatus::Failed,
            Operation::Delete => DeploymentStatus::DeleteFailed,
        };
        let now = Timestamp::now();
        let message: String = message.chars().take(4000).collect();
        let mut done = deployment.clone();
        done.status = status;
        done.status_message = Some(message.clone());
        close(
            &mut done,
            &deployment,
            now,
            self.d.deployment_retention_days,
        );
        let current_attempt = target.deployed().last_attempted_deployment_id.as_deref() == Some(id);
        let mut next = target.clone();
        let mut change = DeploymentChange::default();
        if current_attempt {
            next.deployed_mut().deployment_status = status;
            next.deployed_mut().deployment_status_message = Some(message.clone());
            change = next.replace(&target);
        }
        self.record(change, &deployment, &done, vec![]).await?;
        tracing::warn!(deployment = id, status = %status_name(status), %message, "deployment failed");
        if current_attempt {
            self.d
                .announce_for(
                    &next,
                    Some(target.deployed().deployment_status),
                    deployment.initiated_by.as_ref(),
                )
                .await;
        }
        Ok(Some(Ended {
            deployment: done,
            before: Some(target),
            after: Some(next),
        }))
    }

    async fn remove(&self, id: &str, poll: u64) -> Result<Json, TaskError> {
        let (deployment, target) = self.load(id).await?;
        // A create that committed while DeleteEnvironment was deciding (after it found the
        // environment empty, before its own write) is caught here: the deletion fails, and the
        // environment and what runs in it stay.
        if let Loaded::Environment(environment) = &target
            && let Some(refusal) = self.d.dependents_of(&environment.name).await?
        {
            return Err(TaskError::ProvisioningFailed(format!(
                "the environment was not deleted: {refusal}"
            )));
        }
        let engine = self.engine(&target)?;
        match engine.remove(placement(&target)).await {
            Ok(()) => Ok(self.waited(json!({}), &deployment, poll)),
            Err(ProvisionError::Rejected(reason)) => Err(TaskError::ProvisioningFailed(reason)),
            Err(other) => Err(other.into()),
        }
    }

    async fn check_removal(&self, id: &str, poll: u64) -> Result<Json, TaskError> {
        let (deployment, target) = self.load(id).await?;
        let engine = self.engine(&target)?;
        match engine.removal(placement(&target)).await? {
            Removal::Gone => Ok(self.waited(json!({ "done": true }), &deployment, poll)),
            Removal::Running => Ok(self.waited(json!({ "done": false }), &deployment, poll)),
            Removal::Failed(reason) => Err(TaskError::ProvisioningFailed(reason)),
        }
    }

    async fn finish_removal(&self, id: &str) -> Result<Option<Ended>, TaskError> {
        let Some(deployment) = self.d.store.deployment(id).await? else {
            return Err(TaskError::InvalidTask(format!(
                "deployment {id} does not exist"
            )));
        };
        if !deployment.status.is_active() {
            return self.already_ended(deployment).await;
        }
        let Some(target) = Loaded::load(&self.d, &deployment).await? else {
            return Ok(None);
        };
        let now = Timestamp::now();
        let mut done = deployment.clone();
        done.status = DeploymentStatus::DeleteComplete;
        close(
            &mut done,
            &deployment,
            now,
            self.d.deployment_retention_days,
        );
        let state = &target.deployed().state;
        let usage = match target.template_kind() {
            Some(kind) => match self
                .d
                .version_of(kind, &state.template_name, state.version())
                .await
            {
                Ok(version) => vec![VersionUsage { version, delta: -1 }],
                Err(_) => vec![],
            },
            None => vec![],
        };
        let mut gone = target.clone();
        gone.deployed_mut().deployment_status = DeploymentStatus::DeleteComplete;
        let change = target.removal(&self.d).await?;
        self.record(change, &deployment, &done, usage).await?;
        self.d
            .announce_for(
                &gone,
                Some(target.deployed().deployment_status),
                deployment.initiated_by.as_ref(),
            )
            .await;
        let after = Loaded::load(&self.d, &done).await?;
        Ok(Some(Ended {
            deployment: done,
            before: Some(target),
            after,
        }))
    }
}

impl Steps {
    /// Writes the end of a deployment with what it changes on its target, as one change.
    async fn record(
        &self,
        mut change: DeploymentChange,
        deployment: &Deployment,
        done: &Deployment,
        usage: Vec<VersionUsage>,
    ) -> Result<(), TaskError> {
        change.deployments.push(DeploymentWrite::Replace {
            deployment: done.clone(),
            expected_rev: deployment.rev,
        });
        change.usage = usage;
        self.d.store.change(change).await?;
        // The success this one supersedes is no longer what its target runs: it may go once
        // the retention has passed. Best effort: a record left without it is only kept.
        if matches!(
            done.status,
            DeploymentStatus::Succeeded | DeploymentStatus::DeleteComplete
        ) && let Some(previous) = &deployment.previous_succeeded_id
            && previous != &done.id
        {
            let at =
                done.last_modified_at.0 as u64 + self.d.deployment_retention_days * 24 * 60 * 60;
            if let Err(error) = self.d.store.expire_deployment(previous, at).await {
                tracing::warn!(deployment = %previous, error = %error, "the superseded deployment keeps no expiry");
            }
        }
        Ok(())
    }
}

/// Marks a deployment record as ended now; one that did not succeed may be dropped once
/// `retention_days` have passed (a success is kept while it is its target's last).
fn close(done: &mut Deployment, deployment: &Deployment, now: Timestamp, retention_days: u64) {
    done.completed_at = Some(now);
    done.last_modified_at = now;
    done.rev = deployment.rev + 1;
    done.expires_at = (done.status != DeploymentStatus::Succeeded)
        .then(|| now.0 as u64 + retention_days * 24 * 60 * 60);
}

fn placement(target: &Loaded) -> Placement<'_> {
    let deployed = target.deployed();
    Placement {
        name: &deployed.stack_name,
        role_arn: &deployed.role_arn,
    }
}

/// The message of what a Catch caught: a task's `errorMessage`, or Step Functions' own cause.
fn caught_message(error: Option<&Json>) -> String {
    let Some(error) = error else {
        return "the deployment failed".into();
    };
    let name = error.get("Error").and_then(Json::as_str).unwrap_or("Error");
    let cause = error.get("Cause").and_then(Json::as_str).unwrap_or("");
    let message = serde_json::from_str::<Json>(cause)
        .ok()
        .and_then(|c| {
            c.get("errorMessage")
                .and_then(Json::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| cause.to_string());
    match name {
        "States.Timeout" => format!(
            "a deployment step timed out{}",
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        ),
        _ if message.is_empty() => format!("the deployment failed ({name})"),
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::wait_seconds;

    #[test]
    fn waits_grow_with_the_deployment_from_one_second_to_the_poll_interval() {
        assert_eq!(wait_seconds(0.0, 10), 1);
        assert_eq!(wait_seconds(3.0, 10), 1);
        assert_eq!(wait_seconds(9.0, 10), 3);
        assert_eq!(wait_seconds(39.0, 10), 10);
        assert_eq!(wait_seconds(3_600.0, 10), 10);
        // A clock behind the record, or no interval: still a wait of a second.
        assert_eq!(wait_seconds(-5.0, 10), 1);
        assert_eq!(wait_seconds(100.0, 0), 1);
    }
}
