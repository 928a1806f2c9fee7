//! The capabilities paved needs from the outside world, one small trait each.

use async_trait::async_trait;

use crate::domain::names::ResourceName;
use crate::domain::template::{Template, TemplateKind, TemplateVersion, VersionNumber};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item changed (or present, or gone) since it was read.
    #[error("the item changed since it was read")]
    ConditionFailed,
    #[error("the store throttled the request")]
    Throttled(#[source] BoxError),
    #[error("the page token is not one this store issued")]
    BadCursor,
    #[error("item {key} is malformed: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("the store request failed")]
    Backend(#[source] BoxError),
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no object s3://{bucket}/{key}")]
    NotFound { bucket: String, key: String },
    #[error("access to s3://{bucket}/{key} denied")]
    AccessDenied { bucket: String, key: String },
    #[error("s3://{bucket}/{key} is {size} bytes, over {max}")]
    TooLarge {
        bucket: String,
        key: String,
        size: u64,
        max: u64,
    },
    #[error("the object store throttled the request")]
    Throttled(#[source] BoxError),
    #[error("the object store request failed")]
    Backend(#[source] BoxError),
}

/// One page of a listing request.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: Option<u32>,
    /// An opaque position returned by the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub cursor: Option<String>,
}

/// A record of a request made with a `clientToken`, so that its retry gets the same answer.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub scope: String,
    pub token: String,
    /// The request's parameters, canonicalised: a retry with other parameters is refused.
    pub fingerprint: String,
    /// What the request created.
    pub result: VersionNumber,
    pub expires_at: u64,
}

pub enum TemplateWrite {
    Create(Template),
    /// Replaces the template if its `rev` is still `expected_rev`.
    Replace {
        template: Template,
        expected_rev: u64,
    },
    Delete {
        kind: TemplateKind,
        name: ResourceName,
        expected_rev: u64,
    },
}

pub enum VersionWrite {
    Create(TemplateVersion),
    Replace {
        version: TemplateVersion,
        expected_rev: u64,
    },
    Delete {
        version: TemplateVersion,
        expected_rev: u64,
    },
}

/// Writes applied together or not at all.
#[derive(Default)]
pub struct CatalogWrite {
    pub template: Option<TemplateWrite>,
    pub version: Option<VersionWrite>,
    pub idempotency: Option<IdempotencyRecord>,
}

/// The template catalog's storage.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    async fn template(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
    ) -> Result<Option<Template>, StoreError>;

    async fn templates(
        &self,
        kind: TemplateKind,
        page: PageRequest,
    ) -> Result<Page<Template>, StoreError>;

    async fn version(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        number: VersionNumber,
    ) -> Result<Option<TemplateVersion>, StoreError>;

    /// Versions in ascending order, all of them or those of one major.
    async fn versions(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        major: Option<u64>,
        page: PageRequest,
    ) -> Result<Page<TemplateVersion>, StoreError>;

    async fn idempotency_record(
        &self,
        scope: &str,
        token: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Applies every write atomically; `ConditionFailed` if any condition does not hold.
    async fn write(&self, write: CatalogWrite) -> Result<(), StoreError>;
}

/// Where bundles are read from and where paved keeps its copies.
#[async_trait]
pub trait BundleStore: Send + Sync {
    /// Reads an object, refusing one larger than `max_bytes`.
    async fn fetch(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Vec<u8>, BlobError>;

    /// Stores bytes under `key` in paved's own bucket.
    async fn keep(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError>;

    /// Removes an object from paved's own bucket; absent objects are not an error.
    async fn discard(&self, key: &str) -> Result<(), BlobError>;

    /// Reads an object from paved's own bucket (a kept bundle).
    async fn read_kept(&self, key: &str) -> Result<Vec<u8>, BlobError>;
}

// --- Environments and the deployment engine -------------------------------------------------

use crate::domain::component::Component;
use crate::domain::environment::{Deployment, Environment, ProvisionedResource, StackOutput};
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

/// Writes applied together or not at all (at most 100 items, DynamoDB's transaction limit).
#[derive(Default)]
pub struct DeploymentChange {
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
    async fn service(&self, name: &ResourceName) -> Result<Option<Service>, StoreError>;
    async fn services(&self, page: PageRequest) -> Result<Page<Service>, StoreError>;
    async fn instance(
        &self,
        service: &ResourceName,
        name: &ResourceName,
    ) -> Result<Option<ServiceInstance>, StoreError>;
    /// All instances of a service, by name (a service has at most its quota of them).
    async fn instances(&self, service: &ResourceName) -> Result<Vec<ServiceInstance>, StoreError>;
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
    /// Remembers a webhook delivery until `expires_at` (seconds since the epoch); `false` if it
    /// was remembered already (a replay).
    async fn remember_delivery(&self, key: &str, expires_at: u64) -> Result<bool, StoreError>;
    /// Forgets a delivery that could not be handled, so that its retry is not a replay.
    async fn forget_delivery(&self, key: &str) -> Result<(), StoreError>;
    async fn component(&self, name: &ResourceName) -> Result<Option<Component>, StoreError>;
    /// Components by name: all, or those in one environment.
    async fn components(
        &self,
        environment: Option<&ResourceName>,
        page: PageRequest,
    ) -> Result<Page<Component>, StoreError>;
    async fn change(&self, change: DeploymentChange) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// CloudFormation refused the request itself (a bad template, a missing role).
    #[error("{0}")]
    Rejected(String),
    #[error("CloudFormation throttled the request")]
    Throttled(#[source] BoxError),
    #[error("the CloudFormation request failed")]
    Backend(#[source] BoxError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSetState {
    Pending,
    Ready,
    /// The template and parameters equal the stack's: nothing to do.
    NoChanges,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackState {
    Missing,
    /// Still moving; the status name says where.
    InProgress(String),
    Complete,
    /// Ended without reaching the wanted state: rolled back, failed, or stuck in
    /// `UPDATE_ROLLBACK_FAILED`; the reason comes from the stack's events.
    Failed {
        status: String,
        reason: String,
    },
}

/// The CloudFormation operations a deployment needs.
#[async_trait]
pub trait Stacks: Send + Sync {
    /// The template body of a stack, `None` if there is no stack.
    async fn template(&self, stack: &str) -> Result<Option<String>, CloudError>;
    /// Creates a change set (CREATE when `exists` is false), returning its id.
    async fn create_change_set(
        &self,
        stack: &str,
        change_set: &str,
        template: &str,
        role_arn: &str,
        exists: bool,
    ) -> Result<String, CloudError>;
    async fn change_set(&self, id: &str) -> Result<ChangeSetState, CloudError>;
    async fn execute_change_set(&self, id: &str) -> Result<(), CloudError>;
    async fn delete_change_set(&self, id: &str) -> Result<(), CloudError>;
    /// The state of the stack; `deleting` reads a missing stack as the goal reached.
    async fn state(&self, stack: &str) -> Result<StackState, CloudError>;
    async fn outputs(&self, stack: &str) -> Result<Vec<StackOutput>, CloudError>;
    async fn resources(&self, stack: &str) -> Result<Vec<ProvisionedResource>, CloudError>;
    async fn delete(&self, stack: &str, role_arn: &str) -> Result<(), CloudError>;
    async fn cancel_update(&self, stack: &str) -> Result<(), CloudError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workflow {
    Deploy,
    Delete,
    /// A push's redeploy: start the service's pipeline and follow it.
    Redeploy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionState {
    Running,
    Succeeded,
    /// Failed, timed out or aborted.
    Ended,
}

/// Starts and observes the state machines that run deployments.
#[async_trait]
pub trait Workflows: Send + Sync {
    /// Starts an execution named after the deployment; starting it again is not an error.
    async fn start(
        &self,
        workflow: Workflow,
        execution: &str,
        input: serde_json::Value,
    ) -> Result<(), BoxError>;
    /// The state of an execution, `None` if it never started.
    async fn state(
        &self,
        workflow: Workflow,
        execution: &str,
    ) -> Result<Option<ExecutionState>, BoxError>;
}

/// A status change, published as Proton did (`source: aws.proton`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub resource: &'static str,
    pub name: String,
    pub arn: String,
    pub status: String,
    pub previous_status: Option<String>,
}

#[async_trait]
pub trait Events: Send + Sync {
    async fn publish(&self, change: StatusChange) -> Result<(), BoxError>;
    /// Puts a push on the bus as paved's push event, for the push rule to route.
    async fn put_push(&self, push: &crate::domain::push::Push) -> Result<(), BoxError>;
}

/// Reads secrets (the webhook secret).
#[async_trait]
pub trait Secrets: Send + Sync {
    async fn secret(&self, id: &str) -> Result<Vec<u8>, BoxError>;
}

/// A service's CodePipeline: its name if its stack reported one, and the stack it lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRef {
    pub name: Option<String>,
    pub stack: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineExecution {
    pub id: String,
    /// CodePipeline's status: InProgress, Stopped, Stopping, Succeeded, Superseded, Failed, ...
    pub status: String,
    pub status_summary: Option<String>,
    pub started_at: Option<f64>,
    pub updated_at: Option<f64>,
    pub revisions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageState {
    pub name: String,
    pub status: Option<String>,
    pub execution_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The pipeline does not exist, or the service has none paved can name.
    #[error("{0}")]
    NotFound(String),
    /// What this CodePipeline cannot tell (an emulator without the operation).
    #[error("{0}")]
    Unavailable(String),
    #[error("CodePipeline throttled the request")]
    Throttled(#[source] BoxError),
    #[error("the CodePipeline request failed")]
    Backend(#[source] BoxError),
}

/// The CodePipeline operations a redeploy and the pipeline state need.
#[async_trait]
pub trait Pipelines: Send + Sync {
    /// Starts an execution; the same `client_token` does not start a second one.
    async fn start(
        &self,
        pipeline: &PipelineRef,
        client_token: &str,
    ) -> Result<String, PipelineError>;
    async fn execution(
        &self,
        pipeline: &PipelineRef,
        id: &str,
    ) -> Result<PipelineExecution, PipelineError>;
    /// The latest executions, newest first.
    async fn executions(
        &self,
        pipeline: &PipelineRef,
        limit: u32,
    ) -> Result<Vec<PipelineExecution>, PipelineError>;
    async fn stages(&self, pipeline: &PipelineRef) -> Result<Vec<StageState>, PipelineError>;
}
