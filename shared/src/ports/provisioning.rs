//! Provisioning: one engine-neutral port for whatever turns a rendered template into running
//! infrastructure. CloudFormation is its first adapter (`adapters/cloudformation`); every rule
//! of an engine (its status names, how it recovers, how it detects a no-op) stays in its adapter.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::BoxError;
use crate::domain::adoption::{Found, ResourceAction};
use crate::domain::environment::{ProvisionedResource, StackOutput};
use crate::domain::provisioning::ProvisioningEngine;

/// What an engine provisions for one target: its name in the engine (a stack name) and the
/// role the engine works under.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    pub name: &'a str,
    pub role_arn: &'a str,
}

/// How planning a deployment began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planning {
    /// The target is still moving (or being cleared for a fresh start): plan again later.
    Settling,
    /// What is provisioned already equals the rendered template: nothing to do.
    Unchanged,
    /// A plan is being made; its id is what the later steps name.
    Planned(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanState {
    Pending,
    Ready,
    /// The plan found nothing to change (and was discarded).
    Unchanged,
    Failed(String),
}

/// How an applied plan is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Running,
    Done,
    /// Stopped on request, with what was provisioned before left in place.
    Cancelled,
    Failed(String),
}

/// How a removal is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Running,
    Gone,
    Failed(String),
}

/// What a target provisioned: its outputs and resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provisioned {
    pub outputs: Vec<StackOutput>,
    pub resources: Vec<ProvisionedResource>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The engine refused the request itself (a bad template, a missing role).
    #[error("{0}")]
    Rejected(String),
    /// The target is in a state only a person can get it out of; the message says how.
    #[error("{0}")]
    Stuck(String),
    #[error("the provisioning engine throttled the request")]
    Throttled(#[source] BoxError),
    #[error("the provisioning request failed")]
    Backend(#[source] BoxError),
}

pub type ProvisionResult<T> = Result<T, ProvisionError>;

/// One provisioning engine. Every call is safe to repeat: the state machines retry steps.
#[async_trait]
pub trait Provisioner: Send + Sync {
    fn engine(&self) -> ProvisioningEngine;

    /// The engine's name for a target made of `parts`, within the engine's own limits.
    fn name(&self, parts: &[&str]) -> String;

    /// Starts planning the deployment of `rendered` to the target, carrying `tags`; `plan`
    /// names the plan. A target whose template and tags are already these is `Unchanged`.
    async fn plan(
        &self,
        target: Placement<'_>,
        plan: &str,
        rendered: &str,
        tags: &BTreeMap<String, String>,
    ) -> ProvisionResult<Planning>;

    /// As [`Self::plan`], for a plan that will only be looked at (a preview): it never changes
    /// the target, so a target that is moving, or that a deployment would first reset, is
    /// `Settling`.
    async fn preview(
        &self,
        target: Placement<'_>,
        plan: &str,
        rendered: &str,
        tags: &BTreeMap<String, String>,
    ) -> ProvisionResult<Planning>;

    async fn plan_state(&self, plan: &str) -> ProvisionResult<PlanState>;

    async fn apply(&self, plan: &str) -> ProvisionResult<()>;

    /// Drops a plan that will not be applied.
    async fn discard(&self, plan: &str) -> ProvisionResult<()>;

    /// How the applied plan is doing; with `cancel`, the engine is asked to stop it.
    async fn progress(&self, target: Placement<'_>, cancel: bool) -> ProvisionResult<Progress>;

    /// What the target provisioned, `None` if nothing is provisioned.
    async fn provisioned(&self, target: Placement<'_>) -> ProvisionResult<Option<Provisioned>>;

    /// Starts removing everything the target provisioned; nothing provisioned is not an error.
    async fn remove(&self, target: Placement<'_>) -> ProvisionResult<()>;

    async fn removal(&self, target: Placement<'_>) -> ProvisionResult<Removal>;

    /// Everything the engine provisioned in the account that is still there (what adoption
    /// looks through); an engine that cannot list finds nothing.
    async fn discover(&self) -> ProvisionResult<Vec<Found>> {
        Ok(vec![])
    }

    /// The template the target runs now, `None` if nothing is provisioned.
    async fn running_template(&self, target: Placement<'_>) -> ProvisionResult<Option<String>>;

    /// What a ready plan does to each resource.
    async fn actions(&self, plan: &str) -> ProvisionResult<Vec<ResourceAction>>;

    /// Starts comparing what the target runs with what was deployed: the detection's id, or
    /// `None` if this engine cannot detect drift.
    async fn detect_drift(&self, _target: Placement<'_>) -> ProvisionResult<Option<String>> {
        Ok(None)
    }

    /// What a detection found; `None` while it runs.
    async fn drift(
        &self,
        _target: Placement<'_>,
        _detection: &str,
    ) -> ProvisionResult<Option<DriftFound>> {
        Ok(Some(DriftFound {
            status: crate::domain::drift::DriftStatus::Unknown,
            resources: vec![],
            message: Some("this provisioning engine does not detect drift".into()),
        }))
    }
}

/// What a drift detection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftFound {
    pub status: crate::domain::drift::DriftStatus,
    pub resources: Vec<crate::domain::drift::DriftedResource>,
    pub message: Option<String>,
}
