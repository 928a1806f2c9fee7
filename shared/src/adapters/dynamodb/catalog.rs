//! The template catalog's items: templates, their versions and replayed client tokens.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::domain::names::{Arn, Description, DisplayName, ResourceName, Tag, Timestamp};
use crate::domain::template::{
    CompatibleEnvironmentTemplate, ComponentSource, Provisioning, Template, TemplateKind,
    TemplateVersion, VersionIndex, VersionNumber, VersionStatus,
};
use crate::ports::{
    CatalogStore, CatalogWrite, IdempotencyRecord, Page, PageRequest, StoreError, TemplateWrite,
    VersionWrite,
};

use super::{
    Condition, DynamoStore, GSI1, backend, corrupt, decode_cursor, encode_cursor, from_item,
    to_item,
};

pub(super) fn template_pk(kind: TemplateKind, name: &str) -> String {
    format!("TEMPLATE#{}#{name}", kind.arn_resource())
}

pub(super) fn version_sk(number: VersionNumber) -> String {
    format!("VERSION#{:020}#{:020}", number.major, number.minor)
}

const TEMPLATE_SK: &str = "#TEMPLATE";
const TOKEN_SK: &str = "#TOKEN";

fn kind_from_pk(pk: &str) -> Option<TemplateKind> {
    match pk.split('#').nth(1)? {
        "environment-template" => Some(TemplateKind::Environment),
        "service-template" => Some(TemplateKind::Service),
        _ => None,
    }
}

#[derive(Serialize, Deserialize)]
struct VersionEntry {
    major: u64,
    minor: u64,
    status: VersionStatus,
}

#[derive(Serialize, Deserialize)]
struct LastMinor {
    major: u64,
    last: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TemplateItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    name: ResourceName,
    display_name: Option<DisplayName>,
    description: Option<Description>,
    encryption_key: Option<Arn>,
    provisioning: Option<Provisioning>,
    #[serde(default)]
    tags: Vec<Tag>,
    created_at: Timestamp,
    last_modified_at: Timestamp,
    #[serde(default)]
    versions: Vec<VersionEntry>,
    #[serde(default)]
    last_minors: Vec<LastMinor>,
    rev: u64,
}

impl From<&Template> for TemplateItem {
    fn from(t: &Template) -> Self {
        Self {
            pk: template_pk(t.kind, t.name.as_str()),
            sk: TEMPLATE_SK.into(),
            gsi1pk: format!("TEMPLATES#{}", t.kind.arn_resource()),
            gsi1sk: t.name.to_string(),
            name: t.name.clone(),
            display_name: t.display_name.clone(),
            description: t.description.clone(),
            encryption_key: t.encryption_key.clone(),
            provisioning: t.provisioning,
            tags: t.tags.clone(),
            created_at: t.created_at,
            last_modified_at: t.last_modified_at,
            versions: t
                .versions
                .statuses
                .iter()
                .map(|(n, s)| VersionEntry {
                    major: n.major,
                    minor: n.minor,
                    status: *s,
                })
                .collect(),
            last_minors: t
                .versions
                .last_minors
                .iter()
                .map(|(major, last)| LastMinor {
                    major: *major,
                    last: *last,
                })
                .collect(),
            rev: t.rev,
        }
    }
}

impl TemplateItem {
    fn into_domain(self) -> Result<Template, StoreError> {
        let kind =
            kind_from_pk(&self.pk).ok_or_else(|| corrupt(&self.pk, "unknown template kind"))?;
        Ok(Template {
            kind,
            name: self.name,
            display_name: self.display_name,
            description: self.description,
            encryption_key: self.encryption_key,
            provisioning: self.provisioning,
            tags: self.tags,
            created_at: self.created_at,
            last_modified_at: self.last_modified_at,
            versions: VersionIndex {
                statuses: self
                    .versions
                    .into_iter()
                    .map(|e| {
                        (
                            VersionNumber {
                                major: e.major,
                                minor: e.minor,
                            },
                            e.status,
                        )
                    })
                    .collect(),
                last_minors: self
                    .last_minors
                    .into_iter()
                    .map(|l| (l.major, l.last))
                    .collect(),
            },
            rev: self.rev,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionItem {
    pk: String,
    sk: String,
    template_name: ResourceName,
    major: u64,
    minor: u64,
    status: VersionStatus,
    status_message: Option<String>,
    description: Option<Description>,
    schema: String,
    #[serde(default)]
    compatible_environment_templates: Vec<CompatibleEnvironmentTemplate>,
    #[serde(default)]
    supported_component_sources: Vec<ComponentSource>,
    bundle_key: String,
    has_pipeline: bool,
    #[serde(default)]
    tags: Vec<Tag>,
    created_at: Timestamp,
    last_modified_at: Timestamp,
    in_use: u64,
    rev: u64,
}

impl From<&TemplateVersion> for VersionItem {
    fn from(v: &TemplateVersion) -> Self {
        Self {
            pk: template_pk(v.kind, v.template_name.as_str()),
            sk: version_sk(v.number),
            template_name: v.template_name.clone(),
            major: v.number.major,
            minor: v.number.minor,
            status: v.status,
            status_message: v.status_message.clone(),
            description: v.description.clone(),
            schema: v.schema.clone(),
            compatible_environment_templates: v.compatible_environment_templates.clone(),
            supported_component_sources: v.supported_component_sources.clone(),
            bundle_key: v.bundle_key.clone(),
            has_pipeline: v.has_pipeline,
            tags: v.tags.clone(),
            created_at: v.created_at,
            last_modified_at: v.last_modified_at,
            in_use: v.in_use,
            rev: v.rev,
        }
    }
}

impl VersionItem {
    fn into_domain(self) -> Result<TemplateVersion, StoreError> {
        let kind =
            kind_from_pk(&self.pk).ok_or_else(|| corrupt(&self.pk, "unknown template kind"))?;
        Ok(TemplateVersion {
            kind,
            template_name: self.template_name,
            number: VersionNumber {
                major: self.major,
                minor: self.minor,
            },
            status: self.status,
            status_message: self.status_message,
            description: self.description,
            schema: self.schema,
            compatible_environment_templates: self.compatible_environment_templates,
            supported_component_sources: self.supported_component_sources,
            bundle_key: self.bundle_key,
            has_pipeline: self.has_pipeline,
            tags: self.tags,
            created_at: self.created_at,
            last_modified_at: self.last_modified_at,
            in_use: self.in_use,
            rev: self.rev,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenItem {
    pk: String,
    sk: String,
    scope: String,
    token: String,
    fingerprint: String,
    major: u64,
    minor: u64,
    expires_at: u64,
}

#[async_trait]
impl CatalogStore for DynamoStore {
    async fn template(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
    ) -> Result<Option<Template>, StoreError> {
        match self
            .get(template_pk(kind, name.as_str()), TEMPLATE_SK)
            .await?
        {
            Some(item) => Ok(Some(from_item::<TemplateItem>(item)?.into_domain()?)),
            None => Ok(None),
        }
    }

    async fn templates(
        &self,
        kind: TemplateKind,
        page: PageRequest,
    ) -> Result<Page<Template>, StoreError> {
        let partition = format!("TEMPLATES#{}", kind.arn_resource());
        let start = page
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, ("gsi1pk", &partition)))
            .transpose()?;
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", AttributeValue::S(partition.clone()))
            .set_limit(page.limit.map(|l| l as i32))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(backend)?;
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<TemplateItem>(item)?.into_domain())
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            cursor: encode_cursor(output.last_evaluated_key.as_ref()),
        })
    }

    async fn version(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        number: VersionNumber,
    ) -> Result<Option<TemplateVersion>, StoreError> {
        match self
            .get(template_pk(kind, name.as_str()), &version_sk(number))
            .await?
        {
            Some(item) => Ok(Some(from_item::<VersionItem>(item)?.into_domain()?)),
            None => Ok(None),
        }
    }

    async fn versions(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        major: Option<u64>,
        page: PageRequest,
    ) -> Result<Page<TemplateVersion>, StoreError> {
        let pk = template_pk(kind, name.as_str());
        let prefix = match major {
            Some(major) => format!("VERSION#{major:020}#"),
            None => "VERSION#".to_string(),
        };
        let start = page
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, ("pk", &pk)))
            .transpose()?;
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix))
            .consistent_read(true)
            .set_limit(page.limit.map(|l| l as i32))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(backend)?;
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<VersionItem>(item)?.into_domain())
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            cursor: encode_cursor(output.last_evaluated_key.as_ref()),
        })
    }

    async fn idempotency_record(
        &self,
        scope: &str,
        token: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let Some(item) = self.get(format!("TOKEN#{scope}#{token}"), TOKEN_SK).await? else {
            return Ok(None);
        };
        let item: TokenItem = from_item(item)?;
        Ok(Some(IdempotencyRecord {
            scope: item.scope,
            token: item.token,
            fingerprint: item.fingerprint,
            result: VersionNumber {
                major: item.major,
                minor: item.minor,
            },
            expires_at: item.expires_at,
        }))
    }

    async fn write(&self, write: CatalogWrite) -> Result<(), StoreError> {
        let mut items = Vec::new();
        match write.template {
            Some(TemplateWrite::Create(t)) => {
                items.push(self.put(to_item(&TemplateItem::from(&t))?, Condition::Absent))
            }
            Some(TemplateWrite::Replace {
                template,
                expected_rev,
            }) => items.push(self.put(
                to_item(&TemplateItem::from(&template))?,
                Condition::Rev(expected_rev),
            )),
            Some(TemplateWrite::Delete {
                kind,
                name,
                expected_rev,
            }) => items.push(self.delete(
                template_pk(kind, name.as_str()),
                TEMPLATE_SK,
                Condition::Rev(expected_rev),
            )),
            None => {}
        }
        match write.version {
            Some(VersionWrite::Create(v)) => {
                items.push(self.put(to_item(&VersionItem::from(&v))?, Condition::Absent))
            }
            Some(VersionWrite::Replace {
                version,
                expected_rev,
            }) => items.push(self.put(
                to_item(&VersionItem::from(&version))?,
                Condition::Rev(expected_rev),
            )),
            Some(VersionWrite::Delete {
                version,
                expected_rev,
            }) => items.push(self.delete(
                template_pk(version.kind, version.template_name.as_str()),
                &version_sk(version.number),
                Condition::Rev(expected_rev),
            )),
            None => {}
        }
        if let Some(record) = write.idempotency {
            let item = TokenItem {
                pk: format!("TOKEN#{}#{}", record.scope, record.token),
                sk: TOKEN_SK.into(),
                scope: record.scope,
                token: record.token,
                fingerprint: record.fingerprint,
                major: record.result.major,
                minor: record.result.minor,
                expires_at: record.expires_at,
            };
            items.push(self.put(to_item(&item)?, Condition::Absent));
        }
        self.transact(items).await
    }
}
