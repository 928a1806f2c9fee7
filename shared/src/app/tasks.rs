//! The tasks function: runs one step of a state machine, and after a step that ended a
//! deployment, what follows for the owner of its target (a service's next step, an instance
//! redeploy after its component's outputs changed).

use serde_json::Value as Json;

use super::components;
use super::deploy::{Deployer, DeploymentTask, Ended, Loaded, Steps, TaskError};
use super::pushes::{Pushes, RedeployTask};
use super::services;
use crate::domain::environment::Target;

/// How far back the sweep looks: longer than a deploy or delete execution may run (4 hours);
/// anything older is still reconciled when it is read.
const SWEEP_WINDOW_SECONDS: f64 = 24.0 * 60.0 * 60.0;

/// One step of a state machine: `{"task": "<name>", ...}`, or the scheduled sweep.
#[derive(Debug, Clone)]
pub enum Task {
    /// A step of the deploy or delete state machine.
    Deployment(DeploymentTask),
    /// A step of the redeploy state machine.
    Redeploy(RedeployTask),
    /// A step of the upgrade state machine.
    Upgrade(super::upgrades::UpgradeTask),
    /// `{"task": "sweep"}`, on a schedule: records as failed every deployment of the last day
    /// whose workflow ended without recording its result, so none waits for a reader.
    Sweep,
    /// `{"task": "detectDrift"}`, on a schedule: drift detection over the fleet.
    DetectDrift,
}

impl Task {
    /// Parses a task payload; the error says what is wrong with it.
    pub fn parse(payload: Json) -> Result<Self, TaskError> {
        match payload.get("task").and_then(Json::as_str) {
            Some("sweep") => return Ok(Self::Sweep),
            Some("detectDrift") => return Ok(Self::DetectDrift),
            _ => {}
        }
        let invalid = |e: serde_json::Error| TaskError::InvalidTask(format!("task input: {e}"));
        match serde_json::from_value::<DeploymentTask>(payload.clone()) {
            Ok(task) => Ok(Self::Deployment(task)),
            // Not a deployment step's name: a redeploy step, or nothing paved runs.
            Err(error) if error.to_string().starts_with("unknown variant") => {
                match serde_json::from_value::<RedeployTask>(payload.clone()) {
                    Ok(task) => Ok(Self::Redeploy(task)),
                    Err(error) if error.to_string().starts_with("unknown variant") => {
                        serde_json::from_value::<super::upgrades::UpgradeTask>(payload)
                            .map(Self::Upgrade)
                            .map_err(invalid)
                    }
                    Err(error) => Err(invalid(error)),
                }
            }
            Err(error) => Err(invalid(error)),
        }
    }
}

pub struct Tasks {
    d: Deployer,
    steps: Steps,
    pushes: Pushes,
    upgrades: super::upgrades::Upgrades,
}

impl Tasks {
    pub fn new(deployer: Deployer) -> Self {
        Self {
            steps: Steps::new(deployer.clone()),
            pushes: Pushes::new(deployer.clone()),
            upgrades: super::upgrades::Upgrades::new(deployer.clone()),
            d: deployer,
        }
    }

    /// Runs one task step of a state machine.
    pub async fn run(&self, payload: Json) -> Result<Json, TaskError> {
        match Task::parse(payload)? {
            Task::Deployment(task) => {
                let (answer, ended) = self.steps.run(task).await?;
                if let Some(ended) = ended {
                    follow(&self.d, ended).await?;
                }
                Ok(answer)
            }
            Task::Redeploy(task) => self.pushes.run_task(task).await,
            Task::Upgrade(task) => self.upgrades.run_task(task).await,
            Task::Sweep => self.sweep().await,
            Task::DetectDrift => super::drift::Drift::new(self.d.clone())
                .sweep()
                .await
                .map_err(Into::into),
        }
    }

    /// Reconciles every active deployment of the last [`SWEEP_WINDOW_SECONDS`] (see
    /// `Deployer::reconcile`), and runs what follows each one it records as ended. The first
    /// sweep after an upgrade also brings older instances into the all-instances index.
    pub async fn sweep(&self) -> Result<Json, TaskError> {
        let since = crate::domain::names::Timestamp::now().0 - SWEEP_WINDOW_SECONDS;
        let (mut looked_at, mut recorded) = (0, 0);
        let mut cursor = None;
        'pages: loop {
            let page = self
                .d
                .store
                .deployments(
                    None,
                    crate::ports::PageRequest {
                        limit: Some(100),
                        cursor,
                    },
                )
                .await?;
            for deployment in &page.items {
                if deployment.created_at.0 < since {
                    break 'pages;
                }
                looked_at += 1;
                if !deployment.status.is_active() {
                    continue;
                }
                let Some(target) = Loaded::load(&self.d, deployment).await? else {
                    continue;
                };
                if target.deployed().last_attempted_deployment_id.as_deref()
                    != Some(deployment.id.as_str())
                {
                    continue;
                }
                if let Some(ended) = self.d.reconcile(target.deployed()).await {
                    recorded += 1;
                    follow(&self.d, ended).await?;
                }
            }
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        let indexed = self.d.store.index_instances().await?;
        let deployments_indexed = self.d.store.index_deployments().await?;
        tracing::info!(
            looked_at,
            recorded,
            ?indexed,
            ?deployments_indexed,
            "swept deployments"
        );
        Ok(serde_json::json!({
            "lookedAt": looked_at,
            "recorded": recorded,
            "instancesIndexed": indexed,
            "deploymentsIndexed": deployments_indexed,
        }))
    }
}

/// What follows the end of a deployment, as the owner of its target decides. Safe to run
/// again for the same end: each owner decides from what is stored.
pub async fn follow(d: &Deployer, ended: Ended) -> Result<(), TaskError> {
    match &ended.deployment.target {
        Target::ServiceInstance { service, .. } | Target::ServicePipeline { service } => {
            services::settle(d, service).await.map_err(TaskError::from)
        }
        Target::Component { .. } => {
            components::follow(d, &ended).await;
            Ok(())
        }
        Target::Environment => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::machine;

    /// A task payload as a state machine would build it: each `.$` member filled with a
    /// value of the kind the execution carries there.
    fn example_payload(template: &Json) -> Json {
        let example = |member: &str| match member {
            "receivedAt" => json!(1_764_000_000.5),
            "push" => {
                json!({"repositoryId": "acme/web", "branch": "main", "commitId": "3f1c2a9e", "source": "paved"})
            }
            "error" => json!({"Error": "States.Timeout", "Cause": ""}),
            "status" => json!("Succeeded"),
            "pollSeconds" => json!(10),
            "checkSeconds" => json!(40),
            "taskToken" => json!("token"),
            _ => json!("web"),
        };
        let mut payload = serde_json::Map::new();
        for (key, value) in template.as_object().unwrap() {
            match key.strip_suffix(".$") {
                Some(key) => payload.insert(key.to_string(), example(key)),
                None => payload.insert(key.clone(), value.clone()),
            };
        }
        Json::Object(payload)
    }

    /// Every transition lands on a state, every Retry and Catch names an error that exists, and
    /// every task payload parses into a `Task` paved runs.
    #[test]
    fn the_state_machines_are_consistent_with_the_tasks() {
        for name in ["deploy", "delete", "redeploy", "upgrade"] {
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
                                TaskError::NAMES.contains(&error)
                                    || error.starts_with("States.")
                                    || error.starts_with("Lambda."),
                                "{name}: {state_name} matches unknown error {error}"
                            );
                        }
                    }
                }
                if state["Type"] == "Task" {
                    let payload = example_payload(&state["Parameters"]["Payload"]);
                    let task = payload["task"].clone();
                    let parsed = Task::parse(payload);
                    assert!(
                        parsed.is_ok(),
                        "{name}: {state_name} runs task {task}, which paved cannot parse: {parsed:?}"
                    );
                    assert!(
                        state.get("Retry").is_some(),
                        "{name}: {state_name} has no Retry"
                    );
                    let is_failure_recorder =
                        task == "fail" || task == "failRedeploy" || task == "failUpgrade";
                    assert_eq!(
                        state.get("Catch").is_none(),
                        is_failure_recorder,
                        "{name}: {state_name} Catch"
                    );
                }
            }
        }
    }

    #[test]
    fn the_state_names_speak_of_the_deployment_not_of_an_engine() {
        for name in ["deploy", "delete"] {
            let definition = machine(name).to_string().to_lowercase();
            for word in ["change set", "changeset", "stack", "cloudformation"] {
                assert!(!definition.contains(word), "{name} mentions {word}");
            }
        }
    }

    #[test]
    fn a_payload_paved_does_not_run_is_an_invalid_task_that_names_it() {
        let error = Task::parse(json!({"task": "prepare", "deploymentId": "x"})).unwrap_err();
        assert_eq!(error.name(), "InvalidTask");
        assert!(error.to_string().contains("prepare"), "{error}");
        let error = Task::parse(json!({"task": "plan"})).unwrap_err();
        assert!(error.to_string().contains("deploymentId"), "{error}");
    }
}
