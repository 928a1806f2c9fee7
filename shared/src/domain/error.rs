//! The one error type of paved's use cases, and its mapping to Proton's wire errors.

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
    #[error("storage failed")]
    Store(#[source] StoreError),
    #[error("bundle storage failed")]
    Blob(#[source] BlobError),
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

    /// The Proton error type (`__type`) this error is sent as.
    pub fn proton_type(&self) -> &'static str {
        match self {
            Self::Validation(_) => "ValidationException",
            Self::NotFound(_) => "ResourceNotFoundException",
            Self::Conflict(_) => "ConflictException",
            Self::QuotaExceeded(_) => "ServiceQuotaExceededException",
            Self::Throttled(_) | Self::Store(StoreError::Throttled(_)) => "ThrottlingException",
            Self::Store(StoreError::ConditionFailed) => "ConflictException",
            Self::Store(_) | Self::Blob(_) => "InternalServerException",
        }
    }

    /// The HTTP status Proton answers this error with.
    pub fn status(&self) -> u16 {
        match self.proton_type() {
            "ValidationException" => 400,
            "ResourceNotFoundException" => 404,
            "ConflictException" => 409,
            "ServiceQuotaExceededException" => 402,
            "ThrottlingException" => 429,
            _ => 500,
        }
    }

    /// The message sent to the caller: internal failures stay opaque, their cause goes to the log.
    pub fn public_message(&self) -> String {
        match self.status() {
            500 => "paved could not complete the request; the cause is in its log".to_string(),
            429 => "the request was throttled; retry with backoff".to_string(),
            409 if matches!(self, Self::Store(StoreError::ConditionFailed)) => {
                "the resource was changed by another request; read it again and retry".to_string()
            }
            _ => self.to_string(),
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

/// An error and all its causes on one line, for logs and recorded failure reasons.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
