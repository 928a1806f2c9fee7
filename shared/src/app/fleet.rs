//! The fleet at a glance: GetResourcesSummary, counted as the model says (templates and
//! environments: a total; components: total and failed; services, service instances and
//! pipelines: also how many are up to date, behind a minor or behind a major of their
//! template's recommended versions).

use std::collections::BTreeMap;

use super::deploy::Deployer;
use super::{Result, every};
use crate::domain::environment::{Deployed, DeploymentStatus};
use crate::domain::names::ResourceName;
use crate::domain::service::ServiceStatus;
use crate::domain::template::{Staleness, TemplateKind, VersionIndex, VersionNumber};

/// One kind's counts (the model's `ResourceCountsSummary`); `None` where the model leaves a
/// member out for that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub failed: Option<u64>,
    pub up_to_date: Option<u64>,
    pub behind_minor: Option<u64>,
    pub behind_major: Option<u64>,
}

impl Counts {
    fn add_failed(&mut self, failed: bool) {
        *self.failed.get_or_insert(0) += u64::from(failed);
    }

    fn add_staleness(&mut self, staleness: Staleness) {
        let counter = match staleness {
            Staleness::UpToDate => &mut self.up_to_date,
            Staleness::BehindMinor => &mut self.behind_minor,
            Staleness::BehindMajor => &mut self.behind_major,
        };
        *counter.get_or_insert(0) += 1;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub environment_templates: Counts,
    pub service_templates: Counts,
    pub environments: Counts,
    pub services: Counts,
    pub service_instances: Counts,
    pub pipelines: Counts,
    pub components: Counts,
}

pub struct Fleet {
    d: Deployer,
}

impl Fleet {
    pub fn new(deployer: Deployer) -> Self {
        Self { d: deployer }
    }

    async fn indexes(&self, kind: TemplateKind) -> Result<BTreeMap<ResourceName, VersionIndex>> {
        let templates = every(|page| self.d.catalog.templates(kind, page)).await?;
        Ok(templates
            .into_iter()
            .map(|t| (t.name, t.versions))
            .collect())
    }

    pub async fn summary(&self) -> Result<Summary> {
        let mut summary = Summary::default();
        let environment_templates = self.indexes(TemplateKind::Environment).await?;
        let service_templates = self.indexes(TemplateKind::Service).await?;
        summary.environment_templates.total = environment_templates.len() as u64;
        summary.service_templates.total = service_templates.len() as u64;
        let stale = |deployed: &Deployed| {
            let state = &deployed.state;
            service_templates
                .get(&state.template_name)
                .map_or(Staleness::UpToDate, |index| {
                    index.staleness(VersionNumber {
                        major: state.major,
                        minor: state.minor,
                    })
                })
        };
        let failed = |deployed: &Deployed| {
            matches!(
                deployed.deployment_status,
                DeploymentStatus::Failed | DeploymentStatus::DeleteFailed
            )
        };
        summary.environments.total =
            every(|page| self.d.store.environments(page)).await?.len() as u64;
        for service in every(|page| self.d.store.services(page)).await? {
            let mut worst = Staleness::UpToDate;
            for instance in self.d.store.instances(&service.name).await? {
                summary.service_instances.total += 1;
                summary
                    .service_instances
                    .add_failed(failed(&instance.deployed));
                let staleness = stale(&instance.deployed);
                summary.service_instances.add_staleness(staleness);
                worst = worst.max(staleness);
            }
            if let Some(pipeline) = &service.pipeline {
                summary.pipelines.total += 1;
                summary.pipelines.add_failed(failed(pipeline));
                let staleness = stale(pipeline);
                summary.pipelines.add_staleness(staleness);
                worst = worst.max(staleness);
            }
            summary.services.total += 1;
            summary.services.add_failed(matches!(
                service.status,
                ServiceStatus::CreateFailed
                    | ServiceStatus::UpdateFailed
                    | ServiceStatus::DeleteFailed
            ));
            summary.services.add_staleness(worst);
        }
        for component in every(|page| self.d.store.components(None, page)).await? {
            summary.components.total += 1;
            summary.components.add_failed(failed(&component.deployed));
        }
        summary.components.failed.get_or_insert(0);
        for counts in [
            &mut summary.services,
            &mut summary.service_instances,
            &mut summary.pipelines,
        ] {
            counts.failed.get_or_insert(0);
            counts.up_to_date.get_or_insert(0);
            counts.behind_minor.get_or_insert(0);
            counts.behind_major.get_or_insert(0);
        }
        Ok(summary)
    }
}

impl Fleet {
    /// Redeploys a deployment's target to the template version and spec that deployment
    /// deployed, if it succeeded and that version still exists; answers the new deployment's
    /// id.
    #[tracing::instrument(skip_all, fields(deployment = %deployment_id))]
    pub async fn rollback(&self, deployment_id: &str) -> Result<String> {
        use crate::app::Error;
        use crate::domain::environment::Operation;
        let d = &self.d;
        let past = d.store.deployment(deployment_id).await?.ok_or_else(|| {
            Error::not_found(format!(
                "deploymentId: deployment {deployment_id} does not exist"
            ))
        })?;
        if past.operation != Operation::Deploy || past.status != DeploymentStatus::Succeeded {
            return Err(Error::validation(format!(
                "deployment {deployment_id} is {}, not a deployment that succeeded: a rollback goes back to what a successful deployment deployed",
                crate::domain::environment::status_name(past.status)
            )));
        }
        let Some(target) = super::deploy::Loaded::load(d, &past).await? else {
            return Err(Error::not_found(format!(
                "the target of deployment {deployment_id} no longer exists"
            )));
        };
        let state = past.target_state.clone();
        if let Some(kind) = target.template_kind() {
            if state.template_name != target.deployed().state.template_name {
                return Err(Error::validation(format!(
                    "deployment {deployment_id} deployed template {}, and {} now runs {}",
                    state.template_name,
                    target.noun(),
                    target.deployed().state.template_name
                )));
            }
            let gone = || {
                Error::validation(format!(
                    "version {} of {} {} no longer exists, so {} cannot go back to deployment {deployment_id}",
                    state.version(),
                    kind.noun(),
                    state.template_name,
                    target.noun()
                ))
            };
            let version = d
                .catalog
                .version(kind, &state.template_name, state.version())
                .await?
                .ok_or_else(gone)?;
            if version.status != crate::domain::template::VersionStatus::Published {
                return Err(gone());
            }
        }
        d.redeploy_to(target, state, &past).await
    }
}

/// One target of a template, as the fleet view shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetTarget {
    /// `ENVIRONMENT`, `SERVICE_INSTANCE` or `SERVICE_PIPELINE`.
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_name: Option<String>,
    /// The version it runs (`1.3`).
    pub version: String,
    /// `UP_TO_DATE`, `BEHIND_MINOR` or `BEHIND_MAJOR` of the recommended version.
    pub staleness: &'static str,
    pub deployment_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_deployment_id: Option<String>,
    pub last_deployment_attempted_at: crate::domain::names::Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_succeeded_deployment_id: Option<String>,
    pub stack_name: String,
}

/// A template's fleet: its recommended version and every target that runs it.
#[derive(Debug, Clone)]
pub struct TemplateFleet {
    pub template: crate::domain::template::Template,
    pub targets: Vec<FleetTarget>,
}

fn staleness_name(staleness: Staleness) -> &'static str {
    match staleness {
        Staleness::UpToDate => "UP_TO_DATE",
        Staleness::BehindMinor => "BEHIND_MINOR",
        Staleness::BehindMajor => "BEHIND_MAJOR",
    }
}

impl Fleet {
    /// Every environment (of an environment template), or every service instance and pipeline
    /// (of a service template), with the version it runs, how far behind the recommended
    /// version that is, and its last deployment.
    pub async fn view(&self, kind: TemplateKind, name: &ResourceName) -> Result<TemplateFleet> {
        let d = &self.d;
        let template = d.catalog.template(kind, name).await?.ok_or_else(|| {
            crate::app::Error::not_found(format!("{} {name} does not exist", kind.noun()))
        })?;
        let target = |kind: &'static str,
                      name: &str,
                      service: Option<&str>,
                      environment: Option<&str>,
                      deployed: &Deployed| FleetTarget {
            kind,
            name: name.to_string(),
            service_name: service.map(str::to_string),
            environment_name: environment.map(str::to_string),
            version: deployed.state.version().to_string(),
            staleness: staleness_name(template.versions.staleness(deployed.state.version())),
            deployment_status: crate::domain::environment::status_name(deployed.deployment_status),
            last_deployment_id: deployed.last_attempted_deployment_id.clone(),
            last_deployment_attempted_at: deployed.last_deployment_attempted_at,
            last_succeeded_deployment_id: deployed.last_succeeded_deployment_id.clone(),
            stack_name: deployed.stack_name.clone(),
        };
        let mut targets = Vec::new();
        match kind {
            TemplateKind::Environment => {
                for e in every(|page| d.store.environments(page)).await? {
                    if e.deployed.state.template_name == *name {
                        targets.push(target(
                            "ENVIRONMENT",
                            e.name.as_str(),
                            None,
                            None,
                            &e.deployed,
                        ));
                    }
                }
            }
            TemplateKind::Service => {
                for s in every(|page| d.store.services(page)).await? {
                    if s.template_name != *name {
                        continue;
                    }
                    for i in d.store.instances(&s.name).await? {
                        targets.push(target(
                            "SERVICE_INSTANCE",
                            i.name.as_str(),
                            Some(s.name.as_str()),
                            Some(i.environment.as_str()),
                            &i.deployed,
                        ));
                    }
                    if let Some(pipeline) = &s.pipeline {
                        targets.push(target(
                            "SERVICE_PIPELINE",
                            s.name.as_str(),
                            Some(s.name.as_str()),
                            None,
                            pipeline,
                        ));
                    }
                }
            }
        }
        Ok(TemplateFleet { template, targets })
    }
}
