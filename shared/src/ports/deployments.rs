//! The records of what paved deploys: environments, services, instances, pipelines, components, their deployments, and what retries and replays need.

use async_trait::async_trait;

use super::{Page, PageRequest, StoreError};
use crate::domain::component::Component;
use crate::domain::environment::{Deployment, Environment};
use crate::domain::names::ResourceName;
use crate::domain::service::{Service, ServiceInstance};
use crate::domain::template::TemplateVersion as Version;

pub enum EnvironmentWrite {
    Create(Environment),
    Replace {
        environment: Environment,
        expected_rev: u64,
    },
    Delete {
        name: ResourceName,
        expected_rev: u64,
    },
}

pub enum ServiceWrite {
    Create(Service),
    Replace {
        service: Service,
        expected_rev: u64,
    },
    Delete {
        name: ResourceName,
        expected_rev: u64,
    },
}

pub enum InstanceWrite {
    Create(ServiceInstance),
    Replace {
        instance: ServiceInstance,
        expected_rev: u64,
    },
    Delete {
        service: ResourceName,
        name: ResourceName,
        expected_rev: u64,
    },
}

pub enum ComponentWrite {
    Create(Component),
    Replace {
        component: Component,
        expected_rev: u64,
    },
    Delete {
        name: ResourceName,
        expected_rev: u64,
    },
}

pub enum DeploymentWrite {
    Create(Deployment),
    Replace {
        deployment: Deployment,
        expected_rev: u64,
    },
    Delete {
        id: String,
        expected_rev: u64,
    },
}

/// A change of how many deployed resources run on a template version. Taking a version into
/// use requires it to be published; its revision moves too, so a concurrent delete of the
/// version (conditional on the revision it read) fails.
pub struct VersionUsage {
    pub version: Version,
    pub delta: i64,
}

/// A `clientToken` of a deployment request: the request's fingerprint and the deployment it
/// started, so that a retry with the same token gets the same answer (for 8 hours).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub scope: String,
    pub token: String,
    pub fingerprint: String,
    pub deployment_id: String,
    pub expires_at: u64,
}

/// That an environment is still as it was read: a change that places something in it carries
/// one, so it fails if a DeleteEnvironment (or any other write of the environment) came first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentCheck {
    pub name: ResourceName,
    pub rev: u64,
}

/// Writes applied together or not at all (at most 100 items, DynamoDB's transaction limit).
#[derive(Default)]
pub struct DeploymentChange {
    /// Environments that must still be at the revision read; nothing is written to them.
    pub environment_checks: Vec<EnvironmentCheck>,
    pub environments: Vec<EnvironmentWrite>,
    pub services: Vec<ServiceWrite>,
    pub instances: Vec<InstanceWrite>,
    pub components: Vec<ComponentWrite>,
    pub deployments: Vec<DeploymentWrite>,
    pub usage: Vec<VersionUsage>,
    /// Recorded only if no record of the token exists yet.
    pub token: Option<TokenRecord>,
}

#[async_trait]
pub trait DeploymentStore: Send + Sync {
    async fn environment(&self, name: &ResourceName) -> Result<Option<Environment>, StoreError>;
    async fn environments(&self, page: PageRequest) -> Result<Page<Environment>, StoreError>;
    async fn deployment(&self, id: &str) -> Result<Option<Deployment>, StoreError>;
    /// Deployments, newest first: of one environment, or all.
    async fn deployments(
        &self,
        environment: Option<&ResourceName>,
        page: PageRequest,
    ) -> Result<Page<Deployment>, StoreError>;
    /// The deployments of a service's instances and pipeline, newest first, through an index
    /// (never a walk of every deployment); `None` until the index holds the deployments written
    /// before it (see `index_deployments`).
    async fn service_deployments(
        &self,
        service: &ResourceName,
        page: PageRequest,
    ) -> Result<Option<Page<Deployment>>, StoreError>;
    /// Brings deployments written before the service index into it, once: `Some(count)` if it
    /// did now, `None` if it was complete. Safe to repeat and to interrupt.
    async fn index_deployments(&self) -> Result<Option<usize>, StoreError> {
        Ok(None)
    }
    async fn service(&self, name: &ResourceName) -> Result<Option<Service>, StoreError>;
    async fn services(&self, page: PageRequest) -> Result<Page<Service>, StoreError>;
    async fn instance(
        &self,
        service: &ResourceName,
        name: &ResourceName,
    ) -> Result<Option<ServiceInstance>, StoreError>;
    /// All instances of a service, by name (a service has at most its quota of them).
    async fn instances(&self, service: &ResourceName) -> Result<Vec<ServiceInstance>, StoreError>;
    /// Every instance of every service, through an index (never a read of every service once
    /// the index is built; see `index_instances`).
    async fn all_instances(&self) -> Result<Vec<ServiceInstance>, StoreError>;
    /// Brings instances written before the all-instances index into it, once: `Some(count)` if
    /// it did now, `None` if the index was complete already. Safe to repeat and to interrupt.
    async fn index_instances(&self) -> Result<Option<usize>, StoreError> {
        Ok(None)
    }
    /// Instances that run in an environment (up to `limit`).
    async fn instances_in(
        &self,
        environment: &ResourceName,
        limit: u32,
    ) -> Result<Vec<ServiceInstance>, StoreError>;
    /// Services whose pipeline builds `branch` of `repository` (an index query, never a scan).
    async fn token(&self, scope: &str, token: &str) -> Result<Option<TokenRecord>, StoreError>;
    async fn services_tracking(
        &self,
        repository: &str,
        branch: &str,
    ) -> Result<Vec<Service>, StoreError>;
    async fn component(&self, name: &ResourceName) -> Result<Option<Component>, StoreError>;
    /// Components by name: all, or those in one environment.
    async fn components(
        &self,
        environment: Option<&ResourceName>,
        page: PageRequest,
    ) -> Result<Page<Component>, StoreError>;
    async fn change(&self, change: DeploymentChange) -> Result<(), StoreError>;
    /// Lets a deployment record be dropped after `at` (seconds since the epoch); a record that
    /// is gone already is not an error.
    async fn expire_deployment(&self, id: &str, at: u64) -> Result<(), StoreError>;
}
