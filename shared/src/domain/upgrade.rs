//! A staged fleet upgrade: the targets of a template moved to one version in waves, a few at a
//! time, halted when too many fail, optionally approved between waves. This module holds the
//! rules only: how targets fall into waves, and given what the deployments did, what to start
//! next and whether the upgrade waits, asks for approval, pauses or ends. The app runs the
//! deployments and stores the record; one state machine execution per upgrade drives it.

use serde::{Deserialize, Serialize};

use super::access::Initiator;
use super::names::Timestamp;

/// Targets one upgrade takes.
pub const MAX_TARGETS: usize = 5_000;
/// Targets of one wave; a wave with more is split (each wave is stored as one item).
pub const MAX_WAVE_TARGETS: usize = 500;
/// Waves one upgrade has.
pub const MAX_WAVES: usize = 50;
/// Deployments one upgrade runs at once.
pub const MAX_CONCURRENCY: u32 = 50;
/// How many checks a target may be found busy (another deployment running) before it is
/// counted as failed.
pub const BUSY_ATTEMPTS: u32 = 20;

/// What an upgrade deploys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpgradeTarget {
    Environment {
        name: String,
    },
    ServiceInstance {
        #[serde(rename = "serviceName")]
        service: String,
        name: String,
        #[serde(rename = "environmentName")]
        environment: String,
    },
    ServicePipeline {
        #[serde(rename = "serviceName")]
        service: String,
    },
}

impl UpgradeTarget {
    /// The environment a target runs in (a pipeline runs in none).
    pub fn environment(&self) -> Option<&str> {
        match self {
            Self::Environment { name } => Some(name),
            Self::ServiceInstance { environment, .. } => Some(environment),
            Self::ServicePipeline { .. } => None,
        }
    }

    /// How messages name it: `service instance web/dev`.
    pub fn noun(&self) -> String {
        match self {
            Self::Environment { name } => format!("environment {name}"),
            Self::ServiceInstance { service, name, .. } => {
                format!("service instance {service}/{name}")
            }
            Self::ServicePipeline { service } => format!("the pipeline of service {service}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetStatus {
    /// Not started yet.
    Pending,
    /// Its deployment runs.
    Deploying,
    Succeeded,
    Failed,
    /// Failed, and its rollback deployment runs.
    RollingBack,
    /// Failed and rolled back to its deployment before the upgrade.
    RolledBack,
    RollbackFailed,
    /// Never started: the upgrade halted or was cancelled first.
    NotStarted,
}

impl TargetStatus {
    pub fn in_flight(self) -> bool {
        matches!(self, Self::Deploying | Self::RollingBack)
    }

    /// Whether it counts against the failure threshold.
    pub fn failed(self) -> bool {
        matches!(
            self,
            Self::Failed | Self::RollingBack | Self::RolledBack | Self::RollbackFailed
        )
    }
}

/// One target of an upgrade and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    #[serde(flatten)]
    pub target: UpgradeTarget,
    /// The version it ran when the upgrade was planned.
    pub from_version: String,
    pub status: TargetStatus,
    /// Its last succeeded deployment when the upgrade was planned: what a rollback returns to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Checks that found it busy.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub busy: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Planned {
    pub fn new(target: UpgradeTarget, from_version: String, previous: Option<String>) -> Self {
        Self {
            target,
            from_version,
            status: TargetStatus::Pending,
            previous_deployment_id: previous,
            deployment_id: None,
            rollback_deployment_id: None,
            message: None,
            busy: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wave {
    pub name: String,
    pub targets: Vec<Planned>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpgradeStatus {
    Running,
    /// A wave ended; the next one starts once an allowed caller approves it.
    AwaitingApproval,
    /// Paused by a caller: nothing new starts until it is resumed.
    Paused,
    Succeeded,
    /// Halted: more targets failed than the threshold allows, or the upgrade itself failed.
    Failed,
    Cancelled,
}

impl UpgradeStatus {
    pub fn ended(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::AwaitingApproval => "AWAITING_APPROVAL",
            Self::Paused => "PAUSED",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

/// How an upgrade proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Deployments at once.
    pub concurrency: u32,
    /// Failed targets tolerated; one more halts the upgrade.
    pub max_failures: u32,
    /// Whether each wave after the first waits for an approval.
    pub approval: bool,
    /// Whether a failed target is rolled back to its deployment before the upgrade.
    pub rollback_failed: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            concurrency: 5,
            max_failures: 0,
            approval: false,
            rollback_failed: false,
        }
    }
}

/// What callers ask of a running upgrade. Kept apart from the upgrade's own record, which
/// only its execution writes, so a caller never races the execution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Control {
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub cancel: Option<Signal>,
    /// Approvals, by the wave they let start.
    #[serde(default)]
    pub approvals: Vec<Approval>,
    #[serde(default)]
    pub rev: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signal {
    pub by: Option<Initiator>,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// The wave (from 0) it lets start.
    pub wave: usize,
    pub by: Option<Initiator>,
    pub at: Timestamp,
}

impl Control {
    pub fn approved(&self, wave: usize) -> bool {
        self.approvals.iter().any(|a| a.wave == wave)
    }
}

/// Why the execution waits for a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Awaiting {
    Approval,
    Resume,
}

/// A staged upgrade: what it moves, to which version, in which waves, and how far it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Upgrade {
    pub id: String,
    /// `ENVIRONMENT` or `SERVICE`.
    pub template_type: String,
    pub template_name: String,
    pub major: u64,
    pub minor: u64,
    pub settings: Settings,
    pub waves: Vec<Wave>,
    pub status: UpgradeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// The wave that runs (or waits for approval to run).
    pub wave: usize,
    /// The task token the execution waits on while it awaits approval or a resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting: Option<Awaiting>,
    pub started_by: Option<Initiator>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Checks in a row that changed nothing (the wait before the next one grows with it).
    #[serde(default)]
    pub idle: u32,
    /// The targets by status, as of the last save (listings show it without the targets).
    #[serde(default)]
    pub counts: Progress,
    pub rev: u64,
}

/// What the execution does after a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Check again after a while.
    Wait,
    /// Wait for a caller: an approval of the next wave, or a resume.
    Await(Awaiting),
    Ended(UpgradeStatus),
}

/// A check's decision: the targets to start now (wave, index) and what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub start: Vec<(usize, usize)>,
    pub next: Next,
}

/// Counts of targets by status, over the upgrade or a wave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub total: usize,
    pub pending: usize,
    pub deploying: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub rolled_back: usize,
    pub not_started: usize,
}

impl Progress {
    pub fn of<'a>(targets: impl IntoIterator<Item = &'a Planned>) -> Self {
        let mut p = Self::default();
        for t in targets {
            p.total += 1;
            match t.status {
                TargetStatus::Pending => p.pending += 1,
                TargetStatus::Deploying | TargetStatus::RollingBack => p.deploying += 1,
                TargetStatus::Succeeded => p.succeeded += 1,
                TargetStatus::Failed | TargetStatus::RollbackFailed => p.failed += 1,
                TargetStatus::RolledBack => p.rolled_back += 1,
                TargetStatus::NotStarted => p.not_started += 1,
            }
        }
        p
    }

    /// Targets that will not move any more.
    pub fn done(&self) -> usize {
        self.succeeded + self.failed + self.rolled_back + self.not_started
    }
}

/// How targets are grouped into waves: the environments of each wave in order (targets of
/// environments no wave names, and pipelines, form a last wave), and the most targets a wave
/// holds (a larger one is split).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WavePlan {
    pub environments: Vec<Vec<String>>,
    pub size: Option<usize>,
}

impl WavePlan {
    /// The waves of `targets` (kept in their order within a wave); empty waves are dropped.
    pub fn waves(&self, targets: Vec<Planned>) -> Result<Vec<Wave>, String> {
        if targets.len() > MAX_TARGETS {
            return Err(format!(
                "{} targets; an upgrade takes at most {MAX_TARGETS} (select by environment, service or tag)",
                targets.len()
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, wave) in self.environments.iter().enumerate() {
            if wave.is_empty() {
                return Err(format!("waves[{i}]: names no environment"));
            }
            for env in wave {
                if !seen.insert(env.as_str()) {
                    return Err(format!("waves: environment {env} is named twice"));
                }
            }
        }
        let mut groups: Vec<(String, Vec<Planned>)> = self
            .environments
            .iter()
            .map(|envs| (envs.join("+"), Vec::new()))
            .collect();
        let mut rest = Vec::new();
        for t in targets {
            let place = t.target.environment().and_then(|env| {
                self.environments
                    .iter()
                    .position(|w| w.iter().any(|e| e == env))
            });
            match place {
                Some(i) => groups[i].1.push(t),
                None => rest.push(t),
            }
        }
        if !rest.is_empty() {
            let name = if self.environments.is_empty() {
                "all".to_string()
            } else {
                "the rest".to_string()
            };
            groups.push((name, rest));
        }
        let size = self
            .size
            .unwrap_or(MAX_WAVE_TARGETS)
            .clamp(1, MAX_WAVE_TARGETS);
        let mut waves = Vec::new();
        for (name, targets) in groups.into_iter().filter(|(_, t)| !t.is_empty()) {
            let parts = targets.len().div_ceil(size);
            let mut targets = targets.into_iter().peekable();
            for part in 1..=parts {
                let chunk: Vec<Planned> = targets.by_ref().take(size).collect();
                let name = if parts == 1 {
                    name.clone()
                } else {
                    format!("{name} ({part}/{parts})")
                };
                waves.push(Wave {
                    name,
                    targets: chunk,
                });
            }
        }
        if waves.len() > MAX_WAVES {
            return Err(format!(
                "{} waves; an upgrade has at most {MAX_WAVES} (a larger waveSize makes fewer)",
                waves.len()
            ));
        }
        Ok(waves)
    }
}

impl Upgrade {
    pub fn targets(&self) -> impl Iterator<Item = &Planned> {
        self.waves.iter().flat_map(|w| w.targets.iter())
    }

    pub fn progress(&self) -> Progress {
        Progress::of(self.targets())
    }

    pub fn failures(&self) -> usize {
        self.targets().filter(|t| t.status.failed()).count()
    }

    fn halting(&self) -> bool {
        self.failures() > self.settings.max_failures as usize
    }

    /// Decides what follows, given what the targets' deployments did (already recorded on
    /// them) and what callers asked (`control`). Marks the upgrade's status and, when it
    /// ends, the targets it never started. The targets to start are returned, not marked: the
    /// caller marks each once its deployment is recorded.
    pub fn step(&mut self, control: &Control, now: Timestamp) -> Step {
        let ended = |u: &mut Self, status: UpgradeStatus, message: Option<String>| {
            for wave in &mut u.waves {
                for t in &mut wave.targets {
                    if t.status == TargetStatus::Pending {
                        t.status = TargetStatus::NotStarted;
                    }
                }
            }
            u.status = status;
            if message.is_some() {
                u.status_message = message;
            }
            u.ended_at = Some(now);
            u.task_token = None;
            u.awaiting = None;
            Step {
                start: vec![],
                next: Next::Ended(status),
            }
        };
        if self.status.ended() {
            return Step {
                start: vec![],
                next: Next::Ended(self.status),
            };
        }
        loop {
            let in_flight = self.targets().filter(|t| t.status.in_flight()).count();
            let stopping = control.cancel.is_some() || self.halting();
            if self.status == UpgradeStatus::AwaitingApproval && !stopping {
                if !control.approved(self.wave) {
                    return Step {
                        start: vec![],
                        next: Next::Await(Awaiting::Approval),
                    };
                }
                self.status = UpgradeStatus::Running;
            }
            let mut start = Vec::new();
            if !stopping && !control.paused {
                let room = (self.settings.concurrency as usize).saturating_sub(in_flight);
                start = self.waves[self.wave]
                    .targets
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.status == TargetStatus::Pending)
                    .take(room)
                    .map(|(i, _)| (self.wave, i))
                    .collect();
            }
            if self.status == UpgradeStatus::Paused && !control.paused {
                self.status = UpgradeStatus::Running;
            }
            if in_flight > 0 || !start.is_empty() {
                if control.paused && !stopping {
                    self.status = UpgradeStatus::Paused;
                }
                return Step {
                    start,
                    next: Next::Wait,
                };
            }
            if control.cancel.is_some() {
                return ended(self, UpgradeStatus::Cancelled, Some("cancelled".into()));
            }
            if self.halting() {
                let message = format!(
                    "halted: {} targets failed, more than the {} the upgrade allows",
                    self.failures(),
                    self.settings.max_failures
                );
                return ended(self, UpgradeStatus::Failed, Some(message));
            }
            if control.paused {
                self.status = UpgradeStatus::Paused;
                return Step {
                    start: vec![],
                    next: Next::Await(Awaiting::Resume),
                };
            }
            if self.waves[self.wave]
                .targets
                .iter()
                .any(|t| t.status == TargetStatus::Pending)
            {
                // Nothing could start (no room): wait.
                return Step {
                    start,
                    next: Next::Wait,
                };
            }
            if self.wave + 1 >= self.waves.len() {
                let failures = self.failures();
                let message = (failures > 0).then(|| {
                    format!(
                        "{failures} targets failed, within the {} the upgrade allows",
                        self.settings.max_failures
                    )
                });
                return ended(self, UpgradeStatus::Succeeded, message);
            }
            self.wave += 1;
            if self.settings.approval {
                self.status = UpgradeStatus::AwaitingApproval;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(service: &str, env: &str) -> Planned {
        Planned::new(
            UpgradeTarget::ServiceInstance {
                service: service.into(),
                name: env.into(),
                environment: env.into(),
            },
            "1.0".into(),
            Some(format!("d-{service}-{env}")),
        )
    }

    fn upgrade(waves: Vec<Wave>, settings: Settings) -> Upgrade {
        Upgrade {
            id: "u".into(),
            template_type: "SERVICE".into(),
            template_name: "web".into(),
            major: 1,
            minor: 1,
            settings,
            waves,
            status: UpgradeStatus::Running,
            status_message: None,
            wave: 0,
            task_token: None,
            awaiting: None,
            started_by: None,
            created_at: Timestamp(0.0),
            updated_at: Timestamp(0.0),
            ended_at: None,
            idle: 0,
            counts: Progress::default(),
            rev: 0,
        }
    }

    fn fleet() -> Vec<Planned> {
        ["a", "b", "c"]
            .iter()
            .flat_map(|s| [instance(s, "dev"), instance(s, "prod"), instance(s, "qa")])
            .collect()
    }

    /// Marks what a step starts as deploying, as the app does once each deployment is recorded.
    fn run(u: &mut Upgrade, control: &Control) -> Step {
        let step = u.step(control, Timestamp(1.0));
        for &(w, i) in &step.start {
            u.waves[w].targets[i].status = TargetStatus::Deploying;
        }
        step
    }

    fn finish(u: &mut Upgrade, status: TargetStatus) {
        for w in &mut u.waves {
            for t in &mut w.targets {
                if t.status == TargetStatus::Deploying {
                    t.status = status;
                }
            }
        }
    }

    #[test]
    fn waves_follow_the_environment_order_and_the_rest_comes_last() {
        let plan = WavePlan {
            environments: vec![vec!["dev".into()], vec!["prod".into()]],
            size: None,
        };
        let waves = plan.waves(fleet()).unwrap();
        let names: Vec<_> = waves.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["dev", "prod", "the rest"]);
        assert!(
            waves[0]
                .targets
                .iter()
                .all(|t| t.target.environment() == Some("dev"))
        );
        assert_eq!(waves[2].targets.len(), 3);
    }

    #[test]
    fn a_wave_size_splits_waves() {
        let plan = WavePlan {
            environments: vec![],
            size: Some(4),
        };
        let waves = plan.waves(fleet()).unwrap();
        let sizes: Vec<_> = waves.iter().map(|w| w.targets.len()).collect();
        assert_eq!(sizes, [4, 4, 1]);
        assert_eq!(waves[0].name, "all (1/3)");
    }

    #[test]
    fn an_environment_in_two_waves_is_refused() {
        let plan = WavePlan {
            environments: vec![vec!["dev".into()], vec!["prod".into(), "dev".into()]],
            size: None,
        };
        assert!(plan.waves(fleet()).unwrap_err().contains("dev"));
        let twice = WavePlan {
            environments: vec![vec!["dev".into(), "dev".into()]],
            size: None,
        };
        assert!(twice.waves(fleet()).is_err());
    }

    #[test]
    fn targets_start_within_the_concurrency_and_waves_run_in_order() {
        let waves = WavePlan {
            environments: vec![vec!["dev".into()], vec!["prod".into(), "qa".into()]],
            size: None,
        }
        .waves(fleet())
        .unwrap();
        let settings = Settings {
            concurrency: 2,
            ..Settings::default()
        };
        let mut u = upgrade(waves, settings);
        let control = Control::default();
        let step = run(&mut u, &control);
        assert_eq!(step.start, [(0, 0), (0, 1)]);
        assert_eq!(step.next, Next::Wait);
        // Nothing ended: nothing more starts.
        assert!(run(&mut u, &control).start.is_empty());
        finish(&mut u, TargetStatus::Succeeded);
        assert_eq!(run(&mut u, &control).start, [(0, 2)]);
        finish(&mut u, TargetStatus::Succeeded);
        // The first wave is done: the second starts at once.
        let step = run(&mut u, &control);
        assert_eq!(step.start, [(1, 0), (1, 1)]);
        assert_eq!(u.wave, 1);
        for _ in 0..3 {
            finish(&mut u, TargetStatus::Succeeded);
            run(&mut u, &control);
        }
        assert_eq!(u.status, UpgradeStatus::Succeeded);
        assert_eq!(u.progress().succeeded, 9);
    }

    #[test]
    fn a_wave_after_the_first_waits_for_its_approval() {
        let waves = WavePlan {
            environments: vec![vec!["dev".into()]],
            size: None,
        }
        .waves(fleet())
        .unwrap();
        let settings = Settings {
            concurrency: 10,
            approval: true,
            ..Settings::default()
        };
        let mut u = upgrade(waves, settings);
        let mut control = Control::default();
        assert_eq!(run(&mut u, &control).start.len(), 3);
        finish(&mut u, TargetStatus::Succeeded);
        let step = run(&mut u, &control);
        assert_eq!(step.next, Next::Await(Awaiting::Approval));
        assert_eq!(u.status, UpgradeStatus::AwaitingApproval);
        assert!(step.start.is_empty());
        // An approval of another wave does not count.
        control.approvals.push(Approval {
            wave: 5,
            by: None,
            at: Timestamp(2.0),
        });
        assert_eq!(run(&mut u, &control).next, Next::Await(Awaiting::Approval));
        control.approvals.push(Approval {
            wave: 1,
            by: None,
            at: Timestamp(2.0),
        });
        let step = run(&mut u, &control);
        assert_eq!(step.start.len(), 6);
        assert_eq!(u.status, UpgradeStatus::Running);
    }

    #[test]
    fn a_failure_beyond_the_threshold_halts_once_what_runs_has_ended() {
        let settings = Settings {
            concurrency: 3,
            max_failures: 1,
            ..Settings::default()
        };
        let waves = WavePlan::default().waves(fleet()).unwrap();
        let mut u = upgrade(waves, settings);
        let control = Control::default();
        run(&mut u, &control);
        u.waves[0].targets[0].status = TargetStatus::Failed;
        // One failure is allowed: the next starts in its place.
        assert_eq!(run(&mut u, &control).start, [(0, 3)]);
        u.waves[0].targets[1].status = TargetStatus::Failed;
        // Two are too many: nothing starts, and the upgrade halts once the rest have ended.
        let step = run(&mut u, &control);
        assert!(step.start.is_empty());
        assert_eq!(step.next, Next::Wait);
        finish(&mut u, TargetStatus::Succeeded);
        let step = run(&mut u, &control);
        assert_eq!(step.next, Next::Ended(UpgradeStatus::Failed));
        assert!(
            u.status_message
                .as_deref()
                .unwrap()
                .contains("2 targets failed")
        );
        assert_eq!(u.progress().not_started, 5);
        assert_eq!(u.progress().failed, 2);
    }

    #[test]
    fn a_pause_lets_what_runs_end_then_waits_for_a_resume() {
        let settings = Settings {
            concurrency: 2,
            ..Settings::default()
        };
        let mut u = upgrade(WavePlan::default().waves(fleet()).unwrap(), settings);
        let mut control = Control::default();
        run(&mut u, &control);
        control.paused = true;
        let step = run(&mut u, &control);
        assert!(step.start.is_empty());
        assert_eq!(step.next, Next::Wait);
        assert_eq!(u.status, UpgradeStatus::Paused);
        finish(&mut u, TargetStatus::Succeeded);
        assert_eq!(run(&mut u, &control).next, Next::Await(Awaiting::Resume));
        control.paused = false;
        let step = run(&mut u, &control);
        assert_eq!(step.start.len(), 2);
        assert_eq!(u.status, UpgradeStatus::Running);
    }

    #[test]
    fn a_cancel_starts_nothing_more_and_ends_once_what_runs_has_ended() {
        let mut u = upgrade(
            WavePlan::default().waves(fleet()).unwrap(),
            Settings::default(),
        );
        let mut control = Control::default();
        run(&mut u, &control);
        control.cancel = Some(Signal {
            by: None,
            at: Timestamp(3.0),
        });
        assert_eq!(run(&mut u, &control).next, Next::Wait);
        finish(&mut u, TargetStatus::Succeeded);
        assert_eq!(
            run(&mut u, &control).next,
            Next::Ended(UpgradeStatus::Cancelled)
        );
        assert_eq!(u.progress().not_started, 4);
        // Ended is ended: another check changes nothing.
        let before = u.clone();
        assert_eq!(
            run(&mut u, &control).next,
            Next::Ended(UpgradeStatus::Cancelled)
        );
        assert_eq!(u, before);
    }

    #[test]
    fn a_record_reads_back_as_it_was_written() {
        let mut u = upgrade(
            WavePlan::default().waves(fleet()).unwrap(),
            Settings::default(),
        );
        u.waves[0].targets[0].deployment_id = Some("d1".into());
        let json = serde_json::to_value(&u).unwrap();
        assert_eq!(json["waves"][0]["targets"][0]["kind"], "SERVICE_INSTANCE");
        assert_eq!(json["waves"][0]["targets"][0]["serviceName"], "a");
        let back: Upgrade = serde_json::from_value(json).unwrap();
        assert_eq!(back, u);
    }
}
