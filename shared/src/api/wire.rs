//! Request parsing and response shaping for awsJson1_0.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::app::Error;
use crate::domain::error::chain;
use crate::ports::{PageRequest, StoreError};

/// The input of the operations that take just a resource `name`.
#[derive(serde::Deserialize)]
pub struct ByName {
    pub name: crate::domain::names::ResourceName,
}

/// The paging members of a listing's input.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

/// Everything a call can fail with: a use-case error, or a request the protocol refuses.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Domain(#[from] Error),
    #[error("the X-Amz-Target header names no operation of the Proton API")]
    UnknownOperation,
    #[error("paved does not implement {0} yet")]
    NotImplemented(String),
    /// A body the protocol cannot read: not JSON, or a member of the wrong JSON type.
    #[error("{0}")]
    Serialization(String),
}

impl ApiError {
    pub fn parts(&self) -> (u16, &'static str, String) {
        match self {
            Self::Domain(error) => proton_error(error),
            // As AWS answers an unknown awsJson target.
            Self::UnknownOperation => (400, "UnknownOperationException", self.to_string()),
            // Not retried by SDKs (they retry 500, 502, 503, 504), and says plainly what is missing.
            Self::NotImplemented(_) => (501, "NotImplementedException", self.to_string()),
            // As the AWS JSON protocols answer a body they cannot deserialize.
            Self::Serialization(_) => (400, "SerializationException", self.to_string()),
        }
    }
}

/// The one mapping of a use-case error to Proton's wire: (HTTP status, `__type`, message).
/// Internal failures stay opaque to the caller; their cause goes to the log.
pub fn proton_error(error: &Error) -> (u16, &'static str, String) {
    let (status, kind) = match error {
        Error::Validation(_) => (400, "ValidationException"),
        Error::NotFound(_) => (404, "ResourceNotFoundException"),
        Error::Conflict(_) | Error::Store(StoreError::ConditionFailed) => {
            (409, "ConflictException")
        }
        Error::QuotaExceeded(_) => (402, "ServiceQuotaExceededException"),
        Error::Throttled(_) | Error::Store(StoreError::Throttled(_)) => {
            (429, "ThrottlingException")
        }
        Error::AccessDenied(_) => (403, "AccessDeniedException"),
        Error::Store(_) | Error::Blob(_) | Error::Provision(_) => (500, "InternalServerException"),
    };
    let message = match error {
        _ if status == 500 => {
            "paved could not complete the request; the cause is in its log".into()
        }
        _ if status == 429 => "the request was throttled; retry with backoff".into(),
        Error::Store(StoreError::ConditionFailed) => {
            "the resource was changed by another request; read it again and retry".into()
        }
        other => other.to_string(),
    };
    (status, kind, message)
}

pub fn respond(result: Result<Value, ApiError>, operation: &str, request_id: &str) -> Response {
    let (status, body) = match result {
        Ok(body) => (200, body),
        Err(error) => {
            let (status, kind, message) = error.parts();
            if status >= 500 && status != 501 {
                tracing::error!(error = %chain(&error), "{operation} failed");
            } else {
                tracing::info!(kind, %message, "{operation} refused");
            }
            (status, json!({ "__type": kind, "message": message }))
        }
    };
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_string(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// A request with no verified caller: 403, the error type AWS uses for its fault.
pub fn unauthenticated(refusal: &super::Unauthenticated, request_id: &str) -> Response {
    let body = json!({ "__type": refusal.error_type(), "message": refusal.to_string() });
    let mut response = (StatusCode::FORBIDDEN, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    headers.insert(
        "x-amzn-errortype",
        HeaderValue::from_static(refusal.error_type()),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// Parses a request body; the error names the member that is wrong and why.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::Serialization(format!("the request body is not valid JSON: {inner}"));
        }
        let text = in_model_terms(&strip_position(&inner.to_string()));
        let message = if path == "." {
            text.clone()
        } else {
            format!("{path}: {text}")
        };
        if text.starts_with("invalid type") {
            ApiError::Serialization(message)
        } else {
            Error::validation(message).into()
        }
    })
}

/// serde's wording with the model's words for what it expected, never paved's own type names
/// (`expected struct EnvironmentListing` is `expected an object`).
fn in_model_terms(message: &str) -> String {
    let mut out = Vec::new();
    let mut words = message.split(' ').peekable();
    while let Some(word) = words.next() {
        match word {
            "struct" | "map" if out.last() == Some(&"expected") => {
                if word == "struct" {
                    words.next();
                }
                out.push("an object");
            }
            "enum" if out.last() == Some(&"expected") => {
                words.next();
                out.push("one of the values the model allows");
            }
            "tuple" if out.last() == Some(&"expected") => {
                words.next();
                words.next();
                out.push("a value");
            }
            "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64"
            | "i128" | "isize"
                if out.last() == Some(&"expected") =>
            {
                out.push("an integer");
            }
            "f32" | "f64" if out.last() == Some(&"expected") => out.push("a number"),
            "sequence" if out.last() == Some(&"a") => {
                out.pop();
                out.push("a list");
            }
            other => out.push(other),
        }
    }
    out.join(" ")
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

/// `maxResults` and `nextToken` of a listing, as the store takes them.
pub fn page(max_results: Option<i64>, next_token: Option<String>) -> Result<PageRequest, ApiError> {
    let limit = match max_results {
        None => None,
        Some(n) if (1..=100).contains(&n) => Some(n as u32),
        Some(n) => {
            return Err(Error::validation(format!("maxResults: must be 1 to 100, got {n}")).into());
        }
    };
    let cursor = next_token
        .map(|token| {
            base64::engine::general_purpose::STANDARD
                .decode(token.as_bytes())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| Error::validation("nextToken: not a token this listing issued"))
        })
        .transpose()?;
    Ok(PageRequest { limit, cursor })
}

pub fn next_token(cursor: Option<String>) -> Option<String> {
    cursor.map(|c| base64::engine::general_purpose::STANDARD.encode(c))
}

/// Drops null members, which Proton leaves out rather than sending.
pub fn compact(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.retain(|_, v| !v.is_null());
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_speak_of_json_and_the_model_not_of_rust_types() {
        for (serde, ours) in [
            (
                "invalid type: sequence, expected struct EnvironmentListing",
                "invalid type: sequence, expected an object",
            ),
            (
                "invalid type: string \"x\", expected i64",
                "invalid type: string \"x\", expected an integer",
            ),
            (
                "invalid type: map, expected a sequence",
                "invalid type: map, expected a list",
            ),
            (
                "invalid type: integer `5`, expected enum DeploymentType",
                "invalid type: integer `5`, expected one of the values the model allows",
            ),
        ] {
            assert_eq!(in_model_terms(serde), ours);
        }
    }
}
