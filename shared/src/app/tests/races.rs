//! Requests that run together, on a store that interleaves them at every storage call (as
//! DynamoDB does, and moto, which serialises, does not): one clientToken gets one answer.

use std::sync::Arc;

use super::components_and_services::{MANIFEST_FOR_RACES, deployed_service_in};
use super::*;
use crate::app::components::{Components, NewComponent};
use crate::app::environments::Environments;
use crate::app::services::InstanceUpdate;
use crate::domain::names::ClientToken;

const TRIALS: usize = 10;

#[tokio::test]
async fn ten_updates_of_an_instance_with_one_client_token_get_one_answer_and_one_deployment() {
    let w = World::interleaving().await;
    let services = Arc::new(deployed_service_in(&w, &["a"]).await);
    let before = w.started_count();
    let update = InstanceUpdate {
        name: name("a"),
        service_name: name("api"),
        deployment_type: DeploymentType::CurrentVersion,
        spec: None,
        template_major_version: None,
        template_minor_version: None,
        client_token: Some(ClientToken::parse("same-token").unwrap()),
    };
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..TRIALS {
        let (services, update) = (services.clone(), update.clone());
        calls.spawn(async move { services.update_instance(update).await });
    }
    let answers: Vec<_> = calls.join_all().await;
    let ids: std::collections::BTreeSet<_> = answers
        .iter()
        .map(|a| match a {
            Ok(instance) => instance.deployed.last_attempted_deployment_id.clone(),
            Err(error) => panic!("a twin was refused: {error:?}"),
        })
        .collect();
    assert_eq!(ids.len(), 1, "one deployment for all: {ids:?}");
    assert_eq!(w.started_since(before).len(), 1);
}

#[tokio::test]
async fn ten_creates_of_a_component_with_one_client_token_get_one_answer() {
    let w = World::interleaving().await;
    deployed_service_in(&w, &["a"]).await;
    let components = Arc::new(Components::new(w.deployer.clone()));
    let before = w.started_count();
    let new = NewComponent {
        tags: Default::default(),
        name: name("files"),
        description: None,
        environment_name: Some(name("dev")),
        service_name: None,
        service_instance_name: None,
        manifest: MANIFEST_FOR_RACES.into(),
        template_file: "Resources:\n  B:\n    Type: AWS::S3::Bucket\n".into(),
        service_spec: None,
        client_token: Some(ClientToken::parse("one").unwrap()),
    };
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..TRIALS {
        let (components, new) = (components.clone(), new.clone());
        calls.spawn(async move { components.create(new).await });
    }
    for answer in calls.join_all().await {
        let component = answer.unwrap_or_else(|e| panic!("a twin was refused: {e:?}"));
        assert_eq!(component.name, name("files"));
    }
    assert_eq!(w.started_since(before).len(), 1, "one deployment");
    // Another request under the same token is still refused.
    let other = NewComponent {
        template_file: "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n".into(),
        ..new
    };
    assert!(matches!(
        components.create(other).await.unwrap_err(),
        Error::Validation(_)
    ));
}

#[tokio::test]
async fn a_create_retried_with_other_parameters_is_a_conflict_and_the_same_one_gets_the_resource() {
    let w = World::new().await;
    let first = w.create("dev", SPEC).await.unwrap();
    assert_eq!(w.create("dev", SPEC).await.unwrap().rev, first.rev);
    let other_role = w
        .environments
        .create(NewEnvironment {
            tags: Default::default(),
            name: name("dev"),
            template_name: name("vpc"),
            template_major_version: VersionPart(1),
            template_minor_version: None,
            spec: SPEC.into(),
            proton_service_role_arn: Some(
                Arn::parse("arn:aws:iam::123456789012:role/someone-else").unwrap(),
            ),
            component_role_arn: Some(
                Arn::parse("arn:aws:iam::123456789012:role/components").unwrap(),
            ),
            description: None,
            unsupported: Default::default(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(other_role, Error::Conflict(ref m) if m.contains("other parameters")),
        "{other_role:?}"
    );
    w.run_deploy(&w.last_started()).await;

    let services = super::components_and_services::services_on(&w).await;
    let new = super::components_and_services::a_new_service(&["a"]);
    let created = services.create(new.clone()).await.unwrap();
    assert_eq!(services.create(new.clone()).await.unwrap().rev, created.rev);
    let moved = crate::app::services::NewService {
        repository_id: Some(crate::domain::names::RepositoryId::parse("acme/other").unwrap()),
        ..new
    };
    let err = services.create(moved).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(
        services
            .get(&name("api"))
            .await
            .unwrap()
            .repository
            .id
            .as_deref(),
        Some("acme/api")
    );
}

/// Runs every workflow started since `before` (and those they start) to its end.
async fn settle_all(w: &World, mut before: usize) {
    loop {
        let started = w.started_since(before);
        if started.is_empty() {
            return;
        }
        before += started.len();
        for (workflow, id) in started {
            match workflow {
                Workflow::Deploy => w.run_deploy(&id).await,
                Workflow::Delete => w.run_delete(&id).await,
                Workflow::Redeploy | Workflow::Upgrade => {}
            }
        }
    }
}

#[tokio::test]
async fn delete_environment_racing_create_service_or_component_leaves_nothing_in_a_deleted_one() {
    let mut outcomes = std::collections::BTreeMap::new();
    for trial in 0..20 {
        let w = World::interleaving().await;
        w.create("dev", SPEC).await.unwrap();
        w.run_deploy(&w.last_started()).await;
        let services = Arc::new(super::components_and_services::services_on(&w).await);
        let components = Arc::new(Components::new(w.deployer.clone()));
        let environments = Arc::new(Environments::new(w.deployer.clone()));
        let before = w.started_count();
        // Odd trials race a component, even ones a service; the deletion starts a different
        // number of turns later in each, so the two interleave at different points.
        let delete = {
            let environments = environments.clone();
            tokio::spawn(async move {
                for _ in 0..trial / 2 {
                    tokio::task::yield_now().await;
                }
                environments.delete(&name("dev")).await.is_ok()
            })
        };
        let create = if trial % 2 == 0 {
            let services = services.clone();
            tokio::spawn(async move {
                services
                    .create(super::components_and_services::a_new_service(&["a"]))
                    .await
                    .is_ok()
            })
        } else {
            let components = components.clone();
            tokio::spawn(async move {
                components
                    .create(NewComponent {
                        tags: Default::default(),
                        name: name("files"),
                        description: None,
                        environment_name: Some(name("dev")),
                        service_name: None,
                        service_instance_name: None,
                        manifest: MANIFEST_FOR_RACES.into(),
                        template_file: "Resources:\n  B:\n    Type: AWS::S3::Bucket\n".into(),
                        service_spec: None,
                        client_token: None,
                    })
                    .await
                    .is_ok()
            })
        };
        let (deleted, created) = (delete.await.unwrap(), create.await.unwrap());
        settle_all(&w, before).await;
        let environment = w.deployer.store.environment(&name("dev")).await.unwrap();
        let instances = w
            .deployer
            .store
            .instances_in(&name("dev"), 10)
            .await
            .unwrap();
        let in_it = w
            .deployer
            .store
            .components(Some(&name("dev")), Default::default())
            .await
            .unwrap()
            .items;
        let placed = !instances.is_empty() || !in_it.is_empty();
        if let Some(environment) = &environment {
            assert!(
                !environment.deployed.deployment_status.is_active(),
                "trial {trial}: {:?}",
                environment.deployed.deployment_status
            );
        }
        assert!(
            environment.is_some() || !placed,
            "trial {trial}: something runs in a deleted environment (deleted {deleted}, created {created})"
        );
        *outcomes
            .entry((deleted, created, environment.is_some(), placed))
            .or_insert(0) += 1;
        if std::env::var("PAVED_SHOW_RACES").is_ok() {
            eprintln!(
                "trial {trial}: deleted {deleted} created {created} env {} placed {placed}",
                environment.is_some()
            );
        }
    }
    // Both kinds of winner happen across the trials.
    assert!(outcomes.len() > 1, "{outcomes:?}");
}
