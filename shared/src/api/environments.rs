//! Environments (8 operations) and deployments (3).

use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use super::wire::{ApiError, ByName, compact, next_token, page, parse};
use crate::app::environments::{EnvironmentUpdate, NewEnvironment, status_name};
use crate::app::Error;
use crate::domain::environment::{DeployedState, Deployment, Environment, Target};
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentListing {
    environment_name: Option<ResourceName>,
    service_name: Option<ResourceName>,
    service_instance_name: Option<ResourceName>,
    component_name: Option<ResourceName>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentKey {
    id: String,
}

pub async fn dispatch(app: &App, operation: &str, body: &[u8]) -> Option<Result<Value, ApiError>> {
    let environments = &app.environments;
    let result = async {
        Ok(match operation {
            "CreateEnvironment" => {
                let new: NewEnvironment = parse(body)?;
                json!({ "environment": environment_json(app, &environments.create(new).await?, false) })
            }
            "GetEnvironment" => {
                let ByName { name } = parse(body)?;
                json!({ "environment": environment_json(app, &environments.get(&name).await?, false) })
            }
            "ListEnvironments" => {
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
            "UpdateEnvironment" => {
                let update: EnvironmentUpdate = parse(body)?;
                json!({ "environment": environment_json(app, &environments.update(update).await?, false) })
            }
            "DeleteEnvironment" => {
                let ByName { name } = parse(body)?;
                json!({ "environment": environment_json(app, &environments.delete(&name).await?, false) })
            }
            "CancelEnvironmentDeployment" => {
                let ByEnvironmentName { environment_name } = parse(body)?;
                json!({ "environment": environment_json(app, &environments.cancel(&environment_name).await?, false) })
            }
            "ListEnvironmentOutputs" => {
                let request: OutputsRequest = parse(body)?;
                let environment = environments.get(&request.environment_name).await?;
                check_deployment_id(&environment, request.deployment_id.as_deref())?;
                let outputs: Vec<Value> =
                    environment.deployed.outputs.iter().map(|o| json!({ "key": o.key, "valueString": o.value })).collect();
                json!({ "outputs": outputs })
            }
            "ListEnvironmentProvisionedResources" => {
                let ByEnvironmentName { environment_name } = parse(body)?;
                let environment = environments.get(&environment_name).await?;
                let resources: Vec<Value> = environment
                    .deployed
                    .resources
                    .iter()
                    .map(|r| json!({ "name": r.name, "identifier": r.identifier, "provisioningEngine": "CLOUDFORMATION" }))
                    .collect();
                json!({ "provisionedResources": resources })
            }
            "ListDeployments" => {
                let listing: DeploymentListing = parse(body)?;
                let request = page(listing.max_results, listing.next_token)?;
                let listed = environments.deployments(listing.environment_name.as_ref(), request).await?;
                // Service and component filters apply to the page (so a page may come back short).
                let items: Vec<Value> = listed
                    .items
                    .iter()
                    .filter(|d| matches_service(d, listing.service_name.as_ref(), listing.service_instance_name.as_ref()))
                    .filter(|d| listing.component_name.as_ref().is_none_or(|c| d.target == Target::Component { component: c.clone() }))
                    .map(|d| deployment_json(app, d, true))
                    .collect();
                compact(json!({ "deployments": items, "nextToken": next_token(listed.cursor) }))
            }
            "GetDeployment" => {
                let DeploymentKey { id } = parse(body)?;
                json!({ "deployment": deployment_json(app, &environments.deployment(&id).await?, false) })
            }
            "DeleteDeployment" => {
                let DeploymentKey { id } = parse(body)?;
                json!({ "deployment": deployment_json(app, &environments.delete_deployment(&id).await?, false) })
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

fn matches_service(
    deployment: &Deployment,
    service: Option<&ResourceName>,
    instance: Option<&ResourceName>,
) -> bool {
    let (target_service, target_instance) = match &deployment.target {
        Target::ServiceInstance { service, instance } => (Some(service), Some(instance)),
        Target::ServicePipeline { service } => (Some(service), None),
        _ => (None, None),
    };
    service.is_none_or(|s| target_service == Some(s))
        && instance.is_none_or(|i| target_instance == Some(i))
}

fn check_deployment_id(environment: &Environment, id: Option<&str>) -> Result<(), ApiError> {
    match id {
        Some(id) if environment.deployed.last_succeeded_deployment_id.as_deref() != Some(id) => Err(Error::validation(format!(
            "deploymentId: paved keeps the outputs of the environment's last successful deployment only ({})",
            environment.deployed.last_succeeded_deployment_id.as_deref().unwrap_or("none yet")
        ))
        .into()),
        _ => Ok(()),
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

fn state_json(target: &Target, state: &DeployedState) -> Value {
    if let Some(definition) = &state.component {
        return json!({ "component": compact(json!({
            "serviceName": definition.service,
            "serviceInstanceName": definition.instance,
            "serviceSpec": (!state.spec.is_empty()).then_some(&state.spec),
            "templateFile": definition.template_file,
        }))});
    }
    let key = match target {
        Target::Environment => "environment",
        Target::ServiceInstance { .. } => "serviceInstance",
        Target::ServicePipeline { .. } => "servicePipeline",
        Target::Component { .. } => "component",
    };
    json!({ key: {
        "spec": state.spec,
        "templateName": state.template_name,
        "templateMajorVersion": state.major.to_string(),
        "templateMinorVersion": state.minor.to_string(),
    }})
}

fn target_arn(arns: &crate::app::environments::ArnBuilder, deployment: &Deployment) -> String {
    match &deployment.target {
        Target::Environment => arns.environment(deployment.environment_name.as_str()),
        Target::ServiceInstance { service, instance } => {
            arns.proton(&format!("service/{service}/service-instance/{instance}"))
        }
        Target::ServicePipeline { service } => arns.proton(&format!("service/{service}/pipeline")),
        Target::Component { component } => arns.proton(&format!("component/{component}")),
    }
}

fn deployment_json(app: &App, deployment: &Deployment, summary: bool) -> Value {
    let arns = app.environments.arns();
    let mut value = compact(json!({
        "arn": arns.deployment(&deployment.id),
        "id": deployment.id,
        "environmentName": deployment.environment_name,
        "targetArn": target_arn(arns, deployment),
        "serviceName": match &deployment.target {
            Target::ServiceInstance { service, .. } | Target::ServicePipeline { service } => Some(service.to_string()),
            _ => None,
        },
        "serviceInstanceName": match &deployment.target {
            Target::ServiceInstance { instance, .. } => Some(instance.to_string()),
            _ => None,
        },
        "componentName": match &deployment.target {
            Target::Component { component } => Some(component.to_string()),
            _ => None,
        },
        "targetResourceType": deployment.target.resource_type(),
        "targetResourceCreatedAt": deployment.target_created_at,
        "deploymentStatus": status_name(deployment.status),
        "createdAt": deployment.created_at,
        "lastModifiedAt": deployment.last_modified_at,
        "completedAt": deployment.completed_at,
        "lastAttemptedDeploymentId": deployment.id,
        "lastSucceededDeploymentId": deployment.previous_succeeded_id,
    }));
    if let (false, Value::Object(map)) = (summary, &mut value) {
        if let Some(message) = &deployment.status_message {
            map.insert("deploymentStatusMessage".into(), json!(message));
        }
        if let Some(initial) = &deployment.initial_state {
            map.insert(
                "initialState".into(),
                state_json(&deployment.target, initial),
            );
        }
        map.insert(
            "targetState".into(),
            state_json(&deployment.target, &deployment.target_state),
        );
    }
    value
}
