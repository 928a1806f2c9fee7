//! Deployments (3 operations), of every kind of target.

use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use super::operations::Operation;
use super::wire::{ApiError, compact, next_token, page, parse};
use crate::app::deploy::{ArnBuilder, status_name};
use crate::domain::environment::{DeployedState, Deployment, Target};
use crate::domain::names::ResourceName;

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

pub async fn dispatch(
    app: &App,
    operation: Operation,
    body: &[u8],
) -> Option<Result<Value, ApiError>> {
    let result: Result<Value, Option<ApiError>> = async {
        Ok(match operation {
            Operation::ListDeployments => {
                let listing: DeploymentListing = parse(body)?;
                let request = page(listing.max_results, listing.next_token)?;
                let listed = match (&listing.environment_name, &listing.service_name) {
                    (None, Some(service)) => app.deployments.list_for_service(service, request).await?,
                    (environment, _) => app.deployments.list(environment.as_ref(), request).await?,
                };
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
            Operation::GetDeployment => {
                let DeploymentKey { id } = parse(body)?;
                json!({ "deployment": deployment_json(app, &app.deployments.get(&id).await?, false) })
            }
            Operation::DeleteDeployment => {
                let DeploymentKey { id } = parse(body)?;
                json!({ "deployment": deployment_json(app, &app.deployments.delete(&id).await?, false) })
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

fn target_arn(arns: &ArnBuilder, deployment: &Deployment) -> String {
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
    let arns = &app.arns;
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
        // paved's addition to Proton's shape (SDKs ignore members they do not model).
        if let Some(by) = &deployment.initiated_by {
            map.insert("initiatedBy".into(), json!(by));
        }
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
