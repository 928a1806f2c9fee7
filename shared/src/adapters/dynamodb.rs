//! The catalog in one DynamoDB table. Access patterns (no Scan anywhere):
//!
//! | pattern                              | key                                                     |
//! |--------------------------------------|---------------------------------------------------------|
//! | get a template                       | `pk = TEMPLATE#<kind>#<name>`, `sk = #TEMPLATE`         |
//! | list templates of a kind, by name    | GSI `gsi1`: `gsi1pk = TEMPLATES#<kind>`, `gsi1sk = name` |
//! | get a version                        | `pk = TEMPLATE#<kind>#<name>`, `sk = VERSION#<major>#<minor>` (20-digit, zero-padded) |
//! | list versions (all, or of one major) | Query `pk`, `begins_with(sk, VERSION#[<major>#])`        |
//! | replay a clientToken                 | `pk = TOKEN#<scope>#<token>`, `sk = #TOKEN`, TTL `expiresAt` |
//! | get an environment                   | `pk = ENVIRONMENT#<name>`, `sk = #ENVIRONMENT`          |
//! | list environments, by name           | GSI `gsi1`: `gsi1pk = ENVIRONMENTS`, `gsi1sk = name`    |
//! | get a deployment                     | `pk = DEPLOYMENT#<id>`, `sk = #DEPLOYMENT`              |
//! | an environment's deployments, newest first | GSI `gsi1`: `gsi1pk = DEPLOYMENTS#<environment>`, `gsi1sk = <inverted time>#<id>` |
//! | all deployments, newest first        | GSI `gsi2`: `gsi2pk = DEPLOYMENTS`, `gsi2sk = <inverted time>#<id>` |
//! | get a service / list services        | `pk = SERVICE#<name>`, `sk = #SERVICE`; GSI `gsi1`: `gsi1pk = SERVICES` |
//! | a service's instances                | Query `pk = SERVICE#<service>`, `begins_with(sk, INSTANCE#)` |
//! | instances in an environment          | GSI `gsi1`: `gsi1pk = INSTANCES#ENVIRONMENT#<environment>` |
//! | get a component / list components    | `pk = COMPONENT#<name>`, `sk = #COMPONENT`; GSI `gsi1`: `gsi1pk = COMPONENTS` |
//! | components in an environment         | GSI `gsi2`: `gsi2pk = COMPONENTS#ENVIRONMENT#<environment>`, `gsi2sk = name` |
//! | services that track a repository branch | GSI `gsi2`: `gsi2pk = REPOSITORY#<len>#<repository>#<branch>`, `gsi2sk = name` |
//! | webhook deliveries seen (replays)    | `pk = DELIVERY#<sha256 of body>`, `sk = #DELIVERY`, TTL `expiresAt` |
//!
//! Every item carries `rev`; writes go through TransactWriteItems with `attribute_not_exists(pk)`
//! for creates and `rev = :expected` for replaces and deletes, so no update is ever lost.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ScalarAttributeType,
    TimeToLiveSpecification, TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};

use crate::domain::component::Component;
use crate::domain::environment::{Deployment, Environment};
use crate::domain::names::{Arn, Description, DisplayName, ResourceName, Tag, Timestamp};
use crate::domain::service::{Service, ServiceInstance};
use crate::domain::template::{
    CompatibleEnvironmentTemplate, ComponentSource, Provisioning, Template, TemplateKind,
    TemplateVersion, VersionIndex, VersionNumber, VersionStatus,
};
use crate::ports::{
    CatalogStore, CatalogWrite, ComponentWrite, Deliveries, DeploymentChange, DeploymentStore,
    DeploymentWrite, EnvironmentWrite, IdempotencyRecord, InstanceWrite, Page, PageRequest,
    ServiceWrite, StoreError, TemplateWrite, TokenRecord, VersionUsage, VersionWrite,
};

pub const GSI1: &str = "gsi1";
pub const GSI2: &str = "gsi2";

pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn template_pk(kind: TemplateKind, name: &str) -> String {
    format!("TEMPLATE#{}#{name}", kind.arn_resource())
}

fn version_sk(number: VersionNumber) -> String {
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

type Item = HashMap<String, AttributeValue>;

fn corrupt(key: &str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| corrupt("(new item)", e))
}

fn from_item<T: for<'de> Deserialize<'de>>(item: Item) -> Result<T, StoreError> {
    let key = item
        .get("pk")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let sk = item
        .get("sk")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    serde_dynamo::from_item(item).map_err(|e| corrupt(&format!("{key} {sk}"), e))
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(pk)),
        ("sk".to_string(), AttributeValue::S(sk.to_string())),
    ])
}

fn backend<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let throttled = matches!(
        error.code(),
        Some(
            "ThrottlingException"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
        )
    );
    if throttled {
        StoreError::Throttled(Box::new(error))
    } else {
        StoreError::Backend(Box::new(error))
    }
}

fn encode_cursor(key: Option<&Item>) -> Option<String> {
    let key = key?;
    let plain: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.as_str(), s.as_str())))
        .collect();
    serde_json::to_string(&plain).ok()
}

fn decode_cursor(cursor: &str, expected: (&str, &str)) -> Result<Item, StoreError> {
    let plain: HashMap<String, String> =
        serde_json::from_str(cursor).map_err(|_| StoreError::BadCursor)?;
    // A token from one listing must not page through another.
    if plain.get(expected.0).map(String::as_str) != Some(expected.1) || !plain.contains_key("sk") {
        return Err(StoreError::BadCursor);
    }
    Ok(plain
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect())
}

impl DynamoStore {
    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(output.item)
    }

    fn put(&self, item: Item, condition: Condition) -> TransactWriteItem {
        let (expression, values) = condition.parts();
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(expression)
            .set_expression_attribute_values(values)
            .build()
            .expect("table, item and condition are set");
        TransactWriteItem::builder().put(put).build()
    }

    fn delete(&self, pk: String, sk: &str, condition: Condition) -> TransactWriteItem {
        let (expression, values) = condition.parts();
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .condition_expression(expression)
            .set_expression_attribute_values(values)
            .build()
            .expect("table, key and condition are set");
        TransactWriteItem::builder().delete(delete).build()
    }
}

enum Condition {
    Absent,
    Rev(u64),
}

impl Condition {
    fn parts(self) -> (String, Option<Item>) {
        match self {
            Self::Absent => ("attribute_not_exists(pk)".into(), None),
            Self::Rev(rev) => (
                "rev = :rev".into(),
                Some(HashMap::from([(
                    ":rev".to_string(),
                    AttributeValue::N(rev.to_string()),
                )])),
            ),
        }
    }
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

// --- Environments and deployments ------------------------------------------------------------

const ENVIRONMENT_SK: &str = "#ENVIRONMENT";
const DEPLOYMENT_SK: &str = "#DEPLOYMENT";

fn environment_pk(name: &str) -> String {
    format!("ENVIRONMENT#{name}")
}

fn deployment_pk(id: &str) -> String {
    format!("DEPLOYMENT#{id}")
}

/// A domain record with its keys: the record's own fields sit beside them in the item.
#[derive(Serialize, Deserialize)]
struct Keyed<T> {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
    #[serde(flatten)]
    record: T,
}

fn environment_item(environment: &Environment) -> Result<Item, StoreError> {
    to_item(&Keyed {
        pk: environment_pk(environment.name.as_str()),
        sk: ENVIRONMENT_SK.into(),
        gsi1pk: "ENVIRONMENTS".into(),
        gsi1sk: environment.name.to_string(),
        gsi2pk: None,
        gsi2sk: None,
        record: environment,
    })
}

fn deployment_item(deployment: &Deployment) -> Result<Item, StoreError> {
    // Newest first in ascending key order.
    let order = format!(
        "{:020}#{}",
        u64::MAX - (deployment.created_at.0 * 1000.0) as u64,
        deployment.id
    );
    to_item(&Keyed {
        pk: deployment_pk(&deployment.id),
        sk: DEPLOYMENT_SK.into(),
        gsi1pk: format!("DEPLOYMENTS#{}", deployment.environment_name),
        gsi1sk: order.clone(),
        gsi2pk: Some("DEPLOYMENTS".into()),
        gsi2sk: Some(order),
        record: deployment,
    })
}

impl DynamoStore {
    async fn query_index<T: for<'de> Deserialize<'de>>(
        &self,
        index: &str,
        partition: String,
        page: PageRequest,
    ) -> Result<Page<T>, StoreError> {
        let key = if index == GSI1 { "gsi1pk" } else { "gsi2pk" };
        let start = page
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, (key, &partition)))
            .transpose()?;
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(format!("{key} = :p"))
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
            .map(|item| from_item::<Keyed<T>>(item).map(|k| k.record))
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            cursor: encode_cursor(output.last_evaluated_key.as_ref()),
        })
    }

    fn usage_update(&self, usage: &VersionUsage) -> TransactWriteItem {
        let version = &usage.version;
        let mut condition = "attribute_exists(pk)".to_string();
        let mut values = HashMap::from([
            (":d".to_string(), AttributeValue::N(usage.delta.to_string())),
            (":one".to_string(), AttributeValue::N("1".into())),
        ]);
        if usage.delta > 0 {
            condition.push_str(" AND #status = :published");
            values.insert(":published".into(), AttributeValue::S("PUBLISHED".into()));
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                template_pk(version.kind, version.template_name.as_str()),
                &version_sk(version.number),
            )))
            .update_expression("SET inUse = if_not_exists(inUse, :zero) + :d, rev = rev + :one")
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()));
        let update = if usage.delta > 0 {
            update.expression_attribute_names("#status", "status")
        } else {
            update
        };
        TransactWriteItem::builder()
            .update(update.build().expect("table, key and expression are set"))
            .build()
    }

    /// Applies the writes in one transaction. Cancelled by a failed condition or by a
    /// concurrent transaction on the same items: either way another writer got there first.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                Err(StoreError::ConditionFailed)
            }
            Err(error) => Err(backend(error)),
        }
    }
}

const SERVICE_SK: &str = "#SERVICE";

fn service_pk(name: &str) -> String {
    format!("SERVICE#{name}")
}

fn instance_sk(name: &str) -> String {
    format!("INSTANCE#{name}")
}

/// The index partition of the services that track a repository's branch. The repository id
/// is length-prefixed, so no pair of repository and branch can spell another's key.
fn tracking_pk(repository: &str, branch: &str) -> String {
    format!("REPOSITORY#{}#{repository}#{branch}", repository.len())
}

fn service_item(service: &Service) -> Result<Item, StoreError> {
    let tracking = match (&service.repository.id, &service.repository.branch) {
        (Some(repository), Some(branch)) => Some(tracking_pk(repository, branch)),
        _ => None,
    };
    to_item(&Keyed {
        pk: service_pk(service.name.as_str()),
        sk: SERVICE_SK.into(),
        gsi1pk: "SERVICES".into(),
        gsi1sk: service.name.to_string(),
        gsi2sk: tracking.as_ref().map(|_| service.name.to_string()),
        gsi2pk: tracking,
        record: service,
    })
}

fn instance_item(instance: &ServiceInstance) -> Result<Item, StoreError> {
    to_item(&Keyed {
        pk: service_pk(instance.service.as_str()),
        sk: instance_sk(instance.name.as_str()),
        gsi1pk: format!("INSTANCES#ENVIRONMENT#{}", instance.environment),
        gsi1sk: format!("{}#{}", instance.service, instance.name),
        gsi2pk: None,
        gsi2sk: None,
        record: instance,
    })
}

const COMPONENT_SK: &str = "#COMPONENT";

fn component_pk(name: &str) -> String {
    format!("COMPONENT#{name}")
}

fn component_item(component: &Component) -> Result<Item, StoreError> {
    to_item(&Keyed {
        pk: component_pk(component.name.as_str()),
        sk: COMPONENT_SK.into(),
        gsi1pk: "COMPONENTS".into(),
        gsi1sk: component.name.to_string(),
        gsi2pk: Some(format!("COMPONENTS#ENVIRONMENT#{}", component.environment)),
        gsi2sk: Some(component.name.to_string()),
        record: component,
    })
}

const DEPLOYMENT_TOKEN_SK: &str = "#DEPLOYMENT-TOKEN";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentTokenItem {
    pk: String,
    sk: String,
    scope: String,
    token: String,
    fingerprint: String,
    deployment_id: String,
    expires_at: u64,
}

#[async_trait]
impl DeploymentStore for DynamoStore {
    async fn token(&self, scope: &str, token: &str) -> Result<Option<TokenRecord>, StoreError> {
        let Some(item) = self
            .get(format!("TOKEN#{scope}#{token}"), DEPLOYMENT_TOKEN_SK)
            .await?
        else {
            return Ok(None);
        };
        let item: DeploymentTokenItem = from_item(item)?;
        Ok(Some(TokenRecord {
            scope: item.scope,
            token: item.token,
            fingerprint: item.fingerprint,
            deployment_id: item.deployment_id,
            expires_at: item.expires_at,
        }))
    }

    async fn services_tracking(
        &self,
        repository: &str,
        branch: &str,
    ) -> Result<Vec<Service>, StoreError> {
        let mut services = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .query_index::<Service>(
                    GSI2,
                    tracking_pk(repository, branch),
                    PageRequest {
                        limit: None,
                        cursor,
                    },
                )
                .await?;
            services.extend(page.items);
            cursor = page.cursor;
            if cursor.is_none() {
                return Ok(services);
            }
        }
    }

    async fn component(&self, name: &ResourceName) -> Result<Option<Component>, StoreError> {
        match self.get(component_pk(name.as_str()), COMPONENT_SK).await? {
            Some(item) => Ok(Some(from_item::<Keyed<Component>>(item)?.record)),
            None => Ok(None),
        }
    }

    async fn components(
        &self,
        environment: Option<&ResourceName>,
        page: PageRequest,
    ) -> Result<Page<Component>, StoreError> {
        match environment {
            Some(name) => {
                self.query_index(GSI2, format!("COMPONENTS#ENVIRONMENT#{name}"), page)
                    .await
            }
            None => self.query_index(GSI1, "COMPONENTS".into(), page).await,
        }
    }

    async fn service(&self, name: &ResourceName) -> Result<Option<Service>, StoreError> {
        match self.get(service_pk(name.as_str()), SERVICE_SK).await? {
            Some(item) => Ok(Some(from_item::<Keyed<Service>>(item)?.record)),
            None => Ok(None),
        }
    }

    async fn services(&self, page: PageRequest) -> Result<Page<Service>, StoreError> {
        self.query_index(GSI1, "SERVICES".into(), page).await
    }

    async fn instance(
        &self,
        service: &ResourceName,
        name: &ResourceName,
    ) -> Result<Option<ServiceInstance>, StoreError> {
        match self
            .get(service_pk(service.as_str()), &instance_sk(name.as_str()))
            .await?
        {
            Some(item) => Ok(Some(from_item::<Keyed<ServiceInstance>>(item)?.record)),
            None => Ok(None),
        }
    }

    async fn instances_in(
        &self,
        environment: &ResourceName,
        limit: u32,
    ) -> Result<Vec<ServiceInstance>, StoreError> {
        let page = self
            .query_index::<ServiceInstance>(
                GSI1,
                format!("INSTANCES#ENVIRONMENT#{environment}"),
                PageRequest {
                    limit: Some(limit),
                    cursor: None,
                },
            )
            .await?;
        Ok(page.items)
    }

    async fn instances(&self, service: &ResourceName) -> Result<Vec<ServiceInstance>, StoreError> {
        let mut instances = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", AttributeValue::S(service_pk(service.as_str())))
                .expression_attribute_values(":prefix", AttributeValue::S("INSTANCE#".into()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend)?;
            for item in output.items.unwrap_or_default() {
                instances.push(from_item::<Keyed<ServiceInstance>>(item)?.record);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(instances);
            }
        }
    }

    async fn environment(&self, name: &ResourceName) -> Result<Option<Environment>, StoreError> {
        match self
            .get(environment_pk(name.as_str()), ENVIRONMENT_SK)
            .await?
        {
            Some(item) => Ok(Some(from_item::<Keyed<Environment>>(item)?.record)),
            None => Ok(None),
        }
    }

    async fn environments(&self, page: PageRequest) -> Result<Page<Environment>, StoreError> {
        self.query_index(GSI1, "ENVIRONMENTS".into(), page).await
    }

    async fn deployment(&self, id: &str) -> Result<Option<Deployment>, StoreError> {
        match self.get(deployment_pk(id), DEPLOYMENT_SK).await? {
            Some(item) => Ok(Some(from_item::<Keyed<Deployment>>(item)?.record)),
            None => Ok(None),
        }
    }

    async fn deployments(
        &self,
        environment: Option<&ResourceName>,
        page: PageRequest,
    ) -> Result<Page<Deployment>, StoreError> {
        match environment {
            Some(name) => {
                self.query_index(GSI1, format!("DEPLOYMENTS#{name}"), page)
                    .await
            }
            None => self.query_index(GSI2, "DEPLOYMENTS".into(), page).await,
        }
    }

    async fn change(&self, change: DeploymentChange) -> Result<(), StoreError> {
        let mut items = Vec::new();
        for write in change.environments {
            items.push(match write {
                EnvironmentWrite::Create(e) => self.put(environment_item(&e)?, Condition::Absent),
                EnvironmentWrite::Replace {
                    environment,
                    expected_rev,
                } => self.put(
                    environment_item(&environment)?,
                    Condition::Rev(expected_rev),
                ),
                EnvironmentWrite::Delete { name, expected_rev } => self.delete(
                    environment_pk(name.as_str()),
                    ENVIRONMENT_SK,
                    Condition::Rev(expected_rev),
                ),
            });
        }
        for write in change.services {
            items.push(match write {
                ServiceWrite::Create(s) => self.put(service_item(&s)?, Condition::Absent),
                ServiceWrite::Replace {
                    service,
                    expected_rev,
                } => self.put(service_item(&service)?, Condition::Rev(expected_rev)),
                ServiceWrite::Delete { name, expected_rev } => self.delete(
                    service_pk(name.as_str()),
                    SERVICE_SK,
                    Condition::Rev(expected_rev),
                ),
            });
        }
        for write in change.instances {
            items.push(match write {
                InstanceWrite::Create(i) => self.put(instance_item(&i)?, Condition::Absent),
                InstanceWrite::Replace {
                    instance,
                    expected_rev,
                } => self.put(instance_item(&instance)?, Condition::Rev(expected_rev)),
                InstanceWrite::Delete {
                    service,
                    name,
                    expected_rev,
                } => self.delete(
                    service_pk(service.as_str()),
                    &instance_sk(name.as_str()),
                    Condition::Rev(expected_rev),
                ),
            });
        }
        for write in change.components {
            items.push(match write {
                ComponentWrite::Create(c) => self.put(component_item(&c)?, Condition::Absent),
                ComponentWrite::Replace {
                    component,
                    expected_rev,
                } => self.put(component_item(&component)?, Condition::Rev(expected_rev)),
                ComponentWrite::Delete { name, expected_rev } => self.delete(
                    component_pk(name.as_str()),
                    COMPONENT_SK,
                    Condition::Rev(expected_rev),
                ),
            });
        }
        for write in change.deployments {
            items.push(match write {
                DeploymentWrite::Create(d) => self.put(deployment_item(&d)?, Condition::Absent),
                DeploymentWrite::Replace {
                    deployment,
                    expected_rev,
                } => self.put(deployment_item(&deployment)?, Condition::Rev(expected_rev)),
                DeploymentWrite::Delete { id, expected_rev } => self.delete(
                    deployment_pk(&id),
                    DEPLOYMENT_SK,
                    Condition::Rev(expected_rev),
                ),
            });
        }
        for usage in &change.usage {
            items.push(self.usage_update(usage));
        }
        if let Some(record) = change.token {
            let item = DeploymentTokenItem {
                pk: format!("TOKEN#{}#{}", record.scope, record.token),
                sk: DEPLOYMENT_TOKEN_SK.into(),
                scope: record.scope,
                token: record.token,
                fingerprint: record.fingerprint,
                deployment_id: record.deployment_id,
                expires_at: record.expires_at,
            };
            items.push(self.put(to_item(&item)?, Condition::Absent));
        }
        self.transact(items).await
    }
}

/// Creates the table with its index and TTL if it does not exist yet (local runs and tests;
/// in AWS the SAM template owns the table).
pub async fn ensure_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("name and type are set")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("name and type are set")
    };
    let index = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key("gsi1pk", KeyType::Hash))
        .key_schema(key("gsi1sk", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .expect("index name, keys and projection are set");
    let index2 = GlobalSecondaryIndex::builder()
        .index_name(GSI2)
        .key_schema(key("gsi2pk", KeyType::Hash))
        .key_schema(key("gsi2sk", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .expect("index name, keys and projection are set");
    let created = client
        .create_table()
        .table_name(table)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .attribute_definitions(attribute("gsi1pk"))
        .attribute_definitions(attribute("gsi1sk"))
        .attribute_definitions(attribute("gsi2pk"))
        .attribute_definitions(attribute("gsi2sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(index)
        .global_secondary_indexes(index2)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            return Ok(());
        }
        Err(error) => return Err(backend(error)),
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expiresAt")
                .enabled(true)
                .build()
                .expect("attribute and flag are set"),
        )
        .send()
        .await
        .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl Deliveries for DynamoStore {
    async fn remember_delivery(&self, key: &str, expires_at: u64) -> Result<bool, StoreError> {
        let item = HashMap::from([
            (
                "pk".to_string(),
                AttributeValue::S(format!("DELIVERY#{key}")),
            ),
            ("sk".to_string(), AttributeValue::S("#DELIVERY".into())),
            (
                "expiresAt".to_string(),
                AttributeValue::N(expires_at.to_string()),
            ),
        ]);
        match self.transact(vec![self.put(item, Condition::Absent)]).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(other) => Err(other),
        }
    }

    async fn forget_delivery(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self::key(format!("DELIVERY#{key}"), "#DELIVERY")))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}
