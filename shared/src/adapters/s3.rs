//! Bundles in S3: read from wherever the template author uploaded them, kept in paved's bucket.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use crate::ports::{BlobError, BundleStore};

pub struct S3BundleStore {
    client: Client,
    own_bucket: String,
}

impl S3BundleStore {
    pub fn new(client: Client, own_bucket: impl Into<String>) -> Self {
        Self {
            client,
            own_bucket: own_bucket.into(),
        }
    }
}

type Response = aws_sdk_s3::config::http::HttpResponse;

fn classify<E>(error: SdkError<E, Response>, bucket: &str, key: &str) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    match (error.code(), status) {
        (Some("NoSuchKey" | "NoSuchBucket" | "NotFound"), _) | (_, Some(404)) => {
            BlobError::NotFound {
                bucket: bucket.into(),
                key: key.into(),
            }
        }
        (Some("AccessDenied" | "Forbidden"), _) | (_, Some(403)) => BlobError::AccessDenied {
            bucket: bucket.into(),
            key: key.into(),
        },
        (Some("SlowDown" | "Throttling" | "ThrottlingException"), _) | (_, Some(503)) => {
            BlobError::Throttled(Box::new(error))
        }
        _ => BlobError::Backend(Box::new(error)),
    }
}

#[async_trait]
impl BundleStore for S3BundleStore {
    #[tracing::instrument(skip(self))]
    async fn fetch(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Vec<u8>, BlobError> {
        let object = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(e, bucket, key))?;
        let size = object.content_length.unwrap_or_default().max(0) as u64;
        if size > max_bytes {
            return Err(BlobError::TooLarge {
                bucket: bucket.into(),
                key: key.into(),
                size,
                max: max_bytes,
            });
        }
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| BlobError::Backend(Box::new(e)))?
            .into_bytes();
        if bytes.len() as u64 > max_bytes {
            return Err(BlobError::TooLarge {
                bucket: bucket.into(),
                key: key.into(),
                size: bytes.len() as u64,
                max: max_bytes,
            });
        }
        Ok(bytes.to_vec())
    }

    #[tracing::instrument(skip(self, bytes))]
    async fn keep(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.own_bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| classify(e, &self.own_bucket, key))?;
        Ok(())
    }

    async fn read_kept(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        self.fetch(&self.own_bucket, key, u64::MAX).await
    }

    #[tracing::instrument(skip(self))]
    async fn discard(&self, key: &str) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.own_bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(e, &self.own_bucket, key))?;
        Ok(())
    }
}
