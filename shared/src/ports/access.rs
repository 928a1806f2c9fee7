//! Where the access document is kept (every version, never overwritten), and what IAM knows
//! of the principals it names.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::StoreError;
use crate::domain::access::{Principal, StoredAccess};

#[async_trait]
pub trait AccessStore: Send + Sync {
    /// The newest version, if any was ever put.
    async fn current(&self) -> Result<Option<StoredAccess>, StoreError>;
    async fn version(&self, version: u64) -> Result<Option<StoredAccess>, StoreError>;
    /// Versions, newest first, at most `limit`, older than `before` when given.
    async fn versions(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredAccess>, StoreError>;
    /// Records a new version; `ConditionFailed` if that version exists already.
    async fn put(&self, access: StoredAccess) -> Result<(), StoreError>;
}

/// What the account's IAM knows of a principal that groups may match on: its tags (a user's,
/// or the role's of an assumed-role session).
#[async_trait]
pub trait PrincipalDirectory: Send + Sync {
    async fn tags(&self, principal: &Principal) -> Result<BTreeMap<String, String>, StoreError>;
}

/// Where the account settings are kept: one record, written conditionally on its revision.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// The settings as last written (the defaults if never).
    async fn settings(&self) -> Result<crate::domain::account::AccountSettings, StoreError>;
    /// Writes `settings` if the stored revision is still `settings.rev - 1`; `ConditionFailed`
    /// otherwise.
    async fn put_settings(
        &self,
        settings: crate::domain::account::AccountSettings,
    ) -> Result<(), StoreError>;
}

/// What IAM says of a role paved is asked to deploy under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleTrust {
    /// No such role in the account.
    Missing,
    /// Its trust policy (`AssumeRolePolicyDocument`), as JSON.
    Policy(String),
}

/// The account's roles, as far as paved may read them.
#[async_trait]
pub trait Roles: Send + Sync {
    async fn trust(&self, role_arn: &str) -> Result<RoleTrust, StoreError>;
}
