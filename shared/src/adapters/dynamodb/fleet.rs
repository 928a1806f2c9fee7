//! Upgrades and drift records. An upgrade is a partition: `sk = #UPGRADE` (its state without
//! the waves' targets, listed newest first through `gsi1pk = UPGRADES`), `sk = #CONTROL` (what
//! callers asked) and `sk = WAVE#<nnn>` (each wave's targets), so no item grows with the fleet
//! beyond one wave. Drift: `pk = DRIFT#<type>#<template>`, `sk = <stack>`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::domain::drift::DriftRecord;
use crate::domain::upgrade::{Control, Planned, Upgrade};
use crate::ports::{FleetStore, Page, PageRequest, StoreError};

use super::{
    Condition, DynamoStore, GSI1, Item, backend, decode_cursor, encode_cursor, from_item, to_item,
};

const UPGRADE_SK: &str = "#UPGRADE";
const CONTROL_SK: &str = "#CONTROL";

fn upgrade_pk(id: &str) -> String {
    format!("UPGRADE#{id}")
}

fn wave_sk(index: usize) -> String {
    format!("WAVE#{index:03}")
}

#[derive(Serialize, Deserialize)]
struct Stored<T> {
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    #[serde(flatten)]
    record: T,
}

#[derive(Serialize, Deserialize)]
struct WaveTargets {
    targets: Vec<Planned>,
}

fn head_item(upgrade: &Upgrade) -> Result<Item, StoreError> {
    let mut head = upgrade.clone();
    for wave in &mut head.waves {
        wave.targets.clear();
    }
    let order = format!(
        "{:020}#{}",
        u64::MAX - (upgrade.created_at.0 * 1000.0) as u64,
        upgrade.id
    );
    to_item(&Stored {
        pk: upgrade_pk(&upgrade.id),
        sk: UPGRADE_SK.into(),
        gsi1pk: Some("UPGRADES".into()),
        gsi1sk: Some(order),
        record: head,
    })
}

fn wave_item(upgrade: &Upgrade, index: usize) -> Result<Item, StoreError> {
    to_item(&Stored {
        pk: upgrade_pk(&upgrade.id),
        sk: wave_sk(index),
        gsi1pk: None,
        gsi1sk: None,
        record: WaveTargets {
            targets: upgrade.waves[index].targets.clone(),
        },
    })
}

fn control_item(id: &str, control: &Control) -> Result<Item, StoreError> {
    to_item(&Stored {
        pk: upgrade_pk(id),
        sk: CONTROL_SK.into(),
        gsi1pk: None,
        gsi1sk: None,
        record: control,
    })
}

#[async_trait]
impl FleetStore for DynamoStore {
    async fn create_upgrade(&self, upgrade: &Upgrade) -> Result<(), StoreError> {
        let mut items = vec![
            self.put(head_item(upgrade)?, Condition::Absent),
            self.put(
                control_item(&upgrade.id, &Control::default())?,
                Condition::Absent,
            ),
        ];
        for index in 0..upgrade.waves.len() {
            items.push(self.put(wave_item(upgrade, index)?, Condition::Absent));
        }
        self.transact(items).await
    }

    async fn upgrade(&self, id: &str) -> Result<Option<(Upgrade, Control)>, StoreError> {
        let items = self.partition(upgrade_pk(id), None).await?;
        let mut head: Option<Upgrade> = None;
        let mut control = Control::default();
        let mut waves = Vec::new();
        for item in items {
            let sk = item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            if sk == UPGRADE_SK {
                head = Some(from_item::<Stored<Upgrade>>(item)?.record);
            } else if sk == CONTROL_SK {
                control = from_item::<Stored<Control>>(item)?.record;
            } else if let Some(index) = sk.strip_prefix("WAVE#") {
                let index: usize = index
                    .parse()
                    .map_err(|_| super::corrupt(&sk, "not a wave number"))?;
                waves.push((
                    index,
                    from_item::<Stored<WaveTargets>>(item)?.record.targets,
                ));
            }
        }
        let Some(mut upgrade) = head else {
            return Ok(None);
        };
        for (index, targets) in waves {
            if let Some(wave) = upgrade.waves.get_mut(index) {
                wave.targets = targets;
            }
        }
        Ok(Some((upgrade, control)))
    }

    async fn save_upgrade(&self, upgrade: &Upgrade, waves: &[usize]) -> Result<(), StoreError> {
        let mut items = vec![self.put(
            head_item(upgrade)?,
            Condition::Rev(upgrade.rev.saturating_sub(1)),
        )];
        for &index in waves {
            if index < upgrade.waves.len() {
                items.push(self.put_any(wave_item(upgrade, index)?));
            }
        }
        self.transact(items).await
    }

    async fn save_control(&self, id: &str, control: &Control) -> Result<(), StoreError> {
        self.transact(vec![self.put(
            control_item(id, control)?,
            Condition::Rev(control.rev.saturating_sub(1)),
        )])
        .await
    }

    async fn upgrades(&self, page: PageRequest) -> Result<Page<Upgrade>, StoreError> {
        let partition = "UPGRADES".to_string();
        let start = page
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, ("gsi1pk", &partition)))
            .transpose()?;
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", AttributeValue::S(partition))
            .set_limit(page.limit.map(|l| l as i32))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(backend)?;
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<Stored<Upgrade>>(item).map(|s| s.record))
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            cursor: encode_cursor(output.last_evaluated_key.as_ref()),
        })
    }

    async fn put_drift(&self, record: &DriftRecord) -> Result<(), StoreError> {
        let item = to_item(&Stored {
            pk: format!("DRIFT#{}#{}", record.template_type, record.template_name),
            sk: record.stack_name.clone(),
            gsi1pk: None,
            gsi1sk: None,
            record,
        })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn drifts(
        &self,
        template_type: &str,
        template_name: &str,
    ) -> Result<Vec<DriftRecord>, StoreError> {
        self.partition(format!("DRIFT#{template_type}#{template_name}"), None)
            .await?
            .into_iter()
            .map(|item| from_item::<Stored<DriftRecord>>(item).map(|s| s.record))
            .collect()
    }
}
