//! Implementations of the ports: AWS (DynamoDB, S3) and in-memory.

#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod memory;
#[cfg(feature = "aws")]
pub mod s3;
