//! Implementations of the ports: AWS (DynamoDB, S3) and in-memory.

pub mod dynamodb;
pub mod memory;
pub mod s3;
