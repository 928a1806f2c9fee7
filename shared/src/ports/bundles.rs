//! Template bundles: read from where their authors put them, kept in paved's bucket.

use async_trait::async_trait;

use super::BoxError;

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

/// Where bundles are read from and where paved keeps its copies.
#[async_trait]
pub trait BundleStore: Send + Sync {
    /// Reads an object, refusing one larger than `max_bytes`.
    async fn fetch(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Vec<u8>, BlobError>;

    /// Stores bytes under `key` in paved's own bucket.
    async fn keep(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError>;

    /// Removes an object from paved's own bucket; absent objects are not an error.
    async fn discard(&self, key: &str) -> Result<(), BlobError>;

    /// Reads an object from paved's own bucket (a kept bundle).
    async fn read_kept(&self, key: &str) -> Result<Vec<u8>, BlobError>;
}
