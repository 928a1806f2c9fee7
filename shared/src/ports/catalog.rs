//! The template catalog's storage.

use async_trait::async_trait;

use super::{Page, PageRequest, StoreError};
use crate::domain::names::ResourceName;
use crate::domain::template::{Template, TemplateKind, TemplateVersion, VersionNumber};

/// A record of a request made with a `clientToken`, so that its retry gets the same answer.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub scope: String,
    pub token: String,
    /// The request's parameters, canonicalised: a retry with other parameters is refused.
    pub fingerprint: String,
    /// What the request created.
    pub result: VersionNumber,
    pub expires_at: u64,
}

pub enum TemplateWrite {
    Create(Template),
    /// Replaces the template if its `rev` is still `expected_rev`.
    Replace {
        template: Template,
        expected_rev: u64,
    },
    Delete {
        kind: TemplateKind,
        name: ResourceName,
        expected_rev: u64,
    },
}

pub enum VersionWrite {
    Create(TemplateVersion),
    Replace {
        version: TemplateVersion,
        expected_rev: u64,
    },
    Delete {
        version: TemplateVersion,
        expected_rev: u64,
    },
}

/// Writes applied together or not at all.
#[derive(Default)]
pub struct CatalogWrite {
    pub template: Option<TemplateWrite>,
    pub version: Option<VersionWrite>,
    pub idempotency: Option<IdempotencyRecord>,
}

/// The template catalog's storage.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    async fn template(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
    ) -> Result<Option<Template>, StoreError>;

    async fn templates(
        &self,
        kind: TemplateKind,
        page: PageRequest,
    ) -> Result<Page<Template>, StoreError>;

    async fn version(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        number: VersionNumber,
    ) -> Result<Option<TemplateVersion>, StoreError>;

    /// How many deployed resources run on a version (what its deletion checks); `None` if the
    /// version does not exist. [`Self::version`] need not count them (counting may take reads
    /// of their own), so its `in_use` is not to be relied on.
    async fn in_use(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        number: VersionNumber,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self.version(kind, name, number).await?.map(|v| v.in_use))
    }

    /// Versions in ascending order, all of them or those of one major.
    async fn versions(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        major: Option<u64>,
        page: PageRequest,
    ) -> Result<Page<TemplateVersion>, StoreError>;

    async fn idempotency_record(
        &self,
        scope: &str,
        token: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Applies every write atomically; `ConditionFailed` if any condition does not hold.
    async fn write(&self, write: CatalogWrite) -> Result<(), StoreError>;
}
