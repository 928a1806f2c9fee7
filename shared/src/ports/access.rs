//! Where the access document is kept: every version, never overwritten.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::access::StoredAccess;

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
