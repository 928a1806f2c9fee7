//! Services: the rules a service's spec must keep before anything is deployed. (The service
//! operations build on these; see the issue "Services: instances in environments, ...".)

use crate::domain::names::Tags;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::environment::Deployed;
use super::error::Error;
use super::names::{Description, ResourceName, Timestamp};
use super::push::Redeploys;
use super::spec::{InstanceSpec, Spec};
use super::template::CompatibleEnvironmentTemplate;

/// Instances per service unless configured otherwise (Proton's default quota).
pub const DEFAULT_INSTANCE_QUOTA: usize = 20;

/// What the rules need to know of an environment an instance names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentFacts {
    pub template_name: ResourceName,
    pub major: u64,
    pub deleting: bool,
}

/// The repository a service's pipeline builds from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub connection_arn: Option<String>,
    pub id: Option<String>,
    pub branch: Option<String>,
}

/// What the service template version offers.
#[derive(Debug, Clone)]
pub struct TemplateOffer<'a> {
    pub name: &'a ResourceName,
    pub version: String,
    pub compatible: &'a [CompatibleEnvironmentTemplate],
    /// The version has pipeline templates and paved provisions the pipeline.
    pub pipeline: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceStatus {
    CreateInProgress,
    CreateFailedCleanupInProgress,
    CreateFailedCleanupComplete,
    CreateFailedCleanupFailed,
    CreateFailed,
    Active,
    DeleteInProgress,
    DeleteFailed,
    UpdateInProgress,
    UpdateFailedCleanupInProgress,
    UpdateFailedCleanupComplete,
    UpdateFailedCleanupFailed,
    UpdateFailed,
    UpdateCompleteCleanupFailed,
}

/// A service: what its instances and pipeline are made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub name: ResourceName,
    pub description: Option<Description>,
    pub template_name: ResourceName,
    pub major: u64,
    pub minor: u64,
    pub spec: String,
    pub repository: Repository,
    pub status: ServiceStatus,
    pub status_message: Option<String>,
    pub created_at: Timestamp,
    pub last_modified_at: Timestamp,
    /// The service's pipeline, when its template has one.
    pub pipeline: Option<Deployed>,
    /// The deployments an UpdateService waits for before the service is ACTIVE again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaiting: Vec<String>,
    /// Redeploys caused by pushes to the service's repository and branch.
    #[serde(default)]
    pub redeploys: Redeploys,
    /// The customer's own tags (TagResource, or `tags` on create).
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    pub rev: u64,
}

/// One instance of a service, deployed into an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstance {
    pub service: ResourceName,
    pub name: ResourceName,
    pub environment: ResourceName,
    pub created_at: Timestamp,
    #[serde(flatten)]
    pub deployed: Deployed,
    /// The component attached to this instance (Proton attaches at most one, `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ResourceName>,
    /// The customer's own tags (TagResource, or `tags` on create).
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    pub rev: u64,
}

/// Checks a new service: its instances land in existing environments on compatible template
/// majors, within the quota, and its repository fields and pipeline inputs match whether the
/// template has a pipeline. Returns the instances to create.
pub fn check_new_service<'s>(
    spec: &'s Spec,
    offer: &TemplateOffer<'_>,
    repository: &Repository,
    environments: &BTreeMap<ResourceName, EnvironmentFacts>,
    quota: usize,
) -> Result<&'s [InstanceSpec], Error> {
    let Spec::Service {
        pipeline,
        instances,
    } = spec
    else {
        return Err(Error::validation(
            "spec: a service takes `proton: ServiceSpec`",
        ));
    };
    check_pipeline(offer, repository, pipeline.is_some())?;
    check_instances(instances, offer, environments, quota)?;
    Ok(instances)
}

fn check_pipeline(
    offer: &TemplateOffer<'_>,
    repository: &Repository,
    pipeline_inputs: bool,
) -> Result<(), Error> {
    let given = [
        ("repositoryConnectionArn", &repository.connection_arn),
        ("repositoryId", &repository.id),
        ("branchName", &repository.branch),
    ];
    if offer.pipeline {
        if let Some((field, _)) = given.iter().find(|(_, value)| value.is_none()) {
            return Err(Error::validation(format!(
                "{field} is required: service template {} {} has a pipeline, which builds from a repository",
                offer.name, offer.version
            )));
        }
    } else {
        if let Some((field, _)) = given.iter().find(|(_, value)| value.is_some()) {
            return Err(Error::validation(format!(
                "{field}: service template {} {} has no pipeline paved provisions, so it takes no repository",
                offer.name, offer.version
            )));
        }
        if pipeline_inputs {
            return Err(Error::validation(format!(
                "spec.pipeline: service template {} {} has no pipeline",
                offer.name, offer.version
            )));
        }
    }
    Ok(())
}

/// Checks instances against their environments, the template's compatibility and the quota.
pub fn check_instances(
    instances: &[InstanceSpec],
    offer: &TemplateOffer<'_>,
    environments: &BTreeMap<ResourceName, EnvironmentFacts>,
    quota: usize,
) -> Result<(), Error> {
    if instances.len() > quota {
        return Err(Error::QuotaExceeded(format!(
            "the spec names {} instances; a service may have at most {quota}",
            instances.len()
        )));
    }
    for (index, instance) in instances.iter().enumerate() {
        let at = format!("instances[{index}] ({})", instance.name);
        let Some(environment) = environments.get(&instance.environment) else {
            return Err(Error::validation(format!(
                "{at}.environment: environment {} does not exist",
                instance.environment
            )));
        };
        if environment.deleting {
            return Err(Error::conflict(format!(
                "{at}.environment: environment {} is being deleted",
                instance.environment
            )));
        }
        let compatible = offer.compatible.iter().any(|c| {
            c.template_name == environment.template_name && c.major_version.0 == environment.major
        });
        if !compatible {
            let accepted: Vec<String> = offer
                .compatible
                .iter()
                .map(|c| format!("{}:{}", c.template_name, c.major_version))
                .collect();
            return Err(Error::validation(format!(
                "{at}.environment: environment {} runs {}:{}, but service template {} {} is compatible with {}",
                instance.environment,
                environment.template_name,
                environment.major,
                offer.name,
                offer.version,
                accepted.join(", ")
            )));
        }
    }
    Ok(())
}

/// How an updated spec changes a service's instances.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstanceChanges {
    pub added: Vec<InstanceSpec>,
    pub removed: Vec<ResourceName>,
    pub kept: Vec<InstanceSpec>,
}

/// UpdateService only adds or removes instances: a kept instance may not move to another
/// environment (that is a delete and a create).
pub fn instance_changes(
    current: &BTreeMap<ResourceName, ResourceName>,
    wanted: &[InstanceSpec],
) -> Result<InstanceChanges, Error> {
    let mut changes = InstanceChanges::default();
    for instance in wanted {
        match current.get(&instance.name) {
            None => changes.added.push(instance.clone()),
            Some(environment) if *environment == instance.environment => {
                changes.kept.push(instance.clone())
            }
            Some(environment) => {
                return Err(Error::validation(format!(
                    "instances: {} runs in environment {environment}; an instance cannot move to {} (remove it and add a new one)",
                    instance.name, instance.environment
                )));
            }
        }
    }
    changes.removed = current
        .keys()
        .filter(|name| !wanted.iter().any(|i| &i.name == *name))
        .cloned()
        .collect();
    Ok(changes)
}

/// A criterion of ListServiceInstances (`filters`: the model's `ListServiceInstancesFilter`).
/// Criteria of one key match when any of them does; criteria of different keys all must.
#[derive(Debug, Clone, PartialEq)]
pub enum InstanceCriterion {
    Name(String),
    DeploymentStatus(String),
    TemplateName(String),
    ServiceName(String),
    /// The status of the template version the instance runs (`DRAFT`, `PUBLISHED`).
    DeployedTemplateVersionStatus(String),
    EnvironmentName(String),
    AttemptedBefore(f64),
    AttemptedAfter(f64),
    CreatedBefore(f64),
    CreatedAfter(f64),
}

/// The filter keys of the model, in its order.
pub const INSTANCE_FILTER_KEYS: &[&str] = &[
    "name",
    "deploymentStatus",
    "templateName",
    "serviceName",
    "deployedTemplateVersionStatus",
    "environmentName",
    "lastDeploymentAttemptedAtBefore",
    "lastDeploymentAttemptedAtAfter",
    "createdAtBefore",
    "createdAtAfter",
];

/// The sort keys of the model (`ListServiceInstancesSortBy`).
pub const INSTANCE_SORT_KEYS: &[&str] = &[
    "name",
    "deploymentStatus",
    "templateName",
    "serviceName",
    "environmentName",
    "lastDeploymentAttemptedAt",
    "createdAt",
];

impl InstanceCriterion {
    /// A criterion from a filter's key and value; times are RFC 3339 (`1985-04-12T23:20:50.52Z`).
    pub fn parse(key: &str, value: &str) -> Result<Self, String> {
        let time = || {
            aws_smithy_types::DateTime::from_str(
                value,
                aws_smithy_types::date_time::Format::DateTime,
            )
            .map(|t| t.as_secs_f64())
            .map_err(|_| {
                format!(
                    "filters: {key} takes an RFC 3339 time (1985-04-12T23:20:50.52Z), got {value:?}"
                )
            })
        };
        Ok(match key {
            "name" => Self::Name(value.into()),
            "deploymentStatus" => Self::DeploymentStatus(value.into()),
            "templateName" => Self::TemplateName(value.into()),
            "serviceName" => Self::ServiceName(value.into()),
            "deployedTemplateVersionStatus" => Self::DeployedTemplateVersionStatus(value.into()),
            "environmentName" => Self::EnvironmentName(value.into()),
            "lastDeploymentAttemptedAtBefore" => Self::AttemptedBefore(time()?),
            "lastDeploymentAttemptedAtAfter" => Self::AttemptedAfter(time()?),
            "createdAtBefore" => Self::CreatedBefore(time()?),
            "createdAtAfter" => Self::CreatedAfter(time()?),
            other => {
                return Err(format!(
                    "filters: {other:?} is not a filter key; the keys are {}",
                    INSTANCE_FILTER_KEYS.join(", ")
                ));
            }
        })
    }

    fn key(&self) -> usize {
        match self {
            Self::Name(_) => 0,
            Self::DeploymentStatus(_) => 1,
            Self::TemplateName(_) => 2,
            Self::ServiceName(_) => 3,
            Self::DeployedTemplateVersionStatus(_) => 4,
            Self::EnvironmentName(_) => 5,
            Self::AttemptedBefore(_) => 6,
            Self::AttemptedAfter(_) => 7,
            Self::CreatedBefore(_) => 8,
            Self::CreatedAfter(_) => 9,
        }
    }

    /// Whether the instance meets it; `version_status` is its template version's status.
    pub fn holds(&self, instance: &ServiceInstance, version_status: &str) -> bool {
        let deployed = &instance.deployed;
        match self {
            Self::Name(v) => instance.name.as_str() == v,
            Self::DeploymentStatus(v) => {
                crate::domain::environment::status_name(deployed.deployment_status) == *v
            }
            Self::TemplateName(v) => deployed.state.template_name.as_str() == v,
            Self::ServiceName(v) => instance.service.as_str() == v,
            Self::DeployedTemplateVersionStatus(v) => version_status == v,
            Self::EnvironmentName(v) => instance.environment.as_str() == v,
            Self::AttemptedBefore(t) => deployed.last_deployment_attempted_at.0 < *t,
            Self::AttemptedAfter(t) => deployed.last_deployment_attempted_at.0 > *t,
            Self::CreatedBefore(t) => instance.created_at.0 < *t,
            Self::CreatedAfter(t) => instance.created_at.0 > *t,
        }
    }
}

/// Whether an instance meets a list of criteria (any of one key, all of the keys).
pub fn meets(
    criteria: &[InstanceCriterion],
    instance: &ServiceInstance,
    version_status: &str,
) -> bool {
    let mut keys: Vec<usize> = criteria.iter().map(InstanceCriterion::key).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter().all(|key| {
        criteria
            .iter()
            .filter(|c| c.key() == key)
            .any(|c| c.holds(instance, version_status))
    })
}

/// Sorts instances by a model sort key (`serviceName` by default, then instance name within
/// a service, as the model says), descending if asked.
pub fn sort_instances(instances: &mut [ServiceInstance], by: &str, descending: bool) {
    use std::cmp::Ordering;
    let tie = |a: &ServiceInstance, b: &ServiceInstance| {
        (a.service.as_str(), a.name.as_str()).cmp(&(b.service.as_str(), b.name.as_str()))
    };
    instances.sort_by(|a, b| {
        let primary = match by {
            "name" => a.name.as_str().cmp(b.name.as_str()),
            "deploymentStatus" => {
                crate::domain::environment::status_name(a.deployed.deployment_status).cmp(
                    &crate::domain::environment::status_name(b.deployed.deployment_status),
                )
            }
            "templateName" => a
                .deployed
                .state
                .template_name
                .as_str()
                .cmp(b.deployed.state.template_name.as_str()),
            "environmentName" => a.environment.as_str().cmp(b.environment.as_str()),
            "lastDeploymentAttemptedAt" => a
                .deployed
                .last_deployment_attempted_at
                .0
                .total_cmp(&b.deployed.last_deployment_attempted_at.0),
            "createdAt" => a.created_at.0.total_cmp(&b.created_at.0),
            _ => Ordering::Equal,
        };
        let ordering = primary.then_with(|| tie(a, b));
        if descending {
            ordering.reverse()
        } else {
            ordering
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::names::VersionPart;

    fn name(text: &str) -> ResourceName {
        ResourceName::parse(text).unwrap()
    }

    fn environments() -> BTreeMap<ResourceName, EnvironmentFacts> {
        BTreeMap::from([
            (
                name("dev"),
                EnvironmentFacts {
                    template_name: name("fargate-env"),
                    major: 1,
                    deleting: false,
                },
            ),
            (
                name("legacy"),
                EnvironmentFacts {
                    template_name: name("fargate-env"),
                    major: 2,
                    deleting: false,
                },
            ),
            (
                name("gone"),
                EnvironmentFacts {
                    template_name: name("fargate-env"),
                    major: 1,
                    deleting: true,
                },
            ),
        ])
    }

    fn compatible() -> Vec<CompatibleEnvironmentTemplate> {
        vec![CompatibleEnvironmentTemplate {
            template_name: name("fargate-env"),
            major_version: VersionPart(1),
        }]
    }

    fn repository() -> Repository {
        Repository {
            connection_arn: Some(
                "arn:aws:codestar-connections:us-east-1:123456789012:connection/x".into(),
            ),
            id: Some("acme/web".into()),
            branch: Some("main".into()),
        }
    }

    fn spec(text: &str) -> Spec {
        Spec::parse(text).unwrap()
    }

    #[test]
    fn a_service_with_its_instances_in_compatible_environments_is_accepted() {
        let compatible = compatible();
        let offer = TemplateOffer {
            name: &name("web"),
            version: "1.0".into(),
            compatible: &compatible,
            pipeline: true,
        };
        let spec = spec(
            "proton: ServiceSpec\npipeline: {}\ninstances:\n  - {name: web-dev, environment: dev}\n",
        );
        let instances = check_new_service(
            &spec,
            &offer,
            &repository(),
            &environments(),
            DEFAULT_INSTANCE_QUOTA,
        )
        .unwrap();
        assert_eq!(instances.len(), 1);
    }

    #[test]
    fn instances_name_existing_compatible_environments_within_the_quota() {
        let compatible = compatible();
        let offer = TemplateOffer {
            name: &name("web"),
            version: "1.0".into(),
            compatible: &compatible,
            pipeline: false,
        };
        let none = Repository {
            connection_arn: None,
            id: None,
            branch: None,
        };
        let cases = [
            (
                "  - {name: a, environment: nowhere}\n",
                "instances[0] (a).environment: environment nowhere does not exist",
            ),
            (
                "  - {name: a, environment: legacy}\n",
                "runs fargate-env:2, but service template web 1.0 is compatible with fargate-env:1",
            ),
            ("  - {name: a, environment: gone}\n", "is being deleted"),
        ];
        for (instances, expected) in cases {
            let spec = spec(&format!("proton: ServiceSpec\ninstances:\n{instances}"));
            let err = check_new_service(&spec, &offer, &none, &environments(), 20).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
        let many: String = (0..3)
            .map(|i| format!("  - {{name: i{i}, environment: dev}}\n"))
            .collect();
        let err = check_new_service(
            &spec(&format!("proton: ServiceSpec\ninstances:\n{many}")),
            &offer,
            &none,
            &environments(),
            2,
        )
        .unwrap_err();
        assert!(matches!(err, Error::QuotaExceeded(_)), "{err:?}");
    }

    #[test]
    fn repository_fields_are_required_exactly_when_the_template_has_a_pipeline() {
        let compatible = compatible();
        let with = TemplateOffer {
            name: &name("web"),
            version: "1.0".into(),
            compatible: &compatible,
            pipeline: true,
        };
        let without = TemplateOffer {
            pipeline: false,
            ..with.clone()
        };
        let spec_text = spec("proton: ServiceSpec\ninstances:\n  - {name: a, environment: dev}\n");
        let mut missing = repository();
        missing.branch = None;
        let err = check_new_service(&spec_text, &with, &missing, &environments(), 20).unwrap_err();
        assert!(
            err.to_string().starts_with("branchName is required"),
            "{err}"
        );
        let err = check_new_service(&spec_text, &without, &repository(), &environments(), 20)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("repositoryConnectionArn: service template web 1.0 has no pipeline"),
            "{err}"
        );
        let none = Repository {
            connection_arn: None,
            id: None,
            branch: None,
        };
        let with_pipeline = spec(
            "proton: ServiceSpec\npipeline: {dockerfile: D}\ninstances:\n  - {name: a, environment: dev}\n",
        );
        let err =
            check_new_service(&with_pipeline, &without, &none, &environments(), 20).unwrap_err();
        assert!(err.to_string().starts_with("spec.pipeline:"), "{err}");
    }

    #[test]
    fn an_updated_spec_adds_and_removes_instances_but_never_moves_one() {
        let current = BTreeMap::from([(name("a"), name("dev")), (name("b"), name("dev"))]);
        let Spec::Service { instances, .. } = spec(
            "proton: ServiceSpec\ninstances:\n  - {name: a, environment: dev}\n  - {name: c, environment: dev}\n",
        ) else {
            unreachable!()
        };
        let changes = instance_changes(&current, &instances).unwrap();
        assert_eq!(
            changes
                .added
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>(),
            ["c"]
        );
        assert_eq!(changes.removed, [name("b")]);
        assert_eq!(changes.kept.len(), 1);
        let Spec::Service { instances, .. } =
            spec("proton: ServiceSpec\ninstances:\n  - {name: a, environment: legacy}\n")
        else {
            unreachable!()
        };
        assert!(
            instance_changes(&current, &instances)
                .unwrap_err()
                .to_string()
                .contains("cannot move")
        );
    }
}
