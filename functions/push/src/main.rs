//! Source pushes from EventBridge (CodeCommit `referenceUpdated`, paved's `Source Push`): each
//! starts the redeploy of the services that track the pushed branch.

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use paved_core::config;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let settings = config::Config::from_env()?;
    let sdk = config::sdk_config().await;
    let pushes = &config::pushes(&settings, &sdk);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        // An error makes EventBridge deliver the event again (the rules' retry policy).
        let started = pushes.handle_event(&event.payload).await?;
        Ok::<Value, Error>(json!({ "started": started }))
    }))
    .await
}
