//! Environments: deployments, updates, failures, cancels, deletes.

use super::*;

#[tokio::test]
async fn a_created_environment_deploys_its_rendered_template_and_records_outputs() {
    let w = World::new().await;
    let env = w.create("dev", SPEC).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::InProgress);
    let id = w.last_started();
    w.run_deploy(&id).await;
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(
        env.deployed.deployment_status,
        DeploymentStatus::Succeeded,
        "{:?}",
        env.deployed.deployment_status_message
    );
    assert_eq!(
        env.deployed.last_succeeded_deployment_id.as_deref(),
        Some(id.as_str())
    );
    let template = w.stacks.template_of("paved-environment-dev").unwrap();
    assert!(template.contains("CidrBlock: '10.1.0.0/16'"), "{template}");
    assert_eq!(env.deployed.outputs[0].key, "VpcCidr");
    assert_eq!(env.deployed.outputs[0].value, "10.1.0.0/16");
    assert_eq!(env.deployed.resources[0].name, "Vpc");
    let statuses: Vec<String> = w
        .events
        .published
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.resource == "Environment")
        .map(|e| e.status.clone())
        .collect();
    assert_eq!(statuses, ["IN_PROGRESS", "SUCCEEDED"]);
    let deployment = w.deployments.get(&id).await.unwrap();
    assert_eq!(deployment.status, DeploymentStatus::Succeeded);
    assert!(deployment.initial_state.is_none() && deployment.completed_at.is_some());
    // The version is in use now: it cannot be deleted.
    let err = w
        .catalog
        .delete_version(
            TemplateKind::Environment,
            &name("vpc"),
            VersionNumber { major: 1, minor: 0 },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("used by 1")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_no_op_update_succeeds_without_touching_the_stack() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
    let creates = w
        .stacks
        .calls()
        .iter()
        .filter(|c| c.starts_with("create_change_set"))
        .count();
    assert_eq!(creates, 1, "{:?}", w.stacks.calls());
    // CloudFormation's own verdict on an unchanged template is honoured too.
    w.update(
        "dev",
        DeploymentType::CurrentVersion,
        Some("proton: EnvironmentSpec\nspec:\n  cidr: 10.2.0.0/16\n"),
    )
    .await
    .unwrap();
    w.stacks
        .change_set_script
        .lock()
        .unwrap()
        .push_back(ChangeSetState::NoChanges);
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
    assert!(
        w.stacks
            .calls()
            .iter()
            .any(|c| c.starts_with("delete_change_set"))
    );
}

#[tokio::test]
async fn a_minor_version_update_moves_the_environment_and_the_version_in_use() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let minor = w.add_version(Some(1)).await;
    let env = w
        .update("dev", DeploymentType::MinorVersion, None)
        .await
        .unwrap();
    assert_eq!(env.deployed.state.version(), minor);
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
    let (_, old) = w
        .catalog
        .version(
            TemplateKind::Environment,
            &name("vpc"),
            VersionNumber { major: 1, minor: 0 },
        )
        .await
        .unwrap();
    let (_, new) = w
        .catalog
        .version(TemplateKind::Environment, &name("vpc"), minor)
        .await
        .unwrap();
    assert_eq!((old.in_use, new.in_use), (0, 1));
    let listed = w
        .deployments
        .list(Some(&name("dev")), Default::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    assert_eq!(
        listed.items[0].initial_state.as_ref().unwrap().minor,
        0,
        "newest first"
    );
}

#[tokio::test]
async fn a_refused_change_set_fails_the_deployment_and_a_later_one_succeeds() {
    let w = World::new().await;
    w.stacks
        .create_errors
        .lock()
        .unwrap()
        .push_back(CloudError::Rejected("Template format error: bad".into()));
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .as_deref()
            .unwrap()
            .contains("Template format error"),
        "{env:?}"
    );
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
}

#[tokio::test]
async fn a_failed_change_set_and_a_rolled_back_stack_are_reported_with_their_reasons() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;

    w.update(
        "dev",
        DeploymentType::CurrentVersion,
        Some("proton: EnvironmentSpec\nspec:\n  cidr: 10.3.0.0/16\n"),
    )
    .await
    .unwrap();
    w.stacks.change_set_script.lock().unwrap().extend([
        ChangeSetState::Pending,
        ChangeSetState::Failed("Role is invalid".into()),
    ]);
    w.run_deploy(&w.last_started()).await;
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .as_deref()
            .unwrap()
            .contains("Role is invalid")
    );

    w.update(
        "dev",
        DeploymentType::CurrentVersion,
        Some("proton: EnvironmentSpec\nspec:\n  cidr: 10.4.0.0/16\n"),
    )
    .await
    .unwrap();
    *w.stacks.execute_result.lock().unwrap() = Some(StackState::Failed {
        status: "UPDATE_ROLLBACK_COMPLETE".into(),
        reason: "Vpc: The CIDR '10.4.0.0/16' conflicts".into(),
    });
    w.stacks.state_script.lock().unwrap().extend([
        StackState::Complete,
        StackState::InProgress("UPDATE_IN_PROGRESS".into()),
    ]);
    w.run_deploy(&w.last_started()).await;
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    let message = env.deployed.deployment_status_message.unwrap();
    assert!(
        message.contains("UPDATE_ROLLBACK_COMPLETE") && message.contains("conflicts"),
        "{message}"
    );
}

#[tokio::test]
async fn a_stack_stuck_in_update_rollback_failed_is_named_and_the_environment_stays_deployable() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    w.update(
        "dev",
        DeploymentType::CurrentVersion,
        Some("proton: EnvironmentSpec\nspec:\n  cidr: 10.5.0.0/16\n"),
    )
    .await
    .unwrap();
    w.stacks
        .state_script
        .lock()
        .unwrap()
        .push_back(StackState::Failed {
            status: "UPDATE_ROLLBACK_FAILED".into(),
            reason: "Vpc: cannot delete".into(),
        });
    w.run_deploy(&w.last_started()).await;
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .unwrap()
            .contains("ContinueUpdateRollback")
    );
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
}

#[tokio::test]
async fn throttling_is_retried_to_success() {
    let w = World::new().await;
    w.stacks
        .create_errors
        .lock()
        .unwrap()
        .push_back(CloudError::Throttled("Rate exceeded".into()));
    w.create("dev", SPEC).await.unwrap();
    let id = w.last_started();
    let first = w
        .engine
        .run(json!({"task": "plan", "deploymentId": id}))
        .await
        .unwrap_err();
    assert_eq!(first.name(), "Retryable");
    w.run_deploy(&id).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
}

#[tokio::test]
async fn one_deployment_at_a_time() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let err = w
        .update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("in progress")),
        "{err:?}"
    );
    let err = w.environments.delete(&name("dev")).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
}

#[tokio::test]
async fn a_cancelled_update_rolls_back_and_the_environment_keeps_its_previous_state() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    w.update(
        "dev",
        DeploymentType::CurrentVersion,
        Some("proton: EnvironmentSpec\nspec:\n  cidr: 10.6.0.0/16\n"),
    )
    .await
    .unwrap();
    let id = w.last_started();
    let prepared = w
        .engine
        .run(json!({"task": "plan", "deploymentId": id}))
        .await
        .unwrap();
    let plan = prepared["plan"].clone();
    w.engine
        .run(json!({"task": "apply", "deploymentId": id, "plan": plan}))
        .await
        .unwrap();
    let env = w.environments.cancel(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Cancelling);
    w.stacks.state_script.lock().unwrap().extend([
        StackState::InProgress("UPDATE_IN_PROGRESS".into()),
        StackState::Failed {
            status: "UPDATE_ROLLBACK_COMPLETE".into(),
            reason: "cancelled".into(),
        },
    ]);
    let still = w
        .engine
        .run(json!({"task": "checkProgress", "deploymentId": id}))
        .await
        .unwrap();
    assert_eq!(still["done"], false);
    assert!(
        w.stacks
            .calls()
            .contains(&"cancel_update paved-environment-dev".to_string())
    );
    let done = w
        .engine
        .run(json!({"task": "checkProgress", "deploymentId": id}))
        .await
        .unwrap();
    assert_eq!(done["cancelled"], true);
    w.engine
        .run(json!({"task": "finish", "deploymentId": id, "cancelled": true}))
        .await
        .unwrap();
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Cancelled);
    assert_eq!(
        env.deployed.state.inputs["cidr"], "10.1.0.0/16",
        "back to the previous spec"
    );
    assert_eq!(
        w.deployments.get(&id).await.unwrap().status,
        DeploymentStatus::Cancelled
    );
    let err = w.environments.cancel(&name("dev")).await.unwrap_err();
    assert!(matches!(err, Error::Validation(_)));
}

#[tokio::test]
async fn a_cancel_before_the_change_set_runs_stops_without_touching_the_stack() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let id = w.last_started();
    w.environments.cancel(&name("dev")).await.unwrap();
    w.run_deploy(&id).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Cancelled);
    assert!(w.stacks.calls().is_empty(), "{:?}", w.stacks.calls());
}

#[tokio::test]
async fn a_workflow_that_never_starts_fails_the_deployment_at_once() {
    let w = World::new().await;
    w.workflows.refuse_starts.store(true, Ordering::SeqCst);
    let env = w.create("dev", SPEC).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .unwrap()
            .contains("could not start")
    );
    w.workflows.refuse_starts.store(false, Ordering::SeqCst);
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
}

#[tokio::test]
async fn a_workflow_that_ended_without_a_result_is_recorded_as_failed_on_the_next_read() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let id = w.last_started();
    w.workflows
        .states
        .lock()
        .unwrap()
        .insert(id.clone(), ExecutionState::Ended);
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .unwrap()
            .contains("timed out")
    );
    assert_eq!(
        w.deployments.get(&id).await.unwrap().status,
        DeploymentStatus::Failed
    );
}

#[tokio::test]
async fn a_render_error_in_the_workflow_fails_with_the_file_and_line() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let id = w.last_started();
    // The template version is gone by the time the workflow runs (a broken store, say).
    let mut deployment = w.deployments.get(&id).await.unwrap();
    deployment.target_state.minor = 9;
    use crate::ports::{DeploymentChange, DeploymentStore, DeploymentWrite};
    let rev = deployment.rev;
    deployment.rev += 1;
    w.store
        .change(DeploymentChange {
            deployments: vec![DeploymentWrite::Replace {
                deployment,
                expected_rev: rev,
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    w.run_deploy(&id).await;
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .unwrap()
            .contains("has no version 1.9")
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_written() {
    let w = World::new().await;
    for (spec, expected) in [
        (
            "proton: EnvironmentSpec\nspec:\n  cidr: 5\n",
            "spec.cidr: must be of type string",
        ),
        ("proton: ServiceSpec\n", "EnvironmentSpec"),
        (
            "proton: EnvironmentSpec\nspec:\n  cidr: \"x'\\n  Evil: 'y\"\n",
            "structure",
        ),
    ] {
        let err = w.create("dev", spec).await.unwrap_err();
        assert!(
            matches!(err, Error::Validation(ref m) if m.contains(expected)),
            "{spec}: {err:?}"
        );
    }
    assert!(
        w.environments
            .list(Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(w.workflows.started.lock().unwrap().is_empty());
}

#[tokio::test]
async fn deleting_an_environment_removes_its_stack_and_frees_its_version() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let env = w.environments.delete(&name("dev")).await.unwrap();
    assert_eq!(
        env.deployed.deployment_status,
        DeploymentStatus::DeleteInProgress
    );
    let again = w.environments.delete(&name("dev")).await.unwrap();
    assert_eq!(
        again.deployed.deployment_status,
        DeploymentStatus::DeleteInProgress,
        "a retried delete returns it"
    );
    let id = w.last_started();
    w.engine
        .run(json!({"task": "remove", "deploymentId": id}))
        .await
        .unwrap();
    let checked = w
        .engine
        .run(json!({"task": "checkRemoval", "deploymentId": id}))
        .await
        .unwrap();
    assert_eq!(checked["done"], true);
    w.engine
        .run(json!({"task": "finishRemoval", "deploymentId": id}))
        .await
        .unwrap();
    assert!(matches!(
        w.environments.get(&name("dev")).await,
        Err(Error::NotFound(_))
    ));
    assert!(w.stacks.template_of("paved-environment-dev").is_none());
    assert_eq!(
        w.deployments.get(&id).await.unwrap().status,
        DeploymentStatus::DeleteComplete
    );
    w.catalog
        .delete_version(
            TemplateKind::Environment,
            &name("vpc"),
            VersionNumber { major: 1, minor: 0 },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_retried_create_returns_the_environment_and_starts_nothing_new() {
    let w = World::new().await;
    let first = w.create("dev", SPEC).await.unwrap();
    let again = w.create("dev", SPEC).await.unwrap();
    assert_eq!(
        first.deployed.last_attempted_deployment_id,
        again.deployed.last_attempted_deployment_id
    );
    assert_eq!(w.workflows.started.lock().unwrap().len(), 1);
    let err = w
        .create(
            "dev",
            "proton: EnvironmentSpec\nspec:\n  cidr: 10.9.0.0/16\n",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("already exists")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_change_set_that_cannot_be_executed_fails_the_deployment() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let id = w.last_started();
    let result = w
        .engine
        .run(json!({"task": "apply", "deploymentId": id, "plan": "arn:changeSet/never-created"}))
        .await
        .unwrap_err();
    assert_eq!(result.name(), "PlanFailed");
    let caught = json!({"Error": "PlanFailed", "Cause": json!({"errorType": "PlanFailed", "errorMessage": result.to_string()}).to_string()});
    w.engine
        .run(json!({"task": "fail", "deploymentId": id, "error": caught}))
        .await
        .unwrap();
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert!(
        env.deployed
            .deployment_status_message
            .unwrap()
            .contains("never-created")
    );
    // Recording the failure twice (a retried Catch) changes nothing.
    w.engine
        .run(json!({"task": "fail", "deploymentId": id, "error": caught}))
        .await
        .unwrap();
    assert_eq!(
        w.events
            .published
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.status == "FAILED")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_step_that_timed_out_is_recorded_with_what_happened() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let id = w.last_started();
    let caught = json!({"Error": "States.Timeout", "Cause": "Task timed out after 120.00 seconds"});
    w.engine
        .run(json!({"task": "fail", "deploymentId": id, "error": caught}))
        .await
        .unwrap();
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(
        env.deployed.deployment_status_message.as_deref(),
        Some("a deployment step timed out: Task timed out after 120.00 seconds")
    );
}

#[tokio::test]
async fn template_version_status_changes_reach_the_bus() {
    let w = World::new().await;
    let versions: Vec<(String, String, Option<String>)> = w
        .events
        .published
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.resource == "Environment Template Version")
        .map(|e| (e.name.clone(), e.status.clone(), e.previous_status.clone()))
        .collect();
    assert_eq!(
        versions,
        vec![
            ("vpc:1.0".into(), "DRAFT".into(), None),
            ("vpc:1.0".into(), "PUBLISHED".into(), Some("DRAFT".into())),
        ]
    );
}

/// IAM as a map of role ARN to trust policy; a role not in it does not exist.
pub(super) struct Iam(pub std::collections::HashMap<String, String>, pub bool);

#[async_trait::async_trait]
impl crate::ports::Roles for Iam {
    async fn trust(
        &self,
        role_arn: &str,
    ) -> Result<crate::ports::RoleTrust, crate::ports::StoreError> {
        if self.1 {
            return Err(crate::ports::StoreError::Backend("AccessDenied".into()));
        }
        Ok(match self.0.get(role_arn) {
            Some(policy) => crate::ports::RoleTrust::Policy(policy.clone()),
            None => crate::ports::RoleTrust::Missing,
        })
    }
}

#[tokio::test]
async fn roles_are_checked_to_trust_cloudformation_where_iam_can_be_read() {
    let trusting = r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": "cloudformation.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
    let proton_only = r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": "proton.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
    let mut w = World::new().await;
    let iam = Iam(
        [
            (
                "arn:aws:iam::123456789012:role/proton".to_string(),
                proton_only.to_string(),
            ),
            (
                "arn:aws:iam::123456789012:role/components".to_string(),
                trusting.to_string(),
            ),
        ]
        .into(),
        false,
    );
    w.deployer.roles = Some(std::sync::Arc::new(iam));
    w.environments = Environments::new(w.deployer.clone());
    let err = w.create("dev", SPEC).await.unwrap_err();
    assert!(
        matches!(err, Error::Validation(ref m) if m.starts_with("protonServiceRoleArn") && m.contains("\"Service\": \"cloudformation.amazonaws.com\"")),
        "{err:?}"
    );
    assert!(
        w.environments.get(&name("dev")).await.is_err(),
        "nothing written"
    );
    // IAM that cannot be read leaves the role unchecked.
    w.deployer.roles = Some(std::sync::Arc::new(Iam(Default::default(), true)));
    w.environments = Environments::new(w.deployer.clone());
    w.create("dev", SPEC).await.unwrap();
}

#[tokio::test]
async fn a_deployment_record_expires_once_it_cannot_be_what_its_target_runs() {
    use crate::ports::DeploymentStore;
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let first = w.last_started();
    w.run_deploy(&first).await;
    let record = |id: String| {
        let store = w.store.clone();
        async move { store.deployment(&id).await.unwrap().unwrap() }
    };
    // The target's last success is kept, however old.
    assert_eq!(record(first.clone()).await.expires_at, None);
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    let second = w.last_started();
    w.run_deploy(&second).await;
    let superseded = record(first.clone()).await;
    let done = record(second.clone()).await;
    assert_eq!(done.expires_at, None);
    let kept_for =
        superseded.expires_at.expect("superseded: it may go") as f64 - done.completed_at.unwrap().0;
    assert!(
        (kept_for - 180.0 * 86_400.0).abs() < 5.0,
        "kept 180 days: {kept_for}"
    );
    // One that failed may go 180 days after it ended; the success before it stays.
    *w.stacks.execute_result.lock().unwrap() = Some(StackState::Failed {
        status: "UPDATE_ROLLBACK_COMPLETE".into(),
        reason: "boom".into(),
    });
    w.update(
        "dev",
        DeploymentType::CurrentVersion,
        Some("proton: EnvironmentSpec\nspec:\n  cidr: 10.9.0.0/16\n"),
    )
    .await
    .unwrap();
    let failed = w.last_started();
    w.run_deploy(&failed).await;
    let failed = record(failed).await;
    assert_eq!(failed.status, DeploymentStatus::Failed);
    assert!(failed.expires_at.is_some());
    assert_eq!(record(second).await.expires_at, None);
}
