//! The state machines that run deployments and redeploys.

use async_trait::async_trait;

use super::BoxError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workflow {
    Deploy,
    Delete,
    /// A push's redeploy: start the service's pipeline and follow it.
    Redeploy,
    /// A staged fleet upgrade, its waves and approvals.
    Upgrade,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionState {
    Running,
    Succeeded,
    /// Failed, timed out or aborted.
    Ended,
}

/// Starts and observes the state machines that run deployments.
#[async_trait]
pub trait Workflows: Send + Sync {
    /// Starts an execution named after the deployment; starting it again is not an error.
    async fn start(
        &self,
        workflow: Workflow,
        execution: &str,
        input: serde_json::Value,
    ) -> Result<(), BoxError>;
    /// The state of an execution, `None` if it never started.
    async fn state(
        &self,
        workflow: Workflow,
        execution: &str,
    ) -> Result<Option<ExecutionState>, BoxError>;
    /// Resumes an execution that waits on `token` (a task token), with `output` as the
    /// waiting step's result. A token no execution waits on any more is not an error.
    async fn signal(&self, token: &str, output: serde_json::Value) -> Result<(), BoxError>;
}
