//! Adoption: taking over what Proton provisioned. The stacks Proton made still run in its
//! users' accounts, tagged `proton:environment`, `proton:service`, ... and named `AWSProton-...`;
//! paved tells from a stack's tags (or, lacking them, its name) what it was, and a target adopted
//! from one keeps its stack. Its first deployment is planned against that stack, and a plan that
//! would replace or remove a resource waits for a person to confirm exactly that plan.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::names::Timestamp;

/// The prefix of the stacks Proton named (`AWSProton-<parts>-cloudformation--<15 letters>`).
pub const PROTON_STACK_PREFIX: &str = "AWSProton-";

/// What a provisioning engine found provisioned in the account: a stack, as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    /// The role the engine provisions it under, if it has one.
    pub role_arn: Option<String>,
    /// The engine's status of it (`UPDATE_COMPLETE`, ...).
    pub status: String,
}

impl Found {
    /// Whether its status is one it can be adopted in: it exists, is not moving, and the last
    /// thing done to it did not leave it broken.
    pub fn settled(&self) -> bool {
        matches!(
            self.status.as_str(),
            "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "UPDATE_ROLLBACK_COMPLETE" | "IMPORT_COMPLETE"
        )
    }
}

/// What a found stack was, as Proton knew it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Identity {
    Environment {
        name: String,
    },
    Instance {
        service: String,
        name: String,
        environment: String,
    },
    Pipeline {
        service: String,
    },
    Component {
        name: String,
        environment: String,
        /// The service instance it is attached to, if any.
        attached: Option<(String, String)>,
    },
    /// Named like Proton's stacks but carrying none of its tags: what it was cannot be told.
    Unknown,
}

impl Identity {
    /// Proton's name of the kind (`ENVIRONMENT`, `SERVICE_INSTANCE`, ...), as plans show it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Environment { .. } => "ENVIRONMENT",
            Self::Instance { .. } => "SERVICE_INSTANCE",
            Self::Pipeline { .. } => "SERVICE_PIPELINE",
            Self::Component { .. } => "COMPONENT",
            Self::Unknown => "UNKNOWN",
        }
    }
}

/// The last path segment of a Proton ARN's resource, after `marker` (`environment/dev` → `dev`).
fn after<'a>(arn: &'a str, marker: &str) -> Option<&'a str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let rest = resource.split_once(marker)?.1;
    let name = rest.split('/').next()?;
    (!name.is_empty()).then_some(name)
}

/// What `found` was, or `None` if it is no stack of Proton's (nor one made the way Proton made
/// them): its `proton:*` tags decide, its name only tells it is one.
pub fn identify(found: &Found) -> Option<Identity> {
    let tag = |key: &str| found.tags.get(&format!("proton:{key}")).map(String::as_str);
    let environment = tag("environment").and_then(|arn| after(arn, "environment/"));
    let service = tag("service").and_then(|arn| after(arn, "service/"));
    let instance = tag("service-instance").and_then(|arn| {
        let service = after(arn, "service/")?;
        let name = after(arn, "/service-instance/")?;
        Some((service.to_string(), name.to_string()))
    });
    if let Some(component) = tag("component").and_then(|arn| after(arn, "component/")) {
        return Some(Identity::Component {
            name: component.to_string(),
            environment: environment.unwrap_or_default().to_string(),
            attached: instance,
        });
    }
    if let Some((service, name)) = instance {
        return Some(Identity::Instance {
            service,
            name,
            environment: environment.unwrap_or_default().to_string(),
        });
    }
    if let Some(service) = service {
        return Some(Identity::Pipeline {
            service: service.to_string(),
        });
    }
    if let Some(environment) = environment {
        return Some(Identity::Environment {
            name: environment.to_string(),
        });
    }
    found
        .name
        .starts_with(PROTON_STACK_PREFIX)
        .then_some(Identity::Unknown)
}

/// The template a found stack ran, from its `proton:template` tag: its kind's ARN resource
/// (`environment-template` or `service-template`) and its name.
pub fn template_of(found: &Found) -> Option<(&str, &str)> {
    let arn = found.tags.get("proton:template")?;
    let resource = arn.splitn(6, ':').nth(5)?;
    let (kind, rest) = resource.split_once('/')?;
    let name = rest.split([':', '/']).next()?;
    (!name.is_empty()).then_some((kind, name))
}

/// What adoption keeps on a target until its first deployment by paved succeeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Adoption {
    pub adopted_at: Timestamp,
    /// The plan a person confirmed (its [`confirmation`] code), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<String>,
}

/// What a plan does to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    Add,
    Modify,
    /// Modified by making a new resource in place of the old one (a new physical id).
    Replace,
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAction {
    pub action: Action,
    pub logical_id: String,
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_id: Option<String>,
}

/// Whether a plan needs a person's confirmation before it is applied to an adopted stack: it
/// replaces or removes something.
pub fn needs_confirmation(actions: &[ResourceAction]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a.action, Action::Replace | Action::Remove))
}

/// A short code naming exactly this set of actions: a confirmation given for one plan does not
/// carry over to another.
pub fn confirmation(actions: &[ResourceAction]) -> String {
    let mut sorted = actions.to_vec();
    sorted.sort();
    let mut text = String::new();
    for a in &sorted {
        let _ = writeln!(text, "{:?} {} {}", a.action, a.logical_id, a.resource_type);
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    hex::encode(&digest.as_ref()[..6])
}

/// The actions as a sentence: `replace VPC (AWS::EC2::VPC); add Queue (AWS::SQS::Queue)`.
pub fn describe(actions: &[ResourceAction]) -> String {
    if actions.is_empty() {
        return "no resource changes".into();
    }
    let mut sorted = actions.to_vec();
    sorted.sort_by(|a, b| {
        b.action
            .cmp(&a.action)
            .then_with(|| a.logical_id.cmp(&b.logical_id))
    });
    sorted
        .iter()
        .map(|a| {
            let verb = match a.action {
                Action::Add => "add",
                Action::Modify => "modify",
                Action::Replace => "replace",
                Action::Remove => "remove",
            };
            format!("{verb} {} ({})", a.logical_id, a.resource_type)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(name: &str, tags: &[(&str, &str)]) -> Found {
        Found {
            name: name.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            role_arn: None,
            status: "CREATE_COMPLETE".into(),
        }
    }

    const ARN: &str = "arn:aws:proton:us-east-1:123456789012:";

    #[test]
    fn tags_tell_each_kind_of_stack_apart() {
        let env = format!("{ARN}environment/dev");
        let svc = format!("{ARN}service/web");
        let inst = format!("{ARN}service/web/service-instance/front");
        let comp = format!("{ARN}component/cache");
        let template = format!("{ARN}service-template/fargate");
        assert_eq!(
            identify(&found(
                "AWSProton-dev-cloudformation--ABC",
                &[("proton:environment", &env)]
            )),
            Some(Identity::Environment { name: "dev".into() })
        );
        let instance = found(
            "AWSProton-web-front-cloudformation--ABC",
            &[
                ("proton:environment", &env),
                ("proton:service", &svc),
                ("proton:service-instance", &inst),
                ("proton:template", &template),
            ],
        );
        assert_eq!(
            identify(&instance),
            Some(Identity::Instance {
                service: "web".into(),
                name: "front".into(),
                environment: "dev".into()
            })
        );
        assert_eq!(
            template_of(&instance),
            Some(("service-template", "fargate"))
        );
        assert_eq!(
            identify(&found("x", &[("proton:service", &svc)])),
            Some(Identity::Pipeline {
                service: "web".into()
            })
        );
        assert_eq!(
            identify(&found(
                "x",
                &[
                    ("proton:environment", &env),
                    ("proton:service-instance", &inst),
                    ("proton:component", &comp)
                ]
            )),
            Some(Identity::Component {
                name: "cache".into(),
                environment: "dev".into(),
                attached: Some(("web".into(), "front".into()))
            })
        );
    }

    #[test]
    fn a_stack_named_like_protons_without_tags_is_unknown_and_others_are_not_found() {
        assert_eq!(
            identify(&found("AWSProton-dev-cloudformation--QYWPQLSESXEMRBY", &[])),
            Some(Identity::Unknown)
        );
        assert_eq!(identify(&found("my-own-vpc", &[("team", "a")])), None);
    }

    fn action(action: Action, id: &str) -> ResourceAction {
        ResourceAction {
            action,
            logical_id: id.into(),
            resource_type: "AWS::SQS::Queue".into(),
            physical_id: None,
        }
    }

    #[test]
    fn only_replacements_and_removals_need_confirmation_and_codes_name_one_plan() {
        let gentle = [action(Action::Add, "A"), action(Action::Modify, "B")];
        assert!(!needs_confirmation(&gentle));
        let harsh = [action(Action::Modify, "B"), action(Action::Replace, "C")];
        assert!(needs_confirmation(&harsh));
        assert!(needs_confirmation(&[action(Action::Remove, "D")]));
        let reordered = [action(Action::Replace, "C"), action(Action::Modify, "B")];
        assert_eq!(confirmation(&harsh), confirmation(&reordered));
        assert_ne!(
            confirmation(&harsh),
            confirmation(&[action(Action::Replace, "E")])
        );
        assert_eq!(
            describe(&harsh),
            "replace C (AWS::SQS::Queue); modify B (AWS::SQS::Queue)"
        );
    }
}
