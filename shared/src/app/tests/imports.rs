//! Import: stacks made the way Proton made them are found, planned, adopted in place, and their
//! first deployment changes nothing by surprise.

use std::collections::BTreeMap;

use super::components_and_services::world_with_pipeline;
use super::environments::Iam;
use super::*;
use crate::app::imports::{ImportRequest, Imports, ItemStatus, RepositoryGiven};
use crate::domain::environment::Target;
use crate::domain::service::ServiceStatus;
use crate::ports::DeploymentStore;

const ARN: &str = "arn:aws:proton:us-east-1:123456789012:";
const ENV_STACK: &str = "AWSProton-dev-cloudformation--QYWPQLSESXEMRBY";
const INSTANCE_STACK: &str = "AWSProton-api-front-cloudformation--ABCDEFGHIJKLMNO";
const PIPELINE_STACK: &str = "AWSProton-api-cloudformation--PONMLKJIHGFEDCB";
const COMPONENT_STACK: &str = "AWSProton-cache-cloudformation--AAAAABBBBBCCCCC";
const ROLE: &str = "arn:aws:iam::123456789012:role/proton";
const COMPONENT_ROLE: &str = "arn:aws:iam::123456789012:role/components";
/// The environment template as Proton rendered it with [`SPEC`].
const ENV_RENDERED: &str = "Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Properties:\n      CidrBlock: '10.1.0.0/16'\nOutputs:\n  VpcCidr:\n    Value: '10.1.0.0/16'\n";
const SERVICE_SPEC: &str =
    "proton: ServiceSpec\npipeline: {}\ninstances:\n  - {name: front, environment: dev}\n";

fn tags(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (format!("proton:{k}"), v.clone()))
        .collect()
}

/// The stacks Proton left: an environment, an instance of service `api` in it, the service's
/// pipeline and a component attached to the instance, plus a stack of someone else's.
fn seed(w: &World) {
    let env = format!("{ARN}environment/dev");
    let service = format!("{ARN}service/api");
    let instance = format!("{ARN}service/api/service-instance/front");
    w.stacks.seed(
        ENV_STACK,
        ENV_RENDERED,
        tags(&[
            ("account", "123456789012".into()),
            ("environment", env.clone()),
            ("template", format!("{ARN}environment-template/vpc")),
        ]),
        Some(ROLE),
    );
    w.stacks.seed(
        INSTANCE_STACK,
        "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: 'api-front-10.1.0.0/16'\nOutputs:\n  Port:\n    Value: '80'\n",
        tags(&[
            ("environment", env.clone()),
            ("service", service.clone()),
            ("service-instance", instance.clone()),
            ("template", format!("{ARN}service-template/web")),
        ]),
        Some(ROLE),
    );
    w.stacks.seed(
        PIPELINE_STACK,
        "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n",
        tags(&[
            ("service", service),
            ("template", format!("{ARN}service-template/web")),
        ]),
        Some("arn:aws:iam::123456789012:role/pipeline"),
    );
    w.stacks.seed(
        COMPONENT_STACK,
        "Resources:\n  Cache:\n    Type: AWS::S3::Bucket\nOutputs:\n  BucketName:\n    Value: cache-{{ not jinja }}\n",
        tags(&[
            ("environment", env),
            ("service-instance", instance),
            ("component", format!("{ARN}component/cache")),
        ]),
        Some(COMPONENT_ROLE),
    );
    w.stacks.seed(
        "team-vpc",
        ENV_RENDERED,
        [("team".to_string(), "a".to_string())].into(),
        None,
    );
}

fn full_request() -> ImportRequest {
    ImportRequest {
        specs: [
            ("environment/dev".to_string(), SPEC.to_string()),
            ("service/api".to_string(), SERVICE_SPEC.to_string()),
        ]
        .into(),
        template_versions: [("vpc".to_string(), "1.0".to_string())].into(),
        repositories: [(
            "api".to_string(),
            RepositoryGiven {
                repository_connection_arn:
                    "arn:aws:codestar-connections:us-east-1:123456789012:connection/x".into(),
                repository_id: "acme/api".into(),
                branch_name: "main".into(),
            },
        )]
        .into(),
    }
}

fn statuses(items: &[crate::app::imports::PlanItem]) -> Vec<(String, &'static str, ItemStatus)> {
    items
        .iter()
        .map(|i| (i.stack_name.clone(), i.kind, i.status))
        .collect()
}

#[tokio::test]
async fn the_plan_names_each_stack_and_what_it_needs() {
    let w = World::new().await;
    world_with_pipeline(&w, "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n").await;
    seed(&w);
    let imports = Imports::new(w.deployer.clone());
    let plan = imports.plan(&ImportRequest::default()).await.unwrap();
    let by_stack: BTreeMap<_, _> = plan
        .items
        .iter()
        .map(|i| (i.stack_name.as_str(), i))
        .collect();
    assert_eq!(plan.items.len(), 4, "the team's own stack is not Proton's");
    let env = by_stack[ENV_STACK];
    assert_eq!(
        (env.kind, env.name.as_deref()),
        ("ENVIRONMENT", Some("dev"))
    );
    assert_eq!(env.template_name.as_deref(), Some("vpc"));
    assert_eq!(
        (env.template_version.as_deref(), env.version_from),
        (Some("1.0"), Some("recommended"))
    );
    assert_eq!(env.status, ItemStatus::NeedsInput);
    assert!(
        env.needs[0].contains("specs[\"environment/dev\"]"),
        "{env:?}"
    );
    let instance = by_stack[INSTANCE_STACK];
    assert_eq!(
        (
            instance.kind,
            instance.name.as_deref(),
            instance.service_name.as_deref(),
            instance.environment_name.as_deref()
        ),
        ("SERVICE_INSTANCE", Some("front"), Some("api"), Some("dev"))
    );
    let pipeline = by_stack[PIPELINE_STACK];
    assert_eq!(pipeline.kind, "SERVICE_PIPELINE");
    assert!(
        pipeline
            .needs
            .iter()
            .any(|n| n.contains("repositories[\"api\"]")),
        "{pipeline:?}"
    );
    let component = by_stack[COMPONENT_STACK];
    assert_eq!(
        (component.kind, component.name.as_deref()),
        ("COMPONENT", Some("cache"))
    );
    // Planning wrote nothing.
    assert!(w.store.environment(&name("dev")).await.unwrap().is_none());
}

#[tokio::test]
async fn applying_adopts_in_place_reads_outputs_and_is_safe_to_repeat() {
    let w = World::new().await;
    world_with_pipeline(&w, "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n").await;
    seed(&w);
    let imports = Imports::new(w.deployer.clone());
    let result = imports.apply(&full_request()).await.unwrap();
    assert_eq!(result.adopted, 4, "{:#?}", result.items);
    let env = w.store.environment(&name("dev")).await.unwrap().unwrap();
    assert_eq!(env.deployed.stack_name, ENV_STACK);
    assert_eq!(env.deployed.role_arn, ROLE);
    assert_eq!(env.component_role_arn.as_deref(), Some(COMPONENT_ROLE));
    assert_eq!(env.deployed.outputs[0].value, "10.1.0.0/16");
    assert!(env.deployed.adoption.is_some());
    let instance = w
        .store
        .instance(&name("api"), &name("front"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(instance.deployed.stack_name, INSTANCE_STACK);
    assert_eq!(
        instance.component.as_ref().map(|c| c.as_str()),
        Some("cache")
    );
    let service = w.store.service(&name("api")).await.unwrap().unwrap();
    assert_eq!(service.status, ServiceStatus::Active);
    assert_eq!(service.pipeline.unwrap().stack_name, PIPELINE_STACK);
    assert_eq!(service.repository.id.as_deref(), Some("acme/api"));
    let component = w.store.component(&name("cache")).await.unwrap().unwrap();
    assert_eq!(component.deployed.stack_name, COMPONENT_STACK);
    // In use: the environment version by one, the service version by instance and pipeline.
    let env_version = w
        .deployer
        .version_of(
            TemplateKind::Environment,
            &name("vpc"),
            VersionNumber { major: 1, minor: 0 },
        )
        .await
        .unwrap();
    assert_eq!(env_version.in_use, 1);
    // Nothing was deployed.
    assert!(w.workflows.started.lock().unwrap().is_empty());
    assert!(
        !w.stacks
            .calls()
            .iter()
            .any(|c| c.starts_with("create_change_set"))
    );
    // Again: everything is adopted already, nothing is written twice.
    let again = imports.apply(&full_request()).await.unwrap();
    assert_eq!(again.adopted, 0);
    assert!(again.items.iter().all(|i| i.status == ItemStatus::Adopted));
    assert_eq!(
        w.deployer
            .version_of(
                TemplateKind::Environment,
                &name("vpc"),
                VersionNumber { major: 1, minor: 0 }
            )
            .await
            .unwrap()
            .in_use,
        1
    );
}

#[tokio::test]
async fn the_first_deployment_updates_the_adopted_stack_and_a_replacement_waits_for_confirmation() {
    let w = World::new().await;
    seed(&w);
    let imports = Imports::new(w.deployer.clone());
    let mut request = full_request();
    request.specs.remove("service/api");
    imports.apply(&request).await.unwrap();
    // The same spec: the stack is updated in place (its tags become paved's), nothing replaced.
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    let env = w.store.environment(&name("dev")).await.unwrap().unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Succeeded);
    assert_eq!(env.deployed.stack_name, ENV_STACK);
    assert!(env.deployed.adoption.is_none(), "paved's own from now on");
    let first = w
        .store
        .deployment(
            env.deployed
                .last_succeeded_deployment_id
                .as_deref()
                .unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.status_message.as_deref(),
        Some(
            format!("the first deployment of the adopted stack {ENV_STACK}: no resource changes")
                .as_str()
        ),
        "what the plan did is on the deployment"
    );
    let plan = imports.plan(&ImportRequest::default()).await.unwrap();
    assert!(
        !plan.items.iter().any(|i| i.stack_name == ENV_STACK),
        "a stack paved deployed is no longer Proton's to import"
    );
    assert!(
        w.stacks
            .calls()
            .contains(&format!("create_change_set {ENV_STACK} UPDATE"))
    );
    assert_eq!(
        w.stacks.template_of(ENV_STACK).unwrap().trim_end(),
        ENV_RENDERED.trim_end()
    );
    assert!(
        w.stacks.tags_of(ENV_STACK).unwrap()["proton:environment"].ends_with("environment/dev")
    );

    // A second environment adopted, whose first deployment would replace its VPC.
    let other = "AWSProton-prod-cloudformation--ZZZZZZZZZZZZZZZ";
    w.stacks.seed(
        other,
        ENV_RENDERED,
        tags(&[
            ("environment", format!("{ARN}environment/prod")),
            ("template", format!("{ARN}environment-template/vpc")),
        ]),
        Some(ROLE),
    );
    w.stacks
        .replaced_on_change
        .lock()
        .unwrap()
        .insert("Vpc".into());
    let mut request = ImportRequest::default();
    request
        .specs
        .insert("environment/prod".into(), SPEC.to_string());
    imports.apply(&request).await.unwrap();
    let wider = "proton: EnvironmentSpec\nspec:\n  cidr: 10.9.0.0/16\n";
    w.update("prod", DeploymentType::CurrentVersion, Some(wider))
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    let prod = w.store.environment(&name("prod")).await.unwrap().unwrap();
    assert_eq!(prod.deployed.deployment_status, DeploymentStatus::Failed);
    let message = prod.deployed.deployment_status_message.clone().unwrap();
    assert!(
        message.contains("would replace Vpc (AWS::EC2::VPC)"),
        "{message}"
    );
    assert!(message.contains("Nothing was changed"), "{message}");
    assert_eq!(
        w.stacks.template_of(other).as_deref(),
        Some(ENV_RENDERED),
        "the stack is untouched"
    );
    let code = message
        .split("ConfirmAdoption with resourceArn ")
        .nth(1)
        .and_then(|rest| rest.split(" and confirmation ").nth(1))
        .and_then(|rest| rest.split(')').next())
        .unwrap()
        .to_string();
    // A wrong code is not a confirmation of this plan; the right one is.
    imports
        .confirm(&format!("{ARN}environment/prod"), "abcdef")
        .await
        .unwrap();
    w.update("prod", DeploymentType::CurrentVersion, Some(wider))
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    let prod = w.store.environment(&name("prod")).await.unwrap().unwrap();
    assert_eq!(prod.deployed.deployment_status, DeploymentStatus::Failed);
    imports
        .confirm(&format!("{ARN}environment/prod"), &code)
        .await
        .unwrap();
    w.update("prod", DeploymentType::CurrentVersion, Some(wider))
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    let prod = w.store.environment(&name("prod")).await.unwrap().unwrap();
    assert_eq!(prod.deployed.deployment_status, DeploymentStatus::Succeeded);
    assert!(w.stacks.template_of(other).unwrap().contains("10.9.0.0/16"));
    // Once deployed, there is nothing left to confirm.
    let err = imports
        .confirm(&format!("{ARN}environment/prod"), &code)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation(_)), "{err:?}");
}

#[tokio::test]
async fn a_role_only_proton_could_assume_blocks_with_the_statement_to_add() {
    let mut w = World::new().await;
    seed(&w);
    let proton_only = r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": "proton.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
    let trusting = r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": "cloudformation.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
    w.deployer.roles = Some(std::sync::Arc::new(Iam(
        [
            (ROLE.to_string(), proton_only.to_string()),
            (COMPONENT_ROLE.to_string(), trusting.to_string()),
        ]
        .into(),
        false,
    )));
    let imports = Imports::new(w.deployer.clone());
    let result = imports.apply(&full_request()).await.unwrap();
    let env = result
        .items
        .iter()
        .find(|i| i.stack_name == ENV_STACK)
        .unwrap();
    assert_eq!(env.status, ItemStatus::Blocked);
    assert!(
        env.blockers.iter().any(
            |b| b.contains(ROLE) && b.contains("\"Service\": \"cloudformation.amazonaws.com\"")
        ),
        "{env:?}"
    );
    assert!(w.store.environment(&name("dev")).await.unwrap().is_none());
    // What runs in it cannot be adopted either, and says why.
    let component = result
        .items
        .iter()
        .find(|i| i.stack_name == COMPONENT_STACK)
        .unwrap();
    assert_eq!(component.status, ItemStatus::Blocked);
    assert_eq!(result.adopted, 0, "{:#?}", statuses(&result.items));
}

#[tokio::test]
async fn an_adopted_component_keeps_its_stacks_template_as_its_definition() {
    let w = World::new().await;
    world_with_pipeline(&w, "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n").await;
    seed(&w);
    Imports::new(w.deployer.clone())
        .apply(&full_request())
        .await
        .unwrap();
    let component = w.store.component(&name("cache")).await.unwrap().unwrap();
    let loaded = crate::app::deploy::Loaded::Component(component.clone());
    let deployment = crate::app::deploy::records::deployment(
        "d-1",
        &name("dev"),
        Target::Component {
            component: name("cache"),
        },
        component.deployed.state.clone(),
        component.created_at,
        component.created_at,
    );
    let rendered = loaded.render(&w.deployer, &deployment).await.unwrap();
    assert_eq!(
        Some(rendered),
        w.stacks.template_of(COMPONENT_STACK),
        "the first deployment finds nothing to change"
    );
}

#[tokio::test]
async fn a_component_is_refused_when_its_environments_role_no_longer_trusts_cloudformation() {
    use crate::app::components::{Components, NewComponent};
    let mut w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    // The environment's component role was edited in IAM since: it trusts Proton only.
    let proton_only = r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": "proton.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
    w.deployer.roles = Some(std::sync::Arc::new(Iam(
        [(COMPONENT_ROLE.to_string(), proton_only.to_string())].into(),
        false,
    )));
    let err = Components::new(w.deployer.clone())
        .create(NewComponent {
            tags: Default::default(),
            name: name("files"),
            description: None,
            environment_name: Some(name("dev")),
            service_name: None,
            service_instance_name: None,
            manifest: MANIFEST.into(),
            template_file: "Resources:\n  B:\n    Type: AWS::S3::Bucket\n".into(),
            service_spec: None,
            client_token: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Validation(ref m) if m.starts_with("the componentRoleArn of environment dev") && m.contains("\"Service\": \"cloudformation.amazonaws.com\"")),
        "{err:?}"
    );
    assert!(w.store.component(&name("files")).await.unwrap().is_none());
}
