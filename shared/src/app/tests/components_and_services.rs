//! Services, their instances and pipelines, and components.

use super::*;
use crate::app::services::{NewService, Services};
use crate::domain::service::ServiceStatus;
use crate::domain::template::CompatibleEnvironmentTemplate;

const SVC_SCHEMA: &str = "schema:\n  format:\n    openapi: \"3.0.0\"\n  service_input_type: Svc\n  pipeline_input_type: Pipe\n  types:\n    Svc:\n      type: object\n      properties:\n        port:\n          type: number\n          default: 80\n    Pipe:\n      type: object\n      properties:\n        dockerfile:\n          type: string\n          default: Dockerfile\n";
const INSTANCE: &str = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: '{{ service.name }}-{{ service_instance.name }}-{{ environment.outputs.VpcCidr }}'\nOutputs:\n  Port:\n    Value: '{{ service_instance.inputs.port }}'\n  Bucket:\n    Value: '{{ service_instance.components.default.outputs.BucketName | default(\"none\") }}'\n";
const PIPELINE: &str = "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n    Properties:\n      Tags:\n{% for i in service_instances %}        - Key: '{{ i.name }}'\n          Value: '{{ i.outputs.Port }}'\n{% endfor %}";

async fn world_with_service_template(w: &World) -> Services {
    world_with_components(w, true).await
}

async fn world_with_components(w: &World, components: bool) -> Services {
    world_with(w, components, PIPELINE).await
}

/// The service template with another pipeline template.
pub(super) async fn world_with_pipeline(w: &World, pipeline: &str) -> Services {
    world_with(w, true, pipeline).await
}

async fn world_with(w: &World, components: bool, pipeline: &str) -> Services {
    let file = tar::EntryType::Regular;
    let archive = pack(&[
        ("schema/schema.yaml", SVC_SCHEMA.as_bytes(), file),
        (
            "instance_infrastructure/manifest.yaml",
            MANIFEST.as_bytes(),
            file,
        ),
        (
            "instance_infrastructure/cloudformation.yaml",
            INSTANCE.as_bytes(),
            file,
        ),
        (
            "pipeline_infrastructure/manifest.yaml",
            MANIFEST.as_bytes(),
            file,
        ),
        (
            "pipeline_infrastructure/cloudformation.yaml",
            pipeline.as_bytes(),
            file,
        ),
    ]);
    w.bundles.put("src", "svc.tar.gz", archive);
    w.catalog
        .create_template(
            TemplateKind::Service,
            NewTemplate {
                name: name("web"),
                display_name: None,
                description: None,
                encryption_key: None,
                provisioning: None,
                tags: Default::default(),
            },
        )
        .await
        .unwrap();
    w.catalog
        .create_version(
            TemplateKind::Service,
            NewVersion {
                client_token: None,
                template_name: name("web"),
                description: None,
                major_version: None,
                source: VersionSource {
                    s3: Some(S3Source {
                        bucket: S3Bucket::parse("src").unwrap(),
                        key: S3Key::parse("svc.tar.gz").unwrap(),
                    }),
                },
                tags: Default::default(),
                compatible_environment_templates: Some(vec![CompatibleEnvironmentTemplate {
                    template_name: name("vpc"),
                    major_version: VersionPart(1),
                }]),
                supported_component_sources: components
                    .then(|| vec![crate::domain::template::ComponentSource::DirectlyDefined]),
            },
        )
        .await
        .unwrap();
    w.catalog
        .update_version(
            TemplateKind::Service,
            VersionChange {
                template_name: name("web"),
                major_version: VersionPart(1),
                minor_version: VersionPart(0),
                description: None,
                status: Some(VersionStatus::Published),
                compatible_environment_templates: None,
                supported_component_sources: None,
            },
        )
        .await
        .unwrap();
    Services::new(w.deployer.clone())
}

fn new_service(instances: &[&str]) -> NewService {
    let lines: String = instances
        .iter()
        .map(|i| format!("  - {{name: {i}, environment: dev}}\n"))
        .collect();
    NewService {
        tags: Default::default(),
        name: name("api"),
        template_name: name("web"),
        template_major_version: VersionPart(1),
        template_minor_version: None,
        spec: format!("proton: ServiceSpec\npipeline: {{}}\ninstances:\n{lines}"),
        description: None,
        repository_connection_arn: Some(
            crate::domain::names::Arn::parse(
                "arn:aws:codestar-connections:us-east-1:123456789012:connection/x",
            )
            .unwrap(),
        ),
        repository_id: Some(crate::domain::names::RepositoryId::parse("acme/api").unwrap()),
        branch_name: Some(crate::domain::names::BranchName::parse("main").unwrap()),
    }
}

#[tokio::test]
async fn instances_deploy_with_environment_outputs_then_the_pipeline_with_theirs() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let services = world_with_service_template(&w).await;
    let service = services.create(new_service(&["a", "b"])).await.unwrap();
    assert_eq!(service.status, ServiceStatus::CreateInProgress);
    let started: Vec<String> = w
        .workflows
        .started
        .lock()
        .unwrap()
        .iter()
        .skip(1)
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(started.len(), 2, "one deployment per instance");
    for id in &started {
        w.run_deploy(id).await;
    }
    let queue = w.stacks.template_of("paved-instance-api-a").unwrap();
    assert!(queue.contains("QueueName: 'api-a-10.1.0.0/16'"), "{queue}");
    let tags = w.stacks.tags_of("paved-instance-api-a").unwrap();
    let arn = |r: &str| format!("arn:aws:proton:us-east-1:123456789012:{r}");
    assert_eq!(tags["proton:service"], arn("service/api"));
    assert_eq!(
        tags["proton:service-instance"],
        arn("service/api/service-instance/a")
    );
    assert_eq!(tags["proton:environment"], arn("environment/dev"));
    assert_eq!(tags["proton:template"], arn("service-template/web"));
    let pipeline_id = w.last_started();
    assert!(
        !started.contains(&pipeline_id),
        "the pipeline starts once the instances are deployed"
    );
    w.run_deploy(&pipeline_id).await;
    let pipeline = w.stacks.template_of("paved-pipeline-api").unwrap();
    assert!(
        pipeline.contains("- Key: 'a'\n          Value: '80'"),
        "{pipeline}"
    );
    let tags = w.stacks.tags_of("paved-pipeline-api").unwrap();
    assert_eq!(tags["proton:service"], arn("service/api"));
    assert!(!tags.contains_key("proton:service-instance"), "{tags:?}");
    let service = services.get(&name("api")).await.unwrap();
    assert_eq!(service.status, ServiceStatus::Active);
    assert_eq!(
        service.pipeline.unwrap().deployment_status,
        DeploymentStatus::Succeeded
    );
    // The service's own status changes reached the bus, as Proton's did.
    let service_events: Vec<(String, Option<String>)> = w
        .events
        .published
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.resource == "Service")
        .map(|e| (e.status.clone(), e.previous_status.clone()))
        .collect();
    assert_eq!(
        service_events,
        vec![
            ("CREATE_IN_PROGRESS".to_string(), None),
            ("ACTIVE".to_string(), Some("CREATE_IN_PROGRESS".to_string())),
        ]
    );
}

#[tokio::test]
async fn a_failed_instance_fails_the_service_with_its_reason_and_no_pipeline_runs() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let services = world_with_service_template(&w).await;
    services.create(new_service(&["a"])).await.unwrap();
    w.stacks
        .create_errors
        .lock()
        .unwrap()
        .push_back(CloudError::Rejected("Queue name too long".into()));
    let id = w.last_started();
    w.run_deploy(&id).await;
    let service = services.get(&name("api")).await.unwrap();
    assert_eq!(service.status, ServiceStatus::CreateFailed);
    assert!(
        service
            .status_message
            .unwrap()
            .contains("instance a failed: Queue name too long")
    );
    assert_eq!(w.last_started(), id, "no pipeline deployment started");
}

#[tokio::test]
async fn bad_service_requests_write_nothing() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let services = world_with_service_template(&w).await;
    let mut no_repo = new_service(&["a"]);
    no_repo.repository_id = None;
    assert!(
        matches!(services.create(no_repo).await, Err(Error::Validation(ref m)) if m.starts_with("repositoryId is required"))
    );
    let mut elsewhere = new_service(&["a"]);
    elsewhere.spec = elsewhere
        .spec
        .replace("environment: dev", "environment: prod");
    assert!(
        matches!(services.create(elsewhere).await, Err(Error::Validation(ref m)) if m.contains("prod does not exist"))
    );
    let many: Vec<String> = (0..21).map(|i| format!("i{i}")).collect();
    let names: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(matches!(
        services.create(new_service(&names)).await,
        Err(Error::QuotaExceeded(_))
    ));
    assert!(matches!(
        services.get(&name("api")).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn an_instance_is_redeployed_with_a_new_spec_one_deployment_at_a_time() {
    use crate::app::services::InstanceUpdate;
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let services = world_with_service_template(&w).await;
    services.create(new_service(&["a"])).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    w.run_deploy(&w.last_started()).await;
    let update = |spec: Option<&str>| InstanceUpdate {
        name: name("a"),
        service_name: name("api"),
        deployment_type: DeploymentType::CurrentVersion,
        spec: spec.map(str::to_string),
        template_major_version: None,
        template_minor_version: None,
        client_token: None,
    };
    let spec =
        "proton: ServiceSpec\ninstances:\n  - {name: a, environment: dev, spec: {port: 8080}}\n";
    let updated = services.update_instance(update(Some(spec))).await.unwrap();
    assert_eq!(
        updated.deployed.deployment_status,
        DeploymentStatus::InProgress
    );
    let err = services.update_instance(update(None)).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    w.run_deploy(&w.last_started()).await;
    let instance = services.instance(&name("api"), &name("a")).await.unwrap();
    assert_eq!(
        instance.deployed.deployment_status,
        DeploymentStatus::Succeeded
    );
    let port = instance.deployed.outputs.iter().find(|o| o.key == "Port");
    assert_eq!(port.unwrap().value, "8080");
    let err = services
        .cancel_instance(&name("api"), &name("a"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation(_)), "{err:?}");
    let wrong = "proton: ServiceSpec\ninstances:\n  - {name: other, environment: dev}\n";
    let err = services
        .update_instance(update(Some(wrong)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Validation(ref m) if m.contains("no entry")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_retried_instance_update_with_its_client_token_gets_the_same_answer() {
    use crate::app::services::InstanceUpdate;
    use crate::domain::names::ClientToken;
    let w = World::new().await;
    let services = deployed_service(&w, &["a"], true).await;
    let update = |port: u16| InstanceUpdate {
        name: name("a"),
        service_name: name("api"),
        deployment_type: DeploymentType::CurrentVersion,
        spec: Some(format!(
            "proton: ServiceSpec\ninstances:\n  - {{name: a, environment: dev, spec: {{port: {port}}}}}\n"
        )),
        template_major_version: None,
        template_minor_version: None,
        client_token: Some(ClientToken::parse("retry-me").unwrap()),
    };
    let before = w.started_count();
    let first = services.update_instance(update(8080)).await.unwrap();
    // The SDK retries with the same token: the same deployment, not a conflict.
    let again = services.update_instance(update(8080)).await.unwrap();
    assert_eq!(
        again.deployed.last_attempted_deployment_id,
        first.deployed.last_attempted_deployment_id
    );
    assert_eq!(w.started_count(), before + 1, "one deployment");
    w.run_deploy(&w.last_started()).await;
    let after = services.update_instance(update(8080)).await.unwrap();
    assert_eq!(
        after.deployed.last_attempted_deployment_id, first.deployed.last_attempted_deployment_id,
        "even after it ended"
    );
    let other = services.update_instance(update(9090)).await.unwrap_err();
    assert!(
        matches!(other, Error::Validation(ref m) if m.contains("already used with different parameters")),
        "{other:?}"
    );
}

#[tokio::test]
async fn an_instance_whose_workflow_ended_unrecorded_fails_on_the_next_read_and_so_does_its_service()
 {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let services = world_with_service_template(&w).await;
    services.create(new_service(&["a"])).await.unwrap();
    let id = w.last_started();
    w.workflows
        .states
        .lock()
        .unwrap()
        .insert(id, ExecutionState::Ended);
    let instance = services.instance(&name("api"), &name("a")).await.unwrap();
    assert_eq!(
        instance.deployed.deployment_status,
        DeploymentStatus::Failed
    );
    let service = services.get(&name("api")).await.unwrap();
    assert_eq!(service.status, ServiceStatus::CreateFailed);
}

#[tokio::test]
async fn a_service_waiting_on_an_instance_whose_workflow_died_fails_when_it_is_read() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let services = world_with_service_template(&w).await;
    services.create(new_service(&["a", "b"])).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let died = w.started_since(1)[0].1.clone();
    w.workflows
        .states
        .lock()
        .unwrap()
        .insert(died, ExecutionState::Ended);
    // Only the service is read (as `aws proton wait service-created` does).
    let service = services.get(&name("api")).await.unwrap();
    assert_eq!(service.status, ServiceStatus::CreateFailed);
    assert!(
        service
            .status_message
            .unwrap()
            .contains("ended without recording a result")
    );
}

/// A deployed service `api` with the given instances in `dev`, pipeline included.
/// The services of a world with the service template `web` published (with components).
pub(super) async fn services_on(w: &World) -> Services {
    world_with_components(w, true).await
}

/// A new service `api` with `instances` in environment dev.
pub(super) fn a_new_service(instances: &[&str]) -> NewService {
    new_service(instances)
}

/// A manifest for a directly defined component.
pub(super) const MANIFEST_FOR_RACES: &str = MANIFEST;

/// A deployed service `api` with `instances` in environment dev, components allowed.
pub(super) async fn deployed_service_in(w: &World, instances: &[&str]) -> Services {
    deployed_service(w, instances, true).await
}

async fn deployed_service(w: &World, instances: &[&str], components: bool) -> Services {
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let services = world_with_components(w, components).await;
    let before = w.started_count();
    services.create(new_service(instances)).await.unwrap();
    for (_, id) in w.started_since(before) {
        w.run_deploy(&id).await;
    }
    w.run_deploy(&w.last_started()).await;
    let service = services.get(&name("api")).await.unwrap();
    assert_eq!(service.status, ServiceStatus::Active);
    services
}

#[tokio::test]
async fn an_updated_spec_adds_and_removes_instances_then_redeploys_the_pipeline() {
    use crate::app::services::ServiceUpdate;
    let w = World::new().await;
    let services = deployed_service(&w, &["a"], true).await;
    let before = w.started_count();
    let update = ServiceUpdate {
        name: name("api"),
        description: None,
        spec: Some("proton: ServiceSpec\ninstances:\n  - {name: b, environment: dev, spec: {port: 9090}}\n".into()),
    };
    let updating = services.update(update.clone()).await.unwrap();
    assert_eq!(updating.status, ServiceStatus::UpdateInProgress);
    // A retry of the same update is answered with the service as it is.
    let again = services.update(update.clone()).await.unwrap();
    assert_eq!(again.status, ServiceStatus::UpdateInProgress);
    let other = ServiceUpdate {
        spec: Some("proton: ServiceSpec\ninstances:\n  - {name: c, environment: dev}\n".into()),
        ..update
    };
    let refused = services.update(other).await.unwrap_err();
    assert!(
        matches!(refused, Error::Conflict(ref m) if m.contains("being updated")),
        "{refused:?}"
    );
    let started = w.started_since(before);
    assert_eq!(started.len(), 2, "{started:?}");
    for (workflow, id) in &started {
        match workflow {
            Workflow::Deploy => w.run_deploy(id).await,
            Workflow::Delete => w.run_delete(id).await,
            Workflow::Redeploy | Workflow::Upgrade => {
                unreachable!("no push or upgrade in this test")
            }
        }
    }
    assert!(
        w.stacks.template_of("paved-instance-api-a").is_none(),
        "a's stack is gone"
    );
    let names: Vec<String> = services
        .instances(&name("api"))
        .await
        .unwrap()
        .iter()
        .map(|i| i.name.to_string())
        .collect();
    assert_eq!(names, ["b"]);
    // The pipeline is redeployed for the new list before the service is ACTIVE again.
    let service = services.get(&name("api")).await.unwrap();
    assert_eq!(service.status, ServiceStatus::UpdateInProgress);
    let pipeline_run = w.last_started();
    w.run_deploy(&pipeline_run).await;
    let pipeline = w.stacks.template_of("paved-pipeline-api").unwrap();
    assert!(
        pipeline.contains("Key: 'b'") && !pipeline.contains("Key: 'a'"),
        "{pipeline}"
    );
    let service = services.get(&name("api")).await.unwrap();
    assert_eq!(
        service.status,
        ServiceStatus::Active,
        "{:?}",
        service.status_message
    );
    assert!(service.spec.contains("name: b"));
}

#[tokio::test]
async fn a_component_feeds_its_instance_which_cannot_change_while_it_deploys() {
    use crate::app::components::{Components, NewComponent};
    use crate::app::services::InstanceUpdate;
    let w = World::new().await;
    let services = deployed_service(&w, &["a"], true).await;
    let components = Components::new(w.deployer.clone());
    let new = NewComponent {
        tags: crate::domain::names::Tags::parse(vec![crate::domain::names::Tag {
            key: crate::domain::names::TagKey::parse("data").unwrap(),
            value: crate::domain::names::TagValue::parse("public").unwrap(),
        }])
        .unwrap(),
        name: name("files"),
        description: None,
        environment_name: None,
        service_name: Some(name("api")),
        service_instance_name: Some(name("a")),
        manifest: MANIFEST.into(),
        template_file: "Resources:\n  B:\n    Type: AWS::S3::Bucket\nOutputs:\n  BucketName:\n    Value: 'bkt-{{ component.name }}-{{ service_instance.inputs.port }}-{{ environment.outputs.VpcCidr }}'\n".into(),
        service_spec: None,
        client_token: None,
    };
    let created = components.create(new.clone()).await.unwrap();
    assert_eq!(created.environment, name("dev"));
    assert_eq!(
        created.deployed.deployment_status,
        DeploymentStatus::InProgress
    );
    assert_eq!(
        components.create(new).await.unwrap().rev,
        created.rev,
        "a retried create returns it"
    );
    let update = InstanceUpdate {
        name: name("a"),
        service_name: name("api"),
        deployment_type: DeploymentType::CurrentVersion,
        spec: None,
        template_major_version: None,
        template_minor_version: None,
        client_token: None,
    };
    let err = services.update_instance(update.clone()).await.unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("component files is deploying")),
        "{err:?}"
    );

    let before = w.started_count();
    w.run_deploy(&w.last_started()).await;
    let component = components.get(&name("files")).await.unwrap();
    assert_eq!(
        component.deployed.outputs[0].value,
        "bkt-files-80-10.1.0.0/16"
    );
    let stack = w
        .stacks
        .calls()
        .iter()
        .find_map(|c| {
            c.strip_prefix("create_change_set ")
                .filter(|s| s.contains("component"))
                .map(|s| s.split(' ').next().unwrap().to_string())
        })
        .unwrap();
    let tags = w.stacks.tags_of(&stack).unwrap();
    assert_eq!(tags["data"], "public");
    assert_eq!(
        tags["proton:component"],
        "arn:aws:proton:us-east-1:123456789012:component/files"
    );
    assert_eq!(
        tags["proton:service-instance"],
        "arn:aws:proton:us-east-1:123456789012:service/api/service-instance/a"
    );
    assert!(!tags.contains_key("proton:template"), "{tags:?}");
    // Its outputs changed, so its instance was redeployed to read them.
    let redeploys = w.started_since(before);
    assert_eq!(redeploys.len(), 1, "{redeploys:?}");
    w.run_deploy(&redeploys[0].1).await;
    let instance = services.instance(&name("api"), &name("a")).await.unwrap();
    assert_eq!(instance.component, Some(name("files")));
    let bucket = instance
        .deployed
        .outputs
        .iter()
        .find(|o| o.key == "Bucket")
        .unwrap();
    assert_eq!(bucket.value, "bkt-files-80-10.1.0.0/16");

    // The service cannot go while its instance has a component; the component can.
    let err = services.delete(&name("api")).await.unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("delete the component first")),
        "{err:?}"
    );
    components.delete(&name("files")).await.unwrap();
    let before = w.started_count();
    w.run_delete(&w.last_started()).await;
    assert!(matches!(
        components.get(&name("files")).await,
        Err(Error::NotFound(_))
    ));
    let redeploys = w.started_since(before);
    assert_eq!(redeploys.len(), 1, "the instance is redeployed without it");
    w.run_deploy(&redeploys[0].1).await;
    let instance = services.instance(&name("api"), &name("a")).await.unwrap();
    assert_eq!(instance.component, None);
    let bucket = instance
        .deployed
        .outputs
        .iter()
        .find(|o| o.key == "Bucket")
        .unwrap();
    assert_eq!(bucket.value, "none");
}

#[tokio::test]
async fn components_are_refused_where_the_template_or_request_does_not_allow_them() {
    use crate::app::components::{Components, NewComponent};
    let w = World::new().await;
    deployed_service(&w, &["a"], false).await;
    let components = Components::new(w.deployer.clone());
    let new = NewComponent {
        tags: Default::default(),
        name: name("files"),
        description: None,
        environment_name: None,
        service_name: Some(name("api")),
        service_instance_name: Some(name("a")),
        manifest: MANIFEST.into(),
        template_file: "Resources:\n  B:\n    Type: AWS::S3::Bucket\n".into(),
        service_spec: None,
        client_token: None,
    };
    let err = components.create(new.clone()).await.unwrap_err();
    assert!(
        matches!(err, Error::Validation(ref m) if m.contains("supportedComponentSources")),
        "{err:?}"
    );
    let standalone = NewComponent {
        tags: Default::default(),
        service_name: None,
        service_instance_name: None,
        ..new.clone()
    };
    let err = components.create(standalone.clone()).await.unwrap_err();
    assert!(
        matches!(err, Error::Validation(ref m) if m.starts_with("environmentName is required")),
        "{err:?}"
    );
    let broken = NewComponent {
        tags: Default::default(),
        environment_name: Some(name("dev")),
        template_file: "Resources:\n  B:\n    Type: '{{ nothing.here }}'\n".into(),
        ..standalone.clone()
    };
    let err = components.create(broken).await.unwrap_err();
    assert!(matches!(err, Error::Validation(_)), "{err:?}");
    assert!(matches!(
        components.get(&name("files")).await,
        Err(Error::NotFound(_))
    ));
    // A standalone component in an environment is fine, and keeps the environment alive.
    let alone = components
        .create(NewComponent {
            tags: Default::default(),
            environment_name: Some(name("dev")),
            ..standalone
        })
        .await
        .unwrap();
    assert_eq!(alone.attachment(), None);
    w.run_deploy(&w.last_started()).await;
    let listed = components
        .list(
            crate::app::components::ComponentFilter {
                environment: Some(name("dev")),
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
}

/// Step Functions retries a step whose answer was lost: a finish whose write was applied runs
/// again, finds the deployment ended, and still moves the service on (its pipeline starts).
#[tokio::test]
async fn a_retried_finish_whose_write_was_applied_still_moves_the_service_on() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let services = world_with_service_template(&w).await;
    services.create(new_service(&["a"])).await.unwrap();
    let id = w.last_started();
    let planned = w
        .engine
        .run(json!({"task": "plan", "deploymentId": id}))
        .await
        .unwrap();
    let plan = planned["plan"].clone();
    w.engine
        .run(json!({"task": "apply", "deploymentId": id, "plan": plan}))
        .await
        .unwrap();
    // The end is recorded, but what follows it never ran (the answer was lost).
    crate::app::deploy::Steps::new(w.deployer.clone())
        .finish(&id, false)
        .await
        .unwrap();
    assert_eq!(w.last_started(), id, "nothing followed yet");
    let service = services.get(&name("api")).await.unwrap();
    assert_eq!(service.status, ServiceStatus::CreateInProgress);
    // The retried step.
    w.engine
        .run(json!({"task": "finish", "deploymentId": id, "cancelled": false}))
        .await
        .unwrap();
    let pipeline_id = w.last_started();
    assert_ne!(pipeline_id, id, "the pipeline deployment started");
    w.run_deploy(&pipeline_id).await;
    let service = services.get(&name("api")).await.unwrap();
    assert_eq!(service.status, ServiceStatus::Active);
}
