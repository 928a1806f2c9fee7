//! Pushes: a push to a branch starts the pipeline of every service that tracks that branch, as
//! a Step Functions execution (`statemachines/redeploy.asl.json`) per service, so each
//! redeploy is visible next to the deployments it causes. Its steps run here.
//!
//! Policy for a burst of pushes (coalesce): a service runs at most one redeploy at a time.
//! A push that arrives while one runs waits as the service's pending push, replacing any push
//! that waited before it; when the running redeploy ends, one more starts for the pending
//! (newest) commit. CodePipeline builds the branch as it is then, so nothing pushed is skipped.

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::deploy::{Deployer, TaskError};
use crate::app::{Error, Result};
use crate::domain::names::{ResourceName, Timestamp};
use crate::domain::push::{Admission, Push, ReceivedPush, RunStatus, from_event};
use crate::domain::service::{Service, ServiceStatus};
use crate::ports::{
    DeploymentChange, ExecutionState, PipelineExecution, PipelineRef, ServiceWrite, StageState,
    StoreError, Workflow,
};

/// The steps of the redeploy state machine (`statemachines/redeploy.asl.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "task", rename_all = "camelCase")]
pub enum RedeployTask {
    StartPipeline(RedeployInput),
    CheckPipeline(RedeployInput),
    FinishRedeploy(RedeployInput),
    FailRedeploy(RedeployInput),
}

/// What the redeploy state machine carries from step to step.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedeployInput {
    service: ResourceName,
    execution: String,
    push: Option<Push>,
    received_at: Option<f64>,
    pipeline_execution_id: Option<String>,
    status: Option<String>,
    error: Option<Json>,
}

/// A Step Functions execution name for a push's redeploy of a service: the commit (readable in
/// the console) and a hash that makes it unique per service and event, so a duplicate delivery
/// of one event starts nothing new.
pub fn execution_name(commit: &str, service: &str, cause: &str) -> String {
    let hash = format!("{service}\n{cause}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let commit: String = commit.chars().take(12).collect();
    format!("push-{commit}-{hash:016x}")
}

/// The CodePipeline of a service: the one its pipeline stack reported.
pub fn pipeline_ref(service: &Service) -> Option<PipelineRef> {
    let pipeline = service.pipeline.as_ref()?;
    let name = pipeline
        .resources
        .iter()
        .find(|r| r.resource_type.as_deref() == Some("AWS::CodePipeline::Pipeline"))
        .map(|r| r.identifier.clone());
    Some(PipelineRef {
        name,
        stack: pipeline.stack_name.clone(),
    })
}

/// What paved knows of a service's pipeline: its redeploys, the pipeline's latest executions
/// and its stage states (when CodePipeline can tell).
#[derive(Debug, Clone)]
pub struct PipelineStateView {
    pub service: Service,
    pub pipeline: Option<PipelineRef>,
    pub executions: Result<Vec<PipelineExecution>, String>,
    pub stages: Result<Vec<StageState>, String>,
}

pub struct Pushes {
    d: Deployer,
}

impl Pushes {
    pub fn new(deployer: Deployer) -> Self {
        Self { d: deployer }
    }

    /// A push from the bus (`event_id` names the event): starts one redeploy per service that
    /// tracks the pushed branch. A push no service tracks is logged and dropped.
    #[tracing::instrument(skip_all, fields(repository = %push.repository_id, branch = %push.branch, commit = %push.commit_id))]
    pub async fn receive(&self, push: &Push, event_id: &str) -> Result<Vec<String>> {
        let services = self
            .d
            .store
            .services_tracking(&push.repository_id, &push.branch)
            .await?;
        if services.is_empty() {
            tracing::info!("no service tracks this branch; push dropped");
            return Ok(vec![]);
        }
        let mut started = Vec::new();
        for service in services {
            if matches!(
                service.status,
                ServiceStatus::DeleteInProgress | ServiceStatus::CreateInProgress
            ) || pipeline_ref(&service).is_none()
            {
                tracing::info!(service = %service.name, status = ?service.status, "service has no pipeline to start now; push dropped for it");
                continue;
            }
            let execution = execution_name(&push.commit_id, service.name.as_str(), event_id);
            self.start_execution(&service.name, &execution, push, Timestamp::now())
                .await
                .map_err(|e| Error::Throttled(format!("redeploy not started: {e}")))?;
            started.push(execution);
        }
        Ok(started)
    }

    /// An EventBridge event from a push rule: a branch push is received (see `receive`);
    /// anything else (a tag, a deleted branch, a malformed event) is logged and dropped, as
    /// retrying it would not make it a push. An error means the push should be delivered again.
    pub async fn handle_event(&self, event: &Json) -> Result<Vec<String>> {
        let id = event.get("id").and_then(Json::as_str).unwrap_or_default();
        match from_event(event) {
            Ok(Some(push)) => self.receive(&push, id).await,
            Ok(None) => {
                tracing::info!(event = %id, "not a branch push; dropped");
                Ok(vec![])
            }
            Err(reason) => {
                tracing::warn!(event = %id, %reason, "event refused");
                Ok(vec![])
            }
        }
    }

    async fn start_execution(
        &self,
        service: &ResourceName,
        execution: &str,
        push: &Push,
        received_at: Timestamp,
    ) -> std::result::Result<(), crate::ports::BoxError> {
        let input = json!({
            "service": service,
            "execution": execution,
            "push": push,
            "receivedAt": received_at.0,
        });
        self.d
            .workflows
            .start(Workflow::Redeploy, execution, input)
            .await?;
        tracing::info!(%service, %execution, "redeploy started");
        Ok(())
    }

    /// Runs one step of the redeploy state machine.
    pub async fn run_task(&self, task: RedeployTask) -> std::result::Result<Json, TaskError> {
        match task {
            RedeployTask::StartPipeline(input) => self.start_pipeline(&input).await,
            RedeployTask::CheckPipeline(input) => self.check_pipeline(&input).await,
            RedeployTask::FinishRedeploy(input) => {
                let status = match input.status.as_deref() {
                    Some("Succeeded") => RunStatus::Succeeded,
                    Some("Stopped" | "Stopping") => RunStatus::Stopped,
                    Some("Superseded") => RunStatus::Superseded,
                    _ => RunStatus::Failed,
                };
                let message = (status != RunStatus::Succeeded).then(|| {
                    format!(
                        "the pipeline execution ended {}",
                        input.status.as_deref().unwrap_or("without a status")
                    )
                });
                self.finish(&input, status, message).await?;
                Ok(json!({}))
            }
            RedeployTask::FailRedeploy(input) => {
                let message = input
                    .error
                    .as_ref()
                    .map(caught)
                    .unwrap_or_else(|| "the redeploy failed".into());
                self.finish(&input, RunStatus::Failed, Some(message))
                    .await?;
                Ok(json!({}))
            }
        }
    }

    /// Applies `change` to a service, re-reading it when another writer got there first.
    async fn update_service<T>(
        &self,
        name: &ResourceName,
        mut change: impl FnMut(&mut Service) -> std::result::Result<T, TaskError>,
    ) -> std::result::Result<(T, Service), TaskError> {
        for _ in 0..5 {
            let service =
                self.d.store.service(name).await?.ok_or_else(|| {
                    TaskError::InvalidTask(format!("service {name} does not exist"))
                })?;
            let mut next = service.clone();
            let outcome = change(&mut next)?;
            next.rev = service.rev + 1;
            let write = DeploymentChange {
                services: vec![ServiceWrite::Replace {
                    service: next.clone(),
                    expected_rev: service.rev,
                }],
                ..Default::default()
            };
            match self.d.store.change(write).await {
                Ok(()) => return Ok((outcome, next)),
                Err(StoreError::ConditionFailed) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(TaskError::Retryable(format!(
            "service {name} kept changing; retrying"
        )))
    }

    /// Admits the push by the coalescing policy and, if it runs now, starts the pipeline.
    async fn start_pipeline(&self, input: &RedeployInput) -> std::result::Result<Json, TaskError> {
        let push = input
            .push
            .clone()
            .ok_or_else(|| TaskError::InvalidTask("push is missing".into()))?;
        let received = ReceivedPush {
            commit_id: push.commit_id.clone(),
            source: push.source,
            received_at: Timestamp(input.received_at.unwrap_or_else(|| Timestamp::now().0)),
        };
        let execution = input.execution.clone();
        self.clear_stale_run(&input.service, &execution).await?;
        let (admission, service) = self
            .update_service(&input.service, |service| {
                let mine = service
                    .redeploys
                    .running
                    .as_ref()
                    .is_some_and(|r| r.execution == execution);
                if mine {
                    // A retried step: the push was admitted before.
                    return Ok(Admission::Start);
                }
                Ok(service
                    .redeploys
                    .admit(received.clone(), &execution, Timestamp::now()))
            })
            .await?;
        match admission {
            Admission::Start => {}
            Admission::Queued { replaced } => {
                tracing::info!(service = %input.service, replaced = ?replaced.map(|r| r.commit_id), "push queued behind the running redeploy");
                return Ok(
                    json!({ "started": false, "queued": true, "pipelineExecutionId": null }),
                );
            }
            Admission::Superseded => {
                tracing::info!(service = %input.service, commit = %received.commit_id, "push superseded by a newer one");
                return Ok(
                    json!({ "started": false, "queued": false, "pipelineExecutionId": null }),
                );
            }
            Admission::Duplicate => {
                return Ok(
                    json!({ "started": false, "queued": false, "pipelineExecutionId": null }),
                );
            }
        }
        let running = service.redeploys.running.as_ref();
        if let Some(id) = running.and_then(|r| r.pipeline_execution_id.clone()) {
            return Ok(json!({ "started": true, "queued": false, "pipelineExecutionId": id }));
        }
        let pipeline = pipeline_ref(&service).ok_or_else(|| {
            TaskError::PipelineFailed(format!(
                "service {} has no pipeline paved provisioned",
                service.name
            ))
        })?;
        // The execution name is the request token: a retried step starts no second run.
        let id = self.d.pipelines.start(&pipeline, &execution).await?;
        let recorded = id.clone();
        self.update_service(&input.service, |service| {
            if let Some(running) = service.redeploys.running.as_mut()
                && running.execution == execution
            {
                running.pipeline_execution_id = Some(recorded.clone());
            }
            Ok(())
        })
        .await?;
        tracing::info!(service = %input.service, pipeline_execution = %id, "pipeline started");
        Ok(json!({ "started": true, "queued": false, "pipelineExecutionId": id }))
    }

    /// A redeploy recorded as running whose execution has ended (timed out, stopped) would
    /// hold every later push back: it is recorded as failed, and its pending push started.
    async fn clear_stale_run(
        &self,
        service: &ResourceName,
        execution: &str,
    ) -> std::result::Result<(), TaskError> {
        let Some(stored) = self.d.store.service(service).await? else {
            return Ok(());
        };
        let Some(running) = stored
            .redeploys
            .running
            .filter(|r| r.execution != execution)
        else {
            return Ok(());
        };
        let state = self
            .d
            .workflows
            .state(Workflow::Redeploy, &running.execution)
            .await
            .map_err(|e| TaskError::Retryable(format!("redeploy state unknown: {e}")))?;
        if matches!(state, Some(ExecutionState::Running)) {
            return Ok(());
        }
        tracing::warn!(%service, execution = %running.execution, "a redeploy ended without recording its result");
        let stale = RedeployInput {
            service: service.clone(),
            execution: running.execution.clone(),
            push: None,
            received_at: None,
            pipeline_execution_id: None,
            status: None,
            error: None,
        };
        self.finish(
            &stale,
            RunStatus::Failed,
            Some("the redeploy's execution ended without recording a result".into()),
        )
        .await
    }

    async fn check_pipeline(&self, input: &RedeployInput) -> std::result::Result<Json, TaskError> {
        let id = input
            .pipeline_execution_id
            .as_deref()
            .ok_or_else(|| TaskError::InvalidTask("pipelineExecutionId is missing".into()))?;
        let service = self.d.store.service(&input.service).await?.ok_or_else(|| {
            TaskError::InvalidTask(format!("service {} does not exist", input.service))
        })?;
        let pipeline = pipeline_ref(&service).ok_or_else(|| {
            TaskError::PipelineFailed(format!("service {} has no pipeline", service.name))
        })?;
        let execution = self.d.pipelines.execution(&pipeline, id).await?;
        let done = !matches!(execution.status.as_str(), "InProgress" | "Stopping");
        Ok(json!({ "done": done, "status": execution.status }))
    }

    /// Records how the running redeploy ended and starts the pending push's, if one waits.
    /// The pending push is admitted as running under its follow-up execution in the same
    /// write, so a retry of this step (the start failed) starts that same execution again
    /// rather than losing the push.
    async fn finish(
        &self,
        input: &RedeployInput,
        status: RunStatus,
        message: Option<String>,
    ) -> std::result::Result<(), TaskError> {
        let execution = input.execution.clone();
        let name = input.service.clone();
        let (follow_up, service) = self
            .update_service(&input.service, |service| {
                let now = Timestamp::now();
                let redeploys = &mut service.redeploys;
                if let Some(running) = &redeploys.running
                    && running.execution != execution
                {
                    // Retried: this step admitted its follow-up before (or it has nothing to do).
                    let follow_up = &running.push;
                    let expected = execution_name(&follow_up.commit_id, name.as_str(), &execution);
                    return Ok(
                        (running.execution == expected).then(|| (follow_up.clone(), expected))
                    );
                }
                let Some(pending) = redeploys.finish(&execution, status, message.clone(), now)
                else {
                    return Ok(None);
                };
                let follow_up = execution_name(&pending.commit_id, name.as_str(), &execution);
                redeploys.admit(pending.clone(), &follow_up, now);
                Ok(Some((pending, follow_up)))
            })
            .await?;
        let Some((pending, follow_up)) = follow_up else {
            return Ok(());
        };
        let push = Push {
            repository_id: service.repository.id.clone().unwrap_or_default(),
            branch: service.repository.branch.clone().unwrap_or_default(),
            commit_id: pending.commit_id.clone(),
            source: pending.source,
        };
        self.start_execution(&service.name, &follow_up, &push, pending.received_at)
            .await
            .map_err(|e| TaskError::Retryable(format!("the pending redeploy did not start: {e}")))
    }

    /// The pipeline state of a service, for `GetServicePipelineState`.
    pub async fn state(&self, name: &ResourceName, limit: u32) -> Result<PipelineStateView> {
        let service = self
            .d
            .store
            .service(name)
            .await?
            .ok_or_else(|| Error::not_found(format!("service {name} does not exist")))?;
        let pipeline = pipeline_ref(&service);
        let (executions, stages) = match &pipeline {
            Some(pipeline) => (
                self.d
                    .pipelines
                    .executions(pipeline, limit)
                    .await
                    .map_err(|e| crate::domain::error::chain(&e)),
                self.d
                    .pipelines
                    .stages(pipeline)
                    .await
                    .map_err(|e| crate::domain::error::chain(&e)),
            ),
            None => {
                let none = format!("service {name} has no pipeline paved provisions");
                (Err(none.clone()), Err(none))
            }
        };
        Ok(PipelineStateView {
            service,
            pipeline,
            executions,
            stages,
        })
    }
}

/// The message of what a Catch caught.
fn caught(error: &Json) -> String {
    let cause = error
        .get("Cause")
        .and_then(Json::as_str)
        .unwrap_or_default();
    serde_json::from_str::<Json>(cause)
        .ok()
        .and_then(|c| {
            c.get("errorMessage")
                .and_then(Json::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            if cause.is_empty() {
                error
                    .get("Error")
                    .and_then(Json::as_str)
                    .unwrap_or("unknown error")
                    .to_string()
            } else {
                cause.to_string()
            }
        })
}
