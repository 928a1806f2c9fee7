//! Drift detection through the provisioning port, against a CloudFormation whose stacks were
//! changed behind paved's back: on demand, on the schedule, recorded, in the fleet view, on
//! the bus.

use super::*;
use crate::app::drift::Drift;
use crate::app::fleet::Fleet;
use crate::domain::drift::{DriftRecord, DriftStatus, DriftedResource};
use crate::ports::FleetStore;

fn changed_vpc() -> Vec<DriftedResource> {
    vec![DriftedResource {
        logical_id: "Vpc".into(),
        resource_type: "AWS::EC2::VPC".into(),
        status: "MODIFIED".into(),
        differences: vec!["CidrBlock: 10.1.0.0/16 -> 10.9.0.0/16".into()],
    }]
}

async fn two_environments() -> World {
    let w = World::new().await;
    for env in ["dev", "prod"] {
        w.create(env, SPEC).await.unwrap();
        w.run_deploy(&w.last_started()).await;
    }
    w
}

fn drift_events(w: &World) -> Vec<String> {
    w.events
        .fleet
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.detail_type == "paved Drift Detected")
        .map(|e| e.detail["stackName"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_detection_finds_the_changed_stack_records_it_shows_it_and_says_so_once() {
    let w = two_environments().await;
    w.stacks
        .drifted
        .lock()
        .unwrap()
        .insert("paved-environment-prod".into(), changed_vpc());
    // The engine answers "in progress" once before each detection completes.
    *w.stacks.drift_checks_in_progress.lock().unwrap() = 1;
    let drift = Drift::new(w.deployer.clone());
    let found = drift
        .detect(TemplateKind::Environment, &name("vpc"))
        .await
        .unwrap();
    let statuses: Vec<(&str, DriftStatus)> = found
        .iter()
        .map(|r| (r.stack_name.as_str(), r.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("paved-environment-dev", DriftStatus::InSync),
            ("paved-environment-prod", DriftStatus::Drifted)
        ]
    );
    assert_eq!(found[1].resources, changed_vpc());
    assert_eq!(drift_events(&w), ["paved-environment-prod"]);
    let view = Fleet::new(w.deployer.clone())
        .view(TemplateKind::Environment, &name("vpc"))
        .await
        .unwrap();
    let prod = view.targets.iter().find(|t| t.name == "prod").unwrap();
    let shown = prod.drift.as_ref().expect("the fleet view shows drift");
    assert_eq!(
        (shown["status"].as_str(), shown["driftedResources"].as_u64()),
        (Some("DRIFTED"), Some(1))
    );
    // Found again, the same: recorded, not announced again.
    drift
        .detect(TemplateKind::Environment, &name("vpc"))
        .await
        .unwrap();
    assert_eq!(drift_events(&w).len(), 1);
    // A target being deployed is not compared while it moves.
    w.update("dev", DeploymentType::CurrentVersion, None)
        .await
        .unwrap();
    let found = drift
        .detect(TemplateKind::Environment, &name("vpc"))
        .await
        .unwrap();
    assert_eq!(found[0].status, DriftStatus::Unknown);
    assert!(
        found[0]
            .message
            .as_deref()
            .unwrap()
            .contains("deployment in progress")
    );
    assert!(matches!(
        drift.detect(TemplateKind::Environment, &name("nope")).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn the_schedule_rechecks_targets_a_day_old_and_finishes_what_it_started() {
    let w = two_environments().await;
    let drift = Drift::new(w.deployer.clone());
    // Nothing was ever checked: every target is due.
    *w.stacks.drift_checks_in_progress.lock().unwrap() = 1;
    let first = drift.sweep().await.unwrap();
    assert_eq!(first["started"], 2, "{first}");
    let records = w.store.drifts("ENVIRONMENT", "vpc").await.unwrap();
    assert!(
        records
            .iter()
            .all(|r| r.status == DriftStatus::Detecting && r.detection_id.is_some()),
        "{records:?}"
    );
    // The engine is still comparing at the next run; done at the one after.
    let second = drift.sweep().await.unwrap();
    assert_eq!(
        (second["started"].as_u64(), second["finished"].as_u64()),
        (Some(0), Some(0))
    );
    w.stacks
        .drifted
        .lock()
        .unwrap()
        .insert("paved-environment-dev".into(), changed_vpc());
    let third = drift.sweep().await.unwrap();
    assert_eq!(third["finished"], 2, "{third}");
    let records: Vec<DriftRecord> = w.store.drifts("ENVIRONMENT", "vpc").await.unwrap();
    let dev = records
        .iter()
        .find(|r| r.stack_name == "paved-environment-dev")
        .unwrap();
    assert_eq!(dev.status, DriftStatus::Drifted);
    assert_eq!(drift_events(&w), ["paved-environment-dev"]);
    // Checked now: not due again until a day has passed.
    let fourth = drift.sweep().await.unwrap();
    assert_eq!(fourth["started"], 0);
    let mut old = dev.clone();
    old.checked_at = crate::domain::names::Timestamp(old.checked_at.0 - 25.0 * 3600.0);
    w.store.put_drift(&old).await.unwrap();
    let fifth = drift.sweep().await.unwrap();
    assert_eq!(fifth["started"], 1, "{fifth}");
    // The scheduled task payload runs the same sweep.
    let answer = w
        .engine
        .run(json!({ "task": "detectDrift" }))
        .await
        .unwrap();
    assert!(answer["started"].is_number(), "{answer}");
}
