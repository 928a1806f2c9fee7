//! The deployment engine against scripted fakes: every way a deployment can end, including the
//! ones moto cannot show (progress, rollbacks, failed change sets, throttling, lost workflows).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;

use super::catalog::{Catalog, NewTemplate, NewVersion, S3Source, VersionChange, VersionSource};
use super::deploy::Deployer;
use super::deployments::Deployments;
use super::environments::{EnvironmentUpdate, Environments, NewEnvironment};
use super::tasks::Tasks;
use crate::adapters::cloudformation::{ChangeSetState, CloudError, ScriptedStacks, StackState};
use crate::adapters::memory::{
    MemoryBundleStore, MemoryStore, RecordingEvents, RecordingWorkflows, ScriptedPipelines,
};
use crate::adapters::scripted::ScriptedEngine;
use crate::app::Error;
use crate::domain::bundle::tests::{MANIFEST, pack};
use crate::domain::environment::{DeploymentStatus, DeploymentType};
use crate::domain::names::{Arn, ResourceName, S3Bucket, S3Key, VersionPart};
use crate::domain::template::{TemplateKind, VersionNumber, VersionStatus};
use crate::ports::{ExecutionState, Workflow};
use crate::testing::{Engine, Fakes, execute, machine};

const SCHEMA: &str = "schema:\n  format:\n    openapi: \"3.0.0\"\n  environment_input_type: In\n  types:\n    In:\n      type: object\n      properties:\n        cidr:\n          type: string\n          default: 10.0.0.0/16\n";
const TEMPLATE: &str = "Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Properties:\n      CidrBlock: '{{ environment.inputs.cidr }}'\nOutputs:\n  VpcCidr:\n    Value: '{{ environment.inputs.cidr }}'\n";

struct World {
    deployer: Deployer,
    bundles: Arc<MemoryBundleStore>,
    catalog: Catalog,
    environments: Environments,
    deployments: Deployments,
    engine: Tasks,
    stacks: Arc<ScriptedStacks>,
    scripted: Arc<ScriptedEngine>,
    pipelines: Arc<ScriptedPipelines>,
    workflows: Arc<RecordingWorkflows>,
    events: Arc<RecordingEvents>,
    store: Arc<MemoryStore>,
}

fn name(text: &str) -> ResourceName {
    ResourceName::parse(text).unwrap()
}

impl World {
    async fn new() -> Self {
        Self::on(Engine::CloudFormation).await
    }

    /// A world whose new targets are provisioned by `engine`.
    async fn on(engine: Engine) -> Self {
        let fakes = Fakes::new("paved");
        let file = tar::EntryType::Regular;
        let archive = pack(&[
            ("schema/schema.yaml", SCHEMA.as_bytes(), file),
            ("infrastructure/manifest.yaml", MANIFEST.as_bytes(), file),
            (
                "infrastructure/cloudformation.yaml",
                TEMPLATE.as_bytes(),
                file,
            ),
        ]);
        fakes.bundles.put("src", "env.tar.gz", archive);
        let deployer = fakes.deployer(engine);
        let catalog = Catalog::new(fakes.store.clone(), fakes.bundles.clone());
        let world = Self {
            deployer: deployer.clone(),
            bundles: fakes.bundles.clone(),
            catalog,
            environments: Environments::new(deployer.clone()),
            deployments: Deployments::new(deployer.clone()),
            engine: Tasks::new(deployer),
            stacks: fakes.stacks.clone(),
            scripted: fakes.scripted.clone(),
            pipelines: fakes.pipelines.clone(),
            workflows: fakes.workflows.clone(),
            events: fakes.events.clone(),
            store: fakes.store.clone(),
        };
        world
            .catalog
            .create_template(
                TemplateKind::Environment,
                NewTemplate {
                    name: name("vpc"),
                    display_name: None,
                    description: None,
                    encryption_key: None,
                    provisioning: None,
                    tags: vec![],
                },
            )
            .await
            .unwrap();
        world.add_version(None).await;
        world
    }

    async fn add_version(&self, major: Option<u64>) -> VersionNumber {
        let (_, version) = self
            .catalog
            .create_version(
                TemplateKind::Environment,
                NewVersion {
                    client_token: None,
                    template_name: name("vpc"),
                    description: None,
                    major_version: major.map(VersionPart),
                    source: VersionSource {
                        s3: Some(S3Source {
                            bucket: S3Bucket::parse("src").unwrap(),
                            key: S3Key::parse("env.tar.gz").unwrap(),
                        }),
                    },
                    tags: vec![],
                    compatible_environment_templates: None,
                    supported_component_sources: None,
                },
            )
            .await
            .unwrap();
        self.catalog
            .update_version(
                TemplateKind::Environment,
                VersionChange {
                    template_name: name("vpc"),
                    major_version: VersionPart(version.number.major),
                    minor_version: VersionPart(version.number.minor),
                    description: None,
                    status: Some(VersionStatus::Published),
                    compatible_environment_templates: None,
                    supported_component_sources: None,
                },
            )
            .await
            .unwrap();
        version.number
    }

    async fn create(
        &self,
        env: &str,
        spec: &str,
    ) -> Result<crate::domain::environment::Environment, Error> {
        self.environments
            .create(NewEnvironment {
                name: name(env),
                template_name: name("vpc"),
                template_major_version: VersionPart(1),
                template_minor_version: None,
                spec: spec.into(),
                proton_service_role_arn: Some(
                    Arn::parse("arn:aws:iam::123456789012:role/proton").unwrap(),
                ),
                component_role_arn: Some(
                    Arn::parse("arn:aws:iam::123456789012:role/components").unwrap(),
                ),
                description: None,
            })
            .await
    }

    async fn update(
        &self,
        env: &str,
        kind: DeploymentType,
        spec: Option<&str>,
    ) -> Result<crate::domain::environment::Environment, Error> {
        self.environments
            .update(EnvironmentUpdate {
                name: name(env),
                deployment_type: kind,
                spec: spec.map(str::to_string),
                template_major_version: None,
                template_minor_version: None,
                proton_service_role_arn: None,
                component_role_arn: None,
                description: None,
            })
            .await
    }

    fn last_started(&self) -> String {
        self.workflows
            .started
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .1
            .clone()
    }

    /// Runs `statemachines/deploy.asl.json` on a deployment, its task steps on the engine.
    async fn run_deploy(&self, id: &str) {
        // A failed deployment ends in the Fail state; tests read what was recorded.
        let _ = self.run_machine("deploy", id).await;
    }

    /// Runs `statemachines/delete.asl.json` on a deployment.
    async fn run_delete(&self, id: &str) {
        let _ = self.run_machine("delete", id).await;
    }

    /// What a successful deploy execution ends with: its input and each step's results.
    fn final_input(&self, id: &str) -> serde_json::Value {
        json!({
            "deploymentId": id,
            "pollSeconds": 0,
            "planned": {"outcome": "planned", "plan": format!("plan-{id}")},
            "plan": {"ready": true, "changes": true},
            "applied": {"cancelled": false},
            "progress": {"done": true, "cancelled": false},
        })
    }

    /// Runs a state machine definition of the project, as Step Functions would, and records
    /// its execution as ended.
    async fn run_machine(&self, name: &str, id: &str) -> crate::testing::Execution {
        let input = json!({ "deploymentId": id, "pollSeconds": 0 });
        let ended = execute(&machine(name), input, |payload| self.engine.run(payload)).await;
        self.workflows
            .states
            .lock()
            .unwrap()
            .insert(id.to_string(), ExecutionState::Succeeded);
        ended
    }

    /// The workflows started after the first `skip`, as (is a deploy, deployment id).
    fn started_since(&self, skip: usize) -> Vec<(Workflow, String)> {
        self.workflows
            .started
            .lock()
            .unwrap()
            .iter()
            .skip(skip)
            .cloned()
            .collect()
    }

    fn started_count(&self) -> usize {
        self.workflows.started.lock().unwrap().len()
    }

    async fn status(&self, env: &str) -> DeploymentStatus {
        self.environments
            .get(&name(env))
            .await
            .unwrap()
            .deployed
            .deployment_status
    }
}

const SPEC: &str = "proton: EnvironmentSpec\nspec:\n  cidr: 10.1.0.0/16\n";

#[tokio::test]
async fn a_created_environment_deploys_its_rendered_template_and_records_outputs() {
    let w = World::new().await;
    let env = w.create("dev", SPEC).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::InProgress);
    let id = w.last_started();
    w.run_deploy(&id).await;
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(
        env.deployed.deployment_status,
        DeploymentStatus::Succeeded,
        "{:?}",
        env.deployed.deployment_status_message
    );
    assert_eq!(
        env.deployed.last_succeeded_deployment_id.as_deref(),
        Some(id.as_str())
    );
    let template = w.stacks.template_of("paved-environment-dev").unwrap();
    assert!(template.contains("CidrBlock: '10.1.0.0/16'"), "{template}");
    assert_eq!(env.deployed.outputs[0].key, "VpcCidr");
    assert_eq!(env.deployed.outputs[0].value, "10.1.0.0/16");
    assert_eq!(env.deployed.resources[0].name, "Vpc");
    let statuses: Vec<String> = w
        .events
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.status.clone())
        .collect();
    assert_eq!(statuses, ["IN_PROGRESS", "SUCCEEDED"]);
    let deployment = w.deployments.get(&id).await.unwrap();
    assert_eq!(deployment.status, DeploymentStatus::Succeeded);
    assert!(deployment.initial_state.is_none() && deployment.completed_at.is_some());
    // The version is in use now: it cannot be deleted.
    let err = w
        .catalog
        .delete_version(
            TemplateKind::Environment,
            &name("vpc"),
            VersionNumber { major: 1, minor: 0 },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("used by 1")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_no_op_update_succeeds_without_touching_the_stack() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
    let creates = w
        .stacks
        .calls()
        .iter()
        .filter(|c| c.starts_with("create_change_set"))
        .count();
    assert_eq!(creates, 1, "{:?}", w.stacks.calls());
    // CloudFormation's own verdict on an unchanged template is honoured too.
    w.update(
        "dev",
        DeploymentType::CurrentVersion,
        Some("proton: EnvironmentSpec\nspec:\n  cidr: 10.2.0.0/16\n"),
    )
    .await
    .unwrap();
    w.stacks
        .change_set_script
        .lock()
        .unwrap()
        .push_back(ChangeSetState::NoChanges);
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
    assert!(
        w.stacks
            .calls()
            .iter()
            .any(|c| c.starts_with("delete_change_set"))
    );
}

#[tokio::test]
async fn a_minor_version_update_moves_the_environment_and_the_version_in_use() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let minor = w.add_version(Some(1)).await;
    let env = w
        .update("dev", DeploymentType::MinorVersion, None)
        .await
        .unwrap();
    assert_eq!(env.deployed.state.version(), minor);
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
    let (_, old) = w
        .catalog
        .version(
            TemplateKind::Environment,
            &name("vpc"),
            VersionNumber { major: 1, minor: 0 },
        )
        .await
        .unwrap();
    let (_, new) = w
        .catalog
        .version(TemplateKind::Environment, &name("vpc"), minor)
        .await
        .unwrap();
    assert_eq!((old.in_use, new.in_use), (0, 1));
    let listed = w
        .deployments
        .list(Some(&name("dev")), Default::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    assert_eq!(
        listed.items[0].initial_state.as_ref().unwrap().minor,
        0,
        "newest first"
    );
}

#[tokio::test]
async fn a_refused_change_set_fails_the_deployment_and_a_later_one_succeeds() {
    let w = World::new().await;
    w.stacks
        .create_errors
        .lock()
        .unwrap()
        .push_back(CloudError::Rejected("Template format error: bad".into()));
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .as_deref()
            .unwrap()
            .contains("Template format error"),
        "{env:?}"
    );
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
}

#[tokio::test]
async fn a_failed_change_set_and_a_rolled_back_stack_are_reported_with_their_reasons() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;

    w.update(
        "dev",
        DeploymentType::CurrentVersion,
        Some("proton: EnvironmentSpec\nspec:\n  cidr: 10.3.0.0/16\n"),
    )
    .await
    .unwrap();
    w.stacks.change_set_script.lock().unwrap().extend([
        ChangeSetState::Pending,
        ChangeSetState::Failed("Role is invalid".into()),
    ]);
    w.run_deploy(&w.last_started()).await;
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .as_deref()
            .unwrap()
            .contains("Role is invalid")
    );

    w.update(
        "dev",
        DeploymentType::CurrentVersion,
        Some("proton: EnvironmentSpec\nspec:\n  cidr: 10.4.0.0/16\n"),
    )
    .await
    .unwrap();
    *w.stacks.execute_result.lock().unwrap() = Some(StackState::Failed {
        status: "UPDATE_ROLLBACK_COMPLETE".into(),
        reason: "Vpc: The CIDR '10.4.0.0/16' conflicts".into(),
    });
    w.stacks.state_script.lock().unwrap().extend([
        StackState::Complete,
        StackState::InProgress("UPDATE_IN_PROGRESS".into()),
    ]);
    w.run_deploy(&w.last_started()).await;
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    let message = env.deployed.deployment_status_message.unwrap();
    assert!(
        message.contains("UPDATE_ROLLBACK_COMPLETE") && message.contains("conflicts"),
        "{message}"
    );
}

#[tokio::test]
async fn a_stack_stuck_in_update_rollback_failed_is_named_and_the_environment_stays_deployable() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    w.update(
        "dev",
        DeploymentType::CurrentVersion,
        Some("proton: EnvironmentSpec\nspec:\n  cidr: 10.5.0.0/16\n"),
    )
    .await
    .unwrap();
    w.stacks
        .state_script
        .lock()
        .unwrap()
        .push_back(StackState::Failed {
            status: "UPDATE_ROLLBACK_FAILED".into(),
            reason: "Vpc: cannot delete".into(),
        });
    w.run_deploy(&w.last_started()).await;
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .unwrap()
            .contains("ContinueUpdateRollback")
    );
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
}

#[tokio::test]
async fn throttling_is_retried_to_success() {
    let w = World::new().await;
    w.stacks
        .create_errors
        .lock()
        .unwrap()
        .push_back(CloudError::Throttled("Rate exceeded".into()));
    w.create("dev", SPEC).await.unwrap();
    let id = w.last_started();
    let first = w
        .engine
        .run(json!({"task": "plan", "deploymentId": id}))
        .await
        .unwrap_err();
    assert_eq!(first.name(), "Retryable");
    w.run_deploy(&id).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
}

#[tokio::test]
async fn one_deployment_at_a_time() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let err = w
        .update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("in progress")),
        "{err:?}"
    );
    let err = w.environments.delete(&name("dev")).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
}

#[tokio::test]
async fn a_cancelled_update_rolls_back_and_the_environment_keeps_its_previous_state() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    w.update(
        "dev",
        DeploymentType::CurrentVersion,
        Some("proton: EnvironmentSpec\nspec:\n  cidr: 10.6.0.0/16\n"),
    )
    .await
    .unwrap();
    let id = w.last_started();
    let prepared = w
        .engine
        .run(json!({"task": "plan", "deploymentId": id}))
        .await
        .unwrap();
    let plan = prepared["plan"].clone();
    w.engine
        .run(json!({"task": "apply", "deploymentId": id, "plan": plan}))
        .await
        .unwrap();
    let env = w.environments.cancel(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Cancelling);
    w.stacks.state_script.lock().unwrap().extend([
        StackState::InProgress("UPDATE_IN_PROGRESS".into()),
        StackState::Failed {
            status: "UPDATE_ROLLBACK_COMPLETE".into(),
            reason: "cancelled".into(),
        },
    ]);
    let still = w
        .engine
        .run(json!({"task": "checkProgress", "deploymentId": id}))
        .await
        .unwrap();
    assert_eq!(still["done"], false);
    assert!(
        w.stacks
            .calls()
            .contains(&"cancel_update paved-environment-dev".to_string())
    );
    let done = w
        .engine
        .run(json!({"task": "checkProgress", "deploymentId": id}))
        .await
        .unwrap();
    assert_eq!(done["cancelled"], true);
    w.engine
        .run(json!({"task": "finish", "deploymentId": id, "cancelled": true}))
        .await
        .unwrap();
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Cancelled);
    assert_eq!(
        env.deployed.state.inputs["cidr"], "10.1.0.0/16",
        "back to the previous spec"
    );
    assert_eq!(
        w.deployments.get(&id).await.unwrap().status,
        DeploymentStatus::Cancelled
    );
    let err = w.environments.cancel(&name("dev")).await.unwrap_err();
    assert!(matches!(err, Error::Validation(_)));
}

#[tokio::test]
async fn a_cancel_before_the_change_set_runs_stops_without_touching_the_stack() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let id = w.last_started();
    w.environments.cancel(&name("dev")).await.unwrap();
    w.run_deploy(&id).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Cancelled);
    assert!(w.stacks.calls().is_empty(), "{:?}", w.stacks.calls());
}

#[tokio::test]
async fn a_workflow_that_never_starts_fails_the_deployment_at_once() {
    let w = World::new().await;
    w.workflows.refuse_starts.store(true, Ordering::SeqCst);
    let env = w.create("dev", SPEC).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .unwrap()
            .contains("could not start")
    );
    w.workflows.refuse_starts.store(false, Ordering::SeqCst);
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
}

#[tokio::test]
async fn a_workflow_that_ended_without_a_result_is_recorded_as_failed_on_the_next_read() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let id = w.last_started();
    w.workflows
        .states
        .lock()
        .unwrap()
        .insert(id.clone(), ExecutionState::Ended);
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .unwrap()
            .contains("timed out")
    );
    assert_eq!(
        w.deployments.get(&id).await.unwrap().status,
        DeploymentStatus::Failed
    );
}

#[tokio::test]
async fn a_render_error_in_the_workflow_fails_with_the_file_and_line() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let id = w.last_started();
    // The template version is gone by the time the workflow runs (a broken store, say).
    let mut deployment = w.deployments.get(&id).await.unwrap();
    deployment.target_state.minor = 9;
    use crate::ports::{DeploymentChange, DeploymentStore, DeploymentWrite};
    let rev = deployment.rev;
    deployment.rev += 1;
    w.store
        .change(DeploymentChange {
            deployments: vec![DeploymentWrite::Replace {
                deployment,
                expected_rev: rev,
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    w.run_deploy(&id).await;
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .unwrap()
            .contains("has no version 1.9")
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_written() {
    let w = World::new().await;
    for (spec, expected) in [
        (
            "proton: EnvironmentSpec\nspec:\n  cidr: 5\n",
            "spec.cidr: must be of type string",
        ),
        ("proton: ServiceSpec\n", "EnvironmentSpec"),
        (
            "proton: EnvironmentSpec\nspec:\n  cidr: \"x'\\n  Evil: 'y\"\n",
            "structure",
        ),
    ] {
        let err = w.create("dev", spec).await.unwrap_err();
        assert!(
            matches!(err, Error::Validation(ref m) if m.contains(expected)),
            "{spec}: {err:?}"
        );
    }
    assert!(
        w.environments
            .list(Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(w.workflows.started.lock().unwrap().is_empty());
}

#[tokio::test]
async fn deleting_an_environment_removes_its_stack_and_frees_its_version() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let env = w.environments.delete(&name("dev")).await.unwrap();
    assert_eq!(
        env.deployed.deployment_status,
        DeploymentStatus::DeleteInProgress
    );
    let again = w.environments.delete(&name("dev")).await.unwrap();
    assert_eq!(
        again.deployed.deployment_status,
        DeploymentStatus::DeleteInProgress,
        "a retried delete returns it"
    );
    let id = w.last_started();
    w.engine
        .run(json!({"task": "remove", "deploymentId": id}))
        .await
        .unwrap();
    let checked = w
        .engine
        .run(json!({"task": "checkRemoval", "deploymentId": id}))
        .await
        .unwrap();
    assert_eq!(checked["done"], true);
    w.engine
        .run(json!({"task": "finishRemoval", "deploymentId": id}))
        .await
        .unwrap();
    assert!(matches!(
        w.environments.get(&name("dev")).await,
        Err(Error::NotFound(_))
    ));
    assert!(w.stacks.template_of("paved-environment-dev").is_none());
    assert_eq!(
        w.deployments.get(&id).await.unwrap().status,
        DeploymentStatus::DeleteComplete
    );
    w.catalog
        .delete_version(
            TemplateKind::Environment,
            &name("vpc"),
            VersionNumber { major: 1, minor: 0 },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_retried_create_returns_the_environment_and_starts_nothing_new() {
    let w = World::new().await;
    let first = w.create("dev", SPEC).await.unwrap();
    let again = w.create("dev", SPEC).await.unwrap();
    assert_eq!(
        first.deployed.last_attempted_deployment_id,
        again.deployed.last_attempted_deployment_id
    );
    assert_eq!(w.workflows.started.lock().unwrap().len(), 1);
    let err = w
        .create(
            "dev",
            "proton: EnvironmentSpec\nspec:\n  cidr: 10.9.0.0/16\n",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("already exists")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_change_set_that_cannot_be_executed_fails_the_deployment() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let id = w.last_started();
    let result = w
        .engine
        .run(json!({"task": "apply", "deploymentId": id, "plan": "arn:changeSet/never-created"}))
        .await
        .unwrap_err();
    assert_eq!(result.name(), "PlanFailed");
    let caught = json!({"Error": "PlanFailed", "Cause": json!({"errorType": "PlanFailed", "errorMessage": result.to_string()}).to_string()});
    w.engine
        .run(json!({"task": "fail", "deploymentId": id, "error": caught}))
        .await
        .unwrap();
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .unwrap()
            .contains("never-created")
    );
    // Recording the failure twice (a retried Catch) changes nothing.
    w.engine
        .run(json!({"task": "fail", "deploymentId": id, "error": caught}))
        .await
        .unwrap();
    assert_eq!(
        w.events
            .published
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.status == "FAILED")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_step_that_timed_out_is_recorded_with_what_happened() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let id = w.last_started();
    let caught = json!({"Error": "States.Timeout", "Cause": "Task timed out after 120.00 seconds"});
    w.engine
        .run(json!({"task": "fail", "deploymentId": id, "error": caught}))
        .await
        .unwrap();
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(
        env.deployed.deployment_status_message.as_deref(),
        Some("a deployment step timed out: Task timed out after 120.00 seconds")
    );
}

mod services {
    use super::*;
    use crate::app::services::{NewService, Services};
    use crate::domain::service::ServiceStatus;
    use crate::domain::template::CompatibleEnvironmentTemplate;

    const SVC_SCHEMA: &str = "schema:\n  format:\n    openapi: \"3.0.0\"\n  service_input_type: Svc\n  pipeline_input_type: Pipe\n  types:\n    Svc:\n      type: object\n      properties:\n        port:\n          type: number\n          default: 80\n    Pipe:\n      type: object\n      properties:\n        dockerfile:\n          type: string\n          default: Dockerfile\n";
    const INSTANCE: &str = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: '{{ service.name }}-{{ service_instance.name }}-{{ environment.outputs.VpcCidr }}'\nOutputs:\n  Port:\n    Value: '{{ service_instance.inputs.port }}'\n  Bucket:\n    Value: '{{ service_instance.components.default.outputs.BucketName | default(\"none\") }}'\n";
    const PIPELINE: &str = "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n    Properties:\n      Tags:\n{% for i in service_instances %}        - Key: '{{ i.name }}'\n          Value: '{{ i.outputs.Port }}'\n{% endfor %}";

    async fn world_with_service_template(w: &World) -> Services {
        world_with_components(w, true).await
    }

    async fn world_with_components(w: &World, components: bool) -> Services {
        world_with(w, components, PIPELINE).await
    }

    /// The service template with another pipeline template.
    pub(super) async fn world_with_pipeline(w: &World, pipeline: &str) -> Services {
        world_with(w, true, pipeline).await
    }

    async fn world_with(w: &World, components: bool, pipeline: &str) -> Services {
        let file = tar::EntryType::Regular;
        let archive = pack(&[
            ("schema/schema.yaml", SVC_SCHEMA.as_bytes(), file),
            (
                "instance_infrastructure/manifest.yaml",
                MANIFEST.as_bytes(),
                file,
            ),
            (
                "instance_infrastructure/cloudformation.yaml",
                INSTANCE.as_bytes(),
                file,
            ),
            (
                "pipeline_infrastructure/manifest.yaml",
                MANIFEST.as_bytes(),
                file,
            ),
            (
                "pipeline_infrastructure/cloudformation.yaml",
                pipeline.as_bytes(),
                file,
            ),
        ]);
        w.bundles.put("src", "svc.tar.gz", archive);
        w.catalog
            .create_template(
                TemplateKind::Service,
                NewTemplate {
                    name: name("web"),
                    display_name: None,
                    description: None,
                    encryption_key: None,
                    provisioning: None,
                    tags: vec![],
                },
            )
            .await
            .unwrap();
        w.catalog
            .create_version(
                TemplateKind::Service,
                NewVersion {
                    client_token: None,
                    template_name: name("web"),
                    description: None,
                    major_version: None,
                    source: VersionSource {
                        s3: Some(S3Source {
                            bucket: S3Bucket::parse("src").unwrap(),
                            key: S3Key::parse("svc.tar.gz").unwrap(),
                        }),
                    },
                    tags: vec![],
                    compatible_environment_templates: Some(vec![CompatibleEnvironmentTemplate {
                        template_name: name("vpc"),
                        major_version: VersionPart(1),
                    }]),
                    supported_component_sources: components
                        .then(|| vec![crate::domain::template::ComponentSource::DirectlyDefined]),
                },
            )
            .await
            .unwrap();
        w.catalog
            .update_version(
                TemplateKind::Service,
                VersionChange {
                    template_name: name("web"),
                    major_version: VersionPart(1),
                    minor_version: VersionPart(0),
                    description: None,
                    status: Some(VersionStatus::Published),
                    compatible_environment_templates: None,
                    supported_component_sources: None,
                },
            )
            .await
            .unwrap();
        Services::new(w.deployer.clone())
    }

    fn new_service(instances: &[&str]) -> NewService {
        let lines: String = instances
            .iter()
            .map(|i| format!("  - {{name: {i}, environment: dev}}\n"))
            .collect();
        NewService {
            name: name("api"),
            template_name: name("web"),
            template_major_version: VersionPart(1),
            template_minor_version: None,
            spec: format!("proton: ServiceSpec\npipeline: {{}}\ninstances:\n{lines}"),
            description: None,
            repository_connection_arn: Some(
                "arn:aws:codestar-connections:us-east-1:123456789012:connection/x".into(),
            ),
            repository_id: Some("acme/api".into()),
            branch_name: Some("main".into()),
        }
    }

    #[tokio::test]
    async fn instances_deploy_with_environment_outputs_then_the_pipeline_with_theirs() {
        let w = World::new().await;
        w.create("dev", SPEC).await.unwrap();
        w.run_deploy(&w.last_started()).await;
        let services = world_with_service_template(&w).await;
        let service = services.create(new_service(&["a", "b"])).await.unwrap();
        assert_eq!(service.status, ServiceStatus::CreateInProgress);
        let started: Vec<String> = w
            .workflows
            .started
            .lock()
            .unwrap()
            .iter()
            .skip(1)
            .map(|(_, id)| id.clone())
            .collect();
        assert_eq!(started.len(), 2, "one deployment per instance");
        for id in &started {
            w.run_deploy(id).await;
        }
        let queue = w.stacks.template_of("paved-instance-api-a").unwrap();
        assert!(queue.contains("QueueName: 'api-a-10.1.0.0/16'"), "{queue}");
        let pipeline_id = w.last_started();
        assert!(
            !started.contains(&pipeline_id),
            "the pipeline starts once the instances are deployed"
        );
        w.run_deploy(&pipeline_id).await;
        let pipeline = w.stacks.template_of("paved-pipeline-api").unwrap();
        assert!(
            pipeline.contains("- Key: 'a'\n          Value: '80'"),
            "{pipeline}"
        );
        let service = services.get(&name("api")).await.unwrap();
        assert_eq!(service.status, ServiceStatus::Active);
        assert_eq!(
            service.pipeline.unwrap().deployment_status,
            DeploymentStatus::Succeeded
        );
    }

    #[tokio::test]
    async fn a_failed_instance_fails_the_service_with_its_reason_and_no_pipeline_runs() {
        let w = World::new().await;
        w.create("dev", SPEC).await.unwrap();
        w.run_deploy(&w.last_started()).await;
        let services = world_with_service_template(&w).await;
        services.create(new_service(&["a"])).await.unwrap();
        w.stacks
            .create_errors
            .lock()
            .unwrap()
            .push_back(CloudError::Rejected("Queue name too long".into()));
        let id = w.last_started();
        w.run_deploy(&id).await;
        let service = services.get(&name("api")).await.unwrap();
        assert_eq!(service.status, ServiceStatus::CreateFailed);
        assert!(
            service
                .status_message
                .unwrap()
                .contains("instance a failed: Queue name too long")
        );
        assert_eq!(w.last_started(), id, "no pipeline deployment started");
    }

    #[tokio::test]
    async fn bad_service_requests_write_nothing() {
        let w = World::new().await;
        w.create("dev", SPEC).await.unwrap();
        w.run_deploy(&w.last_started()).await;
        let services = world_with_service_template(&w).await;
        let mut no_repo = new_service(&["a"]);
        no_repo.repository_id = None;
        assert!(
            matches!(services.create(no_repo).await, Err(Error::Validation(ref m)) if m.starts_with("repositoryId is required"))
        );
        let mut elsewhere = new_service(&["a"]);
        elsewhere.spec = elsewhere
            .spec
            .replace("environment: dev", "environment: prod");
        assert!(
            matches!(services.create(elsewhere).await, Err(Error::Validation(ref m)) if m.contains("prod does not exist"))
        );
        let many: Vec<String> = (0..21).map(|i| format!("i{i}")).collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(matches!(
            services.create(new_service(&names)).await,
            Err(Error::QuotaExceeded(_))
        ));
        assert!(matches!(
            services.get(&name("api")).await,
            Err(Error::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn an_instance_is_redeployed_with_a_new_spec_one_deployment_at_a_time() {
        use crate::app::services::InstanceUpdate;
        let w = World::new().await;
        w.create("dev", SPEC).await.unwrap();
        w.run_deploy(&w.last_started()).await;
        let services = world_with_service_template(&w).await;
        services.create(new_service(&["a"])).await.unwrap();
        w.run_deploy(&w.last_started()).await;
        w.run_deploy(&w.last_started()).await;
        let update = |spec: Option<&str>| InstanceUpdate {
            name: name("a"),
            service_name: name("api"),
            deployment_type: DeploymentType::CurrentVersion,
            spec: spec.map(str::to_string),
            template_major_version: None,
            template_minor_version: None,
            client_token: None,
        };
        let spec = "proton: ServiceSpec\ninstances:\n  - {name: a, environment: dev, spec: {port: 8080}}\n";
        let updated = services.update_instance(update(Some(spec))).await.unwrap();
        assert_eq!(
            updated.deployed.deployment_status,
            DeploymentStatus::InProgress
        );
        let err = services.update_instance(update(None)).await.unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        w.run_deploy(&w.last_started()).await;
        let instance = services.instance(&name("api"), &name("a")).await.unwrap();
        assert_eq!(
            instance.deployed.deployment_status,
            DeploymentStatus::Succeeded
        );
        let port = instance.deployed.outputs.iter().find(|o| o.key == "Port");
        assert_eq!(port.unwrap().value, "8080");
        let err = services
            .cancel_instance(&name("api"), &name("a"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Validation(_)), "{err:?}");
        let wrong = "proton: ServiceSpec\ninstances:\n  - {name: other, environment: dev}\n";
        let err = services
            .update_instance(update(Some(wrong)))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Validation(ref m) if m.contains("no entry")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_retried_instance_update_with_its_client_token_gets_the_same_answer() {
        use crate::app::services::InstanceUpdate;
        use crate::domain::names::ClientToken;
        let w = World::new().await;
        let services = deployed_service(&w, &["a"], true).await;
        let update = |port: u16| InstanceUpdate {
            name: name("a"),
            service_name: name("api"),
            deployment_type: DeploymentType::CurrentVersion,
            spec: Some(format!(
                "proton: ServiceSpec\ninstances:\n  - {{name: a, environment: dev, spec: {{port: {port}}}}}\n"
            )),
            template_major_version: None,
            template_minor_version: None,
            client_token: Some(ClientToken::parse("retry-me").unwrap()),
        };
        let before = w.started_count();
        let first = services.update_instance(update(8080)).await.unwrap();
        // The SDK retries with the same token: the same deployment, not a conflict.
        let again = services.update_instance(update(8080)).await.unwrap();
        assert_eq!(
            again.deployed.last_attempted_deployment_id,
            first.deployed.last_attempted_deployment_id
        );
        assert_eq!(w.started_count(), before + 1, "one deployment");
        w.run_deploy(&w.last_started()).await;
        let after = services.update_instance(update(8080)).await.unwrap();
        assert_eq!(
            after.deployed.last_attempted_deployment_id,
            first.deployed.last_attempted_deployment_id,
            "even after it ended"
        );
        let other = services.update_instance(update(9090)).await.unwrap_err();
        assert!(
            matches!(other, Error::Validation(ref m) if m.contains("already used with different parameters")),
            "{other:?}"
        );
    }

    #[tokio::test]
    async fn an_instance_whose_workflow_ended_unrecorded_fails_on_the_next_read_and_so_does_its_service()
     {
        let w = World::new().await;
        w.create("dev", SPEC).await.unwrap();
        w.run_deploy(&w.last_started()).await;
        let services = world_with_service_template(&w).await;
        services.create(new_service(&["a"])).await.unwrap();
        let id = w.last_started();
        w.workflows
            .states
            .lock()
            .unwrap()
            .insert(id, ExecutionState::Ended);
        let instance = services.instance(&name("api"), &name("a")).await.unwrap();
        assert_eq!(
            instance.deployed.deployment_status,
            DeploymentStatus::Failed
        );
        let service = services.get(&name("api")).await.unwrap();
        assert_eq!(service.status, ServiceStatus::CreateFailed);
    }

    #[tokio::test]
    async fn a_service_waiting_on_an_instance_whose_workflow_died_fails_when_it_is_read() {
        let w = World::new().await;
        w.create("dev", SPEC).await.unwrap();
        w.run_deploy(&w.last_started()).await;
        let services = world_with_service_template(&w).await;
        services.create(new_service(&["a", "b"])).await.unwrap();
        w.run_deploy(&w.last_started()).await;
        let died = w.started_since(1)[0].1.clone();
        w.workflows
            .states
            .lock()
            .unwrap()
            .insert(died, ExecutionState::Ended);
        // Only the service is read (as `aws proton wait service-created` does).
        let service = services.get(&name("api")).await.unwrap();
        assert_eq!(service.status, ServiceStatus::CreateFailed);
        assert!(
            service
                .status_message
                .unwrap()
                .contains("ended without recording a result")
        );
    }

    /// A deployed service `api` with the given instances in `dev`, pipeline included.
    async fn deployed_service(w: &World, instances: &[&str], components: bool) -> Services {
        w.create("dev", SPEC).await.unwrap();
        w.run_deploy(&w.last_started()).await;
        let services = world_with_components(w, components).await;
        let before = w.started_count();
        services.create(new_service(instances)).await.unwrap();
        for (_, id) in w.started_since(before) {
            w.run_deploy(&id).await;
        }
        w.run_deploy(&w.last_started()).await;
        let service = services.get(&name("api")).await.unwrap();
        assert_eq!(service.status, ServiceStatus::Active);
        services
    }

    #[tokio::test]
    async fn an_updated_spec_adds_and_removes_instances_then_redeploys_the_pipeline() {
        use crate::app::services::ServiceUpdate;
        let w = World::new().await;
        let services = deployed_service(&w, &["a"], true).await;
        let before = w.started_count();
        let update = ServiceUpdate {
            name: name("api"),
            description: None,
            spec: Some("proton: ServiceSpec\ninstances:\n  - {name: b, environment: dev, spec: {port: 9090}}\n".into()),
        };
        let updating = services.update(update.clone()).await.unwrap();
        assert_eq!(updating.status, ServiceStatus::UpdateInProgress);
        // A retry of the same update is answered with the service as it is.
        let again = services.update(update.clone()).await.unwrap();
        assert_eq!(again.status, ServiceStatus::UpdateInProgress);
        let other = ServiceUpdate {
            spec: Some("proton: ServiceSpec\ninstances:\n  - {name: c, environment: dev}\n".into()),
            ..update
        };
        let refused = services.update(other).await.unwrap_err();
        assert!(
            matches!(refused, Error::Conflict(ref m) if m.contains("being updated")),
            "{refused:?}"
        );
        let started = w.started_since(before);
        assert_eq!(started.len(), 2, "{started:?}");
        for (workflow, id) in &started {
            match workflow {
                Workflow::Deploy => w.run_deploy(id).await,
                Workflow::Delete => w.run_delete(id).await,
                Workflow::Redeploy => unreachable!("no push in this test"),
            }
        }
        assert!(
            w.stacks.template_of("paved-instance-api-a").is_none(),
            "a's stack is gone"
        );
        let names: Vec<String> = services
            .instances(&name("api"))
            .await
            .unwrap()
            .iter()
            .map(|i| i.name.to_string())
            .collect();
        assert_eq!(names, ["b"]);
        // The pipeline is redeployed for the new list before the service is ACTIVE again.
        let service = services.get(&name("api")).await.unwrap();
        assert_eq!(service.status, ServiceStatus::UpdateInProgress);
        let pipeline_run = w.last_started();
        w.run_deploy(&pipeline_run).await;
        let pipeline = w.stacks.template_of("paved-pipeline-api").unwrap();
        assert!(
            pipeline.contains("Key: 'b'") && !pipeline.contains("Key: 'a'"),
            "{pipeline}"
        );
        let service = services.get(&name("api")).await.unwrap();
        assert_eq!(
            service.status,
            ServiceStatus::Active,
            "{:?}",
            service.status_message
        );
        assert!(service.spec.contains("name: b"));
    }

    #[tokio::test]
    async fn a_component_feeds_its_instance_which_cannot_change_while_it_deploys() {
        use crate::app::components::{Components, NewComponent};
        use crate::app::services::InstanceUpdate;
        let w = World::new().await;
        let services = deployed_service(&w, &["a"], true).await;
        let components = Components::new(w.deployer.clone());
        let new = NewComponent {
            name: name("files"),
            description: None,
            environment_name: None,
            service_name: Some(name("api")),
            service_instance_name: Some(name("a")),
            manifest: MANIFEST.into(),
            template_file: "Resources:\n  B:\n    Type: AWS::S3::Bucket\nOutputs:\n  BucketName:\n    Value: 'bkt-{{ component.name }}-{{ service_instance.inputs.port }}-{{ environment.outputs.VpcCidr }}'\n".into(),
            service_spec: None,
            client_token: None,
        };
        let created = components.create(new.clone()).await.unwrap();
        assert_eq!(created.environment, name("dev"));
        assert_eq!(
            created.deployed.deployment_status,
            DeploymentStatus::InProgress
        );
        assert_eq!(
            components.create(new).await.unwrap().rev,
            created.rev,
            "a retried create returns it"
        );
        let update = InstanceUpdate {
            name: name("a"),
            service_name: name("api"),
            deployment_type: DeploymentType::CurrentVersion,
            spec: None,
            template_major_version: None,
            template_minor_version: None,
            client_token: None,
        };
        let err = services.update_instance(update.clone()).await.unwrap_err();
        assert!(
            matches!(err, Error::Conflict(ref m) if m.contains("component files is deploying")),
            "{err:?}"
        );

        let before = w.started_count();
        w.run_deploy(&w.last_started()).await;
        let component = components.get(&name("files")).await.unwrap();
        assert_eq!(
            component.deployed.outputs[0].value,
            "bkt-files-80-10.1.0.0/16"
        );
        // Its outputs changed, so its instance was redeployed to read them.
        let redeploys = w.started_since(before);
        assert_eq!(redeploys.len(), 1, "{redeploys:?}");
        w.run_deploy(&redeploys[0].1).await;
        let instance = services.instance(&name("api"), &name("a")).await.unwrap();
        assert_eq!(instance.component, Some(name("files")));
        let bucket = instance
            .deployed
            .outputs
            .iter()
            .find(|o| o.key == "Bucket")
            .unwrap();
        assert_eq!(bucket.value, "bkt-files-80-10.1.0.0/16");

        // The service cannot go while its instance has a component; the component can.
        let err = services.delete(&name("api")).await.unwrap_err();
        assert!(
            matches!(err, Error::Conflict(ref m) if m.contains("delete the component first")),
            "{err:?}"
        );
        components.delete(&name("files")).await.unwrap();
        let before = w.started_count();
        w.run_delete(&w.last_started()).await;
        assert!(matches!(
            components.get(&name("files")).await,
            Err(Error::NotFound(_))
        ));
        let redeploys = w.started_since(before);
        assert_eq!(redeploys.len(), 1, "the instance is redeployed without it");
        w.run_deploy(&redeploys[0].1).await;
        let instance = services.instance(&name("api"), &name("a")).await.unwrap();
        assert_eq!(instance.component, None);
        let bucket = instance
            .deployed
            .outputs
            .iter()
            .find(|o| o.key == "Bucket")
            .unwrap();
        assert_eq!(bucket.value, "none");
    }

    #[tokio::test]
    async fn components_are_refused_where_the_template_or_request_does_not_allow_them() {
        use crate::app::components::{Components, NewComponent};
        let w = World::new().await;
        deployed_service(&w, &["a"], false).await;
        let components = Components::new(w.deployer.clone());
        let new = NewComponent {
            name: name("files"),
            description: None,
            environment_name: None,
            service_name: Some(name("api")),
            service_instance_name: Some(name("a")),
            manifest: MANIFEST.into(),
            template_file: "Resources:\n  B:\n    Type: AWS::S3::Bucket\n".into(),
            service_spec: None,
            client_token: None,
        };
        let err = components.create(new.clone()).await.unwrap_err();
        assert!(
            matches!(err, Error::Validation(ref m) if m.contains("supportedComponentSources")),
            "{err:?}"
        );
        let standalone = NewComponent {
            service_name: None,
            service_instance_name: None,
            ..new.clone()
        };
        let err = components.create(standalone.clone()).await.unwrap_err();
        assert!(
            matches!(err, Error::Validation(ref m) if m.starts_with("environmentName is required")),
            "{err:?}"
        );
        let broken = NewComponent {
            environment_name: Some(name("dev")),
            template_file: "Resources:\n  B:\n    Type: '{{ nothing.here }}'\n".into(),
            ..standalone.clone()
        };
        let err = components.create(broken).await.unwrap_err();
        assert!(matches!(err, Error::Validation(_)), "{err:?}");
        assert!(matches!(
            components.get(&name("files")).await,
            Err(Error::NotFound(_))
        ));
        // A standalone component in an environment is fine, and keeps the environment alive.
        let alone = components
            .create(NewComponent {
                environment_name: Some(name("dev")),
                ..standalone
            })
            .await
            .unwrap();
        assert_eq!(alone.attachment(), None);
        w.run_deploy(&w.last_started()).await;
        let listed = components
            .list(
                crate::app::components::ComponentFilter {
                    environment: Some(name("dev")),
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 1);
    }
}

mod pushes {
    use super::*;
    use crate::app::pushes::Pushes;
    use crate::app::services::NewService;
    use crate::domain::push::{Push, PushSource, RunStatus};
    use crate::domain::service::ServiceStatus;

    const PIPELINED: &str = "Resources:\n  Pipeline:\n    Type: AWS::CodePipeline::Pipeline\n    Properties:\n      Name: '{{ service.name }}-pipeline'\n";

    /// A deployed service `api` tracking `acme/api@main`, whose pipeline stack holds a
    /// CodePipeline the scripted CodePipeline knows.
    async fn service_with_pipeline(w: &World) -> Pushes {
        w.create("dev", SPEC).await.unwrap();
        w.run_deploy(&w.last_started()).await;
        let services = super::services::world_with_pipeline(w, PIPELINED).await;
        let before = w.started_count();
        services
            .create(NewService {
                name: name("api"),
                template_name: name("web"),
                template_major_version: VersionPart(1),
                template_minor_version: None,
                spec: "proton: ServiceSpec\npipeline: {}\ninstances:\n  - {name: a, environment: dev}\n".into(),
                description: None,
                repository_connection_arn: Some("arn:aws:codestar-connections:us-east-1:123456789012:connection/x".into()),
                repository_id: Some("acme/api".into()),
                branch_name: Some("main".into()),
            })
            .await
            .unwrap();
        for (_, id) in w.started_since(before) {
            w.run_deploy(&id).await;
        }
        w.run_deploy(&w.last_started()).await;
        assert_eq!(
            services.get(&name("api")).await.unwrap().status,
            ServiceStatus::Active
        );
        w.pipelines
            .pipelines
            .lock()
            .unwrap()
            .push("paved-pipeline-api-Pipeline".into());
        Pushes::new(w.deployer.clone())
    }

    fn push(repository: &str, branch: &str, commit: char) -> Push {
        Push {
            repository_id: repository.into(),
            branch: branch.into(),
            commit_id: commit.to_string().repeat(40),
            source: PushSource::Paved,
        }
    }

    /// Runs a redeploy execution's steps as `statemachines/redeploy.asl.json` orders them.
    async fn run_redeploy(w: &World, execution: &str) -> serde_json::Value {
        let mut state = w.workflows.inputs.lock().unwrap()[execution].clone();
        let step = |task: &str, state: &serde_json::Value| {
            let mut payload = state.clone();
            payload["task"] = json!(task);
            payload
        };
        let started = w.engine.run(step("startPipeline", &state)).await;
        let run = match started {
            Ok(run) => run,
            Err(error) => {
                state["error"] = json!({"Error": error.name(), "Cause": json!({"errorMessage": error.to_string()}).to_string()});
                w.engine.run(step("failRedeploy", &state)).await.unwrap();
                return json!({"failed": error.to_string()});
            }
        };
        if run["started"] != true {
            return run;
        }
        state["pipelineExecutionId"] = run["pipelineExecutionId"].clone();
        loop {
            let checked = w.engine.run(step("checkPipeline", &state)).await.unwrap();
            if checked["done"] == true {
                state["status"] = checked["status"].clone();
                w.engine.run(step("finishRedeploy", &state)).await.unwrap();
                return checked;
            }
        }
    }

    /// Starts a push's redeploy and leaves it running (its pipeline started, not followed);
    /// returns its execution and the input its last step (finishRedeploy, Succeeded) takes.
    async fn start_running(
        w: &World,
        pushes: &Pushes,
        commit: char,
        event: &str,
    ) -> (String, serde_json::Value) {
        let started = pushes
            .receive(&push("acme/api", "main", commit), event)
            .await
            .unwrap();
        let mut state = w.workflows.inputs.lock().unwrap()[&started[0]].clone();
        state["task"] = json!("startPipeline");
        let run = w.engine.run(state.clone()).await.unwrap();
        assert_eq!(run["started"], true);
        state["pipelineExecutionId"] = run["pipelineExecutionId"].clone();
        state["status"] = json!("Succeeded");
        state["task"] = json!("finishRedeploy");
        (started[0].clone(), state)
    }

    #[tokio::test]
    async fn a_push_starts_the_pipeline_of_the_services_on_its_branch_only() {
        let w = World::new().await;
        let pushes = service_with_pipeline(&w).await;
        for other in [
            push("acme/api", "develop", 'b'),
            push("acme/other", "main", 'b'),
        ] {
            assert!(pushes.receive(&other, "event-1").await.unwrap().is_empty());
        }
        let started = pushes
            .receive(&push("acme/api", "main", 'a'), "event-2")
            .await
            .unwrap();
        assert_eq!(started.len(), 1);
        assert!(started[0].starts_with("push-aaaaaaaaaaaa-"), "{started:?}");
        let input = w.workflows.inputs.lock().unwrap()[&started[0]].clone();
        assert_eq!(input["push"]["commitId"], "a".repeat(40));
        // EventBridge may deliver an event twice: the same event starts nothing new.
        assert_eq!(
            pushes
                .receive(&push("acme/api", "main", 'a'), "event-2")
                .await
                .unwrap(),
            started
        );
        let ended = run_redeploy(&w, &started[0]).await;
        assert_eq!(ended["status"], "Succeeded");
        let starts = w.pipelines.started.lock().unwrap().clone();
        assert_eq!(starts.len(), 1, "{starts:?}");
        assert_eq!(
            starts[0].1, started[0],
            "the execution name is the request token"
        );
        let view = pushes.state(&name("api"), 10).await.unwrap();
        let last = view.service.redeploys.last.unwrap();
        assert_eq!(
            (last.status, last.push.commit_id.as_str()),
            (RunStatus::Succeeded, "a".repeat(40).as_str())
        );
        assert_eq!(
            last.pipeline_execution_id.as_deref(),
            Some(starts[0].2.as_str())
        );
    }

    #[tokio::test]
    async fn a_burst_of_pushes_coalesces_into_one_more_run_for_the_newest_commit() {
        let w = World::new().await;
        let pushes = service_with_pipeline(&w).await;
        // The first run has started its pipeline and is being followed...
        let (_, finished) = start_running(&w, &pushes, 'a', "e1").await;
        // ...when three more pushes arrive.
        let mut queued = Vec::new();
        for (commit, event) in [('b', "e2"), ('c', "e3"), ('d', "e4")] {
            let execution = pushes
                .receive(&push("acme/api", "main", commit), event)
                .await
                .unwrap();
            let outcome = run_redeploy(&w, &execution[0]).await;
            assert_eq!(outcome["queued"], true, "{outcome}");
            queued.push(execution[0].clone());
        }
        let view = pushes.state(&name("api"), 10).await.unwrap();
        assert_eq!(
            view.service.redeploys.pending.as_ref().unwrap().commit_id,
            "d".repeat(40)
        );
        assert_eq!(view.service.redeploys.coalesced, 2, "b and c were replaced");
        assert_eq!(
            w.pipelines.started.lock().unwrap().len(),
            1,
            "no overlapping runs"
        );
        // The first run ends: one more starts, for d.
        let before = w.started_count();
        w.engine.run(finished).await.unwrap();
        let follow_up = w.started_since(before);
        assert_eq!(follow_up.len(), 1);
        assert_eq!(follow_up[0].0, Workflow::Redeploy);
        let ended = run_redeploy(&w, &follow_up[0].1).await;
        assert_eq!(ended["status"], "Succeeded");
        let view = pushes.state(&name("api"), 10).await.unwrap();
        assert_eq!(
            view.service.redeploys.last.unwrap().push.commit_id,
            "d".repeat(40)
        );
        assert!(
            view.service.redeploys.pending.is_none() && view.service.redeploys.running.is_none()
        );
        assert_eq!(w.pipelines.started.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_failed_pipeline_is_recorded_and_stage_states_are_read() {
        let w = World::new().await;
        let pushes = service_with_pipeline(&w).await;
        w.pipelines
            .status_script
            .lock()
            .unwrap()
            .extend(["InProgress".to_string(), "Failed".to_string()]);
        w.pipelines
            .stage_states
            .lock()
            .unwrap()
            .push(crate::ports::StageState {
                name: "Build".into(),
                status: Some("Failed".into()),
                execution_id: Some("exec-1".into()),
            });
        let started = pushes
            .receive(&push("acme/api", "main", 'a'), "e1")
            .await
            .unwrap();
        let ended = run_redeploy(&w, &started[0]).await;
        assert_eq!(ended["status"], "Failed");
        let view = pushes.state(&name("api"), 10).await.unwrap();
        let last = view.service.redeploys.last.unwrap();
        assert_eq!(last.status, RunStatus::Failed);
        assert_eq!(
            last.status_message.as_deref(),
            Some("the pipeline execution ended Failed")
        );
        let stages = view.stages.unwrap();
        assert_eq!(
            (stages[0].name.as_str(), stages[0].status.as_deref()),
            ("Build", Some("Failed"))
        );
        // A pipeline CodePipeline does not know fails the redeploy with the reason, not silently.
        w.pipelines.pipelines.lock().unwrap().clear();
        let started = pushes
            .receive(&push("acme/api", "main", 'b'), "e2")
            .await
            .unwrap();
        let outcome = run_redeploy(&w, &started[0]).await;
        assert!(
            outcome["failed"]
                .as_str()
                .unwrap()
                .contains("does not exist"),
            "{outcome}"
        );
        let last = pushes
            .state(&name("api"), 10)
            .await
            .unwrap()
            .service
            .redeploys
            .last
            .unwrap();
        assert_eq!(last.status, RunStatus::Failed);
        assert!(last.status_message.unwrap().contains("does not exist"));
    }

    #[tokio::test]
    async fn a_redeploy_whose_execution_died_does_not_hold_back_the_next_push() {
        let w = World::new().await;
        let pushes = service_with_pipeline(&w).await;
        let (first, _) = start_running(&w, &pushes, 'a', "e1").await;
        // The execution times out before it records anything.
        w.workflows
            .states
            .lock()
            .unwrap()
            .insert(first, ExecutionState::Ended);
        let second = pushes
            .receive(&push("acme/api", "main", 'b'), "e2")
            .await
            .unwrap();
        let outcome = run_redeploy(&w, &second[0]).await;
        assert_eq!(outcome["status"], "Succeeded", "{outcome}");
        let redeploys = pushes
            .state(&name("api"), 10)
            .await
            .unwrap()
            .service
            .redeploys;
        assert_eq!(redeploys.last.unwrap().push.commit_id, "b".repeat(40));
        assert!(redeploys.running.is_none());
    }

    #[tokio::test]
    async fn a_pending_push_survives_a_failed_start_of_its_redeploy() {
        let w = World::new().await;
        let pushes = service_with_pipeline(&w).await;
        let (_, finished) = start_running(&w, &pushes, 'a', "e1").await;
        let second = pushes
            .receive(&push("acme/api", "main", 'b'), "e2")
            .await
            .unwrap();
        assert_eq!(run_redeploy(&w, &second[0]).await["queued"], true);
        // Starting the pending push's redeploy fails once; the step is retried.
        w.workflows.refuse_starts.store(true, Ordering::SeqCst);
        assert!(w.engine.run(finished.clone()).await.is_err());
        w.workflows.refuse_starts.store(false, Ordering::SeqCst);
        let before = w.started_count();
        w.engine.run(finished).await.unwrap();
        let follow_up = w.started_since(before);
        assert_eq!(follow_up.len(), 1, "the pending push is not lost");
        assert_eq!(
            run_redeploy(&w, &follow_up[0].1).await["status"],
            "Succeeded"
        );
        let last = pushes
            .state(&name("api"), 10)
            .await
            .unwrap()
            .service
            .redeploys
            .last;
        assert_eq!(last.unwrap().push.commit_id, "b".repeat(40));
    }
}

/// The seam: a second provisioning engine, driven by the same kernel and the same state
/// machine definitions as CloudFormation.
mod second_engine {
    use super::*;
    use crate::ports::Progress;

    #[tokio::test]
    async fn an_environment_deploys_updates_and_deletes_on_the_scripted_engine() {
        let w = World::on(Engine::Scripted).await;
        let env = w.create("dev", SPEC).await.unwrap();
        assert_eq!(env.deployed.engine.wire_name(), "SCRIPTED");
        assert_eq!(env.deployed.stack_name, "scripted/environment/dev");
        let id = w.last_started();
        assert_eq!(w.run_machine("deploy", &id).await, Ok(w.final_input(&id)));
        let env = w.environments.get(&name("dev")).await.unwrap();
        assert_eq!(env.deployed.deployment_status, DeploymentStatus::Succeeded);
        assert_eq!(env.deployed.outputs[0].key, "VpcCidr");
        assert_eq!(env.deployed.outputs[0].value, "10.1.0.0/16");
        let applied = w.scripted.applied("scripted/environment/dev").unwrap();
        assert!(applied.contains("CidrBlock: '10.1.0.0/16'"), "{applied}");
        assert!(w.stacks.calls().is_empty(), "CloudFormation was not used");

        // The same spec again: the engine says nothing changes, and nothing is applied.
        w.update("dev", DeploymentType::CurrentVersion, None)
            .await
            .unwrap();
        w.run_deploy(&w.last_started()).await;
        assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
        let applies = w
            .scripted
            .calls()
            .iter()
            .filter(|c| c.starts_with("apply"))
            .count();
        assert_eq!(applies, 1, "{:?}", w.scripted.calls());

        w.environments.delete(&name("dev")).await.unwrap();
        let id = w.last_started();
        assert!(w.run_machine("delete", &id).await.is_ok());
        assert!(w.scripted.applied("scripted/environment/dev").is_none());
        assert!(matches!(
            w.environments.get(&name("dev")).await,
            Err(Error::NotFound(_))
        ));
        assert_eq!(
            w.deployments.get(&id).await.unwrap().status,
            DeploymentStatus::DeleteComplete
        );
    }

    #[tokio::test]
    async fn what_the_scripted_engine_reports_as_failed_fails_the_deployment_with_its_reason() {
        let w = World::on(Engine::Scripted).await;
        w.create("dev", SPEC).await.unwrap();
        w.scripted.progress_script.lock().unwrap().extend([
            Progress::Running,
            Progress::Failed("workspace dev: quota exceeded".into()),
        ]);
        let id = w.last_started();
        assert_eq!(
            w.run_machine("deploy", &id).await,
            Err("DeploymentFailed".to_string())
        );
        let env = w.environments.get(&name("dev")).await.unwrap();
        assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
        assert_eq!(
            env.deployed.deployment_status_message.as_deref(),
            Some("workspace dev: quota exceeded")
        );
    }

    #[tokio::test]
    async fn a_target_keeps_the_engine_it_was_first_deployed_by() {
        // Deployed on CloudFormation, then the platform's default engine changes: the
        // environment's next deployment still goes to CloudFormation.
        let w = World::new().await;
        w.create("dev", SPEC).await.unwrap();
        w.run_deploy(&w.last_started()).await;
        let mut moved = w.deployer.clone();
        let scripted: Arc<dyn crate::ports::Provisioner> = w.scripted.clone();
        moved.provisioners = crate::app::deploy::Provisioners::new(scripted).with(Arc::new(
            crate::adapters::cloudformation::CloudFormation::new(w.stacks.clone()),
        ));
        let environments = Environments::new(moved.clone());
        environments
            .update(EnvironmentUpdate {
                name: name("dev"),
                deployment_type: DeploymentType::CurrentVersion,
                spec: Some("proton: EnvironmentSpec\nspec:\n  cidr: 10.4.0.0/16\n".into()),
                template_major_version: None,
                template_minor_version: None,
                proton_service_role_arn: None,
                component_role_arn: None,
                description: None,
            })
            .await
            .unwrap();
        let id = w.last_started();
        let tasks = Tasks::new(moved);
        let ended = execute(
            &machine("deploy"),
            json!({"deploymentId": id, "pollSeconds": 0}),
            |payload| tasks.run(payload),
        )
        .await;
        assert!(ended.is_ok(), "{ended:?}");
        let template = w.stacks.template_of("paved-environment-dev").unwrap();
        assert!(template.contains("10.4.0.0/16"), "{template}");
        assert!(w.scripted.calls().is_empty(), "{:?}", w.scripted.calls());
    }
}
