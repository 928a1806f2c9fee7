//! The capabilities paved needs from the outside world, one small trait each, one file each;
//! their implementations are the files of the same name in `adapters/`.

mod access;
mod bundles;
mod catalog;
mod deliveries;
mod deployments;
mod events;
mod fleet;
mod pipelines;
mod provisioning;
mod secrets;
mod workflows;

pub use access::*;
pub use bundles::*;
pub use catalog::*;
pub use deliveries::*;
pub use deployments::*;
pub use events::*;
pub use fleet::*;
pub use pipelines::*;
pub use provisioning::*;
pub use secrets::*;
pub use workflows::*;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item changed (or present, or gone) since it was read.
    #[error("the item changed since it was read")]
    ConditionFailed,
    #[error("the store throttled the request")]
    Throttled(#[source] BoxError),
    #[error("the page token is not one this store issued")]
    BadCursor,
    #[error("item {key} is malformed: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("the store request failed")]
    Backend(#[source] BoxError),
}

/// One page of a listing request.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: Option<u32>,
    /// An opaque position returned by the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub cursor: Option<String>,
}
