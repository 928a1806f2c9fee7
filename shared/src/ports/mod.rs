//! The capabilities paved needs from the outside world, one small trait each.

use async_trait::async_trait;

use crate::domain::names::ResourceName;
use crate::domain::template::{Template, TemplateKind, TemplateVersion, VersionNumber};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item changed (or present, or gone) since it was read.
    #[error("the item changed since it was read")]
    ConditionFailed,
    #[error("the store throttled the request")]
    Throttled(#[source] BoxError),
    #[error("the page token is not one this store issued")]
    BadCursor,
    #[error("item {key} is malformed: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("the store request failed")]
    Backend(#[source] BoxError),
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no object s3://{bucket}/{key}")]
    NotFound { bucket: String, key: String },
    #[error("access to s3://{bucket}/{key} denied")]
    AccessDenied { bucket: String, key: String },
    #[error("s3://{bucket}/{key} is {size} bytes, over {max}")]
    TooLarge {
        bucket: String,
        key: String,
        size: u64,
        max: u64,
    },
    #[error("the object store throttled the request")]
    Throttled(#[source] BoxError),
    #[error("the object store request failed")]
    Backend(#[source] BoxError),
}

/// One page of a listing request.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: Option<u32>,
    /// An opaque position returned by the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub cursor: Option<String>,
}

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

/// Where bundles are read from and where paved keeps its copies.
#[async_trait]
pub trait BundleStore: Send + Sync {
    /// Reads an object, refusing one larger than `max_bytes`.
    async fn fetch(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Vec<u8>, BlobError>;

    /// Stores bytes under `key` in paved's own bucket.
    async fn keep(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError>;

    /// Removes an object from paved's own bucket; absent objects are not an error.
    async fn discard(&self, key: &str) -> Result<(), BlobError>;
}
