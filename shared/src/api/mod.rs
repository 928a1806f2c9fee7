//! The Proton wire protocol: awsJson1_0 on `POST /`, dispatched on `X-Amz-Target`.
//!
//! One router serves both the Lambda function (through `lambda_http`) and `paved dev`.

mod catalog;
mod components;
mod deployments;
mod environments;
mod operations;
mod paved;
mod services;
pub mod webhook;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use tracing::Instrument;

use crate::app::catalog::Catalog;
use crate::app::components::Components;
use crate::app::deploy::{ArnBuilder, Deployer};
use crate::app::deployments::Deployments;
use crate::app::environments::Environments;
use crate::app::pushes::Pushes;
use crate::app::services::Services;
pub use operations::Operation;
pub use wire::ApiError;

/// Everything a request needs: the use cases and what ARNs are made of.
pub struct App {
    pub catalog: Catalog,
    pub environments: Environments,
    pub services: Services,
    pub components: Components,
    pub deployments: Deployments,
    pub pushes: Pushes,
    pub arns: ArnBuilder,
}

impl App {
    pub fn new(catalog: Catalog, deployer: Deployer) -> Self {
        let arns = deployer.arns.clone();
        Self {
            catalog,
            environments: Environments::new(deployer.clone()),
            services: Services::new(deployer.clone()),
            components: Components::new(deployer.clone()),
            deployments: Deployments::new(deployer.clone()),
            pushes: Pushes::new(deployer),
            arns,
        }
    }

    pub(crate) fn arn(&self, resource: &str) -> String {
        self.arns.proton(resource)
    }
}

const TARGET_PREFIX: &str = "AwsProton20200720.";
/// paved's own operations, which the Proton model has no place for: same protocol, own prefix.
pub const PAVED_TARGET_PREFIX: &str = "Paved20261127.";

/// The whole Proton API.
pub fn router(app: Arc<App>) -> Router {
    Router::new().route("/", post(handle)).with_state(app)
}

/// The largest request body paved reads (axum's default): far above the model's largest member
/// (a spec or a component template, 51,200 characters each).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

async fn handle(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            // Too large, or not readable: a Proton error, not the framework's plain text.
            let error = ApiError::Domain(crate::app::Error::validation(format!(
                "the request body could not be read ({}); paved reads at most {MAX_BODY_BYTES} bytes",
                rejection.body_text()
            )));
            return wire::respond(Err(error), "request", &request_id);
        }
    };
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(operation) = target.strip_prefix(PAVED_TARGET_PREFIX) {
        let span = tracing::info_span!("paved", operation, request_id = %request_id);
        let result = paved::dispatch(&app, operation, &body)
            .instrument(span)
            .await;
        return wire::respond(result, operation, &request_id);
    }
    let operation = target.strip_prefix(TARGET_PREFIX).unwrap_or("");
    let span = tracing::info_span!("proton", operation, request_id = %request_id);
    let result = dispatch(&app, operation, &body).instrument(span).await;
    wire::respond(result, operation, &request_id)
}

async fn dispatch(app: &App, operation: &str, body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let Some(operation) = Operation::parse(operation) else {
        return Err(ApiError::UnknownOperation);
    };
    if let Some(result) = catalog::dispatch(app, operation.name(), body).await {
        return result;
    }
    if let Some(result) = environments::dispatch(app, operation, body).await {
        return result;
    }
    if let Some(result) = deployments::dispatch(app, operation, body).await {
        return result;
    }
    if let Some(result) = services::dispatch(app, operation, body).await {
        return result;
    }
    if let Some(result) = components::dispatch(app, operation, body).await {
        return result;
    }
    Err(ApiError::NotImplemented(operation.name().to_string()))
}

#[cfg(test)]
mod tests;
