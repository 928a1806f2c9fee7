//! In-memory adapters with the same atomicity and conditions as the AWS ones, for fast tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::component::Component;
use crate::domain::environment::{Deployment, Environment};
use crate::domain::names::ResourceName;
use crate::domain::service::{Service, ServiceInstance};
use crate::domain::template::VersionStatus;
use crate::domain::template::{Template, TemplateKind, TemplateVersion, VersionNumber};
use crate::ports::{
    BlobError, BundleStore, CatalogStore, CatalogWrite, ComponentWrite, Deliveries,
    DeploymentChange, DeploymentStore, DeploymentWrite, EnvironmentWrite, IdempotencyRecord,
    InstanceWrite, Page, PageRequest, ServiceWrite, StoreError, TemplateWrite, TokenRecord,
    VersionWrite,
};

type VersionKey = (TemplateKind, String, VersionNumber);

#[derive(Default)]
struct Tables {
    templates: BTreeMap<(TemplateKind, String), Template>,
    versions: BTreeMap<VersionKey, TemplateVersion>,
    tokens: HashMap<(String, String), IdempotencyRecord>,
    environments: BTreeMap<String, Environment>,
    deployments: BTreeMap<String, Deployment>,
    services: BTreeMap<String, Service>,
    instances: BTreeMap<(String, String), ServiceInstance>,
    components: BTreeMap<String, Component>,
    deliveries: std::collections::HashSet<String>,
    deployment_tokens: HashMap<(String, String), TokenRecord>,
    access: BTreeMap<u64, crate::domain::access::StoredAccess>,
    account: crate::domain::account::AccountSettings,
    upgrades: BTreeMap<
        String,
        (
            crate::domain::upgrade::Upgrade,
            crate::domain::upgrade::Control,
        ),
    >,
    drifts: BTreeMap<(String, String, String), crate::domain::drift::DriftRecord>,
}

/// A deployment's listing key, newest first: the creation time inverted.
fn newest_first(d: &Deployment) -> String {
    format!(
        "mem:{:020}#{}",
        u64::MAX - (d.created_at.0 * 1000.0) as u64,
        d.id
    )
}

#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    /// When set, every catalog and deployment call first yields to the runtime, so requests
    /// run together interleave at each storage call, as they do against DynamoDB.
    interleave: std::sync::atomic::AtomicBool,
    /// How long every call takes, in microseconds (a benchmark's realistic latency; 0: none).
    latency_micros: std::sync::atomic::AtomicU64,
    /// Calls made, of every kind.
    pub calls: std::sync::atomic::AtomicU64,
}

impl MemoryStore {
    /// A store whose calls interleave (see `interleave`): for races in tests.
    pub fn interleaving() -> Self {
        let store = Self::default();
        store
            .interleave
            .store(true, std::sync::atomic::Ordering::Relaxed);
        store
    }

    /// Makes every call take `latency` (as a benchmark's DynamoDB would).
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.latency_micros.store(
            latency.as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    async fn turn(&self) {
        use std::sync::atomic::Ordering;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let latency = self.latency_micros.load(Ordering::Relaxed);
        if latency > 0 {
            tokio::time::sleep(std::time::Duration::from_micros(latency)).await;
        } else if self.interleave.load(Ordering::Relaxed) {
            tokio::task::yield_now().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave a half-applied write: writes are checked
        // before any change is made.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn page_of<T: Clone>(items: Vec<(String, T)>, page: &PageRequest) -> Result<Page<T>, StoreError> {
    let limit = page.limit.unwrap_or(100).max(1) as usize;
    let start = match &page.cursor {
        None => 0,
        Some(cursor) => items
            .iter()
            .position(|(key, _)| key.as_str() > cursor.as_str())
            .unwrap_or(items.len()),
    };
    if let Some(cursor) = &page.cursor
        && !cursor.starts_with("mem:")
    {
        return Err(StoreError::BadCursor);
    }
    let slice: Vec<(String, T)> = items.into_iter().skip(start).take(limit + 1).collect();
    let more = slice.len() > limit;
    let taken: Vec<(String, T)> = slice.into_iter().take(limit).collect();
    let cursor = if more {
        taken.last().map(|(key, _)| key.clone())
    } else {
        None
    };
    Ok(Page {
        items: taken.into_iter().map(|(_, item)| item).collect(),
        cursor,
    })
}

#[async_trait]
impl CatalogStore for MemoryStore {
    async fn template(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
    ) -> Result<Option<Template>, StoreError> {
        self.turn().await;
        Ok(self
            .lock()
            .templates
            .get(&(kind, name.to_string()))
            .cloned())
    }

    async fn templates(
        &self,
        kind: TemplateKind,
        page: PageRequest,
    ) -> Result<Page<Template>, StoreError> {
        self.turn().await;
        let items = self
            .lock()
            .templates
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, name), t)| (format!("mem:{name}"), t.clone()))
            .collect();
        page_of(items, &page)
    }

    async fn version(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        number: VersionNumber,
    ) -> Result<Option<TemplateVersion>, StoreError> {
        self.turn().await;
        Ok(self
            .lock()
            .versions
            .get(&(kind, name.to_string(), number))
            .cloned())
    }

    async fn versions(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        major: Option<u64>,
        page: PageRequest,
    ) -> Result<Page<TemplateVersion>, StoreError> {
        self.turn().await;
        let items = self
            .lock()
            .versions
            .iter()
            .filter(|((k, n, number), _)| {
                *k == kind && n == name.as_str() && major.is_none_or(|m| number.major == m)
            })
            .map(|((_, _, number), v)| {
                (
                    format!("mem:{:020}.{:020}", number.major, number.minor),
                    v.clone(),
                )
            })
            .collect();
        page_of(items, &page)
    }

    async fn idempotency_record(
        &self,
        scope: &str,
        token: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.turn().await;
        Ok(self
            .lock()
            .tokens
            .get(&(scope.to_string(), token.to_string()))
            .cloned())
    }

    async fn write(&self, write: CatalogWrite) -> Result<(), StoreError> {
        self.turn().await;
        let mut tables = self.lock();
        // Check every condition first, then apply: all or nothing.
        if let Some(template_write) = &write.template {
            let (kind, name, expected) = match template_write {
                TemplateWrite::Create(t) => (t.kind, t.name.to_string(), None),
                TemplateWrite::Replace {
                    template,
                    expected_rev,
                } => (
                    template.kind,
                    template.name.to_string(),
                    Some(*expected_rev),
                ),
                TemplateWrite::Delete {
                    kind,
                    name,
                    expected_rev,
                } => (*kind, name.to_string(), Some(*expected_rev)),
            };
            let current = tables.templates.get(&(kind, name)).map(|t| t.rev);
            if current != expected {
                return Err(StoreError::ConditionFailed);
            }
        }
        if let Some(version_write) = &write.version {
            let (version, expected) = match version_write {
                VersionWrite::Create(v) => (v, None),
                VersionWrite::Replace {
                    version,
                    expected_rev,
                }
                | VersionWrite::Delete {
                    version,
                    expected_rev,
                } => (version, Some(*expected_rev)),
            };
            let key = (
                version.kind,
                version.template_name.to_string(),
                version.number,
            );
            if tables.versions.get(&key).map(|v| v.rev) != expected {
                return Err(StoreError::ConditionFailed);
            }
        }
        if let Some(record) = &write.idempotency
            && tables
                .tokens
                .contains_key(&(record.scope.clone(), record.token.clone()))
        {
            return Err(StoreError::ConditionFailed);
        }
        match write.template {
            Some(TemplateWrite::Create(t)) | Some(TemplateWrite::Replace { template: t, .. }) => {
                tables.templates.insert((t.kind, t.name.to_string()), t);
            }
            Some(TemplateWrite::Delete { kind, name, .. }) => {
                tables.templates.remove(&(kind, name.to_string()));
            }
            None => {}
        }
        match write.version {
            Some(VersionWrite::Create(v)) | Some(VersionWrite::Replace { version: v, .. }) => {
                tables
                    .versions
                    .insert((v.kind, v.template_name.to_string(), v.number), v);
            }
            Some(VersionWrite::Delete { version, .. }) => {
                tables.versions.remove(&(
                    version.kind,
                    version.template_name.to_string(),
                    version.number,
                ));
            }
            None => {}
        }
        if let Some(record) = write.idempotency {
            tables
                .tokens
                .insert((record.scope.clone(), record.token.clone()), record);
        }
        Ok(())
    }
}

#[async_trait]
impl DeploymentStore for MemoryStore {
    async fn environment(&self, name: &ResourceName) -> Result<Option<Environment>, StoreError> {
        self.turn().await;
        Ok(self.lock().environments.get(name.as_str()).cloned())
    }

    async fn environments(&self, page: PageRequest) -> Result<Page<Environment>, StoreError> {
        self.turn().await;
        let items = self
            .lock()
            .environments
            .iter()
            .map(|(n, e)| (format!("mem:{n}"), e.clone()))
            .collect();
        page_of(items, &page)
    }

    async fn deployment(&self, id: &str) -> Result<Option<Deployment>, StoreError> {
        self.turn().await;
        Ok(self.lock().deployments.get(id).cloned())
    }

    async fn deployments(
        &self,
        environment: Option<&ResourceName>,
        page: PageRequest,
    ) -> Result<Page<Deployment>, StoreError> {
        self.turn().await;
        let mut items: Vec<(String, Deployment)> = self
            .lock()
            .deployments
            .values()
            .filter(|d| environment.is_none_or(|e| &d.environment_name == e))
            .map(|d| (newest_first(d), d.clone()))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        page_of(items, &page)
    }

    async fn service_deployments(
        &self,
        service: &ResourceName,
        page: PageRequest,
    ) -> Result<Option<Page<Deployment>>, StoreError> {
        use crate::domain::environment::Target;
        self.turn().await;
        let mut items: Vec<(String, Deployment)> = self
            .lock()
            .deployments
            .values()
            .filter(|d| match &d.target {
                Target::ServiceInstance { service: s, .. }
                | Target::ServicePipeline { service: s } => s == service,
                _ => false,
            })
            .map(|d| (newest_first(d), d.clone()))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        page_of(items, &page).map(Some)
    }

    async fn service(&self, name: &ResourceName) -> Result<Option<Service>, StoreError> {
        self.turn().await;
        Ok(self.lock().services.get(name.as_str()).cloned())
    }

    async fn services(&self, page: PageRequest) -> Result<Page<Service>, StoreError> {
        self.turn().await;
        let items = self
            .lock()
            .services
            .iter()
            .map(|(n, s)| (format!("mem:{n}"), s.clone()))
            .collect();
        page_of(items, &page)
    }

    async fn instance(
        &self,
        service: &ResourceName,
        name: &ResourceName,
    ) -> Result<Option<ServiceInstance>, StoreError> {
        self.turn().await;
        Ok(self
            .lock()
            .instances
            .get(&(service.to_string(), name.to_string()))
            .cloned())
    }

    async fn instances(&self, service: &ResourceName) -> Result<Vec<ServiceInstance>, StoreError> {
        self.turn().await;
        Ok(self
            .lock()
            .instances
            .values()
            .filter(|i| &i.service == service)
            .cloned()
            .collect())
    }

    async fn all_instances(&self) -> Result<Vec<ServiceInstance>, StoreError> {
        self.turn().await;
        Ok(self.lock().instances.values().cloned().collect())
    }

    async fn instances_in(
        &self,
        environment: &ResourceName,
        limit: u32,
    ) -> Result<Vec<ServiceInstance>, StoreError> {
        self.turn().await;
        Ok(self
            .lock()
            .instances
            .values()
            .filter(|i| &i.environment == environment)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn token(&self, scope: &str, token: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.turn().await;
        Ok(self
            .lock()
            .deployment_tokens
            .get(&(scope.to_string(), token.to_string()))
            .cloned())
    }

    async fn services_tracking(
        &self,
        repository: &str,
        branch: &str,
    ) -> Result<Vec<Service>, StoreError> {
        self.turn().await;
        Ok(self
            .lock()
            .services
            .values()
            .filter(|s| {
                s.repository.id.as_deref() == Some(repository)
                    && s.repository.branch.as_deref() == Some(branch)
            })
            .cloned()
            .collect())
    }

    async fn component(&self, name: &ResourceName) -> Result<Option<Component>, StoreError> {
        self.turn().await;
        Ok(self.lock().components.get(name.as_str()).cloned())
    }

    async fn components(
        &self,
        environment: Option<&ResourceName>,
        page: PageRequest,
    ) -> Result<Page<Component>, StoreError> {
        self.turn().await;
        let items = self
            .lock()
            .components
            .iter()
            .filter(|(_, c)| environment.is_none_or(|e| &c.environment == e))
            .map(|(n, c)| (format!("mem:{n}"), c.clone()))
            .collect();
        page_of(items, &page)
    }

    async fn expire_deployment(&self, id: &str, at: u64) -> Result<(), StoreError> {
        self.turn().await;
        if let Some(deployment) = self.lock().deployments.get_mut(id) {
            deployment.expires_at = Some(at);
        }
        Ok(())
    }

    async fn change(&self, change: DeploymentChange) -> Result<(), StoreError> {
        self.turn().await;
        let mut tables = self.lock();
        for check in &change.environment_checks {
            if tables.environments.get(check.name.as_str()).map(|e| e.rev) != Some(check.rev) {
                return Err(StoreError::ConditionFailed);
            }
        }
        for write in &change.components {
            let (name, expected) = match write {
                ComponentWrite::Create(c) => (c.name.to_string(), None),
                ComponentWrite::Replace {
                    component,
                    expected_rev,
                } => (component.name.to_string(), Some(*expected_rev)),
                ComponentWrite::Delete { name, expected_rev } => {
                    (name.to_string(), Some(*expected_rev))
                }
            };
            if tables.components.get(&name).map(|c| c.rev) != expected {
                return Err(StoreError::ConditionFailed);
            }
        }
        for write in &change.services {
            let (name, expected) = match write {
                ServiceWrite::Create(s) => (s.name.to_string(), None),
                ServiceWrite::Replace {
                    service,
                    expected_rev,
                } => (service.name.to_string(), Some(*expected_rev)),
                ServiceWrite::Delete { name, expected_rev } => {
                    (name.to_string(), Some(*expected_rev))
                }
            };
            if tables.services.get(&name).map(|s| s.rev) != expected {
                return Err(StoreError::ConditionFailed);
            }
        }
        for write in &change.instances {
            let (key, expected) = match write {
                InstanceWrite::Create(i) => ((i.service.to_string(), i.name.to_string()), None),
                InstanceWrite::Replace {
                    instance,
                    expected_rev,
                } => (
                    (instance.service.to_string(), instance.name.to_string()),
                    Some(*expected_rev),
                ),
                InstanceWrite::Delete {
                    service,
                    name,
                    expected_rev,
                } => ((service.to_string(), name.to_string()), Some(*expected_rev)),
            };
            if tables.instances.get(&key).map(|i| i.rev) != expected {
                return Err(StoreError::ConditionFailed);
            }
        }
        for write in &change.environments {
            let (name, expected) = match write {
                EnvironmentWrite::Create(e) => (e.name.to_string(), None),
                EnvironmentWrite::Replace {
                    environment,
                    expected_rev,
                } => (environment.name.to_string(), Some(*expected_rev)),
                EnvironmentWrite::Delete { name, expected_rev } => {
                    (name.to_string(), Some(*expected_rev))
                }
            };
            if tables.environments.get(&name).map(|e| e.rev) != expected {
                return Err(StoreError::ConditionFailed);
            }
        }
        for write in &change.deployments {
            let (id, expected) = match write {
                DeploymentWrite::Create(d) => (d.id.clone(), None),
                DeploymentWrite::Replace {
                    deployment,
                    expected_rev,
                } => (deployment.id.clone(), Some(*expected_rev)),
                DeploymentWrite::Delete { id, expected_rev } => (id.clone(), Some(*expected_rev)),
            };
            if tables.deployments.get(&id).map(|d| d.rev) != expected {
                return Err(StoreError::ConditionFailed);
            }
        }
        if let Some(record) = &change.token
            && tables
                .deployment_tokens
                .contains_key(&(record.scope.clone(), record.token.clone()))
        {
            return Err(StoreError::ConditionFailed);
        }
        for usage in &change.usage {
            let key = (
                usage.version.kind,
                usage.version.template_name.to_string(),
                usage.version.number,
            );
            match tables.versions.get(&key) {
                Some(v) if usage.delta <= 0 || v.status == VersionStatus::Published => {}
                _ => return Err(StoreError::ConditionFailed),
            }
        }
        for write in change.environments {
            match write {
                EnvironmentWrite::Create(e) | EnvironmentWrite::Replace { environment: e, .. } => {
                    tables.environments.insert(e.name.to_string(), e);
                }
                EnvironmentWrite::Delete { name, .. } => {
                    tables.environments.remove(name.as_str());
                }
            }
        }
        for write in change.services {
            match write {
                ServiceWrite::Create(s) | ServiceWrite::Replace { service: s, .. } => {
                    tables.services.insert(s.name.to_string(), s);
                }
                ServiceWrite::Delete { name, .. } => {
                    tables.services.remove(name.as_str());
                }
            }
        }
        for write in change.instances {
            match write {
                InstanceWrite::Create(i) | InstanceWrite::Replace { instance: i, .. } => {
                    tables
                        .instances
                        .insert((i.service.to_string(), i.name.to_string()), i);
                }
                InstanceWrite::Delete { service, name, .. } => {
                    tables
                        .instances
                        .remove(&(service.to_string(), name.to_string()));
                }
            }
        }
        for write in change.components {
            match write {
                ComponentWrite::Create(c) | ComponentWrite::Replace { component: c, .. } => {
                    tables.components.insert(c.name.to_string(), c);
                }
                ComponentWrite::Delete { name, .. } => {
                    tables.components.remove(name.as_str());
                }
            }
        }
        for write in change.deployments {
            match write {
                DeploymentWrite::Create(d) | DeploymentWrite::Replace { deployment: d, .. } => {
                    tables.deployments.insert(d.id.clone(), d);
                }
                DeploymentWrite::Delete { id, .. } => {
                    tables.deployments.remove(&id);
                }
            }
        }
        if let Some(record) = change.token {
            tables
                .deployment_tokens
                .insert((record.scope.clone(), record.token.clone()), record);
        }
        for usage in change.usage {
            let key = (
                usage.version.kind,
                usage.version.template_name.to_string(),
                usage.version.number,
            );
            if let Some(version) = tables.versions.get_mut(&key) {
                version.in_use = version.in_use.saturating_add_signed(usage.delta);
                version.rev += 1;
            }
        }
        Ok(())
    }
}

/// Objects by `(bucket, key)`; `keep` writes to the bucket named at construction.
pub struct MemoryBundleStore {
    own_bucket: String,
    objects: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl MemoryBundleStore {
    pub fn new(own_bucket: impl Into<String>) -> Self {
        Self {
            own_bucket: own_bucket.into(),
            objects: Mutex::default(),
        }
    }

    pub fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((bucket.to_string(), key.to_string()), bytes);
    }

    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        let mut keys: Vec<String> = objects
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, k)| k.clone())
            .collect();
        keys.sort();
        keys
    }
}

#[async_trait]
impl BundleStore for MemoryBundleStore {
    async fn fetch(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Vec<u8>, BlobError> {
        let objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = objects
            .get(&(bucket.to_string(), key.to_string()))
            .ok_or_else(|| BlobError::NotFound {
                bucket: bucket.into(),
                key: key.into(),
            })?;
        if bytes.len() as u64 > max_bytes {
            return Err(BlobError::TooLarge {
                bucket: bucket.into(),
                key: key.into(),
                size: bytes.len() as u64,
                max: max_bytes,
            });
        }
        Ok(bytes.clone())
    }

    async fn keep(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.put(&self.own_bucket.clone(), key, bytes);
        Ok(())
    }

    async fn read_kept(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        let bucket = self.own_bucket.clone();
        self.fetch(&bucket, key, u64::MAX).await
    }

    async fn discard(&self, key: &str) -> Result<(), BlobError> {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(self.own_bucket.clone(), key.to_string()));
        Ok(())
    }
}

// --- Fakes of the deployment engine's ports ---------------------------------------------------

use std::collections::VecDeque;

use crate::domain::push::Push;
use crate::ports::{
    BoxError, Events, ExecutionState, PipelineError, PipelineExecution, PipelineRef, Pipelines,
    Secrets, StageState, StatusChange, Workflow, Workflows,
};

/// Records the executions started; `refuse_starts` makes starting fail.
#[derive(Default)]
pub struct RecordingWorkflows {
    pub started: Mutex<Vec<(Workflow, String)>>,
    pub states: Mutex<HashMap<String, ExecutionState>>,
    /// The input each execution was started with; a second start of a name starts nothing.
    pub inputs: Mutex<HashMap<String, serde_json::Value>>,
    pub refuse_starts: std::sync::atomic::AtomicBool,
    /// Task tokens signalled, with their output.
    pub signals: Mutex<Vec<(String, serde_json::Value)>>,
}

#[async_trait]
impl Workflows for RecordingWorkflows {
    async fn start(
        &self,
        workflow: Workflow,
        execution: &str,
        input: serde_json::Value,
    ) -> Result<(), BoxError> {
        if self.refuse_starts.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("start refused".into());
        }
        if lock(&self.inputs)
            .insert(execution.to_string(), input)
            .is_some()
        {
            // Step Functions keeps execution names unique: starting one again is a no-op.
            return Ok(());
        }
        self.started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((workflow, execution.to_string()));
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(execution.to_string(), ExecutionState::Running);
        Ok(())
    }

    async fn state(
        &self,
        _workflow: Workflow,
        execution: &str,
    ) -> Result<Option<ExecutionState>, BoxError> {
        Ok(self
            .states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(execution)
            .copied())
    }

    async fn signal(&self, token: &str, output: serde_json::Value) -> Result<(), BoxError> {
        lock(&self.signals).push((token.to_string(), output));
        Ok(())
    }
}

#[derive(Default)]
pub struct RecordingEvents {
    pub published: Mutex<Vec<StatusChange>>,
    pub pushes: Mutex<Vec<Push>>,
    pub fleet: Mutex<Vec<crate::ports::FleetEvent>>,
}

#[async_trait]
impl Events for RecordingEvents {
    async fn publish(&self, change: StatusChange) -> Result<(), BoxError> {
        self.published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(change);
        Ok(())
    }

    async fn publish_fleet(&self, event: crate::ports::FleetEvent) -> Result<(), BoxError> {
        lock(&self.fleet).push(event);
        Ok(())
    }

    async fn put_push(&self, push: &Push) -> Result<(), BoxError> {
        lock(&self.pushes).push(push.clone());
        Ok(())
    }
}

/// Secrets held in memory.
#[derive(Default)]
pub struct MemorySecrets {
    pub values: Mutex<HashMap<String, Vec<u8>>>,
}

#[async_trait]
impl Secrets for MemorySecrets {
    async fn secret(&self, id: &str) -> Result<Vec<u8>, BoxError> {
        lock(&self.values)
            .get(id)
            .cloned()
            .ok_or_else(|| format!("no secret {id}").into())
    }
}

/// A scripted CodePipeline: executions end as the script says (default: in progress once,
/// then succeeded), and stage states can be set, which moto cannot show.
#[derive(Default)]
pub struct ScriptedPipelines {
    /// Known pipelines by name; starting another is `NotFound`.
    pub pipelines: Mutex<Vec<String>>,
    /// Starts, as (pipeline, client token, execution id).
    pub started: Mutex<Vec<(String, String, String)>>,
    /// Statuses `execution()` reports, in order, before `Succeeded`.
    pub status_script: Mutex<VecDeque<String>>,
    pub stage_states: Mutex<Vec<StageState>>,
}

impl ScriptedPipelines {
    fn name(&self, pipeline: &PipelineRef) -> Result<String, PipelineError> {
        let name = pipeline.name.clone().unwrap_or_default();
        if lock(&self.pipelines).contains(&name) {
            Ok(name)
        } else {
            Err(PipelineError::NotFound(format!(
                "pipeline {name:?} does not exist"
            )))
        }
    }
}

#[async_trait]
impl Pipelines for ScriptedPipelines {
    async fn start(&self, pipeline: &PipelineRef, token: &str) -> Result<String, PipelineError> {
        let name = self.name(pipeline)?;
        let mut started = lock(&self.started);
        if let Some((_, _, id)) = started.iter().find(|(n, t, _)| *n == name && t == token) {
            return Ok(id.clone());
        }
        let id = format!("exec-{}", started.len() + 1);
        started.push((name, token.to_string(), id.clone()));
        Ok(id)
    }

    async fn execution(
        &self,
        pipeline: &PipelineRef,
        id: &str,
    ) -> Result<PipelineExecution, PipelineError> {
        self.name(pipeline)?;
        let status = lock(&self.status_script)
            .pop_front()
            .unwrap_or_else(|| "Succeeded".into());
        Ok(PipelineExecution {
            id: id.to_string(),
            status,
            status_summary: None,
            started_at: None,
            updated_at: None,
            revisions: vec![],
        })
    }

    async fn executions(
        &self,
        pipeline: &PipelineRef,
        limit: u32,
    ) -> Result<Vec<PipelineExecution>, PipelineError> {
        let name = self.name(pipeline)?;
        Ok(lock(&self.started)
            .iter()
            .rev()
            .filter(|(n, _, _)| *n == name)
            .take(limit as usize)
            .map(|(_, _, id)| PipelineExecution {
                id: id.clone(),
                status: "Succeeded".into(),
                status_summary: None,
                started_at: None,
                updated_at: None,
                revisions: vec![],
            })
            .collect())
    }

    async fn stages(&self, pipeline: &PipelineRef) -> Result<Vec<StageState>, PipelineError> {
        self.name(pipeline)?;
        Ok(lock(&self.stage_states).clone())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl Deliveries for MemoryStore {
    async fn remember_delivery(&self, key: &str, _expires_at: u64) -> Result<bool, StoreError> {
        Ok(self.lock().deliveries.insert(key.to_string()))
    }

    async fn forget_delivery(&self, key: &str) -> Result<(), StoreError> {
        self.lock().deliveries.remove(key);
        Ok(())
    }
}

#[async_trait]
impl crate::ports::AccessStore for MemoryStore {
    async fn current(&self) -> Result<Option<crate::domain::access::StoredAccess>, StoreError> {
        let tables = self.tables.lock().unwrap();
        Ok(tables.access.values().next_back().cloned())
    }

    async fn version(
        &self,
        version: u64,
    ) -> Result<Option<crate::domain::access::StoredAccess>, StoreError> {
        Ok(self.tables.lock().unwrap().access.get(&version).cloned())
    }

    async fn versions(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<crate::domain::access::StoredAccess>, StoreError> {
        let tables = self.tables.lock().unwrap();
        Ok(tables
            .access
            .range(..before.unwrap_or(u64::MAX))
            .rev()
            .take(limit as usize)
            .map(|(_, v)| v.clone())
            .collect())
    }

    async fn put(&self, access: crate::domain::access::StoredAccess) -> Result<(), StoreError> {
        let mut tables = self.tables.lock().unwrap();
        if tables.access.contains_key(&access.version) {
            return Err(StoreError::ConditionFailed);
        }
        tables.access.insert(access.version, access);
        Ok(())
    }
}

#[async_trait]
impl crate::ports::AccountStore for MemoryStore {
    async fn settings(&self) -> Result<crate::domain::account::AccountSettings, StoreError> {
        Ok(self.lock().account.clone())
    }

    async fn put_settings(
        &self,
        settings: crate::domain::account::AccountSettings,
    ) -> Result<(), StoreError> {
        let mut tables = self.lock();
        if tables.account.rev + 1 != settings.rev {
            return Err(StoreError::ConditionFailed);
        }
        tables.account = settings;
        Ok(())
    }
}

#[async_trait]
impl crate::ports::FleetStore for MemoryStore {
    async fn create_upgrade(
        &self,
        upgrade: &crate::domain::upgrade::Upgrade,
    ) -> Result<(), StoreError> {
        self.turn().await;
        let mut tables = self.lock();
        if tables.upgrades.contains_key(&upgrade.id) {
            return Err(StoreError::ConditionFailed);
        }
        tables
            .upgrades
            .insert(upgrade.id.clone(), (upgrade.clone(), Default::default()));
        Ok(())
    }

    async fn upgrade(
        &self,
        id: &str,
    ) -> Result<
        Option<(
            crate::domain::upgrade::Upgrade,
            crate::domain::upgrade::Control,
        )>,
        StoreError,
    > {
        self.turn().await;
        Ok(self.lock().upgrades.get(id).cloned())
    }

    async fn save_upgrade(
        &self,
        upgrade: &crate::domain::upgrade::Upgrade,
        waves: &[usize],
    ) -> Result<(), StoreError> {
        self.turn().await;
        let mut tables = self.lock();
        let Some((stored, _)) = tables.upgrades.get_mut(&upgrade.id) else {
            return Err(StoreError::ConditionFailed);
        };
        if stored.rev + 1 != upgrade.rev {
            return Err(StoreError::ConditionFailed);
        }
        // Only the named waves' targets are written, as in DynamoDB.
        let kept = std::mem::take(&mut stored.waves);
        let mut next = upgrade.clone();
        for (i, wave) in next.waves.iter_mut().enumerate() {
            if !waves.contains(&i)
                && let Some(old) = kept.get(i)
            {
                wave.targets = old.targets.clone();
            }
        }
        *stored = next;
        Ok(())
    }

    async fn save_control(
        &self,
        id: &str,
        control: &crate::domain::upgrade::Control,
    ) -> Result<(), StoreError> {
        self.turn().await;
        let mut tables = self.lock();
        let Some((_, stored)) = tables.upgrades.get_mut(id) else {
            return Err(StoreError::ConditionFailed);
        };
        if stored.rev + 1 != control.rev {
            return Err(StoreError::ConditionFailed);
        }
        *stored = control.clone();
        Ok(())
    }

    async fn upgrades(
        &self,
        page: PageRequest,
    ) -> Result<Page<crate::domain::upgrade::Upgrade>, StoreError> {
        self.turn().await;
        let tables = self.lock();
        let mut all: Vec<_> = tables
            .upgrades
            .values()
            .map(|(u, _)| {
                let mut u = u.clone();
                for wave in &mut u.waves {
                    wave.targets.clear();
                }
                u
            })
            .collect();
        all.sort_by(|a, b| {
            b.created_at
                .0
                .total_cmp(&a.created_at.0)
                .then_with(|| b.id.cmp(&a.id))
        });
        let start = match &page.cursor {
            None => 0,
            Some(c) => c.parse::<usize>().map_err(|_| StoreError::BadCursor)?,
        };
        let limit = page.limit.unwrap_or(100) as usize;
        let items: Vec<_> = all.iter().skip(start).take(limit).cloned().collect();
        let cursor = (start + items.len() < all.len()).then(|| (start + items.len()).to_string());
        Ok(Page { items, cursor })
    }

    async fn put_drift(
        &self,
        record: &crate::domain::drift::DriftRecord,
    ) -> Result<(), StoreError> {
        self.turn().await;
        self.lock().drifts.insert(
            (
                record.template_type.clone(),
                record.template_name.clone(),
                record.stack_name.clone(),
            ),
            record.clone(),
        );
        Ok(())
    }

    async fn drifts(
        &self,
        template_type: &str,
        template_name: &str,
    ) -> Result<Vec<crate::domain::drift::DriftRecord>, StoreError> {
        self.turn().await;
        Ok(self
            .lock()
            .drifts
            .values()
            .filter(|r| r.template_type == template_type && r.template_name == template_name)
            .cloned()
            .collect())
    }
}
