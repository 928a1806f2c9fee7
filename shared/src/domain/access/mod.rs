//! Who may do what. A caller is an IAM principal (verified by API Gateway in AWS, by `paved dev`
//! locally); an access document maps principals to groups (by ARN pattern or principal tag) and
//! holds Cedar policies over `Paved::Group`, `Paved::Action::"<Operation>"` and the resource a
//! call acts on. Evaluation is pure: the caller of [`Authorizer::decide`] loads what it needs.

mod engine;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use engine::{Authorizer, Decision};

/// The default policies: Proton's three managed policies as personas, and service pipelines.
pub const DEFAULT_POLICIES: &str = include_str!("personas.cedar");

/// The groups the default policies name.
pub const PLATFORM: &str = "platform";
pub const DEVELOPERS: &str = "developers";
pub const READ_ONLY: &str = "readonly";
pub const PIPELINES: &str = "pipelines";

/// The action a caller needs to name a role a deployment runs under (`Paved::Action::"PassRole"`).
pub const PASS_ROLE: &str = "PassRole";

/// Reads are what developers and read-only callers may always do: every Get and List.
pub fn is_read(action: &str) -> bool {
    action.starts_with("Get") || action.starts_with("List")
}

/// An IAM principal as AWS verified it, with the tags paved knows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub arn: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl Principal {
    pub fn new(arn: impl Into<String>) -> Self {
        Self {
            arn: arn.into(),
            tags: BTreeMap::new(),
        }
    }

    /// The account the principal belongs to (the ARN's fifth field).
    pub fn account(&self) -> Option<&str> {
        self.arn.split(':').nth(4).filter(|a| !a.is_empty())
    }

    /// What group patterns are matched against: the principal's ARN and, for an assumed-role
    /// session (`arn:aws:sts::<account>:assumed-role/<role>/<session>`), its role's ARN.
    pub fn identities(&self) -> Vec<String> {
        let mut identities = vec![self.arn.clone()];
        let parts: Vec<&str> = self.arn.splitn(6, ':').collect();
        if parts.len() == 6
            && parts[2] == "sts"
            && let Some(rest) = parts[5].strip_prefix("assumed-role/")
            && let Some((role, _session)) = rest.split_once('/')
        {
            identities.push(format!("arn:{}:iam::{}:role/{role}", parts[1], parts[4]));
        }
        identities
    }
}

/// Who made a request, from where, and which request it was: what audit records keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Initiator {
    pub principal_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    pub request_id: String,
}

/// A verified caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub source_ip: Option<String>,
    pub request_id: String,
}

impl Caller {
    pub fn initiator(&self) -> Initiator {
        Initiator {
            principal_arn: self.principal.arn.clone(),
            source_ip: self.source_ip.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

/// A group of principals: those whose ARN matches one of `principals` (`*` and `?` wildcards),
/// or who carry every tag of `principalTags`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Group {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub principal_tags: BTreeMap<String, String>,
}

impl Group {
    pub fn new(name: &str, principals: Vec<String>) -> Self {
        Self {
            name: name.into(),
            principals,
            principal_tags: BTreeMap::new(),
        }
    }

    pub fn contains(&self, principal: &Principal) -> bool {
        let by_arn = principal
            .identities()
            .iter()
            .any(|arn| self.principals.iter().any(|p| glob(p, arn)));
        let by_tags = !self.principal_tags.is_empty()
            && self
                .principal_tags
                .iter()
                .all(|(k, v)| principal.tags.get(k) == Some(v));
        by_arn || by_tags
    }
}

/// What the platform team owns: who is in which group, and the policies over groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessDocument {
    pub groups: Vec<Group>,
    pub policies: String,
}

impl AccessDocument {
    /// The default personas, with the principals of each group.
    pub fn personas(
        platform: Vec<String>,
        developers: Vec<String>,
        readonly: Vec<String>,
        pipelines: Vec<String>,
    ) -> Self {
        Self {
            groups: vec![
                Group::new(PLATFORM, platform),
                Group::new(DEVELOPERS, developers),
                Group::new(READ_ONLY, readonly),
                Group::new(PIPELINES, pipelines),
            ],
            policies: DEFAULT_POLICIES.to_string(),
        }
    }

    /// The document in force until the first PutAccessPolicy: the personas, with the
    /// `pipelines` group holding the pipeline role (if any) and the roles the pipeline stacks
    /// paved deploys make for their CodeBuild projects (CloudFormation names them after the
    /// stack, `<stack prefix>pipeline-...`): who the sample buildspecs' `aws proton` calls come
    /// from.
    pub fn defaults(
        platform: Vec<String>,
        developers: Vec<String>,
        readonly: Vec<String>,
        pipeline_role: Option<String>,
        account_id: &str,
        stack_prefix: &str,
    ) -> Self {
        let mut pipelines: Vec<String> = pipeline_role.into_iter().collect();
        pipelines.push(format!(
            "arn:aws:iam::{account_id}:role/{stack_prefix}pipeline-*"
        ));
        Self::personas(platform, developers, readonly, pipelines)
    }
}

/// A version of the access document as paved keeps it. Version 0 is the built-in default,
/// in force until the first PutAccessPolicy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredAccess {
    pub version: u64,
    pub document: AccessDocument,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<Initiator>,
    pub updated_at: f64,
}

/// The kinds of resource a call acts on, as Cedar entity types (`Paved::<kind>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Account,
    EnvironmentTemplate,
    ServiceTemplate,
    Environment,
    Service,
    ServiceInstance,
    Component,
    Deployment,
    Repository,
    EnvironmentAccountConnection,
    Role,
    AccessPolicy,
}

impl ResourceKind {
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Account => "Paved::Account",
            Self::EnvironmentTemplate => "Paved::EnvironmentTemplate",
            Self::ServiceTemplate => "Paved::ServiceTemplate",
            Self::Environment => "Paved::Environment",
            Self::Service => "Paved::Service",
            Self::ServiceInstance => "Paved::ServiceInstance",
            Self::Component => "Paved::Component",
            Self::Deployment => "Paved::Deployment",
            Self::Repository => "Paved::Repository",
            Self::EnvironmentAccountConnection => "Paved::EnvironmentAccountConnection",
            Self::Role => "Paved::Role",
            Self::AccessPolicy => "Paved::AccessPolicy",
        }
    }

    /// The kind of a Proton ARN's resource (`environment/...`, `service/x/service-instance/y`).
    pub fn of_proton_arn(arn: &str) -> Option<Self> {
        let resource = arn.splitn(6, ':').nth(5)?;
        let mut parts = resource.split('/');
        let kind = match parts.next()? {
            "environment-template" => Self::EnvironmentTemplate,
            "service-template" => Self::ServiceTemplate,
            "environment" => Self::Environment,
            "service" => match (parts.next(), parts.next()) {
                (Some(_), None) => Self::Service,
                (Some(_), Some("service-instance")) => Self::ServiceInstance,
                _ => return None,
            },
            "component" => Self::Component,
            "deployment" => Self::Deployment,
            "repository" => Self::Repository,
            "environment-account-connection" => Self::EnvironmentAccountConnection,
            _ => return None,
        };
        Some(kind)
    }
}

/// The resource a call acts on: its ARN, its tags and, for what runs in an environment (an
/// instance, a component), that environment with its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub kind: ResourceKind,
    pub arn: String,
    pub tags: BTreeMap<String, String>,
    pub environment: Option<Box<Resource>>,
}

impl Resource {
    pub fn new(kind: ResourceKind, arn: impl Into<String>) -> Self {
        Self {
            kind,
            arn: arn.into(),
            tags: BTreeMap::new(),
            environment: None,
        }
    }

    pub fn tagged(mut self, tags: BTreeMap<String, String>) -> Self {
        self.tags = tags;
        self
    }

    pub fn in_environment(mut self, environment: Resource) -> Self {
        self.environment = Some(Box::new(environment));
        self
    }
}

/// One question to the policies: may the caller do `action` to `resource`, given `context`
/// (Proton's condition keys: `proton:EnvironmentTemplate`, `proton:ServiceTemplate`,
/// `aws:RequestTag/<key>`, `aws:TagKeys`; `aws:ResourceTag/<key>`, `aws:PrincipalArn` and
/// `aws:SourceIp` are added from the resource and the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    pub action: String,
    pub resource: Resource,
    pub context: BTreeMap<String, ContextValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    String(String),
    Strings(Vec<String>),
}

impl AccessRequest {
    pub fn new(action: impl Into<String>, resource: Resource) -> Self {
        Self {
            action: action.into(),
            resource,
            context: BTreeMap::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.context
            .insert(key.to_string(), ContextValue::String(value.into()));
        self
    }

    /// The tags a request sets: `aws:RequestTag/<key>` each, and `aws:TagKeys`.
    pub fn with_request_tags<'a>(
        mut self,
        tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let mut keys = vec![];
        for (key, value) in tags {
            self.context.insert(
                format!("aws:RequestTag/{key}"),
                ContextValue::String(value.to_string()),
            );
            keys.push(key.to_string());
        }
        self.context
            .insert("aws:TagKeys".into(), ContextValue::Strings(keys));
        self
    }

    /// The tag keys a request removes (`aws:TagKeys`).
    pub fn with_tag_keys(mut self, keys: Vec<String>) -> Self {
        self.context
            .insert("aws:TagKeys".into(), ContextValue::Strings(keys));
        self
    }
}

/// Matches `value` against `pattern`, where `*` is any run of characters and `?` any one.
pub fn glob(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests;
