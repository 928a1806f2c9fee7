//! Tags (3 operations): the customer's tags of any resource paved keeps a record of.

use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use super::operations::Operation;
use super::wire::{ApiError, compact, next_token, page, parse};
use crate::app::Error;
use crate::domain::names::{Tag, TagKey, Tags};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagRequest {
    resource_arn: String,
    tags: Tags,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UntagRequest {
    resource_arn: String,
    tag_keys: Vec<TagKey>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagListing {
    resource_arn: String,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// Pages of tags are cut after a key: the token names the last key listed.
const CURSOR_PREFIX: &str = "tags-after:";

pub async fn dispatch(
    app: &App,
    operation: Operation,
    body: &[u8],
) -> Option<Result<Value, ApiError>> {
    let tags = &app.tags;
    let result = async {
        Ok(match operation {
            Operation::TagResource => {
                let request: TagRequest = parse(body)?;
                tags.tag(&request.resource_arn, request.tags).await?;
                json!({})
            }
            Operation::UntagResource => {
                let request: UntagRequest = parse(body)?;
                tags.untag(&request.resource_arn, request.tag_keys).await?;
                json!({})
            }
            Operation::ListTagsForResource => {
                let listing: TagListing = parse(body)?;
                let request = page(listing.max_results, listing.next_token)?;
                let after = request
                    .cursor
                    .map(|c| {
                        c.strip_prefix(CURSOR_PREFIX)
                            .map(str::to_string)
                            .ok_or_else(|| {
                                ApiError::from(Error::validation(
                                    "nextToken: not a token this listing issued",
                                ))
                            })
                    })
                    .transpose()?;
                let mut all: Vec<Tag> = tags.list(&listing.resource_arn).await?.into_vec();
                all.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
                let rest: Vec<Tag> = all
                    .into_iter()
                    .filter(|t| after.as_deref().is_none_or(|a| t.key.as_str() > a))
                    .collect();
                let limit = request.limit.map_or(rest.len(), |l| l as usize);
                let cursor = (rest.len() > limit)
                    .then(|| format!("{CURSOR_PREFIX}{}", rest[limit - 1].key.as_str()));
                let listed: Vec<Value> = rest
                    .iter()
                    .take(limit)
                    .map(|t| json!({ "key": t.key, "value": t.value }))
                    .collect();
                compact(json!({ "tags": listed, "nextToken": next_token(cursor) }))
            }
            _ => return Err(None),
        })
    }
    .await;
    match result {
        Ok(value) => Some(Ok(value)),
        Err(Some(error)) => Some(Err(error)),
        Err(None) => None,
    }
}
