//! Tags: kept on every record, changed with tag and untag, carried to the stacks by the next
//! deployment together with paved's own `proton:*` tags.

use super::*;
use crate::app::tags::Tagging;
use crate::domain::names::{Tag, TagKey, TagValue, Tags};

fn tags(pairs: &[(&str, &str)]) -> Tags {
    Tags::parse(
        pairs
            .iter()
            .map(|(k, v)| Tag {
                key: TagKey::parse(*k).unwrap(),
                value: TagValue::parse(*v).unwrap(),
            })
            .collect(),
    )
    .unwrap()
}

fn keys(names: &[&str]) -> Vec<TagKey> {
    names.iter().map(|k| TagKey::parse(*k).unwrap()).collect()
}

fn tagging(w: &World) -> Tagging {
    Tagging::new(
        w.deployer.catalog.clone(),
        w.deployer.store.clone(),
        w.deployer.arns.clone(),
    )
}

const ENV_ARN: &str = "arn:aws:proton:us-east-1:123456789012:environment/dev";

#[tokio::test]
async fn a_stack_carries_paved_tags_and_the_customers_and_a_tag_change_reaches_it_on_the_next_deployment()
 {
    let w = World::new().await;
    w.environments
        .create(NewEnvironment {
            tags: tags(&[("cost-center", "42"), ("team", "platform")]),
            name: name("dev"),
            template_name: name("vpc"),
            template_major_version: VersionPart(1),
            template_minor_version: None,
            spec: SPEC.into(),
            proton_service_role_arn: Some(
                Arn::parse("arn:aws:iam::123456789012:role/proton").unwrap(),
            ),
            component_role_arn: None,
            description: None,
            unsupported: Default::default(),
        })
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    let on_stack = w.stacks.tags_of("paved-environment-dev").unwrap();
    assert_eq!(on_stack["proton:account"], "123456789012");
    assert_eq!(
        on_stack["proton:template"],
        "arn:aws:proton:us-east-1:123456789012:environment-template/vpc"
    );
    assert_eq!(on_stack["proton:environment"], ENV_ARN);
    assert_eq!(on_stack["cost-center"], "42");
    assert_eq!(on_stack["team"], "platform");
    assert_eq!(on_stack.len(), 5, "{on_stack:?}");

    let tagging = tagging(&w);
    tagging
        .tag(ENV_ARN, tags(&[("team", "network"), ("stage", "dev")]))
        .await
        .unwrap();
    tagging
        .untag(ENV_ARN, keys(&["cost-center", "absent"]))
        .await
        .unwrap();
    let listed = tagging.list(ENV_ARN).await.unwrap().to_map();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed["team"], "network");
    assert_eq!(
        w.stacks.tags_of("paved-environment-dev").unwrap()["team"],
        "platform",
        "a tag change alone deploys nothing"
    );

    // The template is unchanged, the tags are not: the redeployment changes the stack.
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);
    let on_stack = w.stacks.tags_of("paved-environment-dev").unwrap();
    assert_eq!(on_stack["team"], "network");
    assert_eq!(on_stack["stage"], "dev");
    assert!(!on_stack.contains_key("cost-center"), "{on_stack:?}");
    let creates = |w: &World| {
        w.stacks
            .calls()
            .iter()
            .filter(|c| c.starts_with("create_change_set"))
            .count()
    };
    assert_eq!(creates(&w), 2);
    // Nothing changed now: no change set at all.
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    w.run_deploy(&w.last_started()).await;
    assert_eq!(creates(&w), 2, "{:?}", w.stacks.calls());
}

#[tokio::test]
async fn templates_and_their_versions_are_tagged_and_the_limits_hold_with_nothing_changed() {
    let w = World::new().await;
    let tagging = tagging(&w);
    let template = "arn:aws:proton:us-east-1:123456789012:environment-template/vpc";
    let version = "arn:aws:proton:us-east-1:123456789012:environment-template/vpc:1.0";
    tagging
        .tag(template, tags(&[("owner", "ana")]))
        .await
        .unwrap();
    tagging
        .tag(version, tags(&[("reviewed", "yes")]))
        .await
        .unwrap();
    assert_eq!(
        tagging.list(template).await.unwrap().to_map()["owner"],
        "ana"
    );
    assert_eq!(
        tagging.list(version).await.unwrap().to_map()["reviewed"],
        "yes"
    );
    // The version is still what it was otherwise: published, usable.
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    assert_eq!(w.status("dev").await, DeploymentStatus::Succeeded);

    // 49 more keys fit beside "owner"; one more does not, and nothing is written.
    let many: Vec<(String, String)> = (0..49).map(|i| (format!("k{i}"), "v".into())).collect();
    let pairs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    tagging.tag(template, tags(&pairs)).await.unwrap();
    let err = tagging
        .tag(template, tags(&[("one-too-many", "v")]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Validation(ref m) if m.contains("at most 50")),
        "{err:?}"
    );
    assert_eq!(tagging.list(template).await.unwrap().as_slice().len(), 50);
    // Replacing the value of a key it has is no new tag.
    tagging.tag(template, tags(&[("k0", "w")])).await.unwrap();
}

#[tokio::test]
async fn arns_of_nothing_paved_keeps_are_not_found() {
    let w = World::new().await;
    let tagging = tagging(&w);
    for arn in [
        "arn:aws:proton:us-east-1:123456789012:environment/none",
        "arn:aws:proton:us-east-1:999999999999:environment-template/vpc",
        "arn:aws:proton:eu-west-1:123456789012:environment-template/vpc",
        "arn:aws:proton:us-east-1:123456789012:environment-template/vpc:9.0",
        "arn:aws:proton:us-east-1:123456789012:environment-template/vpc:x",
        "arn:aws:proton:us-east-1:123456789012:repository/github:acme/web",
        "arn:aws:sns:us-east-1:123456789012:topic",
    ] {
        let err = tagging.tag(arn, tags(&[("a", "b")])).await.unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{arn}: {err:?}");
        assert!(matches!(
            tagging.list(arn).await.unwrap_err(),
            Error::NotFound(_)
        ));
    }
}
