//! The fleet view of a template, and rollback to an earlier successful deployment.

use super::*;
use crate::app::fleet::Fleet;
use crate::ports::DeploymentStore;

const WIDER: &str = "proton: EnvironmentSpec\nspec:\n  cidr: 10.9.0.0/16\n";

async fn in_use(w: &World, minor: u64) -> u64 {
    w.deployer
        .version_of(
            TemplateKind::Environment,
            &name("vpc"),
            VersionNumber { major: 1, minor },
        )
        .await
        .map(|v| v.in_use)
        .unwrap_or(0)
}

#[tokio::test]
async fn a_target_rolls_back_to_the_version_and_spec_of_an_earlier_deployment() {
    let w = World::new().await;
    let fleet = Fleet::new(w.deployer.clone());
    let first = w.create("dev", SPEC).await.unwrap();
    let first_id = first.deployed.last_attempted_deployment_id.clone().unwrap();
    w.run_deploy(&first_id).await;
    w.add_version(Some(1)).await; // 1.1
    w.update("dev", DeploymentType::MinorVersion, Some(WIDER))
        .await
        .unwrap();
    let second_id = w.last_started();
    w.run_deploy(&second_id).await;
    let view = fleet
        .view(TemplateKind::Environment, &name("vpc"))
        .await
        .unwrap();
    let dev = &view.targets[0];
    assert_eq!(
        (dev.name.as_str(), dev.version.as_str(), dev.staleness),
        ("dev", "1.1", "UP_TO_DATE")
    );
    assert_eq!(
        dev.last_succeeded_deployment_id.as_deref(),
        Some(second_id.as_str())
    );

    let id = fleet.rollback(&first_id).await.unwrap();
    w.run_deploy(&id).await;
    let env = w.store.environment(&name("dev")).await.unwrap().unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Succeeded);
    assert_eq!(env.deployed.state.version().to_string(), "1.0");
    assert_eq!(env.deployed.state.spec, SPEC);
    assert!(
        w.stacks
            .template_of(&env.deployed.stack_name)
            .unwrap()
            .contains("10.1.0.0/16"),
        "the stack runs the old spec again"
    );
    assert_eq!((in_use(&w, 0).await, in_use(&w, 1).await), (1, 0));
    let record = w.store.deployment(&id).await.unwrap().unwrap();
    assert_eq!(
        record
            .initial_state
            .map(|s| s.version().to_string())
            .as_deref(),
        Some("1.1")
    );
    let view = fleet
        .view(TemplateKind::Environment, &name("vpc"))
        .await
        .unwrap();
    assert_eq!(view.targets[0].staleness, "BEHIND_MINOR");

    // Forward again (to what the second deployment deployed), then 1.0 is deleted: a version
    // that is gone cannot be gone back to; nor can a deployment that failed.
    let again = fleet.rollback(&second_id).await.unwrap();
    w.run_deploy(&again).await;
    assert_eq!((in_use(&w, 0).await, in_use(&w, 1).await), (0, 1));
    w.catalog
        .delete_version(
            TemplateKind::Environment,
            &name("vpc"),
            VersionNumber { major: 1, minor: 0 },
        )
        .await
        .unwrap();
    let err = fleet.rollback(&first_id).await.unwrap_err();
    assert!(
        matches!(err, Error::Validation(ref m) if m.contains("version 1.0 of environment template vpc no longer exists")),
        "{err:?}"
    );
    *w.stacks.execute_result.lock().unwrap() = Some(StackState::Failed {
        status: "UPDATE_ROLLBACK_COMPLETE".into(),
        reason: "boom".into(),
    });
    w.update("dev", DeploymentType::CurrentVersion, Some(SPEC))
        .await
        .unwrap();
    let failed = w.last_started();
    w.run_deploy(&failed).await;
    let err = fleet.rollback(&failed).await.unwrap_err();
    assert!(
        matches!(err, Error::Validation(ref m) if m.contains("is FAILED, not a deployment that succeeded")),
        "{err:?}"
    );
    assert!(matches!(
        fleet.rollback("nope").await.unwrap_err(),
        Error::NotFound(_)
    ));
}
