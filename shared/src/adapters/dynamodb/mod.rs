//! paved's records in one DynamoDB table: the catalog (`catalog`), and what is deployed with
//! its deployments, tokens and webhook deliveries (`deployments`). Access patterns (no Scan
//! anywhere):
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
//! | every instance                       | GSI `gsi2`: `gsi2pk = INSTANCES#<00..15>` (a hash of the names), `gsi2sk = <service>#<instance>`; complete once `pk = ACCOUNT`, `sk = #LAYOUT` exists (the sweep indexes instances written before) |
//! | get a component / list components    | `pk = COMPONENT#<name>`, `sk = #COMPONENT`; GSI `gsi1`: `gsi1pk = COMPONENTS` |
//! | components in an environment         | GSI `gsi2`: `gsi2pk = COMPONENTS#ENVIRONMENT#<environment>`, `gsi2sk = name` |
//! | services that track a repository branch | GSI `gsi2`: `gsi2pk = REPOSITORY#<len>#<repository>#<branch>`, `gsi2sk = name` |
//! | webhook deliveries seen (replays)    | `pk = DELIVERY#<sha256 of body>`, `sk = #DELIVERY`, TTL `expiresAt` |
//!
//! Every item carries `rev`; writes go through TransactWriteItems with `attribute_not_exists(pk)`
//! for creates and `rev = :expected` for replaces and deletes, so no update is ever lost.

mod access;
mod catalog;
mod deployments;
mod fleet;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ScalarAttributeType,
    TimeToLiveSpecification, TransactWriteItem,
};
use serde::{Deserialize, Serialize};

use crate::ports::StoreError;

type Item = HashMap<String, AttributeValue>;

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

    /// Every item of a partition (whose sort key starts with `prefix`), read consistently,
    /// past 1 MB.
    async fn partition(&self, pk: String, prefix: Option<&str>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start);
            query = match prefix {
                Some(prefix) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", AttributeValue::S(prefix.into())),
                None => query.key_condition_expression("pk = :pk"),
            };
            let output = query.send().await.map_err(backend)?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
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

    /// Puts an item whatever is there (items whose content their key decides, and items only
    /// their owner writes alongside a conditioned one).
    fn put_any(&self, item: Item) -> TransactWriteItem {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .expect("table and item are set");
        TransactWriteItem::builder().put(put).build()
    }

    /// A condition on an item that the transaction does not write.
    fn check(&self, pk: String, sk: &str, condition: Condition) -> TransactWriteItem {
        let (expression, values) = condition.parts();
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .condition_expression(expression)
            .set_expression_attribute_values(values)
            .build()
            .expect("table, key and condition are set");
        TransactWriteItem::builder().condition_check(check).build()
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
