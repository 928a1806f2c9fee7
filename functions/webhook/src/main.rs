//! GitHub push webhooks as a Lambda function behind its own API Gateway API (GitHub calls from
//! its own addresses, so this API is open; every delivery must carry a valid signature).

use std::sync::Arc;

use lambda_http::{Error, tracing};
use paved_core::{api, config, lambda};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let settings = config::Config::from_env()?;
    let sdk = config::sdk_config().await;
    lambda::serve(api::webhook::router(Arc::new(config::webhook(
        &settings, &sdk,
    ))))
    .await
}
