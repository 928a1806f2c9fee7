use std::time::{Duration, SystemTime};

use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, Uri};

use super::*;
use crate::testing::callers;

const BODY: &[u8] = br#"{"name":"vpc"}"#;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000)
}

/// A request as a client signs it, then possibly changed on the way.
fn signed(key: &str, secret: &str, service: &str, time: SystemTime) -> HeaderMap {
    let base = [
        ("host", "127.0.0.1:4000"),
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", "AwsProton20200720.GetEnvironment"),
    ];
    let added = sign(
        "POST",
        "http://127.0.0.1:4000/",
        &base,
        BODY,
        key,
        secret,
        "us-east-1",
        service,
        time,
    )
    .unwrap();
    let mut headers = HeaderMap::new();
    for (k, v) in base {
        headers.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    for (k, v) in added {
        headers.insert(
            HeaderName::try_from(k).unwrap(),
            HeaderValue::try_from(v).unwrap(),
        );
    }
    headers
}

fn verify(headers: &HeaderMap, body: &[u8]) -> Result<Caller, Unauthenticated> {
    let keys = callers::keys().with_clock(now);
    let uri = Uri::from_static("/");
    let extensions = Extensions::new();
    keys.authenticate(&RequestHead {
        method: &Method::POST,
        uri: &uri,
        headers,
        extensions: &extensions,
        body,
        request_id: "r",
    })
}

fn good(service: &str) -> HeaderMap {
    signed(
        callers::DEVELOPER,
        &callers::secret(callers::DEVELOPER),
        service,
        now(),
    )
}

#[test]
fn a_request_signed_for_proton_or_execute_api_is_its_signers() {
    for service in ["proton", "execute-api"] {
        let caller = verify(&good(service), BODY).unwrap();
        assert_eq!(caller.principal.arn, callers::arn(callers::DEVELOPER));
    }
}

#[test]
fn each_fault_gets_the_error_type_aws_gives_it() {
    let kind = |headers: &HeaderMap, body: &[u8]| verify(headers, body).unwrap_err().error_type();
    // Unsigned.
    assert_eq!(
        kind(&HeaderMap::new(), BODY),
        "MissingAuthenticationTokenException"
    );
    // An access key nobody has.
    let unknown = signed("AKIANOBODYHASTHISKEY", "x", "proton", now());
    assert_eq!(kind(&unknown, BODY), "UnrecognizedClientException");
    // The right key with the wrong secret, and a body changed after signing.
    let forged = signed(callers::DEVELOPER, "not-the-secret", "proton", now());
    assert_eq!(kind(&forged, BODY), "InvalidSignatureException");
    assert_eq!(
        kind(&good("proton"), br#"{"name":"prod"}"#),
        "InvalidSignatureException"
    );
    // A header changed after signing.
    let mut retargeted = good("proton");
    retargeted.insert(
        "x-amz-target",
        HeaderValue::from_static("AwsProton20200720.DeleteEnvironment"),
    );
    assert_eq!(kind(&retargeted, BODY), "InvalidSignatureException");
    // Signed six minutes ago (a replay), or six minutes ahead.
    let secret = callers::secret(callers::DEVELOPER);
    let late = signed(
        callers::DEVELOPER,
        &secret,
        "proton",
        now() - Duration::from_secs(360),
    );
    let error = verify(&late, BODY).unwrap_err();
    assert_eq!(error.error_type(), "InvalidSignatureException");
    assert!(
        error.to_string().starts_with("Signature expired: "),
        "{error}"
    );
    let early = signed(
        callers::DEVELOPER,
        &secret,
        "proton",
        now() + Duration::from_secs(360),
    );
    assert!(
        verify(&early, BODY)
            .unwrap_err()
            .to_string()
            .starts_with("Signature not yet current")
    );
    // Four minutes late is within the skew AWS allows.
    let recent = signed(
        callers::DEVELOPER,
        &secret,
        "proton",
        now() - Duration::from_secs(240),
    );
    assert!(verify(&recent, BODY).is_ok());
    // Another service's signature, and a malformed header.
    let s3 = signed(callers::DEVELOPER, &secret, "s3", now());
    assert_eq!(kind(&s3, BODY), "InvalidSignatureException");
    let mut malformed = good("proton");
    malformed.insert(
        "authorization",
        HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=x"),
    );
    assert_eq!(kind(&malformed, BODY), "IncompleteSignatureException");
}

#[test]
fn amz_dates_read_and_print_as_aws_writes_them() {
    let time = parse_amz_date("20261201T110203Z").unwrap();
    assert_eq!(format_amz_date(time), "20261201T110203Z");
    assert!(parse_amz_date("2026-12-01T11:02:03Z").is_none());
    assert!(parse_amz_date("20261301T110203Z").is_none());
}
