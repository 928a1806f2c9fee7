//! The template catalog's items: templates, their versions and replayed client tokens.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
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
    Condition, DynamoStore, GSI1, Item, backend, corrupt, decode_cursor, encode_cursor, from_item,
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
    /// The version index as items wrote it before `version_index` (read, never written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    versions: Vec<VersionEntry>,
    /// Every version and its status in a few bytes each (see `encode_index`), so that the item
    /// stays far below DynamoDB's 400 KB with tens of thousands of versions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    version_index: String,
    #[serde(default)]
    last_minors: Vec<LastMinor>,
    rev: u64,
}

fn status_code(status: VersionStatus) -> char {
    match status {
        VersionStatus::RegistrationInProgress => 'I',
        VersionStatus::RegistrationFailed => 'F',
        VersionStatus::Draft => 'D',
        VersionStatus::Published => 'P',
    }
}

fn status_of(code: char) -> Option<VersionStatus> {
    Some(match code {
        'I' => VersionStatus::RegistrationInProgress,
        'F' => VersionStatus::RegistrationFailed,
        'D' => VersionStatus::Draft,
        'P' => VersionStatus::Published,
        _ => return None,
    })
}

/// The versions of a template as runs of minors with one status, major by major:
/// `1:0-41P,42D;2:0-3P` (minors 0 to 41 of major 1 published, 42 a draft; 0 to 3 of major 2
/// published). Deleted versions are gaps.
fn encode_index(statuses: &BTreeMap<VersionNumber, VersionStatus>) -> String {
    let mut majors: Vec<String> = Vec::new();
    let mut current: Option<(u64, Vec<String>)> = None;
    let mut run: Option<(u64, u64, VersionStatus)> = None;
    let flush_run = |runs: &mut Vec<String>, run: (u64, u64, VersionStatus)| {
        let (from, to, status) = run;
        let code = status_code(status);
        runs.push(if from == to {
            format!("{from}{code}")
        } else {
            format!("{from}-{to}{code}")
        });
    };
    for (number, status) in statuses {
        if current.as_ref().map(|(m, _)| *m) != Some(number.major) {
            if let Some((major, mut runs)) = current.take() {
                if let Some(r) = run.take() {
                    flush_run(&mut runs, r);
                }
                majors.push(format!("{major}:{}", runs.join(",")));
            }
            current = Some((number.major, Vec::new()));
        }
        let runs = &mut current.as_mut().expect("set above").1;
        run = match run {
            Some((from, to, s)) if s == *status && to + 1 == number.minor => {
                Some((from, number.minor, s))
            }
            Some(r) => {
                flush_run(runs, r);
                Some((number.minor, number.minor, *status))
            }
            None => Some((number.minor, number.minor, *status)),
        };
    }
    if let Some((major, mut runs)) = current {
        if let Some(r) = run {
            flush_run(&mut runs, r);
        }
        majors.push(format!("{major}:{}", runs.join(",")));
    }
    majors.join(";")
}

fn decode_index(text: &str) -> Option<BTreeMap<VersionNumber, VersionStatus>> {
    let mut statuses = BTreeMap::new();
    for part in text.split(';').filter(|p| !p.is_empty()) {
        let (major, runs) = part.split_once(':')?;
        let major: u64 = major.parse().ok()?;
        for run in runs.split(',').filter(|r| !r.is_empty()) {
            let code = run.chars().next_back()?;
            let status = status_of(code)?;
            let range = &run[..run.len() - code.len_utf8()];
            let (from, to) = match range.split_once('-') {
                Some((from, to)) => (from.parse().ok()?, to.parse().ok()?),
                None => {
                    let minor: u64 = range.parse().ok()?;
                    (minor, minor)
                }
            };
            if from > to || to - from > 10_000_000 {
                return None;
            }
            for minor in from..=to {
                statuses.insert(VersionNumber { major, minor }, status);
            }
        }
    }
    Some(statuses)
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
            versions: vec![],
            version_index: encode_index(&t.versions.statuses),
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
                statuses: {
                    let mut statuses = decode_index(&self.version_index).ok_or_else(|| {
                        corrupt(&self.pk, "versionIndex is not an index paved wrote")
                    })?;
                    statuses.extend(self.versions.into_iter().map(|e| {
                        (
                            VersionNumber {
                                major: e.major,
                                minor: e.minor,
                            },
                            e.status,
                        )
                    }));
                    statuses
                },
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
    /// The count from before the usage shards (items written by earlier paved); never written
    /// now: version writes keep it (`replace_version`), the shards carry the rest.
    #[serde(default, skip_serializing)]
    in_use: u64,
    rev: u64,
}

/// How many items a version's in-use count is spread over.
pub(super) const USAGE_SHARDS: u64 = 16;

/// The key of one of a version's usage shards: `USAGE#<major>#<minor>#<shard>` (the version
/// listings read `VERSION#...` only).
pub(super) fn usage_shard_sk(number: VersionNumber, shard: u64) -> String {
    format!("USAGE#{:020}#{:020}#{shard:02}", number.major, number.minor)
}

fn usage_prefix(number: VersionNumber) -> String {
    format!("USAGE#{:020}#{:020}#", number.major, number.minor)
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

impl DynamoStore {
    /// A version's usage shards as they are: (key, count, retired).
    async fn usage_shards(
        &self,
        pk: &str,
        number: VersionNumber,
    ) -> Result<Vec<(String, i64, bool)>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
            .expression_attribute_values(":prefix", AttributeValue::S(usage_prefix(number)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(output
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|item| {
                let sk = item.get("sk")?.as_s().ok()?.clone();
                let count = item
                    .get("inUse")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                Some((sk, count, item.contains_key("retired")))
            })
            .collect())
    }

    /// What deleting a version writes to its usage shards: every shard marked retired, each on
    /// the condition that it still holds what was read, and the read summing to nothing in use;
    /// a write taking the version into use meanwhile makes the deletion a conflict.
    async fn retire_usage(
        &self,
        pk: &str,
        version: &TemplateVersion,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let seen = self.usage_shards(pk, version.number).await?;
        let base = match self
            .get(pk.to_string(), &version_sk(version.number))
            .await?
        {
            Some(item) => from_item::<VersionItem>(item)?.in_use as i64,
            None => 0,
        };
        if base + seen.iter().map(|(_, n, _)| n).sum::<i64>() != 0 {
            return Err(StoreError::ConditionFailed);
        }
        let mut items = Vec::new();
        for shard in 0..USAGE_SHARDS {
            let sk = usage_shard_sk(version.number, shard);
            let mut item = super::key(pk.to_string(), &sk);
            item.insert("retired".into(), AttributeValue::Bool(true));
            let (condition, values) = match seen.iter().find(|(key, _, _)| *key == sk) {
                None => ("attribute_not_exists(pk)".to_string(), None),
                Some((_, count, _)) => {
                    item.insert("inUse".into(), AttributeValue::N(count.to_string()));
                    (
                        "inUse = :seen".to_string(),
                        Some(HashMap::from([(
                            ":seen".to_string(),
                            AttributeValue::N(count.to_string()),
                        )])),
                    )
                }
            };
            let put = aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_values(values)
                .build()
                .expect("table, item and condition are set");
            items.push(TransactWriteItem::builder().put(put).build());
        }
        Ok(items)
    }

    /// Replaces a version's attributes (on the condition of its `rev`) but the count from before
    /// the usage shards, which only the shards' retirement ends.
    fn replace_version(&self, item: Item, expected_rev: u64) -> TransactWriteItem {
        let pk = item.get("pk").cloned();
        let sk = item.get("sk").cloned();
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut sets = Vec::new();
        for (i, (name, value)) in item
            .into_iter()
            .filter(|(name, _)| name != "pk" && name != "sk" && name != "inUse")
            .enumerate()
        {
            names.insert(format!("#a{i}"), name);
            values.insert(format!(":a{i}"), value);
            sets.push(format!("#a{i} = :a{i}"));
        }
        values.insert(
            ":expected".into(),
            AttributeValue::N(expected_rev.to_string()),
        );
        let mut key = HashMap::new();
        key.extend(pk.map(|v| ("pk".to_string(), v)));
        key.extend(sk.map(|v| ("sk".to_string(), v)));
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression("rev = :expected")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .expect("table, key and expression are set");
        TransactWriteItem::builder().update(update).build()
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
        // The count is left to `in_use`: deployments read versions on every write, and only a
        // deletion needs the count (its shards are one more query).
        let pk = template_pk(kind, name.as_str());
        match self.get(pk, &version_sk(number)).await? {
            Some(item) => Ok(Some(from_item::<VersionItem>(item)?.into_domain()?)),
            None => Ok(None),
        }
    }

    async fn in_use(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        number: VersionNumber,
    ) -> Result<Option<u64>, StoreError> {
        let pk = template_pk(kind, name.as_str());
        let Some(item) = self.get(pk.clone(), &version_sk(number)).await? else {
            return Ok(None);
        };
        let base = from_item::<VersionItem>(item)?.in_use;
        let shards = self.usage_shards(&pk, number).await?;
        let counted: i64 = shards.iter().map(|(_, n, _)| n).sum();
        Ok(Some(base.saturating_add_signed(counted)))
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
            }) => items
                .push(self.replace_version(to_item(&VersionItem::from(&version))?, expected_rev)),
            Some(VersionWrite::Delete {
                version,
                expected_rev,
            }) => {
                let pk = template_pk(version.kind, version.template_name.as_str());
                items.push(self.delete(
                    pk.clone(),
                    &version_sk(version.number),
                    Condition::Rev(expected_rev),
                ));
                items.extend(self.retire_usage(&pk, &version).await?);
            }
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

#[cfg(test)]
mod index_tests {
    use super::*;

    fn v(major: u64, minor: u64) -> VersionNumber {
        VersionNumber { major, minor }
    }

    #[test]
    fn the_version_index_round_trips_in_runs() {
        let mut statuses = BTreeMap::new();
        for minor in 0..42 {
            statuses.insert(v(1, minor), VersionStatus::Published);
        }
        statuses.insert(v(1, 42), VersionStatus::Draft);
        statuses.insert(v(1, 44), VersionStatus::Draft);
        statuses.insert(v(2, 0), VersionStatus::RegistrationFailed);
        statuses.insert(v(2, 1), VersionStatus::RegistrationInProgress);
        let text = encode_index(&statuses);
        assert_eq!(text, "1:0-41P,42D,44D;2:0F,1I");
        assert_eq!(decode_index(&text).unwrap(), statuses);
        assert_eq!(decode_index("").unwrap(), BTreeMap::new());
        for bad in ["1:0X", "x:0P", "1:5-2P", "1"] {
            assert!(decode_index(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn fifty_thousand_versions_fit_one_item_even_without_runs() {
        // The worst case for runs: every other version a draft (about 6 bytes a version; the
        // list of maps written before took about 85).
        let statuses: BTreeMap<_, _> = (0..50_000u64)
            .map(|i| {
                let status = if i % 2 == 0 {
                    VersionStatus::Published
                } else {
                    VersionStatus::Draft
                };
                (v(1 + i / 5_000, i % 5_000), status)
            })
            .collect();
        let text = encode_index(&statuses);
        assert!(text.len() < 350_000, "{} bytes", text.len());
        assert_eq!(decode_index(&text).unwrap(), statuses);
    }
}
