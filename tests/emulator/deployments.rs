//! The DynamoDB deployment store: services found by repository and branch through the index,
//! webhook deliveries remembered once, deployment client tokens written with their change.

use paved_core::domain::environment::{Deployed, DeployedState, DeploymentStatus};
use paved_core::domain::names::{ResourceName, Timestamp};
use paved_core::domain::service::{Repository, Service, ServiceStatus};
use paved_core::ports::{
    Deliveries, DeploymentChange, DeploymentStore, ServiceWrite, StoreError, TokenRecord,
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
