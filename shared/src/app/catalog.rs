//! The template catalog: templates, their versions, registration from bundles, publishing.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::app::{Error, Result};
use crate::domain::bundle::{self, Bundle, BundleLayout, MAX_BUNDLE_BYTES};
use crate::domain::names::{
    Arn, ClientToken, Description, DisplayName, ResourceName, S3Bucket, S3Key, Tags, Timestamp,
    VersionPart,
};
use crate::domain::template::{
    CompatibleEnvironmentTemplate, ComponentSource, Provisioning, Template, TemplateKind,
    TemplateVersion, VersionIndex, VersionNumber, VersionStatus,
};
use crate::ports::{
    BundleStore, CatalogStore, CatalogWrite, IdempotencyRecord, Page, PageRequest, StoreError,
    TemplateWrite, VersionWrite,
};

/// How long a `clientToken` is remembered, as in Proton.
const IDEMPOTENCY_SECONDS: u64 = 8 * 60 * 60;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NewTemplate {
    pub name: ResourceName,
    pub display_name: Option<DisplayName>,
    pub description: Option<Description>,
    pub encryption_key: Option<Arn>,
    /// `provisioning` for environment templates, `pipelineProvisioning` for service templates.
    #[serde(alias = "pipelineProvisioning")]
    pub provisioning: Option<Provisioning>,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateChange {
    pub name: ResourceName,
    pub display_name: Option<DisplayName>,
    pub description: Option<Description>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct S3Source {
    pub bucket: S3Bucket,
    pub key: S3Key,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersionSource {
    pub s3: Option<S3Source>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NewVersion {
    #[serde(skip_serializing)]
    pub client_token: Option<ClientToken>,
    pub template_name: ResourceName,
    pub description: Option<Description>,
    pub major_version: Option<VersionPart>,
    pub source: VersionSource,
    #[serde(default)]
    pub tags: Tags,
    pub compatible_environment_templates: Option<Vec<CompatibleEnvironmentTemplate>>,
    pub supported_component_sources: Option<Vec<ComponentSource>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionChange {
    pub template_name: ResourceName,
    pub major_version: VersionPart,
    pub minor_version: VersionPart,
    pub description: Option<Description>,
    pub status: Option<VersionStatus>,
    pub compatible_environment_templates: Option<Vec<CompatibleEnvironmentTemplate>>,
    pub supported_component_sources: Option<Vec<ComponentSource>>,
}

pub struct Catalog {
    store: Arc<dyn CatalogStore>,
    bundles: Arc<dyn BundleStore>,
    /// Where template version status changes are announced, if anywhere.
    events: Option<(Arc<dyn crate::ports::Events>, super::deploy::ArnBuilder)>,
}

impl Catalog {
    pub fn new(store: Arc<dyn CatalogStore>, bundles: Arc<dyn BundleStore>) -> Self {
        Self {
            store,
            bundles,
            events: None,
        }
    }

    /// Announces template version status changes on `events`, as Proton did
    /// (`AWS Proton Environment Template Version Status Change`, and the service's).
    pub fn with_events(
        mut self,
        events: Arc<dyn crate::ports::Events>,
        arns: super::deploy::ArnBuilder,
    ) -> Self {
        self.events = Some((events, arns));
        self
    }

    async fn announce(&self, version: &TemplateVersion, previous: Option<VersionStatus>) {
        let Some((events, arns)) = &self.events else {
            return;
        };
        let name = |status: VersionStatus| {
            serde_json::to_value(status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let change = crate::ports::StatusChange {
            resource: match version.kind {
                TemplateKind::Environment => "Environment Template Version",
                TemplateKind::Service => "Service Template Version",
            },
            name: format!("{}:{}", version.template_name, version.number),
            arn: arns.proton(&format!(
                "{}/{}:{}",
                version.kind.arn_resource(),
                version.template_name,
                version.number
            )),
            status: name(version.status),
            previous_status: previous.map(name),
            initiated_by: crate::app::deploy::audit::current(),
        };
        if let Err(error) = events.publish(change).await {
            tracing::warn!(error = %error, "status change event not published");
        }
    }

    #[tracing::instrument(skip_all, fields(kind = ?kind, name = %new.name))]
    pub async fn create_template(&self, kind: TemplateKind, new: NewTemplate) -> Result<Template> {
        let now = Timestamp::now();
        let template = Template {
            kind,
            name: new.name.clone(),
            display_name: new.display_name.clone(),
            description: new.description.clone(),
            encryption_key: new.encryption_key.clone(),
            provisioning: new.provisioning,
            tags: new.tags.clone().into_vec(),
            created_at: now,
            last_modified_at: now,
            versions: VersionIndex::default(),
            rev: 1,
        };
        let write = CatalogWrite {
            template: Some(TemplateWrite::Create(template.clone())),
            ..Default::default()
        };
        match self.store.write(write).await {
            Ok(()) => Ok(template),
            Err(StoreError::ConditionFailed) => {
                // A retry of the same create gets the template back; anything else conflicts.
                let existing = self.store.template(kind, &new.name).await?;
                match existing {
                    Some(existing) if same_metadata(&existing, &new) => Ok(existing),
                    _ => Err(Error::conflict(format!(
                        "{} {} already exists with other parameters",
                        kind.noun(),
                        new.name
                    ))),
                }
            }
            Err(other) => Err(other.into()),
        }
    }

    pub async fn template(&self, kind: TemplateKind, name: &ResourceName) -> Result<Template> {
        self.store
            .template(kind, name)
            .await?
            .ok_or_else(|| Error::not_found(format!("{} {name} does not exist", kind.noun())))
    }

    pub async fn templates(&self, kind: TemplateKind, page: PageRequest) -> Result<Page<Template>> {
        Ok(self.store.templates(kind, page).await?)
    }

    #[tracing::instrument(skip_all, fields(kind = ?kind, name = %change.name))]
    pub async fn update_template(
        &self,
        kind: TemplateKind,
        change: TemplateChange,
    ) -> Result<Template> {
        let current = self.template(kind, &change.name).await?;
        let mut updated = current.clone();
        if let Some(display_name) = change.display_name {
            updated.display_name = Some(display_name);
        }
        if let Some(description) = change.description {
            updated.description = Some(description);
        }
        updated.last_modified_at = Timestamp::now();
        updated.rev = current.rev + 1;
        self.store
            .write(CatalogWrite {
                template: Some(TemplateWrite::Replace {
                    template: updated.clone(),
                    expected_rev: current.rev,
                }),
                ..Default::default()
            })
            .await?;
        Ok(updated)
    }

    #[tracing::instrument(skip_all, fields(kind = ?kind, name = %name))]
    pub async fn delete_template(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
    ) -> Result<Template> {
        let current = self.template(kind, name).await?;
        if !current.versions.is_empty() {
            let versions: Vec<String> = current
                .versions
                .statuses
                .keys()
                .map(ToString::to_string)
                .collect();
            return Err(Error::conflict(format!(
                "{} {name} still has versions {}; delete them first",
                kind.noun(),
                versions.join(", ")
            )));
        }
        self.store
            .write(CatalogWrite {
                template: Some(TemplateWrite::Delete {
                    kind,
                    name: name.clone(),
                    expected_rev: current.rev,
                }),
                ..Default::default()
            })
            .await?;
        Ok(current)
    }

    /// Registers a bundle as a new version: fetched, unpacked, checked and kept, all before
    /// anything is written, so a bad bundle leaves no trace.
    #[tracing::instrument(skip_all, fields(kind = ?kind, name = %new.template_name))]
    pub async fn create_version(
        &self,
        kind: TemplateKind,
        new: NewVersion,
    ) -> Result<(Template, TemplateVersion)> {
        let name = new.template_name.clone();
        let scope = format!("{}/{name}/CreateVersion", kind.arn_resource());
        let fingerprint = serde_json::to_string(&new).map_err(|e| {
            Error::Store(StoreError::Corrupt {
                key: scope.clone(),
                reason: e.to_string(),
            })
        })?;
        if let Some(token) = &new.client_token
            && let Some(done) = self
                .replay(kind, &name, &scope, token, &fingerprint)
                .await?
        {
            return Ok(done);
        }
        let template = self.template(kind, &name).await?;
        let compatible = self
            .check_compatible_environments(kind, &new.compatible_environment_templates)
            .await?;
        let supported_sources = match (kind, &new.supported_component_sources) {
            (TemplateKind::Environment, Some(_)) => {
                return Err(Error::validation(
                    "supportedComponentSources applies to service templates only",
                ));
            }
            (_, sources) => sources.clone().unwrap_or_default(),
        };
        let Some(s3) = &new.source.s3 else {
            return Err(Error::validation(
                "source.s3 is required: the bundle's bucket and key",
            ));
        };
        let number = template
            .versions
            .next(new.major_version.map(|m| m.0))
            .map_err(Error::Validation)?;

        let archive = self
            .bundles
            .fetch(s3.bucket.as_str(), s3.key.as_str(), MAX_BUNDLE_BYTES)
            .await?;
        let layout = layout_of(&template);
        let checked = Bundle::unpack(&archive)
            .and_then(|bundle| bundle::check(&bundle, layout))
            .map_err(|reason| {
                Error::validation(format!(
                    "bundle s3://{}/{} cannot be registered: {reason}",
                    s3.bucket.as_str(),
                    s3.key.as_str()
                ))
            })?;
        if let Some(previous) = template.versions.previous_minor(number) {
            self.check_minor_compatibility(&template, previous, number, &checked.schema)
                .await?;
        }

        let now = Timestamp::now();
        let bundle_key = format!(
            "bundles/{}/{name}/{number}/{}.tar.gz",
            kind.arn_resource(),
            uuid::Uuid::new_v4()
        );
        self.bundles.keep(&bundle_key, archive).await?;
        let version = TemplateVersion {
            kind,
            template_name: name.clone(),
            number,
            status: VersionStatus::Draft,
            status_message: None,
            description: new.description.clone(),
            schema: checked.schema_text.clone(),
            compatible_environment_templates: compatible,
            supported_component_sources: supported_sources,
            bundle_key: bundle_key.clone(),
            has_pipeline: checked.has_pipeline(),
            tags: new.tags.clone().into_vec(),
            created_at: now,
            last_modified_at: now,
            in_use: 0,
            rev: 1,
        };
        let mut updated = template.clone();
        updated.versions.insert(number, VersionStatus::Draft);
        updated.rev = template.rev + 1;
        let idempotency = new.client_token.as_ref().map(|token| IdempotencyRecord {
            scope: scope.clone(),
            token: token.as_str().to_string(),
            fingerprint: fingerprint.clone(),
            result: number,
            expires_at: now.0 as u64 + IDEMPOTENCY_SECONDS,
        });
        let write = CatalogWrite {
            template: Some(TemplateWrite::Replace {
                template: updated.clone(),
                expected_rev: template.rev,
            }),
            version: Some(VersionWrite::Create(version.clone())),
            idempotency,
        };
        match self.store.write(write).await {
            Ok(()) => {
                self.announce(&version, None).await;
                Ok((updated, version))
            }
            Err(StoreError::ConditionFailed) => {
                // Nothing was written: the copy kept for this version is nobody's.
                if let Err(error) = self.bundles.discard(&bundle_key).await {
                    tracing::warn!(key = %bundle_key, error = %error, "unused bundle copy not removed");
                }
                if let Some(token) = &new.client_token {
                    // The same request may have won the race under the same token.
                    if let Some(done) = self
                        .replay(kind, &name, &scope, token, &fingerprint)
                        .await?
                    {
                        return Ok(done);
                    }
                }
                Err(Error::conflict(format!(
                    "{} {name} was changed by another request while version {number} was registered; retry",
                    kind.noun()
                )))
            }
            // The write may have been applied with its answer lost: the copy stays.
            Err(other) => Err(other.into()),
        }
    }

    /// The answer to a retried request, if its token was seen before.
    async fn replay(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        scope: &str,
        token: &ClientToken,
        fingerprint: &str,
    ) -> Result<Option<(Template, TemplateVersion)>> {
        let Some(record) = self.store.idempotency_record(scope, token.as_str()).await? else {
            return Ok(None);
        };
        if record.expires_at < Timestamp::now().0 as u64 {
            return Ok(None);
        }
        if record.fingerprint != fingerprint {
            return Err(Error::validation(format!(
                "clientToken {:?} was already used with different parameters",
                token.as_str()
            )));
        }
        let template = self.template(kind, name).await?;
        let version = self
            .store
            .version(kind, name, record.result)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "version {} of {} {name}, created with this clientToken, was since deleted",
                    record.result,
                    kind.noun()
                ))
            })?;
        Ok(Some((template, version)))
    }

    async fn check_compatible_environments(
        &self,
        kind: TemplateKind,
        requested: &Option<Vec<CompatibleEnvironmentTemplate>>,
    ) -> Result<Vec<CompatibleEnvironmentTemplate>> {
        let list = match (kind, requested) {
            (TemplateKind::Environment, None) => return Ok(Vec::new()),
            (TemplateKind::Environment, Some(_)) => {
                return Err(Error::validation(
                    "compatibleEnvironmentTemplates applies to service templates only",
                ));
            }
            (TemplateKind::Service, None) => {
                return Err(Error::validation(
                    "compatibleEnvironmentTemplates is required: name at least one environment template and major version",
                ));
            }
            (TemplateKind::Service, Some(list)) => list,
        };
        if list.is_empty() || list.len() > 10 {
            return Err(Error::validation(format!(
                "compatibleEnvironmentTemplates must list 1 to 10 entries, got {}",
                list.len()
            )));
        }
        for (index, entry) in list.iter().enumerate() {
            let field = format!("compatibleEnvironmentTemplates[{index}]");
            let env = self
                .store
                .template(TemplateKind::Environment, &entry.template_name)
                .await?
                .ok_or_else(|| {
                    Error::validation(format!(
                        "{field}: environment template {} does not exist",
                        entry.template_name
                    ))
                })?;
            if !env.versions.has_major(entry.major_version.0) {
                return Err(Error::validation(format!(
                    "{field}: environment template {} has no major version {}",
                    entry.template_name, entry.major_version
                )));
            }
        }
        Ok(list.clone())
    }

    async fn check_minor_compatibility(
        &self,
        template: &Template,
        previous: VersionNumber,
        number: VersionNumber,
        schema: &crate::domain::schema::TemplateSchema,
    ) -> Result<()> {
        let Some(old) = self
            .store
            .version(template.kind, &template.name, previous)
            .await?
        else {
            return Ok(());
        };
        let old_schema = layout_of(template)
            .parse_schema(&old.schema)
            .map_err(|reason| StoreError::Corrupt {
                key: format!("{}/{previous}", template.name),
                reason,
            })?;
        let problems = schema.incompatibilities_with(&old_schema);
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::validation(format!(
            "schema/schema.yaml cannot be minor version {number}: it is not compatible with version {previous} ({}); register it as a new major version instead",
            problems.join("; ")
        )))
    }

    pub async fn version(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        number: VersionNumber,
    ) -> Result<(Template, TemplateVersion)> {
        let template = self.template(kind, name).await?;
        let version = self
            .store
            .version(kind, name, number)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "version {number} of {} {name} does not exist",
                    kind.noun()
                ))
            })?;
        Ok((template, version))
    }

    pub async fn versions(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        major: Option<u64>,
        page: PageRequest,
    ) -> Result<(Template, Page<TemplateVersion>)> {
        let template = self.template(kind, name).await?;
        let page = self.store.versions(kind, name, major, page).await?;
        Ok((template, page))
    }

    #[tracing::instrument(skip_all, fields(kind = ?kind, name = %change.template_name))]
    pub async fn update_version(
        &self,
        kind: TemplateKind,
        change: VersionChange,
    ) -> Result<(Template, TemplateVersion)> {
        let number = VersionNumber {
            major: change.major_version.0,
            minor: change.minor_version.0,
        };
        let (template, current) = self.version(kind, &change.template_name, number).await?;
        let mut version = current.clone();
        if let Some(status) = change.status {
            version.status = next_status(current.status, status, number)?;
        }
        if let Some(description) = change.description {
            version.description = Some(description);
        }
        if change.compatible_environment_templates.is_some() {
            version.compatible_environment_templates = self
                .check_compatible_environments(kind, &change.compatible_environment_templates)
                .await?;
        }
        if let Some(sources) = change.supported_component_sources {
            if kind == TemplateKind::Environment {
                return Err(Error::validation(
                    "supportedComponentSources applies to service templates only",
                ));
            }
            version.supported_component_sources = sources;
        }
        if version == current {
            return Ok((template, current));
        }
        version.last_modified_at = Timestamp::now();
        version.rev = current.rev + 1;
        let mut write = CatalogWrite {
            version: Some(VersionWrite::Replace {
                version: version.clone(),
                expected_rev: current.rev,
            }),
            ..Default::default()
        };
        let mut updated = template.clone();
        if version.status != current.status {
            updated.versions.set_status(number, version.status);
            updated.last_modified_at = version.last_modified_at;
            updated.rev = template.rev + 1;
            write.template = Some(TemplateWrite::Replace {
                template: updated.clone(),
                expected_rev: template.rev,
            });
        }
        self.store.write(write).await?;
        if version.status != current.status {
            self.announce(&version, Some(current.status)).await;
        }
        Ok((updated, version))
    }

    #[tracing::instrument(skip_all, fields(kind = ?kind, name = %name, version = %number))]
    pub async fn delete_version(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        number: VersionNumber,
    ) -> Result<(Template, TemplateVersion)> {
        let (template, version) = self.version(kind, name, number).await?;
        let in_use = self
            .store
            .in_use(kind, name, number)
            .await?
            .unwrap_or(version.in_use);
        if in_use > 0 {
            return Err(Error::conflict(format!(
                "version {number} of {} {name} is used by {in_use} deployed resource(s); move them to another version first",
                kind.noun(),
            )));
        }
        if let Some(reason) = template.versions.deletion_blocker(number) {
            return Err(Error::conflict(reason));
        }
        let mut updated = template.clone();
        updated.versions.remove(number);
        updated.rev = template.rev + 1;
        self.store
            .write(CatalogWrite {
                template: Some(TemplateWrite::Replace {
                    template: updated.clone(),
                    expected_rev: template.rev,
                }),
                version: Some(VersionWrite::Delete {
                    version: version.clone(),
                    expected_rev: version.rev,
                }),
                idempotency: None,
            })
            .await?;
        if let Err(error) = self.bundles.discard(&version.bundle_key).await {
            // The version is gone; its kept bundle is only storage now.
            tracing::warn!(key = %version.bundle_key, error = %error, "kept bundle not removed");
        }
        Ok((updated, version))
    }
}

fn layout_of(template: &Template) -> BundleLayout {
    match (template.kind, template.provisioning) {
        (TemplateKind::Environment, Some(Provisioning::CustomerManaged)) => {
            BundleLayout::CustomerManagedEnvironment
        }
        (TemplateKind::Environment, None) => BundleLayout::Environment,
        (TemplateKind::Service, provisioning) => BundleLayout::Service {
            pipeline: provisioning.is_none(),
        },
    }
}

fn same_metadata(existing: &Template, new: &NewTemplate) -> bool {
    existing.display_name == new.display_name
        && existing.description == new.description
        && existing.encryption_key == new.encryption_key
        && existing.provisioning == new.provisioning
        && existing.tags.as_slice() == new.tags.as_slice()
}

fn next_status(
    current: VersionStatus,
    wanted: VersionStatus,
    number: VersionNumber,
) -> Result<VersionStatus> {
    use VersionStatus::*;
    match (current, wanted) {
        (Draft | Published, Published) => Ok(Published),
        (Draft, Draft) => Ok(Draft),
        (Published, Draft) => Err(Error::validation(format!(
            "status: version {number} is PUBLISHED and cannot go back to DRAFT"
        ))),
        (RegistrationInProgress | RegistrationFailed, _) => Err(Error::conflict(format!(
            "version {number} is {current:?} and cannot change status"
        ))),
        (_, RegistrationInProgress | RegistrationFailed) => Err(Error::validation(
            "status may only be set to PUBLISHED (or DRAFT on a draft)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::adapters::memory::{MemoryBundleStore, MemoryStore};
    use crate::domain::bundle::tests::env_bundle;
    use crate::domain::names::{S3Bucket, S3Key};
    use crate::ports::{CatalogStore, Page};

    /// The memory store, except that the next write finds its condition failed, as when
    /// another request registered a version first.
    struct Raced {
        inner: MemoryStore,
        lose_next: AtomicBool,
    }

    #[async_trait]
    impl CatalogStore for Raced {
        async fn template(
            &self,
            kind: TemplateKind,
            name: &ResourceName,
        ) -> Result<Option<Template>, StoreError> {
            self.inner.template(kind, name).await
        }
        async fn templates(
            &self,
            kind: TemplateKind,
            page: PageRequest,
        ) -> Result<Page<Template>, StoreError> {
            self.inner.templates(kind, page).await
        }
        async fn version(
            &self,
            kind: TemplateKind,
            name: &ResourceName,
            number: VersionNumber,
        ) -> Result<Option<TemplateVersion>, StoreError> {
            self.inner.version(kind, name, number).await
        }
        async fn versions(
            &self,
            kind: TemplateKind,
            name: &ResourceName,
            major: Option<u64>,
            page: PageRequest,
        ) -> Result<Page<TemplateVersion>, StoreError> {
            self.inner.versions(kind, name, major, page).await
        }
        async fn idempotency_record(
            &self,
            scope: &str,
            token: &str,
        ) -> Result<Option<IdempotencyRecord>, StoreError> {
            self.inner.idempotency_record(scope, token).await
        }
        async fn write(&self, write: CatalogWrite) -> Result<(), StoreError> {
            if self.lose_next.swap(false, Ordering::SeqCst) {
                return Err(StoreError::ConditionFailed);
            }
            self.inner.write(write).await
        }
    }

    #[tokio::test]
    async fn a_version_that_lost_its_write_leaves_no_bundle_copy_behind() {
        let store = Arc::new(Raced {
            inner: MemoryStore::default(),
            lose_next: AtomicBool::new(false),
        });
        let bundles = Arc::new(MemoryBundleStore::new("paved"));
        bundles.put("src", "env.tar.gz", env_bundle());
        let catalog = Catalog::new(store.clone(), bundles.clone());
        let name = ResourceName::parse("vpc").unwrap();
        catalog
            .create_template(
                TemplateKind::Environment,
                NewTemplate {
                    name: name.clone(),
                    display_name: None,
                    description: None,
                    encryption_key: None,
                    provisioning: None,
                    tags: Default::default(),
                },
            )
            .await
            .unwrap();
        let new = || NewVersion {
            client_token: None,
            template_name: name.clone(),
            description: None,
            major_version: None,
            source: VersionSource {
                s3: Some(S3Source {
                    bucket: S3Bucket::parse("src").unwrap(),
                    key: S3Key::parse("env.tar.gz").unwrap(),
                }),
            },
            tags: Default::default(),
            compatible_environment_templates: None,
            supported_component_sources: None,
        };
        store.lose_next.store(true, Ordering::SeqCst);
        let lost = catalog
            .create_version(TemplateKind::Environment, new())
            .await
            .unwrap_err();
        assert!(matches!(lost, Error::Conflict(_)), "{lost:?}");
        assert!(
            bundles.keys("paved").is_empty(),
            "{:?}",
            bundles.keys("paved")
        );
        let (_, version) = catalog
            .create_version(TemplateKind::Environment, new())
            .await
            .unwrap();
        assert_eq!(bundles.keys("paved"), vec![version.bundle_key]);
    }
}
