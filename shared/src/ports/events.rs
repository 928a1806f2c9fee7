//! Status changes and pushes on the event bus.

use async_trait::async_trait;

use super::BoxError;

/// A status change, published as Proton did (`source: aws.proton`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub resource: &'static str,
    pub name: String,
    pub arn: String,
    pub status: String,
    pub previous_status: Option<String>,
    /// Who caused the change, when a caller did.
    pub initiated_by: Option<crate::domain::access::Initiator>,
}

#[async_trait]
pub trait Events: Send + Sync {
    async fn publish(&self, change: StatusChange) -> Result<(), BoxError>;
    /// Puts a push on the bus as paved's push event, for the push rule to route.
    async fn put_push(&self, push: &crate::domain::push::Push) -> Result<(), BoxError>;
    /// Puts one of the fleet's own events on the bus (upgrades, drift), source `paved.fleet`.
    async fn publish_fleet(&self, event: FleetEvent) -> Result<(), BoxError>;
}

/// An event of the fleet: an upgrade's status change, drift found on a target.
#[derive(Debug, Clone)]
pub struct FleetEvent {
    pub detail_type: &'static str,
    pub resource_arn: String,
    pub detail: serde_json::Value,
}
