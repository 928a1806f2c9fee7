//! Source pushes from EventBridge (CodeCommit `referenceUpdated`, paved's `Source Push`): each
//! starts the redeploy of the services that track the pushed branch.

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use paved_core::config;
use paved_core::domain::push::from_event;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let settings = config::Config::from_env()?;
    let sdk = config::sdk_config().await;
    let pushes = &config::pushes(&settings, &sdk);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let id = event
            .payload
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match from_event(&event.payload) {
            Ok(Some(push)) => {
                let started = pushes.receive(&push, &id).await?;
                Ok::<Value, Error>(json!({ "started": started }))
            }
            Ok(None) => {
                tracing::info!(event = %id, "not a branch push; dropped");
                Ok(json!({ "started": [] }))
            }
            Err(reason) => {
                // A malformed event is not worth EventBridge's retries: log it and drop it.
                tracing::warn!(event = %id, %reason, "event refused");
                Ok(json!({ "started": [], "refused": reason }))
            }
        }
    }))
    .await
}
