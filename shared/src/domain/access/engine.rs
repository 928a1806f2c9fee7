//! Access documents compiled for Cedar, and the decision for one request.
//!
//! Entities per request: the principal (`Paved::Principal::"<arn>"`, attributes `arn` and
//! `account`, its tags as Cedar tags, member of each group that contains it), the resource
//! (`Paved::<Kind>::"<arn>"`, attribute `arn`, its tags as Cedar tags; an instance or component
//! also has `environment`, the environment entity, which is its parent too) and the actions
//! (`Paved::Action::"<Operation>"`, members of `Paved::Action::"read"` or `"write"`).

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    ActionConstraint, Authorizer as CedarAuthorizer, Context, Decision as CedarDecision, Entities,
    Entity, EntityId, EntityTypeName, EntityUid, PolicySet, PrincipalConstraint, Request,
    RestrictedExpression,
};

use super::{AccessDocument, AccessRequest, Caller, ContextValue, Group, Resource, is_read};

/// The largest policy text paved takes (characters).
pub const MAX_POLICY_CHARS: usize = 100_000;
/// At most this many groups, and patterns or tags per group.
pub const MAX_GROUPS: usize = 100;
pub const MAX_MATCHERS: usize = 100;

/// An access document checked and compiled: what decides requests.
pub struct Authorizer {
    groups: Vec<Group>,
    policies: PolicySet,
    actions: HashSet<String>,
    engine: CedarAuthorizer,
}

impl Authorizer {
    /// Whether a group of the document matches principals by their tags.
    pub fn matches_principal_tags(&self) -> bool {
        self.groups.iter().any(|g| !g.principal_tags.is_empty())
    }
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("groups", &self.groups)
            .field("policies", &self.policies.policies().count())
            .finish()
    }
}

/// What the policies say of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The policies that decided: the permits that allowed it, or the forbids that denied it.
    pub policies: Vec<String>,
    /// Policies that could not be evaluated for this request (they count as not applying).
    pub errors: Vec<String>,
}

fn uid(type_name: &str, id: &str) -> EntityUid {
    let name = EntityTypeName::from_str(type_name).expect("paved's entity type names parse");
    EntityUid::from_type_name_and_id(name, EntityId::new(id))
}

fn action_uid(action: &str) -> EntityUid {
    uid("Paved::Action", action)
}

fn string(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_string())
}

fn tags(tags: &BTreeMap<String, String>) -> Vec<(String, RestrictedExpression)> {
    tags.iter().map(|(k, v)| (k.clone(), string(v))).collect()
}

impl Authorizer {
    /// Checks and compiles a document. `actions` are the actions requests can name (every
    /// operation, and PassRole): a policy that names another is refused, as is a group that
    /// matches nobody or is named twice, or a policy that puts a principal in an unknown group.
    pub fn compile(document: &AccessDocument, actions: &[&str]) -> Result<Self, String> {
        if document.policies.chars().count() > MAX_POLICY_CHARS {
            return Err(format!("policies: at most {MAX_POLICY_CHARS} characters"));
        }
        if document.groups.len() > MAX_GROUPS {
            return Err(format!("groups: at most {MAX_GROUPS}"));
        }
        let mut names = HashSet::new();
        for group in &document.groups {
            let valid = !group.name.is_empty()
                && group.name.len() <= 64
                && group
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(format!(
                    "groups: {:?} is not a group name (1 to 64 letters, digits, '-' or '_')",
                    group.name
                ));
            }
            if !names.insert(group.name.as_str()) {
                return Err(format!("groups: {:?} is named twice", group.name));
            }
            if group.principals.len() > MAX_MATCHERS || group.principal_tags.len() > MAX_MATCHERS {
                return Err(format!(
                    "groups: {:?} has more than {MAX_MATCHERS} principals or tags",
                    group.name
                ));
            }
            if group.principals.is_empty() && group.principal_tags.is_empty() {
                // An empty group is allowed: the default personas start that way.
                continue;
            }
            if let Some(bad) = group.principals.iter().find(|p| !p.starts_with("arn:")) {
                return Err(format!(
                    "groups: {:?}: {bad:?} is not an ARN pattern (arn:aws:iam::<account>:role/<name>, `*` and `?` allowed)",
                    group.name
                ));
            }
        }
        let policies = PolicySet::from_str(&document.policies)
            .map_err(|e| format!("policies: {}", cedar_message(&e)))?;
        if policies.templates().next().is_some() {
            return Err("policies: templates (policies with ?principal or ?resource slots) are not supported; write the policy out".into());
        }
        let known: HashSet<String> = actions
            .iter()
            .map(|a| a.to_string())
            .chain(["read".to_string(), "write".to_string()])
            .collect();
        for policy in policies.policies() {
            let named = match policy.action_constraint() {
                ActionConstraint::Any => vec![],
                ActionConstraint::In(uids) => uids,
                ActionConstraint::Eq(uid) => vec![uid],
            };
            for action in named {
                let type_name = action.type_name().to_string();
                let id = action.id().unescaped().to_string();
                if type_name != "Paved::Action" || !known.contains(&id) {
                    return Err(format!(
                        "policy {}: {action} is not an action (Paved::Action::\"<Operation>\", \"read\", \"write\" or \"PassRole\")",
                        policy.annotation("id").unwrap_or(policy.id().as_ref())
                    ));
                }
            }
            let group = match policy.principal_constraint() {
                PrincipalConstraint::In(uid) | PrincipalConstraint::IsIn(_, uid) => Some(uid),
                _ => None,
            };
            if let Some(group) = group {
                let id = group.id().unescaped().to_string();
                if group.type_name().to_string() == "Paved::Group" && !names.contains(id.as_str()) {
                    return Err(format!(
                        "policy {}: no group is named {id:?}",
                        policy.annotation("id").unwrap_or(policy.id().as_ref())
                    ));
                }
            }
        }
        Ok(Self {
            groups: document.groups.clone(),
            policies,
            actions: actions.iter().map(|a| a.to_string()).collect(),
            engine: CedarAuthorizer::new(),
        })
    }

    /// A policy's name: its `@id("...")` annotation, or the position Cedar gave it.
    fn name_of(&self, id: &cedar_policy::PolicyId) -> String {
        self.policies
            .annotation(id, "id")
            .map(str::to_string)
            .unwrap_or_else(|| id.to_string())
    }

    /// The groups `caller` belongs to.
    pub fn groups_of(&self, caller: &Caller) -> Vec<&str> {
        self.groups
            .iter()
            .filter(|g| g.contains(&caller.principal))
            .map(|g| g.name.as_str())
            .collect()
    }

    /// Decides one request. Anything the policies do not permit is denied.
    pub fn decide(&self, caller: &Caller, request: &AccessRequest) -> Decision {
        match self.evaluate(caller, request) {
            Ok(decision) => decision,
            Err(error) => Decision {
                allowed: false,
                policies: vec![],
                errors: vec![error],
            },
        }
    }

    fn evaluate(&self, caller: &Caller, request: &AccessRequest) -> Result<Decision, String> {
        let mut entities = vec![];
        let groups: Vec<EntityUid> = self
            .groups_of(caller)
            .into_iter()
            .map(|g| uid("Paved::Group", g))
            .collect();
        for group in &groups {
            entities.push(Entity::with_uid(group.clone()));
        }
        let principal = uid("Paved::Principal", &caller.principal.arn);
        let mut attrs = vec![("arn".to_string(), string(&caller.principal.arn))];
        if let Some(account) = caller.principal.account() {
            attrs.push(("account".into(), string(account)));
        }
        entities.push(
            Entity::new_with_tags(
                principal.clone(),
                attrs,
                groups,
                tags(&caller.principal.tags),
            )
            .map_err(|e| e.to_string())?,
        );

        for group in ["read", "write"] {
            entities.push(Entity::with_uid(action_uid(group)));
        }
        let action = action_uid(&request.action);
        let parent = if is_read(&request.action) {
            Some(action_uid("read"))
        } else if self.actions.contains(&request.action) && request.action != super::PASS_ROLE {
            Some(action_uid("write"))
        } else {
            None
        };
        entities.push(Entity::new_no_attrs(
            action.clone(),
            parent.into_iter().collect(),
        ));

        let resource = uid(request.resource.kind.type_name(), &request.resource.arn);
        let mut attrs = vec![("arn".to_string(), string(&request.resource.arn))];
        let mut parents = vec![];
        if let Some(environment) = &request.resource.environment {
            let env = resource_entity(environment, vec![], vec![])?;
            let env_uid = env.uid();
            attrs.push((
                "environment".into(),
                RestrictedExpression::new_entity_uid(env_uid.clone()),
            ));
            parents.push(env_uid);
            entities.push(env);
        }
        entities.push(resource_entity(&request.resource, attrs, parents)?);

        let mut context = vec![(
            "aws:PrincipalArn".to_string(),
            string(&caller.principal.arn),
        )];
        if let Some(ip) = caller
            .source_ip
            .as_deref()
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        {
            context.push(("aws:SourceIp".into(), RestrictedExpression::new_ip(ip)));
        }
        for (key, value) in &request.resource.tags {
            context.push((format!("aws:ResourceTag/{key}"), string(value)));
        }
        for (key, value) in &request.context {
            let value = match value {
                ContextValue::String(s) => string(s),
                ContextValue::Strings(list) => {
                    RestrictedExpression::new_set(list.iter().map(|s| string(s)))
                }
            };
            context.push((key.clone(), value));
        }
        let context = Context::from_pairs(context).map_err(|e| e.to_string())?;
        let request =
            Request::new(principal, action, resource, context, None).map_err(|e| e.to_string())?;
        let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
        let response = self
            .engine
            .is_authorized(&request, &self.policies, &entities);
        Ok(Decision {
            allowed: response.decision() == CedarDecision::Allow,
            policies: response
                .diagnostics()
                .reason()
                .map(|id| self.name_of(id))
                .collect(),
            errors: response
                .diagnostics()
                .errors()
                .map(|e| e.to_string())
                .collect(),
        })
    }
}

fn resource_entity(
    resource: &Resource,
    mut attrs: Vec<(String, RestrictedExpression)>,
    parents: Vec<EntityUid>,
) -> Result<Entity, String> {
    if attrs.is_empty() {
        attrs.push(("arn".to_string(), string(&resource.arn)));
    }
    Entity::new_with_tags(
        uid(resource.kind.type_name(), &resource.arn),
        attrs,
        parents,
        tags(&resource.tags),
    )
    .map_err(|e| e.to_string())
}

/// Cedar's parse errors, each with the text it points at.
fn cedar_message(errors: &cedar_policy::ParseErrors) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
