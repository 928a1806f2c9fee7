//! The use cases and the deployment kernel against scripted fakes, every deployment run through
//! the project's real state machine definitions: every way a deployment can end, including the
//! ones moto cannot show (progress, rollbacks, failed change sets, throttling, lost workflows).
//! One file per concern; the world they share is here.

mod components_and_services;
mod drift;
mod engines;
mod environments;
mod fleet;
mod imports;
mod pushes;
mod races;
mod sweep;
mod tags;
mod upgrades;

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
        Self::of(Fakes::new("paved"), engine).await
    }

    /// A world whose concurrent requests interleave at every storage call, as against DynamoDB.
    async fn interleaving() -> Self {
        Self::of(Fakes::interleaving("paved"), Engine::CloudFormation).await
    }

    async fn of(fakes: Fakes, engine: Engine) -> Self {
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
        let catalog = Catalog::new(fakes.store.clone(), fakes.bundles.clone())
            .with_events(fakes.events.clone(), deployer.arns.clone());
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
                    tags: Default::default(),
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
                    tags: Default::default(),
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
                tags: Default::default(),
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
                unsupported: Default::default(),
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
                unsupported: Default::default(),
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
            "planned": {"outcome": "planned", "plan": format!("plan-{id}"), "waitSeconds": 1},
            "plan": {"ready": true, "changes": true, "waitSeconds": 1},
            "applied": {"cancelled": false, "waitSeconds": 1},
            "progress": {"done": true, "cancelled": false, "waitSeconds": 1},
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
