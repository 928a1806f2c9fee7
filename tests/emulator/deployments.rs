//! The DynamoDB deployment store: services found by repository and branch through the index,
//! webhook deliveries remembered once, deployment client tokens written with their change, every
//! instance read through the all-instances index.

use aws_sdk_dynamodb::types::AttributeValue;
use paved_core::domain::environment::{Deployed, DeployedState, DeploymentStatus};
use paved_core::domain::names::{ResourceName, Timestamp};
use paved_core::domain::service::{Repository, Service, ServiceInstance, ServiceStatus};
use paved_core::ports::{
    Deliveries, DeploymentChange, DeploymentStore, InstanceWrite, PageRequest, ServiceWrite,
    StoreError, TokenRecord,
};

use crate::env::TestEnv;

fn service(name: &str, repository: &str, branch: &str) -> Service {
    let now = Timestamp(1.0);
    Service {
        name: ResourceName::parse(name).unwrap(),
        description: None,
        template_name: ResourceName::parse("web").unwrap(),
        major: 1,
        minor: 0,
        spec: "proton: ServiceSpec\n".into(),
        repository: Repository {
            connection_arn: Some(
                "arn:aws:codestar-connections:us-east-1:123456789012:connection/x".into(),
            ),
            id: Some(repository.into()),
            branch: Some(branch.into()),
        },
        status: ServiceStatus::Active,
        status_message: None,
        created_at: now,
        last_modified_at: now,
        pipeline: Some(Deployed {
            state: DeployedState {
                template_name: ResourceName::parse("web").unwrap(),
                major: 1,
                minor: 0,
                spec: String::new(),
                inputs: Default::default(),
                component: None,
            },
            engine: Default::default(),
            stack_name: format!("paved-pipeline-{name}"),
            role_arn: "arn:aws:iam::123456789012:role/pipeline".into(),
            deployment_status: DeploymentStatus::Succeeded,
            deployment_status_message: None,
            last_deployment_attempted_at: now,
            last_deployment_succeeded_at: now,
            last_attempted_deployment_id: None,
            last_succeeded_deployment_id: None,
            outputs: vec![],
            resources: vec![],
            adoption: None,
        }),
        awaiting: vec![],
        redeploys: Default::default(),
        tags: Default::default(),
        rev: 1,
    }
}

#[tokio::test]
async fn services_are_found_by_repository_and_branch_and_nothing_else() {
    let env = TestEnv::new().await;
    let store = env.store();
    for s in [
        service("a", "acme/web", "main"),
        service("b", "acme/web", "main"),
        service("c", "acme/web", "develop"),
        service("d", "acme/web#x", "main"),
        service("e", "acme/web", "x#main"),
    ] {
        store
            .change(DeploymentChange {
                services: vec![ServiceWrite::Create(s)],
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let names = |found: Vec<Service>| {
        let mut names: Vec<String> = found.into_iter().map(|s| s.name.to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(
        names(store.services_tracking("acme/web", "main").await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        names(
            store
                .services_tracking("acme/web", "develop")
                .await
                .unwrap()
        ),
        ["c"]
    );
    // The length prefix keeps a '#' in either part from matching the other pair.
    assert_eq!(
        names(store.services_tracking("acme/web#x", "main").await.unwrap()),
        ["d"]
    );
    assert_eq!(
        names(store.services_tracking("acme/web", "x#main").await.unwrap()),
        ["e"]
    );
    assert!(
        store
            .services_tracking("acme/other", "main")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_delivery_is_remembered_once_until_forgotten() {
    let env = TestEnv::new().await;
    let store = env.store();
    assert!(store.remember_delivery("abc", 4_000_000_000).await.unwrap());
    assert!(!store.remember_delivery("abc", 4_000_000_000).await.unwrap());
    store.forget_delivery("abc").await.unwrap();
    assert!(store.remember_delivery("abc", 4_000_000_000).await.unwrap());
}

#[tokio::test]
async fn a_deployment_token_is_written_with_its_change_once() {
    let env = TestEnv::new().await;
    let store = env.store();
    let record = TokenRecord {
        scope: "UpdateServiceInstance/web/a".into(),
        token: "t-1".into(),
        fingerprint: "{}".into(),
        deployment_id: "d-1".into(),
        expires_at: 4_000_000_000,
    };
    store
        .change(DeploymentChange {
            services: vec![ServiceWrite::Create(service("a", "acme/web", "main"))],
            token: Some(record.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.token(&record.scope, "t-1").await.unwrap(),
        Some(record.clone())
    );
    // The same token again cancels the whole change.
    let again = store
        .change(DeploymentChange {
            services: vec![ServiceWrite::Create(service("b", "acme/web", "main"))],
            token: Some(TokenRecord {
                deployment_id: "d-2".into(),
                ..record.clone()
            }),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(again, Err(StoreError::ConditionFailed)),
        "{again:?}"
    );
    assert!(
        store
            .service(&ResourceName::parse("b").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

fn instance(service: &str, name: &str, environment: &str) -> ServiceInstance {
    let now = Timestamp(1.0);
    ServiceInstance {
        service: ResourceName::parse(service).unwrap(),
        name: ResourceName::parse(name).unwrap(),
        environment: ResourceName::parse(environment).unwrap(),
        created_at: now,
        deployed: Deployed {
            state: DeployedState {
                template_name: ResourceName::parse("web").unwrap(),
                major: 1,
                minor: 0,
                spec: String::new(),
                inputs: Default::default(),
                component: None,
            },
            engine: Default::default(),
            stack_name: format!("paved-instance-{service}-{name}"),
            role_arn: "arn:aws:iam::123456789012:role/proton".into(),
            deployment_status: DeploymentStatus::Succeeded,
            deployment_status_message: None,
            last_deployment_attempted_at: now,
            last_deployment_succeeded_at: now,
            last_attempted_deployment_id: None,
            last_succeeded_deployment_id: None,
            outputs: vec![],
            resources: vec![],
            adoption: None,
        },
        component: None,
        tags: Default::default(),
        rev: 1,
    }
}

#[tokio::test]
async fn every_instance_is_read_through_the_index_once_the_sweep_has_indexed_older_ones() {
    let env = TestEnv::new().await;
    let store = env.store();
    let client = aws_sdk_dynamodb::Client::new(&env.sdk);
    let mut written = Vec::new();
    for (s, count) in [("a", 3), ("b", 1), ("c", 2)] {
        let instances: Vec<InstanceWrite> = (0..count)
            .map(|i| InstanceWrite::Create(instance(s, &format!("{s}{i}"), "dev")))
            .collect();
        written.extend((0..count).map(|i| format!("{s}/{s}{i}")));
        store
            .change(DeploymentChange {
                services: vec![ServiceWrite::Create(service(s, "acme/web", "main"))],
                instances,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    // Two instances as paved wrote them before the index: without its keys.
    for (pk, sk) in [("SERVICE#a", "INSTANCE#a1"), ("SERVICE#c", "INSTANCE#c0")] {
        client
            .update_item()
            .table_name(&env.table)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S(sk.into()))
            .update_expression("REMOVE gsi2pk, gsi2sk")
            .send()
            .await
            .unwrap();
    }
    let names = |found: Vec<ServiceInstance>| {
        let mut names: Vec<String> = found
            .into_iter()
            .map(|i| format!("{}/{}", i.service, i.name))
            .collect();
        names.sort();
        names
    };
    // Until the index is complete, every service is read: nothing is missed.
    assert_eq!(names(store.all_instances().await.unwrap()), written);
    assert_eq!(store.index_instances().await.unwrap(), Some(2));
    assert_eq!(store.index_instances().await.unwrap(), None, "once");
    // Through the index now: the services' own instance queries are not what answers.
    client
        .delete_item()
        .table_name(&env.table)
        .key("pk", AttributeValue::S("SERVICE#b".into()))
        .key("sk", AttributeValue::S("#SERVICE".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(names(store.all_instances().await.unwrap()), written);
}

#[tokio::test]
async fn a_deployment_is_given_its_expiry_and_a_gone_one_is_not_an_error() {
    let env = TestEnv::new().await;
    let store = env.store();
    let service = service("web", "acme/web", "main");
    let record = paved_core::app::deploy::records::deployment(
        "d-expiring",
        &ResourceName::parse("dev").unwrap(),
        paved_core::domain::environment::Target::ServicePipeline {
            service: service.name.clone(),
        },
        service.pipeline.clone().unwrap().state,
        Timestamp(1.0),
        Timestamp(2.0),
    );
    store
        .change(DeploymentChange {
            deployments: vec![paved_core::ports::DeploymentWrite::Create(record)],
            ..Default::default()
        })
        .await
        .unwrap();
    store
        .expire_deployment("d-expiring", 4_000_000_000)
        .await
        .unwrap();
    let read = store.deployment("d-expiring").await.unwrap().unwrap();
    assert_eq!(read.expires_at, Some(4_000_000_000));
    // The table's TTL attribute is the one set.
    let item = aws_sdk_dynamodb::Client::new(&env.sdk)
        .get_item()
        .table_name(&env.table)
        .key("pk", AttributeValue::S("DEPLOYMENT#d-expiring".into()))
        .key("sk", AttributeValue::S("#DEPLOYMENT".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["expiresAt"], AttributeValue::N("4000000000".into()));
    store
        .expire_deployment("d-gone", 4_000_000_000)
        .await
        .unwrap();
    assert!(
        store.deployment("d-gone").await.unwrap().is_none(),
        "nothing made"
    );
}

#[tokio::test]
async fn a_services_deployments_are_listed_through_its_pointers_once_older_ones_are_indexed() {
    use paved_core::domain::environment::Target;
    use paved_core::ports::DeploymentWrite;
    let env = TestEnv::new().await;
    let store = env.store();
    let web = service("web", "acme/web", "main");
    let state = web.pipeline.clone().unwrap().state;
    let record = |id: &str, target: Target, at: f64| {
        paved_core::app::deploy::records::deployment(
            id,
            &ResourceName::parse("dev").unwrap(),
            target,
            state.clone(),
            Timestamp(1.0),
            Timestamp(at),
        )
    };
    let pipeline = Target::ServicePipeline {
        service: web.name.clone(),
    };
    let instance = Target::ServiceInstance {
        service: web.name.clone(),
        instance: ResourceName::parse("one").unwrap(),
    };
    let other = Target::ServicePipeline {
        service: ResourceName::parse("api").unwrap(),
    };
    store
        .change(DeploymentChange {
            deployments: vec![
                DeploymentWrite::Create(record("d1", pipeline.clone(), 10.0)),
                DeploymentWrite::Create(record("d2", instance, 20.0)),
                DeploymentWrite::Create(record("d3", other, 30.0)),
                DeploymentWrite::Create(record("d4", Target::Environment, 40.0)),
                DeploymentWrite::Create(record("d5", pipeline, 50.0)),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    // d2 as a deployment written before the index: no pointer.
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .delete_item()
        .table_name(&env.table)
        .key("pk", AttributeValue::S("SERVICE#web".into()))
        .key(
            "sk",
            AttributeValue::S(format!("DEPLOYMENT#{:020}#d2", u64::MAX - 20_000)),
        )
        .send()
        .await
        .unwrap();
    let page = |limit, cursor| PageRequest {
        limit: Some(limit),
        cursor,
    };
    assert!(
        store
            .service_deployments(&web.name, page(10, None))
            .await
            .unwrap()
            .is_none(),
        "not complete before the sweep has indexed older deployments"
    );
    assert_eq!(store.index_deployments().await.unwrap(), Some(4));
    assert_eq!(store.index_deployments().await.unwrap(), None, "once");
    let ids = |p: &paved_core::ports::Page<paved_core::domain::environment::Deployment>| {
        p.items.iter().map(|d| d.id.clone()).collect::<Vec<_>>()
    };
    let all = store
        .service_deployments(&web.name, page(10, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&all), ["d5", "d2", "d1"], "newest first, web's only");
    let first = store
        .service_deployments(&web.name, page(2, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&first), ["d5", "d2"]);
    let rest = store
        .service_deployments(&web.name, page(2, first.cursor.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&rest), ["d1"]);
    // A cursor of another service's listing is refused; a deleted deployment is left out.
    let api = ResourceName::parse("api").unwrap();
    assert!(matches!(
        store.service_deployments(&api, page(2, first.cursor)).await,
        Err(StoreError::BadCursor)
    ));
    store
        .change(DeploymentChange {
            deployments: vec![DeploymentWrite::Delete {
                id: "d2".into(),
                expected_rev: 1,
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let after = store
        .service_deployments(&web.name, page(10, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&after), ["d5", "d1"]);
}
