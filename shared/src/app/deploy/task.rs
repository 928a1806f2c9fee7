//! The steps of the deploy and delete state machines, as the tagged enum their payloads parse
//! into, and the stable error names the state machines' Retry and Catch match.

use serde::Deserialize;
use serde_json::Value as Json;

use crate::app::Error;
use crate::domain::error::chain;
use crate::ports::{PipelineError, ProvisionError, StoreError};

/// The steps of `statemachines/deploy.asl.json` and `delete.asl.json`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(
    tag = "task",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum DeploymentTask {
    /// Renders the template and asks the engine for a plan.
    Plan {
        deployment_id: String,
        /// The longest wait between two checks (the execution's `pollSeconds`).
        #[serde(default)]
        poll_seconds: Option<u64>,
    },
    CheckPlan {
        deployment_id: String,
        plan: String,
        #[serde(default)]
        poll_seconds: Option<u64>,
    },
    Apply {
        deployment_id: String,
        plan: String,
        #[serde(default)]
        poll_seconds: Option<u64>,
    },
    /// Follows the applied plan; asks the engine to stop it if the deployment was cancelled.
    CheckProgress {
        deployment_id: String,
        /// The longest wait between two checks (the execution's `pollSeconds`).
        #[serde(default)]
        poll_seconds: Option<u64>,
    },
    Finish {
        deployment_id: String,
        #[serde(default)]
        cancelled: bool,
    },
    /// Records what a Catch caught (`{Error, Cause}`).
    Fail {
        deployment_id: String,
        error: Option<Json>,
    },
    Remove {
        deployment_id: String,
        /// The longest wait between two checks (the execution's `pollSeconds`).
        #[serde(default)]
        poll_seconds: Option<u64>,
    },
    CheckRemoval {
        deployment_id: String,
        /// The longest wait between two checks (the execution's `pollSeconds`).
        #[serde(default)]
        poll_seconds: Option<u64>,
    },
    FinishRemoval {
        deployment_id: String,
    },
}

impl DeploymentTask {
    pub fn deployment_id(&self) -> &str {
        match self {
            Self::Plan { deployment_id, .. }
            | Self::CheckPlan { deployment_id, .. }
            | Self::Apply { deployment_id, .. }
            | Self::CheckProgress { deployment_id, .. }
            | Self::Finish { deployment_id, .. }
            | Self::Fail { deployment_id, .. }
            | Self::Remove { deployment_id, .. }
            | Self::CheckRemoval { deployment_id, .. }
            | Self::FinishRemoval { deployment_id } => deployment_id,
        }
    }

    /// The longest wait between checks the execution allows, if the step says.
    pub fn poll_seconds(&self) -> Option<u64> {
        match self {
            Self::Plan { poll_seconds, .. }
            | Self::CheckPlan { poll_seconds, .. }
            | Self::Apply { poll_seconds, .. }
            | Self::CheckProgress { poll_seconds, .. }
            | Self::Remove { poll_seconds, .. }
            | Self::CheckRemoval { poll_seconds, .. } => *poll_seconds,
            _ => None,
        }
    }
}

/// A task's failure, named so that the state machines' Retry and Catch can match it.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Worth retrying: throttling, a transient AWS error, a concurrent write.
    #[error("{0}")]
    Retryable(String),
    #[error("{0}")]
    RenderFailed(String),
    /// The engine refused the plan, or planning failed.
    #[error("{0}")]
    PlanFailed(String),
    /// What the engine provisioned ended failed, or cannot be changed without a person.
    #[error("{0}")]
    ProvisioningFailed(String),
    /// A service's pipeline could not be started or followed.
    #[error("{0}")]
    PipelineFailed(String),
    /// The task's input names nothing paved knows.
    #[error("{0}")]
    InvalidTask(String),
}

impl TaskError {
    /// Every name, for the check that the state machines match only names that exist.
    pub const NAMES: [&'static str; 6] = [
        "Retryable",
        "RenderFailed",
        "PlanFailed",
        "ProvisioningFailed",
        "PipelineFailed",
        "InvalidTask",
    ];

    /// The stable name Step Functions matches on (`errorType`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Retryable(_) => "Retryable",
            Self::RenderFailed(_) => "RenderFailed",
            Self::PlanFailed(_) => "PlanFailed",
            Self::ProvisioningFailed(_) => "ProvisioningFailed",
            Self::PipelineFailed(_) => "PipelineFailed",
            Self::InvalidTask(_) => "InvalidTask",
        }
    }
}

impl From<Error> for TaskError {
    fn from(error: Error) -> Self {
        match error {
            Error::Validation(message) => Self::RenderFailed(message),
            Error::NotFound(message) => Self::InvalidTask(message),
            Error::Store(StoreError::ConditionFailed) | Error::Conflict(_) => {
                Self::Retryable("the deployment changed while this step ran".into())
            }
            other => Self::Retryable(chain(&other)),
        }
    }
}

impl From<StoreError> for TaskError {
    fn from(error: StoreError) -> Self {
        Error::from(error).into()
    }
}

impl From<ProvisionError> for TaskError {
    fn from(error: ProvisionError) -> Self {
        match error {
            ProvisionError::Rejected(message) => Self::PlanFailed(message),
            ProvisionError::Stuck(message) => Self::ProvisioningFailed(message),
            other => Self::Retryable(chain(&other)),
        }
    }
}

impl From<PipelineError> for TaskError {
    fn from(error: PipelineError) -> Self {
        match error {
            PipelineError::NotFound(message) | PipelineError::Unavailable(message) => {
                Self::PipelineFailed(message)
            }
            other => Self::Retryable(chain(&other)),
        }
    }
}
