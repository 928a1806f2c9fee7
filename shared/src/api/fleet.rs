//! GetResourcesSummary.

use serde_json::{Value, json};

use super::App;
use super::operations::Operation;
use super::wire::{ApiError, compact, parse};
use crate::app::fleet::Counts;

fn counts(c: &Counts) -> Value {
    compact(json!({
        "total": c.total,
        "failed": c.failed,
        "upToDate": c.up_to_date,
        "behindMinor": c.behind_minor,
        "behindMajor": c.behind_major,
    }))
}

pub async fn dispatch(
    app: &App,
    operation: Operation,
    body: &[u8],
) -> Option<Result<Value, ApiError>> {
    if operation != Operation::GetResourcesSummary {
        return None;
    }
    Some(
        async {
            let _: serde_json::Map<String, Value> = parse(body)?;
            let s = app.fleet.summary().await?;
            Ok(json!({ "counts": {
                "environmentTemplates": counts(&s.environment_templates),
                "serviceTemplates": counts(&s.service_templates),
                "environments": counts(&s.environments),
                "services": counts(&s.services),
                "serviceInstances": counts(&s.service_instances),
                "pipelines": counts(&s.pipelines),
                "components": counts(&s.components),
            }}))
        }
        .await,
    )
}
