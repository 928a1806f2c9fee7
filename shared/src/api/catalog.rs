//! The 20 template catalog operations: environment and service templates and their versions.

use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use super::wire::{ApiError, ByName, Listing, compact, next_token, page, parse};
use crate::app::catalog::{NewTemplate, NewVersion, TemplateChange, VersionChange};
use crate::domain::names::{ResourceName, VersionPart};
use crate::domain::template::{
    Provisioning, Template, TemplateKind, TemplateVersion, VersionNumber,
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionKey {
    template_name: ResourceName,
    major_version: VersionPart,
    minor_version: VersionPart,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionListing {
    template_name: ResourceName,
    major_version: Option<VersionPart>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// The catalog's answer to `operation`, or `None` if it is not a catalog operation.
pub async fn dispatch(app: &App, operation: &str, body: &[u8]) -> Option<Result<Value, ApiError>> {
    let (kind, action) = split(operation)?;
    Some(run(app, kind, action, body).await)
}

/// `CreateEnvironmentTemplateVersion` → (Environment, "CreateTemplateVersion").
fn split(operation: &str) -> Option<(TemplateKind, &'static str)> {
    const ACTIONS: [&str; 10] = [
        "CreateTemplate",
        "GetTemplate",
        "ListTemplates",
        "UpdateTemplate",
        "DeleteTemplate",
        "CreateTemplateVersion",
        "GetTemplateVersion",
        "ListTemplateVersions",
        "UpdateTemplateVersion",
        "DeleteTemplateVersion",
    ];
    [
        (TemplateKind::Environment, "Environment"),
        (TemplateKind::Service, "Service"),
    ]
    .into_iter()
    .find_map(|(kind, word)| {
        let verb_len = operation.find(word)?;
        let action = format!(
            "{}{}",
            &operation[..verb_len],
            &operation[verb_len + word.len()..]
        );
        ACTIONS.iter().find(|a| **a == action).map(|a| (kind, *a))
    })
}

async fn run(app: &App, kind: TemplateKind, action: &str, body: &[u8]) -> Result<Value, ApiError> {
    let catalog = &app.catalog;
    let (one, versions_key) = match kind {
        TemplateKind::Environment => ("environmentTemplate", "environmentTemplateVersion"),
        TemplateKind::Service => ("serviceTemplate", "serviceTemplateVersion"),
    };
    let value = match action {
        "CreateTemplate" => {
            let new: NewTemplate = parse(body)?;
            check_provisioning_member(kind, body)?;
            let template = catalog.create_template(kind, new).await?;
            json!({ one: template_json(app, &template, false) })
        }
        "GetTemplate" => {
            let ByName { name } = parse(body)?;
            json!({ one: template_json(app, &catalog.template(kind, &name).await?, false) })
        }
        "ListTemplates" => {
            let Listing {
                max_results,
                next_token: token,
            } = parse(body)?;
            let listed = catalog.templates(kind, page(max_results, token)?).await?;
            let templates: Vec<Value> = listed
                .items
                .iter()
                .map(|t| template_json(app, t, true))
                .collect();
            compact(json!({ "templates": templates, "nextToken": next_token(listed.cursor) }))
        }
        "UpdateTemplate" => {
            let change: TemplateChange = parse(body)?;
            json!({ one: template_json(app, &catalog.update_template(kind, change).await?, false) })
        }
        "DeleteTemplate" => {
            let ByName { name } = parse(body)?;
            json!({ one: template_json(app, &catalog.delete_template(kind, &name).await?, false) })
        }
        "CreateTemplateVersion" => {
            let new: NewVersion = parse(body)?;
            let (template, version) = catalog.create_version(kind, new).await?;
            json!({ versions_key: version_json(app, &template, &version, false) })
        }
        "GetTemplateVersion" => {
            let key: VersionKey = parse(body)?;
            let (template, version) = catalog
                .version(kind, &key.template_name, number(&key))
                .await?;
            json!({ versions_key: version_json(app, &template, &version, false) })
        }
        "ListTemplateVersions" => {
            let listing: VersionListing = parse(body)?;
            let request = page(listing.max_results, listing.next_token)?;
            let major = listing.major_version.map(|m| m.0);
            let (template, listed) = catalog
                .versions(kind, &listing.template_name, major, request)
                .await?;
            let versions: Vec<Value> = listed
                .items
                .iter()
                .map(|v| version_json(app, &template, v, true))
                .collect();
            compact(json!({ "templateVersions": versions, "nextToken": next_token(listed.cursor) }))
        }
        "UpdateTemplateVersion" => {
            let change: VersionChange = parse(body)?;
            let (template, version) = catalog.update_version(kind, change).await?;
            json!({ versions_key: version_json(app, &template, &version, false) })
        }
        "DeleteTemplateVersion" => {
            let key: VersionKey = parse(body)?;
            let (template, version) = catalog
                .delete_version(kind, &key.template_name, number(&key))
                .await?;
            json!({ versions_key: version_json(app, &template, &version, false) })
        }
        other => unreachable!("split() only yields catalog actions, not {other}"),
    };
    Ok(value)
}

/// Environment templates take `provisioning`, service templates `pipelineProvisioning`.
fn check_provisioning_member(kind: TemplateKind, body: &[u8]) -> Result<(), ApiError> {
    let wrong = match kind {
        TemplateKind::Environment => "pipelineProvisioning",
        TemplateKind::Service => "provisioning",
    };
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if value.get(wrong).is_some() {
        return Err(crate::app::Error::validation(format!(
            "{wrong}: not a member of this operation's input"
        ))
        .into());
    }
    Ok(())
}

fn number(key: &VersionKey) -> VersionNumber {
    VersionNumber {
        major: key.major_version.0,
        minor: key.minor_version.0,
    }
}

fn template_json(app: &App, template: &Template, summary: bool) -> Value {
    let provisioning_key = match template.kind {
        TemplateKind::Environment => "provisioning",
        TemplateKind::Service => "pipelineProvisioning",
    };
    let mut value = compact(json!({
        "arn": app.arn(&format!("{}/{}", template.kind.arn_resource(), template.name)),
        "name": template.name,
        "displayName": template.display_name,
        "description": template.description,
        "createdAt": template.created_at,
        "lastModifiedAt": template.last_modified_at,
        "recommendedVersion": template.versions.recommended().map(|n| n.to_string()),
        provisioning_key: template.provisioning.map(|_: Provisioning| "CUSTOMER_MANAGED"),
    }));
    if !summary && let (Some(key), Value::Object(map)) = (&template.encryption_key, &mut value) {
        map.insert("encryptionKey".into(), json!(key));
    }
    value
}

fn version_json(app: &App, template: &Template, version: &TemplateVersion, summary: bool) -> Value {
    let number = version.number;
    let mut value = compact(json!({
        "arn": app.arn(&format!(
            "{}/{}:{}",
            template.kind.arn_resource(),
            version.template_name,
            number
        )),
        "templateName": version.template_name,
        "majorVersion": number.major.to_string(),
        "minorVersion": number.minor.to_string(),
        "recommendedMinorVersion": template.versions.recommended_minor(number.major).map(|m| m.to_string()),
        "status": version.status,
        "statusMessage": version.status_message,
        "description": version.description,
        "createdAt": version.created_at,
        "lastModifiedAt": version.last_modified_at,
    }));
    if let (false, Value::Object(map)) = (summary, &mut value) {
        map.insert("schema".into(), json!(version.schema));
        if version.kind == TemplateKind::Service {
            map.insert(
                "compatibleEnvironmentTemplates".into(),
                json!(version.compatible_environment_templates),
            );
            if !version.supported_component_sources.is_empty() {
                map.insert(
                    "supportedComponentSources".into(),
                    json!(version.supported_component_sources),
                );
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_split_into_kind_and_action() {
        assert_eq!(
            split("CreateEnvironmentTemplateVersion"),
            Some((TemplateKind::Environment, "CreateTemplateVersion"))
        );
        assert_eq!(
            split("ListServiceTemplates"),
            Some((TemplateKind::Service, "ListTemplates"))
        );
        assert_eq!(split("CreateServiceInstance"), None);
        assert_eq!(split("CreateEnvironment"), None);
        assert_eq!(split("ListEnvironmentTemplateVersionsX"), None);
    }
}
