//! A scripted CloudFormation API: stacks complete at once unless a script says otherwise, so
//! tests can show what moto cannot (progress, rollbacks, failed change sets, throttling).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{ChangeSetState, CloudError, CloudFormationApi, StackState};
use crate::domain::adoption::{Action, Found, ResourceAction};
use crate::domain::environment::{ProvisionedResource, StackOutput};

#[derive(Debug, Clone)]
struct FakeStack {
    template: String,
    tags: BTreeMap<String, String>,
    state: StackState,
    role_arn: Option<String>,
    /// While an update takes the engine's time (`engine_time`): when it reaches `state`.
    settles_at: Option<std::time::Instant>,
}

/// A change set made and not yet executed: its stack, template and tags.
type ChangeSet = (String, String, BTreeMap<String, String>);

/// A scripted CloudFormation: stacks complete at once unless a script says otherwise, so tests
/// can show what moto cannot (progress, rollbacks, failed change sets, throttling).
#[derive(Default)]
pub struct ScriptedStacks {
    stacks: Mutex<HashMap<String, FakeStack>>,
    change_sets: Mutex<HashMap<String, ChangeSet>>,
    /// States `state()` reports, in order, before the stack's own.
    pub state_script: Mutex<VecDeque<StackState>>,
    /// States `change_set()` reports, in order, before `Ready`.
    pub change_set_script: Mutex<VecDeque<ChangeSetState>>,
    /// Errors the next calls to `create_change_set` return.
    pub create_errors: Mutex<VecDeque<CloudError>>,
    /// The final state an executed change set leaves (default: complete).
    pub execute_result: Mutex<Option<StackState>>,
    /// Logical ids whose modification replaces the resource (as CloudFormation reports for
    /// properties that need a new resource).
    pub replaced_on_change: Mutex<BTreeSet<String>>,
    /// Stacks changed behind paved's back: what a drift detection finds on them.
    pub drifted: Mutex<HashMap<String, Vec<crate::domain::drift::DriftedResource>>>,
    /// Checks of a detection that answer "in progress" before it completes.
    pub drift_checks_in_progress: Mutex<usize>,
    detections: Mutex<HashMap<String, (String, usize)>>,
    pub calls: Mutex<Vec<String>>,
    /// How long every API call takes (a benchmark's realistic latency; none by default).
    pub latency: Mutex<Option<std::time::Duration>>,
    /// How long an executed change set runs before its stack reaches its final state (the
    /// engine's own time; at once by default).
    pub engine_time: Mutex<Option<std::time::Duration>>,
    /// API calls made, of every kind.
    pub api_calls: std::sync::atomic::AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl ScriptedStacks {
    pub fn template_of(&self, stack: &str) -> Option<String> {
        lock(&self.stacks).get(stack).map(|s| s.template.clone())
    }

    pub fn tags_of(&self, stack: &str) -> Option<BTreeMap<String, String>> {
        lock(&self.stacks).get(stack).map(|s| s.tags.clone())
    }

    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    /// A stack something else made (Proton, a person): complete, with this template, tags and
    /// role.
    pub fn seed(
        &self,
        stack: &str,
        template: &str,
        tags: BTreeMap<String, String>,
        role_arn: Option<&str>,
    ) {
        lock(&self.stacks).insert(
            stack.to_string(),
            FakeStack {
                template: template.to_string(),
                tags,
                state: StackState::Complete,
                role_arn: role_arn.map(str::to_string),
                settles_at: None,
            },
        );
    }

    fn call(&self, what: String) {
        lock(&self.calls).push(what);
    }

    /// Every API call: counted, and as slow as `latency` says.
    async fn pause(&self) {
        self.api_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let latency = *lock(&self.latency);
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
    }
}

#[async_trait]
impl CloudFormationApi for ScriptedStacks {
    async fn template(&self, stack: &str) -> Result<Option<String>, CloudError> {
        self.pause().await;
        Ok(self.template_of(stack))
    }

    async fn tags(&self, stack: &str) -> Result<BTreeMap<String, String>, CloudError> {
        self.pause().await;
        Ok(self.tags_of(stack).unwrap_or_default())
    }

    async fn create_change_set(
        &self,
        stack: &str,
        change_set: &str,
        template: &str,
        _role_arn: &str,
        exists: bool,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, CloudError> {
        self.pause().await;
        self.call(format!(
            "create_change_set {stack} {}",
            if exists { "UPDATE" } else { "CREATE" }
        ));
        if let Some(error) = lock(&self.create_errors).pop_front() {
            return Err(error);
        }
        let id = format!("arn:changeSet/{change_set}");
        lock(&self.change_sets).insert(
            id.clone(),
            (stack.to_string(), template.to_string(), tags.clone()),
        );
        Ok(id)
    }

    async fn change_set(&self, id: &str) -> Result<ChangeSetState, CloudError> {
        self.pause().await;
        if let Some(state) = lock(&self.change_set_script).pop_front() {
            return Ok(state);
        }
        match lock(&self.change_sets).get(id) {
            Some(_) => Ok(ChangeSetState::Ready),
            None => Err(CloudError::Rejected(format!(
                "change set {id} does not exist"
            ))),
        }
    }

    async fn execute_change_set(&self, id: &str) -> Result<(), CloudError> {
        self.pause().await;
        self.call(format!("execute_change_set {id}"));
        let (stack, template, tags) = lock(&self.change_sets)
            .remove(id)
            .ok_or_else(|| CloudError::Rejected(format!("change set {id} does not exist")))?;
        let state = lock(&self.execute_result)
            .clone()
            .unwrap_or(StackState::Complete);
        let previous = lock(&self.stacks).get(&stack).cloned();
        let role_arn = previous.as_ref().and_then(|p| p.role_arn.clone());
        // A failed update rolls back to the previous template and tags.
        let (template, tags) = match (&state, previous) {
            (StackState::Failed { .. }, Some(previous)) => (previous.template, previous.tags),
            _ => (template, tags),
        };
        let settles_at = lock(&self.engine_time).map(|t| std::time::Instant::now() + t);
        lock(&self.stacks).insert(
            stack,
            FakeStack {
                template,
                tags,
                state,
                role_arn,
                settles_at,
            },
        );
        Ok(())
    }

    async fn delete_change_set(&self, id: &str) -> Result<(), CloudError> {
        self.pause().await;
        self.call(format!("delete_change_set {id}"));
        lock(&self.change_sets).remove(id);
        Ok(())
    }

    async fn state(&self, stack: &str) -> Result<StackState, CloudError> {
        self.pause().await;
        if let Some(state) = lock(&self.state_script).pop_front() {
            return Ok(state);
        }
        Ok(lock(&self.stacks)
            .get(stack)
            .map_or(StackState::Missing, |s| match s.settles_at {
                Some(at) if std::time::Instant::now() < at => {
                    StackState::InProgress("UPDATE_IN_PROGRESS".into())
                }
                _ => s.state.clone(),
            }))
    }

    async fn outputs(&self, stack: &str) -> Result<Vec<StackOutput>, CloudError> {
        self.pause().await;
        let template = self.template_of(stack).unwrap_or_default();
        Ok(crate::domain::render::declared_outputs(&template)
            .into_iter()
            .map(|(key, value)| StackOutput {
                key,
                value: value.as_str().unwrap_or_default().to_string(),
            })
            .collect())
    }

    async fn resources(&self, stack: &str) -> Result<Vec<ProvisionedResource>, CloudError> {
        self.pause().await;
        let template = self.template_of(stack).unwrap_or_default();
        Ok(resources_of(&template)
            .into_iter()
            .map(|(name, resource)| ProvisionedResource {
                identifier: format!("{stack}-{name}"),
                resource_type: resource
                    .get("Type")
                    .and_then(|t| t.as_str())
                    .map(str::to_string),
                name,
            })
            .collect())
    }

    async fn delete(&self, stack: &str, _role_arn: &str) -> Result<(), CloudError> {
        self.pause().await;
        self.call(format!("delete {stack}"));
        lock(&self.stacks).remove(stack);
        Ok(())
    }

    async fn cancel_update(&self, stack: &str) -> Result<(), CloudError> {
        self.pause().await;
        self.call(format!("cancel_update {stack}"));
        Ok(())
    }

    async fn stacks(&self) -> Result<Vec<Found>, CloudError> {
        self.pause().await;
        let stacks = lock(&self.stacks).clone();
        let mut found = Vec::new();
        for (name, stack) in stacks {
            found.push(Found {
                name,
                tags: stack.tags,
                role_arn: stack.role_arn,
                status: match stack.state {
                    StackState::Complete => "UPDATE_COMPLETE".into(),
                    StackState::InProgress(status) | StackState::Failed { status, .. } => status,
                    StackState::Missing => continue,
                },
            });
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    async fn detect_drift(&self, stack: &str) -> Result<String, CloudError> {
        self.pause().await;
        lock(&self.calls).push(format!("detect_drift {stack}"));
        if !lock(&self.stacks).contains_key(stack) {
            return Err(CloudError::Rejected(format!(
                "Stack [{stack}] does not exist"
            )));
        }
        let id = format!("drift-{}", uuid::Uuid::new_v4());
        let checks = *lock(&self.drift_checks_in_progress);
        lock(&self.detections).insert(id.clone(), (stack.to_string(), checks));
        Ok(id)
    }

    async fn drift_detection(&self, id: &str) -> Result<super::DriftDetection, CloudError> {
        self.pause().await;
        let mut detections = lock(&self.detections);
        let Some((stack, remaining)) = detections.get_mut(id) else {
            return Err(CloudError::Rejected(format!(
                "detection {id} does not exist"
            )));
        };
        if *remaining > 0 {
            *remaining -= 1;
            return Ok(super::DriftDetection::InProgress);
        }
        let drifted = lock(&self.drifted)
            .get(stack.as_str())
            .is_some_and(|r| !r.is_empty());
        Ok(super::DriftDetection::Complete { drifted })
    }

    async fn resource_drifts(
        &self,
        stack: &str,
    ) -> Result<Vec<crate::domain::drift::DriftedResource>, CloudError> {
        self.pause().await;
        Ok(lock(&self.drifted).get(stack).cloned().unwrap_or_default())
    }

    async fn changes(&self, change_set: &str) -> Result<Vec<ResourceAction>, CloudError> {
        self.pause().await;
        let Some((stack, template, _)) = lock(&self.change_sets).get(change_set).cloned() else {
            return Err(CloudError::Rejected(format!(
                "change set {change_set} does not exist"
            )));
        };
        let before = resources_of(&self.template_of(&stack).unwrap_or_default());
        let after = resources_of(&template);
        let replaced = lock(&self.replaced_on_change).clone();
        let mut actions = Vec::new();
        for (id, resource) in &after {
            let kind = resource.get("Type").and_then(|t| t.as_str()).unwrap_or("");
            let action = match before.get(id) {
                None => Action::Add,
                Some(old) if old == resource => continue,
                Some(old) if old.get("Type") != resource.get("Type") || replaced.contains(id) => {
                    Action::Replace
                }
                Some(_) => Action::Modify,
            };
            actions.push(ResourceAction {
                action,
                logical_id: id.clone(),
                resource_type: kind.to_string(),
                physical_id: (action != Action::Add).then(|| format!("{stack}-{id}")),
            });
        }
        for (id, resource) in &before {
            if !after.contains_key(id) {
                actions.push(ResourceAction {
                    action: Action::Remove,
                    logical_id: id.clone(),
                    resource_type: resource
                        .get("Type")
                        .and_then(|t| t.as_str())
                        .unwrap_or("")
                        .to_string(),
                    physical_id: Some(format!("{stack}-{id}")),
                });
            }
        }
        Ok(actions)
    }
}

/// A template's resources by logical id.
fn resources_of(template: &str) -> BTreeMap<String, yaml_serde::Value> {
    let parsed: yaml_serde::Value =
        yaml_serde::from_str(template).unwrap_or(yaml_serde::Value::Null);
    parsed
        .get("Resources")
        .and_then(|r| r.as_mapping())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.clone())))
                .collect()
        })
        .unwrap_or_default()
}
