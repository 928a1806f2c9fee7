//! Status changes on an EventBridge bus, shaped like Proton's. The source is `paved.proton`:
//! EventBridge reserves sources starting with `aws.` for AWS itself.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::domain::push::{PUSH_DETAIL_TYPE, PUSH_SOURCE, Push, event_detail};
use crate::ports::{BoxError, Events, StatusChange};

pub const SOURCE: &str = "paved.proton";
/// The source of the fleet's own events (upgrades, drift), which Proton never had.
pub const FLEET_SOURCE: &str = "paved.fleet";

pub struct EventBridgeEvents {
    client: Client,
    bus: String,
}

impl EventBridgeEvents {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl Events for EventBridgeEvents {
    async fn publish(&self, change: StatusChange) -> Result<(), BoxError> {
        let mut detail = serde_json::json!({
            "name": change.name,
            "status": change.status,
            "previousStatus": change.previous_status,
        });
        if let Some(by) = &change.initiated_by {
            detail["initiatedBy"] = serde_json::json!(by);
        }
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(format!("AWS Proton {} Status Change", change.resource))
            .resources(change.arn)
            .detail(detail.to_string())
            .build();
        self.put(entry).await
    }

    async fn put_push(&self, push: &Push) -> Result<(), BoxError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(PUSH_SOURCE)
            .detail_type(PUSH_DETAIL_TYPE)
            .detail(event_detail(push).to_string())
            .build();
        self.put(entry).await
    }

    async fn publish_fleet(&self, event: crate::ports::FleetEvent) -> Result<(), BoxError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(FLEET_SOURCE)
            .detail_type(event.detail_type)
            .resources(event.resource_arn)
            .detail(event.detail.to_string())
            .build();
        self.put(entry).await
    }
}

impl EventBridgeEvents {
    async fn put(&self, entry: PutEventsRequestEntry) -> Result<(), BoxError> {
        let output = self.client.put_events().entries(entry).send().await?;
        if output.failed_entry_count > 0 {
            let reason = output
                .entries
                .unwrap_or_default()
                .into_iter()
                .find_map(|e| e.error_message)
                .unwrap_or_else(|| "rejected".into());
            return Err(format!("event not accepted: {reason}").into());
        }
        Ok(())
    }
}
