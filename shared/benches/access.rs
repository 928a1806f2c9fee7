//! What authentication and authorization add to a call: the same calls through the API router
//! with them on (SigV4 verified against local keys, the default personas decided by Cedar) and
//! off (a caller taken as given, one policy that permits everything), in memory, so that only
//! paved's own work is timed. Prints p50 and p99 per call and of each part on its own.
//!
//! `cargo bench -p paved-core --bench access` (`make bench-access`); PAVED_BENCH_ITERATIONS
//! sets the calls per figure (default 2000).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::http::Request;
use paved_core::adapters::cloudformation::{CloudFormation, ScriptedStacks};
use paved_core::adapters::memory::{
    MemoryBundleStore, MemoryStore, RecordingEvents, RecordingWorkflows, ScriptedPipelines,
};
use paved_core::api::authn::{
    Authenticate, LocalIdentity, LocalKeys, RequestHead, Unauthenticated, sign,
};
use paved_core::api::{App, Security, authz, router};
use paved_core::app::access::Access;
use paved_core::app::catalog::Catalog;
use paved_core::app::deploy::{ArnBuilder, Deployer, Provisioners};
use paved_core::domain::access::{AccessDocument, Caller, Principal};
use tower::ServiceExt;

const KEY: &str = "AKIABENCHPLATFORM001";
const SECRET: &str = "bench-secret";
const PLATFORM: &str = "arn:aws:iam::123456789012:user/paved-platform";

/// Authentication off: every request is the platform engineer's, unverified.
struct Trusting;

impl Authenticate for Trusting {
    fn authenticate(&self, request: &RequestHead<'_>) -> Result<Caller, Unauthenticated> {
        Ok(Caller {
            principal: Principal::new(PLATFORM),
            source_ip: None,
            request_id: request.request_id.to_string(),
        })
    }
}

fn app(on: bool) -> Arc<App> {
    let store = Arc::new(MemoryStore::default());
    let bundles = Arc::new(MemoryBundleStore::new("paved-bundles"));
    let deployer = Deployer {
        catalog: store.clone(),
        store: store.clone(),
        fleet: store.clone(),
        account: store.clone(),
        roles: None,
        bundles: bundles.clone(),
        workflows: Arc::new(RecordingWorkflows::default()),
        events: Arc::new(RecordingEvents::default()),
        provisioners: Provisioners::new(Arc::new(CloudFormation::new(Arc::new(
            ScriptedStacks::default(),
        )))),
        pipelines: Arc::new(ScriptedPipelines::default()),
        arns: ArnBuilder {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
        },
        pipeline_role_arn: None,
        proton_endpoint: None,
        instance_quota: 20,
        deployment_retention_days: 180,
        role_pattern: "*".into(),
    };
    let (authenticate, document): (Arc<dyn Authenticate>, AccessDocument) = if on {
        let identities = HashMap::from([(
            KEY.to_string(),
            LocalIdentity {
                principal: Principal::new(PLATFORM),
                secret_access_key: SECRET.into(),
            },
        )]);
        (
            Arc::new(LocalKeys::new("us-east-1", identities)),
            AccessDocument::personas(
                vec![PLATFORM.into()],
                vec!["arn:aws:iam::123456789012:user/dev-*".into()],
                vec!["arn:aws:iam::123456789012:role/auditor".into()],
                vec!["arn:aws:iam::123456789012:role/pipeline".into()],
            ),
        )
    } else {
        (
            Arc::new(Trusting),
            AccessDocument {
                groups: vec![],
                policies: "permit (principal, action, resource);".into(),
            },
        )
    };
    let access = Arc::new(Access::new(store.clone(), document, authz::actions()));
    let catalog = Catalog::new(store, bundles);
    Arc::new(App::new(
        catalog,
        deployer,
        Security {
            authenticate,
            access,
        },
    ))
}

const HEADERS: [(&str, &str); 2] = [
    ("host", "paved.bench"),
    ("content-type", "application/x-amz-json-1.0"),
];

fn request(operation: &str, body: &str, on: bool) -> Request<Body> {
    let target = format!("AwsProton20200720.{operation}");
    let mut headers: Vec<(&str, &str)> = HEADERS.to_vec();
    headers.push(("x-amz-target", &target));
    let mut builder = Request::post("/");
    for (name, value) in &headers {
        builder = builder.header(*name, *value);
    }
    if on {
        let signed = sign(
            "POST",
            "http://paved.bench/",
            &headers,
            body.as_bytes(),
            KEY,
            SECRET,
            "us-east-1",
            "proton",
            SystemTime::now(),
        )
        .expect("signed");
        for (name, value) in signed {
            builder = builder.header(name, value);
        }
    }
    builder.body(Body::from(body.to_string())).expect("request")
}

async fn call(app: &Arc<App>, request: Request<Body>) {
    let response = router(app.clone()).oneshot(request).await.expect("answer");
    assert!(
        response.status().is_success(),
        "the benchmark's calls succeed: {}",
        response.status()
    );
}

/// p50 and p99 of `samples` (microseconds).
fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

fn row(name: &str, samples: Vec<f64>) -> (f64, f64) {
    let (p50, p99) = percentiles(samples);
    println!("{name:58} {p50:9.1} {p99:9.1}");
    (p50, p99)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let iterations: usize = std::env::var("PAVED_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let calls = [
        ("GetEnvironmentTemplate", r#"{"name":"vpc"}"#),
        ("ListEnvironmentTemplates", r#"{}"#),
        (
            "UpdateEnvironmentTemplate",
            r#"{"name":"vpc","description":"benchmarked"}"#,
        ),
    ];
    println!("{iterations} calls per figure, microseconds\n");
    println!("{:58} {:>9} {:>9}", "", "p50", "p99");
    let mut worst_added_p99: f64 = 0.0;
    for (operation, body) in calls {
        let mut figures = Vec::new();
        for on in [false, true] {
            let app = app(on);
            call(
                &app,
                request("CreateEnvironmentTemplate", r#"{"name":"vpc"}"#, on),
            )
            .await;
            // Signed before the clock starts: the client's signing is not paved's work.
            let requests: Vec<_> = (0..iterations + 100)
                .map(|_| request(operation, body, on))
                .collect();
            let mut samples = Vec::with_capacity(iterations);
            for (i, request) in requests.into_iter().enumerate() {
                let start = Instant::now();
                call(&app, request).await;
                if i >= 100 {
                    samples.push(start.elapsed().as_secs_f64() * 1e6);
                }
            }
            let label = if on { "on" } else { "off" };
            figures.push(row(&format!("{operation}, auth {label}"), samples));
        }
        let added = (figures[1].0 - figures[0].0, figures[1].1 - figures[0].1);
        println!(
            "{:58} {:9.1} {:9.1}\n",
            format!("{operation}: added by auth"),
            added.0,
            added.1
        );
        worst_added_p99 = worst_added_p99.max(added.1);
    }

    // The parts on their own, for a call that names a record.
    let app = app(true);
    call(
        &app,
        request("CreateEnvironmentTemplate", r#"{"name":"vpc"}"#, true),
    )
    .await;
    let body = br#"{"name":"vpc","description":"benchmarked"}"#;
    let keys = LocalKeys::new(
        "us-east-1",
        HashMap::from([(
            KEY.to_string(),
            LocalIdentity {
                principal: Principal::new(PLATFORM),
                secret_access_key: SECRET.into(),
            },
        )]),
    );
    let (mut signing, mut verifying, mut asking, mut deciding) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..iterations {
        let start = Instant::now();
        let request = request(
            "UpdateEnvironmentTemplate",
            std::str::from_utf8(body).unwrap(),
            true,
        );
        signing.push(start.elapsed().as_secs_f64() * 1e6);
        let (parts, _) = request.into_parts();
        let head = RequestHead {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            extensions: &parts.extensions,
            body,
            request_id: "bench",
        };
        let start = Instant::now();
        let caller = keys.authenticate(&head).expect("verified");
        verifying.push(start.elapsed().as_secs_f64() * 1e6);
        let start = Instant::now();
        let requests = authz::requests(&app, "UpdateEnvironmentTemplate", body)
            .await
            .expect("requests");
        asking.push(start.elapsed().as_secs_f64() * 1e6);
        let start = Instant::now();
        app.access.check(&caller, &requests).await.expect("allowed");
        deciding.push(start.elapsed().as_secs_f64() * 1e6);
    }
    row("client: signing a request (not paved's work)", signing);
    row("paved: verifying its SigV4 signature", verifying);
    row(
        "paved: the access requests of the call (record lookups)",
        asking,
    );
    row("paved: deciding them (Cedar, default personas)", deciding);
    println!("\nworst p99 added per call: {worst_added_p99:.1} us (target: at most 1000 us)");
}
