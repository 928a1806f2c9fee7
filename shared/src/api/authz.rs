//! What each call asks of the policies: its action, the resource it acts on (with that
//! resource's tags and environment, read from the records), Proton's condition keys, and one
//! more question per role the call names (PassRole) and per instance it creates (so that a
//! policy on environments covers the instances a CreateService puts in them).

use serde_json::Value;

use super::App;
use super::wire::ApiError;
use crate::app::Error;
use crate::domain::access::{AccessRequest, PASS_ROLE, Resource, ResourceKind};
use crate::domain::names::ResourceName;
use crate::domain::spec::Spec;

/// The questions for one call of `action` with `body`. A body that is not a JSON object asks
/// about the account (the call then fails on its input, if it is allowed at all).
pub async fn requests(
    app: &App,
    action: &str,
    body: &[u8],
) -> Result<Vec<AccessRequest>, ApiError> {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let ask = Asker { app, body: &body };
    ask.requests(action).await.map_err(ApiError::Domain)
}

struct Asker<'a> {
    app: &'a App,
    body: &'a Value,
}

fn name(value: Option<&str>) -> Option<ResourceName> {
    value.and_then(|v| ResourceName::parse(v).ok())
}

impl Asker<'_> {
    fn s(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }

    fn arn(&self, resource: &str) -> String {
        self.app.arn(resource)
    }

    fn account(&self) -> Resource {
        Resource::new(ResourceKind::Account, self.arn("*"))
    }

    fn template(&self, kind: ResourceKind, name: &str) -> Resource {
        let version = match (
            self.body.get("majorVersion").and_then(Value::as_str),
            self.body.get("minorVersion").and_then(Value::as_str),
        ) {
            (Some(major), Some(minor)) => format!(":{major}.{minor}"),
            (Some(major), None) => format!(":{major}"),
            _ => String::new(),
        };
        Resource::new(kind, format!("{}{version}", self.template_arn(kind, name)))
    }

    /// The template a fleet call names by `templateType` and name (a service template unless
    /// the type says environment).
    fn fleet_template(&self, template_type: &str, name: &str) -> Resource {
        let kind = match crate::domain::template::TemplateKind::from_type_name(template_type) {
            Ok(crate::domain::template::TemplateKind::Environment) => {
                ResourceKind::EnvironmentTemplate
            }
            _ => ResourceKind::ServiceTemplate,
        };
        Resource::new(kind, self.template_arn(kind, name))
    }

    fn template_arn(&self, kind: ResourceKind, name: &str) -> String {
        let prefix = match kind {
            ResourceKind::EnvironmentTemplate => "environment-template",
            _ => "service-template",
        };
        self.arn(&format!("{prefix}/{name}"))
    }

    /// An environment as a resource, with its tags and template when it exists.
    async fn environment(&self, env: &str) -> Result<(Resource, Option<String>), Error> {
        let mut resource = Resource::new(
            ResourceKind::Environment,
            self.arn(&format!("environment/{env}")),
        );
        let mut template = None;
        if let Some(n) = name(Some(env))
            && let Some(record) = self.app.store.environment(&n).await?
        {
            resource.tags = record.tags.to_map();
            template = Some(self.template_arn(
                ResourceKind::EnvironmentTemplate,
                record.deployed.state.template_name.as_str(),
            ));
        }
        Ok((resource, template))
    }

    async fn service(&self, service: &str) -> Result<(Resource, Option<String>), Error> {
        let mut resource = Resource::new(
            ResourceKind::Service,
            self.arn(&format!("service/{service}")),
        );
        let mut template = None;
        if let Some(n) = name(Some(service))
            && let Some(record) = self.app.store.service(&n).await?
        {
            resource.tags = record.tags.to_map();
            template = Some(
                self.template_arn(ResourceKind::ServiceTemplate, record.template_name.as_str()),
            );
        }
        Ok((resource, template))
    }

    /// An instance, in its environment (from its record, or `environment` for a new one).
    async fn instance(
        &self,
        service: &str,
        instance: &str,
        environment: Option<&str>,
    ) -> Result<Resource, Error> {
        let mut resource = Resource::new(
            ResourceKind::ServiceInstance,
            self.arn(&format!("service/{service}/service-instance/{instance}")),
        );
        let mut env = environment.map(str::to_string);
        if let (Some(s), Some(i)) = (name(Some(service)), name(Some(instance)))
            && let Some(record) = self.app.store.instance(&s, &i).await?
        {
            resource.tags = record.tags.to_map();
            env = Some(record.environment.to_string());
        }
        if let Some(env) = env {
            resource = resource.in_environment(self.environment(&env).await?.0);
        }
        Ok(resource)
    }

    async fn component(
        &self,
        component: &str,
        environment: Option<&str>,
    ) -> Result<Resource, Error> {
        let mut resource = Resource::new(
            ResourceKind::Component,
            self.arn(&format!("component/{component}")),
        );
        let mut env = environment.map(str::to_string);
        if let Some(n) = name(Some(component))
            && let Some(record) = self.app.store.component(&n).await?
        {
            resource.tags = record.tags.to_map();
            env = Some(record.environment.to_string());
        }
        if let Some(env) = env {
            resource = resource.in_environment(self.environment(&env).await?.0);
        }
        Ok(resource)
    }

    /// The tags a create sets, as `aws:RequestTag/...` and `aws:TagKeys`.
    fn request_tags(&self) -> Option<Vec<(String, String)>> {
        let tags = self.body.get("tags")?.as_array()?;
        Some(
            tags.iter()
                .filter_map(|t| {
                    Some((
                        t.get("key")?.as_str()?.to_string(),
                        t.get("value")?.as_str()?.to_string(),
                    ))
                })
                .collect(),
        )
    }

    fn with_request_tags(&self, request: AccessRequest) -> AccessRequest {
        match self.request_tags() {
            Some(tags) => {
                request.with_request_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            }
            None => request,
        }
    }

    /// One PassRole question per role field the call names.
    fn roles(&self, action: &str, fields: &[&str]) -> Vec<AccessRequest> {
        fields
            .iter()
            .filter_map(|field| {
                let arn = self.s(field)?;
                Some(
                    AccessRequest::new(PASS_ROLE, Resource::new(ResourceKind::Role, arn))
                        .with("paved:Operation", action)
                        .with("paved:RoleField", *field),
                )
            })
            .collect()
    }

    /// The instances a service spec lists, by name and environment.
    fn spec_instances(&self) -> Vec<(String, String)> {
        match self.s("spec").map(Spec::parse) {
            Some(Ok(Spec::Service { instances, .. })) => instances
                .into_iter()
                .map(|i| (i.name.to_string(), i.environment.to_string()))
                .collect(),
            _ => vec![],
        }
    }

    async fn requests(&self, action: &str) -> Result<Vec<AccessRequest>, Error> {
        let one = |resource: Resource| vec![AccessRequest::new(action, resource)];
        let by = |key: &str| self.s(key).unwrap_or("").to_string();
        Ok(match action {
            // Templates and their versions: the template a call names (`name`, or a version's
            // `templateName`), with the tags it sets.
            "CreateEnvironmentTemplate"
            | "GetEnvironmentTemplate"
            | "UpdateEnvironmentTemplate"
            | "DeleteEnvironmentTemplate"
            | "CreateServiceTemplate"
            | "GetServiceTemplate"
            | "UpdateServiceTemplate"
            | "DeleteServiceTemplate"
            | "CreateEnvironmentTemplateVersion"
            | "GetEnvironmentTemplateVersion"
            | "UpdateEnvironmentTemplateVersion"
            | "DeleteEnvironmentTemplateVersion"
            | "ListEnvironmentTemplateVersions"
            | "CreateServiceTemplateVersion"
            | "GetServiceTemplateVersion"
            | "UpdateServiceTemplateVersion"
            | "DeleteServiceTemplateVersion"
            | "ListServiceTemplateVersions" => {
                let kind = if action.contains("EnvironmentTemplate") {
                    ResourceKind::EnvironmentTemplate
                } else {
                    ResourceKind::ServiceTemplate
                };
                let key = if action.contains("TemplateVersion") {
                    "templateName"
                } else {
                    "name"
                };
                let request = AccessRequest::new(action, self.template(kind, &by(key)));
                vec![self.with_request_tags(request)]
            }

            // Environments.
            "CreateEnvironment" => {
                let (resource, _) = self.environment(&by("name")).await?;
                let template =
                    self.template_arn(ResourceKind::EnvironmentTemplate, &by("templateName"));
                let request = AccessRequest::new(action, resource)
                    .with("proton:EnvironmentTemplate", template);
                let mut requests = vec![self.with_request_tags(request)];
                requests.extend(self.roles(
                    action,
                    &[
                        "protonServiceRoleArn",
                        "componentRoleArn",
                        "codebuildRoleArn",
                    ],
                ));
                requests
            }
            "GetEnvironment" | "UpdateEnvironment" | "DeleteEnvironment" => {
                let (resource, template) = self.environment(&by("name")).await?;
                let mut request = AccessRequest::new(action, resource);
                if let Some(template) = template {
                    request = request.with("proton:EnvironmentTemplate", template);
                }
                let mut requests = vec![request];
                requests.extend(self.roles(
                    action,
                    &[
                        "protonServiceRoleArn",
                        "componentRoleArn",
                        "codebuildRoleArn",
                    ],
                ));
                requests
            }
            "CancelEnvironmentDeployment"
            | "ListEnvironmentOutputs"
            | "ListEnvironmentProvisionedResources" => {
                let (resource, template) = self.environment(&by("environmentName")).await?;
                let mut request = AccessRequest::new(action, resource);
                if let Some(template) = template {
                    request = request.with("proton:EnvironmentTemplate", template);
                }
                vec![request]
            }

            // Services and their instances.
            "CreateService" => {
                let template =
                    self.template_arn(ResourceKind::ServiceTemplate, &by("templateName"));
                let (service, _) = self.service(&by("name")).await?;
                let mut requests = vec![
                    self.with_request_tags(
                        AccessRequest::new(action, service)
                            .with("proton:ServiceTemplate", template.clone()),
                    ),
                ];
                for (instance, environment) in self.spec_instances() {
                    let resource = self
                        .instance(&by("name"), &instance, Some(&environment))
                        .await?;
                    requests.push(
                        AccessRequest::new(action, resource)
                            .with("proton:ServiceTemplate", template.clone()),
                    );
                }
                requests
            }
            "GetService" | "UpdateService" | "DeleteService" | "GetServicePipelineState" => {
                let service_name = if action == "GetServicePipelineState" {
                    by("serviceName")
                } else {
                    by("name")
                };
                let (service, template) = self.service(&service_name).await?;
                let keyed = |request: AccessRequest| match &template {
                    Some(t) => request.with("proton:ServiceTemplate", t.clone()),
                    None => request,
                };
                let mut requests = vec![keyed(AccessRequest::new(action, service))];
                if action == "UpdateService" {
                    for (instance, environment) in self.spec_instances() {
                        let resource = self
                            .instance(&service_name, &instance, Some(&environment))
                            .await?;
                        requests.push(keyed(AccessRequest::new(action, resource)));
                    }
                }
                requests
            }
            "UpdateServicePipeline"
            | "CancelServicePipelineDeployment"
            | "ListServicePipelineOutputs"
            | "ListServicePipelineProvisionedResources" => {
                let (service, template) = self.service(&by("serviceName")).await?;
                let mut request = AccessRequest::new(action, service);
                if let Some(t) = template {
                    request = request.with("proton:ServiceTemplate", t);
                }
                vec![request]
            }
            "CreateServiceInstance" => {
                let service_name = by("serviceName");
                let (_, template) = self.service(&service_name).await?;
                let instance = by("name");
                let environment = self
                    .spec_instances()
                    .into_iter()
                    .find(|(n, _)| *n == instance)
                    .map(|(_, e)| e);
                let resource = self
                    .instance(&service_name, &instance, environment.as_deref())
                    .await?;
                let mut request = AccessRequest::new(action, resource);
                if let Some(t) = template {
                    request = request.with("proton:ServiceTemplate", t);
                }
                vec![self.with_request_tags(request)]
            }
            "GetServiceInstance"
            | "UpdateServiceInstance"
            | "CancelServiceInstanceDeployment"
            | "ListServiceInstanceOutputs"
            | "ListServiceInstanceProvisionedResources"
            | "GetServiceInstanceSyncStatus" => {
                let service_name = by("serviceName");
                let instance = match action {
                    "GetServiceInstance" | "UpdateServiceInstance" => by("name"),
                    _ => by("serviceInstanceName"),
                };
                let (_, template) = self.service(&service_name).await?;
                let resource = self.instance(&service_name, &instance, None).await?;
                let mut request = AccessRequest::new(action, resource);
                if let Some(t) = template {
                    request = request.with("proton:ServiceTemplate", t);
                }
                vec![request]
            }
            "ListServiceInstances" => match self.s("serviceName") {
                Some(service) => one(self.service(service).await?.0),
                None => one(self.account()),
            },

            // Components.
            "CreateComponent" => {
                let resource = self
                    .component(&by("name"), self.s("environmentName"))
                    .await?;
                let mut resource = resource;
                if resource.environment.is_none() {
                    // Attached to an instance: it runs in the instance's environment.
                    if let (Some(s), Some(i)) =
                        (self.s("serviceName"), self.s("serviceInstanceName"))
                        && let Some(env) = self.instance(s, i, None).await?.environment
                    {
                        resource = resource.in_environment(*env);
                    }
                }
                vec![self.with_request_tags(AccessRequest::new(action, resource))]
            }
            "GetComponent" | "UpdateComponent" | "DeleteComponent" => {
                one(self.component(&by("name"), None).await?)
            }
            "CancelComponentDeployment"
            | "ListComponentOutputs"
            | "ListComponentProvisionedResources" => {
                one(self.component(&by("componentName"), None).await?)
            }

            // Deployments.
            "GetDeployment" | "DeleteDeployment" => one(Resource::new(
                ResourceKind::Deployment,
                self.arn(&format!("deployment/{}", by("id"))),
            )),

            // Tags.
            "TagResource" | "UntagResource" | "ListTagsForResource" => {
                let arn = by("resourceArn");
                let resource = self.tagged(&arn).await?;
                let request = AccessRequest::new(action, resource);
                let request = match action {
                    "TagResource" => self.with_request_tags(request),
                    "UntagResource" => request.with_tag_keys(
                        self.body
                            .get("tagKeys")
                            .and_then(Value::as_array)
                            .map(|keys| {
                                keys.iter()
                                    .filter_map(|k| k.as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    ),
                    _ => request,
                };
                vec![request]
            }

            // Account settings, repositories, connections and sync.
            "UpdateAccountSettings" => {
                let mut requests = one(self.account());
                requests.extend(self.roles(
                    action,
                    &["pipelineServiceRoleArn", "pipelineCodebuildRoleArn"],
                ));
                requests
            }
            "CreateEnvironmentAccountConnection" | "UpdateEnvironmentAccountConnection" => {
                let id = self.s("id").unwrap_or("new");
                let resource = Resource::new(
                    ResourceKind::EnvironmentAccountConnection,
                    self.arn(&format!("environment-account-connection/{id}")),
                );
                let mut requests =
                    vec![self.with_request_tags(AccessRequest::new(action, resource))];
                requests.extend(
                    self.roles(action, &["roleArn", "componentRoleArn", "codebuildRoleArn"]),
                );
                requests
            }
            "CreateRepository" | "GetRepository" | "DeleteRepository" => {
                let resource = Resource::new(
                    ResourceKind::Repository,
                    self.arn(&format!(
                        "repository/{}:{}",
                        by("provider").to_lowercase(),
                        by("name")
                    )),
                );
                vec![self.with_request_tags(AccessRequest::new(action, resource))]
            }

            // The fleet of a template: the template the call names, or the upgrade's.
            "StartFleetUpgrade" | "GetTemplateFleet" | "PreviewDeployment" | "DetectDrift" => {
                one(self.fleet_template(&by("templateType"), &by("templateName")))
            }
            "GetFleetUpgrade"
            | "ApproveFleetUpgrade"
            | "PauseFleetUpgrade"
            | "ResumeFleetUpgrade"
            | "CancelFleetUpgrade" => {
                match self.app.upgrades.get(&by("upgradeId")).await {
                    Ok((upgrade, _)) => {
                        one(self.fleet_template(&upgrade.template_type, &upgrade.template_name))
                    }
                    // Asked about the account; the call itself then answers not found.
                    Err(_) => one(self.account()),
                }
            }

            // paved's access policy.
            "GetAccessPolicy" | "ListAccessPolicyVersions" | "PutAccessPolicy" => one(
                Resource::new(ResourceKind::AccessPolicy, self.arn("access-policy")),
            ),

            // Everything else acts on the account as a whole (listings, summaries, settings).
            _ => one(self.account()),
        })
    }

    /// The resource a tag operation names, with the tags it has now.
    async fn tagged(&self, arn: &str) -> Result<Resource, Error> {
        let kind = ResourceKind::of_proton_arn(arn).unwrap_or(ResourceKind::Account);
        let path = arn.splitn(6, ':').nth(5).unwrap_or("");
        let parts: Vec<&str> = path.split('/').collect();
        let resource = match (kind, parts.as_slice()) {
            (ResourceKind::Environment, [_, env]) => self.environment(env).await?.0,
            (ResourceKind::Service, [_, service]) => self.service(service).await?.0,
            (ResourceKind::ServiceInstance, [_, service, _, instance]) => {
                self.instance(service, instance, None).await?
            }
            (ResourceKind::Component, [_, component]) => self.component(component, None).await?,
            _ => Resource::new(kind, arn),
        };
        let mut resource = resource;
        resource.arn = arn.to_string();
        Ok(resource)
    }
}

/// Every action a request can name: the Proton operations, paved's own, and PassRole.
pub fn actions() -> Vec<&'static str> {
    let mut actions: Vec<&'static str> = super::Operation::ALL.iter().map(|o| o.name()).collect();
    actions.extend(super::paved::OPERATIONS);
    actions.push(PASS_ROLE);
    actions
}
