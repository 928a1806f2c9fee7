//! Staged fleet upgrades through `statemachines/upgrade.asl.json`: waves in order, approvals
//! between them, the failure threshold, rollback of what failed, pause, resume and cancel.

use std::sync::Mutex;

use super::*;
use crate::app::upgrades::{Command, UpgradeRequest, Upgrades};
use crate::domain::upgrade::{TargetStatus, UpgradeStatus};
use crate::ports::{DeploymentStore, FleetStore};

fn upgrade_request(waves: &[&[&str]]) -> UpgradeRequest {
    UpgradeRequest {
        template_name: name("vpc"),
        template_type: "ENVIRONMENT".into(),
        template_major_version: VersionPart(1),
        template_minor_version: None,
        environments: vec![],
        services: vec![],
        tags: Default::default(),
        include_pipelines: None,
        waves: waves
            .iter()
            .map(|w| w.iter().map(|e| name(e)).collect())
            .collect(),
        wave_size: None,
        concurrency: Some(1),
        max_failures: None,
        approval: false,
        rollback_failed: false,
        client_token: None,
    }
}

/// Three environments on 1.0, deployed, and 1.1 published (it changes their stacks).
async fn fleet_on_1_0() -> World {
    let w = World::new().await;
    for env in ["dev", "prod", "qa"] {
        w.create(env, SPEC).await.unwrap();
        w.run_deploy(&w.last_started()).await;
    }
    super::fleet::publish_wider_minor(&w).await;
    w
}

async fn version_of(w: &World, env: &str) -> (String, DeploymentStatus) {
    let e = w.store.environment(&name(env)).await.unwrap().unwrap();
    (
        e.deployed.state.version().to_string(),
        e.deployed.deployment_status,
    )
}

/// Runs every deploy execution started since `seen`, as Step Functions would.
async fn run_started(w: &World, seen: &Mutex<usize>) {
    loop {
        let next = {
            let mut seen = seen.lock().unwrap();
            let started = w.started_since(*seen);
            let Some((workflow, id)) = started.first().cloned() else {
                return;
            };
            *seen += 1;
            (workflow, id)
        };
        if next.0 == Workflow::Deploy {
            w.run_deploy(&next.1).await;
        }
    }
}

#[tokio::test]
async fn waves_run_in_order_wait_for_approval_and_a_failed_wave_halts_and_rolls_back() {
    let w = fleet_on_1_0().await;
    let upgrades = Upgrades::new(w.deployer.clone());
    let mut request = upgrade_request(&[&["dev"], &["prod", "qa"]]);
    request.approval = true;
    request.rollback_failed = true;
    let upgrade = upgrades.start(request).await.unwrap();
    assert_eq!(upgrade.waves.len(), 2);
    assert_eq!(
        w.started_since(w.started_count() - 1)[0],
        (Workflow::Upgrade, upgrade.id.clone())
    );
    let seen = Mutex::new(w.started_count());
    let approvals = Mutex::new(0);
    let id = upgrade.id.clone();
    let ended = execute(
        &machine("upgrade"),
        json!({ "upgradeId": id, "pollSeconds": 0, "checkSeconds": 0 }),
        |payload| {
            let (w, upgrades, seen, approvals, id) = (&w, &upgrades, &seen, &approvals, &id);
            async move {
                let task = payload["task"].as_str().unwrap_or_default().to_string();
                if task == "awaitUpgradeSignal" {
                    let answer = w.engine.run(payload).await?;
                    // Only the second wave waits, and nothing of it started before the approval.
                    assert_eq!(version_of(w, "prod").await.0, "1.0");
                    assert_eq!(version_of(w, "dev").await.0, "1.1");
                    let (stored, _) = upgrades.get(id).await.unwrap();
                    assert_eq!(stored.status, UpgradeStatus::AwaitingApproval);
                    let token = stored.task_token.clone().expect("the token is stored");
                    // The second wave's first target will fail.
                    *w.stacks.execute_result.lock().unwrap() = Some(StackState::Failed {
                        status: "UPDATE_ROLLBACK_COMPLETE".into(),
                        reason: "the load balancer refused".into(),
                    });
                    upgrades.command(id, Command::Approve).await.unwrap();
                    *approvals.lock().unwrap() += 1;
                    assert!(
                        w.workflows
                            .signals
                            .lock()
                            .unwrap()
                            .iter()
                            .any(|(t, _)| *t == token),
                        "the approval resumes the execution"
                    );
                    return Ok(answer);
                }
                let answer = w.engine.run(payload).await?;
                let before = *seen.lock().unwrap();
                run_started(w, seen).await;
                if *seen.lock().unwrap() > before {
                    // The failing deployment ran: what follows (the rollback) succeeds.
                    *w.stacks.execute_result.lock().unwrap() = None;
                }
                Ok(answer)
            }
        },
    )
    .await;
    assert_eq!(ended, Err("UpgradeHalted".to_string()));
    assert_eq!(*approvals.lock().unwrap(), 1);
    let (upgrade, control) = upgrades.get(&id).await.unwrap();
    assert_eq!(upgrade.status, UpgradeStatus::Failed);
    assert!(
        upgrade
            .status_message
            .as_deref()
            .unwrap()
            .contains("1 targets failed"),
        "{:?}",
        upgrade.status_message
    );
    assert_eq!(control.approvals.len(), 1);
    let statuses: Vec<(String, TargetStatus)> = upgrade
        .targets()
        .map(|t| (t.target.noun(), t.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("environment dev".into(), TargetStatus::Succeeded),
            ("environment prod".into(), TargetStatus::RolledBack),
            ("environment qa".into(), TargetStatus::NotStarted),
        ]
    );
    let prod = &upgrade.waves[1].targets[0];
    assert!(
        prod.message
            .as_deref()
            .unwrap()
            .contains("the load balancer refused"),
        "{prod:?}"
    );
    assert_eq!(version_of(&w, "dev").await.0, "1.1");
    assert_eq!(
        version_of(&w, "prod").await,
        ("1.0".into(), DeploymentStatus::Succeeded),
        "rolled back to its deployment before the upgrade"
    );
    assert_eq!(version_of(&w, "qa").await.0, "1.0");
    let rollback = w
        .store
        .deployment(prod.rollback_deployment_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rollback.target_state.version().to_string(), "1.0");
    // The bus heard each change of the upgrade's status.
    let heard: Vec<String> = w
        .events
        .fleet
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.detail["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        heard,
        ["RUNNING", "AWAITING_APPROVAL", "RUNNING", "FAILED"],
        "{heard:?}"
    );
    // Ended is ended.
    assert!(matches!(
        upgrades.command(&id, Command::Resume).await,
        Err(Error::Conflict(_))
    ));
}

/// One check of the upgrade, as the state machine's first state runs it.
async fn advance(w: &World, id: &str) -> serde_json::Value {
    w.engine
        .run(json!({ "task": "advanceUpgrade", "upgradeId": id, "pollSeconds": 5 }))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_pause_lets_the_running_deployment_end_a_resume_goes_on_and_a_cancel_stops() {
    let w = fleet_on_1_0().await;
    let upgrades = Upgrades::new(w.deployer.clone());
    let mut request = upgrade_request(&[]);
    request.client_token = Some(crate::domain::names::ClientToken::parse("once").unwrap());
    let upgrade = upgrades.start(request.clone()).await.unwrap();
    let again = upgrades.start(request).await.unwrap();
    assert_eq!(again.id, upgrade.id, "one clientToken, one upgrade");
    let id = upgrade.id;
    let seen = Mutex::new(w.started_count());

    // Another deployment of prod runs: the upgrade waits for it instead of failing it.
    w.update("prod", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    let busy = w.last_started();
    *seen.lock().unwrap() += 1;

    let first = advance(&w, &id).await;
    assert_eq!(first["outcome"], "wait");
    assert_eq!(first["waitSeconds"], 5);
    run_started(&w, &seen).await; // dev, to 1.1
    upgrades.command(&id, Command::Pause).await.unwrap();
    let paused = advance(&w, &id).await;
    assert_eq!(paused["outcome"], "await", "{paused}");
    let (stored, _) = upgrades.get(&id).await.unwrap();
    assert_eq!(stored.status, UpgradeStatus::Paused);
    assert_eq!(stored.waves[0].targets[0].status, TargetStatus::Succeeded);
    assert_eq!(stored.waves[0].targets[1].status, TargetStatus::Pending);

    // The execution stores its token; the resume signals it.
    w.engine
        .run(json!({ "task": "awaitUpgradeSignal", "upgradeId": id, "taskToken": "t-1" }))
        .await
        .unwrap();
    assert!(w.workflows.signals.lock().unwrap().is_empty());
    upgrades.command(&id, Command::Resume).await.unwrap();
    assert_eq!(w.workflows.signals.lock().unwrap()[0].0, "t-1");

    // prod is still busy with the other deployment: it stays pending, and nothing idle
    // makes the wait grow.
    let busy_check = advance(&w, &id).await;
    assert_eq!(busy_check["outcome"], "wait");
    let (stored, _) = upgrades.get(&id).await.unwrap();
    assert_eq!(stored.status, UpgradeStatus::Running);
    let prod = &stored.waves[0].targets[1];
    assert_eq!((prod.status, prod.busy), (TargetStatus::Pending, 1));
    w.run_deploy(&busy).await;
    advance(&w, &id).await;
    let (stored, _) = upgrades.get(&id).await.unwrap();
    assert_eq!(stored.waves[0].targets[1].status, TargetStatus::Deploying);

    // A cancel: prod's deployment ends, qa never starts.
    upgrades.command(&id, Command::Cancel).await.unwrap();
    assert_eq!(advance(&w, &id).await["outcome"], "wait");
    run_started(&w, &seen).await;
    let last = advance(&w, &id).await;
    assert_eq!(
        (last["outcome"].as_str(), last["status"].as_str()),
        (Some("ended"), Some("CANCELLED"))
    );
    let (stored, control) = upgrades.get(&id).await.unwrap();
    assert!(control.cancel.is_some());
    assert_eq!(stored.counts.succeeded, 2);
    assert_eq!(stored.counts.not_started, 1);
    assert_eq!(version_of(&w, "qa").await.0, "1.0");
    // The listing shows it with its counts, without the targets.
    let listed = w
        .store
        .upgrades(crate::ports::PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(listed.items[0].waves[0].targets.is_empty());
    assert_eq!(listed.items[0].counts.total, 3);
}

#[tokio::test]
async fn an_upgrade_that_selects_nothing_or_asks_the_impossible_is_refused_and_records_nothing() {
    let w = fleet_on_1_0().await;
    let upgrades = Upgrades::new(w.deployer.clone());
    let mut to_1_0 = upgrade_request(&[]);
    to_1_0.template_minor_version = Some(VersionPart(0));
    let err = upgrades.start(to_1_0).await.unwrap_err();
    assert!(
        matches!(err, Error::Validation(ref m) if m.contains("runs a version below 1.0")),
        "{err:?}"
    );
    let mut none = upgrade_request(&[]);
    none.environments = vec![name("staging")];
    assert!(matches!(
        upgrades.start(none).await,
        Err(Error::Validation(_))
    ));
    let mut wide = upgrade_request(&[]);
    wide.concurrency = Some(0);
    assert!(matches!(
        upgrades.start(wide).await,
        Err(Error::Validation(_))
    ));
    let mut twice = upgrade_request(&[&["dev"], &["dev"]]);
    twice.concurrency = None;
    assert!(matches!(
        upgrades.start(twice).await,
        Err(Error::Validation(ref m)) if m.contains("named twice")
    ));
    let mut services = upgrade_request(&[]);
    services.services = vec![name("web")];
    assert!(matches!(
        upgrades.start(services).await,
        Err(Error::Validation(_))
    ));
    let mut only_qa = upgrade_request(&[]);
    only_qa.environments = vec![name("qa")];
    let upgrade = upgrades.start(only_qa).await.unwrap();
    assert_eq!(upgrade.counts.total, 1);
    let listed = w
        .store
        .upgrades(crate::ports::PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1, "the refused ones recorded nothing");
    assert!(matches!(
        upgrades.command(&upgrade.id, Command::Approve).await,
        Err(Error::Conflict(ref m)) if m.contains("not waiting for an approval")
    ));
    assert!(matches!(
        upgrades.get("nope").await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn an_upgrade_whose_execution_ended_unrecorded_reads_as_failed_not_running() {
    let w = fleet_on_1_0().await;
    let upgrades = Upgrades::new(w.deployer.clone());
    let upgrade = upgrades.start(upgrade_request(&[])).await.unwrap();
    advance(&w, &upgrade.id).await;
    let (running, _) = upgrades.get(&upgrade.id).await.unwrap();
    assert_eq!(running.status, UpgradeStatus::Running);
    // Stopped in the console (or timed out): nothing recorded its end.
    w.workflows
        .states
        .lock()
        .unwrap()
        .insert(upgrade.id.clone(), ExecutionState::Ended);
    let (read, _) = upgrades.get(&upgrade.id).await.unwrap();
    assert_eq!(read.status, UpgradeStatus::Failed);
    assert!(
        read.status_message
            .as_deref()
            .unwrap()
            .contains("ended without recording its end"),
        "{:?}",
        read.status_message
    );
    let statuses: Vec<TargetStatus> = read.targets().map(|t| t.status).collect();
    assert_eq!(
        statuses,
        [
            TargetStatus::Deploying,
            TargetStatus::NotStarted,
            TargetStatus::NotStarted
        ]
    );
    assert!(matches!(
        upgrades.command(&upgrade.id, Command::Pause).await,
        Err(Error::Conflict(_))
    ));
}

#[tokio::test]
async fn a_halt_in_the_first_wave_records_every_later_wave_as_not_started() {
    let w = fleet_on_1_0().await;
    let upgrades = Upgrades::new(w.deployer.clone());
    let upgrade = upgrades
        .start(upgrade_request(&[&["dev"], &["prod"], &["qa"]]))
        .await
        .unwrap();
    let seen = Mutex::new(w.started_count());
    *w.stacks.execute_result.lock().unwrap() = Some(StackState::Failed {
        status: "UPDATE_ROLLBACK_COMPLETE".into(),
        reason: "boom".into(),
    });
    advance(&w, &upgrade.id).await;
    run_started(&w, &seen).await;
    let last = advance(&w, &upgrade.id).await;
    assert_eq!(last["status"], "FAILED", "{last}");
    let (stored, _) = upgrades.get(&upgrade.id).await.unwrap();
    let statuses: Vec<TargetStatus> = stored.targets().map(|t| t.status).collect();
    assert_eq!(
        statuses,
        [
            TargetStatus::Failed,
            TargetStatus::NotStarted,
            TargetStatus::NotStarted
        ]
    );
}
