//! The deployment kernel: what every kind of deployment shares. It owns deployment records, the
//! lifecycle of a deployment (begin, record, launch, follow, end), reconciling a deployment whose
//! workflow ended unrecorded, and the task steps the state machines run. It depends on the
//! domain and the ports only, and names no resource use case: when a deployment ends it returns
//! what ended ([`Ended`]), and the owner of the target decides what follows.

pub mod audit;
mod lifecycle;
pub mod records;
mod steps;
mod target;
mod task;

use std::sync::Arc;

pub use lifecycle::{Launch, fingerprint};
pub use steps::Steps;
pub use target::{Ended, Loaded, request_cancel};
pub use target::{outputs_of, service_names};

pub use crate::domain::environment::status_name;
pub use task::{DeploymentTask, TaskError};

use crate::domain::provisioning::ProvisioningEngine;
use crate::ports::{
    BundleStore, CatalogStore, DeploymentStore, Events, Pipelines, Provisioner, Workflows,
};

/// Everything a deployment reads and writes.
#[derive(Clone)]
pub struct Deployer {
    pub catalog: Arc<dyn CatalogStore>,
    pub store: Arc<dyn DeploymentStore>,
    /// Staged upgrades and drift records.
    pub fleet: Arc<dyn crate::ports::FleetStore>,
    /// The account settings (the pipeline role new services get).
    pub account: Arc<dyn crate::ports::AccountStore>,
    /// The account's roles, where paved may read IAM: roles it is given are checked to trust
    /// CloudFormation. `None`: not checked.
    pub roles: Option<Arc<dyn crate::ports::Roles>>,
    pub bundles: Arc<dyn BundleStore>,
    pub workflows: Arc<dyn Workflows>,
    pub events: Arc<dyn Events>,
    pub provisioners: Provisioners,
    pub pipelines: Arc<dyn Pipelines>,
    pub arns: ArnBuilder,
    /// The role service pipelines deploy under unless the account settings name another
    /// (`PAVED_PIPELINE_ROLE_ARN`).
    pub pipeline_role_arn: Option<String>,
    /// paved's Proton API as pipelines reach it (`PAVED_PROTON_ENDPOINT`); see `domain::pipeline`.
    pub proton_endpoint: Option<String>,
    /// Instances per service (`PAVED_INSTANCE_QUOTA`, default 20).
    pub instance_quota: usize,
    /// How long a deployment record is kept once it can no longer be what its target runs
    /// (`PAVED_DEPLOYMENT_RETENTION_DAYS`, default 180).
    pub deployment_retention_days: u64,
    /// The roles (path and name, IAM wildcards) targets may be deployed under
    /// (`PAVED_ROLE_PATTERN`: the SAM template's `ProtonServiceRolePattern`).
    pub role_pattern: String,
}

/// The provisioning engines paved can drive, and the one new targets are provisioned by. A
/// target records its engine when it is first deployed and keeps it.
#[derive(Clone)]
pub struct Provisioners {
    engines: Vec<Arc<dyn Provisioner>>,
}

impl Provisioners {
    /// The engines, the first being the one new targets get.
    pub fn new(default: Arc<dyn Provisioner>) -> Self {
        Self {
            engines: vec![default],
        }
    }

    pub fn with(mut self, engine: Arc<dyn Provisioner>) -> Self {
        self.engines.push(engine);
        self
    }

    /// The engine new targets are provisioned by.
    pub fn default_engine(&self) -> &Arc<dyn Provisioner> {
        &self.engines[0]
    }

    pub fn get(&self, engine: ProvisioningEngine) -> Option<&Arc<dyn Provisioner>> {
        self.engines.iter().find(|p| p.engine() == engine)
    }
}

#[derive(Debug, Clone)]
pub struct ArnBuilder {
    pub region: String,
    pub account_id: String,
}

impl ArnBuilder {
    pub fn proton(&self, resource: &str) -> String {
        format!(
            "arn:aws:proton:{}:{}:{resource}",
            self.region, self.account_id
        )
    }

    pub fn environment(&self, name: &str) -> String {
        self.proton(&format!("environment/{name}"))
    }

    pub fn deployment(&self, id: &str) -> String {
        self.proton(&format!("deployment/{id}"))
    }
}
