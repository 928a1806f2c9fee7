//! Deployment records and the deployment bookkeeping of a new target: one way to write each.

use crate::domain::environment::{
    Deployed, DeployedState, Deployment, DeploymentStatus, Operation, Target,
};
use crate::domain::names::{ResourceName, Timestamp};
use crate::ports::Provisioner;

/// The bookkeeping of a target about to be deployed for the first time by `engine`, under the
/// name the engine gives `parts` (`["instance", service, instance]`).
pub fn fresh(
    state: DeployedState,
    engine: &dyn Provisioner,
    parts: &[&str],
    role_arn: String,
    id: Option<String>,
    now: Timestamp,
) -> Deployed {
    Deployed {
        state,
        engine: engine.engine(),
        stack_name: engine.name(parts),
        role_arn,
        deployment_status: DeploymentStatus::InProgress,
        deployment_status_message: None,
        last_deployment_attempted_at: now,
        last_deployment_succeeded_at: now,
        last_attempted_deployment_id: id,
        last_succeeded_deployment_id: None,
        outputs: vec![],
        resources: vec![],
        adoption: None,
    }
}

/// The first deployment of a target: to `state`, from nothing.
pub fn deployment(
    id: &str,
    environment: &ResourceName,
    target: Target,
    state: DeployedState,
    created: Timestamp,
    now: Timestamp,
) -> Deployment {
    Deployment {
        id: id.to_string(),
        environment_name: environment.clone(),
        target,
        operation: Operation::Deploy,
        status: DeploymentStatus::InProgress,
        status_message: None,
        initial_state: None,
        target_state: state,
        target_created_at: created,
        created_at: now,
        last_modified_at: now,
        completed_at: None,
        cancel_requested: false,
        previous_succeeded_id: None,
        initiated_by: crate::app::deploy::audit::current(),
        expires_at: None,
        rev: 1,
    }
}

/// A deployment that moves what `current` deployed to `state`: it records the state it starts
/// from and the last successful deployment before it.
pub fn redeployment_of(
    id: &str,
    environment: &ResourceName,
    target: Target,
    current: &Deployed,
    state: DeployedState,
    created: Timestamp,
    now: Timestamp,
) -> Deployment {
    let mut record = deployment(id, environment, target, state, created, now);
    record.initial_state = Some(current.state.clone());
    record.previous_succeeded_id = current.last_succeeded_deployment_id.clone();
    record
}

/// The deletion of what `current` deployed.
pub fn deletion_of(
    id: &str,
    environment: &ResourceName,
    target: Target,
    current: &Deployed,
    created: Timestamp,
    now: Timestamp,
) -> Deployment {
    let state = current.state.clone();
    let mut record = redeployment_of(id, environment, target, current, state, created, now);
    record.operation = Operation::Delete;
    record.status = DeploymentStatus::DeleteInProgress;
    record
}

/// A new deployment id.
/// Where a deployment's rendered template is kept in paved's bucket.
pub fn rendered_key(deployment_id: &str) -> String {
    format!(
        "{}deployments/{deployment_id}",
        crate::domain::bundle::RENDERED_PREFIX
    )
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
