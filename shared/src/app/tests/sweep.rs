//! The scheduled sweep: a deployment whose workflow ended without recording its result is
//! recorded as failed without anyone reading it, and what follows it runs.

use super::*;
use crate::domain::service::ServiceStatus;
use crate::ports::DeploymentStore;

fn end_without_recording(w: &World, id: &str) {
    w.workflows
        .states
        .lock()
        .unwrap()
        .insert(id.to_string(), ExecutionState::Ended);
}

#[tokio::test]
async fn the_sweep_fails_what_ended_unrecorded_and_the_service_settles() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    // An environment update whose execution timed out before recording anything.
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    let update = w.last_started();
    end_without_recording(&w, &update);
    // A service whose only instance's execution was stopped.
    let services = super::components_and_services::services_on(&w).await;
    let before = w.started_count();
    services
        .create(super::components_and_services::a_new_service(&["a"]))
        .await
        .unwrap();
    let (_, instance) = w.started_since(before).pop().unwrap();
    end_without_recording(&w, &instance);

    let swept = w.engine.run(json!({"task": "sweep"})).await.unwrap();
    assert_eq!(swept["recorded"], 2, "{swept}");
    // Read straight from the store: no read path reconciled them.
    let env = w.store.environment(&name("dev")).await.unwrap().unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .as_deref()
            .unwrap()
            .contains("without recording a result")
    );
    let service = w.store.service(&name("api")).await.unwrap().unwrap();
    assert_eq!(service.status, ServiceStatus::CreateFailed);
    // Running again finds nothing more to do.
    let again = w.engine.run(json!({"task": "sweep"})).await.unwrap();
    assert_eq!(again["recorded"], 0, "{again}");
}

#[tokio::test]
async fn the_sweep_leaves_running_deployments_alone() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let id = w.last_started();
    w.workflows
        .states
        .lock()
        .unwrap()
        .insert(id.clone(), ExecutionState::Running);
    let swept = w.engine.run(json!({"task": "sweep"})).await.unwrap();
    assert_eq!(swept["recorded"], 0);
    assert_eq!(w.status("dev").await, DeploymentStatus::InProgress);
    w.run_deploy(&id).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
}
