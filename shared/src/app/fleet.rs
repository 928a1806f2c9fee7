//! The fleet at a glance: GetResourcesSummary, counted as the model says (templates and
//! environments: a total; components: total and failed; services, service instances and
//! pipelines: also how many are up to date, behind a minor or behind a major of their
//! template's recommended versions).

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::deploy::Deployer;
use super::{Result, every};
use crate::domain::environment::{Deployed, DeploymentStatus};
use crate::domain::names::ResourceName;
use crate::domain::service::ServiceStatus;
use crate::domain::template::{Staleness, TemplateKind, VersionIndex, VersionNumber};

/// One kind's counts (the model's `ResourceCountsSummary`); `None` where the model leaves a
/// member out for that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub failed: Option<u64>,
    pub up_to_date: Option<u64>,
    pub behind_minor: Option<u64>,
    pub behind_major: Option<u64>,
}

impl Counts {
    fn add_failed(&mut self, failed: bool) {
        *self.failed.get_or_insert(0) += u64::from(failed);
    }

    fn add_staleness(&mut self, staleness: Staleness) {
        let counter = match staleness {
            Staleness::UpToDate => &mut self.up_to_date,
            Staleness::BehindMinor => &mut self.behind_minor,
            Staleness::BehindMajor => &mut self.behind_major,
        };
        *counter.get_or_insert(0) += 1;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub environment_templates: Counts,
    pub service_templates: Counts,
    pub environments: Counts,
    pub services: Counts,
    pub service_instances: Counts,
    pub pipelines: Counts,
    pub components: Counts,
}

pub struct Fleet {
    d: Deployer,
}

impl Fleet {
    pub fn new(deployer: Deployer) -> Self {
        Self { d: deployer }
    }

    async fn indexes(&self, kind: TemplateKind) -> Result<BTreeMap<ResourceName, VersionIndex>> {
        let templates = every(|page| self.d.catalog.templates(kind, page)).await?;
        Ok(templates
            .into_iter()
            .map(|t| (t.name, t.versions))
            .collect())
    }

    pub async fn summary(&self) -> Result<Summary> {
        let mut summary = Summary::default();
        let environment_templates = self.indexes(TemplateKind::Environment).await?;
        let service_templates = self.indexes(TemplateKind::Service).await?;
        summary.environment_templates.total = environment_templates.len() as u64;
        summary.service_templates.total = service_templates.len() as u64;
        let stale = |deployed: &Deployed| {
            let state = &deployed.state;
            service_templates
                .get(&state.template_name)
                .map_or(Staleness::UpToDate, |index| {
                    index.staleness(VersionNumber {
                        major: state.major,
                        minor: state.minor,
                    })
                })
        };
        let failed = |deployed: &Deployed| {
            matches!(
                deployed.deployment_status,
                DeploymentStatus::Failed | DeploymentStatus::DeleteFailed
            )
        };
        summary.environments.total =
            every(|page| self.d.store.environments(page)).await?.len() as u64;
        for service in every(|page| self.d.store.services(page)).await? {
            let mut worst = Staleness::UpToDate;
            for instance in self.d.store.instances(&service.name).await? {
                summary.service_instances.total += 1;
                summary
                    .service_instances
                    .add_failed(failed(&instance.deployed));
                let staleness = stale(&instance.deployed);
                summary.service_instances.add_staleness(staleness);
                worst = worst.max(staleness);
            }
            if let Some(pipeline) = &service.pipeline {
                summary.pipelines.total += 1;
                summary.pipelines.add_failed(failed(pipeline));
                let staleness = stale(pipeline);
                summary.pipelines.add_staleness(staleness);
                worst = worst.max(staleness);
            }
            summary.services.total += 1;
            summary.services.add_failed(matches!(
                service.status,
                ServiceStatus::CreateFailed
                    | ServiceStatus::UpdateFailed
                    | ServiceStatus::DeleteFailed
            ));
            summary.services.add_staleness(worst);
        }
        for component in every(|page| self.d.store.components(None, page)).await? {
            summary.components.total += 1;
            summary.components.add_failed(failed(&component.deployed));
        }
        summary.components.failed.get_or_insert(0);
        for counts in [
            &mut summary.services,
            &mut summary.service_instances,
            &mut summary.pipelines,
        ] {
            counts.failed.get_or_insert(0);
            counts.up_to_date.get_or_insert(0);
            counts.behind_minor.get_or_insert(0);
            counts.behind_major.get_or_insert(0);
        }
        Ok(summary)
    }
}

impl Fleet {
    /// Redeploys a deployment's target to the template version and spec that deployment
    /// deployed, if it succeeded and that version still exists; answers the new deployment's
    /// id.
    #[tracing::instrument(skip_all, fields(deployment = %deployment_id))]
    pub async fn rollback(&self, deployment_id: &str) -> Result<String> {
        use crate::app::Error;
        use crate::domain::environment::Operation;
        let d = &self.d;
        let past = d.store.deployment(deployment_id).await?.ok_or_else(|| {
            Error::not_found(format!(
                "deploymentId: deployment {deployment_id} does not exist"
            ))
        })?;
        if past.operation != Operation::Deploy || past.status != DeploymentStatus::Succeeded {
            return Err(Error::validation(format!(
                "deployment {deployment_id} is {}, not a deployment that succeeded: a rollback goes back to what a successful deployment deployed",
                crate::domain::environment::status_name(past.status)
            )));
        }
        let Some(target) = super::deploy::Loaded::load(d, &past).await? else {
            return Err(Error::not_found(format!(
                "the target of deployment {deployment_id} no longer exists"
            )));
        };
        let state = past.target_state.clone();
        if let Some(kind) = target.template_kind() {
            if state.template_name != target.deployed().state.template_name {
                return Err(Error::validation(format!(
                    "deployment {deployment_id} deployed template {}, and {} now runs {}",
                    state.template_name,
                    target.noun(),
                    target.deployed().state.template_name
                )));
            }
            let gone = || {
                Error::validation(format!(
                    "version {} of {} {} no longer exists, so {} cannot go back to deployment {deployment_id}",
                    state.version(),
                    kind.noun(),
                    state.template_name,
                    target.noun()
                ))
            };
            let version = d
                .catalog
                .version(kind, &state.template_name, state.version())
                .await?
                .ok_or_else(gone)?;
            if version.status != crate::domain::template::VersionStatus::Published {
                return Err(gone());
            }
        }
        d.redeploy_to(target, state, &past).await
    }
}

/// One target of a template, as the fleet view shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetTarget {
    /// `ENVIRONMENT`, `SERVICE_INSTANCE` or `SERVICE_PIPELINE`.
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_name: Option<String>,
    /// The version it runs (`1.3`).
    pub version: String,
    /// `UP_TO_DATE`, `BEHIND_MINOR` or `BEHIND_MAJOR` of the recommended version.
    pub staleness: &'static str,
    pub deployment_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_deployment_id: Option<String>,
    pub last_deployment_attempted_at: crate::domain::names::Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_succeeded_deployment_id: Option<String>,
    pub stack_name: String,
    /// What the last drift detection found, if one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<Json>,
}

/// A template's fleet: its recommended version and every target that runs it.
#[derive(Debug, Clone)]
pub struct TemplateFleet {
    pub template: crate::domain::template::Template,
    pub targets: Vec<FleetTarget>,
}

fn staleness_name(staleness: Staleness) -> &'static str {
    match staleness {
        Staleness::UpToDate => "UP_TO_DATE",
        Staleness::BehindMinor => "BEHIND_MINOR",
        Staleness::BehindMajor => "BEHIND_MAJOR",
    }
}

impl Fleet {
    /// Every environment (of an environment template), or every service instance and pipeline
    /// (of a service template), with the version it runs, how far behind the recommended
    /// version that is, and its last deployment.
    pub async fn view(&self, kind: TemplateKind, name: &ResourceName) -> Result<TemplateFleet> {
        let d = &self.d;
        let template = d.catalog.template(kind, name).await?.ok_or_else(|| {
            crate::app::Error::not_found(format!("{} {name} does not exist", kind.noun()))
        })?;
        let drifts: BTreeMap<String, crate::domain::drift::DriftRecord> = d
            .fleet
            .drifts(kind.type_name(), name.as_str())
            .await?
            .into_iter()
            .map(|r| (r.stack_name.clone(), r))
            .collect();
        let targets = self
            .targets_of(kind, name)
            .await?
            .iter()
            .map(|target| {
                let (kind, name, service_name, environment_name) = identity(target);
                let deployed = target.deployed();
                FleetTarget {
                    kind,
                    name,
                    service_name,
                    environment_name,
                    version: deployed.state.version().to_string(),
                    staleness: staleness_name(
                        template.versions.staleness(deployed.state.version()),
                    ),
                    deployment_status: crate::domain::environment::status_name(
                        deployed.deployment_status,
                    ),
                    last_deployment_id: deployed.last_attempted_deployment_id.clone(),
                    last_deployment_attempted_at: deployed.last_deployment_attempted_at,
                    last_succeeded_deployment_id: deployed.last_succeeded_deployment_id.clone(),
                    stack_name: deployed.stack_name.clone(),
                    drift: drifts.get(&deployed.stack_name).map(|r| {
                        let mut shown = serde_json::json!({
                            "status": r.status.name(),
                            "checkedAt": r.checked_at,
                            "driftedResources": r.resources.len(),
                        });
                        if let Some(message) = &r.message {
                            shown["message"] = message.clone().into();
                        }
                        shown
                    }),
                }
            })
            .collect();
        Ok(TemplateFleet { template, targets })
    }

    /// Every target of a template: the environments of an environment template, or the
    /// instances and pipelines of a service template's services.
    pub(crate) async fn targets_of(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
    ) -> Result<Vec<super::deploy::Loaded>> {
        Ok(self
            .targets_by_template(kind, Some(name))
            .await?
            .remove(name)
            .unwrap_or_default())
    }

    /// The targets of every template of a kind (or of `only` that one), by template, in one
    /// read of the environments or services.
    pub(crate) async fn targets_by_template(
        &self,
        kind: TemplateKind,
        only: Option<&ResourceName>,
    ) -> Result<BTreeMap<ResourceName, Vec<super::deploy::Loaded>>> {
        use super::deploy::Loaded;
        let d = &self.d;
        let wanted = |template: &ResourceName| only.is_none_or(|name| name == template);
        let mut all: BTreeMap<ResourceName, Vec<Loaded>> = BTreeMap::new();
        match kind {
            TemplateKind::Environment => {
                for e in every(|page| d.store.environments(page)).await? {
                    let template = e.deployed.state.template_name.clone();
                    if wanted(&template) {
                        all.entry(template)
                            .or_default()
                            .push(Loaded::Environment(e));
                    }
                }
            }
            TemplateKind::Service => {
                for s in every(|page| d.store.services(page)).await? {
                    if !wanted(&s.template_name) {
                        continue;
                    }
                    let targets = all.entry(s.template_name.clone()).or_default();
                    for instance in d.store.instances(&s.name).await? {
                        targets.push(Loaded::Instance {
                            service: s.clone(),
                            instance,
                        });
                    }
                    if let Some(pipeline) = s.pipeline.clone() {
                        targets.push(Loaded::Pipeline {
                            service: s,
                            pipeline,
                        });
                    }
                }
            }
        }
        Ok(all)
    }
}

/// A proposed change to preview: a template version for a set of targets (all the template's
/// targets if none are named), or with `spec`, a new spec for one target.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewRequest {
    pub template_name: ResourceName,
    /// `ENVIRONMENT` or `SERVICE`.
    pub template_type: String,
    pub template_major_version: crate::domain::names::VersionPart,
    /// The major's recommended minor if left out.
    pub template_minor_version: Option<crate::domain::names::VersionPart>,
    #[serde(default)]
    pub targets: Vec<PreviewTarget>,
    pub spec: Option<String>,
}

/// One target: an environment (`environmentName`), a service instance (`serviceName`,
/// `serviceInstanceName`) or a service's pipeline (`serviceName`, `pipeline: true`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewTarget {
    pub environment_name: Option<ResourceName>,
    pub service_name: Option<ResourceName>,
    pub service_instance_name: Option<ResourceName>,
    #[serde(default)]
    pub pipeline: bool,
}

/// What the change would do to one target.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Previewed {
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    pub from_version: String,
    pub to_version: String,
    /// `CHANGES`, `UNCHANGED`, `BUSY` (a deployment runs, or the stack is moving) or `FAILED`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The rendered template against the one running, as a unified diff.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
    pub actions: Vec<crate::domain::adoption::ResourceAction>,
}

/// The actions of a preview summed over its targets, and the resource types replaced.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewSummary {
    pub targets: usize,
    pub add: usize,
    pub modify: usize,
    pub replace: usize,
    pub remove: usize,
    /// Resource type → how many the change replaces.
    pub replaced: BTreeMap<String, usize>,
    /// Resource type → how many the change removes.
    pub removed: BTreeMap<String, usize>,
}

/// How long a preview waits for one target's plan.
const PREVIEW_WAIT: std::time::Duration = std::time::Duration::from_secs(20);
/// Targets planned at once.
const PREVIEW_CONCURRENCY: usize = 8;
/// Targets one preview takes (an API call must answer within API Gateway's 29 s).
pub const PREVIEW_MAX_TARGETS: usize = 50;

impl Fleet {
    /// Renders and plans every target of the change without applying anything; each plan is
    /// dropped once read.
    #[tracing::instrument(skip_all, fields(template = %request.template_name))]
    pub async fn preview(
        &self,
        request: PreviewRequest,
    ) -> Result<(Vec<Previewed>, PreviewSummary)> {
        use crate::app::Error;
        let d = &self.d;
        let kind =
            TemplateKind::from_type_name(&request.template_type).map_err(Error::Validation)?;
        let (_, number) = d
            .requested_version(
                kind,
                &request.template_name,
                request.template_major_version.0,
                request.template_minor_version.map(|m| m.0),
            )
            .await?;
        let version = d.version_of(kind, &request.template_name, number).await?;
        let targets = self.preview_targets(kind, &request).await?;
        if request.spec.is_some() && targets.len() != 1 {
            return Err(Error::validation(
                "spec: a new spec is previewed for exactly one target; name it in targets",
            ));
        }
        if targets.len() > PREVIEW_MAX_TARGETS {
            return Err(Error::validation(format!(
                "targets: {} targets; a preview takes at most {PREVIEW_MAX_TARGETS} (name them in targets, a page at a time)",
                targets.len()
            )));
        }
        let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(PREVIEW_CONCURRENCY));
        let mut running = tokio::task::JoinSet::new();
        for (index, target) in targets.into_iter().enumerate() {
            let (d, version, spec, semaphore) = (
                d.clone(),
                version.clone(),
                request.spec.clone(),
                semaphore.clone(),
            );
            running.spawn(async move {
                let _turn = semaphore.acquire_owned().await;
                (
                    index,
                    preview_one(&d, target, &version, spec.as_deref()).await,
                )
            });
        }
        let mut done = Vec::new();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok(result) => done.push(result),
                Err(error) => tracing::error!(error = %error, "a preview task failed"),
            }
        }
        done.sort_by_key(|(index, _)| *index);
        let previewed: Vec<Previewed> = done.into_iter().map(|(_, p)| p).collect();
        let mut summary = PreviewSummary {
            targets: previewed.len(),
            ..Default::default()
        };
        for p in &previewed {
            for a in &p.actions {
                use crate::domain::adoption::Action;
                match a.action {
                    Action::Add => summary.add += 1,
                    Action::Modify => summary.modify += 1,
                    Action::Replace => {
                        summary.replace += 1;
                        *summary.replaced.entry(a.resource_type.clone()).or_default() += 1;
                    }
                    Action::Remove => {
                        summary.remove += 1;
                        *summary.removed.entry(a.resource_type.clone()).or_default() += 1;
                    }
                }
            }
        }
        Ok((previewed, summary))
    }

    async fn preview_targets(
        &self,
        kind: TemplateKind,
        request: &PreviewRequest,
    ) -> Result<Vec<super::deploy::Loaded>> {
        use super::deploy::Loaded;
        use crate::app::Error;
        let d = &self.d;
        let wrong_template = |noun: String, runs: &ResourceName| {
            Error::validation(format!(
                "targets: {noun} runs {runs}, not {} {}",
                kind.noun(),
                request.template_name
            ))
        };
        if request.targets.is_empty() {
            return self.targets_of(kind, &request.template_name).await;
        }
        let mut chosen = Vec::new();
        for t in &request.targets {
            let loaded = match (kind, t) {
                (
                    TemplateKind::Environment,
                    PreviewTarget {
                        environment_name: Some(name),
                        service_name: None,
                        service_instance_name: None,
                        pipeline: false,
                    },
                ) => Loaded::Environment(d.store.environment(name).await?.ok_or_else(|| {
                    Error::not_found(format!("targets: environment {name} does not exist"))
                })?),
                (
                    TemplateKind::Service,
                    PreviewTarget {
                        environment_name: None,
                        service_name: Some(service),
                        service_instance_name,
                        pipeline,
                    },
                ) => {
                    let s = d.store.service(service).await?.ok_or_else(|| {
                        Error::not_found(format!("targets: service {service} does not exist"))
                    })?;
                    match (service_instance_name, pipeline) {
                        (Some(name), false) => {
                            let instance =
                                d.store.instance(service, name).await?.ok_or_else(|| {
                                    Error::not_found(format!(
                                        "targets: service {service} has no instance {name}"
                                    ))
                                })?;
                            Loaded::Instance {
                                service: s,
                                instance,
                            }
                        }
                        (None, true) => {
                            let pipeline = s.pipeline.clone().ok_or_else(|| {
                                Error::validation(format!(
                                    "targets: service {service} has no pipeline"
                                ))
                            })?;
                            Loaded::Pipeline {
                                service: s,
                                pipeline,
                            }
                        }
                        _ => {
                            return Err(Error::validation(
                                "targets: name a service instance (serviceName, serviceInstanceName) or a pipeline (serviceName, pipeline: true)",
                            ));
                        }
                    }
                }
                (TemplateKind::Environment, _) => {
                    return Err(Error::validation(
                        "targets: an environment template's targets are environments (environmentName)",
                    ));
                }
                (TemplateKind::Service, _) => {
                    return Err(Error::validation(
                        "targets: a service template's targets are service instances and pipelines (serviceName with serviceInstanceName, or pipeline: true)",
                    ));
                }
            };
            if loaded.deployed().state.template_name != request.template_name {
                return Err(wrong_template(
                    loaded.noun(),
                    &loaded.deployed().state.template_name,
                ));
            }
            chosen.push(loaded);
        }
        Ok(chosen)
    }
}

/// Renders one target with the version (and spec), plans it on its engine, reads the plan's
/// actions and drops it. Every failure is the target's outcome, not the preview's.
async fn preview_one(
    d: &Deployer,
    target: super::deploy::Loaded,
    version: &crate::domain::template::TemplateVersion,
    spec: Option<&str>,
) -> Previewed {
    let (kind, name, service, _) = identity(&target);
    let mut previewed = Previewed {
        kind,
        name,
        service_name: service,
        from_version: target.deployed().state.version().to_string(),
        to_version: version.number.to_string(),
        outcome: "FAILED",
        message: None,
        diff: String::new(),
        actions: vec![],
    };
    match plan_preview(d, &target, version, spec).await {
        Ok((outcome, diff, actions, message)) => {
            previewed.outcome = outcome;
            previewed.diff = diff;
            previewed.actions = actions;
            previewed.message = message;
        }
        Err(message) => previewed.message = Some(message),
    }
    previewed
}

type Planned = (
    &'static str,
    String,
    Vec<crate::domain::adoption::ResourceAction>,
    Option<String>,
);

async fn plan_preview(
    d: &Deployer,
    target: &super::deploy::Loaded,
    version: &crate::domain::template::TemplateVersion,
    spec: Option<&str>,
) -> std::result::Result<Planned, String> {
    use super::deploy::Loaded;
    use crate::domain::bundle::BundleLayout;
    use crate::domain::schema::InputRole;
    use crate::domain::spec::{Spec, resolve_inputs};
    use crate::ports::{Placement, PlanState, Planning};
    let current = target.deployed();
    if current.deployment_status.is_active() {
        return Ok((
            "BUSY",
            String::new(),
            vec![],
            Some(format!("{} has a deployment in progress", target.noun())),
        ));
    }
    let (layout, role) = match target {
        Loaded::Environment(_) => (BundleLayout::Environment, InputRole::Environment),
        Loaded::Instance { .. } => (
            BundleLayout::Service {
                pipeline: version.has_pipeline,
            },
            InputRole::Service,
        ),
        _ => (
            BundleLayout::Service {
                pipeline: version.has_pipeline,
            },
            InputRole::Pipeline,
        ),
    };
    let raw = match (spec, target) {
        (None, _) => current.state.inputs.clone(),
        (Some(text), _) => match (Spec::parse(text)?, target) {
            (Spec::Environment { inputs }, Loaded::Environment(_)) => inputs,
            (Spec::Service { instances, .. }, Loaded::Instance { instance, .. }) => instances
                .into_iter()
                .find(|i| i.name == instance.name)
                .map(|i| i.inputs)
                .ok_or_else(|| format!("spec: it does not list instance {}", instance.name))?,
            (Spec::Service { pipeline, .. }, Loaded::Pipeline { .. }) => {
                pipeline.unwrap_or_default()
            }
            _ => return Err("spec: not a spec of this kind of target".into()),
        },
    };
    let schema = layout.parse_schema(&version.schema)?;
    let inputs = resolve_inputs(schema.input(role), &raw, "spec")?;
    let state = crate::domain::environment::DeployedState {
        template_name: version.template_name.clone(),
        major: version.number.major,
        minor: version.number.minor,
        spec: spec.map_or_else(|| current.state.spec.clone(), str::to_string),
        inputs,
        component: None,
    };
    let mut next = target.clone();
    next.deployed_mut().state = state.clone();
    let id = format!("preview-{}", super::deploy::records::new_id());
    let record = super::deploy::records::deployment(
        &id,
        &version.template_name,
        crate::domain::environment::Target::Environment,
        state,
        current.last_deployment_attempted_at,
        crate::domain::names::Timestamp::now(),
    );
    let rendered = next.render(d, &record).await.map_err(|e| e.to_string())?;
    let engine = d
        .provisioners
        .get(current.engine)
        .ok_or_else(|| {
            format!(
                "no provisioning engine {} is configured",
                current.engine.wire_name()
            )
        })?
        .clone();
    let placement = Placement {
        name: &current.stack_name,
        role_arn: &current.role_arn,
    };
    let running = engine
        .running_template(placement)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let diff = similar::TextDiff::from_lines(&running, &rendered)
        .unified_diff()
        .context_radius(3)
        .header("running", "proposed")
        .to_string();
    let (tags, _) = next.stack_tags(d);
    let plan = match engine
        .preview(placement, &id, &rendered, &tags)
        .await
        .map_err(|e| e.to_string())?
    {
        Planning::Unchanged => return Ok(("UNCHANGED", diff, vec![], None)),
        Planning::Settling => {
            return Ok((
                "BUSY",
                diff,
                vec![],
                Some(format!(
                    "stack {} is moving; preview it again later",
                    current.stack_name
                )),
            ));
        }
        Planning::Planned(plan) => plan,
    };
    let deadline = tokio::time::Instant::now() + PREVIEW_WAIT;
    let outcome = loop {
        match engine.plan_state(&plan).await.map_err(|e| e.to_string()) {
            Ok(PlanState::Pending) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Ok(PlanState::Pending) => break Err("the plan was not ready in time".to_string()),
            Ok(PlanState::Unchanged) => break Ok(("UNCHANGED", vec![])),
            Ok(PlanState::Ready) => match engine.actions(&plan).await {
                Ok(actions) => {
                    break Ok((
                        if actions.is_empty() {
                            "UNCHANGED"
                        } else {
                            "CHANGES"
                        },
                        actions,
                    ));
                }
                Err(error) => break Err(error.to_string()),
            },
            Ok(PlanState::Failed(reason)) => break Err(reason),
            Err(reason) => break Err(reason),
        }
    };
    // The plan is never applied: drop it whatever happened.
    if let Err(error) = engine.discard(&plan).await {
        tracing::warn!(%plan, error = %error, "a preview's plan was not dropped");
    }
    let (outcome, actions) = outcome?;
    Ok((outcome, diff, actions, None))
}

/// A target as the fleet names it: its kind, name, service and environment.
fn identity(
    target: &super::deploy::Loaded,
) -> (&'static str, String, Option<String>, Option<String>) {
    use super::deploy::Loaded;
    match target {
        Loaded::Environment(e) => ("ENVIRONMENT", e.name.to_string(), None, None),
        Loaded::Instance { instance, .. } => (
            "SERVICE_INSTANCE",
            instance.name.to_string(),
            Some(instance.service.to_string()),
            Some(instance.environment.to_string()),
        ),
        Loaded::Pipeline { service, .. } => (
            "SERVICE_PIPELINE",
            service.name.to_string(),
            Some(service.name.to_string()),
            None,
        ),
        Loaded::Component(c) => (
            "COMPONENT",
            c.name.to_string(),
            None,
            Some(c.environment.to_string()),
        ),
    }
}

/// A target of the fleet as upgrades and drift records name it, with its tags; `None` for a
/// component (its template is its own).
pub(crate) fn fleet_target(
    loaded: &super::deploy::Loaded,
) -> Option<(
    crate::domain::upgrade::UpgradeTarget,
    BTreeMap<String, String>,
)> {
    use super::deploy::Loaded;
    use crate::domain::upgrade::UpgradeTarget;
    Some(match loaded {
        Loaded::Environment(e) => (
            UpgradeTarget::Environment {
                name: e.name.to_string(),
            },
            e.tags.to_map(),
        ),
        Loaded::Instance { instance, .. } => (
            UpgradeTarget::ServiceInstance {
                service: instance.service.to_string(),
                name: instance.name.to_string(),
                environment: instance.environment.to_string(),
            },
            instance.tags.to_map(),
        ),
        Loaded::Pipeline { service, .. } => (
            UpgradeTarget::ServicePipeline {
                service: service.name.to_string(),
            },
            service.tags.to_map(),
        ),
        Loaded::Component(_) => return None,
    })
}
