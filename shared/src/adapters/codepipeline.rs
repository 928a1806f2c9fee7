//! Service pipelines in CodePipeline: start one, follow an execution, read executions and stage
//! states.

use async_trait::async_trait;
use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::{ProvideErrorMetadata, SdkError};

use crate::ports::{
    BoxError, PipelineError, PipelineExecution, PipelineRef, Pipelines, StageState,
};

pub struct CodePipelines {
    client: Client,
}

impl CodePipelines {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// The pipeline's name: CloudFormation reported it among the pipeline stack's resources.
fn name(pipeline: &PipelineRef) -> Result<&str, PipelineError> {
    pipeline.name.as_deref().ok_or_else(|| {
        PipelineError::NotFound(format!(
            "stack {} has no AWS::CodePipeline::Pipeline resource paved could start",
            pipeline.stack
        ))
    })
}

fn classify<E, R>(error: SdkError<E, R>) -> PipelineError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = error
        .as_service_error()
        .and_then(|e| e.code())
        .unwrap_or("");
    match code {
        "PipelineNotFoundException" | "PipelineExecutionNotFoundException" => {
            PipelineError::NotFound(
                error
                    .as_service_error()
                    .and_then(|e| e.message())
                    .unwrap_or(code)
                    .to_string(),
            )
        }
        "ThrottlingException"
        | "LimitExceededException"
        | "ConcurrentPipelineExecutionsLimitExceededException" => {
            PipelineError::Throttled(Box::new(error) as BoxError)
        }
        _ => PipelineError::Backend(Box::new(error)),
    }
}

fn seconds(time: Option<&aws_sdk_codepipeline::primitives::DateTime>) -> Option<f64> {
    time.map(|t| t.as_secs_f64())
}

#[async_trait]
impl Pipelines for CodePipelines {
    async fn start(&self, pipeline: &PipelineRef, token: &str) -> Result<String, PipelineError> {
        let output = self
            .client
            .start_pipeline_execution()
            .name(name(pipeline)?)
            .client_request_token(token)
            .send()
            .await
            .map_err(classify)?;
        Ok(output.pipeline_execution_id.unwrap_or_default())
    }

    async fn execution(
        &self,
        pipeline: &PipelineRef,
        id: &str,
    ) -> Result<PipelineExecution, PipelineError> {
        let output = self
            .client
            .get_pipeline_execution()
            .pipeline_name(name(pipeline)?)
            .pipeline_execution_id(id)
            .send()
            .await
            .map_err(classify)?;
        let execution = output.pipeline_execution.ok_or_else(|| {
            PipelineError::NotFound(format!("pipeline execution {id} was not returned"))
        })?;
        Ok(PipelineExecution {
            id: id.to_string(),
            status: execution
                .status
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            status_summary: execution.status_summary,
            started_at: None,
            updated_at: None,
            revisions: execution
                .artifact_revisions
                .unwrap_or_default()
                .into_iter()
                .filter_map(|r| r.revision_id)
                .collect(),
        })
    }

    async fn executions(
        &self,
        pipeline: &PipelineRef,
        limit: u32,
    ) -> Result<Vec<PipelineExecution>, PipelineError> {
        let output = self
            .client
            .list_pipeline_executions()
            .pipeline_name(name(pipeline)?)
            .max_results(limit as i32)
            .send()
            .await
            .map_err(classify)?;
        Ok(output
            .pipeline_execution_summaries
            .unwrap_or_default()
            .into_iter()
            .map(|e| PipelineExecution {
                id: e.pipeline_execution_id.unwrap_or_default(),
                status: e.status.map(|s| s.as_str().to_string()).unwrap_or_default(),
                status_summary: e.status_summary,
                started_at: seconds(e.start_time.as_ref()),
                updated_at: seconds(e.last_update_time.as_ref()),
                revisions: e
                    .source_revisions
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|r| r.revision_id)
                    .collect(),
            })
            .collect())
    }

    async fn stages(&self, pipeline: &PipelineRef) -> Result<Vec<StageState>, PipelineError> {
        let output = self
            .client
            .get_pipeline_state()
            .name(name(pipeline)?)
            .send()
            .await
            .map_err(classify)?;
        Ok(output
            .stage_states
            .unwrap_or_default()
            .into_iter()
            .map(|s| StageState {
                name: s.stage_name.unwrap_or_default(),
                status: s
                    .latest_execution
                    .as_ref()
                    .map(|e| e.status.as_str().to_string()),
                execution_id: s.latest_execution.map(|e| e.pipeline_execution_id),
            })
            .collect())
    }
}
