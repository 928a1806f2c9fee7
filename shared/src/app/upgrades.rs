//! Staged fleet upgrades: StartFleetUpgrade plans the waves and starts one upgrade execution
//! (`statemachines/upgrade.asl.json`); its steps check the deployments it started, start the
//! next ones through the same update paths as the API (so every rule of an update holds),
//! roll failed targets back when asked, and wait for callers: approvals between waves, a
//! resume after a pause. Callers write only the upgrade's control; the execution alone writes
//! the upgrade, so the two never race.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::deploy::{Deployer, TaskError};
use super::environments::{EnvironmentUpdate, Environments};
use super::fleet::Fleet;
use super::services::Services;
use super::services::{InstanceUpdate, PipelineUpdate};
use super::{Error, Result};
use crate::domain::environment::{DeploymentStatus, DeploymentType};
use crate::domain::names::{ClientToken, ResourceName, Timestamp, VersionPart};
use crate::domain::template::{TemplateKind, VersionNumber, VersionStatus};
use crate::domain::upgrade::{
    Approval, Awaiting, BUSY_ATTEMPTS, Control, MAX_CONCURRENCY, Next, Planned, Settings, Signal,
    TargetStatus, Upgrade, UpgradeStatus, UpgradeTarget, WavePlan,
};
use crate::ports::{DeploymentChange, StoreError, Workflow};

/// Longest wait between two checks of an upgrade.
const MAX_WAIT_SECONDS: u64 = 60;
/// An upgrade whose execution has not been seen this long after it was recorded is taken as
/// never started.
const START_GRACE_SECONDS: f64 = 120.0;

/// A StartFleetUpgrade request.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeRequest {
    pub template_name: ResourceName,
    /// `ENVIRONMENT` or `SERVICE`.
    pub template_type: String,
    pub template_major_version: VersionPart,
    /// The major's recommended minor if left out.
    pub template_minor_version: Option<VersionPart>,
    /// Only targets in these environments (an environment template: these environments).
    #[serde(default)]
    pub environments: Vec<ResourceName>,
    /// Only these services' instances and pipelines.
    #[serde(default)]
    pub services: Vec<ResourceName>,
    /// Only targets carrying every one of these tags (an instance's, an environment's, a
    /// pipeline's service's).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Whether service pipelines are upgraded too (default true; never when `environments`
    /// is given, a pipeline runs in none).
    pub include_pipelines: Option<bool>,
    /// The environments of each wave, in order; the rest form a last wave.
    #[serde(default)]
    pub waves: Vec<Vec<ResourceName>>,
    /// At most this many targets a wave (a larger one is split).
    pub wave_size: Option<u32>,
    pub concurrency: Option<u32>,
    pub max_failures: Option<u32>,
    #[serde(default)]
    pub approval: bool,
    #[serde(default)]
    pub rollback_failed: bool,
    pub client_token: Option<ClientToken>,
}

/// A call on a running upgrade: approve, pause, resume, cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Approve,
    Pause,
    Resume,
    Cancel,
}

/// The steps of the upgrade state machine.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "task", rename_all = "camelCase")]
pub enum UpgradeTask {
    AdvanceUpgrade(StepInput),
    AwaitUpgradeSignal(StepInput),
    FailUpgrade(StepInput),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepInput {
    upgrade_id: String,
    #[serde(default)]
    poll_seconds: Option<u64>,
    /// How long one check step may keep checking before it hands back to the state machine
    /// (0: one check). Checking inside the step, every 2 s, sees a deployment's end within
    /// seconds and keeps the execution's history small: a check loop of the state machine
    /// costs 9 history events, and an execution holds at most 25,000.
    #[serde(default)]
    check_seconds: Option<u64>,
    #[serde(default)]
    task_token: Option<String>,
    #[serde(default)]
    error: Option<Json>,
}

pub struct Upgrades {
    d: Deployer,
}

fn version_of(planned: &Planned) -> Option<VersionNumber> {
    let (major, minor) = planned.from_version.split_once('.')?;
    Some(VersionNumber {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
    })
}

impl Upgrades {
    pub fn new(deployer: Deployer) -> Self {
        Self { d: deployer }
    }

    /// Plans an upgrade and starts its execution.
    #[tracing::instrument(skip_all, fields(template = %request.template_name))]
    pub async fn start(&self, request: UpgradeRequest) -> Result<Upgrade> {
        let d = &self.d;
        let kind =
            TemplateKind::from_type_name(&request.template_type).map_err(Error::Validation)?;
        let scope = format!("StartFleetUpgrade/{}", request.template_name);
        let print = super::deploy::fingerprint(&request);
        let token = request.client_token.as_ref();
        let replayed = d.replay(&scope, token, &print).await?;
        if let Some(id) = &replayed
            && let Some((upgrade, _)) = d.fleet.upgrade(id).await?
        {
            return Ok(upgrade);
        }
        let concurrency = request
            .concurrency
            .unwrap_or(Settings::default().concurrency);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(Error::validation(format!(
                "concurrency: 1 to {MAX_CONCURRENCY} deployments at once"
            )));
        }
        if request.wave_size == Some(0) {
            return Err(Error::validation("waveSize: at least 1"));
        }
        if kind == TemplateKind::Environment && !request.services.is_empty() {
            return Err(Error::validation(
                "services: an environment template's targets are environments; select them with environments",
            ));
        }
        let (template, to) = d
            .requested_version(
                kind,
                &request.template_name,
                request.template_major_version.0,
                request.template_minor_version.map(|m| m.0),
            )
            .await?;
        let version = d.version_of(kind, &request.template_name, to).await?;
        if version.status != VersionStatus::Published {
            return Err(Error::validation(format!(
                "{} {} version {to} is not published; publish it before upgrading to it",
                kind.noun(),
                template.name
            )));
        }
        let planned = self.select(kind, &request, to).await?;
        if planned.is_empty() {
            return Err(Error::validation(format!(
                "no selected target of {} {} runs a version below {to}: nothing to upgrade",
                kind.noun(),
                request.template_name
            )));
        }
        let plan = WavePlan {
            environments: request
                .waves
                .iter()
                .map(|w| w.iter().map(ToString::to_string).collect())
                .collect(),
            size: request.wave_size.map(|s| s as usize),
        };
        let waves = plan.waves(planned).map_err(Error::Validation)?;
        let now = Timestamp::now();
        let id = replayed.unwrap_or_else(super::deploy::records::new_id);
        if let Some(record) = Deployer::token_record(&scope, token, &print, &id) {
            // The token is claimed first: a twin request that loses replays this id.
            let claimed = d
                .store
                .change(DeploymentChange {
                    token: Some(record),
                    ..Default::default()
                })
                .await;
            match claimed {
                Ok(()) => {}
                Err(StoreError::ConditionFailed) => {
                    if let Some(twin) = d.replay(&scope, token, &print).await?
                        && twin != id
                    {
                        return match d.fleet.upgrade(&twin).await? {
                            Some((upgrade, _)) => Ok(upgrade),
                            None => Err(Error::conflict(
                                "a request with the same clientToken is starting this upgrade; retry",
                            )),
                        };
                    }
                }
                Err(other) => return Err(other.into()),
            }
        }
        let mut upgrade = Upgrade {
            id: id.clone(),
            template_type: request.template_type.clone(),
            template_name: request.template_name.to_string(),
            major: to.major,
            minor: to.minor,
            settings: Settings {
                concurrency,
                max_failures: request.max_failures.unwrap_or(0),
                approval: request.approval,
                rollback_failed: request.rollback_failed,
            },
            waves,
            status: UpgradeStatus::Running,
            status_message: None,
            wave: 0,
            task_token: None,
            awaiting: None,
            started_by: super::deploy::audit::current(),
            created_at: now,
            updated_at: now,
            ended_at: None,
            idle: 0,
            counts: Default::default(),
            rev: 0,
        };
        upgrade.counts = upgrade.progress();
        match d.fleet.create_upgrade(&upgrade).await {
            Ok(()) => {}
            // A retry under the same token got here first.
            Err(StoreError::ConditionFailed) => {
                if let Some((existing, _)) = d.fleet.upgrade(&id).await? {
                    return Ok(existing);
                }
                return Err(Error::conflict(
                    "the upgrade changed while it was created; retry",
                ));
            }
            Err(other) => return Err(other.into()),
        }
        let started = d
            .workflows
            .start(Workflow::Upgrade, &id, json!({ "upgradeId": id }))
            .await;
        if let Err(error) = started {
            tracing::error!(upgrade = %id, error = %error, "upgrade execution not started");
            return self
                .fail_with(
                    &id,
                    "paved could not start the upgrade's execution; start it again".into(),
                )
                .await;
        }
        self.announce(&upgrade, None).await;
        Ok(upgrade)
    }

    /// The targets the request selects that run a version below `to`, in a stable order.
    async fn select(
        &self,
        kind: TemplateKind,
        request: &UpgradeRequest,
        to: VersionNumber,
    ) -> Result<Vec<Planned>> {
        let fleet = Fleet::new(self.d.clone());
        let environments: BTreeSet<&str> =
            request.environments.iter().map(|e| e.as_str()).collect();
        let services: BTreeSet<&str> = request.services.iter().map(|s| s.as_str()).collect();
        let pipelines = request.include_pipelines.unwrap_or(true) && environments.is_empty();
        let mut planned = Vec::new();
        for loaded in fleet.targets_of(kind, &request.template_name).await? {
            let Some((target, tags)) = super::fleet::fleet_target(&loaded) else {
                continue;
            };
            if matches!(target, UpgradeTarget::ServicePipeline { .. }) && !pipelines {
                continue;
            }
            if !environments.is_empty()
                && !target
                    .environment()
                    .is_some_and(|e| environments.contains(e))
            {
                continue;
            }
            let service = match &target {
                UpgradeTarget::ServiceInstance { service, .. }
                | UpgradeTarget::ServicePipeline { service } => Some(service.as_str()),
                UpgradeTarget::Environment { .. } => None,
            };
            if !services.is_empty() && !service.is_some_and(|s| services.contains(s)) {
                continue;
            }
            if request.tags.iter().any(|(k, v)| tags.get(k) != Some(v)) {
                continue;
            }
            let deployed = loaded.deployed();
            let running = deployed.state.version();
            if running.major > to.major || (running.major == to.major && running.minor >= to.minor)
            {
                continue;
            }
            planned.push(Planned::new(
                target,
                running.to_string(),
                deployed.last_succeeded_deployment_id.clone(),
            ));
        }
        Ok(planned)
    }

    /// An upgrade and its control. One still running whose execution ended without recording
    /// its end (it timed out after 30 days, or was stopped), or never started, is recorded as
    /// failed first, so none reads as running for good.
    pub async fn get(&self, id: &str) -> Result<(Upgrade, Control)> {
        use crate::ports::ExecutionState;
        let (upgrade, control) = self.read(id).await?;
        if upgrade.status.ended() {
            return Ok((upgrade, control));
        }
        let stale = match self.d.workflows.state(Workflow::Upgrade, id).await {
            Ok(Some(ExecutionState::Ended)) => true,
            Ok(None) => Timestamp::now().0 - upgrade.created_at.0 > START_GRACE_SECONDS,
            Ok(Some(_)) => false,
            Err(error) => {
                tracing::warn!(upgrade = id, error = %error, "the upgrade's execution state is unknown");
                false
            }
        };
        if !stale {
            return Ok((upgrade, control));
        }
        self.fail_with(
            id,
            "the upgrade's execution ended without recording its end (it timed out or was stopped); what it started has run on, start a new upgrade for the rest".into(),
        )
        .await?;
        self.read(id).await
    }

    async fn read(&self, id: &str) -> Result<(Upgrade, Control)> {
        self.d
            .fleet
            .upgrade(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("upgradeId: upgrade {id} does not exist")))
    }

    pub async fn list(
        &self,
        page: crate::ports::PageRequest,
    ) -> Result<crate::ports::Page<Upgrade>> {
        Ok(self.d.fleet.upgrades(page).await?)
    }

    /// Approves the wave an upgrade waits on, pauses, resumes or cancels it. Each is safe to
    /// repeat: a second approval of the same wave, a pause of a paused upgrade, change nothing.
    #[tracing::instrument(skip(self))]
    pub async fn command(&self, id: &str, command: Command) -> Result<(Upgrade, Control)> {
        let d = &self.d;
        for _ in 0..5 {
            let (upgrade, mut control) = self.get(id).await?;
            if upgrade.status.ended() {
                return Err(Error::conflict(format!(
                    "upgrade {id} has ended ({}); nothing to {}",
                    upgrade.status.name(),
                    match command {
                        Command::Approve => "approve",
                        Command::Pause => "pause",
                        Command::Resume => "resume",
                        Command::Cancel => "cancel",
                    }
                )));
            }
            let by = super::deploy::audit::current();
            let now = Timestamp::now();
            let changed = match command {
                Command::Approve => {
                    if upgrade.status != UpgradeStatus::AwaitingApproval {
                        return Err(Error::conflict(format!(
                            "upgrade {id} is {}, not waiting for an approval",
                            upgrade.status.name()
                        )));
                    }
                    if control.approved(upgrade.wave) {
                        false
                    } else {
                        control.approvals.push(Approval {
                            wave: upgrade.wave,
                            by,
                            at: now,
                        });
                        true
                    }
                }
                Command::Pause => !std::mem::replace(&mut control.paused, true),
                Command::Resume => std::mem::replace(&mut control.paused, false),
                Command::Cancel => {
                    if control.cancel.is_some() {
                        false
                    } else {
                        control.cancel = Some(Signal { by, at: now });
                        true
                    }
                }
            };
            if changed {
                control.rev += 1;
                match d.fleet.save_control(id, &control).await {
                    Ok(()) => {}
                    Err(StoreError::ConditionFailed) => continue,
                    Err(other) => return Err(other.into()),
                }
            }
            // The execution may wait on a token; whether it stored it before this control was
            // written or after, one of the two sends the signal (see `await_signal`).
            let (upgrade, control) = self.read(id).await?;
            if let Some(token) = &upgrade.task_token
                && signalled(&upgrade, &control)
                && let Err(error) = d.workflows.signal(token, json!({})).await
            {
                tracing::warn!(upgrade = %id, error = %error, "the upgrade's execution was not signalled; its next check will see the change");
                return Err(Error::Throttled(
                    "the upgrade's execution could not be resumed now; retry".into(),
                ));
            }
            return Ok((upgrade, control));
        }
        Err(Error::conflict(format!(
            "upgrade {id} changed while this call was made; retry"
        )))
    }
}

/// Whether what the execution waits for has come.
fn signalled(upgrade: &Upgrade, control: &Control) -> bool {
    control.cancel.is_some()
        || match upgrade.awaiting {
            Some(Awaiting::Approval) => control.approved(upgrade.wave),
            Some(Awaiting::Resume) => !control.paused,
            None => false,
        }
}

impl Upgrades {
    /// Runs one step of the upgrade state machine.
    pub async fn run_task(&self, task: UpgradeTask) -> Result<Json, TaskError> {
        match task {
            UpgradeTask::AdvanceUpgrade(input) => self.advance(&input).await.map_err(Into::into),
            UpgradeTask::AwaitUpgradeSignal(input) => {
                self.await_signal(&input).await.map_err(Into::into)
            }
            UpgradeTask::FailUpgrade(input) => self.fail(&input).await.map_err(Into::into),
        }
    }

    async fn save(&self, upgrade: &mut Upgrade, waves: BTreeSet<usize>) -> Result<()> {
        upgrade.rev += 1;
        upgrade.updated_at = Timestamp::now();
        upgrade.counts = upgrade.progress();
        let waves: Vec<usize> = waves.into_iter().collect();
        match self.d.fleet.save_upgrade(upgrade, &waves).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed) => Err(Error::Throttled(format!(
                "upgrade {} was saved by another step; the step runs again",
                upgrade.id
            ))),
            Err(other) => Err(other.into()),
        }
    }

    /// Checks, every 2 s for up to `checkSeconds`, until the upgrade needs its state machine
    /// (to wait for a caller, or to end) or the time is up.
    #[tracing::instrument(skip_all, fields(upgrade = %input.upgrade_id))]
    async fn advance(&self, input: &StepInput) -> Result<Json> {
        let budget = std::time::Duration::from_secs(input.check_seconds.unwrap_or(0));
        let started = tokio::time::Instant::now();
        let pause = std::time::Duration::from_secs(2);
        let mut checks = 0u64;
        loop {
            let mut outcome = self.check(input).await?;
            checks += 1;
            outcome["checks"] = checks.into();
            if outcome["outcome"] != "wait" || budget.is_zero() {
                return Ok(outcome);
            }
            if started.elapsed() + pause >= budget {
                // Checked all along: the state machine comes back at once.
                outcome["waitSeconds"] = 1.into();
                return Ok(outcome);
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// One check: records what the running deployments did, rolls back failed targets when
    /// asked, starts what the rules allow, and says what the execution does next.
    async fn check(&self, input: &StepInput) -> Result<Json> {
        let d = &self.d;
        let (mut upgrade, control) = self.read(&input.upgrade_id).await?;
        let before = upgrade.status;
        if upgrade.status.ended() {
            return Ok(json!({ "outcome": "ended", "status": upgrade.status.name() }));
        }
        let mut dirty = BTreeSet::new();
        // What the running deployments did.
        for w in 0..upgrade.waves.len() {
            for i in 0..upgrade.waves[w].targets.len() {
                let t = &upgrade.waves[w].targets[i];
                let id = match t.status {
                    TargetStatus::Deploying => t.deployment_id.clone(),
                    TargetStatus::RollingBack => t.rollback_deployment_id.clone(),
                    _ => continue,
                };
                let Some(id) = id else { continue };
                let Some((status, message)) = self.outcome(&id).await? else {
                    continue;
                };
                dirty.insert(w);
                let t = &mut upgrade.waves[w].targets[i];
                t.status = match (t.status, status) {
                    (TargetStatus::Deploying, true) => TargetStatus::Succeeded,
                    (TargetStatus::Deploying, false) => TargetStatus::Failed,
                    (_, true) => TargetStatus::RolledBack,
                    (_, false) => TargetStatus::RollbackFailed,
                };
                if let Some(message) = message {
                    t.message = Some(message);
                }
                if t.status == TargetStatus::Failed && upgrade.settings.rollback_failed {
                    self.roll_back(&upgrade.id, t).await;
                }
            }
        }
        let now = Timestamp::now();
        let step = upgrade.step(&control, now);
        match step.next {
            // Its end marks the targets of every wave never started.
            Next::Ended(_) => dirty.extend(0..upgrade.waves.len()),
            Next::Await(_) => {
                dirty.insert(upgrade.wave);
            }
            Next::Wait if !step.start.is_empty() => {
                dirty.insert(upgrade.wave);
            }
            Next::Wait => {}
        }
        let version = VersionNumber {
            major: upgrade.major,
            minor: upgrade.minor,
        };
        let token = format!("upgrade-{}", upgrade.id);
        let mut running = tokio::task::JoinSet::new();
        for &(w, i) in &step.start {
            let planned = upgrade.waves[w].targets[i].clone();
            let (d, by, token, since) = (
                d.clone(),
                upgrade.started_by.clone(),
                token.clone(),
                upgrade.created_at,
            );
            running.spawn(async move {
                let work = start_one(d, planned, version, token, since);
                let result = match by {
                    Some(by) => super::deploy::audit::acting_for(by, work).await,
                    None => work.await,
                };
                (w, i, result)
            });
        }
        let mut started = Vec::new();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok(done) => started.push(done),
                // The target stays pending: the next check starts it.
                Err(error) => tracing::error!(error = %error, "a target's start panicked"),
            }
        }
        for (w, i, result) in started {
            dirty.insert(w);
            let t = &mut upgrade.waves[w].targets[i];
            match result {
                Ok(id) => {
                    t.status = TargetStatus::Deploying;
                    t.deployment_id = Some(id);
                    t.message = None;
                }
                Err(Error::Conflict(message)) => {
                    t.busy += 1;
                    if t.busy >= BUSY_ATTEMPTS {
                        t.status = TargetStatus::Failed;
                        t.message = Some(format!(
                            "still busy after {BUSY_ATTEMPTS} checks: {message}"
                        ));
                    } else {
                        t.message = Some(message);
                    }
                }
                Err(Error::Throttled(message)) => t.message = Some(message),
                Err(Error::Store(error)) => {
                    tracing::warn!(error = %error, "a target was not started; the next check tries again");
                }
                Err(other) => {
                    t.status = TargetStatus::Failed;
                    t.message = Some(other.to_string());
                }
            }
        }
        upgrade.idle = if dirty.is_empty() {
            upgrade.idle + 1
        } else {
            0
        };
        let base = input.poll_seconds.unwrap_or(10).max(1);
        let wait = (base << upgrade.idle.min(6)).min(MAX_WAIT_SECONDS.max(base));
        let outcome = match &step.next {
            Next::Wait => json!({ "outcome": "wait", "waitSeconds": wait }),
            Next::Await(_) => json!({ "outcome": "await" }),
            Next::Ended(status) => json!({ "outcome": "ended", "status": status.name() }),
        };
        if let Next::Await(awaiting) = step.next {
            upgrade.awaiting = Some(awaiting);
        } else {
            upgrade.awaiting = None;
            upgrade.task_token = None;
        }
        self.save(&mut upgrade, dirty).await?;
        if upgrade.status != before {
            self.announce(&upgrade, Some(before)).await;
        }
        Ok(outcome)
    }

    /// Whether a deployment ended (`Some(succeeded, its message)`), `None` while it runs.
    async fn outcome(&self, id: &str) -> Result<Option<(bool, Option<String>)>> {
        let Some(deployment) = self.d.store.deployment(id).await? else {
            return Ok(Some((
                false,
                Some(format!("deployment {id} no longer exists")),
            )));
        };
        Ok(match deployment.status {
            DeploymentStatus::Succeeded => Some((true, None)),
            s if s.is_active() => None,
            _ => Some((
                false,
                Some(
                    deployment
                        .status_message
                        .unwrap_or_else(|| "the deployment failed".into()),
                ),
            )),
        })
    }

    /// Starts a failed target's rollback to its last deployment before the upgrade.
    async fn roll_back(&self, upgrade_id: &str, t: &mut Planned) {
        let Some(previous) = t.previous_deployment_id.clone() else {
            t.message = Some(format!(
                "{}; nothing to roll back to: it had no succeeded deployment before the upgrade",
                t.message.as_deref().unwrap_or("failed")
            ));
            return;
        };
        match Fleet::new(self.d.clone()).rollback(&previous).await {
            Ok(id) => {
                t.status = TargetStatus::RollingBack;
                t.rollback_deployment_id = Some(id);
            }
            Err(Error::Conflict(_)) => {
                // A rollback started by an earlier run of this step may be the one running.
                match running_deployment(&self.d, &t.target).await {
                    Ok(Some(id)) if Some(&id) != t.deployment_id.as_ref() => {
                        t.status = TargetStatus::RollingBack;
                        t.rollback_deployment_id = Some(id);
                    }
                    _ => {
                        t.status = TargetStatus::RollbackFailed;
                        t.message = Some(format!(
                            "{}; its rollback could not start: another deployment runs",
                            t.message.as_deref().unwrap_or("failed")
                        ));
                    }
                }
            }
            Err(error) => {
                tracing::warn!(upgrade = upgrade_id, error = %error, "rollback not started");
                t.status = TargetStatus::RollbackFailed;
                t.message = Some(format!(
                    "{}; rollback refused: {error}",
                    t.message.as_deref().unwrap_or("failed")
                ));
            }
        }
    }

    /// Stores the task token the execution waits on; if what it waits for came already (a
    /// caller approved or resumed before the token was stored), signals it at once.
    async fn await_signal(&self, input: &StepInput) -> Result<Json> {
        let token = input
            .task_token
            .clone()
            .ok_or_else(|| Error::validation("taskToken: missing"))?;
        let (mut upgrade, _) = self.read(&input.upgrade_id).await?;
        upgrade.task_token = Some(token.clone());
        self.save(&mut upgrade, BTreeSet::new()).await?;
        let (upgrade, control) = self.read(&input.upgrade_id).await?;
        if signalled(&upgrade, &control) || upgrade.status.ended() {
            self.d
                .workflows
                .signal(&token, json!({}))
                .await
                .map_err(|e| Error::Throttled(format!("signal: {e}")))?;
        }
        Ok(json!({}))
    }

    /// Records the upgrade as failed (its execution failed, or a wait timed out).
    async fn fail(&self, input: &StepInput) -> Result<Json> {
        let reason = input
            .error
            .as_ref()
            .map(|e| {
                let name = e["Error"].as_str().unwrap_or("States.Runtime");
                let cause = e["Cause"].as_str().unwrap_or_default();
                let message = serde_json::from_str::<Json>(cause)
                    .ok()
                    .and_then(|c| c["errorMessage"].as_str().map(str::to_string))
                    .unwrap_or_else(|| cause.to_string());
                if name == "States.Timeout" {
                    "the upgrade waited longer than its state machine allows (7 days) for an approval or a resume".to_string()
                } else {
                    format!("the upgrade's execution failed: {name} {message}")
                }
            })
            .unwrap_or_else(|| "the upgrade's execution failed".into());
        let upgrade = self.fail_with(&input.upgrade_id, reason).await?;
        Ok(json!({ "status": upgrade.status.name() }))
    }

    /// Ends an upgrade as failed for `reason`: nothing more starts (what runs keeps running),
    /// the targets never started are `NOT_STARTED`. An upgrade that has ended stays as it is.
    async fn fail_with(&self, id: &str, reason: String) -> Result<Upgrade> {
        let (mut upgrade, _) = self.read(id).await?;
        if upgrade.status.ended() {
            return Ok(upgrade);
        }
        let before = upgrade.status;
        for wave in &mut upgrade.waves {
            for t in &mut wave.targets {
                if t.status == TargetStatus::Pending {
                    t.status = TargetStatus::NotStarted;
                }
            }
        }
        upgrade.status = UpgradeStatus::Failed;
        upgrade.status_message = Some(reason);
        upgrade.ended_at = Some(Timestamp::now());
        upgrade.task_token = None;
        upgrade.awaiting = None;
        let all: BTreeSet<usize> = (0..upgrade.waves.len()).collect();
        self.save(&mut upgrade, all).await?;
        self.announce(&upgrade, Some(before)).await;
        Ok(upgrade)
    }

    /// Puts the upgrade's status change on the bus.
    async fn announce(&self, upgrade: &Upgrade, previous: Option<UpgradeStatus>) {
        let counts = upgrade.progress();
        let event = crate::ports::FleetEvent {
            detail_type: "paved Fleet Upgrade Status Change",
            resource_arn: self.d.arns.proton(&format!("fleet-upgrade/{}", upgrade.id)),
            detail: json!({
                "upgradeId": upgrade.id,
                "templateType": upgrade.template_type,
                "templateName": upgrade.template_name,
                "version": format!("{}.{}", upgrade.major, upgrade.minor),
                "status": upgrade.status.name(),
                "previousStatus": previous.map(UpgradeStatus::name),
                "statusMessage": upgrade.status_message,
                "wave": upgrade.wave,
                "waves": upgrade.waves.len(),
                "counts": counts,
            }),
        };
        if let Err(error) = self.d.events.publish_fleet(event).await {
            tracing::warn!(error = %error, "upgrade event not published");
        }
    }
}

/// The deployment a target runs now, if one runs.
async fn running_deployment(d: &Deployer, target: &UpgradeTarget) -> Result<Option<String>> {
    let deployed = match target {
        UpgradeTarget::Environment { name } => d
            .store
            .environment(&ResourceName::parse(name).map_err(Error::Validation)?)
            .await?
            .map(|e| e.deployed),
        UpgradeTarget::ServiceInstance { service, name, .. } => d
            .store
            .instance(
                &ResourceName::parse(service).map_err(Error::Validation)?,
                &ResourceName::parse(name).map_err(Error::Validation)?,
            )
            .await?
            .map(|i| i.deployed),
        UpgradeTarget::ServicePipeline { service } => d
            .store
            .service(&ResourceName::parse(service).map_err(Error::Validation)?)
            .await?
            .and_then(|s| s.pipeline),
    };
    Ok(deployed
        .filter(|d| d.deployment_status.is_active())
        .and_then(|d| d.last_attempted_deployment_id))
}

/// Starts one target's deployment to `to` through the API's own update path; answers its
/// deployment id. A target busy with a deployment this upgrade started before (an earlier
/// run of the step) answers that one.
async fn start_one(
    d: Deployer,
    planned: Planned,
    to: VersionNumber,
    token: String,
    since: Timestamp,
) -> Result<String> {
    let d = &d;
    let from = version_of(&planned).unwrap_or(to);
    let deployment_type = if from.major == to.major {
        DeploymentType::MinorVersion
    } else {
        DeploymentType::MajorVersion
    };
    let major = Some(VersionPart(to.major));
    let minor = Some(VersionPart(to.minor));
    let client_token = ClientToken::parse(&token).ok();
    let name = |s: &str| ResourceName::parse(s).map_err(Error::Validation);
    let started = match &planned.target {
        UpgradeTarget::ServiceInstance {
            service, name: n, ..
        } => Services::new(d.clone())
            .update_instance(InstanceUpdate {
                name: name(n)?,
                service_name: name(service)?,
                deployment_type,
                spec: None,
                template_major_version: major,
                template_minor_version: minor,
                client_token,
            })
            .await
            .map(|i| i.deployed.last_attempted_deployment_id),
        UpgradeTarget::ServicePipeline { service } => {
            let services = Services::new(d.clone());
            let current =
                d.store.service(&name(service)?).await?.ok_or_else(|| {
                    Error::not_found(format!("service {service} no longer exists"))
                })?;
            let spec = current
                .pipeline
                .as_ref()
                .map(|p| p.state.spec.clone())
                .unwrap_or_else(|| current.spec.clone());
            services
                .update_pipeline(PipelineUpdate {
                    service_name: name(service)?,
                    deployment_type,
                    spec,
                    template_major_version: major,
                    template_minor_version: minor,
                })
                .await
                .map(|s| s.pipeline.and_then(|p| p.last_attempted_deployment_id))
        }
        UpgradeTarget::Environment { name: n } => Environments::new(d.clone())
            .update(EnvironmentUpdate {
                name: name(n)?,
                deployment_type,
                spec: None,
                template_major_version: major,
                template_minor_version: minor,
                proton_service_role_arn: None,
                component_role_arn: None,
                description: None,
                unsupported: Default::default(),
            })
            .await
            .map(|e| e.deployed.last_attempted_deployment_id),
    };
    match started {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(Error::validation(format!(
            "{} recorded no deployment",
            planned.target.noun()
        ))),
        Err(Error::Conflict(message)) => {
            // Ours, from an earlier run of this step?
            if let Some(id) = running_deployment(d, &planned.target).await?
                && let Some(deployment) = d.store.deployment(&id).await?
                && deployment.target_state.version() == to
                && deployment.created_at.0 >= since.0
            {
                return Ok(id);
            }
            Err(Error::Conflict(message))
        }
        Err(other) => Err(other),
    }
}
