//! Implementations of the ports: AWS (DynamoDB, S3, CloudFormation, Step Functions,
//! EventBridge, CodePipeline, Secrets Manager) and in-memory.

pub mod cached_bundles;
pub mod cloudformation;
#[cfg(feature = "aws")]
pub mod codepipeline;
#[cfg(feature = "aws")]
pub mod dynamodb;
#[cfg(feature = "aws")]
pub mod eventbridge;
#[cfg(feature = "aws")]
pub mod iam;
pub mod memory;
#[cfg(feature = "aws")]
pub mod s3;
#[cfg(any(test, feature = "testing"))]
pub mod scripted;
#[cfg(feature = "aws")]
pub mod secretsmanager;
#[cfg(feature = "aws")]
pub mod stepfunctions;
