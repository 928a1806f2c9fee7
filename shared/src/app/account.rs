//! Account settings: GetAccountSettings and UpdateAccountSettings. The pipeline role new
//! service pipelines deploy under lives here, as in Proton; paved's own deployment parameter
//! (`PAVED_PIPELINE_ROLE_ARN`) is the default until one is set.

use serde::Deserialize;

use super::deploy::Deployer;
use super::{Error, Result};
use crate::domain::account::AccountSettings;
use crate::domain::names::Arn;
use crate::ports::StoreError;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsUpdate {
    /// A role ARN, or `""` to go back to paved's default.
    pub pipeline_service_role_arn: Option<String>,
    pub pipeline_provisioning_repository: Option<serde_json::Value>,
    pub delete_pipeline_provisioning_repository: Option<bool>,
    pub pipeline_codebuild_role_arn: Option<String>,
}

/// The settings as callers see them: the stored ones over paved's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    pub pipeline_service_role_arn: Option<String>,
}

pub struct Account {
    d: Deployer,
}

impl Account {
    pub fn new(deployer: Deployer) -> Self {
        Self { d: deployer }
    }

    pub async fn get(&self) -> Result<Effective> {
        Ok(Effective {
            pipeline_service_role_arn: self.d.pipeline_role().await?,
        })
    }

    #[tracing::instrument(skip_all)]
    pub async fn update(&self, update: SettingsUpdate) -> Result<Effective> {
        if update.pipeline_provisioning_repository.is_some() {
            return Err(Error::validation(
                "pipelineProvisioningRepository: paved does not support self-managed pipeline provisioning yet; pipelines are CloudFormation stacks under pipelineServiceRoleArn",
            ));
        }
        if update
            .pipeline_codebuild_role_arn
            .as_deref()
            .is_some_and(|r| !r.is_empty())
        {
            return Err(Error::validation(
                "pipelineCodebuildRoleArn: paved does not support CodeBuild provisioning yet; pipelines are CloudFormation stacks under pipelineServiceRoleArn",
            ));
        }
        let role = match update.pipeline_service_role_arn.as_deref() {
            None => return self.get().await,
            Some("") => None,
            Some(text) => {
                let arn = Arn::parse(text)
                    .map_err(|e| Error::validation(format!("pipelineServiceRoleArn: {e}")))?;
                self.d.check_role("pipelineServiceRoleArn", &arn)?;
                self.d.check_trust("pipelineServiceRoleArn", &arn).await?;
                Some(text.to_string())
            }
        };
        for _ in 0..5 {
            let current = self.d.account.settings().await?;
            if current.pipeline_service_role_arn == role {
                return self.get().await;
            }
            let next = AccountSettings {
                pipeline_service_role_arn: role.clone(),
                rev: current.rev + 1,
            };
            match self.d.account.put_settings(next).await {
                Ok(()) => return self.get().await,
                Err(StoreError::ConditionFailed) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(Error::conflict(
            "the account settings kept changing while this update was written; retry",
        ))
    }
}
