//! The access document's versions: `pk = ACCESS`, `sk = VERSION#<20-digit version>`, each put
//! once (`attribute_not_exists`), the newest read by a descending query of one item; and the
//! account settings, `pk = ACCOUNT`, `sk = #SETTINGS`, written conditionally on their `rev`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::{DynamoStore, backend, corrupt, from_item, to_item};
use crate::domain::access::{AccessDocument, Initiator, StoredAccess};
use crate::ports::{AccessStore, StoreError};

const PK: &str = "ACCESS";

fn sk(version: u64) -> String {
    format!("VERSION#{version:020}")
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccessItem {
    pk: String,
    sk: String,
    version: u64,
    /// The document as JSON: the policy text is kept exactly as it was put.
    document: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_by: Option<Initiator>,
    updated_at: f64,
}

impl AccessItem {
    fn into_access(self) -> Result<StoredAccess, StoreError> {
        let document: AccessDocument =
            serde_json::from_str(&self.document).map_err(|e| corrupt(&self.sk, e))?;
        Ok(StoredAccess {
            version: self.version,
            document,
            updated_by: self.updated_by,
            updated_at: self.updated_at,
        })
    }
}

impl DynamoStore {
    async fn access_query(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredAccess>, StoreError> {
        let upper = match before {
            Some(before) => sk(before.saturating_sub(1)),
            None => sk(u64::MAX),
        };
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
            .expression_attribute_values(":pk", AttributeValue::S(PK.into()))
            .expression_attribute_values(":low", AttributeValue::S(sk(0)))
            .expression_attribute_values(":high", AttributeValue::S(upper))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 100) as i32)
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<AccessItem>(item)?.into_access())
            .collect()
    }
}

#[async_trait]
impl AccessStore for DynamoStore {
    async fn current(&self) -> Result<Option<StoredAccess>, StoreError> {
        Ok(self.access_query(None, 1).await?.into_iter().next())
    }

    async fn version(&self, version: u64) -> Result<Option<StoredAccess>, StoreError> {
        match self.get(PK.into(), &sk(version)).await? {
            Some(item) => Ok(Some(from_item::<AccessItem>(item)?.into_access()?)),
            None => Ok(None),
        }
    }

    async fn versions(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredAccess>, StoreError> {
        if before == Some(0) {
            return Ok(vec![]);
        }
        self.access_query(before, limit).await
    }

    async fn put(&self, access: StoredAccess) -> Result<(), StoreError> {
        let item = AccessItem {
            pk: PK.into(),
            sk: sk(access.version),
            version: access.version,
            document: serde_json::to_string(&access.document)
                .map_err(|e| corrupt("(new access document)", e))?,
            updated_by: access.updated_by,
            updated_at: access.updated_at,
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&item)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional(result)
    }
}

const ACCOUNT_PK: &str = "ACCOUNT";
const ACCOUNT_SK: &str = "#SETTINGS";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    settings: crate::domain::account::AccountSettings,
}

#[async_trait]
impl crate::ports::AccountStore for DynamoStore {
    async fn settings(&self) -> Result<crate::domain::account::AccountSettings, StoreError> {
        match self.get(ACCOUNT_PK.into(), ACCOUNT_SK).await? {
            Some(item) => Ok(from_item::<AccountItem>(item)?.settings),
            None => Ok(Default::default()),
        }
    }

    async fn put_settings(
        &self,
        settings: crate::domain::account::AccountSettings,
    ) -> Result<(), StoreError> {
        let previous = settings.rev.saturating_sub(1);
        let item = AccountItem {
            pk: ACCOUNT_PK.into(),
            sk: ACCOUNT_SK.into(),
            settings,
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&item)?))
            .condition_expression("attribute_not_exists(pk) OR rev = :rev")
            .expression_attribute_values(":rev", AttributeValue::N(previous.to_string()))
            .send()
            .await;
        conditional(result)
    }
}

/// A conditional put's outcome: a failed condition is `ConditionFailed`.
fn conditional<T>(
    result: Result<
        T,
        aws_sdk_dynamodb::error::SdkError<
            aws_sdk_dynamodb::operation::put_item::PutItemError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    >,
) -> Result<(), StoreError> {
    match result {
        Ok(_) => Ok(()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Err(StoreError::ConditionFailed)
        }
        Err(error) => Err(backend(error)),
    }
}
