//! Who is calling. In AWS, API Gateway verifies the caller's SigV4 signature (IAM
//! authorization) and hands paved the principal (see `lambda.rs`); locally, `paved dev`
//! verifies signatures itself against the identities it created ([`LocalKeys`]). Either way a
//! request without a verified principal is refused with the 403 AWS gives for its fault, and
//! nothing is done.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use axum::http::{Extensions, HeaderMap, Method, Uri};

use crate::domain::access::{Caller, Principal};

/// What authentication sees of a request.
pub struct RequestHead<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub extensions: &'a Extensions,
    pub body: &'a [u8],
    pub request_id: &'a str,
}

pub trait Authenticate: Send + Sync {
    fn authenticate(&self, request: &RequestHead<'_>) -> Result<Caller, Unauthenticated>;
}

/// Why a request has no verified caller, worded as AWS words it (API Gateway and the AWS JSON
/// services answer each of these with 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthenticated {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("{0}")]
    Incomplete(String),
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    BadSignature,
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - 5 min.)")]
    Expired {
        signed: String,
        earliest: String,
        now: String,
    },
    #[error("Signature not yet current: {signed} is still later than {latest} ({now} + 5 min.)")]
    NotYetCurrent {
        signed: String,
        latest: String,
        now: String,
    },
    #[error("{0}")]
    Scope(String),
}

impl Unauthenticated {
    /// The error type AWS sends (`__type`, `x-amzn-ErrorType`).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Missing => "MissingAuthenticationTokenException",
            Self::Incomplete(_) => "IncompleteSignatureException",
            Self::UnknownKey => "UnrecognizedClientException",
            Self::BadSignature
            | Self::Expired { .. }
            | Self::NotYetCurrent { .. }
            | Self::Scope(_) => "InvalidSignatureException",
        }
    }
}

/// How far a request's `X-Amz-Date` may be from the clock, as AWS allows.
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// The signing names paved accepts: `proton` (the stock clients) and `execute-api` (what API
/// Gateway verifies in AWS, and what clients set up with `paved client setup` sign for).
pub const SIGNING_NAMES: &[&str] = &["proton", "execute-api"];

/// An identity `paved dev` knows: its principal and its secret key.
#[derive(Debug, Clone)]
pub struct LocalIdentity {
    pub principal: Principal,
    pub secret_access_key: String,
}

/// SigV4 verification against local identities, by access key id.
pub struct LocalKeys {
    region: String,
    identities: HashMap<String, LocalIdentity>,
    clock: fn() -> SystemTime,
}

impl LocalKeys {
    pub fn new(region: impl Into<String>, identities: HashMap<String, LocalIdentity>) -> Self {
        Self {
            region: region.into(),
            identities,
            clock: SystemTime::now,
        }
    }

    #[cfg(test)]
    pub fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = clock;
        self
    }

    fn verify(&self, request: &RequestHead<'_>) -> Result<Principal, Unauthenticated> {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let Some(authorization) = header("authorization") else {
            return Err(Unauthenticated::Missing);
        };
        let signed = Authorization::parse(authorization)?;
        let scope: Vec<&str> = signed.credential.split('/').collect();
        let [key_id, date, region, service, "aws4_request"] = scope[..] else {
            return Err(Unauthenticated::Incomplete(format!(
                "Credential={} is not <key>/<date>/<region>/<service>/aws4_request",
                signed.credential
            )));
        };
        let Some(amz_date) = header("x-amz-date") else {
            return Err(Unauthenticated::Incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                    .into(),
            ));
        };
        let time = parse_amz_date(amz_date).ok_or_else(|| {
            Unauthenticated::Incomplete(format!(
                "X-Amz-Date {amz_date:?} is not YYYYMMDD'T'HHMMSS'Z'"
            ))
        })?;
        let Some(identity) = self.identities.get(key_id) else {
            return Err(Unauthenticated::UnknownKey);
        };
        if !amz_date.starts_with(date) {
            return Err(Unauthenticated::Scope(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{}'",
                &amz_date[..8.min(amz_date.len())]
            )));
        }
        if region != self.region {
            return Err(Unauthenticated::Scope(format!(
                "Credential should be scoped to a valid region, not '{region}'. paved's region is '{}'.",
                self.region
            )));
        }
        if !SIGNING_NAMES.contains(&service) {
            return Err(Unauthenticated::Scope(format!(
                "Credential should be scoped to correct service: 'proton' or 'execute-api', not '{service}'."
            )));
        }
        let now = (self.clock)();
        let format = |t: SystemTime| format_amz_date(t);
        if time + MAX_SKEW < now {
            return Err(Unauthenticated::Expired {
                signed: amz_date.to_string(),
                earliest: format(now - MAX_SKEW),
                now: format(now),
            });
        }
        if time > now + MAX_SKEW {
            return Err(Unauthenticated::NotYetCurrent {
                signed: amz_date.to_string(),
                latest: format(now + MAX_SKEW),
                now: format(now),
            });
        }
        let expected = signature(request, &signed, identity, region, service, time)?;
        if !same(expected.as_bytes(), signed.signature.as_bytes()) {
            return Err(Unauthenticated::BadSignature);
        }
        Ok(identity.principal.clone())
    }
}

impl Authenticate for LocalKeys {
    fn authenticate(&self, request: &RequestHead<'_>) -> Result<Caller, Unauthenticated> {
        let principal = self.verify(request)?;
        let source_ip = request
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip().to_string());
        Ok(Caller {
            principal,
            source_ip,
            request_id: request.request_id.to_string(),
        })
    }
}

/// `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=a;b, Signature=hex`.
struct Authorization<'a> {
    credential: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

impl<'a> Authorization<'a> {
    fn parse(value: &'a str) -> Result<Self, Unauthenticated> {
        let Some(rest) = value.strip_prefix("AWS4-HMAC-SHA256 ") else {
            return Err(Unauthenticated::Incomplete(
                "Authorization header is not AWS4-HMAC-SHA256 (paved verifies Signature Version 4)"
                    .into(),
            ));
        };
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed_headers = Some(v.split(';').collect::<Vec<_>>());
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            }
        }
        match (credential, signed_headers, signature) {
            (Some(credential), Some(signed_headers), Some(signature)) => Ok(Self {
                credential,
                signed_headers,
                signature,
            }),
            _ => Err(Unauthenticated::Incomplete(format!(
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters. Authorization={value}"
            ))),
        }
    }
}

/// The signature the client must have computed: the SDKs' own signer, given exactly the
/// headers the client says it signed.
fn signature(
    request: &RequestHead<'_>,
    signed: &Authorization<'_>,
    identity: &LocalIdentity,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<String, Unauthenticated> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4::SigningParams;

    if !signed.signed_headers.contains(&"host") {
        return Err(Unauthenticated::Incomplete(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let mut headers = vec![];
    for name in &signed.signed_headers {
        for value in request.headers.get_all(*name) {
            let value = value.to_str().map_err(|_| Unauthenticated::BadSignature)?;
            headers.push((*name, value));
        }
    }
    let token = request
        .headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok());
    let credentials = aws_credential_types::Credentials::new(
        "local",
        identity.secret_access_key.clone(),
        token.map(str::to_string),
        None,
        "paved-dev",
    );
    let identity = credentials.into();
    let mut settings = SigningSettings::default();
    // Sign exactly what the client signed: nothing left out, nothing added.
    settings.excluded_headers = Some(vec![]);
    let params = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|_| Unauthenticated::BadSignature)?
        .into();
    let uri = request
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let host = request
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let signable = SignableRequest::new(
        request.method.as_str(),
        format!("http://{host}{uri}"),
        headers.into_iter(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|_| Unauthenticated::BadSignature)?;
    let output = sign(signable, &params).map_err(|_| Unauthenticated::BadSignature)?;
    Ok(output.signature().to_string())
}

/// Signs a request as the AWS SDKs do (for paved's own clients, tests and benchmarks): the
/// headers to add, `x-amz-date` and `authorization`. `headers` must include `host`.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4::SigningParams;
    let credentials = aws_credential_types::Credentials::new(key_id, secret, None, None, "paved");
    let identity = credentials.into();
    let params = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// Compares without stopping at the first difference, so timing tells nothing of the signature.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `20261201T110000Z` → a time, through the extended form AWS's date parser reads.
fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let b = value.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let extended = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &value[0..4],
        &value[4..6],
        &value[6..8],
        &value[9..11],
        &value[11..13],
        &value[13..15]
    );
    let parsed = aws_smithy_types::DateTime::from_str(
        &extended,
        aws_smithy_types::date_time::Format::DateTime,
    )
    .ok()?;
    SystemTime::try_from(parsed).ok()
}

fn format_amz_date(time: SystemTime) -> String {
    let formatted = aws_smithy_types::DateTime::from(time)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    // 2026-12-01T11:00:00Z (or with fractions) → 20261201T110000Z
    let digits: String = formatted
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{digits}Z")
}

#[cfg(test)]
mod tests;
