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
