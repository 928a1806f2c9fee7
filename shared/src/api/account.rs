//! Account settings (2 operations).

use serde_json::{Value, json};

use super::App;
use super::operations::Operation;
use super::wire::{ApiError, compact, parse};
use crate::app::account::{Effective, SettingsUpdate};

pub async fn dispatch(
    app: &App,
    operation: Operation,
    body: &[u8],
) -> Option<Result<Value, ApiError>> {
    let answer = |settings: Effective| {
        json!({ "accountSettings": compact(json!({
            "pipelineServiceRoleArn": settings.pipeline_service_role_arn,
        })) })
    };
    match operation {
        Operation::GetAccountSettings => Some(
            async {
                let _: serde_json::Map<String, Value> = parse(body)?;
                Ok(answer(app.account.get().await?))
            }
            .await,
        ),
        Operation::UpdateAccountSettings => Some(
            async {
                let update: SettingsUpdate = parse(body)?;
                Ok(answer(app.account.update(update).await?))
            }
            .await,
        ),
        _ => None,
    }
}
