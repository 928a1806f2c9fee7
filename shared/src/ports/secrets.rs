//! Secrets (the webhook's).

use async_trait::async_trait;

use super::BoxError;

/// Reads secrets (the webhook secret).
#[async_trait]
pub trait Secrets: Send + Sync {
    async fn secret(&self, id: &str) -> Result<Vec<u8>, BoxError>;
}
