//! The DynamoDB fleet store: an upgrade as a partition of items (its state, its control, one
//! item per wave), saved only on the revision read, listed newest first without its targets;
//! drift records by template.

use paved_core::domain::drift::{DriftRecord, DriftStatus};
use paved_core::domain::names::Timestamp;
use paved_core::domain::upgrade::{
    Control, Planned, Settings, TargetStatus, Upgrade, UpgradeStatus, UpgradeTarget, WavePlan,
};
use paved_core::ports::{FleetStore, PageRequest, StoreError};

use crate::env::TestEnv;

fn upgrade(id: &str, created_at: f64, targets: usize) -> Upgrade {
    let planned = (0..targets)
        .map(|i| {
            Planned::new(
                UpgradeTarget::ServiceInstance {
                    service: format!("svc-{i:04}"),
                    name: "one".into(),
                    environment: if i % 2 == 0 { "dev" } else { "prod" }.into(),
                },
                "1.0".into(),
                Some(format!("d-{i}")),
            )
        })
        .collect();
    let waves = WavePlan {
        environments: vec![vec!["dev".into()], vec!["prod".into()]],
        size: None,
    }
    .waves(planned)
    .unwrap();
    let mut upgrade = Upgrade {
        id: id.into(),
        template_type: "SERVICE".into(),
        template_name: "web".into(),
        major: 1,
        minor: 1,
        settings: Settings::default(),
        waves,
        status: UpgradeStatus::Running,
        status_message: None,
        wave: 0,
        task_token: None,
        awaiting: None,
        started_by: None,
        created_at: Timestamp(created_at),
        updated_at: Timestamp(created_at),
        ended_at: None,
        idle: 0,
        counts: Default::default(),
        rev: 0,
    };
    upgrade.counts = upgrade.progress();
    upgrade
}

#[tokio::test]
async fn an_upgrade_of_a_thousand_targets_round_trips_and_saves_only_on_its_revision() {
    let env = TestEnv::new().await;
    let store = env.store();
    // 1,000 targets: more than one DynamoDB item could hold as a single record of this size.
    let first = upgrade("u-1", 1_000.0, 1_000);
    store.create_upgrade(&first).await.unwrap();
    assert!(matches!(
        store.create_upgrade(&first).await,
        Err(StoreError::ConditionFailed)
    ));
    let (read, control) = store.upgrade("u-1").await.unwrap().unwrap();
    assert_eq!(read, first);
    assert_eq!(control, Control::default());

    let mut next = read.clone();
    next.waves[1].targets[3].status = TargetStatus::Deploying;
    next.waves[1].targets[3].deployment_id = Some("d-new".into());
    next.waves[0].targets[0].status = TargetStatus::Failed; // not saved: wave 0 is not named
    next.rev += 1;
    store.save_upgrade(&next, &[1]).await.unwrap();
    let (read, _) = store.upgrade("u-1").await.unwrap().unwrap();
    assert_eq!(
        read.waves[1].targets[3].deployment_id.as_deref(),
        Some("d-new")
    );
    assert_eq!(read.waves[0].targets[0].status, TargetStatus::Pending);
    // A second save on the revision already used is refused.
    assert!(matches!(
        store.save_upgrade(&next, &[1]).await,
        Err(StoreError::ConditionFailed)
    ));

    let mut control = Control {
        paused: true,
        rev: 1,
        ..Default::default()
    };
    store.save_control("u-1", &control).await.unwrap();
    assert!(matches!(
        store.save_control("u-1", &control).await,
        Err(StoreError::ConditionFailed)
    ));
    control.rev = 2;
    control.paused = false;
    store.save_control("u-1", &control).await.unwrap();
    assert!(!store.upgrade("u-1").await.unwrap().unwrap().1.paused);

    store
        .create_upgrade(&upgrade("u-2", 2_000.0, 3))
        .await
        .unwrap();
    let page = store
        .upgrades(PageRequest {
            limit: Some(1),
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(page.items[0].id, "u-2", "newest first");
    assert!(page.items[0].waves.iter().all(|w| w.targets.is_empty()));
    assert_eq!(page.items[0].counts.total, 3);
    let rest = store
        .upgrades(PageRequest {
            limit: Some(1),
            cursor: page.cursor,
        })
        .await
        .unwrap();
    assert_eq!(rest.items[0].id, "u-1");
    assert_eq!(rest.items[0].counts.total, 1_000);
    assert!(store.upgrade("nope").await.unwrap().is_none());
}

#[tokio::test]
async fn drift_records_are_kept_per_template_one_per_stack() {
    let env = TestEnv::new().await;
    let store = env.store();
    let record = |stack: &str, status| DriftRecord {
        template_type: "SERVICE".into(),
        template_name: "web".into(),
        stack_name: stack.into(),
        target: UpgradeTarget::ServicePipeline {
            service: "web".into(),
        },
        status,
        resources: vec![],
        message: None,
        detection_id: None,
        checked_at: Timestamp(5.0),
    };
    store
        .put_drift(&record("a", DriftStatus::InSync))
        .await
        .unwrap();
    store
        .put_drift(&record("a", DriftStatus::Drifted))
        .await
        .unwrap();
    store
        .put_drift(&record("b", DriftStatus::InSync))
        .await
        .unwrap();
    let mut found = store.drifts("SERVICE", "web").await.unwrap();
    found.sort_by(|x, y| x.stack_name.cmp(&y.stack_name));
    assert_eq!(
        found,
        [
            record("a", DriftStatus::Drifted),
            record("b", DriftStatus::InSync)
        ]
    );
    assert!(store.drifts("SERVICE", "other").await.unwrap().is_empty());
}
