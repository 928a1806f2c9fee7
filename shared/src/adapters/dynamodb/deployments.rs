//! Environments, services, instances, components, deployments, their tokens, and webhook
//! deliveries.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use crate::domain::component::Component;
use crate::domain::environment::{Deployment, Environment};
use crate::domain::names::ResourceName;
use crate::domain::service::{Service, ServiceInstance};
use crate::ports::{
    ComponentWrite, Deliveries, DeploymentChange, DeploymentStore, DeploymentWrite,
    EnvironmentWrite, InstanceWrite, Page, PageRequest, ServiceWrite, StoreError, TokenRecord,
    VersionUsage,
};

use super::catalog::template_pk;
use super::{
    Condition, DynamoStore, GSI1, GSI2, Item, backend, decode_cursor, encode_cursor, from_item,
    key, to_item,
};

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

/// The marker of the service deployments index: `done` once every deployment written before
/// the index is in it, else how far the sweep got (`cursor`).
const SERVICE_DEPLOYMENTS_SK: &str = "#LAYOUT-SERVICE-DEPLOYMENTS";
/// Deployments the sweep brings into the service index per run.
const INDEX_BATCH: usize = 2_000;

/// The service a deployment's target belongs to, if any.
fn service_of(deployment: &Deployment) -> Option<&ResourceName> {
    use crate::domain::environment::Target;
    match &deployment.target {
        Target::ServiceInstance { service, .. } | Target::ServicePipeline { service } => {
            Some(service)
        }
        _ => None,
    }
}

/// A service's pointer to one of its deployments, newest first under the service's own
/// partition: `pk = SERVICE#<service>`, `sk = DEPLOYMENT#<inverted time>#<id>`.
fn deployment_pointer(deployment: &Deployment) -> Option<Item> {
    let service = service_of(deployment)?;
    let order = format!(
        "{:020}#{}",
        u64::MAX - (deployment.created_at.0 * 1000.0) as u64,
        deployment.id
    );
    Some(std::collections::HashMap::from([
        (
            "pk".to_string(),
            AttributeValue::S(service_pk(service.as_str())),
        ),
        (
            "sk".to_string(),
            AttributeValue::S(format!("DEPLOYMENT#{order}")),
        ),
        (
            "deploymentId".to_string(),
            AttributeValue::S(deployment.id.clone()),
        ),
    ]))
}

impl DynamoStore {
    /// Deployments by id, in one BatchGetItem per 100 (what is gone is left out).
    async fn deployments_by_id(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, Deployment>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut found = std::collections::HashMap::new();
        for chunk in ids.chunks(100) {
            let keys: Vec<Item> = chunk
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|id| key(deployment_pk(id), DEPLOYMENT_SK))
                .collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .expect("keys are set"),
            );
            let mut attempt = 0u32;
            while let Some(request) = pending.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(backend)?;
                for item in output
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    let deployment = from_item::<Keyed<Deployment>>(item)?.record;
                    found.insert(deployment.id.clone(), deployment);
                }
                pending = output
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(&self.table)
                    .filter(|k| !k.keys.is_empty());
                if pending.is_some() {
                    attempt += 1;
                    if attempt > TRANSACT_RETRIES {
                        return Err(StoreError::Throttled(
                            "BatchGetItem left keys unprocessed".into(),
                        ));
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Ok(found)
    }

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

    /// A version's in-use count moves on one of its usage shards (`catalog::usage_shard_sk`),
    /// picked at random: concurrent writes on one version rarely meet on one item, where a single
    /// counter item made every write to a version a transaction conflict with every other. A
    /// version being deleted retires its shards, so a write that would take it into use then
    /// fails its condition.
    fn usage_update(&self, usage: &VersionUsage) -> TransactWriteItem {
        let version = &usage.version;
        let shard =
            (uuid::Uuid::new_v4().as_u128() % u128::from(super::catalog::USAGE_SHARDS)) as u64;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                template_pk(version.kind, version.template_name.as_str()),
                &super::catalog::usage_shard_sk(version.number, shard),
            )))
            .update_expression("ADD inUse :d")
            .expression_attribute_values(":d", AttributeValue::N(usage.delta.to_string()));
        let update = if usage.delta > 0 {
            update.condition_expression("attribute_not_exists(retired)")
        } else {
            update
        };
        TransactWriteItem::builder()
            .update(update.build().expect("table, key and expression are set"))
            .build()
    }

    /// Applies the writes in one transaction. Cancelled by a failed condition or by a
    /// concurrent transaction on the same items: either way another writer got there first.
    /// Applies items in one transaction. One client request token serves every attempt, so a
    /// retry of a write that was applied (its answer lost) is not applied twice. A cancellation
    /// is read from its reasons: a failed condition is the caller's conflict; a conflict with
    /// another transaction, or throttling, is retried with backoff and, if it persists, reported
    /// as throttling (worth retrying), never as a conflict that did not happen.
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let token = uuid::Uuid::new_v4().to_string();
        let mut attempt = 0u32;
        loop {
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(&token)
                .send()
                .await;
            let error = match sent {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            let outcome = match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    let codes: Vec<Option<&str>> = cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code())
                        .collect();
                    cancellation(&codes)
                }
                Some(e) if e.is_transaction_in_progress_exception() => Cancellation::Retry,
                _ => Cancellation::Other,
            };
            match outcome {
                Cancellation::ConditionFailed => return Err(StoreError::ConditionFailed),
                Cancellation::Retry if attempt < TRANSACT_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Cancellation::Retry => return Err(StoreError::Throttled(Box::new(error))),
                Cancellation::Other => return Err(backend(error)),
            }
        }
    }
}

/// Attempts after the first for a transaction cancelled by contention or throttling.
const TRANSACT_RETRIES: u32 = 5;

/// 25 ms, 50 ms, 100 ms, ... with up to half again of jitter, so that contending writers spread.
fn backoff(attempt: u32) -> std::time::Duration {
    let base = 25u64 << attempt.min(6);
    let jitter = uuid::Uuid::new_v4().as_u128() as u64 % (base / 2 + 1);
    std::time::Duration::from_millis(base + jitter)
}

/// What a cancelled transaction means, from its reasons (one per item, `None` for the items
/// that did not cause it).
#[derive(Debug, PartialEq, Eq)]
enum Cancellation {
    /// A condition failed: the item changed since it was read.
    ConditionFailed,
    /// Contention with another transaction, throttling, or a transaction still in progress.
    Retry,
    Other,
}

fn cancellation(codes: &[Option<&str>]) -> Cancellation {
    let has = |code: &str| codes.contains(&Some(code));
    if has("ConditionalCheckFailed") {
        Cancellation::ConditionFailed
    } else if has("TransactionConflict")
        || has("ThrottlingError")
        || has("ProvisionedThroughputExceeded")
        || has("RequestLimitExceeded")
    {
        Cancellation::Retry
    } else if codes.iter().all(|c| matches!(c, None | Some("None"))) {
        // moto cancels without reasons on a failed condition; AWS always names the reason.
        Cancellation::ConditionFailed
    } else {
        Cancellation::Other
    }
}

#[cfg(test)]
mod tests {
    use super::{Cancellation, backoff, cancellation};

    #[test]
    fn a_cancellation_is_a_conflict_only_when_a_condition_failed() {
        let none = Some("None");
        assert_eq!(
            cancellation(&[none, Some("ConditionalCheckFailed"), none]),
            Cancellation::ConditionFailed
        );
        assert_eq!(
            cancellation(&[none, Some("TransactionConflict")]),
            Cancellation::Retry
        );
        assert_eq!(
            cancellation(&[Some("ThrottlingError")]),
            Cancellation::Retry
        );
        assert_eq!(
            cancellation(&[Some("ProvisionedThroughputExceeded"), none]),
            Cancellation::Retry
        );
        // A failed condition decides, whatever else was cancelled with it.
        assert_eq!(
            cancellation(&[Some("TransactionConflict"), Some("ConditionalCheckFailed")]),
            Cancellation::ConditionFailed
        );
        assert_eq!(
            cancellation(&[Some("ValidationError")]),
            Cancellation::Other
        );
        assert_eq!(
            cancellation(&[Some("ItemCollectionSizeLimitExceeded")]),
            Cancellation::Other
        );
    }

    #[test]
    fn retries_back_off() {
        assert!(backoff(1) >= std::time::Duration::from_millis(50));
        assert!(backoff(5) >= std::time::Duration::from_millis(800));
        assert!(backoff(30) <= std::time::Duration::from_millis(2400));
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

/// The partitions of the all-instances index: an instance's is fixed by its names, so no one
/// partition takes every instance write.
const INSTANCE_SHARDS: u64 = 16;

fn instance_shard(service: &str, name: &str) -> String {
    let hash = format!("{service}/{name}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    format!("INSTANCES#{:02}", hash % INSTANCE_SHARDS)
}

fn instance_item(instance: &ServiceInstance) -> Result<Item, StoreError> {
    let order = format!("{}#{}", instance.service, instance.name);
    to_item(&Keyed {
        pk: service_pk(instance.service.as_str()),
        sk: instance_sk(instance.name.as_str()),
        gsi1pk: format!("INSTANCES#ENVIRONMENT#{}", instance.environment),
        gsi1sk: order.clone(),
        gsi2pk: Some(instance_shard(
            instance.service.as_str(),
            instance.name.as_str(),
        )),
        gsi2sk: Some(order),
        record: instance,
    })
}

/// The item saying every instance is in the all-instances index.
const LAYOUT_PK: &str = "ACCOUNT";
const LAYOUT_SK: &str = "#LAYOUT";

impl DynamoStore {
    /// Every item of an index partition, page by page.
    async fn whole_partition<T: for<'de> Deserialize<'de>>(
        &self,
        index: &str,
        partition: String,
        limit: Option<usize>,
    ) -> Result<Vec<T>, StoreError> {
        let mut items = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .query_index::<T>(
                    index,
                    partition.clone(),
                    PageRequest {
                        limit: None,
                        cursor,
                    },
                )
                .await?;
            items.extend(page.items);
            if limit.is_some_and(|l| items.len() >= l) {
                items.truncate(limit.unwrap_or(usize::MAX));
                return Ok(items);
            }
            cursor = page.cursor;
            if cursor.is_none() {
                return Ok(items);
            }
        }
    }

    async fn instances_indexed(&self) -> Result<bool, StoreError> {
        Ok(self.get(LAYOUT_PK.into(), LAYOUT_SK).await?.is_some())
    }

    /// Every service's instances, service by service (what the index replaces), each with
    /// whether it is in the index.
    async fn instances_by_service(&self) -> Result<Vec<(ServiceInstance, bool)>, StoreError> {
        let mut found = Vec::new();
        for service in self
            .whole_partition::<Service>(GSI1, "SERVICES".into(), None)
            .await?
        {
            for item in self.instance_items(&service.name).await? {
                let indexed = item.contains_key("gsi2pk");
                found.push((from_item::<Keyed<ServiceInstance>>(item)?.record, indexed));
            }
        }
        Ok(found)
    }

    /// The items of a service's instances, page by page.
    async fn instance_items(&self, service: &ResourceName) -> Result<Vec<Item>, StoreError> {
        self.partition(service_pk(service.as_str()), Some("INSTANCE#"))
            .await
    }
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
        self.whole_partition(GSI2, tracking_pk(repository, branch), None)
            .await
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
        // Page by page: one Query answers at most 1 MB.
        self.whole_partition(
            GSI1,
            format!("INSTANCES#ENVIRONMENT#{environment}"),
            Some(limit as usize),
        )
        .await
    }

    async fn all_instances(&self) -> Result<Vec<ServiceInstance>, StoreError> {
        if !self.instances_indexed().await? {
            // Until the sweep has indexed what was written before the index.
            return Ok(self
                .instances_by_service()
                .await?
                .into_iter()
                .map(|(instance, _)| instance)
                .collect());
        }
        let mut all = Vec::new();
        for shard in 0..INSTANCE_SHARDS {
            all.extend(
                self.whole_partition::<ServiceInstance>(
                    GSI2,
                    format!("INSTANCES#{shard:02}"),
                    None,
                )
                .await?,
            );
        }
        Ok(all)
    }

    async fn index_instances(&self) -> Result<Option<usize>, StoreError> {
        if self.instances_indexed().await? {
            return Ok(None);
        }
        let mut indexed = 0;
        for (instance, in_index) in self.instances_by_service().await? {
            if in_index {
                continue;
            }
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(
                    service_pk(instance.service.as_str()),
                    &instance_sk(instance.name.as_str()),
                )))
                .update_expression("SET gsi2pk = :p, gsi2sk = :s")
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(gsi2pk)")
                .expression_attribute_values(
                    ":p",
                    AttributeValue::S(instance_shard(
                        instance.service.as_str(),
                        instance.name.as_str(),
                    )),
                )
                .expression_attribute_values(
                    ":s",
                    AttributeValue::S(format!("{}#{}", instance.service, instance.name)),
                )
                .send()
                .await;
            match result {
                Ok(_) => indexed += 1,
                // Deleted or rewritten (with its index keys) meanwhile.
                Err(error) if error.code() == Some("ConditionalCheckFailedException") => {}
                Err(error) => return Err(backend(error)),
            }
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(LAYOUT_PK.into()))
            .item("sk", AttributeValue::S(LAYOUT_SK.into()))
            .item("instancesIndexed", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(backend)?;
        Ok(Some(indexed))
    }

    async fn instances(&self, service: &ResourceName) -> Result<Vec<ServiceInstance>, StoreError> {
        self.instance_items(service)
            .await?
            .into_iter()
            .map(|item| Ok(from_item::<Keyed<ServiceInstance>>(item)?.record))
            .collect()
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

    async fn service_deployments(
        &self,
        service: &ResourceName,
        page: PageRequest,
    ) -> Result<Option<Page<Deployment>>, StoreError> {
        let done = self
            .get(LAYOUT_PK.into(), SERVICE_DEPLOYMENTS_SK)
            .await?
            .is_some_and(|item| item.get("done").is_some_and(|d| d.as_bool() == Ok(&true)));
        if !done {
            return Ok(None);
        }
        let pk = service_pk(service.as_str());
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
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .expression_attribute_values(":prefix", AttributeValue::S("DEPLOYMENT#".into()))
            .set_limit(page.limit.map(|l| l as i32))
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        let ids: Vec<String> = output
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| item.get("deploymentId")?.as_s().ok().cloned())
            .collect();
        let mut found = self.deployments_by_id(&ids).await?;
        Ok(Some(Page {
            items: ids.iter().filter_map(|id| found.remove(id)).collect(),
            cursor: encode_cursor(output.last_evaluated_key.as_ref()),
        }))
    }

    async fn index_deployments(&self) -> Result<Option<usize>, StoreError> {
        let marker = self.get(LAYOUT_PK.into(), SERVICE_DEPLOYMENTS_SK).await?;
        if marker
            .as_ref()
            .is_some_and(|item| item.get("done").is_some_and(|d| d.as_bool() == Ok(&true)))
        {
            return Ok(None);
        }
        let mut cursor = marker
            .as_ref()
            .and_then(|item| item.get("cursor")?.as_s().ok().cloned());
        let mut indexed = 0;
        let mut seen = 0;
        loop {
            let page = self
                .query_index::<Deployment>(
                    GSI2,
                    "DEPLOYMENTS".into(),
                    PageRequest {
                        limit: Some(100),
                        cursor: cursor.clone(),
                    },
                )
                .await?;
            seen += page.items.len();
            let pointers: Vec<Item> = page.items.iter().filter_map(deployment_pointer).collect();
            for chunk in pointers.chunks(25) {
                use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
                let mut requests: Vec<WriteRequest> = chunk
                    .iter()
                    .map(|item| {
                        WriteRequest::builder()
                            .put_request(
                                PutRequest::builder()
                                    .set_item(Some(item.clone()))
                                    .build()
                                    .expect("item is set"),
                            )
                            .build()
                    })
                    .collect();
                let mut attempt = 0u32;
                while !requests.is_empty() {
                    let output = self
                        .client
                        .batch_write_item()
                        .request_items(&self.table, requests)
                        .send()
                        .await
                        .map_err(backend)?;
                    requests = output
                        .unprocessed_items
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default();
                    if !requests.is_empty() {
                        attempt += 1;
                        if attempt > TRANSACT_RETRIES {
                            return Err(StoreError::Throttled(
                                "BatchWriteItem left items unprocessed".into(),
                            ));
                        }
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                }
                indexed += chunk.len();
            }
            cursor = page.cursor;
            let mut marker = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", AttributeValue::S(LAYOUT_PK.into()))
                .item("sk", AttributeValue::S(SERVICE_DEPLOYMENTS_SK.into()));
            marker = match &cursor {
                None => marker.item("done", AttributeValue::Bool(true)),
                Some(c) => marker.item("cursor", AttributeValue::S(c.clone())),
            };
            marker.send().await.map_err(backend)?;
            if cursor.is_none() || seen >= INDEX_BATCH {
                return Ok(Some(indexed));
            }
        }
    }

    async fn expire_deployment(&self, id: &str, at: u64) -> Result<(), StoreError> {
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(deployment_pk(id), DEPLOYMENT_SK)))
            .update_expression("SET expiresAt = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":at", AttributeValue::N(at.to_string()))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(backend(error)),
        }
    }

    async fn change(&self, change: DeploymentChange) -> Result<(), StoreError> {
        let mut items = Vec::new();
        for check in change.environment_checks {
            items.push(self.check(
                environment_pk(check.name.as_str()),
                ENVIRONMENT_SK,
                Condition::Rev(check.rev),
            ));
        }
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
            if let DeploymentWrite::Create(d) = &write
                && let Some(pointer) = deployment_pointer(d)
            {
                items.push(self.put_any(pointer));
            }
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
