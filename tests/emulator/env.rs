//! The test environment: SDK clients on the emulator, one fresh table per test.

use aws_config::SdkConfig;
use paved_core::adapters::dynamodb::{DynamoStore, ensure_table};

pub struct TestEnv {
    pub sdk: SdkConfig,
    pub table: String,
}

impl TestEnv {
    pub async fn new() -> Self {
        let endpoint = std::env::var("PAVED_TEST_AWS_ENDPOINT")
            .expect("PAVED_TEST_AWS_ENDPOINT is not set: run these tests through `make test`");
        let sdk = paved_core::config::local_sdk_config(&endpoint, "us-east-1").await;
        let table = format!("paved-test-{}", uuid::Uuid::new_v4());
        ensure_table(&aws_sdk_dynamodb::Client::new(&sdk), &table)
            .await
            .expect("table created");
        Self { sdk, table }
    }

    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&self.sdk), &self.table)
    }
}
