//! A staged fleet upgrade of 1,000 service instances against scripted fakes with latencies:
//! the upgrade's own execution (`advanceUpgrade` checks) and every target's deploy execution
//! run through the project's state machine definitions, their Wait states sleeping for real,
//! the CloudFormation fake taking the engine's time per stack update (10 s), DynamoDB calls
//! 5 ms and CloudFormation calls 80 ms. Prints paved's own time per target (time inside task
//! steps, less the fakes' latency), the AWS calls per target, and the upgrade's wall time
//! against ceil(targets / concurrency) × the engine's time.
//!
//! `cargo bench -p paved-core --features testing --bench fleet` (`make bench-fleet`, about 5
//! minutes); PAVED_BENCH_INSTANCES (default 1000), PAVED_BENCH_CONCURRENCY (default 50, the
//! most an upgrade takes) and PAVED_BENCH_ENGINE_SECONDS (default 10) change it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use paved_core::app::catalog::{
    Catalog, NewTemplate, NewVersion, S3Source, VersionChange, VersionSource,
};
use paved_core::app::deploy::TaskError;
use paved_core::app::environments::{Environments, NewEnvironment};
use paved_core::app::services::{NewService, Services};
use paved_core::app::tasks::Tasks;
use paved_core::app::upgrades::{UpgradeRequest, Upgrades};
use paved_core::domain::names::{Arn, ResourceName, S3Bucket, S3Key, VersionPart};
use paved_core::domain::template::{
    CompatibleEnvironmentTemplate, Provisioning, TemplateKind, VersionStatus,
};
use paved_core::ports::Workflow;
use paved_core::testing::{Engine, Fakes, execute, execute_waiting, machine};
use serde_json::{Value as Json, json};

const ENVIRONMENTS: usize = 10;
const DYNAMODB_MS: f64 = 5.0;
const CLOUDFORMATION_MS: f64 = 80.0;

const MANIFEST: &str = "infrastructure:\n  templates:\n    - file: cloudformation.yaml\n      rendering_engine: jinja\n      template_language: cloudformation\n";
const ENV_SCHEMA: &str = "schema:\n  format:\n    openapi: \"3.0.0\"\n  environment_input_type: In\n  types:\n    In:\n      type: object\n      properties:\n        cidr:\n          type: string\n          default: 10.0.0.0/16\n";
const ENV_TEMPLATE: &str = "Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Properties:\n      CidrBlock: '{{ environment.inputs.cidr }}'\nOutputs:\n  VpcId:\n    Value: !Ref Vpc\n";
const SVC_SCHEMA: &str = "schema:\n  format:\n    openapi: \"3.0.0\"\n  service_input_type: In\n  types:\n    In:\n      type: object\n      properties:\n        port:\n          type: number\n          default: 80\n";
const INSTANCE: &str = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: '{{ service.name }}-{{ service_instance.name }}'\n      Tags:\n        - Key: vpc\n          Value: '{{ environment.outputs.VpcId }}'\n        - Key: port\n          Value: '{{ service_instance.inputs.port }}'\n";

fn pack(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, text) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_path(path).unwrap();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, text.as_bytes()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn name(text: &str) -> ResourceName {
    ResourceName::parse(text).unwrap()
}

fn env_var(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn source(key: &str) -> VersionSource {
    VersionSource {
        s3: Some(S3Source {
            bucket: S3Bucket::parse("src").unwrap(),
            key: S3Key::parse(key).unwrap(),
        }),
    }
}

/// Time spent inside task steps, and in how many.
#[derive(Default)]
struct Timing {
    nanos: AtomicU64,
    steps: AtomicU64,
}

impl Timing {
    async fn run(&self, tasks: &Tasks, payload: Json) -> Result<Json, TaskError> {
        let started = Instant::now();
        let answer = tasks.run(payload).await;
        self.nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.steps.fetch_add(1, Ordering::Relaxed);
        answer
    }
}

async fn publish(
    catalog: &Catalog,
    kind: TemplateKind,
    template: &str,
    key: &str,
    compatible: Option<&str>,
    first: bool,
) {
    let (_, version) = catalog
        .create_version(
            kind,
            NewVersion {
                client_token: None,
                template_name: name(template),
                description: None,
                major_version: (!first).then_some(VersionPart(1)),
                source: source(key),
                tags: Default::default(),
                compatible_environment_templates: compatible.map(|env| {
                    vec![CompatibleEnvironmentTemplate {
                        template_name: name(env),
                        major_version: VersionPart(1),
                    }]
                }),
                supported_component_sources: None,
            },
        )
        .await
        .unwrap();
    catalog
        .update_version(
            kind,
            VersionChange {
                template_name: name(template),
                major_version: VersionPart(1),
                minor_version: VersionPart(version.number.minor),
                description: None,
                status: Some(VersionStatus::Published),
                compatible_environment_templates: None,
                supported_component_sources: None,
            },
        )
        .await
        .unwrap();
}

/// Runs, at once (no waits, no latency), every deploy execution started since `seen`.
async fn settle(fakes: &Fakes, tasks: &Tasks, seen: &mut usize) {
    loop {
        let started: Vec<(Workflow, String)> =
            fakes.workflows.started.lock().unwrap()[*seen..].to_vec();
        if started.is_empty() {
            return;
        }
        *seen += started.len();
        for (workflow, id) in started {
            if workflow == Workflow::Deploy {
                let input = json!({ "deploymentId": id, "pollSeconds": 0 });
                let _ = execute(&machine("deploy"), input, |p| tasks.run(p)).await;
            }
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let instances = env_var("PAVED_BENCH_INSTANCES", 1000) as usize;
    let concurrency = env_var("PAVED_BENCH_CONCURRENCY", 50) as u32;
    let engine_seconds = env_var("PAVED_BENCH_ENGINE_SECONDS", 10);
    let second = Duration::from_secs(1);
    let services = instances.div_ceil(ENVIRONMENTS);

    let fakes = Fakes::new("src");
    let deployer = fakes.deployer(Engine::CloudFormation);
    let tasks = Arc::new(Tasks::new(deployer.clone()));
    let catalog = Catalog::new(fakes.store.clone(), fakes.bundles.clone());
    fakes.bundles.put(
        "src",
        "net.tar.gz",
        pack(&[
            ("schema/schema.yaml", ENV_SCHEMA),
            ("infrastructure/manifest.yaml", MANIFEST),
            ("infrastructure/cloudformation.yaml", ENV_TEMPLATE),
        ]),
    );
    for (key, extra) in [
        ("web-1.0.tar.gz", ""),
        ("web-1.1.tar.gz", "  Dlq:\n    Type: AWS::SQS::Queue\n"),
    ] {
        fakes.bundles.put(
            "src",
            key,
            pack(&[
                ("schema/schema.yaml", SVC_SCHEMA),
                ("instance_infrastructure/manifest.yaml", MANIFEST),
                (
                    "instance_infrastructure/cloudformation.yaml",
                    &format!("{INSTANCE}{extra}"),
                ),
            ]),
        );
    }
    let setup = Instant::now();
    for (kind, template) in [
        (TemplateKind::Environment, "net"),
        (TemplateKind::Service, "web"),
    ] {
        catalog
            .create_template(
                kind,
                NewTemplate {
                    name: name(template),
                    display_name: None,
                    description: None,
                    encryption_key: None,
                    provisioning: (kind == TemplateKind::Service)
                        .then_some(Provisioning::CustomerManaged),
                    tags: Default::default(),
                },
            )
            .await
            .unwrap();
    }
    publish(
        &catalog,
        TemplateKind::Environment,
        "net",
        "net.tar.gz",
        None,
        true,
    )
    .await;
    publish(
        &catalog,
        TemplateKind::Service,
        "web",
        "web-1.0.tar.gz",
        Some("net"),
        true,
    )
    .await;
    let environments = Environments::new(deployer.clone());
    let mut seen = 0;
    for e in 0..ENVIRONMENTS {
        environments
            .create(NewEnvironment {
                tags: Default::default(),
                name: name(&format!("env-{e:02}")),
                template_name: name("net"),
                template_major_version: VersionPart(1),
                template_minor_version: None,
                spec: "proton: EnvironmentSpec\nspec: {}\n".into(),
                proton_service_role_arn: Some(
                    Arn::parse("arn:aws:iam::123456789012:role/proton").unwrap(),
                ),
                component_role_arn: None,
                description: None,
                unsupported: Default::default(),
            })
            .await
            .unwrap();
    }
    settle(&fakes, &tasks, &mut seen).await;
    let service_api = Services::new(deployer.clone());
    let mut made = 0;
    for s in 0..services {
        let count = (instances - made).min(ENVIRONMENTS);
        made += count;
        let entries: String = (0..count)
            .map(|e| format!("  - name: i{e:02}\n    environment: env-{e:02}\n"))
            .collect();
        service_api
            .create(NewService {
                name: name(&format!("svc-{s:04}")),
                template_name: name("web"),
                template_major_version: VersionPart(1),
                template_minor_version: None,
                spec: format!("proton: ServiceSpec\ninstances:\n{entries}"),
                description: None,
                repository_connection_arn: None,
                repository_id: None,
                branch_name: None,
                tags: Default::default(),
            })
            .await
            .unwrap();
        settle(&fakes, &tasks, &mut seen).await;
    }
    publish(
        &catalog,
        TemplateKind::Service,
        "web",
        "web-1.1.tar.gz",
        Some("net"),
        false,
    )
    .await;
    eprintln!(
        "fleet ready: {instances} instances of {services} services in {ENVIRONMENTS} environments ({:.1} s)",
        setup.elapsed().as_secs_f64()
    );

    // From here on, AWS is as slow as AWS, and stacks take the engine's time.
    fakes
        .store
        .set_latency(Duration::from_secs_f64(DYNAMODB_MS / 1000.0));
    *fakes.stacks.latency.lock().unwrap() =
        Some(Duration::from_secs_f64(CLOUDFORMATION_MS / 1000.0));
    *fakes.stacks.engine_time.lock().unwrap() = Some(Duration::from_secs(engine_seconds));
    let store_before = fakes.store.calls.load(Ordering::Relaxed);
    let stacks_before = fakes.stacks.api_calls.load(Ordering::Relaxed);
    let events_before = fakes.events.published.lock().unwrap().len();
    let timing = Arc::new(Timing::default());

    let started = Instant::now();
    let upgrade = Upgrades::new(deployer.clone())
        .start(UpgradeRequest {
            template_name: name("web"),
            template_type: "SERVICE".into(),
            template_major_version: VersionPart(1),
            template_minor_version: None,
            environments: vec![],
            services: vec![],
            tags: Default::default(),
            include_pipelines: None,
            waves: vec![],
            wave_size: None,
            concurrency: Some(concurrency),
            max_failures: None,
            approval: false,
            rollback_failed: false,
            client_token: None,
        })
        .await
        .unwrap();
    let start_time = started.elapsed();
    // Step Functions starts each deploy execution as the upgrade's check step starts its
    // deployment: a watcher runs each one as soon as it is started.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (workflows, tasks, timing, done) = (
            fakes.workflows.clone(),
            tasks.clone(),
            timing.clone(),
            done.clone(),
        );
        tokio::spawn(async move {
            let mut running = tokio::task::JoinSet::new();
            let mut seen = seen;
            loop {
                let started: Vec<(Workflow, String)> =
                    workflows.started.lock().unwrap()[seen..].to_vec();
                seen += started.len();
                for (workflow, id) in started {
                    if workflow != Workflow::Deploy {
                        continue;
                    }
                    let (tasks, timing) = (tasks.clone(), timing.clone());
                    running.spawn(async move {
                        let input = json!({ "deploymentId": id, "pollSeconds": 10 });
                        let run = |p| {
                            let (tasks, timing) = (tasks.clone(), timing.clone());
                            async move { timing.run(&tasks, p).await }
                        };
                        execute_waiting(&machine("deploy"), input, run, second).await
                    });
                }
                if done.load(Ordering::Relaxed) && running.is_empty() {
                    return;
                }
                while running.try_join_next().is_some() {}
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let mut checks = 0;
    let mut inner_checks = 0;
    let status = loop {
        // As the upgrade state machine runs it: one step checks for up to 40 s.
        let answer = timing
            .run(
                &tasks,
                json!({ "task": "advanceUpgrade", "upgradeId": upgrade.id, "pollSeconds": 10, "checkSeconds": 40 }),
            )
            .await
            .unwrap();
        checks += 1;
        inner_checks += answer["checks"].as_u64().unwrap_or(1);
        match answer["outcome"].as_str() {
            Some("ended") => break answer["status"].as_str().unwrap_or("").to_string(),
            _ => {
                let wait = answer["waitSeconds"].as_f64().unwrap_or(1.0);
                tokio::time::sleep(second.mul_f64(wait)).await;
            }
        }
    };
    done.store(true, Ordering::Relaxed);
    watcher.await.unwrap();
    let wall = started.elapsed();

    let store_calls = fakes.store.calls.load(Ordering::Relaxed) - store_before;
    let stack_calls = fakes.stacks.api_calls.load(Ordering::Relaxed) - stacks_before;
    let events = fakes.events.published.lock().unwrap().len() - events_before;
    let steps = timing.steps.load(Ordering::Relaxed);
    let inside = Duration::from_nanos(timing.nanos.load(Ordering::Relaxed));
    let latency = Duration::from_secs_f64(
        (store_calls as f64 * DYNAMODB_MS + stack_calls as f64 * CLOUDFORMATION_MS) / 1000.0,
    );
    // A check step sleeps 2 s between its checks: not paved's work.
    let slept = Duration::from_secs(2 * (inner_checks - checks));
    let own = inside.saturating_sub(latency).saturating_sub(slept) + start_time;
    let n = instances as f64;
    let own_per_target_ms = own.as_secs_f64() * 1000.0 / n;
    let engine_ms = engine_seconds as f64 * 1000.0;
    let ideal = instances.div_ceil(concurrency as usize) as f64 * engine_seconds as f64;
    let wall_seconds = wall.as_secs_f64();
    println!(
        "fleet upgrade: {instances} service instances, concurrency {concurrency}, engine {engine_seconds} s a stack, DynamoDB {DYNAMODB_MS} ms and CloudFormation {CLOUDFORMATION_MS} ms a call"
    );
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!("| upgrade status | {status} |");
    println!(
        "| paved's own time per target (task steps less AWS latency) | {own_per_target_ms:.2} ms |"
    );
    println!(
        "| paved's share of the engine's time per target | {:.3}% |",
        own_per_target_ms / engine_ms * 100.0
    );
    println!("| task steps per target | {:.1} |", steps as f64 / n);
    println!(
        "| upgrade check steps (each checks every 2 s for up to 40 s) | {checks} steps, {inner_checks} checks |"
    );
    println!(
        "| DynamoDB calls per target | {:.1} |",
        store_calls as f64 / n
    );
    println!(
        "| CloudFormation calls per target | {:.1} |",
        stack_calls as f64 / n
    );
    println!("| status events per target | {:.1} |", events as f64 / n);
    println!("| wall time | {wall_seconds:.1} s |");
    println!(
        "| concurrency × engine: ceil({instances}/{concurrency}) × {engine_seconds} s | {ideal:.0} s |"
    );
    println!("| wall time / that | {:.2} |", wall_seconds / ideal);
    assert_eq!(status, "SUCCEEDED", "the upgrade did not succeed");
}
