//! Environments and their deployments: the records, the status rules, and which template
//! version an update deploys.

use crate::domain::names::Tags;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::names::{Description, ResourceName, Timestamp};
use super::provisioning::ProvisioningEngine;
use super::template::{VersionIndex, VersionNumber, VersionStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    InProgress,
    Failed,
    Succeeded,
    DeleteInProgress,
    DeleteFailed,
    DeleteComplete,
    Cancelling,
    Cancelled,
}

impl DeploymentStatus {
    /// A deployment in one of these states is still running: nothing else may start.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::InProgress | Self::DeleteInProgress | Self::Cancelling
        )
    }
}

/// Proton's name of a deployment status (`IN_PROGRESS`, ...).
pub fn status_name(status: DeploymentStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentType {
    None,
    CurrentVersion,
    MinorVersion,
    MajorVersion,
}

/// What a deployment does to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operation {
    Deploy,
    Delete,
}

/// A template version and the spec deployed with it (Proton's `EnvironmentState`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployedState {
    pub template_name: ResourceName,
    pub major: u64,
    pub minor: u64,
    pub spec: String,
    /// The spec's inputs with the schema's defaults filled in.
    pub inputs: Map<String, Json>,
    /// A component's own definition (components have no template in the catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentDefinition>,
}

/// What a directly defined component deploys: its manifest and CloudFormation file, and the
/// service instance it is attached to, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentDefinition {
    pub manifest: String,
    pub template_file: String,
    pub service: Option<ResourceName>,
    pub instance: Option<ResourceName>,
}

impl DeployedState {
    pub fn version(&self) -> VersionNumber {
        VersionNumber {
            major: self.major,
            minor: self.minor,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackOutput {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionedResource {
    pub name: String,
    pub identifier: String,
    /// The CloudFormation type, as the stack reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
}

/// The deployment bookkeeping of anything paved deploys as a stack: what is deployed (or being
/// deployed), where, under which role, and how the last deployments went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    pub state: DeployedState,
    /// The engine that provisions the target (records from before engines were named are
    /// CloudFormation's).
    #[serde(default)]
    pub engine: ProvisioningEngine,
    /// The engine's name for what it provisions (a CloudFormation stack name).
    pub stack_name: String,
    /// The role the engine provisions under.
    pub role_arn: String,
    pub deployment_status: DeploymentStatus,
    pub deployment_status_message: Option<String>,
    pub last_deployment_attempted_at: Timestamp,
    pub last_deployment_succeeded_at: Timestamp,
    pub last_attempted_deployment_id: Option<String>,
    pub last_succeeded_deployment_id: Option<String>,
    #[serde(default)]
    pub outputs: Vec<StackOutput>,
    #[serde(default)]
    pub resources: Vec<ProvisionedResource>,
    /// Set on a target adopted from a stack paved did not make, until paved's first deployment
    /// of it succeeds (`domain::adoption`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<super::adoption::Adoption>,
}

impl Deployed {
    /// Marks a deployment (or deletion) as started on this target.
    pub fn begin(&mut self, id: &str, status: DeploymentStatus, now: Timestamp) {
        self.deployment_status = status;
        self.deployment_status_message = None;
        self.last_deployment_attempted_at = now;
        self.last_attempted_deployment_id = Some(id.to_string());
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub name: ResourceName,
    pub description: Option<Description>,
    /// The role component stacks in this environment deploy under; no components without it.
    #[serde(default)]
    pub component_role_arn: Option<String>,
    pub created_at: Timestamp,
    #[serde(flatten)]
    pub deployed: Deployed,
    /// The customer's own tags (TagResource, or `tags` on create).
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    pub rev: u64,
}

/// What a deployment deploys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Target {
    Environment,
    ServiceInstance {
        service: ResourceName,
        instance: ResourceName,
    },
    ServicePipeline {
        service: ResourceName,
    },
    Component {
        component: ResourceName,
    },
}

impl Target {
    /// Proton's `targetResourceType`.
    pub fn resource_type(&self) -> &'static str {
        match self {
            Self::Environment => "ENVIRONMENT",
            Self::ServiceInstance { .. } => "SERVICE_INSTANCE",
            Self::ServicePipeline { .. } => "SERVICE_PIPELINE",
            Self::Component { .. } => "COMPONENT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    /// The environment the target runs in (the target itself, for an environment).
    pub environment_name: ResourceName,
    pub target: Target,
    pub operation: Operation,
    pub status: DeploymentStatus,
    pub status_message: Option<String>,
    pub initial_state: Option<DeployedState>,
    pub target_state: DeployedState,
    pub target_created_at: Timestamp,
    pub created_at: Timestamp,
    pub last_modified_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// Set by a cancel request; the running workflow acts on it.
    #[serde(default)]
    pub cancel_requested: bool,
    /// The last deployment before this one that succeeded, for Proton's summary fields.
    pub previous_succeeded_id: Option<String>,
    /// Who asked for it (none for deployments started by a push or by paved itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<crate::domain::access::Initiator>,
    /// When the record may be dropped (seconds since the epoch; the table's TTL attribute):
    /// set once it can no longer be what its target last ran — when it ended without
    /// succeeding, or when a later deployment of its target succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    pub rev: u64,
}

/// Which version an update deploys, from Proton's `deploymentType` rules.
pub fn target_version(
    current: VersionNumber,
    deployment_type: DeploymentType,
    major: Option<u64>,
    minor: Option<u64>,
    index: &VersionIndex,
) -> Result<VersionNumber, String> {
    let published = |n: VersionNumber| index.statuses.get(&n) == Some(&VersionStatus::Published);
    match deployment_type {
        DeploymentType::None | DeploymentType::CurrentVersion => {
            if major.is_some_and(|m| m != current.major)
                || minor.is_some_and(|m| m != current.minor)
            {
                return Err(format!(
                    "templateMajorVersion/templateMinorVersion: {deployment_type:?} keeps version {current}; use MINOR_VERSION or MAJOR_VERSION to change it"
                ));
            }
            Ok(current)
        }
        DeploymentType::MinorVersion => {
            if major.is_some_and(|m| m != current.major) {
                return Err(format!(
                    "templateMajorVersion: MINOR_VERSION stays on major {}; use MAJOR_VERSION to change majors",
                    current.major
                ));
            }
            let target = match minor {
                Some(minor) => VersionNumber {
                    major: current.major,
                    minor,
                },
                None => VersionNumber {
                    major: current.major,
                    minor: index.recommended_minor(current.major).ok_or_else(|| {
                        format!(
                            "major version {} has no published minor version",
                            current.major
                        )
                    })?,
                },
            };
            if !published(target) {
                return Err(format!(
                    "version {target} is not a published version of the template"
                ));
            }
            if target.minor < current.minor {
                return Err(format!(
                    "version {target} is older than the deployed {current}"
                ));
            }
            Ok(target)
        }
        DeploymentType::MajorVersion => {
            let target = match (major, minor) {
                (Some(major), Some(minor)) => VersionNumber { major, minor },
                (Some(major), None) => VersionNumber {
                    major,
                    minor: index.recommended_minor(major).ok_or_else(|| {
                        format!("major version {major} has no published minor version")
                    })?,
                },
                (None, _) => index
                    .recommended()
                    .ok_or_else(|| "the template has no published version".to_string())?,
            };
            if target.major <= current.major {
                return Err(format!(
                    "MAJOR_VERSION must move to a higher major than {}, got {target}",
                    current.major
                ));
            }
            if !published(target) {
                return Err(format!(
                    "version {target} is not a published version of the template"
                ));
            }
            Ok(target)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u64, minor: u64) -> VersionNumber {
        VersionNumber { major, minor }
    }

    fn index() -> VersionIndex {
        let mut index = VersionIndex::default();
        for (n, s) in [
            (v(1, 0), VersionStatus::Published),
            (v(1, 1), VersionStatus::Published),
            (v(1, 2), VersionStatus::Draft),
            (v(2, 0), VersionStatus::Published),
            (v(3, 0), VersionStatus::Draft),
        ] {
            index.insert(n, s);
        }
        index
    }

    #[test]
    fn minor_updates_go_to_the_recommended_or_named_minor_of_the_same_major() {
        let index = index();
        assert_eq!(
            target_version(v(1, 0), DeploymentType::MinorVersion, None, None, &index),
            Ok(v(1, 1))
        );
        assert_eq!(
            target_version(v(1, 0), DeploymentType::MinorVersion, None, Some(1), &index),
            Ok(v(1, 1))
        );
        assert!(
            target_version(v(1, 0), DeploymentType::MinorVersion, None, Some(2), &index)
                .unwrap_err()
                .contains("not a published")
        );
        assert!(
            target_version(v(1, 0), DeploymentType::MinorVersion, Some(2), None, &index).is_err()
        );
    }

    #[test]
    fn major_updates_go_up_to_a_published_major() {
        let index = index();
        assert_eq!(
            target_version(v(1, 1), DeploymentType::MajorVersion, None, None, &index),
            Ok(v(2, 0))
        );
        assert_eq!(
            target_version(v(1, 1), DeploymentType::MajorVersion, Some(2), None, &index),
            Ok(v(2, 0))
        );
        assert!(
            target_version(v(1, 1), DeploymentType::MajorVersion, Some(3), None, &index).is_err()
        );
        assert!(
            target_version(v(2, 0), DeploymentType::MajorVersion, Some(1), None, &index).is_err()
        );
    }

    #[test]
    fn current_version_keeps_the_version() {
        let index = index();
        assert_eq!(
            target_version(v(1, 0), DeploymentType::CurrentVersion, None, None, &index),
            Ok(v(1, 0))
        );
        assert!(
            target_version(
                v(1, 0),
                DeploymentType::CurrentVersion,
                None,
                Some(1),
                &index
            )
            .is_err()
        );
    }
}
