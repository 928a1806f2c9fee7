//! The Proton wire protocol: awsJson1_0 on `POST /`, dispatched on `X-Amz-Target`.
//!
//! One router serves both the Lambda function (through `lambda_http`) and `paved dev`. Every
//! call is authenticated (`authn`), then authorized by the access policies (`authz`), then
//! served on behalf of its caller, and logged as one line (operation, principal, resource,
//! outcome, latency).

mod account;
pub mod authn;
pub mod authz;
mod catalog;
mod components;
mod deployments;
mod environments;
mod fleet;
mod operations;
mod paved;
mod services;
mod tags;
pub mod webhook;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use tracing::Instrument;

use crate::app::access::Access;
use crate::app::catalog::Catalog;
use crate::app::components::Components;
use crate::app::deploy::{ArnBuilder, Deployer};
use crate::app::deployments::Deployments;
use crate::app::environments::Environments;
use crate::app::pushes::Pushes;
use crate::app::services::Services;
use crate::app::tags::Tagging;
use crate::ports::DeploymentStore;
pub use authn::{Authenticate, Unauthenticated};
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
    pub tags: Tagging,
    pub account: crate::app::account::Account,
    pub fleet: crate::app::fleet::Fleet,
    pub imports: crate::app::imports::Imports,
    pub upgrades: crate::app::upgrades::Upgrades,
    pub drift: crate::app::drift::Drift,
    pub arns: ArnBuilder,
    /// The records authorization reads (tags, templates, environments of what a call names).
    pub store: Arc<dyn DeploymentStore>,
    pub access: Arc<Access>,
    pub authenticate: Arc<dyn Authenticate>,
}

/// How calls are authenticated and what decides them.
pub struct Security {
    pub authenticate: Arc<dyn Authenticate>,
    pub access: Arc<Access>,
}

impl App {
    pub fn new(catalog: Catalog, deployer: Deployer, security: Security) -> Self {
        let arns = deployer.arns.clone();
        Self {
            store: deployer.store.clone(),
            access: security.access,
            authenticate: security.authenticate,
            catalog,
            environments: Environments::new(deployer.clone()),
            services: Services::new(deployer.clone()),
            components: Components::new(deployer.clone()),
            deployments: Deployments::new(deployer.clone()),
            tags: Tagging::new(
                deployer.catalog.clone(),
                deployer.store.clone(),
                arns.clone(),
            ),
            account: crate::app::account::Account::new(deployer.clone()),
            fleet: crate::app::fleet::Fleet::new(deployer.clone()),
            imports: crate::app::imports::Imports::new(deployer.clone()),
            upgrades: crate::app::upgrades::Upgrades::new(deployer.clone()),
            drift: crate::app::drift::Drift::new(deployer.clone()),
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

async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let started = std::time::Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(error) => {
            // Too large, or not readable: a Proton error, not the framework's plain text.
            let error = ApiError::Domain(crate::app::Error::validation(format!(
                "the request body could not be read ({error}); paved reads at most {MAX_BODY_BYTES} bytes"
            )));
            return wire::respond(Err(error), "request", &request_id);
        }
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (own, operation) = match target.strip_prefix(PAVED_TARGET_PREFIX) {
        Some(operation) => (true, operation),
        None => (false, target.strip_prefix(TARGET_PREFIX).unwrap_or("")),
    };
    let head = authn::RequestHead {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        extensions: &parts.extensions,
        body: &body,
        request_id: &request_id,
    };
    let caller = match app.authenticate.authenticate(&head) {
        Ok(caller) => caller,
        Err(refusal) => {
            tracing::info!(
                target: "paved::access",
                operation,
                outcome = refusal.error_type(),
                latency_ms = started.elapsed().as_secs_f64() * 1000.0,
                request_id = %request_id,
                "call"
            );
            return wire::unauthenticated(&refusal, &request_id);
        }
    };
    let span = tracing::info_span!("call", operation, request_id = %request_id, principal = %caller.principal.arn);
    let (result, resource) = Box::pin(async {
        // Boxed: each call's futures live on the heap, not on the worker's stack (a debug build
        // of the whole dispatch nested in one future overflowed tokio's 2 MiB stacks).
        let requests = match Box::pin(authz::requests(&app, operation, &body)).await {
            Ok(requests) => requests,
            Err(error) => return (Err(error), String::new()),
        };
        let resource = requests
            .first()
            .map(|r| r.resource.arn.clone())
            .unwrap_or_default();
        if let Err(denied) = app.access.check(&caller, &requests).await {
            return (Err(ApiError::Domain(denied)), resource);
        }
        let work = async {
            if own {
                Box::pin(paved::dispatch(&app, &caller, operation, &body)).await
            } else {
                Box::pin(dispatch(&app, operation, &body)).await
            }
        };
        (
            crate::app::deploy::audit::acting_for(caller.initiator(), work).await,
            resource,
        )
    })
    .instrument(span)
    .await;
    let outcome = match &result {
        Ok(_) => "OK".to_string(),
        Err(error) => error.parts().1.to_string(),
    };
    tracing::info!(
        target: "paved::access",
        operation,
        principal = %caller.principal.arn,
        source_ip = caller.source_ip.as_deref().unwrap_or(""),
        resource = %resource,
        outcome = %outcome,
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id = %request_id,
        "call"
    );
    wire::respond(result, operation, &request_id)
}

/// The outputs and provisioned resources of one target come in one page, so paved issues no
/// token for them: any `nextToken` is one it did not issue.
fn refuse_any_token(body: &[u8]) -> Result<(), ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Token {
        next_token: Option<String>,
    }
    let Token { next_token } = wire::parse(body)?;
    match next_token {
        Some(_) => Err(ApiError::Domain(crate::app::Error::validation(
            "nextToken: not a token this listing issued (it answers in one page)",
        ))),
        None => Ok(()),
    }
}

async fn dispatch(app: &App, operation: &str, body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let Some(operation) = Operation::parse(operation) else {
        return Err(ApiError::UnknownOperation);
    };
    if operation.answers_in_one_page() {
        refuse_any_token(body)?;
    }
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
    if let Some(result) = tags::dispatch(app, operation, body).await {
        return result;
    }
    if let Some(result) = account::dispatch(app, operation, body).await {
        return result;
    }
    if let Some(result) = fleet::dispatch(app, operation, body).await {
        return result;
    }
    Err(ApiError::NotImplemented(operation.name().to_string()))
}

#[cfg(test)]
mod tests;
