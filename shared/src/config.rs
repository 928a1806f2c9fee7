//! Configuration, read once from the environment that the SAM template (or `paved dev`) sets.

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};

use crate::adapters::cloudformation::{CloudFormation, CloudFormationStacks};
use crate::adapters::codepipeline::CodePipelines;
use crate::adapters::eventbridge::EventBridgeEvents;
use crate::adapters::secretsmanager::SecretsManagerSecrets;
use crate::adapters::stepfunctions::StepFunctionsWorkflows;
use crate::adapters::{dynamodb::DynamoStore, s3::S3BundleStore};
use crate::api::{App, Authenticate, Security};
use crate::app::access::Access;
use crate::app::catalog::Catalog;
use crate::app::deploy::{ArnBuilder, Deployer, Provisioners};
use crate::app::pushes::Pushes;
use crate::app::tasks::Tasks;
use crate::app::webhook::Webhook;
use crate::domain::access::AccessDocument;

/// Days a deployment record is kept once superseded or ended without success.
pub const DEFAULT_RETENTION_DAYS: u64 = 180;

#[derive(Debug, Clone)]
pub struct Config {
    /// The DynamoDB table holding the catalog (`PAVED_TABLE`).
    pub table: String,
    /// paved's own bucket, where registered bundles are kept (`PAVED_BUCKET`).
    pub bucket: String,
    /// For ARNs (`AWS_REGION`).
    pub region: String,
    /// For ARNs (`PAVED_ACCOUNT_ID`).
    pub account_id: String,
    /// The deploy and delete state machines (`PAVED_DEPLOY_STATE_MACHINE_ARN`,
    /// `PAVED_DELETE_STATE_MACHINE_ARN`).
    pub deploy_state_machine_arn: String,
    pub delete_state_machine_arn: String,
    /// The state machine that runs a push's redeploy (`PAVED_REDEPLOY_STATE_MACHINE_ARN`).
    pub redeploy_state_machine_arn: String,
    /// The state machine that runs a staged fleet upgrade (`PAVED_UPGRADE_STATE_MACHINE_ARN`).
    pub upgrade_state_machine_arn: String,
    /// The Secrets Manager secret GitHub webhooks are signed with (`PAVED_WEBHOOK_SECRET_ID`).
    pub webhook_secret_id: Option<String>,
    /// Seconds the state machines wait between checks (`PAVED_POLL_SECONDS`, default 10).
    pub poll_seconds: u64,
    /// The EventBridge bus status changes go to (`PAVED_EVENT_BUS`, default `default`).
    pub event_bus: String,
    /// The role service pipelines deploy under (`PAVED_PIPELINE_ROLE_ARN`, optional).
    pub pipeline_role_arn: Option<String>,
    /// Instances per service (`PAVED_INSTANCE_QUOTA`, default 20).
    pub instance_quota: usize,
    /// Days a deployment record is kept once it can no longer be what its target runs
    /// (`PAVED_DEPLOYMENT_RETENTION_DAYS`, default 180).
    pub deployment_retention_days: u64,
    /// paved's Proton API as CodeBuild reaches it (`PAVED_PROTON_ENDPOINT`, optional): set as
    /// `AWS_ENDPOINT_URL_PROTON` on the CodeBuild projects of rendered pipelines.
    pub proton_endpoint: Option<String>,
    /// The roles targets may be deployed under, path and name with IAM wildcards
    /// (`PAVED_ROLE_PATTERN`, default `*`; the SAM template sets its `ProtonServiceRolePattern`).
    pub role_pattern: String,
    /// Who is in the default personas' groups until the first PutAccessPolicy: ARN patterns,
    /// comma-separated (`PAVED_PLATFORM_PRINCIPALS`, `PAVED_DEVELOPER_PRINCIPALS`,
    /// `PAVED_READONLY_PRINCIPALS`). Service pipelines (the pipeline role) form the fourth.
    pub platform_principals: Vec<String>,
    pub developer_principals: Vec<String>,
    pub readonly_principals: Vec<String>,
    /// How long an API instance keeps a principal's IAM tags (`PAVED_PRINCIPAL_TAGS_SECONDS`,
    /// default 60): a tag change reaches decisions within that.
    pub principal_tags_seconds: u64,
    /// The prefix of the stacks paved makes (`PAVED_STACK_PREFIX`, default `paved-`); adopted
    /// stacks keep their names.
    pub stack_prefix: String,
}

/// A comma-separated list, without blanks.
pub fn patterns(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set")]
pub struct MissingVariable(&'static str);

impl Config {
    pub fn from_env() -> Result<Self, MissingVariable> {
        let var = |name: &'static str| std::env::var(name).map_err(|_| MissingVariable(name));
        Ok(Self {
            table: var("PAVED_TABLE")?,
            bucket: var("PAVED_BUCKET")?,
            region: var("AWS_REGION")?,
            account_id: var("PAVED_ACCOUNT_ID")?,
            deploy_state_machine_arn: var("PAVED_DEPLOY_STATE_MACHINE_ARN")?,
            delete_state_machine_arn: var("PAVED_DELETE_STATE_MACHINE_ARN")?,
            redeploy_state_machine_arn: var("PAVED_REDEPLOY_STATE_MACHINE_ARN")?,
            upgrade_state_machine_arn: var("PAVED_UPGRADE_STATE_MACHINE_ARN")?,
            webhook_secret_id: std::env::var("PAVED_WEBHOOK_SECRET_ID")
                .ok()
                .filter(|v| !v.is_empty()),
            poll_seconds: std::env::var("PAVED_POLL_SECONDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(10),
            event_bus: std::env::var("PAVED_EVENT_BUS").unwrap_or_else(|_| "default".into()),
            pipeline_role_arn: std::env::var("PAVED_PIPELINE_ROLE_ARN")
                .ok()
                .filter(|v| !v.is_empty()),
            instance_quota: std::env::var("PAVED_INSTANCE_QUOTA")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(crate::domain::service::DEFAULT_INSTANCE_QUOTA),
            deployment_retention_days: std::env::var("PAVED_DEPLOYMENT_RETENTION_DAYS")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|days| *days > 0)
                .unwrap_or(DEFAULT_RETENTION_DAYS),
            proton_endpoint: std::env::var("PAVED_PROTON_ENDPOINT")
                .ok()
                .filter(|v| !v.is_empty()),
            role_pattern: std::env::var("PAVED_ROLE_PATTERN")
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "*".into()),
            platform_principals: patterns(
                &std::env::var("PAVED_PLATFORM_PRINCIPALS").unwrap_or_default(),
            ),
            developer_principals: patterns(
                &std::env::var("PAVED_DEVELOPER_PRINCIPALS").unwrap_or_default(),
            ),
            readonly_principals: patterns(
                &std::env::var("PAVED_READONLY_PRINCIPALS").unwrap_or_default(),
            ),
            principal_tags_seconds: std::env::var("PAVED_PRINCIPAL_TAGS_SECONDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(60),
            stack_prefix: std::env::var("PAVED_STACK_PREFIX")
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| crate::adapters::cloudformation::DEFAULT_STACK_PREFIX.into()),
        })
    }

    /// The access document in force until the first PutAccessPolicy
    /// (`AccessDocument::defaults`).
    pub fn default_access(&self) -> AccessDocument {
        AccessDocument::defaults(
            self.platform_principals.clone(),
            self.developer_principals.clone(),
            self.readonly_principals.clone(),
            self.pipeline_role_arn.clone(),
            &self.account_id,
            &self.stack_prefix,
        )
    }
}

/// The SDK configuration from the standard chain (credentials, region, `AWS_ENDPOINT_URL`), on
/// one rustls + ring HTTPS client.
pub async fn sdk_config() -> SdkConfig {
    loader().load().await
}

fn loader() -> aws_config::ConfigLoader {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(http)
}

fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    // A custom endpoint (moto, LocalStack, MinIO) serves buckets by path, not by host name.
    let path_style = sdk.endpoint_url().is_some();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build(),
    )
}

/// Wires the AWS adapters into what a deployment reads and writes.
pub fn deployer(config: &Config, sdk: &SdkConfig) -> Deployer {
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        &config.table,
    ));
    let s3 = s3_client(sdk);
    Deployer {
        catalog: store.clone(),
        account: store.clone(),
        roles: Some(Arc::new(crate::adapters::iam::IamDirectory::new(
            aws_sdk_iam::Client::new(sdk),
        ))),
        fleet: store.clone(),
        store,
        bundles: Arc::new(crate::adapters::cached_bundles::CachedBundles::new(
            Arc::new(S3BundleStore::new(s3.clone(), &config.bucket)),
        )),
        workflows: Arc::new(StepFunctionsWorkflows::new(
            aws_sdk_sfn::Client::new(sdk),
            config.deploy_state_machine_arn.clone(),
            config.delete_state_machine_arn.clone(),
            config.redeploy_state_machine_arn.clone(),
            config.upgrade_state_machine_arn.clone(),
            config.poll_seconds,
        )),
        pipelines: Arc::new(CodePipelines::new(aws_sdk_codepipeline::Client::new(sdk))),
        events: Arc::new(EventBridgeEvents::new(
            aws_sdk_eventbridge::Client::new(sdk),
            &config.event_bus,
        )),
        provisioners: Provisioners::new(Arc::new(
            CloudFormation::new(Arc::new(CloudFormationStacks::new(
                aws_sdk_cloudformation::Client::new(sdk),
                s3,
                &config.bucket,
            )))
            .with_prefix(&config.stack_prefix),
        )),
        arns: ArnBuilder {
            region: config.region.clone(),
            account_id: config.account_id.clone(),
        },
        pipeline_role_arn: config.pipeline_role_arn.clone(),
        instance_quota: config.instance_quota,
        deployment_retention_days: config.deployment_retention_days,
        proton_endpoint: config.proton_endpoint.clone(),
        role_pattern: config.role_pattern.clone(),
    }
}

/// Access decisions on the AWS adapters.
pub fn access(config: &Config, sdk: &SdkConfig) -> Arc<Access> {
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        &config.table,
    ));
    let directory = crate::adapters::iam::IamDirectory::new(aws_sdk_iam::Client::new(sdk));
    Arc::new(
        Access::new(store, config.default_access(), crate::api::authz::actions()).with_directory(
            Arc::new(directory),
            std::time::Duration::from_secs(config.principal_tags_seconds),
        ),
    )
}

/// The Proton API on the AWS adapters, its callers authenticated by `authenticate`.
pub fn app(config: &Config, sdk: &SdkConfig, authenticate: Arc<dyn Authenticate>) -> App {
    let deployer = deployer(config, sdk);
    let catalog = Catalog::new(deployer.catalog.clone(), deployer.bundles.clone())
        .with_events(deployer.events.clone(), deployer.arns.clone());
    let security = Security {
        authenticate,
        access: access(config, sdk),
    };
    App::new(catalog, deployer, security)
}

/// The state machines' task steps on the AWS adapters.
pub fn tasks(config: &Config, sdk: &SdkConfig) -> Tasks {
    Tasks::new(deployer(config, sdk))
}

/// The push handler on the AWS adapters.
pub fn pushes(config: &Config, sdk: &SdkConfig) -> Pushes {
    Pushes::new(deployer(config, sdk))
}

/// The GitHub webhook on the AWS adapters.
pub fn webhook(config: &Config, sdk: &SdkConfig) -> Webhook {
    Webhook {
        store: Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            &config.table,
        )),
        events: Arc::new(EventBridgeEvents::new(
            aws_sdk_eventbridge::Client::new(sdk),
            &config.event_bus,
        )),
        secrets: Arc::new(SecretsManagerSecrets::new(
            aws_sdk_secretsmanager::Client::new(sdk),
        )),
        secret_id: config.webhook_secret_id.clone(),
    }
}

/// The SDK configuration for a local emulator: its endpoint, a region and throwaway credentials.
pub async fn local_sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    let credentials =
        aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "paved-local");
    loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_string()))
        .credentials_provider(credentials)
        .load()
        .await
}

/// Creates paved's table and bucket in a fresh local account (in AWS the SAM template does).
pub async fn ensure_local_resources(
    config: &Config,
    sdk: &SdkConfig,
) -> Result<(), crate::ports::BoxError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    crate::adapters::dynamodb::ensure_table(&dynamodb, &config.table).await?;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    );
    match s3.create_bucket().bucket(&config.bucket).send().await {
        Ok(_) => Ok(()),
        Err(error)
            if error.as_service_error().is_some_and(|e| {
                e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
            }) =>
        {
            Ok(())
        }
        Err(error) => Err(Box::new(error)),
    }
}

#[cfg(test)]
mod tests {
    /// Every variable `Config::from_env` requires is one the SAM template gives every
    /// function: a new required setting missing from `infra/template.yaml` would make every
    /// deployed function fail at its first call.
    #[test]
    fn the_sam_template_sets_every_required_variable() {
        let template = include_str!("../../infra/template.yaml");
        let source = include_str!("config.rs");
        let required: Vec<&str> = source
            .split("var(\"")
            .skip(1)
            .filter_map(|rest| {
                let (name, after) = rest.split_once('"')?;
                after.starts_with(")?").then_some(name)
            })
            .filter(|name| name.starts_with("PAVED_"))
            .collect();
        assert!(
            required.contains(&"PAVED_UPGRADE_STATE_MACHINE_ARN"),
            "{required:?}"
        );
        for name in required {
            assert!(
                template.contains(&format!("        {name}: ")),
                "infra/template.yaml does not set {name}"
            );
        }
    }
}
