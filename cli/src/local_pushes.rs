//! Pushes on the local platform, through the same rules as in AWS: moto's EventBridge cannot
//! deliver to a Lambda target but does deliver to SQS, so `paved dev` points the push rules at
//! a queue and runs the push handler on what arrives there. Locally, a service's pipeline is a
//! stand-in CodePipeline (moto's CloudFormation skips pipeline resources), created the first
//! time a push starts it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use paved_core::app::pushes::Pushes;
use paved_core::domain::push::rule_patterns;
use paved_core::ports::{
    BoxError, PipelineError, PipelineExecution, PipelineRef, Pipelines, StageState,
};
use serde_json::{Value, json};

pub const QUEUE: &str = "paved-pushes";
pub const WEBHOOK_SECRET_ID: &str = "paved/github-webhook";

/// Creates the push queue, the push rules on the default bus (targeting the queue) and the
/// webhook secret holding `secret`; returns the queue's URL.
pub async fn setup(sdk: &aws_config::SdkConfig, secret: &str) -> Result<String, BoxError> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let url = sqs
        .create_queue()
        .queue_name(QUEUE)
        .send()
        .await?
        .queue_url
        .unwrap_or_default();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .ok_or("the push queue has no ARN")?;
    let events = aws_sdk_eventbridge::Client::new(sdk);
    for (name, pattern) in rule_patterns() {
        let rule = format!("paved-{name}");
        events
            .put_rule()
            .name(&rule)
            .event_pattern(pattern.to_string())
            .send()
            .await?;
        events
            .put_targets()
            .rule(&rule)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("push-queue")
                    .arn(&arn)
                    .build()?,
            )
            .send()
            .await?;
    }
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let created = secrets
        .create_secret()
        .name(WEBHOOK_SECRET_ID)
        .secret_string(secret)
        .send()
        .await;
    if created.is_err() {
        secrets
            .put_secret_value()
            .secret_id(WEBHOOK_SECRET_ID)
            .secret_string(secret)
            .send()
            .await?;
    }
    Ok(url)
}

/// Runs the push handler on the events the push rules deliver to the queue, until stopped.
pub async fn poll(
    sdk: aws_config::SdkConfig,
    url: String,
    pushes: Arc<Pushes>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    loop {
        let received = tokio::select! {
            _ = stop.changed() => return,
            received = sqs.receive_message().queue_url(&url).max_number_of_messages(10).wait_time_seconds(1).send() => received,
        };
        let messages = match received {
            Ok(output) => output.messages.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(error = %error, "push queue not read");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for message in messages {
            let event: Value = message
                .body
                .as_deref()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null);
            if let Err(error) = pushes.handle_event(&event).await {
                tracing::warn!(error = %error, "push not handled; it will be delivered again");
                continue;
            }
            if let Some(receipt) = message.receipt_handle
                && let Err(error) = sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(receipt)
                    .send()
                    .await
            {
                tracing::warn!(error = %error, "push message not deleted");
            }
        }
    }
}

/// CodePipeline on moto: a pipeline stack's pipeline is named after the stack (moto's
/// CloudFormation does not create it) and made, as a one-stage stand-in, when first started.
pub struct LocalPipelines {
    inner: paved_core::adapters::codepipeline::CodePipelines,
    client: aws_sdk_codepipeline::Client,
    role_arn: String,
}

impl LocalPipelines {
    pub fn new(sdk: &aws_config::SdkConfig, role_arn: String) -> Self {
        let client = aws_sdk_codepipeline::Client::new(sdk);
        Self {
            inner: paved_core::adapters::codepipeline::CodePipelines::new(client.clone()),
            client,
            role_arn,
        }
    }

    fn local(pipeline: &PipelineRef) -> PipelineRef {
        PipelineRef {
            name: Some(
                pipeline
                    .name
                    .clone()
                    .unwrap_or_else(|| pipeline.stack.clone()),
            ),
            stack: pipeline.stack.clone(),
        }
    }

    async fn create(&self, name: &str) -> Result<(), PipelineError> {
        use aws_sdk_codepipeline::types::{
            ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore,
            ArtifactStoreType, PipelineDeclaration, StageDeclaration,
        };
        let action = |category, owner, provider: &str| {
            ActionTypeId::builder()
                .category(category)
                .owner(owner)
                .provider(provider)
                .version("1")
                .build()
                .expect("all fields are set")
        };
        let stage = |stage: &str, id| {
            StageDeclaration::builder()
                .name(stage)
                .actions(
                    ActionDeclaration::builder()
                        .name(stage)
                        .action_type_id(id)
                        .build()
                        .expect("name and type are set"),
                )
                .build()
                .expect("name and actions are set")
        };
        let declaration = PipelineDeclaration::builder()
            .name(name)
            .role_arn(&self.role_arn)
            .artifact_store(
                ArtifactStore::builder()
                    .r#type(ArtifactStoreType::S3)
                    .location("paved-local-pipelines")
                    .build()
                    .expect("type and location are set"),
            )
            .stages(stage(
                "Source",
                action(ActionCategory::Source, ActionOwner::Aws, "S3"),
            ))
            .stages(stage(
                "Build",
                action(ActionCategory::Build, ActionOwner::Aws, "CodeBuild"),
            ))
            .build()
            .map_err(|e| PipelineError::Backend(Box::new(e)))?;
        self.client
            .create_pipeline()
            .pipeline(declaration)
            .send()
            .await
            .map_err(|e| PipelineError::Backend(Box::new(e)))?;
        tracing::info!(pipeline = name, "local stand-in pipeline created");
        Ok(())
    }
}

#[async_trait]
impl Pipelines for LocalPipelines {
    async fn start(&self, pipeline: &PipelineRef, token: &str) -> Result<String, PipelineError> {
        let local = Self::local(pipeline);
        match self.inner.start(&local, token).await {
            Err(PipelineError::NotFound(_)) => {
                self.create(local.name.as_deref().unwrap_or_default())
                    .await?;
                self.inner.start(&local, token).await
            }
            other => other,
        }
    }

    async fn execution(
        &self,
        pipeline: &PipelineRef,
        id: &str,
    ) -> Result<PipelineExecution, PipelineError> {
        self.inner.execution(&Self::local(pipeline), id).await
    }

    async fn executions(
        &self,
        pipeline: &PipelineRef,
        limit: u32,
    ) -> Result<Vec<PipelineExecution>, PipelineError> {
        self.inner.executions(&Self::local(pipeline), limit).await
    }

    async fn stages(&self, pipeline: &PipelineRef) -> Result<Vec<StageState>, PipelineError> {
        match self.inner.stages(&Self::local(pipeline)).await {
            Err(PipelineError::Backend(_)) => Err(PipelineError::Unavailable(
                "stage states are not available locally (moto does not implement GetPipelineState)"
                    .into(),
            )),
            other => other,
        }
    }
}

/// The IAM role moto requires a pipeline to name (with a CodePipeline trust policy), made
/// through moto's CloudFormation, which creates IAM roles.
pub async fn ensure_pipeline_role(sdk: &aws_config::SdkConfig) -> Result<String, BoxError> {
    let template = json!({
        "Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": "paved-local-pipeline",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"},
                "Action": "sts:AssumeRole"}]}
        }}}
    });
    let cloudformation = aws_sdk_cloudformation::Client::new(sdk);
    let exists = cloudformation
        .describe_stacks()
        .stack_name("paved-local-roles")
        .send()
        .await
        .is_ok();
    if !exists {
        cloudformation
            .create_stack()
            .stack_name("paved-local-roles")
            .template_body(template.to_string())
            .capabilities(aws_sdk_cloudformation::types::Capability::CapabilityNamedIam)
            .send()
            .await?;
    }
    Ok("arn:aws:iam::123456789012:role/paved-local-pipeline".into())
}
