//! The one error type of paved's use cases: the domain's refusals, and what went wrong outside
//! (storage, bundles). Its mapping to Proton's wire errors is the API's (`api::wire`).

use crate::domain::error as rules;
use crate::ports::{BlobError, StoreError};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's input is wrong; the message names the field or file and the rule.
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    NotFound(String),
    /// The resource's state forbids the call, or another writer changed it first.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("{0}")]
    Throttled(String),
    /// The caller's policies do not allow the call; nothing was done.
    #[error("{0}")]
    AccessDenied(String),
    #[error("storage failed")]
    Store(#[source] StoreError),
    #[error("bundle storage failed")]
    Blob(#[source] BlobError),
    /// The provisioning engine failed a call the API made (listing stacks for an import).
    #[error("the provisioning engine failed")]
    Provision(#[source] crate::ports::ProvisionError),
}

impl Error {
    pub fn validation(message: impl Into<String>) -> Self {
        Self::Validation(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }
}

impl From<rules::Error> for Error {
    fn from(error: rules::Error) -> Self {
        match error {
            rules::Error::Validation(message) => Self::Validation(message),
            rules::Error::NotFound(message) => Self::NotFound(message),
            rules::Error::Conflict(message) => Self::Conflict(message),
            rules::Error::QuotaExceeded(message) => Self::QuotaExceeded(message),
        }
    }
}

impl From<crate::ports::ProvisionError> for Error {
    fn from(error: crate::ports::ProvisionError) -> Self {
        use crate::ports::ProvisionError;
        match error {
            ProvisionError::Rejected(message) | ProvisionError::Stuck(message) => {
                Self::Validation(message)
            }
            ProvisionError::Throttled(_) => {
                Self::Throttled("the provisioning engine throttled paved".into())
            }
            other => Self::Provision(other),
        }
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::BadCursor => Self::validation("nextToken: not a token this listing issued"),
            other => Self::Store(other),
        }
    }
}

impl From<BlobError> for Error {
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::NotFound { bucket, key } => Self::Validation(format!(
                "source.s3: no object s3://{bucket}/{key} (check the bucket and key)"
            )),
            BlobError::AccessDenied { bucket, key } => Self::Validation(format!(
                "source.s3: paved may not read s3://{bucket}/{key} (access denied)"
            )),
            BlobError::TooLarge {
                bucket,
                key,
                size,
                max,
            } => Self::Validation(format!(
                "source.s3: s3://{bucket}/{key} is {size} bytes; a template bundle may be at most {max} bytes"
            )),
            BlobError::Throttled(_) => Self::Throttled("bundle storage throttled".into()),
            other => Self::Blob(other),
        }
    }
}
