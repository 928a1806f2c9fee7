//! Environments (8 operations).

use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use super::operations::Operation;
use super::wire::{ApiError, ByName, compact, next_token, page, parse};
use crate::app::Error;
use crate::app::deploy::status_name;
use crate::app::environments::{EnvironmentUpdate, NewEnvironment};
use crate::domain::environment::Environment;
use crate::domain::names::{ResourceName, VersionPart};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ByEnvironmentName {
    environment_name: ResourceName,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TemplateFilter {
    template_name: ResourceName,
    major_version: VersionPart,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvironmentListing {
    max_results: Option<i64>,
    next_token: Option<String>,
    #[serde(default)]
    environment_templates: Vec<TemplateFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputsRequest {
    environment_name: ResourceName,
    deployment_id: Option<String>,
}

pub async fn dispatch(
    app: &App,
    operation: Operation,
    body: &[u8],
) -> Option<Result<Value, ApiError>> {
    let environments = &app.environments;
    let result = async {
        Ok(match operation {
            Operation::CreateEnvironment => {
                let new: NewEnvironment = parse(body)?;
                json!({ "environment": environment_json(app, &environments.create(new).await?, false) })
            }
            Operation::GetEnvironment => {
                let ByName { name } = parse(body)?;
                json!({ "environment": environment_json(app, &environments.get(&name).await?, false) })
            }
            Operation::ListEnvironments => {
                let listing: EnvironmentListing = parse(body)?;
                let listed = environments.list(page(listing.max_results, listing.next_token)?).await?;
                let items: Vec<Value> = listed
                    .items
                    .iter()
                    .filter(|e| {
                        listing.environment_templates.is_empty()
                            || listing.environment_templates.iter().any(|f| {
                                f.template_name == e.deployed.state.template_name && f.major_version.0 == e.deployed.state.major
                            })
                    })
                    .map(|e| environment_json(app, e, true))
                    .collect();
                compact(json!({ "environments": items, "nextToken": next_token(listed.cursor) }))
            }
            Operation::UpdateEnvironment => {
                let update: EnvironmentUpdate = parse(body)?;
                json!({ "environment": environment_json(app, &environments.update(update).await?, false) })
            }
            Operation::DeleteEnvironment => {
                let ByName { name } = parse(body)?;
                json!({ "environment": environment_json(app, &environments.delete(&name).await?, false) })
            }
            Operation::CancelEnvironmentDeployment => {
                let ByEnvironmentName { environment_name } = parse(body)?;
                json!({ "environment": environment_json(app, &environments.cancel(&environment_name).await?, false) })
            }
            Operation::ListEnvironmentOutputs => {
                let request: OutputsRequest = parse(body)?;
                let environment = environments.get(&request.environment_name).await?;
                let outputs = super::services::outputs_json(&environment.deployed, request.deployment_id.as_deref(), "the environment")?;
                json!({ "outputs": outputs })
            }
            Operation::ListEnvironmentProvisionedResources => {
                let ByEnvironmentName { environment_name } = parse(body)?;
                let environment = environments.get(&environment_name).await?;
                json!({ "provisionedResources": super::services::resources_json(&environment.deployed) })
            }
            _ => return Err(None),
        })
    }
    .await;
    match result {
        Ok(value) => Some(Ok(value)),
        Err(Some(error)) => Some(Err(error)),
        Err(None) => None,
    }
}

/// Lets `?` work on use-case errors inside `dispatch`, where `None` means "not mine".
impl From<Error> for Option<ApiError> {
    fn from(error: Error) -> Self {
        Some(error.into())
    }
}

fn environment_json(app: &App, environment: &Environment, summary: bool) -> Value {
    let state = &environment.deployed.state;
    let mut value = compact(json!({
        "arn": app.environments.arns().environment(environment.name.as_str()),
        "name": environment.name,
        "description": environment.description,
        "templateName": state.template_name,
        "templateMajorVersion": state.major.to_string(),
        "templateMinorVersion": state.minor.to_string(),
        "deploymentStatus": status_name(environment.deployed.deployment_status),
        "deploymentStatusMessage": environment.deployed.deployment_status_message,
        "protonServiceRoleArn": environment.deployed.role_arn,
        "componentRoleArn": environment.component_role_arn,
        "createdAt": environment.created_at,
        "lastDeploymentAttemptedAt": environment.deployed.last_deployment_attempted_at,
        "lastDeploymentSucceededAt": environment.deployed.last_deployment_succeeded_at,
        "lastAttemptedDeploymentId": environment.deployed.last_attempted_deployment_id,
        "lastSucceededDeploymentId": environment.deployed.last_succeeded_deployment_id,
    }));
    if let (false, Value::Object(map)) = (summary, &mut value) {
        map.insert("spec".into(), json!(state.spec));
    }
    value
}
