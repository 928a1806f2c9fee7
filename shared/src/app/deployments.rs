//! Deployments as Proton lists them: GetDeployment, ListDeployments, DeleteDeployment, for every
//! kind of target.

use super::deploy::{Deployer, Loaded};
use super::tasks::follow;
use crate::app::{Error, Result};
use crate::domain::environment::Deployment;
use crate::domain::names::ResourceName;
use crate::ports::{DeploymentChange, DeploymentWrite, Page, PageRequest};

pub struct Deployments {
    d: Deployer,
}

impl Deployments {
    pub fn new(deployer: Deployer) -> Self {
        Self { d: deployer }
    }

    /// A deployment; one still marked running whose workflow ended unrecorded is recorded as
    /// failed first (and what follows its end runs), so nothing reads as running for good.
    pub async fn get(&self, id: &str) -> Result<Deployment> {
        let deployment = self.load(id).await?;
        if !deployment.status.is_active() {
            return Ok(deployment);
        }
        let Some(target) = Loaded::load(&self.d, &deployment).await? else {
            return Ok(deployment);
        };
        if target.deployed().last_attempted_deployment_id.as_deref() != Some(id) {
            return Ok(deployment);
        }
        match self.d.reconcile(target.deployed()).await {
            Some(ended) => {
                if let Err(error) = follow(&self.d, ended).await {
                    tracing::warn!(deployment = id, error = %error, "what follows a reconciled deployment did not run yet");
                }
                self.load(id).await
            }
            None => Ok(deployment),
        }
    }

    async fn load(&self, id: &str) -> Result<Deployment> {
        self.d
            .store
            .deployment(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("deployment {id} does not exist")))
    }

    pub async fn list(
        &self,
        environment: Option<&ResourceName>,
        page: PageRequest,
    ) -> Result<Page<Deployment>> {
        Ok(self.d.store.deployments(environment, page).await?)
    }

    /// A service's deployments through its index, or every deployment (the caller filters)
    /// while the index still lacks older deployments.
    pub async fn list_for_service(
        &self,
        service: &ResourceName,
        page: PageRequest,
    ) -> Result<Page<Deployment>> {
        match self
            .d
            .store
            .service_deployments(service, page.clone())
            .await?
        {
            Some(found) => Ok(found),
            None => Ok(self.d.store.deployments(None, page).await?),
        }
    }

    /// What a deployment rendered and handed to its engine, as it was kept when it was planned.
    pub async fn rendered(&self, id: &str) -> Result<String> {
        self.load(id).await?;
        let key = super::deploy::records::rendered_key(id);
        match self.d.bundles.read_kept(&key).await {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
                Error::validation(format!("the kept template of deployment {id} is not text"))
            }),
            Err(crate::ports::BlobError::NotFound { .. }) => Err(Error::not_found(format!(
                "deployment {id} kept no rendered template: it was never planned (it was cancelled first, or removed a target), or it ran before paved kept them"
            ))),
            Err(other) => Err(other.into()),
        }
    }

    /// Deletes the record of an ended deployment that is not its target's latest.
    pub async fn delete(&self, id: &str) -> Result<Deployment> {
        let deployment = self.get(id).await?;
        if deployment.status.is_active() {
            return Err(Error::conflict(format!("deployment {id} is still running")));
        }
        if let Some(target) = Loaded::load(&self.d, &deployment).await? {
            let deployed = target.deployed();
            if deployed.last_attempted_deployment_id.as_deref() == Some(id)
                || deployed.last_succeeded_deployment_id.as_deref() == Some(id)
            {
                return Err(Error::conflict(format!(
                    "deployment {id} is the latest of {}; only older deployments can be deleted",
                    target.noun()
                )));
            }
        }
        self.d
            .store
            .change(DeploymentChange {
                deployments: vec![DeploymentWrite::Delete {
                    id: id.to_string(),
                    expected_rev: deployment.rev,
                }],
                ..Default::default()
            })
            .await?;
        Ok(deployment)
    }
}
