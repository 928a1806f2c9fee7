//! The CodePipeline pipelines that services' pipeline stacks create.

use async_trait::async_trait;

use super::BoxError;

/// A service's CodePipeline: its name if its stack reported one, and the stack it lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRef {
    pub name: Option<String>,
    pub stack: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineExecution {
    pub id: String,
    /// CodePipeline's status: InProgress, Stopped, Stopping, Succeeded, Superseded, Failed, ...
    pub status: String,
    pub status_summary: Option<String>,
    pub started_at: Option<f64>,
    pub updated_at: Option<f64>,
    pub revisions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageState {
    pub name: String,
    pub status: Option<String>,
    pub execution_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The pipeline does not exist, or the service has none paved can name.
    #[error("{0}")]
    NotFound(String),
    /// What this CodePipeline cannot tell (an emulator without the operation).
    #[error("{0}")]
    Unavailable(String),
    #[error("CodePipeline throttled the request")]
    Throttled(#[source] BoxError),
    #[error("the CodePipeline request failed")]
    Backend(#[source] BoxError),
}

/// The CodePipeline operations a redeploy and the pipeline state need.
#[async_trait]
pub trait Pipelines: Send + Sync {
    /// Starts an execution; the same `client_token` does not start a second one.
    async fn start(
        &self,
        pipeline: &PipelineRef,
        client_token: &str,
    ) -> Result<String, PipelineError>;
    async fn execution(
        &self,
        pipeline: &PipelineRef,
        id: &str,
    ) -> Result<PipelineExecution, PipelineError>;
    /// The latest executions, newest first.
    async fn executions(
        &self,
        pipeline: &PipelineRef,
        limit: u32,
    ) -> Result<Vec<PipelineExecution>, PipelineError>;
    async fn stages(&self, pipeline: &PipelineRef) -> Result<Vec<StageState>, PipelineError>;
}
