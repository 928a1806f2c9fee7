//! The task steps of the deploy, delete and redeploy state machines, as one Lambda function
//! that runs the step named in its payload (`{"task": "plan", "deploymentId": ...}`).

use lambda_runtime::{Diagnostic, Error, LambdaEvent, run, service_fn, tracing};
use paved_core::app::deploy::TaskError;
use paved_core::config;
use serde_json::Value;

/// A failed step, reported with the stable name the state machines' Retry and Catch match.
#[derive(Debug)]
struct TaskFailure(TaskError);

impl From<TaskFailure> for Diagnostic {
    fn from(failure: TaskFailure) -> Self {
        Diagnostic {
            error_type: failure.0.name().into(),
            error_message: failure.0.to_string(),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let settings = config::Config::from_env()?;
    let sdk = config::sdk_config().await;
    let tasks = &config::tasks(&settings, &sdk);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        tasks.run(event.payload).await.map_err(TaskFailure)
    }))
    .await
}
