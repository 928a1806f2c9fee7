//! Services, their instances and their pipelines (the operations built so far).

use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use super::operations::Operation;
use super::wire::{ApiError, ByName, Listing, compact, next_token, page, parse};
use crate::app::Error;
use crate::app::deploy::status_name;
use crate::app::services::NewService;
use crate::app::services::pipeline_of;
use crate::domain::environment::Deployed;
use crate::domain::names::ResourceName;
use crate::domain::service::{INSTANCE_SORT_KEYS, InstanceCriterion};
use crate::domain::service::{Service, ServiceInstance};
use crate::ports::PageRequest;

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
struct OutputsOfInstance {
    service_name: ResourceName,
    service_instance_name: ResourceName,
    deployment_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputsOfPipeline {
    service_name: ResourceName,
    deployment_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstanceListing {
    service_name: Option<ResourceName>,
    #[serde(default)]
    filters: Vec<InstanceFilter>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct InstanceFilter {
    key: String,
    value: String,
}

/// A page of ListServiceInstances: instances `offset..` of the sorted, filtered list. The
/// token carries the offset and a digest of the request it belongs to, so a token of another
/// listing (or a made-up one) is refused.
fn instance_page(listing: &InstanceListing) -> Result<(usize, usize, String), ApiError> {
    let request = page(listing.max_results, None)?;
    let digest = {
        let text = serde_json::to_string(&(
            listing.service_name.as_ref().map(|n| n.as_str()),
            &listing.filters,
            &listing.sort_by,
            &listing.sort_order,
        ))
        .unwrap_or_default();
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        format!("{hash:016x}")
    };
    let offset = match &listing.next_token {
        None => 0,
        Some(token) => {
            let refused = || {
                ApiError::from(Error::validation(
                    "nextToken: not a token this listing issued",
                ))
            };
            let PageRequest {
                cursor: Some(cursor),
                ..
            } = page(None, Some(token.clone()))?
            else {
                return Err(refused());
            };
            let mut parts = cursor.splitn(3, ':');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("instances"), Some(offset), Some(of)) if of == digest => {
                    offset.parse().map_err(|_| refused())?
                }
                _ => return Err(refused()),
            }
        }
    };
    Ok((offset, request.limit.unwrap_or(100) as usize, digest))
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
                let listing: InstanceListing = parse(body)?;
                let criteria = listing
                    .filters
                    .iter()
                    .map(|f| InstanceCriterion::parse(&f.key, &f.value))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(Error::validation)?;
                let sort_by = listing.sort_by.as_deref().unwrap_or("serviceName");
                if !INSTANCE_SORT_KEYS.contains(&sort_by) {
                    return Err(Error::validation(format!(
                        "sortBy: {sort_by:?} is not a sort key; the keys are {}",
                        INSTANCE_SORT_KEYS.join(", ")
                    ))
                    .into());
                }
                let descending = match listing.sort_order.as_deref() {
                    None | Some("ASCENDING") => false,
                    Some("DESCENDING") => true,
                    Some(other) => {
                        return Err(Error::validation(format!(
                            "sortOrder: {other:?} is not ASCENDING or DESCENDING"
                        ))
                        .into());
                    }
                };
                let (offset, limit, digest) = instance_page(&listing)?;
                let found = services
                    .find_instances(listing.service_name.as_ref(), &criteria, sort_by, descending)
                    .await?;
                let items: Vec<Value> = found
                    .iter()
                    .skip(offset)
                    .take(limit)
                    .map(|i| instance_json(app, i, true))
                    .collect();
                let next = (offset + limit < found.len()).then(|| format!("instances:{}:{digest}", offset + limit));
                compact(json!({ "serviceInstances": items, "nextToken": next_token(next) }))
            }
            Operation::ListServiceInstanceOutputs => {
                let OutputsOfInstance { service_name, service_instance_name, deployment_id } = parse(body)?;
                let instance = services.instance(&service_name, &service_instance_name).await?;
                json!({ "outputs": outputs_json(&instance.deployed, deployment_id.as_deref(), "the service instance")? })
            }
            Operation::ListServiceInstanceProvisionedResources => {
                let InstanceRef { service_name, service_instance_name } = parse(body)?;
                let instance = services.instance(&service_name, &service_instance_name).await?;
                json!({ "provisionedResources": resources_json(&instance.deployed) })
            }
            Operation::ListServicePipelineOutputs => {
                let OutputsOfPipeline { service_name, deployment_id } = parse(body)?;
                let pipeline = pipeline_of(&services.get(&service_name).await?)?;
                json!({ "outputs": outputs_json(&pipeline, deployment_id.as_deref(), "the pipeline")? })
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

/// The outputs of what was deployed last; with `deployment_id`, only if that is the
/// deployment they came from (paved keeps the last successful deployment's outputs only).
pub(super) fn outputs_json(
    deployed: &Deployed,
    deployment_id: Option<&str>,
    what: &str,
) -> Result<Vec<Value>, ApiError> {
    if let Some(id) = deployment_id
        && deployed.last_succeeded_deployment_id.as_deref() != Some(id)
    {
        return Err(Error::validation(format!(
            "deploymentId: paved keeps the outputs of {what}'s last successful deployment only ({})",
            deployed
                .last_succeeded_deployment_id
                .as_deref()
                .unwrap_or("none yet")
        ))
        .into());
    }
    Ok(deployed
        .outputs
        .iter()
        .map(|o| json!({ "key": o.key, "valueString": o.value }))
        .collect())
}

/// What was provisioned, each with the name the engine gives it; what is not known (an
/// entry without a logical id, an identifier not assigned yet) is left out, as the model's
/// 1-character minimums require.
pub(super) fn resources_json(deployed: &Deployed) -> Vec<Value> {
    deployed
        .resources
        .iter()
        .filter(|r| !r.name.is_empty())
        .map(|r| {
            compact(json!({
                "name": r.name,
                "identifier": Some(&r.identifier).filter(|i| !i.is_empty()),
                "provisioningEngine": deployed.engine.wire_name(),
            }))
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::environment::{ProvisionedResource, StackOutput};

    fn deployed() -> Deployed {
        serde_json::from_value(json!({
            "state": {"templateName": "web", "major": 1, "minor": 0, "spec": "", "inputs": {}},
            "stackName": "s", "roleArn": "r", "deploymentStatus": "SUCCEEDED",
            "deploymentStatusMessage": null,
            "lastDeploymentAttemptedAt": 1.0, "lastDeploymentSucceededAt": 1.0,
            "lastAttemptedDeploymentId": "d-2", "lastSucceededDeploymentId": "d-2",
        }))
        .expect("a deployed target")
    }

    #[test]
    fn outputs_answer_for_the_deployment_they_came_from_only() {
        let mut target = deployed();
        target.outputs = vec![StackOutput {
            key: "Url".into(),
            value: "https://x".into(),
        }];
        assert_eq!(outputs_json(&target, Some("d-2"), "it").unwrap().len(), 1);
        assert_eq!(outputs_json(&target, None, "it").unwrap().len(), 1);
        let refused = outputs_json(&target, Some("d-1"), "the service instance").unwrap_err();
        assert!(refused.to_string().contains("d-2"), "{refused}");
    }

    #[test]
    fn provisioned_resources_leave_out_what_is_not_known() {
        let mut target = deployed();
        target.resources = vec![
            ProvisionedResource {
                name: "Queue".into(),
                identifier: "q-1".into(),
                resource_type: None,
            },
            ProvisionedResource {
                name: "Pending".into(),
                identifier: String::new(),
                resource_type: None,
            },
            ProvisionedResource {
                name: String::new(),
                identifier: "orphan".into(),
                resource_type: None,
            },
        ];
        let listed = resources_json(&target);
        assert_eq!(
            listed,
            vec![
                json!({"name": "Queue", "identifier": "q-1", "provisioningEngine": "CLOUDFORMATION"}),
                json!({"name": "Pending", "provisioningEngine": "CLOUDFORMATION"}),
            ]
        );
    }
}
