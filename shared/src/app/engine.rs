//! The deployment engine: the task steps the deploy and delete state machines run. Every step
//! is safe to run again (Step Functions retries them), and every way a deployment can end is
//! recorded: SUCCEEDED, CANCELLED, FAILED, DELETE_COMPLETE or DELETE_FAILED.

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::environments::{Deployer, status_name};
use super::targets::Loaded;
use crate::app::Error;
use crate::domain::environment::{Deployment, DeploymentStatus, Operation, Target};
use crate::domain::error::chain;
use crate::domain::names::Timestamp;
use crate::ports::{
    ChangeSetState, CloudError, DeploymentChange, DeploymentWrite, EnvironmentWrite, InstanceWrite,
    StackState, StoreError, VersionUsage,
};

/// A task's failure, named so that the state machines' Retry and Catch can match it.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Worth retrying: throttling, a transient AWS error, a concurrent write.
    #[error("{0}")]
    Retryable(String),
    #[error("{0}")]
    RenderFailed(String),
    #[error("{0}")]
    ChangeSetFailed(String),
    #[error("{0}")]
    StackFailed(String),
    /// A service's pipeline could not be started or followed.
    #[error("{0}")]
    PipelineFailed(String),
    /// The task's input names nothing paved knows.
    #[error("{0}")]
    InvalidTask(String),
}

impl TaskError {
    /// The stable name Step Functions matches on (`errorType`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Retryable(_) => "Retryable",
            Self::RenderFailed(_) => "RenderFailed",
            Self::ChangeSetFailed(_) => "ChangeSetFailed",
            Self::StackFailed(_) => "StackFailed",
            Self::PipelineFailed(_) => "PipelineFailed",
            Self::InvalidTask(_) => "InvalidTask",
        }
    }
}

impl From<Error> for TaskError {
    fn from(error: Error) -> Self {
        match error {
            Error::Validation(message) => Self::RenderFailed(message),
            Error::NotFound(message) => Self::InvalidTask(message),
            Error::Store(StoreError::ConditionFailed) | Error::Conflict(_) => {
                Self::Retryable("the deployment changed while this step ran".into())
            }
            other => Self::Retryable(chain(&other)),
        }
    }
}

impl From<StoreError> for TaskError {
    fn from(error: StoreError) -> Self {
        Error::from(error).into()
    }
}

impl From<CloudError> for TaskError {
    fn from(error: CloudError) -> Self {
        match error {
            CloudError::Rejected(message) => Self::ChangeSetFailed(message),
            other => Self::Retryable(chain(&other)),
        }
    }
}

impl From<crate::ports::PipelineError> for TaskError {
    fn from(error: crate::ports::PipelineError) -> Self {
        match error {
            crate::ports::PipelineError::NotFound(message)
            | crate::ports::PipelineError::Unavailable(message) => Self::PipelineFailed(message),
            other => Self::Retryable(chain(&other)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskInput {
    task: String,
    deployment_id: String,
    change_set_id: Option<String>,
    #[serde(default)]
    cancelled: bool,
    /// What a Catch caught: `{Error, Cause}`.
    error: Option<Json>,
}

pub struct Engine {
    d: Deployer,
}

impl Engine {
    pub fn new(deployer: Deployer) -> Self {
        Self { d: deployer }
    }

    /// Runs one task step of a state machine.
    #[tracing::instrument(skip_all, fields(task, deployment))]
    pub async fn run(&self, payload: Json) -> Result<Json, TaskError> {
        let task = payload
            .get("task")
            .and_then(Json::as_str)
            .unwrap_or_default();
        if super::pushes::TASKS.contains(&task) {
            return super::pushes::Pushes::new(self.d.clone())
                .run_task(payload)
                .await;
        }
        let input: TaskInput = serde_json::from_value(payload)
            .map_err(|e| TaskError::InvalidTask(format!("task input: {e}")))?;
        tracing::Span::current().record("task", input.task.as_str());
        tracing::Span::current().record("deployment", input.deployment_id.as_str());
        let id = input.deployment_id.as_str();
        let change_set = || {
            input
                .change_set_id
                .clone()
                .ok_or_else(|| TaskError::InvalidTask("changeSetId is missing".into()))
        };
        match input.task.as_str() {
            "prepare" => self.prepare(id).await,
            "checkChangeSet" => self.check_change_set(id, &change_set()?).await,
            "execute" => self.execute(id, &change_set()?).await,
            "checkStack" => self.check_stack(id).await,
            "finish" => self.finish(id, input.cancelled).await.map(|()| json!({})),
            "fail" => {
                let message = caught_message(input.error.as_ref());
                self.fail(id, &message).await?;
                Ok(json!({}))
            }
            "deleteStack" => self.delete_stack(id).await,
            "checkDeleted" => self.check_deleted(id).await,
            "finishDelete" => self.finish_delete(id).await.map(|()| json!({})),
            other => Err(TaskError::InvalidTask(format!("unknown task {other:?}"))),
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

    /// Renders the template and creates a change set, unless there is nothing to change or the
    /// stack must first settle (`wait`).
    async fn prepare(&self, id: &str) -> Result<Json, TaskError> {
        let (deployment, target) = self.load(id).await?;
        let waiting =
            json!({ "wait": true, "changes": false, "cancelled": false, "changeSetId": null });
        if deployment.cancel_requested {
            return Ok(
                json!({ "cancelled": true, "changes": false, "wait": false, "changeSetId": null }),
            );
        }
        let deployed = target.deployed();
        let stack = &deployed.stack_name;
        let exists = match self.d.stacks.state(stack).await? {
            StackState::Missing => false,
            StackState::InProgress(_) => return Ok(waiting),
            StackState::Complete => true,
            StackState::Failed { status, .. }
                if matches!(
                    status.as_str(),
                    "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" | "REVIEW_IN_PROGRESS"
                ) =>
            {
                // A stack whose creation failed (or never ran) cannot be updated: remove it,
                // then create it again.
                self.d.stacks.delete(stack, &deployed.role_arn).await?;
                return Ok(waiting);
            }
            StackState::Failed { status, reason } if status == "UPDATE_ROLLBACK_FAILED" => {
                return Err(TaskError::StackFailed(format!(
                    "stack {stack} is in UPDATE_ROLLBACK_FAILED ({reason}); continue its rollback in CloudFormation (ContinueUpdateRollback), then deploy again"
                )));
            }
            StackState::Failed { .. } => true,
        };
        let template = target.render(&self.d, &deployment).await?;
        if exists && self.d.stacks.template(stack).await?.as_deref() == Some(template.as_str()) {
            return Ok(
                json!({ "changes": false, "wait": false, "cancelled": false, "changeSetId": null }),
            );
        }
        let name = format!("paved-{id}");
        let change_set = self
            .d
            .stacks
            .create_change_set(stack, &name, &template, &deployed.role_arn, exists)
            .await?;
        Ok(json!({ "changes": true, "wait": false, "cancelled": false, "changeSetId": change_set }))
    }

    async fn check_change_set(&self, _id: &str, change_set: &str) -> Result<Json, TaskError> {
        match self.d.stacks.change_set(change_set).await? {
            ChangeSetState::Pending => Ok(json!({ "ready": false, "changes": true })),
            ChangeSetState::Ready => Ok(json!({ "ready": true, "changes": true })),
            ChangeSetState::NoChanges => {
                self.d.stacks.delete_change_set(change_set).await?;
                Ok(json!({ "ready": true, "changes": false }))
            }
            ChangeSetState::Failed(reason) => Err(TaskError::ChangeSetFailed(format!(
                "the change set failed: {reason}"
            ))),
        }
    }

    async fn execute(&self, id: &str, change_set: &str) -> Result<Json, TaskError> {
        let (deployment, _) = self.load(id).await?;
        if deployment.cancel_requested {
            self.d.stacks.delete_change_set(change_set).await?;
            return Ok(json!({ "cancelled": true }));
        }
        self.d.stacks.execute_change_set(change_set).await?;
        Ok(json!({ "cancelled": false }))
    }

    async fn check_stack(&self, id: &str) -> Result<Json, TaskError> {
        let (deployment, target) = self.load(id).await?;
        let stack = &target.deployed().stack_name;
        match self.d.stacks.state(stack).await? {
            StackState::InProgress(status) => {
                if deployment.cancel_requested
                    && status == "UPDATE_IN_PROGRESS"
                    && let Err(error) = self.d.stacks.cancel_update(stack).await
                {
                    // Already cancelling, or finished in between: the next check tells.
                    tracing::info!(error = %error, "cancel update not accepted");
                }
                Ok(json!({ "done": false, "cancelled": false }))
            }
            StackState::Complete => Ok(json!({ "done": true, "cancelled": false })),
            StackState::Failed { status, .. }
                if deployment.cancel_requested && status == "UPDATE_ROLLBACK_COMPLETE" =>
            {
                Ok(json!({ "done": true, "cancelled": true }))
            }
            StackState::Failed { status, reason } => Err(TaskError::StackFailed(format!(
                "stack {stack} ended in {status}: {reason}"
            ))),
            StackState::Missing => Err(TaskError::StackFailed(format!(
                "stack {stack} does not exist"
            ))),
        }
    }

    /// Records a deployment's success (or its cancellation), with the stack's outputs.
    pub async fn finish(&self, id: &str, cancelled: bool) -> Result<(), TaskError> {
        let (deployment, target) = self.load(id).await?;
        if !deployment.status.is_active() {
            return Ok(());
        }
        let now = Timestamp::now();
        let kind = target.template_kind();
        let mut next = target.clone();
        let mut done = deployment.clone();
        let mut usage = Vec::new();
        let stack = target.deployed().stack_name.clone();
        if !matches!(self.d.stacks.state(&stack).await?, StackState::Missing) {
            next.deployed_mut().outputs = self.d.stacks.outputs(&stack).await?;
            next.deployed_mut().resources = self.d.stacks.resources(&stack).await?;
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
        }
        done.completed_at = Some(now);
        done.last_modified_at = now;
        done.rev = deployment.rev + 1;
        let mut change = next.replace(&target);
        change.deployments.push(DeploymentWrite::Replace {
            deployment: done,
            expected_rev: deployment.rev,
        });
        change.usage = usage;
        self.d.store.change(change).await?;
        self.announce(&next, target.deployed().deployment_status)
            .await;
        if let (Loaded::Component(before), Loaded::Component(after)) = (&target, &next) {
            super::components::follow(&self.d, before, after).await;
        }
        self.settle_service(&deployment).await
    }

    /// Records a deployment's failure with its reason. Safe to call for a finished deployment.
    pub async fn fail(&self, id: &str, message: &str) -> Result<(), TaskError> {
        let (deployment, target) = self.load(id).await?;
        if !deployment.status.is_active() {
            return Ok(());
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
        done.completed_at = Some(now);
        done.last_modified_at = now;
        done.rev = deployment.rev + 1;
        let current_attempt = target.deployed().last_attempted_deployment_id.as_deref() == Some(id);
        let mut next = target.clone();
        let mut change = DeploymentChange::default();
        if current_attempt {
            next.deployed_mut().deployment_status = status;
            next.deployed_mut().deployment_status_message = Some(message.clone());
            change = next.replace(&target);
        }
        change.deployments.push(DeploymentWrite::Replace {
            deployment: done,
            expected_rev: deployment.rev,
        });
        self.d.store.change(change).await?;
        tracing::warn!(deployment = id, status = %status_name(status), %message, "deployment failed");
        if current_attempt {
            self.announce(&next, target.deployed().deployment_status)
                .await;
        }
        self.settle_service(&deployment).await
    }

    async fn announce(&self, target: &Loaded, previous: DeploymentStatus) {
        let change = target.status_change(&self.d, Some(previous));
        if let Err(error) = self.d.events.publish(change).await {
            // The status is recorded; the event is a notification on top of it.
            tracing::warn!(error = %error, "status change event not published");
        }
    }

    /// After an instance or pipeline deployment ends, moves its service on: the pipeline once
    /// every instance is deployed, then ACTIVE; CREATE_FAILED as soon as one fails.
    async fn settle_service(&self, deployment: &Deployment) -> Result<(), TaskError> {
        let service_name = match &deployment.target {
            Target::ServiceInstance { service, .. } | Target::ServicePipeline { service } => {
                service
            }
            _ => return Ok(()),
        };
        Box::pin(super::services::settle(&self.d, service_name))
            .await
            .map_err(TaskError::from)
    }

    async fn delete_stack(&self, id: &str) -> Result<Json, TaskError> {
        let (_, target) = self.load(id).await?;
        let deployed = target.deployed();
        let stack = &deployed.stack_name;
        if self.d.stacks.state(stack).await? == StackState::Missing {
            return Ok(json!({}));
        }
        if let Err(error) = self.d.stacks.delete(stack, &deployed.role_arn).await {
            // What counts is whether the stack is gone: an error with the stack gone (emulators
            // delete synchronously and report leftovers) is still a deletion.
            if self.d.stacks.state(stack).await? != StackState::Missing {
                return Err(match error {
                    CloudError::Rejected(reason) => TaskError::StackFailed(format!(
                        "stack {stack} could not be deleted: {reason}"
                    )),
                    other => other.into(),
                });
            }
            tracing::warn!(%stack, error = %error, "stack deleted with an error");
        }
        Ok(json!({}))
    }

    async fn check_deleted(&self, id: &str) -> Result<Json, TaskError> {
        let (_, target) = self.load(id).await?;
        let stack = &target.deployed().stack_name;
        match self.d.stacks.state(stack).await? {
            StackState::Missing => Ok(json!({ "done": true })),
            StackState::InProgress(_) | StackState::Complete => Ok(json!({ "done": false })),
            StackState::Failed { status, reason } => Err(TaskError::StackFailed(format!(
                "stack {stack} could not be deleted ({status}): {reason}"
            ))),
        }
    }

    async fn finish_delete(&self, id: &str) -> Result<(), TaskError> {
        let Some(deployment) = self.d.store.deployment(id).await? else {
            return Err(TaskError::InvalidTask(format!(
                "deployment {id} does not exist"
            )));
        };
        if !deployment.status.is_active() {
            return Ok(());
        }
        let Some(target) = Loaded::load(&self.d, &deployment).await? else {
            return Ok(());
        };
        let now = Timestamp::now();
        let mut done = deployment.clone();
        done.status = DeploymentStatus::DeleteComplete;
        done.completed_at = Some(now);
        done.last_modified_at = now;
        done.rev = deployment.rev + 1;
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
        let mut change = match &target {
            Loaded::Environment(environment) => DeploymentChange {
                environments: vec![EnvironmentWrite::Delete {
                    name: environment.name.clone(),
                    expected_rev: environment.rev,
                }],
                ..Default::default()
            },
            Loaded::Instance { instance, .. } => DeploymentChange {
                instances: vec![InstanceWrite::Delete {
                    service: instance.service.clone(),
                    name: instance.name.clone(),
                    expected_rev: instance.rev,
                }],
                ..Default::default()
            },
            // The pipeline's record stays on its service, DELETE_COMPLETE, until the service goes.
            Loaded::Pipeline { .. } => gone.replace(&target),
            Loaded::Component(component) => super::components::deletion(&self.d, component).await?,
        };
        change.deployments.push(DeploymentWrite::Replace {
            deployment: done,
            expected_rev: deployment.rev,
        });
        change.usage = usage;
        self.d.store.change(change).await?;
        self.announce(&gone, target.deployed().deployment_status)
            .await;
        if let Loaded::Component(component) = &target {
            super::components::follow_deletion(&self.d, component).await;
        }
        self.settle_service(&deployment).await
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
    use super::*;

    fn machine(name: &str) -> Json {
        let path = format!(
            "{}/../statemachines/{name}.asl.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).expect("state machine file"))
            .expect("valid JSON")
    }

    /// Every transition lands on a state, every Retry and Catch names an error that exists,
    /// and every task step is one the engine runs.
    #[test]
    fn the_state_machines_are_consistent_with_the_engine() {
        let names = [
            "Retryable",
            "RenderFailed",
            "ChangeSetFailed",
            "StackFailed",
            "PipelineFailed",
            "InvalidTask",
        ];
        let tasks = [
            "prepare",
            "checkChangeSet",
            "execute",
            "checkStack",
            "finish",
            "fail",
            "deleteStack",
            "checkDeleted",
            "finishDelete",
            "startPipeline",
            "checkPipeline",
            "finishRedeploy",
            "failRedeploy",
        ];
        for name in ["deploy", "delete", "redeploy"] {
            let definition = machine(name);
            let states = definition["States"].as_object().unwrap();
            assert!(states.contains_key(definition["StartAt"].as_str().unwrap()));
            for (state_name, state) in states {
                let mut targets: Vec<&str> = vec![];
                targets.extend(state.get("Next").and_then(Json::as_str));
                targets.extend(state.get("Default").and_then(Json::as_str));
                for list in ["Choices", "Catch"] {
                    for item in state
                        .get(list)
                        .and_then(Json::as_array)
                        .into_iter()
                        .flatten()
                    {
                        targets.extend(item.get("Next").and_then(Json::as_str));
                    }
                }
                for target in targets {
                    assert!(
                        states.contains_key(target),
                        "{name}: {state_name} goes to missing {target}"
                    );
                }
                for list in ["Retry", "Catch"] {
                    for item in state
                        .get(list)
                        .and_then(Json::as_array)
                        .into_iter()
                        .flatten()
                    {
                        for error in item["ErrorEquals"].as_array().unwrap() {
                            let error = error.as_str().unwrap();
                            assert!(
                                names.contains(&error)
                                    || error.starts_with("States.")
                                    || error.starts_with("Lambda."),
                                "{name}: {state_name} matches unknown error {error}"
                            );
                        }
                    }
                }
                if state["Type"] == "Task" {
                    let task = state["Parameters"]["Payload"]["task"].as_str().unwrap();
                    assert!(
                        tasks.contains(&task),
                        "{name}: {state_name} runs unknown task {task}"
                    );
                    assert!(
                        state.get("Retry").is_some(),
                        "{name}: {state_name} has no Retry"
                    );
                    let is_failure_recorder = task == "fail" || task == "failRedeploy";
                    assert_eq!(
                        state.get("Catch").is_none(),
                        is_failure_recorder,
                        "{name}: {state_name} Catch"
                    );
                }
            }
        }
    }
}
