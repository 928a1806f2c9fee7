//! CloudFormation, the first provisioning engine: every CloudFormation rule paved follows lives
//! here. A deployment is a change set with the capabilities Proton templates need; an unchanged
//! template with unchanged tags is a no-op (paved compares both with the stack's, and honours
//! CloudFormation's own "no changes"); the stack carries the target's tags; a stack whose creation failed (`ROLLBACK_COMPLETE`) is removed and created again;
//! `UPDATE_ROLLBACK_FAILED` needs a person; stack names fit 128 characters.

mod fake;
#[cfg(feature = "aws")]
mod sdk;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

pub use fake::ScriptedStacks;
#[cfg(feature = "aws")]
pub use sdk::CloudFormationStacks;

use crate::domain::adoption::{Found, ResourceAction};
use crate::domain::drift::{DriftStatus, DriftedResource};
use crate::domain::environment::{ProvisionedResource, StackOutput};
use crate::domain::provisioning::ProvisioningEngine;
use crate::ports::{
    BoxError, Placement, PlanState, Planning, Progress, ProvisionError, ProvisionResult,
    Provisioned, Provisioner, Removal,
};

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// CloudFormation refused the request itself (a bad template, a missing role).
    #[error("{0}")]
    Rejected(String),
    #[error("CloudFormation throttled the request")]
    Throttled(#[source] BoxError),
    #[error("the CloudFormation request failed")]
    Backend(#[source] BoxError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSetState {
    Pending,
    Ready,
    /// The template and parameters equal the stack's: nothing to do.
    NoChanges,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackState {
    Missing,
    /// Still moving; the status name says where.
    InProgress(String),
    Complete,
    /// Ended without reaching the wanted state: rolled back, failed, or stuck in
    /// `UPDATE_ROLLBACK_FAILED`; the reason comes from the stack's events.
    Failed {
        status: String,
        reason: String,
    },
}

/// The CloudFormation API calls the provisioner makes: the AWS SDK (`sdk`) or a scripted fake.
#[async_trait]
pub trait CloudFormationApi: Send + Sync {
    /// The template body of a stack, `None` if there is no stack.
    async fn template(&self, stack: &str) -> Result<Option<String>, CloudError>;
    /// The tags of a stack (empty if there is no stack).
    async fn tags(&self, stack: &str) -> Result<BTreeMap<String, String>, CloudError>;
    /// Creates a change set (CREATE when `exists` is false) that leaves the stack with exactly
    /// `tags`, returning its id.
    async fn create_change_set(
        &self,
        stack: &str,
        change_set: &str,
        template: &str,
        role_arn: &str,
        exists: bool,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, CloudError>;
    async fn change_set(&self, id: &str) -> Result<ChangeSetState, CloudError>;
    async fn execute_change_set(&self, id: &str) -> Result<(), CloudError>;
    async fn delete_change_set(&self, id: &str) -> Result<(), CloudError>;
    /// The state of the stack; `deleting` reads a missing stack as the goal reached.
    async fn state(&self, stack: &str) -> Result<StackState, CloudError>;
    async fn outputs(&self, stack: &str) -> Result<Vec<StackOutput>, CloudError>;
    async fn resources(&self, stack: &str) -> Result<Vec<ProvisionedResource>, CloudError>;
    async fn delete(&self, stack: &str, role_arn: &str) -> Result<(), CloudError>;
    async fn cancel_update(&self, stack: &str) -> Result<(), CloudError>;
    /// Every stack of the account and region that is not deleted, with its tags and outputs.
    async fn stacks(&self) -> Result<Vec<Found>, CloudError>;
    /// What a change set does to each resource (a `Modify` whose `Replacement` is `True` or
    /// `Conditional` is a replacement).
    async fn changes(&self, change_set: &str) -> Result<Vec<ResourceAction>, CloudError>;
    /// Starts drift detection on a stack: the detection's id.
    async fn detect_drift(&self, stack: &str) -> Result<String, CloudError>;
    async fn drift_detection(&self, id: &str) -> Result<DriftDetection, CloudError>;
    /// The resources of a stack its last detection found modified or deleted.
    async fn resource_drifts(&self, stack: &str) -> Result<Vec<DriftedResource>, CloudError>;
}

/// How a drift detection is doing (`DescribeStackDriftDetectionStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftDetection {
    InProgress,
    Complete {
        drifted: bool,
    },
    /// Some resources could not be checked (the reason says which); what was checked counts.
    Failed {
        drifted: bool,
        reason: String,
    },
}

impl From<CloudError> for ProvisionError {
    fn from(error: CloudError) -> Self {
        match error {
            CloudError::Rejected(message) => Self::Rejected(with_role_advice(message)),
            CloudError::Throttled(source) => Self::Throttled(source),
            CloudError::Backend(source) => Self::Backend(source),
        }
    }
}

/// CloudFormation's refusal of a role it cannot assume, with what to change: roles written for
/// Proton trust `proton.amazonaws.com` only.
fn with_role_advice(message: String) -> String {
    use crate::domain::roles::{CLOUDFORMATION, trust_statement};
    if message.contains("cannot be assumed") || message.contains("is invalid or cannot be") {
        format!(
            "{message} (CloudFormation must be able to assume the role: add this statement to its trust policy: {})",
            trust_statement(CLOUDFORMATION)
        )
    } else {
        message
    }
}

/// The prefix of the stacks paved makes unless configured otherwise (`PAVED_STACK_PREFIX`).
pub const DEFAULT_STACK_PREFIX: &str = "paved-";

/// Stack names are at most 128 characters: long names keep a readable prefix and a hash of
/// the whole.
pub fn stack_name(prefix: &str, parts: &[&str]) -> String {
    let name = format!("{prefix}{}", parts.join("-"));
    if name.len() <= 128 {
        return name;
    }
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{}-{hash:016x}", &name[..111])
}

/// The CloudFormation provisioner, over the SDK or a fake of its API.
pub struct CloudFormation {
    api: Arc<dyn CloudFormationApi>,
    prefix: String,
}

impl CloudFormation {
    /// A change set for `rendered`; `reset` lets a stack whose creation failed be removed first
    /// (a deployment), else such a stack is `Settling` (a preview changes nothing).
    async fn change_set(
        &self,
        target: Placement<'_>,
        plan: &str,
        rendered: &str,
        tags: &BTreeMap<String, String>,
        reset: bool,
    ) -> ProvisionResult<Planning> {
        let stack = target.name;
        let exists = match self.api.state(stack).await? {
            StackState::Missing => false,
            StackState::InProgress(_) => return Ok(Planning::Settling),
            StackState::Complete => true,
            StackState::Failed { status, .. }
                if matches!(
                    status.as_str(),
                    "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" | "REVIEW_IN_PROGRESS"
                ) =>
            {
                // A stack whose creation failed (or never ran) cannot be updated: remove it,
                // then create it again.
                if reset {
                    self.api.delete(stack, target.role_arn).await?;
                }
                return Ok(Planning::Settling);
            }
            StackState::Failed { status, reason } if status == "UPDATE_ROLLBACK_FAILED" => {
                return Err(ProvisionError::Stuck(format!(
                    "stack {stack} is in UPDATE_ROLLBACK_FAILED ({reason}); continue its rollback in CloudFormation (ContinueUpdateRollback), then deploy again"
                )));
            }
            StackState::Failed { .. } => true,
        };
        if exists
            && self.api.template(stack).await?.as_deref() == Some(rendered)
            && self.api.tags(stack).await? == *tags
        {
            return Ok(Planning::Unchanged);
        }
        let change_set = format!("paved-{plan}");
        let id = self
            .api
            .create_change_set(stack, &change_set, rendered, target.role_arn, exists, tags)
            .await?;
        Ok(Planning::Planned(id))
    }

    pub fn new(api: Arc<dyn CloudFormationApi>) -> Self {
        Self {
            api,
            prefix: DEFAULT_STACK_PREFIX.into(),
        }
    }

    /// New stacks are named `<prefix><kind>-<names>` (role policies scope CloudFormation
    /// permissions by it); adopted stacks keep their own names.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

#[async_trait]
impl Provisioner for CloudFormation {
    fn engine(&self) -> ProvisioningEngine {
        ProvisioningEngine::CloudFormation
    }

    fn name(&self, parts: &[&str]) -> String {
        stack_name(&self.prefix, parts)
    }

    async fn discover(&self) -> ProvisionResult<Vec<Found>> {
        Ok(self.api.stacks().await?)
    }

    async fn running_template(&self, target: Placement<'_>) -> ProvisionResult<Option<String>> {
        Ok(self.api.template(target.name).await?)
    }

    async fn detect_drift(&self, target: Placement<'_>) -> ProvisionResult<Option<String>> {
        if self.api.state(target.name).await? == StackState::Missing {
            return Err(ProvisionError::Rejected(format!(
                "stack {} does not exist",
                target.name
            )));
        }
        Ok(Some(self.api.detect_drift(target.name).await?))
    }

    async fn drift(
        &self,
        target: Placement<'_>,
        detection: &str,
    ) -> ProvisionResult<Option<crate::ports::DriftFound>> {
        let (drifted, message) = match self.api.drift_detection(detection).await? {
            DriftDetection::InProgress => return Ok(None),
            DriftDetection::Complete { drifted } => (drifted, None),
            DriftDetection::Failed { drifted, reason } => (drifted, Some(reason)),
        };
        let resources = if drifted {
            self.api.resource_drifts(target.name).await?
        } else {
            vec![]
        };
        let status = match (drifted, &message) {
            (true, _) => DriftStatus::Drifted,
            (false, None) => DriftStatus::InSync,
            (false, Some(_)) => DriftStatus::Unknown,
        };
        Ok(Some(crate::ports::DriftFound {
            status,
            resources,
            message,
        }))
    }

    async fn actions(&self, plan: &str) -> ProvisionResult<Vec<ResourceAction>> {
        Ok(self.api.changes(plan).await?)
    }

    async fn plan(
        &self,
        target: Placement<'_>,
        plan: &str,
        rendered: &str,
        tags: &BTreeMap<String, String>,
    ) -> ProvisionResult<Planning> {
        self.change_set(target, plan, rendered, tags, true).await
    }

    async fn preview(
        &self,
        target: Placement<'_>,
        plan: &str,
        rendered: &str,
        tags: &BTreeMap<String, String>,
    ) -> ProvisionResult<Planning> {
        self.change_set(target, plan, rendered, tags, false).await
    }

    async fn plan_state(&self, plan: &str) -> ProvisionResult<PlanState> {
        Ok(match self.api.change_set(plan).await? {
            ChangeSetState::Pending => PlanState::Pending,
            ChangeSetState::Ready => PlanState::Ready,
            ChangeSetState::NoChanges => {
                self.api.delete_change_set(plan).await?;
                PlanState::Unchanged
            }
            ChangeSetState::Failed(reason) => {
                PlanState::Failed(with_role_advice(format!("the change set failed: {reason}")))
            }
        })
    }

    async fn apply(&self, plan: &str) -> ProvisionResult<()> {
        Ok(self.api.execute_change_set(plan).await?)
    }

    async fn discard(&self, plan: &str) -> ProvisionResult<()> {
        Ok(self.api.delete_change_set(plan).await?)
    }

    async fn progress(&self, target: Placement<'_>, cancel: bool) -> ProvisionResult<Progress> {
        let stack = target.name;
        Ok(match self.api.state(stack).await? {
            StackState::InProgress(status) => {
                // Only an update can be cancelled; a creation runs to its end.
                if cancel
                    && status == "UPDATE_IN_PROGRESS"
                    && let Err(error) = self.api.cancel_update(stack).await
                {
                    // Already cancelling, or finished in between: the next check tells.
                    tracing::info!(error = %error, "cancel update not accepted");
                }
                Progress::Running
            }
            StackState::Complete => Progress::Done,
            StackState::Failed { status, .. } if cancel && status == "UPDATE_ROLLBACK_COMPLETE" => {
                Progress::Cancelled
            }
            StackState::Failed { status, reason } => Progress::Failed(with_role_advice(format!(
                "stack {stack} ended in {status}: {reason}"
            ))),
            StackState::Missing => Progress::Failed(format!("stack {stack} does not exist")),
        })
    }

    async fn provisioned(&self, target: Placement<'_>) -> ProvisionResult<Option<Provisioned>> {
        if self.api.state(target.name).await? == StackState::Missing {
            return Ok(None);
        }
        Ok(Some(Provisioned {
            outputs: self.api.outputs(target.name).await?,
            resources: self.api.resources(target.name).await?,
        }))
    }

    async fn remove(&self, target: Placement<'_>) -> ProvisionResult<()> {
        let stack = target.name;
        if self.api.state(stack).await? == StackState::Missing {
            return Ok(());
        }
        if let Err(error) = self.api.delete(stack, target.role_arn).await {
            // What counts is whether the stack is gone: an error with the stack gone (emulators
            // delete synchronously and report leftovers) is still a deletion.
            if self.api.state(stack).await? != StackState::Missing {
                return Err(match error {
                    CloudError::Rejected(reason) => ProvisionError::Rejected(format!(
                        "stack {stack} could not be deleted: {reason}"
                    )),
                    other => other.into(),
                });
            }
            tracing::warn!(%stack, error = %error, "stack deleted with an error");
        }
        Ok(())
    }

    async fn removal(&self, target: Placement<'_>) -> ProvisionResult<Removal> {
        let stack = target.name;
        Ok(match self.api.state(stack).await? {
            StackState::Missing => Removal::Gone,
            StackState::InProgress(_) | StackState::Complete => Removal::Running,
            StackState::Failed { status, reason } => Removal::Failed(with_role_advice(format!(
                "stack {stack} could not be deleted ({status}): {reason}"
            ))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_cloudformation_cannot_assume_is_named_with_the_fix() {
        let refused: ProvisionError = CloudError::Rejected(
            "Role arn:aws:iam::123456789012:role/old is invalid or cannot be assumed".into(),
        )
        .into();
        let message = refused.to_string();
        assert!(message.contains("role/old is invalid"), "{message}");
        assert!(
            message.contains("\"Service\": \"cloudformation.amazonaws.com\""),
            "{message}"
        );
        let other: ProvisionError = CloudError::Rejected("Template format error".into()).into();
        assert_eq!(other.to_string(), "Template format error");
    }

    #[test]
    fn long_stack_names_keep_a_prefix_and_a_hash_within_128_characters() {
        let long = "x".repeat(100);
        let name = stack_name("paved-", &["instance", &long, &long]);
        assert_eq!(name.len(), 128);
        assert!(name.starts_with("paved-instance-xxx"));
        assert_ne!(
            name,
            stack_name("paved-", &["instance", &long, &"y".repeat(100)])
        );
        assert_eq!(
            stack_name("paved-", &["environment", "dev"]),
            "paved-environment-dev"
        );
        assert_eq!(
            stack_name("acme-", &["environment", "dev"]),
            "acme-environment-dev"
        );
    }
}
