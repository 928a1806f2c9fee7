//! Serving paved's routers as API Gateway invokes them through Lambda. A REST API puts its
//! stage in front of every path (`/v1/` for the API's `/`), and `lambda_http` hands the router
//! that path; the routers serve paths without it, so the stage is taken off first. And
//! `lambda_http` base64-encodes any body whose content type it does not know as text, which
//! Proton's `application/x-amz-json-1.0` is: API Gateway would pass that base64 on to clients
//! (a REST API decodes it only for its binary media types), so every answer is marked text.

use axum::Router;
use axum::http::{HeaderValue, Uri};
use axum::response::Response;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use tower::ServiceBuilder;

/// The request with its API Gateway stage taken off the front of its path.
pub fn without_stage(mut request: Request) -> Request {
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| !s.is_empty() && s != "$default") else {
        return request;
    };
    let uri = request.uri();
    let Some(rest) = uri.path().strip_prefix(&format!("/{stage}")) else {
        return request;
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return request;
    }
    let path = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    match path_and_query.parse() {
        Ok(parsed) => parts.path_and_query = Some(parsed),
        Err(_) => return request,
    }
    if let Ok(stripped) = Uri::from_parts(parts) {
        *request.uri_mut() = stripped;
    }
    request
}

/// Marks an answer's body as text for `lambda_http`, whatever its content type.
pub fn as_text(mut response: Response) -> Response {
    response.headers_mut().insert(
        "x-lambda-http-content-encoding",
        HeaderValue::from_static("text"),
    );
    response
}

/// The caller API Gateway verified. The API's methods use IAM authorization, so API Gateway
/// has checked the SigV4 signature (signing name `execute-api`) and the caller's permission to
/// invoke the API before Lambda runs; it hands over the principal in the request context
/// (`requestContext.identity.userArn`). A request without one did not come through such a
/// method and is refused.
pub struct ApiGatewayIdentity;

impl crate::api::Authenticate for ApiGatewayIdentity {
    fn authenticate(
        &self,
        request: &crate::api::authn::RequestHead<'_>,
    ) -> Result<crate::domain::access::Caller, crate::api::Unauthenticated> {
        let Some(RequestContext::ApiGatewayV1(context)) =
            request.extensions.get::<RequestContext>()
        else {
            return Err(crate::api::Unauthenticated::Missing);
        };
        let Some(arn) = context
            .identity
            .user_arn
            .clone()
            .filter(|a| a.starts_with("arn:"))
        else {
            return Err(crate::api::Unauthenticated::Missing);
        };
        Ok(crate::domain::access::Caller {
            principal: crate::domain::access::Principal::new(arn),
            source_ip: context.identity.source_ip.clone(),
            request_id: context
                .request_id
                .clone()
                .unwrap_or_else(|| request.request_id.to_string()),
        })
    }
}

/// Runs a router as the Lambda function behind an API Gateway REST API.
pub async fn serve(router: Router) -> Result<(), lambda_http::Error> {
    let service = ServiceBuilder::new()
        .map_request(without_stage)
        .map_response(as_text)
        .service(router);
    lambda_http::run(service).await
}
