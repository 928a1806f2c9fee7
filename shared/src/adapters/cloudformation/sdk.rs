//! The CloudFormation API through the AWS SDK: change sets with the capabilities Proton
//! templates need (IAM, NAMED_IAM and AUTO_EXPAND for the SAM transform), templates over
//! 51,200 bytes through S3.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, StackStatus, Tag};

use super::{ChangeSetState, CloudError, CloudFormationApi, DriftDetection, StackState};
use crate::domain::adoption::{Action, Found, ResourceAction};
use crate::domain::drift::DriftedResource;
use crate::domain::environment::{ProvisionedResource, StackOutput};

/// Templates larger than this go through S3 (`TemplateURL`), as CloudFormation requires.
const MAX_INLINE_TEMPLATE: usize = 51_200;

pub struct CloudFormationStacks {
    client: Client,
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl CloudFormationStacks {
    /// The id of the change set `name` of `stack`; refused if there is none (the stack of that
    /// name exists, made by something else).
    async fn change_set_id(&self, stack: &str, name: &str) -> Result<String, CloudError> {
        match self
            .client
            .describe_change_set()
            .stack_name(stack)
            .change_set_name(name)
            .send()
            .await
        {
            Ok(found) => found.change_set_id.ok_or_else(|| {
                CloudError::Rejected(format!("change set {name} of stack {stack} has no id"))
            }),
            Err(error) if error.code() == Some("ChangeSetNotFound") => {
                Err(CloudError::Rejected(format!(
                    "stack {stack} already exists and paved did not make it; delete it or adopt it"
                )))
            }
            Err(error) => Err(classify(error)),
        }
    }

    pub fn new(client: Client, s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            s3,
            bucket: bucket.into(),
        }
    }
}

fn classify<E>(error: SdkError<E, aws_sdk_cloudformation::config::http::HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match error.code() {
        Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded") => {
            CloudError::Throttled(Box::new(error))
        }
        Some(_)
            if error
                .raw_response()
                .is_some_and(|r| r.status().is_client_error()) =>
        {
            CloudError::Rejected(
                error
                    .message()
                    .unwrap_or("CloudFormation refused the request")
                    .to_string(),
            )
        }
        _ => CloudError::Backend(Box::new(error)),
    }
}

fn is_missing<E: ProvideErrorMetadata>(
    error: &SdkError<E, aws_sdk_cloudformation::config::http::HttpResponse>,
) -> bool {
    error.code() == Some("ValidationError")
        && error
            .message()
            .is_some_and(|m| m.contains("does not exist"))
}

#[async_trait]
impl CloudFormationApi for CloudFormationStacks {
    async fn template(&self, stack: &str) -> Result<Option<String>, CloudError> {
        match self.client.get_template().stack_name(stack).send().await {
            Ok(output) => Ok(output.template_body),
            Err(error) if is_missing(&error) => Ok(None),
            Err(error) => Err(classify(error)),
        }
    }

    async fn tags(&self, stack: &str) -> Result<BTreeMap<String, String>, CloudError> {
        let output = match self.client.describe_stacks().stack_name(stack).send().await {
            Ok(output) => output,
            Err(error) if is_missing(&error) => return Ok(BTreeMap::new()),
            Err(error) => return Err(classify(error)),
        };
        Ok(output
            .stacks
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|s| s.tags)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|t| Some((t.key?, t.value?)))
            .collect())
    }

    #[tracing::instrument(skip(self, template, tags))]
    async fn create_change_set(
        &self,
        stack: &str,
        change_set: &str,
        template: &str,
        role_arn: &str,
        exists: bool,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, CloudError> {
        let mut request = self
            .client
            .create_change_set()
            .stack_name(stack)
            .change_set_name(change_set)
            .change_set_type(if exists {
                ChangeSetType::Update
            } else {
                ChangeSetType::Create
            })
            .capabilities(Capability::CapabilityIam)
            .capabilities(Capability::CapabilityNamedIam)
            .capabilities(Capability::CapabilityAutoExpand)
            .role_arn(role_arn);
        // Always given (paved's own tags are never empty): the stack ends with exactly these.
        for (key, value) in tags {
            request = request.tags(Tag::builder().key(key).value(value).build());
        }
        if template.len() > MAX_INLINE_TEMPLATE {
            let key = format!("rendered/{stack}/{change_set}.yaml");
            self.s3
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .body(template.as_bytes().to_vec().into())
                .send()
                .await
                .map_err(|e| CloudError::Backend(Box::new(e)))?;
            request =
                request.template_url(format!("https://{}.s3.amazonaws.com/{key}", self.bucket));
        } else {
            request = request.template_body(template);
        }
        let output = match request.send().await {
            Ok(output) => output,
            // The change set of this name exists: this is a retry (of the step, or of the
            // call by the SDK after an answer was lost). Its id is the answer.
            Err(error) if error.code() == Some("AlreadyExistsException") => {
                return self.change_set_id(stack, change_set).await;
            }
            Err(error) => return Err(classify(error)),
        };
        output
            .id
            .ok_or_else(|| CloudError::Rejected("CloudFormation returned no change set id".into()))
    }

    async fn change_set(&self, id: &str) -> Result<ChangeSetState, CloudError> {
        let output = self
            .client
            .describe_change_set()
            .change_set_name(id)
            .send()
            .await
            .map_err(classify)?;
        let reason = output.status_reason.unwrap_or_default();
        Ok(match output.status {
            Some(ChangeSetStatus::CreateComplete) => ChangeSetState::Ready,
            Some(ChangeSetStatus::Failed)
                if reason.contains("didn't contain changes")
                    || reason.contains("No updates are to be performed") =>
            {
                ChangeSetState::NoChanges
            }
            Some(ChangeSetStatus::Failed) => ChangeSetState::Failed(reason),
            _ => ChangeSetState::Pending,
        })
    }

    async fn execute_change_set(&self, id: &str) -> Result<(), CloudError> {
        self.client
            .execute_change_set()
            .change_set_name(id)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn delete_change_set(&self, id: &str) -> Result<(), CloudError> {
        match self
            .client
            .delete_change_set()
            .change_set_name(id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some("ChangeSetNotFound") => Ok(()),
            Err(error) => Err(classify(error)),
        }
    }

    async fn state(&self, stack: &str) -> Result<StackState, CloudError> {
        let output = match self.client.describe_stacks().stack_name(stack).send().await {
            Ok(output) => output,
            Err(error) if is_missing(&error) => return Ok(StackState::Missing),
            Err(error) => return Err(classify(error)),
        };
        let Some(found) = output.stacks.unwrap_or_default().into_iter().next() else {
            return Ok(StackState::Missing);
        };
        let status = found.stack_status.unwrap_or(StackStatus::ReviewInProgress);
        let name = status.as_str().to_string();
        Ok(match status {
            StackStatus::DeleteComplete => StackState::Missing,
            // A stack whose first change set was never executed (it failed, or was dropped).
            StackStatus::ReviewInProgress => StackState::Failed {
                status: name,
                reason: "an empty stack left by a change set that was never executed".into(),
            },
            StackStatus::CreateComplete
            | StackStatus::UpdateComplete
            | StackStatus::ImportComplete => StackState::Complete,
            _ if name.ends_with("_IN_PROGRESS") => StackState::InProgress(name),
            _ => {
                let reason = match found.stack_status_reason {
                    Some(reason) if !reason.is_empty() => reason,
                    _ => self.failure_reason(stack).await,
                };
                StackState::Failed {
                    status: name,
                    reason,
                }
            }
        })
    }

    async fn outputs(&self, stack: &str) -> Result<Vec<StackOutput>, CloudError> {
        let output = self
            .client
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .map_err(classify)?;
        Ok(output
            .stacks
            .unwrap_or_default()
            .into_iter()
            .flat_map(|s| s.outputs.unwrap_or_default())
            .filter_map(|o| {
                Some(StackOutput {
                    key: o.output_key?,
                    value: o.output_value?,
                })
            })
            .collect())
    }

    async fn resources(&self, stack: &str) -> Result<Vec<ProvisionedResource>, CloudError> {
        let mut resources = Vec::new();
        let mut token = None;
        loop {
            let output = self
                .client
                .list_stack_resources()
                .stack_name(stack)
                .set_next_token(token)
                .send()
                .await
                .map_err(classify)?;
            resources.extend(
                output
                    .stack_resource_summaries
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|r| {
                        Some(ProvisionedResource {
                            name: r.logical_resource_id?,
                            identifier: r.physical_resource_id.unwrap_or_default(),
                            resource_type: r.resource_type,
                        })
                    }),
            );
            token = output.next_token;
            if token.is_none() {
                return Ok(resources);
            }
        }
    }

    async fn delete(&self, stack: &str, role_arn: &str) -> Result<(), CloudError> {
        self.client
            .delete_stack()
            .stack_name(stack)
            .role_arn(role_arn)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn cancel_update(&self, stack: &str) -> Result<(), CloudError> {
        self.client
            .cancel_update_stack()
            .stack_name(stack)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn stacks(&self) -> Result<Vec<Found>, CloudError> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let output = self
                .client
                .describe_stacks()
                .set_next_token(token)
                .send()
                .await
                .map_err(classify)?;
            for stack in output.stacks.unwrap_or_default() {
                let status = stack.stack_status.as_ref().map(|s| s.as_str().to_string());
                let (Some(name), Some(status)) = (stack.stack_name, status) else {
                    continue;
                };
                if status == "DELETE_COMPLETE" {
                    continue;
                }
                found.push(Found {
                    name,
                    tags: stack
                        .tags
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|t| Some((t.key?, t.value?)))
                        .collect(),
                    role_arn: stack.role_arn,
                    status,
                });
            }
            token = output.next_token;
            if token.is_none() {
                return Ok(found);
            }
        }
    }

    async fn changes(&self, change_set: &str) -> Result<Vec<ResourceAction>, CloudError> {
        use aws_sdk_cloudformation::types::{ChangeAction, Replacement};
        let mut actions = Vec::new();
        let mut token = None;
        loop {
            let output = self
                .client
                .describe_change_set()
                .change_set_name(change_set)
                .set_next_token(token)
                .send()
                .await
                .map_err(classify)?;
            for change in output.changes.unwrap_or_default() {
                let Some(resource) = change.resource_change else {
                    continue;
                };
                let Some(logical_id) = resource.logical_resource_id else {
                    continue;
                };
                let action = match (resource.action, resource.replacement) {
                    (Some(ChangeAction::Remove), _) => Action::Remove,
                    (Some(ChangeAction::Add | ChangeAction::Import), _) => Action::Add,
                    (_, Some(Replacement::True | Replacement::Conditional)) => Action::Replace,
                    _ => Action::Modify,
                };
                actions.push(ResourceAction {
                    action,
                    logical_id,
                    resource_type: resource.resource_type.unwrap_or_default(),
                    physical_id: resource.physical_resource_id.filter(|id| !id.is_empty()),
                });
            }
            token = output.next_token;
            if token.is_none() {
                return Ok(actions);
            }
        }
    }

    async fn detect_drift(&self, stack: &str) -> Result<String, CloudError> {
        let output = self
            .client
            .detect_stack_drift()
            .stack_name(stack)
            .send()
            .await
            .map_err(classify)?;
        output
            .stack_drift_detection_id
            .ok_or_else(|| CloudError::Rejected(format!("no drift detection started on {stack}")))
    }

    async fn drift_detection(&self, id: &str) -> Result<DriftDetection, CloudError> {
        use aws_sdk_cloudformation::types::{StackDriftDetectionStatus, StackDriftStatus};
        let output = self
            .client
            .describe_stack_drift_detection_status()
            .stack_drift_detection_id(id)
            .send()
            .await
            .map_err(classify)?;
        let drifted = output.stack_drift_status == Some(StackDriftStatus::Drifted);
        Ok(match output.detection_status {
            Some(StackDriftDetectionStatus::DetectionInProgress) => DriftDetection::InProgress,
            Some(StackDriftDetectionStatus::DetectionComplete) => {
                DriftDetection::Complete { drifted }
            }
            _ => DriftDetection::Failed {
                drifted,
                reason: output
                    .detection_status_reason
                    .unwrap_or_else(|| "the drift detection failed".into()),
            },
        })
    }

    async fn resource_drifts(&self, stack: &str) -> Result<Vec<DriftedResource>, CloudError> {
        use aws_sdk_cloudformation::types::StackResourceDriftStatus as S;
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let output = self
                .client
                .describe_stack_resource_drifts()
                .stack_name(stack)
                .stack_resource_drift_status_filters(S::Modified)
                .stack_resource_drift_status_filters(S::Deleted)
                .set_next_token(token)
                .send()
                .await
                .map_err(classify)?;
            for drift in output.stack_resource_drifts.unwrap_or_default() {
                found.push(DriftedResource {
                    logical_id: drift.logical_resource_id.unwrap_or_default(),
                    resource_type: drift.resource_type.unwrap_or_default(),
                    status: drift
                        .stack_resource_drift_status
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    differences: drift
                        .property_differences
                        .unwrap_or_default()
                        .into_iter()
                        .map(|d| {
                            format!(
                                "{}: {} -> {}",
                                d.property_path.unwrap_or_default(),
                                d.expected_value.unwrap_or_default(),
                                d.actual_value.unwrap_or_default()
                            )
                        })
                        .collect(),
                });
            }
            token = output.next_token;
            if token.is_none() {
                return Ok(found);
            }
        }
    }
}

impl CloudFormationStacks {
    /// The reason of the first resource that failed, from the stack's events.
    async fn failure_reason(&self, stack: &str) -> String {
        let Ok(output) = self
            .client
            .describe_stack_events()
            .stack_name(stack)
            .send()
            .await
        else {
            return "no reason recorded".into();
        };
        output
            .stack_events
            .unwrap_or_default()
            .into_iter()
            .rev()
            .find(|e| {
                e.resource_status
                    .as_ref()
                    .is_some_and(|s| s.as_str().ends_with("_FAILED"))
            })
            .and_then(|e| {
                Some(format!(
                    "{}: {}",
                    e.logical_resource_id?, e.resource_status_reason?
                ))
            })
            .unwrap_or_else(|| "no reason recorded".into())
    }
}
