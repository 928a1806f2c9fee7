//! What the library's tests share: one world of in-memory adapters wired into a `Deployer` (the
//! API tests and the deployment tests build on it), and a small interpreter that runs the
//! project's real state machine definitions (`statemachines/*.asl.json`) against the tasks.

use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use crate::adapters::cloudformation::{CloudFormation, ScriptedStacks};
use crate::adapters::memory::{
    MemoryBundleStore, MemoryStore, RecordingEvents, RecordingWorkflows, ScriptedPipelines,
};
use crate::adapters::scripted::ScriptedEngine;
use crate::app::deploy::{ArnBuilder, Deployer, Provisioners, TaskError};
use crate::ports::Provisioner;

/// The fakes behind a test `Deployer`.
pub struct Fakes {
    pub store: Arc<MemoryStore>,
    pub bundles: Arc<MemoryBundleStore>,
    pub workflows: Arc<RecordingWorkflows>,
    pub events: Arc<RecordingEvents>,
    pub stacks: Arc<ScriptedStacks>,
    pub scripted: Arc<ScriptedEngine>,
    pub pipelines: Arc<ScriptedPipelines>,
}

/// Which engine new targets get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// CloudFormation, over the scripted CloudFormation API.
    CloudFormation,
    /// The scripted second engine.
    Scripted,
}

impl Fakes {
    pub fn new(bucket: &str) -> Self {
        Self {
            store: Arc::new(MemoryStore::default()),
            bundles: Arc::new(MemoryBundleStore::new(bucket)),
            workflows: Arc::new(RecordingWorkflows::default()),
            events: Arc::new(RecordingEvents::default()),
            stacks: Arc::new(ScriptedStacks::default()),
            scripted: Arc::new(ScriptedEngine::default()),
            pipelines: Arc::new(ScriptedPipelines::default()),
        }
    }

    /// Fakes whose store interleaves concurrent requests at every storage call.
    pub fn interleaving(bucket: &str) -> Self {
        Self {
            store: Arc::new(MemoryStore::interleaving()),
            ..Self::new(bucket)
        }
    }

    /// A deployer over these fakes whose new targets are provisioned by `engine` (both engines
    /// are configured, as a platform with two engines would be).
    pub fn deployer(&self, engine: Engine) -> Deployer {
        let cloudformation: Arc<dyn Provisioner> =
            Arc::new(CloudFormation::new(self.stacks.clone()));
        let scripted: Arc<dyn Provisioner> = self.scripted.clone();
        let provisioners = match engine {
            Engine::CloudFormation => Provisioners::new(cloudformation).with(scripted),
            Engine::Scripted => Provisioners::new(scripted).with(cloudformation),
        };
        Deployer {
            catalog: self.store.clone(),
            store: self.store.clone(),
            fleet: self.store.clone(),
            account: self.store.clone(),
            roles: None,
            bundles: self.bundles.clone(),
            workflows: self.workflows.clone(),
            events: self.events.clone(),
            provisioners,
            pipelines: self.pipelines.clone(),
            arns: ArnBuilder {
                region: "us-east-1".into(),
                account_id: "123456789012".into(),
            },
            pipeline_role_arn: Some("arn:aws:iam::123456789012:role/pipeline".into()),
            instance_quota: 20,
            deployment_retention_days: 180,
            proton_endpoint: Some("https://paved.example".into()),
            role_pattern: "*".into(),
        }
    }
}

/// A state machine definition of the project, by name (`deploy`, `delete`, `redeploy`).
pub fn machine(name: &str) -> Json {
    let path = format!(
        "{}/../statemachines/{name}.asl.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("state machine file"))
        .expect("valid JSON")
}

/// How an execution ended: `Ok(output)` in a Succeed (or End) state, `Err(error name)` in a Fail
/// state or on an error nothing caught.
pub type Execution = Result<Json, String>;

/// Runs a state machine definition as Step Functions would, for the subset paved's machines use
/// (Task with a Lambda payload, ResultSelector, ResultPath, Retry, Catch; Choice with
/// BooleanEquals and StringEquals; Wait; Succeed; Fail). Waits take no time; a path that is
/// missing is an error, as in Step Functions. Each task payload goes to `run`. A
/// `.waitForTaskToken` task gets a fresh `$$.Task.Token`, and `run`'s answer stands for the
/// callback's output: `run` plays the caller who sends it.
pub async fn execute<F, Fut>(definition: &Json, input: Json, run: F) -> Execution
where
    F: FnMut(Json) -> Fut,
    Fut: std::future::Future<Output = Result<Json, TaskError>>,
{
    execute_waiting(definition, input, run, std::time::Duration::ZERO).await
}

/// As [`execute`], each Wait state sleeping its seconds, each of them `second` long (a
/// benchmark runs the real waits, or scaled ones).
pub async fn execute_waiting<F, Fut>(
    definition: &Json,
    input: Json,
    mut run: F,
    second: std::time::Duration,
) -> Execution
where
    F: FnMut(Json) -> Fut,
    Fut: std::future::Future<Output = Result<Json, TaskError>>,
{
    let states = definition["States"].as_object().expect("States");
    let mut name = definition["StartAt"].as_str().expect("StartAt").to_string();
    let mut data = input;
    for _ in 0..100_000 {
        let state = &states[&name];
        let next = |state: &Json| state.get("Next").and_then(Json::as_str).map(str::to_string);
        match state["Type"].as_str().expect("Type") {
            "Task" => {
                let payload = resolve(&state["Parameters"]["Payload"], &data)
                    .map_err(|path| format!("States.Runtime: {name}: no {path}"))?;
                let mut attempts = 0;
                let outcome = loop {
                    match run(payload.clone()).await {
                        Ok(answer) => break Ok(answer),
                        Err(error) => {
                            let retry = matching(state.get("Retry"), error.name());
                            let max = retry.and_then(|r| r["MaxAttempts"].as_u64()).unwrap_or(0);
                            if attempts < max {
                                attempts += 1;
                                continue;
                            }
                            break Err(error);
                        }
                    }
                };
                match outcome {
                    Ok(answer) => {
                        let result = json!({ "Payload": answer });
                        let result = match state.get("ResultSelector") {
                            Some(selector) => resolve(selector, &result)
                                .map_err(|path| format!("States.Runtime: {name}: no {path}"))?,
                            None => result,
                        };
                        data = place(data, state.get("ResultPath"), result);
                    }
                    Err(error) => {
                        let Some(catch) = matching(state.get("Catch"), error.name()) else {
                            return Err(error.name().to_string());
                        };
                        let caught = json!({
                            "Error": error.name(),
                            "Cause": json!({ "errorType": error.name(), "errorMessage": error.to_string() }).to_string(),
                        });
                        data = place(data, catch.get("ResultPath"), caught);
                        name = catch["Next"].as_str().expect("Catch Next").to_string();
                        continue;
                    }
                }
                if state.get("End") == Some(&Json::Bool(true)) {
                    return Ok(data);
                }
                name = next(state).expect("Next");
            }
            "Choice" => {
                let chosen = state["Choices"]
                    .as_array()
                    .expect("Choices")
                    .iter()
                    .find(|choice| {
                        let value = lookup(&data, choice["Variable"].as_str().expect("Variable"));
                        match (choice.get("BooleanEquals"), choice.get("StringEquals")) {
                            (Some(expected), _) | (_, Some(expected)) => value == Some(expected),
                            _ => panic!("{name}: a comparison this interpreter does not know"),
                        }
                    });
                name = match chosen {
                    Some(choice) => choice["Next"].as_str().expect("Next").to_string(),
                    None => state["Default"].as_str().expect("Default").to_string(),
                };
            }
            "Wait" => {
                if !second.is_zero() {
                    let seconds = match state.get("SecondsPath").and_then(Json::as_str) {
                        Some(path) => lookup(&data, path).and_then(Json::as_f64),
                        None => state.get("Seconds").and_then(Json::as_f64),
                    }
                    .unwrap_or(0.0);
                    tokio::time::sleep(second.mul_f64(seconds)).await;
                }
                name = next(state).expect("Next");
            }
            "Succeed" => return Ok(data),
            "Fail" => return Err(state["Error"].as_str().unwrap_or("States.Fail").to_string()),
            other => panic!("{name}: state type {other} is not interpreted"),
        }
    }
    panic!("the execution did not end in 100,000 transitions")
}

/// The first Retry or Catch rule that matches an error name.
fn matching<'a>(rules: Option<&'a Json>, error: &str) -> Option<&'a Json> {
    rules?.as_array()?.iter().find(|rule| {
        rule["ErrorEquals"]
            .as_array()
            .is_some_and(|names| names.iter().any(|n| n == error || n == "States.ALL"))
    })
}

/// A path `$.a.b` in `data`.
fn lookup<'a>(data: &'a Json, path: &str) -> Option<&'a Json> {
    let rest = path.strip_prefix('$')?;
    rest.split('.')
        .filter(|part| !part.is_empty())
        .try_fold(data, |value, part| value.get(part))
}

/// A payload template: `"key.$": "$.path"` takes the value at the path, other keys are literal.
fn resolve(template: &Json, data: &Json) -> Result<Json, String> {
    let Some(object) = template.as_object() else {
        return Ok(template.clone());
    };
    let mut out = Map::new();
    for (key, value) in object {
        match key.strip_suffix(".$") {
            // The context object: a task token unique to this wait.
            Some(key) if value == "$$.Task.Token" => {
                let token = format!("token-{}", uuid::Uuid::new_v4());
                out.insert(key.to_string(), Json::String(token));
            }
            Some(key) => {
                let path = value.as_str().unwrap_or_default();
                let found = lookup(data, path).ok_or_else(|| path.to_string())?;
                out.insert(key.to_string(), found.clone());
            }
            None => {
                out.insert(key.clone(), resolve(value, data)?);
            }
        }
    }
    Ok(Json::Object(out))
}

/// Puts a result where `ResultPath` says: replacing the input when absent, discarding it when
/// null, else under `$.key`.
fn place(mut data: Json, path: Option<&Json>, result: Json) -> Json {
    match path {
        None => result,
        Some(Json::Null) => data,
        Some(Json::String(path)) => {
            let key = path.strip_prefix("$.").expect("ResultPath $.key");
            data[key] = result;
            data
        }
        Some(other) => panic!("ResultPath {other}"),
    }
}

/// The local identities the API tests sign as: one per persona, as `paved dev` makes them.
pub mod callers {
    use std::collections::HashMap;
    use std::sync::Arc;

    use crate::api::Security;
    use crate::api::authn::{LocalIdentity, LocalKeys};
    use crate::app::access::Access;
    use crate::domain::access::{AccessDocument, Principal};
    use crate::ports::AccessStore;

    pub const PLATFORM: &str = "AKIAPLATFORMTEST0001";
    pub const DEVELOPER: &str = "AKIADEVELOPERTEST001";
    pub const READ_ONLY: &str = "AKIAREADONLYTEST0001";
    pub const STRANGER: &str = "AKIASTRANGERTEST0001";

    pub fn arn(key: &str) -> String {
        let name = match key {
            PLATFORM => "platform",
            DEVELOPER => "developer",
            READ_ONLY => "readonly",
            _ => "stranger",
        };
        format!("arn:aws:iam::123456789012:user/paved-{name}")
    }

    pub fn secret(key: &str) -> String {
        format!("secret-of-{key}")
    }

    pub fn keys() -> LocalKeys {
        let identities: HashMap<String, LocalIdentity> = [PLATFORM, DEVELOPER, READ_ONLY, STRANGER]
            .into_iter()
            .map(|key| {
                (
                    key.to_string(),
                    LocalIdentity {
                        principal: Principal::new(arn(key)),
                        secret_access_key: secret(key),
                    },
                )
            })
            .collect();
        LocalKeys::new("us-east-1", identities)
    }

    pub fn personas() -> AccessDocument {
        AccessDocument::personas(
            vec![arn(PLATFORM)],
            vec![arn(DEVELOPER)],
            vec![arn(READ_ONLY)],
            vec!["arn:aws:iam::123456789012:role/pipeline".into()],
        )
    }

    pub fn security(store: Arc<dyn AccessStore>) -> Security {
        Security {
            authenticate: Arc::new(keys()),
            access: Arc::new(Access::new(store, personas(), crate::api::authz::actions())),
        }
    }
}
