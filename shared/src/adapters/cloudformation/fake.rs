//! A scripted CloudFormation API: stacks complete at once unless a script says otherwise, so
//! tests can show what moto cannot (progress, rollbacks, failed change sets, throttling).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{ChangeSetState, CloudError, CloudFormationApi, StackState};
use crate::domain::environment::{ProvisionedResource, StackOutput};

#[derive(Debug, Clone)]
struct FakeStack {
    template: String,
    tags: BTreeMap<String, String>,
    state: StackState,
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
    pub calls: Mutex<Vec<String>>,
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

    fn call(&self, what: String) {
        lock(&self.calls).push(what);
    }
}

#[async_trait]
impl CloudFormationApi for ScriptedStacks {
    async fn template(&self, stack: &str) -> Result<Option<String>, CloudError> {
        Ok(self.template_of(stack))
    }

    async fn tags(&self, stack: &str) -> Result<BTreeMap<String, String>, CloudError> {
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
        self.call(format!("execute_change_set {id}"));
        let (stack, template, tags) = lock(&self.change_sets)
            .remove(id)
            .ok_or_else(|| CloudError::Rejected(format!("change set {id} does not exist")))?;
        let state = lock(&self.execute_result)
            .clone()
            .unwrap_or(StackState::Complete);
        let previous = lock(&self.stacks).get(&stack).cloned();
        // A failed update rolls back to the previous template and tags.
        let (template, tags) = match (&state, previous) {
            (StackState::Failed { .. }, Some(previous)) => (previous.template, previous.tags),
            _ => (template, tags),
        };
        lock(&self.stacks).insert(
            stack,
            FakeStack {
                template,
                tags,
                state,
            },
        );
        Ok(())
    }

    async fn delete_change_set(&self, id: &str) -> Result<(), CloudError> {
        self.call(format!("delete_change_set {id}"));
        lock(&self.change_sets).remove(id);
        Ok(())
    }

    async fn state(&self, stack: &str) -> Result<StackState, CloudError> {
        if let Some(state) = lock(&self.state_script).pop_front() {
            return Ok(state);
        }
        Ok(lock(&self.stacks)
            .get(stack)
            .map_or(StackState::Missing, |s| s.state.clone()))
    }

    async fn outputs(&self, stack: &str) -> Result<Vec<StackOutput>, CloudError> {
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
        let template = self.template_of(stack).unwrap_or_default();
        let parsed: yaml_serde::Value =
            yaml_serde::from_str(&template).unwrap_or(yaml_serde::Value::Null);
        let resources = parsed
            .get("Resources")
            .and_then(|r| r.as_mapping())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        let kind = v.get("Type").and_then(|t| t.as_str()).map(str::to_string);
                        Some((k.as_str()?.to_string(), kind))
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        Ok(resources
            .into_iter()
            .map(|(name, resource_type)| ProvisionedResource {
                identifier: format!("{stack}-{name}"),
                name,
                resource_type,
            })
            .collect())
    }

    async fn delete(&self, stack: &str, _role_arn: &str) -> Result<(), CloudError> {
        self.call(format!("delete {stack}"));
        lock(&self.stacks).remove(stack);
        Ok(())
    }

    async fn cancel_update(&self, stack: &str) -> Result<(), CloudError> {
        self.call(format!("cancel_update {stack}"));
        Ok(())
    }
}
