//! The Proton API as a Lambda function behind API Gateway.

use std::sync::Arc;

use lambda_http::{Error, tracing};
use paved_core::{api, config, lambda};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let settings = config::Config::from_env()?;
    let sdk = config::sdk_config().await;
    let app = config::app(&settings, &sdk, Arc::new(lambda::ApiGatewayIdentity));
    lambda::serve(api::router(Arc::new(app))).await
}
