//! The seam: a second provisioning engine, driven by the same kernel and the same state
//! machine definitions as CloudFormation.

use super::*;
use crate::ports::Progress;

#[tokio::test]
async fn an_environment_deploys_updates_and_deletes_on_the_scripted_engine() {
    let w = World::on(Engine::Scripted).await;
    let env = w.create("dev", SPEC).await.unwrap();
    assert_eq!(env.deployed.engine.wire_name(), "SCRIPTED");
    assert_eq!(env.deployed.stack_name, "scripted/environment/dev");
    let id = w.last_started();
    assert_eq!(w.run_machine("deploy", &id).await, Ok(w.final_input(&id)));
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Succeeded);
    assert_eq!(env.deployed.outputs[0].key, "VpcCidr");
    assert_eq!(env.deployed.outputs[0].value, "10.1.0.0/16");
    let applied = w.scripted.applied("scripted/environment/dev").unwrap();
    assert!(applied.contains("CidrBlock: '10.1.0.0/16'"), "{applied}");
    assert!(w.stacks.calls().is_empty(), "CloudFormation was not used");

    // The same spec again: the engine says nothing changes, and nothing is applied.
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
    let applies = w
        .scripted
        .calls()
        .iter()
        .filter(|c| c.starts_with("apply"))
        .count();
    assert_eq!(applies, 1, "{:?}", w.scripted.calls());

    w.environments.delete(&name("dev")).await.unwrap();
    let id = w.last_started();
    assert!(w.run_machine("delete", &id).await.is_ok());
    assert!(w.scripted.applied("scripted/environment/dev").is_none());
    assert!(matches!(
        w.environments.get(&name("dev")).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        w.deployments.get(&id).await.unwrap().status,
        DeploymentStatus::DeleteComplete
    );
}

#[tokio::test]
async fn what_the_scripted_engine_reports_as_failed_fails_the_deployment_with_its_reason() {
    let w = World::on(Engine::Scripted).await;
    w.create("dev", SPEC).await.unwrap();
    w.scripted.progress_script.lock().unwrap().extend([
        Progress::Running,
        Progress::Failed("workspace dev: quota exceeded".into()),
    ]);
    let id = w.last_started();
    assert_eq!(
        w.run_machine("deploy", &id).await,
        Err("DeploymentFailed".to_string())
    );
    let env = w.environments.get(&name("dev")).await.unwrap();
    assert_eq!(env.deployed.deployment_status, DeploymentStatus::Failed);
    assert_eq!(
        env.deployed.deployment_status_message.as_deref(),
        Some("workspace dev: quota exceeded")
    );
}

#[tokio::test]
async fn a_target_keeps_the_engine_it_was_first_deployed_by() {
    // Deployed on CloudFormation, then the platform's default engine changes: the
    // environment's next deployment still goes to CloudFormation.
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let mut moved = w.deployer.clone();
    let scripted: Arc<dyn crate::ports::Provisioner> = w.scripted.clone();
    moved.provisioners = crate::app::deploy::Provisioners::new(scripted).with(Arc::new(
        crate::adapters::cloudformation::CloudFormation::new(w.stacks.clone()),
    ));
    let environments = Environments::new(moved.clone());
    environments
        .update(EnvironmentUpdate {
            name: name("dev"),
            deployment_type: DeploymentType::CurrentVersion,
            spec: Some("proton: EnvironmentSpec\nspec:\n  cidr: 10.4.0.0/16\n".into()),
            template_major_version: None,
            template_minor_version: None,
            proton_service_role_arn: None,
            component_role_arn: None,
            description: None,
            unsupported: Default::default(),
        })
        .await
        .unwrap();
    let id = w.last_started();
    let tasks = Tasks::new(moved);
    let ended = execute(
        &machine("deploy"),
        json!({"deploymentId": id, "pollSeconds": 0}),
        |payload| tasks.run(payload),
    )
    .await;
    assert!(ended.is_ok(), "{ended:?}");
    let template = w.stacks.template_of("paved-environment-dev").unwrap();
    assert!(template.contains("10.4.0.0/16"), "{template}");
    assert!(w.scripted.calls().is_empty(), "{:?}", w.scripted.calls());
}
