//! The instances of a service: CreateServiceInstance, UpdateServiceInstance, their cancel and
//! reads.

use crate::domain::names::Tags;
use serde::{Deserialize, Serialize};

use crate::app::deploy::records::{new_id, redeployment_of};
use crate::app::deploy::{Deployer, Loaded, fingerprint, request_cancel};
use crate::app::{Error, Result};
use crate::domain::environment::{DeploymentStatus, DeploymentType, Target};
use crate::domain::names::{ClientToken, ResourceName, Timestamp, VersionPart};
use crate::domain::schema::InputRole;
use crate::domain::service::{ServiceInstance, ServiceStatus, TemplateOffer, check_instances};
use crate::domain::spec::Spec;
use crate::domain::template::{TemplateKind, VersionStatus};
use crate::ports::{DeploymentChange, DeploymentWrite, InstanceWrite, VersionUsage, Workflow};

use super::{Redeploy, Services, conflict_if_busy, settle};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceUpdate {
    pub name: ResourceName,
    pub service_name: ResourceName,
    pub deployment_type: DeploymentType,
    pub spec: Option<String>,
    pub template_major_version: Option<VersionPart>,
    pub template_minor_version: Option<VersionPart>,
    pub client_token: Option<ClientToken>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewInstance {
    pub name: ResourceName,
    pub service_name: ResourceName,
    pub spec: String,
    pub template_major_version: Option<VersionPart>,
    pub template_minor_version: Option<VersionPart>,
    pub client_token: Option<ClientToken>,
    #[serde(default)]
    pub tags: Tags,
}

impl Services {
    /// Adds one instance to a service: the spec lists it (by name, with its environment).
    #[tracing::instrument(skip_all, fields(service = %new.service_name, instance = %new.name))]
    pub async fn create_instance(&self, new: NewInstance) -> Result<ServiceInstance> {
        let d = &self.d;
        let scope = format!("CreateServiceInstance/{}/{}", new.service_name, new.name);
        let print = fingerprint(&new);
        let token = new.client_token.as_ref();
        if d.replay(&scope, token, &print).await?.is_some() {
            return self.instance(&new.service_name, &new.name).await;
        }
        let service = self.get(&new.service_name).await?;
        if let Some(existing) = d.store.instance(&new.service_name, &new.name).await? {
            return if existing.deployed.state.spec == new.spec {
                Ok(existing)
            } else {
                Err(Error::conflict(format!(
                    "service instance {} of service {} already exists",
                    new.name, new.service_name
                )))
            };
        }
        conflict_if_busy(&service)?;
        let Spec::Service { instances, .. } = Spec::parse(&new.spec).map_err(Error::Validation)?
        else {
            return Err(Error::validation(
                "spec: a service instance takes `proton: ServiceSpec`",
            ));
        };
        let item = instances
            .into_iter()
            .find(|i| i.name == new.name)
            .ok_or_else(|| {
                Error::validation(format!("spec: no entry in instances names {}", new.name))
            })?;
        let current = d.store.instances(&service.name).await?;
        if current.len() + 1 > d.instance_quota {
            return Err(Error::QuotaExceeded(format!(
                "service {} has {} instances; a service may have at most {}",
                service.name,
                current.len(),
                d.instance_quota
            )));
        }
        let (major, minor) = match (new.template_major_version, new.template_minor_version) {
            (None, None) => (service.major, Some(service.minor)),
            (Some(major), minor) => (major.0, minor.map(|m| m.0)),
            (None, Some(_)) => {
                return Err(Error::validation(
                    "templateMinorVersion needs templateMajorVersion",
                ));
            }
        };
        let (_, number) = d
            .requested_version(TemplateKind::Service, &service.template_name, major, minor)
            .await?;
        let version = d
            .version_of(TemplateKind::Service, &service.template_name, number)
            .await?;
        if version.status != VersionStatus::Published {
            return Err(Error::validation(format!(
                "version {number} of service template {} is not published",
                service.template_name
            )));
        }
        let wanted = std::slice::from_ref(&item);
        let (environments, records) = self.environments_of(wanted).await?;
        let offer = TemplateOffer {
            name: &service.template_name,
            version: number.to_string(),
            compatible: &version.compatible_environment_templates,
            pipeline: service.pipeline.is_some(),
        };
        check_instances(wanted, &offer, &environments, usize::MAX)?;
        let schema = self.schema_of(&version).await?;
        let now = Timestamp::now();
        let mut planned_for = service.clone();
        planned_for.spec = new.spec.clone();
        let (mut instance, record) = self
            .plan_instance(
                &planned_for,
                &version,
                &schema,
                &item,
                &records[&item.environment],
                "spec",
                now,
            )
            .await?;
        instance.tags = new.tags.clone();
        let id = record.id.clone();
        let change = DeploymentChange {
            instances: vec![InstanceWrite::Create(instance.clone())],
            deployments: vec![DeploymentWrite::Create(record)],
            usage: vec![VersionUsage { version, delta: 1 }],
            token: Deployer::token_record(&scope, token, &print, &id),
            environment_checks: Self::still_as_read(&records),
            ..Default::default()
        };
        d.write(change, || {
            format!(
                "service instance {} was created by another request, or its environment changed meanwhile (a DeleteEnvironment?); read them and retry",
                new.name
            )
        })
        .await?;
        d.launch(Workflow::Deploy, &id).await;
        self.instance(&new.service_name, &new.name).await
    }

    /// Redeploys one instance: its spec or another version of the service template. Requests
    /// with one `clientToken` get one answer, even when they arrive together.
    #[tracing::instrument(skip_all, fields(service = %update.service_name, instance = %update.name))]
    pub async fn update_instance(&self, update: InstanceUpdate) -> Result<ServiceInstance> {
        let scope = format!(
            "UpdateServiceInstance/{}/{}",
            update.service_name, update.name
        );
        let print = fingerprint(&update);
        match self.update_instance_once(&update, &scope, &print).await {
            Err(error)
                if self
                    .d
                    .lost_to_twin(&scope, update.client_token.as_ref(), &print, &error)
                    .await? =>
            {
                self.instance(&update.service_name, &update.name).await
            }
            answer => answer,
        }
    }

    async fn update_instance_once(
        &self,
        update: &InstanceUpdate,
        scope: &str,
        print: &str,
    ) -> Result<ServiceInstance> {
        let d = &self.d;
        let (scope, print) = (scope.to_string(), print.to_string());
        let token = update.client_token.as_ref();
        if d.replay(&scope, token, &print).await?.is_some() {
            return self.instance(&update.service_name, &update.name).await;
        }
        let service = self.get(&update.service_name).await?;
        let current = self.instance(&update.service_name, &update.name).await?;
        if current.deployed.deployment_status.is_active()
            || service.status == ServiceStatus::DeleteInProgress
        {
            return Err(Error::conflict(format!(
                "service instance {} has a deployment in progress; wait for it or cancel it",
                update.name
            )));
        }
        if let Some(name) = &current.component
            && let Some(component) = d.store.component(name).await?
            && component.deployed.deployment_status.is_active()
        {
            return Err(Error::conflict(format!(
                "service instance {}: its component {name} is deploying; wait for it to end",
                update.name
            )));
        }
        if update.deployment_type == DeploymentType::None {
            return Ok(current);
        }
        let given = match &update.spec {
            None => None,
            Some(text) => {
                let Spec::Service { instances, .. } =
                    Spec::parse(text).map_err(Error::Validation)?
                else {
                    return Err(Error::validation(
                        "spec: a service instance takes `proton: ServiceSpec`",
                    ));
                };
                let entry = instances
                    .into_iter()
                    .find(|i| i.name == update.name)
                    .ok_or_else(|| {
                        Error::validation(format!(
                            "spec: no entry in instances names {}",
                            update.name
                        ))
                    })?;
                Some((text.clone(), entry.inputs))
            }
        };
        let at = format!("instances ({}).spec", update.name);
        let Redeploy { state, usage } = self
            .redeploy(
                &service,
                &current.deployed.state,
                update.deployment_type,
                update.template_major_version,
                update.template_minor_version,
                given,
                InputRole::Service,
                &at,
            )
            .await?;
        let now = Timestamp::now();
        let id = new_id();
        let target = Target::ServiceInstance {
            service: service.name.clone(),
            instance: update.name.clone(),
        };
        let record = redeployment_of(
            &id,
            &current.environment,
            target,
            &current.deployed,
            state.clone(),
            current.created_at,
            now,
        );
        let mut next = current.clone();
        next.deployed.state = state;
        next.deployed.begin(&id, DeploymentStatus::InProgress, now);
        next.rev = current.rev + 1;
        Loaded::Instance {
            service: service.clone(),
            instance: next.clone(),
        }
        .render(d, &record)
        .await?;
        let change = DeploymentChange {
            instances: vec![InstanceWrite::Replace {
                instance: next.clone(),
                expected_rev: current.rev,
            }],
            deployments: vec![DeploymentWrite::Create(record)],
            usage,
            token: Deployer::token_record(&scope, token, &print, &id),
            ..Default::default()
        };
        d.write(change, || {
            format!(
                "service instance {} changed while this update was prepared (another deployment or its component); retry",
                update.name
            )
        })
        .await?;
        if !d.launch(Workflow::Deploy, &id).await.started() {
            return self.instance(&update.service_name, &update.name).await;
        }
        Ok(next)
    }

    /// Asks a running instance deployment to stop (see the environment's cancel for what that means).
    pub async fn cancel_instance(
        &self,
        service: &ResourceName,
        name: &ResourceName,
    ) -> Result<ServiceInstance> {
        let target = Loaded::Instance {
            service: self.get(service).await?,
            instance: self.instance(service, name).await?,
        };
        match request_cancel(&self.d, target, &format!("service instance {name}")).await? {
            Loaded::Instance { instance, .. } => Ok(instance),
            _ => unreachable!("request_cancel returns the target it was given"),
        }
    }

    pub async fn instance(
        &self,
        service: &ResourceName,
        name: &ResourceName,
    ) -> Result<ServiceInstance> {
        let instance = self.load_instance(service, name).await?;
        if self.d.reconcile(&instance.deployed).await.is_some() {
            settle(&self.d, service).await?;
            self.load_instance(service, name).await
        } else {
            Ok(instance)
        }
    }

    pub(super) async fn load_instance(
        &self,
        service: &ResourceName,
        name: &ResourceName,
    ) -> Result<ServiceInstance> {
        self.d.store.instance(service, name).await?.ok_or_else(|| {
            Error::not_found(format!(
                "service instance {name} of service {service} does not exist"
            ))
        })
    }

    pub async fn instances(&self, service: &ResourceName) -> Result<Vec<ServiceInstance>> {
        self.get(service).await?;
        let mut instances = self.d.store.instances(service).await?;
        instances.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(instances)
    }

    /// The instances a ListServiceInstances names, filtered and sorted (see
    /// `domain::service::meets` and `sort_instances`). What is read: the instances of the
    /// services the request names (`serviceName`, or `serviceName` criteria); else those of the
    /// environments it names (an index query per environment); else every service's.
    pub async fn find_instances(
        &self,
        service: Option<&ResourceName>,
        criteria: &[crate::domain::service::InstanceCriterion],
        sort_by: &str,
        descending: bool,
    ) -> Result<Vec<ServiceInstance>> {
        use crate::domain::service::InstanceCriterion as C;
        let named_services: Vec<ResourceName> = match service {
            Some(service) => vec![service.clone()],
            None => criteria
                .iter()
                .filter_map(|c| match c {
                    C::ServiceName(name) => ResourceName::parse(name.as_str()).ok(),
                    _ => None,
                })
                .collect(),
        };
        let named_environments: Vec<ResourceName> = criteria
            .iter()
            .filter_map(|c| match c {
                C::EnvironmentName(name) => ResourceName::parse(name.as_str()).ok(),
                _ => None,
            })
            .collect();
        let has = |key: fn(&C) -> bool| criteria.iter().any(key);
        let mut found = Vec::new();
        if service.is_some() || has(|c| matches!(c, C::ServiceName(_))) {
            for name in &named_services {
                if service.is_some() {
                    self.get(name).await?;
                }
                found.extend(self.d.store.instances(name).await?);
            }
        } else if has(|c| matches!(c, C::EnvironmentName(_))) {
            for environment in &named_environments {
                found.extend(self.d.store.instances_in(environment, u32::MAX).await?);
            }
        } else {
            found = self.d.store.all_instances().await?;
        }
        if let Some(service) = service {
            found.retain(|i| &i.service == service);
        }
        let wants_version_status = has(|c| matches!(c, C::DeployedTemplateVersionStatus(_)));
        let mut statuses = std::collections::HashMap::new();
        let mut kept = Vec::new();
        for instance in found {
            let status = if wants_version_status {
                let state = &instance.deployed.state;
                let key = (state.template_name.clone(), state.major, state.minor);
                if !statuses.contains_key(&key) {
                    let version = self
                        .d
                        .catalog
                        .version(
                            crate::domain::template::TemplateKind::Service,
                            &state.template_name,
                            crate::domain::template::VersionNumber {
                                major: state.major,
                                minor: state.minor,
                            },
                        )
                        .await?;
                    let name = version
                        .and_then(|v| serde_json::to_value(v.status).ok())
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    statuses.insert(key.clone(), name);
                }
                statuses[&key].clone()
            } else {
                String::new()
            };
            if crate::domain::service::meets(criteria, &instance, &status) {
                kept.push(instance);
            }
        }
        crate::domain::service::sort_instances(&mut kept, sort_by, descending);
        kept.dedup_by(|a, b| a.service == b.service && a.name == b.name);
        Ok(kept)
    }
}
