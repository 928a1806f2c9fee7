//! The webhook deliveries paved has seen, so that a replayed delivery is refused.

use async_trait::async_trait;

use super::StoreError;

#[async_trait]
pub trait Deliveries: Send + Sync {
    /// Remembers a webhook delivery until `expires_at` (seconds since the epoch); `false` if it
    /// was remembered already (a replay).
    async fn remember_delivery(&self, key: &str, expires_at: u64) -> Result<bool, StoreError>;
    /// Forgets a delivery that could not be handled, so that its retry is not a replay.
    async fn forget_delivery(&self, key: &str) -> Result<(), StoreError>;
}
