//! Deployment workflows as Step Functions executions, named after their deployment.

use async_trait::async_trait;
use aws_sdk_sfn::Client;

use crate::ports::{BoxError, ExecutionState, Workflow, Workflows};

/// How long one check step of an upgrade keeps checking (the tasks function may run 60 s).
const UPGRADE_CHECK_SECONDS: u64 = 40;

pub struct StepFunctionsWorkflows {
    client: Client,
    deploy_arn: String,
    delete_arn: String,
    redeploy_arn: String,
    upgrade_arn: String,
    /// How long the state machines wait between checks of a change set or a stack.
    poll_seconds: u64,
}

impl StepFunctionsWorkflows {
    pub fn new(
        client: Client,
        deploy_arn: String,
        delete_arn: String,
        redeploy_arn: String,
        upgrade_arn: String,
        poll_seconds: u64,
    ) -> Self {
        Self {
            client,
            deploy_arn,
            delete_arn,
            redeploy_arn,
            upgrade_arn,
            poll_seconds,
        }
    }

    fn machine(&self, workflow: Workflow) -> &str {
        match workflow {
            Workflow::Deploy => &self.deploy_arn,
            Workflow::Delete => &self.delete_arn,
            Workflow::Redeploy => &self.redeploy_arn,
            Workflow::Upgrade => &self.upgrade_arn,
        }
    }
}

#[async_trait]
impl Workflows for StepFunctionsWorkflows {
    #[tracing::instrument(skip(self, input))]
    async fn start(
        &self,
        workflow: Workflow,
        execution: &str,
        mut input: serde_json::Value,
    ) -> Result<(), BoxError> {
        input["pollSeconds"] = self.poll_seconds.into();
        if workflow == Workflow::Upgrade {
            input["checkSeconds"] = UPGRADE_CHECK_SECONDS.into();
        }
        let started = self
            .client
            .start_execution()
            .state_machine_arn(self.machine(workflow))
            .name(execution)
            .input(input.to_string())
            .send()
            .await;
        match started {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_execution_already_exists()) =>
            {
                Ok(())
            }
            Err(error) => Err(Box::new(error)),
        }
    }

    async fn state(
        &self,
        workflow: Workflow,
        execution: &str,
    ) -> Result<Option<ExecutionState>, BoxError> {
        // arn:aws:states:REGION:ACCOUNT:stateMachine:NAME → ...:execution:NAME:EXECUTION
        let arn = format!(
            "{}:{execution}",
            self.machine(workflow)
                .replacen(":stateMachine:", ":execution:", 1)
        );
        match self
            .client
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
        {
            Ok(output) => Ok(Some(match output.status.as_str() {
                "RUNNING" | "PENDING_REDRIVE" => ExecutionState::Running,
                "SUCCEEDED" => ExecutionState::Succeeded,
                _ => ExecutionState::Ended,
            })),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_execution_does_not_exist()) =>
            {
                Ok(None)
            }
            Err(error) => Err(Box::new(error)),
        }
    }

    async fn signal(&self, token: &str, output: serde_json::Value) -> Result<(), BoxError> {
        let sent = self
            .client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            // The execution resumed already (a second signal) or ended.
            Err(error)
                if error.as_service_error().is_some_and(|e| {
                    e.is_task_timed_out() || e.is_task_does_not_exist() || e.is_invalid_token()
                }) =>
            {
                tracing::info!(error = %error, "the task token waits no more");
                Ok(())
            }
            Err(error) => Err(Box::new(error)),
        }
    }
}
