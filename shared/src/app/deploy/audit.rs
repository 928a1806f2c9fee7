//! Who a write is made for. The API runs each call inside [`acting_for`] its verified caller;
//! deployment records and status events created during the call carry that initiator, and the
//! Step Functions tasks that carry a deployment on pass the record's own along.

use std::future::Future;

use crate::domain::access::Initiator;

tokio::task_local! {
    static INITIATOR: Initiator;
}

/// Runs `work` on behalf of `initiator`.
pub async fn acting_for<F: Future>(initiator: Initiator, work: F) -> F::Output {
    INITIATOR.scope(initiator, work).await
}

/// The initiator of the call being served, if any (none in tasks and push handling).
pub fn current() -> Option<Initiator> {
    INITIATOR.try_with(Clone::clone).ok()
}
