//! Drift: how a target's stack differs from what paved last deployed, as its provisioning
//! engine finds it.

use serde::{Deserialize, Serialize};

use super::names::Timestamp;
use super::upgrade::UpgradeTarget;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DriftStatus {
    InSync,
    Drifted,
    /// The engine is still comparing.
    Detecting,
    /// The engine could not tell (the message says why).
    Unknown,
}

impl DriftStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::InSync => "IN_SYNC",
            Self::Drifted => "DRIFTED",
            Self::Detecting => "DETECTING",
            Self::Unknown => "UNKNOWN",
        }
    }
}

/// One resource that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftedResource {
    pub logical_id: String,
    pub resource_type: String,
    /// `MODIFIED` or `DELETED`.
    pub status: String,
    /// The properties that differ: `path: expected → actual`.
    #[serde(default)]
    pub differences: Vec<String>,
}

/// What the last drift detection of a target found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftRecord {
    pub template_type: String,
    pub template_name: String,
    pub stack_name: String,
    #[serde(flatten)]
    pub target: UpgradeTarget,
    pub status: DriftStatus,
    #[serde(default)]
    pub resources: Vec<DriftedResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The engine's detection while it runs (status `DETECTING`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_id: Option<String>,
    pub checked_at: Timestamp,
}
