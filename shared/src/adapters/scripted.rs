//! A second provisioning engine, for tests only: it "provisions" a rendered template by keeping
//! it, reports the outputs it declares, and follows a script of progress states. It proves the
//! seam: the same kernel and the same state machine definitions drive it as CloudFormation.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::adoption::{Action, ResourceAction};
use crate::domain::environment::{ProvisionedResource, StackOutput};
use crate::domain::provisioning::ProvisioningEngine;
use crate::ports::{
    Placement, PlanState, Planning, Progress, ProvisionError, ProvisionResult, Provisioned,
    Provisioner, Removal,
};

#[derive(Default)]
pub struct ScriptedEngine {
    /// What each target runs: its rendered template.
    applied: Mutex<HashMap<String, String>>,
    /// Plans made and not yet applied: plan id → (target, template).
    plans: Mutex<HashMap<String, (String, String)>>,
    /// What `progress` reports, in order, before `Done`.
    pub progress_script: Mutex<VecDeque<Progress>>,
    /// Every call, as `verb target`.
    pub calls: Mutex<Vec<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl ScriptedEngine {
    pub fn applied(&self, target: &str) -> Option<String> {
        lock(&self.applied).get(target).cloned()
    }

    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    fn call(&self, what: String) {
        lock(&self.calls).push(what);
    }
}

#[async_trait]
impl Provisioner for ScriptedEngine {
    fn engine(&self) -> ProvisioningEngine {
        ProvisioningEngine::Scripted
    }

    fn name(&self, parts: &[&str]) -> String {
        format!("scripted/{}", parts.join("/"))
    }

    async fn plan(
        &self,
        target: Placement<'_>,
        plan: &str,
        rendered: &str,
        _tags: &BTreeMap<String, String>,
    ) -> ProvisionResult<Planning> {
        self.call(format!("plan {}", target.name));
        if self.applied(target.name).as_deref() == Some(rendered) {
            return Ok(Planning::Unchanged);
        }
        let id = format!("plan-{plan}");
        lock(&self.plans).insert(id.clone(), (target.name.into(), rendered.into()));
        Ok(Planning::Planned(id))
    }

    async fn preview(
        &self,
        target: Placement<'_>,
        plan: &str,
        rendered: &str,
        tags: &BTreeMap<String, String>,
    ) -> ProvisionResult<Planning> {
        self.plan(target, plan, rendered, tags).await
    }

    async fn plan_state(&self, plan: &str) -> ProvisionResult<PlanState> {
        Ok(if lock(&self.plans).contains_key(plan) {
            PlanState::Ready
        } else {
            PlanState::Failed(format!("no plan {plan}"))
        })
    }

    async fn apply(&self, plan: &str) -> ProvisionResult<()> {
        let (target, template) = lock(&self.plans)
            .remove(plan)
            .ok_or_else(|| ProvisionError::Rejected(format!("no plan {plan}")))?;
        self.call(format!("apply {target}"));
        lock(&self.applied).insert(target, template);
        Ok(())
    }

    async fn discard(&self, plan: &str) -> ProvisionResult<()> {
        lock(&self.plans).remove(plan);
        Ok(())
    }

    async fn progress(&self, target: Placement<'_>, _cancel: bool) -> ProvisionResult<Progress> {
        self.call(format!("progress {}", target.name));
        Ok(lock(&self.progress_script)
            .pop_front()
            .unwrap_or(Progress::Done))
    }

    async fn provisioned(&self, target: Placement<'_>) -> ProvisionResult<Option<Provisioned>> {
        let Some(template) = self.applied(target.name) else {
            return Ok(None);
        };
        let outputs = crate::domain::render::declared_outputs(&template)
            .into_iter()
            .map(|(key, value)| StackOutput {
                key,
                value: value.as_str().unwrap_or_default().to_string(),
            })
            .collect();
        Ok(Some(Provisioned {
            outputs,
            resources: vec![ProvisionedResource {
                name: "workspace".into(),
                identifier: target.name.to_string(),
                resource_type: None,
            }],
        }))
    }

    async fn remove(&self, target: Placement<'_>) -> ProvisionResult<()> {
        self.call(format!("remove {}", target.name));
        lock(&self.applied).remove(target.name);
        Ok(())
    }

    async fn removal(&self, target: Placement<'_>) -> ProvisionResult<Removal> {
        Ok(if self.applied(target.name).is_some() {
            Removal::Running
        } else {
            Removal::Gone
        })
    }

    async fn running_template(&self, target: Placement<'_>) -> ProvisionResult<Option<String>> {
        Ok(self.applied(target.name))
    }

    /// The one resource a scripted target has, added or modified.
    async fn actions(&self, plan: &str) -> ProvisionResult<Vec<ResourceAction>> {
        let target = lock(&self.plans)
            .get(plan)
            .map(|(target, _)| target.clone())
            .ok_or_else(|| ProvisionError::Rejected(format!("no plan {plan}")))?;
        let action = if self.applied(&target).is_some() {
            Action::Modify
        } else {
            Action::Add
        };
        Ok(vec![ResourceAction {
            action,
            logical_id: "workspace".into(),
            resource_type: "Scripted::Workspace".into(),
            physical_id: None,
        }])
    }
}
