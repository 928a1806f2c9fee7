//! The DynamoDB catalog store: round trips, conditional writes, atomicity, paging.

use paved_core::domain::names::{ResourceName, Timestamp};
use paved_core::domain::template::{
    Template, TemplateKind, TemplateVersion, VersionIndex, VersionNumber, VersionStatus,
};
use paved_core::ports::{
    CatalogStore, CatalogWrite, IdempotencyRecord, PageRequest, StoreError, TemplateWrite,
    VersionWrite,
};

use crate::env::TestEnv;

fn template(name: &str) -> Template {
    Template {
        kind: TemplateKind::Environment,
        name: ResourceName::parse(name).unwrap(),
        display_name: None,
        description: None,
        encryption_key: None,
        provisioning: None,
        tags: vec![],
        created_at: Timestamp(1.5),
        last_modified_at: Timestamp(1.5),
        versions: VersionIndex::default(),
        rev: 1,
    }
}

fn version(name: &str, major: u64, minor: u64) -> TemplateVersion {
    TemplateVersion {
        kind: TemplateKind::Environment,
        template_name: ResourceName::parse(name).unwrap(),
        number: VersionNumber { major, minor },
        status: VersionStatus::Draft,
        status_message: None,
        description: None,
        schema: "schema: {}".into(),
        compatible_environment_templates: vec![],
        supported_component_sources: vec![],
        bundle_key: "bundles/x".into(),
        has_pipeline: false,
        tags: vec![],
        created_at: Timestamp(2.0),
        last_modified_at: Timestamp(2.0),
        in_use: 0,
        rev: 1,
    }
}

fn create(t: &Template) -> CatalogWrite {
    CatalogWrite {
        template: Some(TemplateWrite::Create(t.clone())),
        ..Default::default()
    }
}

fn add_version(t: &Template, v: &TemplateVersion) -> CatalogWrite {
    let mut next = t.clone();
    next.versions.insert(v.number, v.status);
    next.rev = t.rev + 1;
    CatalogWrite {
        template: Some(TemplateWrite::Replace {
            template: next,
            expected_rev: t.rev,
        }),
        version: Some(VersionWrite::Create(v.clone())),
        idempotency: None,
    }
}

#[tokio::test]
async fn a_template_and_its_versions_round_trip() {
    let env = TestEnv::new().await;
    let store = env.store();
    let t = template("vpc");
    store.write(create(&t)).await.unwrap();
    let v = version("vpc", 1, 0);
    store.write(add_version(&t, &v)).await.unwrap();

    let read = store
        .template(TemplateKind::Environment, &t.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.rev, 2);
    assert!(read.versions.contains(v.number));
    let read_version = store
        .version(TemplateKind::Environment, &t.name, v.number)
        .await
        .unwrap();
    assert_eq!(read_version, Some(v));
    assert!(
        store
            .template(TemplateKind::Service, &t.name)
            .await
            .unwrap()
            .is_none(),
        "kinds are apart"
    );
}

#[tokio::test]
async fn of_two_writers_holding_the_same_revision_exactly_one_wins() {
    let env = TestEnv::new().await;
    let store = env.store();
    let t = template("vpc");
    store.write(create(&t)).await.unwrap();
    let (first, second) = tokio::join!(
        store.write(add_version(&t, &version("vpc", 1, 0))),
        store.write(add_version(&t, &version("vpc", 2, 0))),
    );
    let outcomes = [first, second];
    let wins = outcomes.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .any(|r| matches!(r, Err(StoreError::ConditionFailed)))
    );

    // The loser's version item was not written either: the transaction is atomic.
    let read = store
        .template(TemplateKind::Environment, &t.name)
        .await
        .unwrap()
        .unwrap();
    let listed = store
        .versions(
            TemplateKind::Environment,
            &t.name,
            None,
            PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        read.versions.statuses.keys().copied().collect::<Vec<_>>(),
        vec![listed.items[0].number]
    );
}

#[tokio::test]
async fn creating_an_existing_template_fails_its_condition() {
    let env = TestEnv::new().await;
    let store = env.store();
    let t = template("vpc");
    store.write(create(&t)).await.unwrap();
    assert!(matches!(
        store.write(create(&t)).await,
        Err(StoreError::ConditionFailed)
    ));
}

#[tokio::test]
async fn a_reused_client_token_cancels_the_whole_write() {
    let env = TestEnv::new().await;
    let store = env.store();
    let t = template("vpc");
    store.write(create(&t)).await.unwrap();
    let record = IdempotencyRecord {
        scope: "s".into(),
        token: "tok".into(),
        fingerprint: "f".into(),
        result: VersionNumber { major: 1, minor: 0 },
        expires_at: 4_000_000_000,
    };
    let mut write = add_version(&t, &version("vpc", 1, 0));
    write.idempotency = Some(record.clone());
    store.write(write).await.unwrap();
    assert_eq!(
        store.idempotency_record("s", "tok").await.unwrap(),
        Some(record.clone())
    );

    let current = store
        .template(TemplateKind::Environment, &t.name)
        .await
        .unwrap()
        .unwrap();
    let mut again = add_version(&current, &version("vpc", 2, 0));
    again.idempotency = Some(record);
    assert!(matches!(
        store.write(again).await,
        Err(StoreError::ConditionFailed)
    ));
    let after = store
        .template(TemplateKind::Environment, &t.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.rev, current.rev,
        "the template write was rolled back with the token's"
    );
}

#[tokio::test]
async fn listings_page_in_order_and_refuse_foreign_cursors() {
    let env = TestEnv::new().await;
    let store = env.store();
    for name in ["e", "a", "d", "b", "c"] {
        store.write(create(&template(name))).await.unwrap();
    }
    let mut names = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .templates(
                TemplateKind::Environment,
                PageRequest {
                    limit: Some(2),
                    cursor: cursor.clone(),
                },
            )
            .await
            .unwrap();
        names.extend(page.items.iter().map(|t| t.name.to_string()));
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(names, ["a", "b", "c", "d", "e"]);

    let mut t = template("vpc");
    store.write(create(&t)).await.unwrap();
    for minor in 0..3 {
        let v = version("vpc", 1, minor);
        store.write(add_version(&t, &v)).await.unwrap();
        t = store
            .template(TemplateKind::Environment, &t.name)
            .await
            .unwrap()
            .unwrap();
    }
    let first = store
        .versions(
            TemplateKind::Environment,
            &t.name,
            Some(1),
            PageRequest {
                limit: Some(2),
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let foreign = store
        .versions(
            TemplateKind::Environment,
            &ResourceName::parse("other").unwrap(),
            None,
            PageRequest {
                limit: Some(2),
                cursor: first.cursor.clone(),
            },
        )
        .await;
    assert!(matches!(foreign, Err(StoreError::BadCursor)));
    let rest = store
        .versions(
            TemplateKind::Environment,
            &t.name,
            Some(1),
            PageRequest {
                limit: Some(2),
                cursor: first.cursor,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        rest.items
            .iter()
            .map(|v| v.number.minor)
            .collect::<Vec<_>>(),
        [2]
    );
}

#[tokio::test]
async fn a_stale_delete_is_refused() {
    let env = TestEnv::new().await;
    let store = env.store();
    let t = template("vpc");
    store.write(create(&t)).await.unwrap();
    store
        .write(add_version(&t, &version("vpc", 1, 0)))
        .await
        .unwrap();
    let stale = CatalogWrite {
        template: Some(TemplateWrite::Delete {
            kind: t.kind,
            name: t.name.clone(),
            expected_rev: 1,
        }),
        ..Default::default()
    };
    assert!(matches!(
        store.write(stale).await,
        Err(StoreError::ConditionFailed)
    ));
    assert!(
        store
            .template(TemplateKind::Environment, &t.name)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn account_settings_are_written_once_per_revision() {
    use paved_core::domain::account::AccountSettings;
    use paved_core::ports::AccountStore;
    let env = TestEnv::new().await;
    let store = env.store();
    assert_eq!(store.settings().await.unwrap(), AccountSettings::default());
    let first = AccountSettings {
        pipeline_service_role_arn: Some("arn:aws:iam::123456789012:role/paved-pipelines".into()),
        rev: 1,
    };
    store.put_settings(first.clone()).await.unwrap();
    assert_eq!(store.settings().await.unwrap(), first);
    // A second writer that read the same (absent) settings loses.
    assert!(matches!(
        store.put_settings(first.clone()).await,
        Err(StoreError::ConditionFailed)
    ));
    let cleared = AccountSettings {
        pipeline_service_role_arn: None,
        rev: 2,
    };
    store.put_settings(cleared.clone()).await.unwrap();
    assert_eq!(store.settings().await.unwrap(), cleared);
}

/// Moves a version's in-use count the way deployment writes do.
async fn use_version(
    store: &paved_core::adapters::dynamodb::DynamoStore,
    v: &TemplateVersion,
    delta: i64,
) -> Result<(), StoreError> {
    use paved_core::ports::{DeploymentChange, DeploymentStore, VersionUsage};
    store
        .change(DeploymentChange {
            usage: vec![VersionUsage {
                version: v.clone(),
                delta,
            }],
            ..Default::default()
        })
        .await
}

#[tokio::test]
async fn a_versions_use_is_counted_over_shards_and_its_deletion_retires_them() {
    let env = TestEnv::new().await;
    let store = env.store();
    let t = template("vpc");
    store.write(create(&t)).await.unwrap();
    let mut v = version("vpc", 1, 0);
    v.status = VersionStatus::Published;
    store.write(add_version(&t, &v)).await.unwrap();
    let read = || async {
        store
            .version(TemplateKind::Environment, &t.name, v.number)
            .await
            .unwrap()
            .unwrap()
    };
    let count = || async {
        store
            .in_use(TemplateKind::Environment, &t.name, v.number)
            .await
            .unwrap()
            .unwrap()
    };
    for _ in 0..5 {
        use_version(&store, &v, 1).await.unwrap();
    }
    use_version(&store, &v, -2).await.unwrap();
    assert_eq!(count().await, 3);
    // A count from before the shards (on the version item) is kept through version writes.
    let client = aws_sdk_dynamodb::Client::new(&env.sdk);
    let key = |pk: &str, sk: &str| {
        std::collections::HashMap::from([
            (
                "pk".to_string(),
                aws_sdk_dynamodb::types::AttributeValue::S(pk.into()),
            ),
            (
                "sk".to_string(),
                aws_sdk_dynamodb::types::AttributeValue::S(sk.into()),
            ),
        ])
    };
    let version_key = key(
        "TEMPLATE#environment-template#vpc",
        "VERSION#00000000000000000001#00000000000000000000",
    );
    client
        .update_item()
        .table_name(&env.table)
        .set_key(Some(version_key))
        .update_expression("SET inUse = :one")
        .expression_attribute_values(
            ":one",
            aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
        )
        .send()
        .await
        .unwrap();
    let current = read().await;
    assert_eq!(count().await, 4);
    let mut described = current.clone();
    described.description = Some(paved_core::domain::names::Description::parse("kept").unwrap());
    described.rev = current.rev + 1;
    store
        .write(CatalogWrite {
            version: Some(VersionWrite::Replace {
                version: described,
                expected_rev: current.rev,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let after = read().await;
    assert_eq!(
        (
            count().await,
            after.description.as_ref().map(|d| d.as_str().to_string())
        ),
        (4, Some("kept".into()))
    );

    // In use: the deletion's own read refuses it.
    let template_now = store
        .template(TemplateKind::Environment, &t.name)
        .await
        .unwrap()
        .unwrap();
    let delete = |version: &TemplateVersion, template: &Template| {
        let mut next = template.clone();
        next.versions.remove(version.number);
        next.rev = template.rev + 1;
        CatalogWrite {
            template: Some(TemplateWrite::Replace {
                template: next,
                expected_rev: template.rev,
            }),
            version: Some(VersionWrite::Delete {
                version: version.clone(),
                expected_rev: version.rev,
            }),
            idempotency: None,
        }
    };
    assert!(matches!(
        store.write(delete(&after, &template_now)).await,
        Err(StoreError::ConditionFailed)
    ));
    // Out of use (the old count too), the deletion goes through, and retires the shards: a
    // write taking the deleted version into use fails its condition.
    use_version(&store, &v, -4).await.unwrap();
    let idle = read().await;
    assert_eq!(count().await, 0);
    store.write(delete(&idle, &template_now)).await.unwrap();
    assert!(
        store
            .version(TemplateKind::Environment, &t.name, v.number)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        use_version(&store, &v, 1).await,
        Err(StoreError::ConditionFailed)
    ));
}
