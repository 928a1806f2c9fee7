//! Services, their instances and their pipelines (the operations built so far).

use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use super::operations::Operation;
use super::wire::{ApiError, ByName, Listing, compact, next_token, page, parse};
use crate::app::deploy::status_name;
use crate::app::services::NewService;
use crate::app::services::pipeline_of;
use crate::domain::environment::Deployed;
use crate::domain::names::ResourceName;
use crate::domain::service::{Service, ServiceInstance};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstanceKey {
    name: ResourceName,
    service_name: ResourceName,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstanceRef {
    service_name: ResourceName,
    service_instance_name: ResourceName,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceRef {
    service_name: ResourceName,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstanceListing {
    service_name: Option<ResourceName>,
}

pub async fn dispatch(
    app: &App,
    operation: Operation,
    body: &[u8],
) -> Option<Result<Value, ApiError>> {
    let services = &app.services;
    let result: Result<Value, Option<ApiError>> = async {
        Ok(match operation {
            Operation::CreateService => {
                let new: NewService = parse(body)?;
                json!({ "service": service_json(app, &services.create(new).await?, false) })
            }
            Operation::DeleteService => {
                let ByName { name } = parse(body)?;
                json!({ "service": service_json(app, &services.delete(&name).await?, false) })
            }
            Operation::GetService => {
                let ByName { name } = parse(body)?;
                json!({ "service": service_json(app, &services.get(&name).await?, false) })
            }
            Operation::ListServices => {
                let Listing { max_results, next_token: token } = parse(body)?;
                let listed = services.list(page(max_results, token)?).await?;
                let items: Vec<Value> = listed.items.iter().map(|s| service_json(app, s, true)).collect();
                compact(json!({ "services": items, "nextToken": next_token(listed.cursor) }))
            }
            Operation::UpdateService => {
                let update: crate::app::services::ServiceUpdate = parse(body)?;
                json!({ "service": service_json(app, &services.update(update).await?, false) })
            }
            Operation::CreateServiceInstance => {
                let new: crate::app::services::NewInstance = parse(body)?;
                json!({ "serviceInstance": instance_json(app, &services.create_instance(new).await?, false) })
            }
            Operation::UpdateServicePipeline => {
                let update: crate::app::services::PipelineUpdate = parse(body)?;
                let service = services.update_pipeline(update).await?;
                json!({ "pipeline": pipeline_json(app, &service, &pipeline_of(&service)?) })
            }
            Operation::CancelServicePipelineDeployment => {
                let ServiceRef { service_name } = parse(body)?;
                let service = services.cancel_pipeline(&service_name).await?;
                json!({ "pipeline": pipeline_json(app, &service, &pipeline_of(&service)?) })
            }
            Operation::UpdateServiceInstance => {
                let update: crate::app::services::InstanceUpdate = parse(body)?;
                json!({ "serviceInstance": instance_json(app, &services.update_instance(update).await?, false) })
            }
            Operation::CancelServiceInstanceDeployment => {
                let InstanceRef { service_name, service_instance_name } = parse(body)?;
                let instance = services.cancel_instance(&service_name, &service_instance_name).await?;
                json!({ "serviceInstance": instance_json(app, &instance, false) })
            }
            Operation::GetServiceInstance => {
                let InstanceKey { name, service_name } = parse(body)?;
                json!({ "serviceInstance": instance_json(app, &services.instance(&service_name, &name).await?, false) })
            }
            Operation::ListServiceInstances => {
                let InstanceListing { service_name } = parse(body)?;
                let mut instances = Vec::new();
                match service_name {
                    Some(name) => instances = services.instances(&name).await?,
                    None => {
                        let mut cursor = None;
                        loop {
                            let listed = services.list(crate::ports::PageRequest { limit: None, cursor }).await?;
                            for service in &listed.items {
                                instances.extend(services.instances(&service.name).await?);
                            }
                            cursor = listed.cursor;
                            if cursor.is_none() {
                                break;
                            }
                        }
                    }
                }
                let items: Vec<Value> = instances.iter().map(|i| instance_json(app, i, true)).collect();
                json!({ "serviceInstances": items })
            }
            Operation::ListServiceInstanceOutputs => {
                let InstanceRef { service_name, service_instance_name } = parse(body)?;
                let instance = services.instance(&service_name, &service_instance_name).await?;
                json!({ "outputs": outputs_json(&instance.deployed) })
            }
            Operation::ListServiceInstanceProvisionedResources => {
                let InstanceRef { service_name, service_instance_name } = parse(body)?;
                let instance = services.instance(&service_name, &service_instance_name).await?;
                json!({ "provisionedResources": resources_json(&instance.deployed) })
            }
            Operation::ListServicePipelineOutputs => {
                let ServiceRef { service_name } = parse(body)?;
                let pipeline = pipeline_of(&services.get(&service_name).await?)?;
                json!({ "outputs": outputs_json(&pipeline) })
            }
            Operation::ListServicePipelineProvisionedResources => {
                let ServiceRef { service_name } = parse(body)?;
                let pipeline = pipeline_of(&services.get(&service_name).await?)?;
                json!({ "provisionedResources": resources_json(&pipeline) })
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

fn pipeline_json(app: &App, service: &Service, pipeline: &Deployed) -> Value {
    merge(
        deployed_json(pipeline),
        json!({
            "arn": app.environments.arns().proton(&format!("service/{}/pipeline", service.name)),
            "createdAt": service.created_at,
            "spec": pipeline.state.spec,
        }),
    )
}

pub(super) fn outputs_json(deployed: &Deployed) -> Vec<Value> {
    deployed
        .outputs
        .iter()
        .map(|o| json!({ "key": o.key, "valueString": o.value }))
        .collect()
}

pub(super) fn resources_json(deployed: &Deployed) -> Vec<Value> {
    deployed
        .resources
        .iter()
        .map(|r| json!({ "name": r.name, "identifier": r.identifier, "provisioningEngine": deployed.engine.wire_name() }))
        .collect()
}

pub(super) fn deployed_json(deployed: &Deployed) -> Value {
    compact(json!({
        "templateName": deployed.state.template_name,
        "templateMajorVersion": deployed.state.major.to_string(),
        "templateMinorVersion": deployed.state.minor.to_string(),
        "deploymentStatus": status_name(deployed.deployment_status),
        "deploymentStatusMessage": deployed.deployment_status_message,
        "lastDeploymentAttemptedAt": deployed.last_deployment_attempted_at,
        "lastDeploymentSucceededAt": deployed.last_deployment_succeeded_at,
        "lastAttemptedDeploymentId": deployed.last_attempted_deployment_id,
        "lastSucceededDeploymentId": deployed.last_succeeded_deployment_id,
    }))
}

pub(super) fn merge(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(map), Value::Object(more)) = (&mut base, extra) {
        map.extend(more);
    }
    compact(base)
}

fn service_json(app: &App, service: &Service, summary: bool) -> Value {
    let arns = app.environments.arns();
    let mut value = compact(json!({
        "arn": arns.proton(&format!("service/{}", service.name)),
        "name": service.name,
        "description": service.description,
        "templateName": service.template_name,
        "status": serde_json::to_value(service.status).unwrap_or_default(),
        "statusMessage": service.status_message,
        "createdAt": service.created_at,
        "lastModifiedAt": service.last_modified_at,
    }));
    if summary {
        return value;
    }
    let pipeline = service
        .pipeline
        .as_ref()
        .map(|p| pipeline_json(app, service, p));
    if let Value::Object(map) = &mut value {
        map.insert("spec".into(), json!(service.spec));
        for (key, field) in [
            (
                "repositoryConnectionArn",
                &service.repository.connection_arn,
            ),
            ("repositoryId", &service.repository.id),
            ("branchName", &service.repository.branch),
        ] {
            if let Some(field) = field {
                map.insert(key.into(), json!(field));
            }
        }
        if let Some(pipeline) = pipeline {
            map.insert("pipeline".into(), pipeline);
        }
    }
    value
}

fn instance_json(app: &App, instance: &ServiceInstance, summary: bool) -> Value {
    let arns = app.environments.arns();
    let mut value = merge(
        deployed_json(&instance.deployed),
        json!({
            "arn": arns.proton(&format!("service/{}/service-instance/{}", instance.service, instance.name)),
            "name": instance.name,
            "serviceName": instance.service,
            "environmentName": instance.environment,
            "createdAt": instance.created_at,
        }),
    );
    if let (false, Value::Object(map)) = (summary, &mut value) {
        map.insert("spec".into(), json!(instance.deployed.state.spec));
    }
    value
}
