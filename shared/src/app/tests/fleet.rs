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

/// Version 1.1 of `vpc`: the VPC's block comes from a new input, and a queue is added.
pub(super) async fn publish_wider_minor(w: &World) {
    let schema = SCHEMA.replace(
        "          default: 10.0.0.0/16\n",
        "          default: 10.0.0.0/16\n        block:\n          type: string\n          default: 10.200.0.0/16\n",
    );
    let template = "Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Properties:\n      CidrBlock: '{{ environment.inputs.block }}'\n  Queue:\n    Type: AWS::SQS::Queue\nOutputs:\n  VpcCidr:\n    Value: '{{ environment.inputs.cidr }}'\n";
    let file = tar::EntryType::Regular;
    w.bundles.put(
        "src",
        "env-1.1.tar.gz",
        pack(&[
            ("schema/schema.yaml", schema.as_bytes(), file),
            ("infrastructure/manifest.yaml", MANIFEST.as_bytes(), file),
            (
                "infrastructure/cloudformation.yaml",
                template.as_bytes(),
                file,
            ),
        ]),
    );
    w.catalog
        .create_version(
            TemplateKind::Environment,
            NewVersion {
                client_token: None,
                template_name: name("vpc"),
                description: None,
                major_version: Some(VersionPart(1)),
                source: VersionSource {
                    s3: Some(S3Source {
                        bucket: S3Bucket::parse("src").unwrap(),
                        key: S3Key::parse("env-1.1.tar.gz").unwrap(),
                    }),
                },
                tags: Default::default(),
                compatible_environment_templates: None,
                supported_component_sources: None,
            },
        )
        .await
        .unwrap();
    w.catalog
        .update_version(
            TemplateKind::Environment,
            VersionChange {
                template_name: name("vpc"),
                major_version: VersionPart(1),
                minor_version: VersionPart(1),
                description: None,
                status: Some(VersionStatus::Published),
                compatible_environment_templates: None,
                supported_component_sources: None,
            },
        )
        .await
        .unwrap();
}

fn request(targets: &[&str], spec: Option<&str>) -> crate::app::fleet::PreviewRequest {
    crate::app::fleet::PreviewRequest {
        template_name: name("vpc"),
        template_type: "ENVIRONMENT".into(),
        template_major_version: VersionPart(1),
        template_minor_version: Some(VersionPart(1)),
        targets: targets
            .iter()
            .map(|t| crate::app::fleet::PreviewTarget {
                environment_name: Some(name(t)),
                service_name: None,
                service_instance_name: None,
                pipeline: false,
            })
            .collect(),
        spec: spec.map(str::to_string),
    }
}

#[tokio::test]
async fn a_preview_plans_every_target_applies_nothing_and_sums_what_it_would_replace() {
    let w = World::new().await;
    for env in ["dev", "prod"] {
        w.create(env, SPEC).await.unwrap();
        w.run_deploy(&w.last_started()).await;
    }
    publish_wider_minor(&w).await;
    w.stacks
        .replaced_on_change
        .lock()
        .unwrap()
        .insert("Vpc".into());
    let fleet = Fleet::new(w.deployer.clone());
    let before = w.stacks.template_of("paved-environment-prod").unwrap();
    let (targets, summary) = fleet.preview(request(&[], None)).await.unwrap();
    assert_eq!(targets.len(), 2);
    for t in &targets {
        assert_eq!(
            (t.outcome, t.from_version.as_str(), t.to_version.as_str()),
            ("CHANGES", "1.0", "1.1"),
            "{t:?}"
        );
        let actions: Vec<(String, &str)> = t
            .actions
            .iter()
            .map(|a| (format!("{:?}", a.action), a.logical_id.as_str()))
            .collect();
        assert_eq!(
            actions,
            [("Add".to_string(), "Queue"), ("Replace".to_string(), "Vpc")]
        );
        assert!(
            t.diff.contains("+  Queue:") && t.diff.contains("-      CidrBlock: '10.1.0.0/16'"),
            "{}",
            t.diff
        );
    }
    assert_eq!((summary.targets, summary.add, summary.replace), (2, 2, 2));
    assert_eq!(summary.replaced["AWS::EC2::VPC"], 2);
    // Nothing was applied, and every plan was dropped.
    assert_eq!(
        w.stacks.template_of("paved-environment-prod").unwrap(),
        before
    );
    let calls = w.stacks.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("delete_change_set"))
            .count(),
        2,
        "{calls:?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("execute_change_set"))
            .count(),
        2,
        "only the two creations"
    );
    let env = w.store.environment(&name("prod")).await.unwrap().unwrap();
    assert_eq!(env.deployed.state.version().to_string(), "1.0");

    // A new spec for one target: the block given, so the VPC is replaced with it.
    let spec = "proton: EnvironmentSpec\nspec:\n  cidr: 10.1.0.0/16\n  block: 10.1.0.0/16\n";
    let (one, _) = fleet.preview(request(&["dev"], Some(spec))).await.unwrap();
    assert_eq!(one.len(), 1);
    assert!(
        !one[0].diff.contains("-      CidrBlock"),
        "the block did not change: {}",
        one[0].diff
    );
    assert_eq!(one[0].actions.len(), 1, "{:?}", one[0].actions);
    let err = fleet
        .preview(request(&["dev", "prod"], Some(spec)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Validation(ref m) if m.starts_with("spec:")),
        "{err:?}"
    );

    // A target being deployed is reported busy, not planned.
    w.update("prod", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    let (busy, _) = fleet.preview(request(&["prod"], None)).await.unwrap();
    assert_eq!(busy[0].outcome, "BUSY");
}

#[tokio::test]
async fn what_a_deployment_rendered_is_read_back_as_its_engine_got_it() {
    let w = World::new().await;
    w.create("dev", SPEC).await.unwrap();
    let first = w.last_started();
    w.run_deploy(&first).await;
    let deployments = crate::app::deployments::Deployments::new(w.deployer.clone());
    let rendered = deployments.rendered(&first).await.unwrap();
    assert_eq!(
        Some(rendered.clone()),
        w.stacks.template_of("paved-environment-dev")
    );
    assert!(rendered.contains("10.1.0.0/16"), "{rendered}");
    // A later deployment with another spec keeps its own; the first still reads as it was.
    w.update("dev", DeploymentType::CurrentVersion, Some(WIDER))
        .await
        .unwrap();
    let second = w.last_started();
    w.run_deploy(&second).await;
    assert!(
        deployments
            .rendered(&second)
            .await
            .unwrap()
            .contains("10.9.0.0/16")
    );
    assert_eq!(deployments.rendered(&first).await.unwrap(), rendered);
    assert!(matches!(
        deployments.rendered("nope").await,
        Err(Error::NotFound(_))
    ));
}
