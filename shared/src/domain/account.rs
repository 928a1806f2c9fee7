//! Account settings (GetAccountSettings / UpdateAccountSettings): where service pipelines come
//! from, as Proton kept them per account.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSettings {
    /// The role new service pipelines are deployed under; without it, the one paved was
    /// deployed with (`PAVED_PIPELINE_ROLE_ARN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_service_role_arn: Option<String>,
    /// Bumped on every write; writes are conditional on the value they read (0: never written).
    #[serde(default)]
    pub rev: u64,
}
