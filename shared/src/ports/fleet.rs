//! The fleet's own records: staged upgrades (each with what callers asked of it) and the
//! drift last found on each target.

use async_trait::async_trait;

use super::{Page, PageRequest, StoreError};
use crate::domain::drift::DriftRecord;
use crate::domain::upgrade::{Control, Upgrade};

#[async_trait]
pub trait FleetStore: Send + Sync {
    /// Records a new upgrade with an empty control; ConditionFailed if its id exists.
    async fn create_upgrade(&self, upgrade: &Upgrade) -> Result<(), StoreError>;
    /// An upgrade with all its waves' targets, and its control.
    async fn upgrade(&self, id: &str) -> Result<Option<(Upgrade, Control)>, StoreError>;
    /// Saves an upgrade still at `upgrade.rev - 1` (ConditionFailed if not), with the targets
    /// of the waves named in `waves` (the others are as stored).
    async fn save_upgrade(&self, upgrade: &Upgrade, waves: &[usize]) -> Result<(), StoreError>;
    /// Saves a control still at `control.rev - 1` (ConditionFailed if not).
    async fn save_control(&self, id: &str, control: &Control) -> Result<(), StoreError>;
    /// Upgrades, newest first, without their waves' targets (their counts are on them).
    async fn upgrades(&self, page: PageRequest) -> Result<Page<Upgrade>, StoreError>;
    /// Records the drift found on a target (replacing what was found before).
    async fn put_drift(&self, record: &DriftRecord) -> Result<(), StoreError>;
    /// The drift last found on each target of a template.
    async fn drifts(
        &self,
        template_type: &str,
        template_name: &str,
    ) -> Result<Vec<DriftRecord>, StoreError>;
}
