//! Components: the eight Component operations.

use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use super::operations::Operation;
use super::services::{deployed_json, merge, outputs_json, resources_json};
use super::wire::{ApiError, ByName, compact, next_token, page, parse};

use crate::app::components::{ComponentFilter, ComponentUpdate, NewComponent};
use crate::domain::component::Component;
use crate::domain::names::ResourceName;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ComponentRef {
    component_name: ResourceName,
    /// Outputs of one deployment: paved keeps the last successful one's.
    deployment_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ComponentListing {
    environment_name: Option<ResourceName>,
    service_name: Option<ResourceName>,
    service_instance_name: Option<ResourceName>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub async fn dispatch(
    app: &App,
    operation: Operation,
    body: &[u8],
) -> Option<Result<Value, ApiError>> {
    let components = &app.components;
    let result: Result<Value, Option<ApiError>> = async {
        Ok(match operation {
            Operation::CreateComponent => {
                let new: NewComponent = parse(body)?;
                json!({ "component": component_json(app, &components.create(new).await?, false) })
            }
            Operation::UpdateComponent => {
                let update: ComponentUpdate = parse(body)?;
                json!({ "component": component_json(app, &components.update(update).await?, false) })
            }
            Operation::DeleteComponent => {
                let ByName { name } = parse(body)?;
                json!({ "component": component_json(app, &components.delete(&name).await?, false) })
            }
            Operation::GetComponent => {
                let ByName { name } = parse(body)?;
                json!({ "component": component_json(app, &components.get(&name).await?, false) })
            }
            Operation::CancelComponentDeployment => {
                let ComponentRef { component_name, .. } = parse(body)?;
                json!({ "component": component_json(app, &components.cancel(&component_name).await?, false) })
            }
            Operation::ListComponents => {
                let listing: ComponentListing = parse(body)?;
                let filter = ComponentFilter {
                    environment: listing.environment_name,
                    service: listing.service_name,
                    instance: listing.service_instance_name,
                };
                let listed = components.list(filter, page(listing.max_results, listing.next_token)?).await?;
                let items: Vec<Value> = listed.items.iter().map(|c| component_json(app, c, true)).collect();
                compact(json!({ "components": items, "nextToken": next_token(listed.cursor) }))
            }
            Operation::ListComponentOutputs => {
                let ComponentRef { component_name, deployment_id } = parse(body)?;
                let component = components.get(&component_name).await?;
                json!({ "outputs": outputs_json(&component.deployed, deployment_id.as_deref(), "the component")? })
            }
            Operation::ListComponentProvisionedResources => {
                let ComponentRef { component_name, .. } = parse(body)?;
                let component = components.get(&component_name).await?;
                json!({ "provisionedResources": resources_json(&component.deployed) })
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

fn component_json(app: &App, component: &Component, summary: bool) -> Value {
    let deployed = &component.deployed;
    let mut base = deployed_json(deployed);
    if let Value::Object(map) = &mut base {
        // A component has no catalog template.
        for key in [
            "templateName",
            "templateMajorVersion",
            "templateMinorVersion",
        ] {
            map.remove(key);
        }
    }
    let attachment = component.attachment();
    let mut value = merge(
        base,
        json!({
            "arn": app.environments.arns().proton(&format!("component/{}", component.name)),
            "name": component.name,
            "environmentName": component.environment,
            "serviceName": attachment.map(|(s, _)| s.to_string()),
            "serviceInstanceName": attachment.map(|(_, i)| i.to_string()),
            "createdAt": component.created_at,
            "lastModifiedAt": component.last_modified_at,
        }),
    );
    if let (false, Value::Object(map)) = (summary, &mut value) {
        if let Some(description) = &component.description {
            map.insert("description".into(), json!(description));
        }
        if !deployed.state.spec.is_empty() {
            map.insert("serviceSpec".into(), json!(deployed.state.spec));
        }
        if let Some(token) = &component.last_client_request_token {
            map.insert("lastClientRequestToken".into(), json!(token));
        }
    }
    value
}
