//! Import: adopting the stacks Proton left running. The plan tells each found stack apart
//! (`domain::adoption::identify`), names the template and version it is taken to run, and says
//! what paved still needs (a spec, a repository) and what stops the adoption (a role
//! CloudFormation cannot assume, a template not registered). Applying it writes paved's records
//! bound to the existing stacks, with their outputs and resources read from them, and deploys
//! nothing; the first deployment of each is planned against its stack (`deploy::steps`).
//! Applying is safe to repeat: a stack already bound to a record is reported as adopted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::deploy::Deployer;
use crate::app::{Error, Result, every};
use crate::domain::adoption::{Adoption, Found, Identity, identify, template_of};
use crate::domain::bundle::BundleLayout;
use crate::domain::component::Component;
use crate::domain::environment::{
    ComponentDefinition, Deployed, DeployedState, DeploymentStatus, Environment,
};
use crate::domain::names::{Arn, ResourceName, Tags, Timestamp};
use crate::domain::schema::InputRole;
use crate::domain::service::{Repository, Service, ServiceInstance, ServiceStatus};
use crate::domain::spec::{Inputs, Spec, resolve_inputs};
use crate::domain::template::{TemplateKind, TemplateVersion, VersionNumber, VersionStatus};
use crate::ports::{
    ComponentWrite, DeploymentChange, EnvironmentWrite, InstanceWrite, Placement, ServiceWrite,
    VersionUsage,
};

/// What the caller brings to an import: the specs Proton deployed with and the versions the
/// stacks run, which the stacks themselves do not record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportRequest {
    /// Specs by resource: `environment/<name>` or `service/<name>` → the spec's text.
    #[serde(default)]
    pub specs: BTreeMap<String, String>,
    /// Template versions by template name (`"1.2"`); otherwise the recommended version.
    #[serde(default)]
    pub template_versions: BTreeMap<String, String>,
    /// The repository each service's pipeline builds, by service name.
    #[serde(default)]
    pub repositories: BTreeMap<String, RepositoryGiven>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositoryGiven {
    pub repository_connection_arn: String,
    pub repository_id: String,
    pub branch_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ItemStatus {
    /// Bound to a paved record already.
    Adopted,
    /// Nothing missing: applying the plan adopts it.
    Ready,
    /// The caller must give something first (a spec, a repository).
    NeedsInput,
    /// Something outside paved must change first (a role, a template registration).
    Blocked,
}

/// One found stack and what the import makes of it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanItem {
    pub stack_name: String,
    /// `ENVIRONMENT`, `SERVICE_INSTANCE`, `SERVICE_PIPELINE`, `COMPONENT` or `UNKNOWN`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_version: Option<String>,
    /// `given` (templateVersions) or `recommended` (taken to be the recommended version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_from: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    pub stack_status: String,
    pub status: ItemStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<String>,
}

impl PlanItem {
    fn new(found: &Found, identity: &Identity) -> Self {
        let (name, service, environment) = match identity {
            Identity::Environment { name } => (Some(name.clone()), None, None),
            Identity::Instance {
                service,
                name,
                environment,
            } => (
                Some(name.clone()),
                Some(service.clone()),
                Some(environment.clone()),
            ),
            Identity::Pipeline { service } => (None, Some(service.clone()), None),
            Identity::Component {
                name,
                environment,
                attached,
            } => (
                Some(name.clone()),
                attached.as_ref().map(|(s, _)| s.clone()),
                Some(environment.clone()),
            ),
            Identity::Unknown => (None, None, None),
        };
        Self {
            stack_name: found.name.clone(),
            kind: identity.kind(),
            name,
            service_name: service,
            environment_name: environment,
            template_name: template_of(found).map(|(_, name)| name.to_string()),
            template_version: None,
            version_from: None,
            role_arn: found.role_arn.clone(),
            stack_status: found.status.clone(),
            status: ItemStatus::Ready,
            needs: vec![],
            blockers: vec![],
        }
    }

    fn settle(&mut self) {
        self.status = if !self.blockers.is_empty() {
            ItemStatus::Blocked
        } else if !self.needs.is_empty() {
            ItemStatus::NeedsInput
        } else {
            ItemStatus::Ready
        };
    }
}

/// The plan, and the records applying it writes.
#[derive(Debug, Clone, Default)]
pub struct ImportPlan {
    pub items: Vec<PlanItem>,
    environments: Vec<(usize, Environment, TemplateVersion)>,
    services: Vec<ServiceUnit>,
    components: Vec<(usize, Component, Option<ServiceInstance>)>,
}

#[derive(Debug, Clone)]
struct ServiceUnit {
    items: Vec<usize>,
    service: Service,
    instances: Vec<ServiceInstance>,
    version: TemplateVersion,
}

/// What applying a plan did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportResult {
    /// The plan as it stood, with what was adopted now marked `ADOPTED`.
    pub items: Vec<PlanItem>,
    pub adopted: usize,
}

pub struct Imports {
    d: Deployer,
}

/// A planned environment, as instances and components in it see it.
struct PlannedEnvironment {
    role: String,
    component_role: Option<String>,
    template: ResourceName,
    major: u64,
}

impl Imports {
    pub fn new(deployer: Deployer) -> Self {
        Self { d: deployer }
    }

    /// The plan for every stack of Proton's in the account and region.
    #[tracing::instrument(skip_all)]
    pub async fn plan(&self, request: &ImportRequest) -> Result<ImportPlan> {
        let d = &self.d;
        for key in request.specs.keys() {
            if !(key.starts_with("environment/") || key.starts_with("service/")) {
                return Err(Error::validation(format!(
                    "specs: {key}: name a spec environment/<name> or service/<name>"
                )));
            }
        }
        let engine = d.provisioners.default_engine().clone();
        let bound = self.bound_stacks().await?;
        // Stacks paved deployed are paved's, not Proton's to import: only those adopted and not
        // yet deployed by paved are still listed (as ADOPTED).
        let mut found: Vec<(Found, Identity)> = engine
            .discover()
            .await?
            .into_iter()
            .filter(|f| bound.get(&f.name) != Some(&false))
            .filter_map(|f| identify(&f).map(|i| (f, i)))
            .collect();
        found.sort_by(|a, b| (&a.1, &a.0.name).cmp(&(&b.1, &b.0.name)));
        let mut plan = ImportPlan::default();
        for (f, identity) in &found {
            let mut item = PlanItem::new(f, identity);
            if bound.contains_key(&f.name) {
                item.status = ItemStatus::Adopted;
            } else if *identity == Identity::Unknown {
                item.blockers.push("the stack is named like Proton's but carries none of its proton: tags, so what it was cannot be told; tag it (proton:environment, proton:service, proton:service-instance, proton:component, proton:template with their ARNs) and plan again".into());
            } else if !f.settled() {
                item.blockers.push(format!(
                    "the stack is {}: adopt it once it is CREATE_COMPLETE, UPDATE_COMPLETE or UPDATE_ROLLBACK_COMPLETE",
                    f.status
                ));
            }
            plan.items.push(item);
        }
        // Component stacks tell the role their environment gave components.
        let mut component_roles: HashMap<String, String> = HashMap::new();
        for (f, identity) in &found {
            if let (Identity::Component { environment, .. }, Some(role)) = (identity, &f.role_arn) {
                component_roles
                    .entry(environment.clone())
                    .or_insert(role.clone());
            }
        }
        let mut environments: HashMap<String, PlannedEnvironment> = HashMap::new();
        for (index, (f, identity)) in found.iter().enumerate() {
            if let Identity::Environment { name } = identity
                && plan.items[index].status != ItemStatus::Adopted
                && let Some(planned) = self
                    .plan_environment(request, f, name, &component_roles, index, &mut plan)
                    .await?
            {
                environments.insert(name.clone(), planned);
            }
        }
        let mut by_service: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (index, (_, identity)) in found.iter().enumerate() {
            if plan.items[index].status == ItemStatus::Adopted {
                continue;
            }
            if let Identity::Instance { service, .. } | Identity::Pipeline { service } = identity {
                by_service.entry(service.clone()).or_default().push(index);
            }
        }
        for (service, indexes) in by_service {
            self.plan_service(
                request,
                &found,
                &service,
                &indexes,
                &environments,
                &mut plan,
            )
            .await?;
        }
        for (index, (f, identity)) in found.iter().enumerate() {
            if let Identity::Component {
                name,
                environment,
                attached,
            } = identity
                && plan.items[index].status != ItemStatus::Adopted
            {
                self.plan_component(
                    f,
                    name,
                    environment,
                    attached.as_ref(),
                    &environments,
                    index,
                    &mut plan,
                )
                .await?;
            }
        }
        for item in &mut plan.items {
            if item.status != ItemStatus::Adopted {
                item.settle();
            }
        }
        Ok(plan)
    }

    /// Plans, then writes the records of every ready item: environments first, then services
    /// with their instances and pipeline, then components.
    #[tracing::instrument(skip_all)]
    pub async fn apply(&self, request: &ImportRequest) -> Result<ImportResult> {
        let d = &self.d;
        let plan = self.plan(request).await?;
        let mut items = plan.items.clone();
        let mut adopted = 0;
        let engine = d.provisioners.default_engine().clone();
        let provisioned = |deployed: Deployed| {
            let engine = engine.clone();
            async move {
                let mut deployed = deployed;
                let placement = Placement {
                    name: &deployed.stack_name,
                    role_arn: &deployed.role_arn,
                };
                if let Some(found) = engine.provisioned(placement).await? {
                    deployed.outputs = found.outputs;
                    deployed.resources = found.resources;
                }
                Ok::<_, Error>(deployed)
            }
        };
        for (index, mut environment, version) in plan.environments {
            environment.deployed = provisioned(environment.deployed).await?;
            let name = environment.name.clone();
            d.write(
                DeploymentChange {
                    environments: vec![EnvironmentWrite::Create(environment)],
                    usage: vec![VersionUsage { version, delta: 1 }],
                    ..Default::default()
                },
                || format!("environment {name} was created by another request meanwhile"),
            )
            .await?;
            items[index].status = ItemStatus::Adopted;
            adopted += 1;
        }
        for mut unit in plan.services {
            let mut change = DeploymentChange::default();
            if let Some(pipeline) = unit.service.pipeline.take() {
                unit.service.pipeline = Some(provisioned(pipeline).await?);
            }
            let uses = unit.instances.len() as i64 + i64::from(unit.service.pipeline.is_some());
            for mut instance in unit.instances {
                instance.deployed = provisioned(instance.deployed).await?;
                change.instances.push(InstanceWrite::Create(instance));
            }
            let name = unit.service.name.clone();
            change.services.push(ServiceWrite::Create(unit.service));
            change.usage.push(VersionUsage {
                version: unit.version,
                delta: uses,
            });
            d.write(change, || {
                format!("service {name} was created by another request meanwhile")
            })
            .await?;
            for index in unit.items {
                items[index].status = ItemStatus::Adopted;
                adopted += 1;
            }
        }
        for (index, mut component, attach) in plan.components {
            component.deployed = provisioned(component.deployed).await?;
            let name = component.name.clone();
            let mut change = DeploymentChange {
                components: vec![ComponentWrite::Create(component)],
                ..Default::default()
            };
            if let Some(instance) = attach {
                // An instance adopted in this import, or one paved already had: attach.
                let current = d
                    .store
                    .instance(&instance.service, &instance.name)
                    .await?
                    .unwrap_or(instance);
                let mut next = current.clone();
                next.component = Some(name.clone());
                next.rev = current.rev + 1;
                change.instances.push(InstanceWrite::Replace {
                    instance: next,
                    expected_rev: current.rev,
                });
            }
            d.write(change, || {
                format!("component {name} was created by another request meanwhile")
            })
            .await?;
            items[index].status = ItemStatus::Adopted;
            adopted += 1;
        }
        Ok(ImportResult { items, adopted })
    }

    /// The stacks paved's records are bound to, each with whether it is adopted and not yet
    /// deployed by paved.
    async fn bound_stacks(&self) -> Result<BTreeMap<String, bool>> {
        let store = &self.d.store;
        let mut bound = BTreeMap::new();
        let mut bind = |deployed: Deployed| {
            bound.insert(deployed.stack_name, deployed.adoption.is_some());
        };
        for environment in every(|page| store.environments(page)).await? {
            bind(environment.deployed);
        }
        for service in every(|page| store.services(page)).await? {
            for instance in store.instances(&service.name).await? {
                bind(instance.deployed);
            }
            if let Some(pipeline) = service.pipeline {
                bind(pipeline);
            }
        }
        for component in every(|page| store.components(None, page)).await? {
            bind(component.deployed);
        }
        Ok(bound)
    }

    /// The template version an item runs: the one given for its template, or the recommended
    /// one, published. A problem is put on the item; `None` then.
    async fn version_for(
        &self,
        request: &ImportRequest,
        kind: TemplateKind,
        f: &Found,
        item: &mut PlanItem,
    ) -> Result<Option<(crate::domain::template::Template, TemplateVersion)>> {
        let wanted = match kind {
            TemplateKind::Environment => "environment-template",
            TemplateKind::Service => "service-template",
        };
        let Some((found_kind, name)) = template_of(f) else {
            item.blockers.push(format!(
                "the stack has no proton:template tag naming its {}; tag it with the template's ARN",
                kind.noun()
            ));
            return Ok(None);
        };
        if found_kind != wanted {
            item.blockers.push(format!(
                "its proton:template tag names a {found_kind}, not a {wanted}"
            ));
            return Ok(None);
        }
        let Ok(name) = ResourceName::parse(name) else {
            item.blockers.push(format!(
                "its proton:template tag names {name}, not a template name"
            ));
            return Ok(None);
        };
        let Some(template) = self.d.catalog.template(kind, &name).await? else {
            item.blockers.push(format!(
                "{} {name} is not registered in paved: register it from your bundle and publish the version the stack runs",
                kind.noun()
            ));
            return Ok(None);
        };
        let (number, from) = match request.template_versions.get(name.as_str()) {
            Some(given) => match parse_version(given) {
                Some(number) => (number, "given"),
                None => {
                    item.blockers.push(format!(
                        "templateVersions: {name}: {given} is not a version (MAJOR.MINOR)"
                    ));
                    return Ok(None);
                }
            },
            None => match template.versions.recommended() {
                Some(number) => (number, "recommended"),
                None => {
                    item.blockers.push(format!(
                        "{} {name} has no published version: publish the version the stack runs",
                        kind.noun()
                    ));
                    return Ok(None);
                }
            },
        };
        item.template_version = Some(number.to_string());
        item.version_from = Some(from);
        let Some(version) = self.d.catalog.version(kind, &name, number).await? else {
            item.blockers.push(format!(
                "{} {name} has no version {number}: register it from your bundle",
                kind.noun()
            ));
            return Ok(None);
        };
        if version.status != VersionStatus::Published {
            item.blockers.push(format!(
                "version {number} of {} {name} is not published",
                kind.noun()
            ));
            return Ok(None);
        }
        Ok(Some((template, version)))
    }

    /// A role an adopted target is deployed under: one paved may pass, that CloudFormation can
    /// assume. A problem is put on the item.
    async fn role_blockers(&self, member: &str, role: &str) -> Result<Vec<String>> {
        let arn = match Arn::parse(role) {
            Ok(arn) => arn,
            Err(reason) => return Ok(vec![format!("{member}: {reason}")]),
        };
        let mut blockers = Vec::new();
        for check in [
            self.d.check_role(member, &arn),
            self.d.check_trust(member, &arn).await,
        ] {
            match check {
                Ok(()) => {}
                Err(Error::Validation(reason)) => blockers.push(reason),
                Err(other) => return Err(other),
            }
        }
        Ok(blockers)
    }

    async fn plan_environment(
        &self,
        request: &ImportRequest,
        f: &Found,
        name: &str,
        component_roles: &HashMap<String, String>,
        index: usize,
        plan: &mut ImportPlan,
    ) -> Result<Option<PlannedEnvironment>> {
        let mut item = plan.items[index].clone();
        let parsed = ResourceName::parse(name);
        if let Ok(parsed) = &parsed
            && let Some(existing) = self.d.store.environment(parsed).await?
        {
            item.blockers.push(format!(
                "paved already has an environment {name}, on stack {}",
                existing.deployed.stack_name
            ));
        }
        let versioned = self
            .version_for(request, TemplateKind::Environment, f, &mut item)
            .await?;
        match &f.role_arn {
            Some(role) => {
                item.blockers
                    .extend(self.role_blockers("the stack's role", role).await?);
            }
            None => item.blockers.push(
                "the stack has no role: paved deploys environments under a role CloudFormation assumes; update the stack with one, then plan again".into(),
            ),
        }
        let component_role = component_roles.get(name).cloned();
        if let Some(role) = &component_role {
            item.blockers
                .extend(self.role_blockers("the components' role", role).await?);
        }
        let spec = request.specs.get(&format!("environment/{name}"));
        if spec.is_none() {
            item.needs.push(format!(
                "its spec: give specs[\"environment/{name}\"], the spec it was deployed with"
            ));
        }
        let mut planned = None;
        if let (Ok(name), Some((template, version)), Some(spec), Some(role)) =
            (parsed, versioned, spec, &f.role_arn)
        {
            match environment_state(&version, spec) {
                Err(reason) => item.needs.push(format!("a valid spec: {reason}")),
                Ok(state) if item.blockers.is_empty() => {
                    let now = Timestamp::now();
                    planned = Some(PlannedEnvironment {
                        role: role.clone(),
                        component_role: component_role.clone(),
                        template: template.name.clone(),
                        major: version.number.major,
                    });
                    plan.environments.push((
                        index,
                        Environment {
                            name,
                            description: None,
                            component_role_arn: component_role,
                            created_at: now,
                            deployed: adopted(&self.d, state, &f.name, role.clone(), now),
                            tags: Tags::default(),
                            rev: 1,
                        },
                        version,
                    ));
                }
                Ok(_) => {}
            }
        }
        plan.items[index] = item;
        Ok(planned)
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_service(
        &self,
        request: &ImportRequest,
        found: &[(Found, Identity)],
        name: &str,
        indexes: &[usize],
        environments: &HashMap<String, PlannedEnvironment>,
        plan: &mut ImportPlan,
    ) -> Result<()> {
        let d = &self.d;
        // What is wrong with the service as a whole goes on each of its stacks.
        let mut blockers = Vec::new();
        let mut needs = Vec::new();
        let parsed = ResourceName::parse(name);
        match &parsed {
            Ok(parsed) => {
                if d.store.service(parsed).await?.is_some() {
                    blockers.push(format!("paved already has a service {name}"));
                }
            }
            Err(reason) => blockers.push(format!("service name {name}: {reason}")),
        }
        let first = &found[indexes[0]].0;
        // The template and version are the service's: found once, put on each of its stacks.
        let mut probe = plan.items[indexes[0]].clone();
        probe.blockers.clear();
        let versioned = self
            .version_for(request, TemplateKind::Service, first, &mut probe)
            .await?;
        blockers.extend(probe.blockers);
        for &index in &indexes[1..] {
            if template_of(&found[index].0) != template_of(first) {
                blockers.push(format!(
                    "the stacks of service {name} name different templates in their proton:template tags"
                ));
                break;
            }
        }
        let spec_text = request.specs.get(&format!("service/{name}"));
        let spec = match spec_text.map(|text| Spec::parse(text)) {
            None => {
                needs.push(format!(
                    "the service's spec: give specs[\"service/{name}\"], the spec it was created with"
                ));
                None
            }
            Some(Ok(Spec::Service {
                pipeline,
                instances,
            })) => Some((pipeline, instances)),
            Some(Ok(Spec::Environment { .. })) => {
                needs.push(format!(
                    "specs[\"service/{name}\"] is an environment's spec; give `proton: ServiceSpec`"
                ));
                None
            }
            Some(Err(reason)) => {
                needs.push(format!("a valid spec for service {name}: {reason}"));
                None
            }
        };
        let pipeline_index = indexes
            .iter()
            .copied()
            .find(|&i| matches!(found[i].1, Identity::Pipeline { .. }));
        let mut pipeline_role = None;
        if let Some((template, version)) = &versioned {
            let has_pipeline = version.has_pipeline && template.provisioning.is_none();
            match (has_pipeline, pipeline_index) {
                (true, None) => blockers.push(format!(
                    "version {} of service template {} has a pipeline, and no pipeline stack of service {name} was found",
                    version.number, version.template_name
                )),
                (false, Some(_)) => blockers.push(format!(
                    "a pipeline stack of service {name} was found, and version {} of service template {} has no pipeline",
                    version.number, version.template_name
                )),
                _ => {}
            }
            if has_pipeline {
                match d.pipeline_role().await? {
                    Some(role) => {
                        blockers.extend(
                            self.role_blockers("pipelineServiceRoleArn", &role).await?,
                        );
                        pipeline_role = Some(role);
                    }
                    None => blockers.push("paved has no pipeline role: set one with UpdateAccountSettings (pipelineServiceRoleArn)".into()),
                }
                if !request.repositories.contains_key(name) {
                    needs.push(format!(
                        "the repository its pipeline builds: give repositories[\"{name}\"] (repositoryConnectionArn, repositoryId, branchName), as the service was created with"
                    ));
                }
            }
        }
        // Each instance: its environment, and its entry in the spec.
        let mut instance_problems: HashMap<usize, Vec<String>> = HashMap::new();
        let listed: BTreeMap<String, String> = spec
            .as_ref()
            .map(|(_, instances)| {
                instances
                    .iter()
                    .map(|i| (i.name.to_string(), i.environment.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut stacks_of_instances = BTreeSet::new();
        let mut facts: HashMap<String, (String, ResourceName, u64)> = HashMap::new();
        for &index in indexes {
            let Identity::Instance {
                name: instance,
                environment,
                ..
            } = &found[index].1
            else {
                continue;
            };
            stacks_of_instances.insert(instance.clone());
            let problems = instance_problems.entry(index).or_default();
            if spec.is_some() {
                match listed.get(instance) {
                    None => problems.push(format!(
                        "the service's spec does not list instance {instance}"
                    )),
                    Some(listed) if listed != environment => problems.push(format!(
                        "the service's spec puts instance {instance} in environment {listed}; its stack runs in {environment}"
                    )),
                    _ => {}
                }
            }
            match self.environment_facts(environment, environments).await? {
                Some(f) => {
                    facts.insert(environment.clone(), f);
                }
                None => problems.push(format!(
                    "environment {environment} is neither in paved nor adoptable in this import"
                )),
            }
        }
        for instance in listed.keys() {
            if !stacks_of_instances.contains(instance) {
                blockers.push(format!(
                    "the service's spec lists instance {instance}, which has no stack; leave it out of the spec (add it after the import with UpdateService)"
                ));
            }
        }
        // Records, if nothing stands in the way.
        let all_clear = blockers.is_empty()
            && needs.is_empty()
            && instance_problems.values().all(Vec::is_empty)
            && indexes.iter().all(|&i| plan.items[i].blockers.is_empty());
        if all_clear
            && let (
                Ok(service_name),
                Some((template, version)),
                Some((pipeline_inputs, specs)),
                Some(text),
            ) = (parsed, &versioned, &spec, spec_text)
        {
            match self.service_records(
                &service_name,
                template,
                version,
                text,
                pipeline_inputs.as_ref(),
                specs,
                found,
                indexes,
                &facts,
                pipeline_role,
                request.repositories.get(name),
            ) {
                Ok(unit) => plan.services.push(unit),
                Err(reason) => needs.push(format!("a valid spec for service {name}: {reason}")),
            }
        }
        for &index in indexes {
            let item = &mut plan.items[index];
            item.blockers.extend(blockers.iter().cloned());
            item.blockers
                .extend(instance_problems.remove(&index).unwrap_or_default());
            item.needs.extend(needs.iter().cloned());
            item.template_version.clone_from(&probe.template_version);
            item.version_from = probe.version_from;
            if let Identity::Instance { environment, .. } = &found[index].1 {
                item.role_arn = facts.get(environment).map(|f| f.0.clone());
            }
        }
        Ok(())
    }

    /// The role, template and major of the environment an instance or component runs in.
    async fn environment_facts(
        &self,
        name: &str,
        planned: &HashMap<String, PlannedEnvironment>,
    ) -> Result<Option<(String, ResourceName, u64)>> {
        if let Some(p) = planned.get(name) {
            return Ok(Some((p.role.clone(), p.template.clone(), p.major)));
        }
        let Ok(parsed) = ResourceName::parse(name) else {
            return Ok(None);
        };
        Ok(self.d.store.environment(&parsed).await?.map(|e| {
            (
                e.deployed.role_arn.clone(),
                e.deployed.state.template_name.clone(),
                e.deployed.state.major,
            )
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn service_records(
        &self,
        name: &ResourceName,
        template: &crate::domain::template::Template,
        version: &TemplateVersion,
        spec_text: &str,
        pipeline_inputs: Option<&Inputs>,
        specs: &[crate::domain::spec::InstanceSpec],
        found: &[(Found, Identity)],
        indexes: &[usize],
        facts: &HashMap<String, (String, ResourceName, u64)>,
        pipeline_role: Option<String>,
        repository: Option<&RepositoryGiven>,
    ) -> std::result::Result<ServiceUnit, String> {
        let layout = BundleLayout::Service {
            pipeline: version.has_pipeline,
        };
        let schema = layout.parse_schema(&version.schema)?;
        let now = Timestamp::now();
        let state = |inputs| DeployedState {
            template_name: template.name.clone(),
            major: version.number.major,
            minor: version.number.minor,
            spec: spec_text.to_string(),
            inputs,
            component: None,
        };
        let mut instances = Vec::new();
        let mut pipeline = None;
        for &index in indexes {
            let (f, identity) = &found[index];
            match identity {
                Identity::Instance {
                    name: instance,
                    environment,
                    ..
                } => {
                    let given = specs
                        .iter()
                        .find(|s| s.name.as_str() == instance)
                        .ok_or_else(|| format!("the spec does not list instance {instance}"))?;
                    let (role, env_template, env_major) = facts
                        .get(environment)
                        .ok_or_else(|| format!("environment {environment} is not adoptable"))?;
                    let compatible = version.compatible_environment_templates.iter().any(|c| {
                        c.template_name == *env_template && c.major_version.0 == *env_major
                    });
                    if !compatible {
                        return Err(format!(
                            "version {} of service template {} is not compatible with environment {environment} ({env_template} major {env_major})",
                            version.number, template.name
                        ));
                    }
                    let inputs = resolve_inputs(
                        schema.input(InputRole::Service),
                        &given.inputs,
                        &format!("instances ({instance}).spec"),
                    )?;
                    instances.push(ServiceInstance {
                        service: name.clone(),
                        name: given.name.clone(),
                        environment: given.environment.clone(),
                        created_at: now,
                        deployed: adopted(&self.d, state(inputs), &f.name, role.clone(), now),
                        component: None,
                        tags: Tags::default(),
                        rev: 1,
                    });
                }
                Identity::Pipeline { .. } => {
                    let inputs = resolve_inputs(
                        schema.input(InputRole::Pipeline),
                        pipeline_inputs.unwrap_or(&Inputs::new()),
                        "spec.pipeline",
                    )?;
                    pipeline = Some(adopted(
                        &self.d,
                        state(inputs),
                        &f.name,
                        pipeline_role.clone().unwrap_or_default(),
                        now,
                    ));
                }
                _ => {}
            }
        }
        let service = Service {
            name: name.clone(),
            description: None,
            template_name: template.name.clone(),
            major: version.number.major,
            minor: version.number.minor,
            spec: spec_text.to_string(),
            repository: Repository {
                connection_arn: repository.map(|r| r.repository_connection_arn.clone()),
                id: repository.map(|r| r.repository_id.clone()),
                branch: repository.map(|r| r.branch_name.clone()),
            },
            status: ServiceStatus::Active,
            status_message: None,
            created_at: now,
            last_modified_at: now,
            pipeline,
            awaiting: vec![],
            redeploys: Default::default(),
            tags: Tags::default(),
            rev: 1,
        };
        Ok(ServiceUnit {
            items: indexes.to_vec(),
            service,
            instances,
            version: version.clone(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_component(
        &self,
        f: &Found,
        name: &str,
        environment: &str,
        attached: Option<&(String, String)>,
        environments: &HashMap<String, PlannedEnvironment>,
        index: usize,
        plan: &mut ImportPlan,
    ) -> Result<()> {
        let d = &self.d;
        let mut item = plan.items[index].clone();
        let parsed = ResourceName::parse(name);
        if let Ok(parsed) = &parsed
            && d.store.component(parsed).await?.is_some()
        {
            item.blockers
                .push(format!("paved already has a component {name}"));
        }
        let env_role = match environments.get(environment) {
            Some(planned) => Some(planned.component_role.clone()),
            None => match ResourceName::parse(environment) {
                Ok(env) => d
                    .store
                    .environment(&env)
                    .await?
                    .map(|e| e.component_role_arn),
                Err(_) => None,
            },
        };
        match env_role {
            None => item.blockers.push(format!(
                "environment {environment} is neither in paved nor adoptable in this import"
            )),
            Some(None) => item.blockers.push(format!(
                "environment {environment} has no componentRoleArn: components deploy under it"
            )),
            Some(Some(role)) if f.role_arn.as_deref() != Some(role.as_str()) => {
                item.blockers.push(format!(
                    "the stack runs under {}, and environment {environment}'s components deploy under {role}",
                    f.role_arn.as_deref().unwrap_or("no role")
                ));
            }
            Some(Some(_)) => {}
        }
        // The instance it is attached to: adopted in this import, or already paved's.
        let mut attach = None;
        if let Some((service, instance)) = attached {
            let in_import = plan.services.iter().find_map(|unit| {
                unit.instances
                    .iter()
                    .find(|i| i.service.as_str() == service && i.name.as_str() == instance)
                    .cloned()
            });
            let existing = match (ResourceName::parse(service), ResourceName::parse(instance)) {
                (Ok(s), Ok(i)) => d.store.instance(&s, &i).await?,
                _ => None,
            };
            match in_import.or(existing) {
                Some(found) if found.component.is_some() => item.blockers.push(format!(
                    "service instance {instance} of service {service} has a component already"
                )),
                Some(found) => attach = Some(found),
                None => item.blockers.push(format!(
                    "service instance {instance} of service {service} is neither in paved nor adoptable in this import"
                )),
            }
        }
        let placement = Placement {
            name: &f.name,
            role_arn: f.role_arn.as_deref().unwrap_or_default(),
        };
        let template = d
            .provisioners
            .default_engine()
            .running_template(placement)
            .await?
            .unwrap_or_default();
        // The component's definition is the template its stack runs, kept from Jinja.
        let template_file = format!("{{% raw %}}{template}{{% endraw %}}");
        if template.contains("{% endraw %}") || template_file.chars().count() > 51_200 {
            item.blockers.push("the stack's template cannot be kept as the component's definition (too long, or it holds `{% endraw %}`); create the component anew instead".into());
        }
        if let (Ok(name), true) = (parsed, item.blockers.is_empty() && item.needs.is_empty()) {
            let now = Timestamp::now();
            let definition = ComponentDefinition {
                manifest: "infrastructure:\n  templates:\n    - file: cloudformation.yaml\n      rendering_engine: jinja\n      template_language: cloudformation\n".into(),
                template_file,
                service: attached.and_then(|(s, _)| ResourceName::parse(s).ok()),
                instance: attached.and_then(|(_, i)| ResourceName::parse(i).ok()),
            };
            let state = DeployedState {
                template_name: name.clone(),
                major: 0,
                minor: 0,
                spec: String::new(),
                inputs: Default::default(),
                component: Some(definition),
            };
            let role = f.role_arn.clone().unwrap_or_default();
            if let Ok(environment) = ResourceName::parse(environment) {
                plan.components.push((
                    index,
                    Component {
                        name,
                        description: None,
                        environment,
                        created_at: now,
                        last_modified_at: now,
                        last_client_request_token: None,
                        deployed: adopted(d, state, &f.name, role, now),
                        tags: Tags::default(),
                        rev: 1,
                    },
                    attach,
                ));
            }
        }
        plan.items[index] = item;
        Ok(())
    }
}

/// `MAJOR.MINOR`.
fn parse_version(text: &str) -> Option<VersionNumber> {
    let (major, minor) = text.split_once('.')?;
    Some(VersionNumber {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
    })
}

/// An environment's state from its spec, against the version's schema.
fn environment_state(
    version: &TemplateVersion,
    spec: &str,
) -> std::result::Result<DeployedState, String> {
    let Spec::Environment { inputs } = Spec::parse(spec)? else {
        return Err("an environment takes `proton: EnvironmentSpec`".into());
    };
    let schema = BundleLayout::Environment.parse_schema(&version.schema)?;
    let inputs = resolve_inputs(schema.input(InputRole::Environment), &inputs, "spec")?;
    Ok(DeployedState {
        template_name: version.template_name.clone(),
        major: version.number.major,
        minor: version.number.minor,
        spec: spec.to_string(),
        inputs,
        component: None,
    })
}

/// The bookkeeping of a target adopted from `stack`: deployed (paved did not deploy it), and
/// marked adopted until paved's first deployment of it.
fn adopted(
    d: &Deployer,
    state: DeployedState,
    stack: &str,
    role: String,
    now: Timestamp,
) -> Deployed {
    Deployed {
        state,
        engine: d.provisioners.default_engine().engine(),
        stack_name: stack.to_string(),
        role_arn: role,
        deployment_status: DeploymentStatus::Succeeded,
        deployment_status_message: None,
        last_deployment_attempted_at: now,
        last_deployment_succeeded_at: now,
        last_attempted_deployment_id: None,
        last_succeeded_deployment_id: None,
        outputs: vec![],
        resources: vec![],
        adoption: Some(Adoption {
            adopted_at: now,
            confirmed: None,
        }),
    }
}

impl Imports {
    /// Confirms the plan an adopted target's first deployment stopped on (its code, from the
    /// deployment's message): the next deployment applies that plan, and only that plan.
    #[tracing::instrument(skip_all, fields(arn = %arn))]
    pub async fn confirm(&self, arn: &str, code: &str) -> Result<String> {
        use super::deploy::Loaded;
        let d = &self.d;
        let prefix = d.arns.proton("");
        let not_found = || {
            Error::not_found(format!(
                "resourceArn: {arn} names no environment, service instance, service pipeline or component of paved's"
            ))
        };
        let path = arn.strip_prefix(&prefix).ok_or_else(not_found)?;
        let name = |s: &str| ResourceName::parse(s).map_err(|_| not_found());
        let parts: Vec<&str> = path.split('/').collect();
        let target = match parts.as_slice() {
            ["environment", env] => d
                .store
                .environment(&name(env)?)
                .await?
                .map(Loaded::Environment),
            ["service", service, "service-instance", instance] => {
                let service = d.store.service(&name(service)?).await?;
                let instance = match &service {
                    Some(s) => d.store.instance(&s.name, &name(instance)?).await?,
                    None => None,
                };
                service
                    .zip(instance)
                    .map(|(service, instance)| Loaded::Instance { service, instance })
            }
            ["service", service, "pipeline"] => {
                d.store.service(&name(service)?).await?.and_then(|service| {
                    let pipeline = service.pipeline.clone()?;
                    Some(Loaded::Pipeline { service, pipeline })
                })
            }
            ["component", component] => d
                .store
                .component(&name(component)?)
                .await?
                .map(Loaded::Component),
            _ => None,
        }
        .ok_or_else(not_found)?;
        let code = code.trim();
        if code.is_empty() || code.len() > 64 || !code.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::validation(
                "confirmation: the code the deployment's message gave (hexadecimal)",
            ));
        }
        let Some(adoption) = &target.deployed().adoption else {
            return Err(Error::validation(format!(
                "{} was not adopted, or paved has deployed it since: its deployments need no confirmation",
                target.noun()
            )));
        };
        if adoption.confirmed.as_deref() == Some(code) {
            return Ok(code.to_string());
        }
        if target.deployed().deployment_status.is_active() {
            return Err(Error::conflict(format!(
                "{} is being deployed; confirm once its deployment ended",
                target.noun()
            )));
        }
        let mut next = target.clone();
        if let Some(adoption) = &mut next.deployed_mut().adoption {
            adoption.confirmed = Some(code.to_string());
        }
        let noun = target.noun();
        d.write(next.replace(&target), || {
            format!("{noun} was changed by another request; confirm again")
        })
        .await?;
        Ok(code.to_string())
    }
}
