//! Tags: TagResource, UntagResource and ListTagsForResource on every resource paved keeps a
//! record of (templates, template versions, environments, services, service instances,
//! components). A change is a read, a merge and a write conditional on the revision read;
//! another writer in between (a deployment finishing) makes it read and merge again.
//!
//! Tags reach the stacks with the resource's next deployment (`deploy::target`): a tag change
//! alone deploys nothing.

use std::sync::Arc;

use super::deploy::ArnBuilder;
use crate::app::{Error, Result};
use crate::domain::names::{ResourceName, Tag, TagKey, Tags};
use crate::domain::template::{TemplateKind, VersionNumber};
use crate::ports::{
    CatalogStore, CatalogWrite, ComponentWrite, DeploymentChange, DeploymentStore,
    EnvironmentWrite, InstanceWrite, ServiceWrite, StoreError, TemplateWrite, VersionWrite,
};

/// How often a tag change reads and merges again after another writer changed the record.
const ATTEMPTS: usize = 5;

/// A resource named by a Proton ARN that paved can tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tagged {
    Template(TemplateKind, ResourceName),
    Version(TemplateKind, ResourceName, VersionNumber),
    Environment(ResourceName),
    Service(ResourceName),
    Instance {
        service: ResourceName,
        name: ResourceName,
    },
    Component(ResourceName),
}

impl Tagged {
    /// Reads an ARN of this paved (its region and account); anything else is not found.
    pub fn parse(arns: &ArnBuilder, arn: &str) -> Result<Self> {
        let not_found = || {
            Error::not_found(format!(
                "resourceArn: paved keeps no resource {arn:?} (it tags templates, template versions, environments, services, service instances and components of region {} and account {})",
                arns.region, arns.account_id
            ))
        };
        let prefix = arns.proton("");
        let path = arn.strip_prefix(&prefix).ok_or_else(not_found)?;
        let name = |s: &str| ResourceName::parse(s).map_err(|_| not_found());
        let parts: Vec<&str> = path.split('/').collect();
        Ok(match parts.as_slice() {
            [kind @ ("environment-template" | "service-template"), rest] => {
                let kind = if *kind == "environment-template" {
                    TemplateKind::Environment
                } else {
                    TemplateKind::Service
                };
                match rest.split_once(':') {
                    None => Self::Template(kind, name(rest)?),
                    Some((template, number)) => {
                        let number = number
                            .split_once('.')
                            .and_then(|(major, minor)| {
                                Some(VersionNumber {
                                    major: major.parse().ok()?,
                                    minor: minor.parse().ok()?,
                                })
                            })
                            .ok_or_else(not_found)?;
                        Self::Version(kind, name(template)?, number)
                    }
                }
            }
            ["environment", env] => Self::Environment(name(env)?),
            ["service", service] => Self::Service(name(service)?),
            ["service", service, "service-instance", instance] => Self::Instance {
                service: name(service)?,
                name: name(instance)?,
            },
            ["component", component] => Self::Component(name(component)?),
            _ => return Err(not_found()),
        })
    }
}

pub struct Tagging {
    catalog: Arc<dyn CatalogStore>,
    store: Arc<dyn DeploymentStore>,
    arns: ArnBuilder,
}

impl Tagging {
    pub fn new(
        catalog: Arc<dyn CatalogStore>,
        store: Arc<dyn DeploymentStore>,
        arns: ArnBuilder,
    ) -> Self {
        Self {
            catalog,
            store,
            arns,
        }
    }

    /// The resource's customer tags.
    pub async fn list(&self, arn: &str) -> Result<Tags> {
        let tagged = Tagged::parse(&self.arns, arn)?;
        Ok(self.read(&tagged, arn).await?.0)
    }

    /// Adds `tags`, replacing the values of keys the resource has already.
    #[tracing::instrument(skip(self, tags))]
    pub async fn tag(&self, arn: &str, tags: Tags) -> Result<()> {
        self.change(arn, |current| {
            let mut merged: Vec<Tag> = current
                .as_slice()
                .iter()
                .filter(|t| !tags.as_slice().iter().any(|n| n.key == t.key))
                .cloned()
                .collect();
            merged.extend(tags.as_slice().iter().cloned());
            Tags::parse(merged).map_err(|_| {
                Error::validation(format!(
                    "tags: a resource has at most {} tags; this one has {} and the request adds {} new keys",
                    Tags::MAX,
                    current.as_slice().len(),
                    tags.as_slice()
                        .iter()
                        .filter(|n| !current.as_slice().iter().any(|t| t.key == n.key))
                        .count()
                ))
            })
        })
        .await
    }

    /// Removes the tags of `keys`; keys the resource does not have are ignored.
    #[tracing::instrument(skip(self, keys))]
    pub async fn untag(&self, arn: &str, keys: Vec<TagKey>) -> Result<()> {
        if keys.len() > Tags::MAX {
            return Err(Error::validation(format!(
                "tagKeys: at most {} keys, got {}",
                Tags::MAX,
                keys.len()
            )));
        }
        self.change(arn, |current| {
            Ok(Tags::parse(
                current
                    .as_slice()
                    .iter()
                    .filter(|t| !keys.contains(&t.key))
                    .cloned()
                    .collect(),
            )
            .expect("fewer tags than a valid set"))
        })
        .await
    }

    async fn change(&self, arn: &str, next: impl Fn(&Tags) -> Result<Tags>) -> Result<()> {
        let tagged = Tagged::parse(&self.arns, arn)?;
        for _ in 0..ATTEMPTS {
            let (current, record) = self.read(&tagged, arn).await?;
            let wanted = next(&current)?;
            if wanted == current {
                return Ok(());
            }
            match self.write(record, wanted).await {
                Ok(()) => return Ok(()),
                Err(StoreError::ConditionFailed) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(Error::conflict(format!(
            "{arn} kept changing while its tags were written; try again"
        )))
    }

    async fn read(&self, tagged: &Tagged, arn: &str) -> Result<(Tags, Record)> {
        let missing = || Error::not_found(format!("resourceArn: {arn} does not exist"));
        Ok(match tagged {
            Tagged::Template(kind, name) => {
                let template = self
                    .catalog
                    .template(*kind, name)
                    .await?
                    .ok_or_else(missing)?;
                (
                    stored(&template.tags)?,
                    Record::Template(Box::new(template)),
                )
            }
            Tagged::Version(kind, name, number) => {
                let version = self
                    .catalog
                    .version(*kind, name, *number)
                    .await?
                    .ok_or_else(missing)?;
                (stored(&version.tags)?, Record::Version(Box::new(version)))
            }
            Tagged::Environment(name) => {
                let environment = self.store.environment(name).await?.ok_or_else(missing)?;
                (
                    environment.tags.clone(),
                    Record::Environment(Box::new(environment)),
                )
            }
            Tagged::Service(name) => {
                let service = self.store.service(name).await?.ok_or_else(missing)?;
                (service.tags.clone(), Record::Service(Box::new(service)))
            }
            Tagged::Instance { service, name } => {
                let instance = self
                    .store
                    .instance(service, name)
                    .await?
                    .ok_or_else(missing)?;
                (instance.tags.clone(), Record::Instance(Box::new(instance)))
            }
            Tagged::Component(name) => {
                let component = self.store.component(name).await?.ok_or_else(missing)?;
                (
                    component.tags.clone(),
                    Record::Component(Box::new(component)),
                )
            }
        })
    }

    async fn write(&self, record: Record, tags: Tags) -> Result<(), StoreError> {
        match record {
            Record::Template(template) => {
                let mut template = *template;
                let expected_rev = template.rev;
                template.tags = tags.into_vec();
                template.rev += 1;
                self.catalog
                    .write(CatalogWrite {
                        template: Some(TemplateWrite::Replace {
                            template,
                            expected_rev,
                        }),
                        ..Default::default()
                    })
                    .await
            }
            Record::Version(version) => {
                let mut version = *version;
                let expected_rev = version.rev;
                version.tags = tags.into_vec();
                version.rev += 1;
                self.catalog
                    .write(CatalogWrite {
                        version: Some(VersionWrite::Replace {
                            version,
                            expected_rev,
                        }),
                        ..Default::default()
                    })
                    .await
            }
            Record::Environment(environment) => {
                let mut environment = *environment;
                let expected_rev = environment.rev;
                environment.tags = tags;
                environment.rev += 1;
                self.store
                    .change(DeploymentChange {
                        environments: vec![EnvironmentWrite::Replace {
                            environment,
                            expected_rev,
                        }],
                        ..Default::default()
                    })
                    .await
            }
            Record::Service(service) => {
                let mut service = *service;
                let expected_rev = service.rev;
                service.tags = tags;
                service.rev += 1;
                self.store
                    .change(DeploymentChange {
                        services: vec![ServiceWrite::Replace {
                            service,
                            expected_rev,
                        }],
                        ..Default::default()
                    })
                    .await
            }
            Record::Instance(instance) => {
                let mut instance = *instance;
                let expected_rev = instance.rev;
                instance.tags = tags;
                instance.rev += 1;
                self.store
                    .change(DeploymentChange {
                        instances: vec![InstanceWrite::Replace {
                            instance,
                            expected_rev,
                        }],
                        ..Default::default()
                    })
                    .await
            }
            Record::Component(component) => {
                let mut component = *component;
                let expected_rev = component.rev;
                component.tags = tags;
                component.rev += 1;
                self.store
                    .change(DeploymentChange {
                        components: vec![ComponentWrite::Replace {
                            component,
                            expected_rev,
                        }],
                        ..Default::default()
                    })
                    .await
            }
        }
    }
}

/// What a tag change read, to be written back with its new tags.
enum Record {
    Template(Box<crate::domain::template::Template>),
    Version(Box<crate::domain::template::TemplateVersion>),
    Environment(Box<crate::domain::environment::Environment>),
    Service(Box<crate::domain::service::Service>),
    Instance(Box<crate::domain::service::ServiceInstance>),
    Component(Box<crate::domain::component::Component>),
}

fn stored(tags: &[Tag]) -> Result<Tags> {
    Tags::parse(tags.to_vec()).map_err(|reason| {
        Error::Store(StoreError::Corrupt {
            key: "tags".into(),
            reason,
        })
    })
}
