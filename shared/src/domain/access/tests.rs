use std::collections::BTreeMap;

use super::*;

const ACCOUNT: &str = "123456789012";
const ACTIONS: &[&str] = &[
    "CreateService",
    "UpdateServiceInstance",
    "CreateServiceInstance",
    "CreateEnvironment",
    "GetService",
    "ListServices",
    "TagResource",
    "PassRole",
    "DeleteService",
    "UpdateService",
    "UpdateServicePipeline",
    "CancelServiceInstanceDeployment",
    "CancelServicePipelineDeployment",
    "GetServiceInstance",
    "ListServiceInstances",
    "NotifyResourceDeploymentStatusChange",
];

fn user(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{name}")
}

fn caller(arn: &str) -> Caller {
    Caller {
        principal: Principal::new(arn),
        source_ip: Some("127.0.0.1".into()),
        request_id: "r-1".into(),
    }
}

fn personas() -> AccessDocument {
    AccessDocument::personas(
        vec![user("platform")],
        vec![user("dev-*")],
        vec![user("auditor")],
        vec![format!("arn:aws:iam::{ACCOUNT}:role/paved-pipeline")],
    )
}

fn service(name: &str) -> Resource {
    Resource::new(
        ResourceKind::Service,
        format!("arn:aws:proton:us-east-1:{ACCOUNT}:service/{name}"),
    )
}

fn environment(name: &str, stage: &str) -> Resource {
    let tags = BTreeMap::from([("stage".to_string(), stage.to_string())]);
    Resource::new(
        ResourceKind::Environment,
        format!("arn:aws:proton:us-east-1:{ACCOUNT}:environment/{name}"),
    )
    .tagged(tags)
}

fn instance(service: &str, name: &str, env: Resource) -> Resource {
    Resource::new(
        ResourceKind::ServiceInstance,
        format!("arn:aws:proton:us-east-1:{ACCOUNT}:service/{service}/service-instance/{name}"),
    )
    .in_environment(env)
}

fn template(name: &str) -> String {
    format!("arn:aws:proton:us-east-1:{ACCOUNT}:service-template/{name}")
}

fn allowed(doc: &AccessDocument, who: &str, request: AccessRequest) -> bool {
    let authorizer = Authorizer::compile(doc, ACTIONS).unwrap();
    authorizer.decide(&caller(who), &request).allowed
}

#[test]
fn the_personas_allow_what_protons_managed_policies_allowed() {
    let doc = personas();
    let create = || AccessRequest::new("CreateService", service("api"));
    assert!(allowed(&doc, &user("platform"), create()));
    assert!(allowed(&doc, &user("dev-alice"), create()));
    assert!(!allowed(&doc, &user("auditor"), create()));
    assert!(allowed(
        &doc,
        &user("auditor"),
        AccessRequest::new("GetService", service("api"))
    ));
    // Developers: not CreateServiceInstance, not environments, not tags, no roles.
    for action in [
        "CreateServiceInstance",
        "CreateEnvironment",
        "TagResource",
        "PassRole",
    ] {
        assert!(
            !allowed(
                &doc,
                &user("dev-alice"),
                AccessRequest::new(action, service("api"))
            ),
            "{action}"
        );
        assert!(allowed(
            &doc,
            &user("platform"),
            AccessRequest::new(action, service("api"))
        ));
    }
    // Someone in no group can do nothing, not even read.
    assert!(!allowed(
        &doc,
        &user("stranger"),
        AccessRequest::new("ListServices", service("api"))
    ));
}

#[test]
fn an_assumed_role_session_is_matched_by_its_roles_arn() {
    let doc = personas();
    let session = format!("arn:aws:sts::{ACCOUNT}:assumed-role/paved-pipeline/codebuild-1");
    let update = AccessRequest::new(
        "UpdateServiceInstance",
        instance("api", "dev", environment("dev", "dev")),
    );
    assert!(allowed(&doc, &session, update));
    assert!(!allowed(
        &doc,
        &session,
        AccessRequest::new("CreateService", service("api"))
    ));
}

#[test]
fn a_principal_tag_puts_a_caller_in_a_group() {
    let mut doc = personas();
    doc.groups[1]
        .principal_tags
        .insert("team".into(), "apps".into());
    let mut tagged = caller(&user("bob"));
    tagged.principal.tags.insert("team".into(), "apps".into());
    let authorizer = Authorizer::compile(&doc, ACTIONS).unwrap();
    let create = AccessRequest::new("CreateService", service("api"));
    assert!(authorizer.decide(&tagged, &create).allowed);
    assert!(!authorizer.decide(&caller(&user("bob")), &create).allowed);
}

#[test]
fn a_condition_key_narrows_developers_to_some_templates() {
    let mut doc = personas();
    doc.policies.push_str(&format!(
        r#"
@id("only-fargate")
forbid (principal in Paved::Group::"developers", action == Paved::Action::"CreateService", resource)
unless {{ context has "proton:ServiceTemplate" && context["proton:ServiceTemplate"] == "{}" }};
"#,
        template("fargate")
    ));
    let create = |t: &str| {
        AccessRequest::new("CreateService", service("api"))
            .with("proton:ServiceTemplate", template(t))
    };
    assert!(allowed(&doc, &user("dev-a"), create("fargate")));
    assert!(!allowed(&doc, &user("dev-a"), create("lambda")));
    assert!(allowed(&doc, &user("platform"), create("lambda")));
    let authorizer = Authorizer::compile(&doc, ACTIONS).unwrap();
    let decision = authorizer.decide(&caller(&user("dev-a")), &create("lambda"));
    assert_eq!(decision.policies, vec!["only-fargate".to_string()]);
}

#[test]
fn an_environment_tag_narrows_developers_to_some_environments() {
    let mut doc = personas();
    doc.policies.push_str(
        r#"
@id("dev-environments-only")
forbid (principal in Paved::Group::"developers", action, resource is Paved::ServiceInstance)
unless { resource.environment.hasTag("stage") && resource.environment.getTag("stage") == "dev" };
"#,
    );
    let update =
        |env: Resource| AccessRequest::new("UpdateServiceInstance", instance("api", "x", env));
    assert!(allowed(
        &doc,
        &user("dev-a"),
        update(environment("dev", "dev"))
    ));
    assert!(!allowed(
        &doc,
        &user("dev-a"),
        update(environment("prod", "prod"))
    ));
    // Untagged counts as not dev.
    let bare = Resource::new(
        ResourceKind::Environment,
        "arn:aws:proton:us-east-1:123456789012:environment/x",
    );
    assert!(!allowed(&doc, &user("dev-a"), update(bare)));
    assert!(allowed(
        &doc,
        &user("platform"),
        update(environment("prod", "prod"))
    ));
}

#[test]
fn request_and_resource_tags_are_condition_keys() {
    let mut doc = personas();
    doc.policies.push_str(
        r#"
@id("cost-center")
forbid (principal in Paved::Group::"developers", action == Paved::Action::"CreateService", resource)
unless { context has "aws:RequestTag/cost-center" };
"#,
    );
    let bare = AccessRequest::new("CreateService", service("api")).with_request_tags([]);
    let tagged = AccessRequest::new("CreateService", service("api"))
        .with_request_tags([("cost-center", "42")]);
    assert!(!allowed(&doc, &user("dev-a"), bare));
    assert!(allowed(&doc, &user("dev-a"), tagged));
}

#[test]
fn documents_that_cannot_mean_what_they_say_are_refused() {
    let check = |policies: &str| {
        let mut doc = personas();
        doc.policies = policies.to_string();
        Authorizer::compile(&doc, ACTIONS).err().unwrap_or_default()
    };
    assert!(check("permit (principal, action, resource").contains("policies:"));
    assert!(
        check(r#"permit (principal, action == Paved::Action::"CreatService", resource);"#)
            .contains("is not an action")
    );
    assert!(
        check(r#"permit (principal in Paved::Group::"admins", action, resource);"#)
            .contains("no group is named \"admins\"")
    );
    assert!(check("permit (principal == ?principal, action, resource);").contains("templates"));
    let mut doc = personas();
    doc.groups.push(Group::new("platform", vec![user("x")]));
    assert!(
        Authorizer::compile(&doc, ACTIONS)
            .unwrap_err()
            .contains("named twice")
    );
    let mut doc = personas();
    doc.groups[0].principals = vec!["platform".into()];
    assert!(
        Authorizer::compile(&doc, ACTIONS)
            .unwrap_err()
            .contains("not an ARN pattern")
    );
}

#[test]
fn globs_match_whole_values() {
    assert!(glob(
        "arn:aws:iam::*:role/dev-*",
        "arn:aws:iam::1:role/dev-a"
    ));
    assert!(!glob(
        "arn:aws:iam::*:role/dev-*",
        "arn:aws:iam::1:role/prod-a"
    ));
    assert!(glob("a?c", "abc"));
    assert!(!glob("a?c", "abbc"));
    assert!(glob("*", ""));
    assert!(!glob("abc", "abcd"));
    assert!(glob("*b*", "abc"));
}

#[test]
fn resource_kinds_come_from_proton_arns() {
    let kind =
        |r: &str| ResourceKind::of_proton_arn(&format!("arn:aws:proton:us-east-1:{ACCOUNT}:{r}"));
    assert_eq!(kind("environment/dev"), Some(ResourceKind::Environment));
    assert_eq!(kind("service/api"), Some(ResourceKind::Service));
    assert_eq!(
        kind("service/api/service-instance/dev"),
        Some(ResourceKind::ServiceInstance)
    );
    assert_eq!(
        kind("service-template/t"),
        Some(ResourceKind::ServiceTemplate)
    );
    assert_eq!(kind("service/api/other/dev"), None);
    assert_eq!(kind("bucket/x"), None);
}
