//! Drift: whether each target's stack still runs what paved deployed, as its provisioning
//! engine finds it. On demand for a template's targets (DetectDrift, waiting a while for the
//! engine), and on a schedule for the whole fleet (each run finishes the detections still
//! running and starts new ones on targets not checked for a day). Every finding is recorded
//! (the fleet view shows it) and a drifted target is put on the bus.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::Result;
use super::deploy::{Deployer, Loaded};
use super::fleet::{Fleet, fleet_target};
use crate::domain::drift::{DriftRecord, DriftStatus};
use crate::domain::names::{ResourceName, Timestamp};
use crate::domain::template::TemplateKind;
use crate::ports::Placement;

/// How long an on-demand detection waits for the engine (the API answers within 29 s).
const DETECT_WAIT: std::time::Duration = std::time::Duration::from_secs(20);
/// Targets detected at once.
const DETECT_CONCURRENCY: usize = 8;
/// Targets one on-demand detection takes; the schedule covers any number.
pub const DETECT_MAX_TARGETS: usize = 50;
/// How old a finding may be before the schedule checks the target again.
const RECHECK_SECONDS: f64 = 24.0 * 60.0 * 60.0;
/// Detections one scheduled run starts.
const SWEEP_STARTS: usize = 100;

pub struct Drift {
    d: Deployer,
}

impl Drift {
    pub fn new(deployer: Deployer) -> Self {
        Self { d: deployer }
    }

    /// The findings recorded for a template's targets, by stack.
    pub async fn records(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
    ) -> Result<BTreeMap<String, DriftRecord>> {
        Ok(self
            .d
            .fleet
            .drifts(kind.type_name(), name.as_str())
            .await?
            .into_iter()
            .map(|r| (r.stack_name.clone(), r))
            .collect())
    }

    /// Detects drift on every target of a template now, waiting up to 20 s for the engine; a
    /// detection still running then is recorded as `DETECTING` and finished by the schedule.
    #[tracing::instrument(skip(self))]
    pub async fn detect(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
    ) -> Result<Vec<DriftRecord>> {
        let d = &self.d;
        d.catalog.template(kind, name).await?.ok_or_else(|| {
            crate::app::Error::not_found(format!("{} {name} does not exist", kind.noun()))
        })?;
        let targets = Fleet::new(d.clone()).targets_of(kind, name).await?;
        if targets.len() > DETECT_MAX_TARGETS {
            return Err(crate::app::Error::validation(format!(
                "{} {name} has {} targets; DetectDrift checks at most {DETECT_MAX_TARGETS} at once (the schedule checks every target daily)",
                kind.noun(),
                targets.len()
            )));
        }
        let previous = self.records(kind, name).await?;
        let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(DETECT_CONCURRENCY));
        let mut running = tokio::task::JoinSet::new();
        for (index, target) in targets.into_iter().enumerate() {
            let (d, semaphore, template) = (d.clone(), semaphore.clone(), name.to_string());
            running.spawn(async move {
                let _turn = semaphore.acquire_owned().await;
                let deadline = tokio::time::Instant::now() + DETECT_WAIT;
                (
                    index,
                    detect_one(&d, kind, &template, &target, Some(deadline)).await,
                )
            });
        }
        let mut found = Vec::new();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok((index, Some(record))) => found.push((index, record)),
                Ok((_, None)) => {}
                Err(error) => tracing::error!(error = %error, "a drift detection task failed"),
            }
        }
        found.sort_by_key(|(index, _)| *index);
        let mut records = Vec::new();
        for (_, record) in found {
            self.record(&record, previous.get(&record.stack_name))
                .await?;
            records.push(record);
        }
        Ok(records)
    }

    /// Stores a finding, and puts a target newly found drifted on the bus.
    async fn record(&self, record: &DriftRecord, previous: Option<&DriftRecord>) -> Result<()> {
        self.d.fleet.put_drift(record).await?;
        let newly = record.status == DriftStatus::Drifted
            && previous.is_none_or(|p| {
                p.status != DriftStatus::Drifted || p.resources != record.resources
            });
        if newly {
            let event = crate::ports::FleetEvent {
                detail_type: "paved Drift Detected",
                resource_arn: self.d.arns.proton(&format!(
                    "{}-template/{}",
                    record.template_type.to_lowercase(),
                    record.template_name
                )),
                detail: json!({
                    "templateType": record.template_type,
                    "templateName": record.template_name,
                    "stackName": record.stack_name,
                    "target": record.target,
                    "resources": record.resources,
                    "checkedAt": record.checked_at,
                }),
            };
            if let Err(error) = self.d.events.publish_fleet(event).await {
                tracing::warn!(error = %error, "drift event not published");
            }
        }
        Ok(())
    }

    /// The scheduled run (`{"task": "detectDrift"}`): finishes detections still running, and
    /// starts one on each target not checked for a day (at most 100 a run; the next run goes
    /// on). Answers what it did.
    pub async fn sweep(&self) -> Result<Json> {
        let d = &self.d;
        let now = Timestamp::now();
        let (mut finished, mut started, mut deferred) = (0, 0, 0);
        for kind in [TemplateKind::Environment, TemplateKind::Service] {
            // Every target of the kind in one read; a template nothing runs on has no drift.
            let by_template = Fleet::new(d.clone())
                .targets_by_template(kind, None)
                .await?;
            for (template, targets) in by_template {
                let previous = self.records(kind, &template).await?;
                for target in targets {
                    let stack = target.deployed().stack_name.clone();
                    let last = previous.get(&stack);
                    let running = last.filter(|r| r.status == DriftStatus::Detecting);
                    let due = last.is_none_or(|r| now.0 - r.checked_at.0 > RECHECK_SECONDS);
                    if running.is_none() && !due {
                        continue;
                    }
                    if running.is_none() && started >= SWEEP_STARTS {
                        deferred += 1;
                        continue;
                    }
                    let record = match running {
                        Some(r) => finish(d, &target, r).await,
                        None => {
                            started += 1;
                            detect_one(d, kind, template.as_str(), &target, None).await
                        }
                    };
                    let Some(record) = record else { continue };
                    if running.is_some() && record.status != DriftStatus::Detecting {
                        finished += 1;
                    }
                    self.record(&record, last).await?;
                }
            }
        }
        tracing::info!(finished, started, deferred, "drift swept");
        Ok(json!({ "finished": finished, "started": started, "deferred": deferred }))
    }
}

fn placement(target: &Loaded) -> Placement<'_> {
    let deployed = target.deployed();
    Placement {
        name: &deployed.stack_name,
        role_arn: &deployed.role_arn,
    }
}

/// Starts a detection on one target and, with a deadline, waits for it until then. `None`
/// for what is not a fleet target (a component).
async fn detect_one(
    d: &Deployer,
    kind: TemplateKind,
    template: &str,
    target: &Loaded,
    deadline: Option<tokio::time::Instant>,
) -> Option<DriftRecord> {
    let (fleet_target, _) = fleet_target(target)?;
    let deployed = target.deployed();
    let mut record = DriftRecord {
        template_type: kind.type_name().into(),
        template_name: template.into(),
        stack_name: deployed.stack_name.clone(),
        target: fleet_target,
        status: DriftStatus::Unknown,
        resources: vec![],
        message: None,
        detection_id: None,
        checked_at: Timestamp::now(),
    };
    if deployed.deployment_status.is_active() {
        record.message = Some(format!(
            "{} has a deployment in progress; its drift is checked once it ends",
            target.noun()
        ));
        return Some(record);
    }
    let Some(engine) = d.provisioners.get(deployed.engine) else {
        record.message = Some(format!(
            "no provisioning engine {} is configured",
            deployed.engine.wire_name()
        ));
        return Some(record);
    };
    let detection = match engine.detect_drift(placement(target)).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            record.message = Some("its provisioning engine does not detect drift".into());
            return Some(record);
        }
        Err(error) => {
            record.message = Some(format!("drift detection did not start: {error}"));
            return Some(record);
        }
    };
    record.status = DriftStatus::Detecting;
    record.detection_id = Some(detection);
    let Some(deadline) = deadline else {
        return Some(record);
    };
    loop {
        let done = finish(d, target, &record).await?;
        if done.status != DriftStatus::Detecting || tokio::time::Instant::now() >= deadline {
            return Some(done);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Checks a detection that was running: what it found, or the record unchanged while it runs.
async fn finish(d: &Deployer, target: &Loaded, running: &DriftRecord) -> Option<DriftRecord> {
    let mut record = running.clone();
    let detection = running.detection_id.clone()?;
    let engine = d.provisioners.get(target.deployed().engine)?;
    match engine.drift(placement(target), &detection).await {
        Ok(None) => return Some(record),
        Ok(Some(found)) => {
            record.status = found.status;
            record.resources = found.resources;
            record.message = found.message;
        }
        Err(error) => {
            record.status = DriftStatus::Unknown;
            record.message = Some(format!("drift detection failed: {error}"));
        }
    }
    record.detection_id = None;
    record.checked_at = Timestamp::now();
    Some(record)
}
