//! GitHub webhooks: a signed, fresh, first-seen `push` delivery is put on the event bus as
//! paved's push event, where the same rule as for CodeCommit routes it to the push handler.
//! Anything unsigned, forged, stale or replayed is refused and writes nothing.

use std::sync::Arc;

use crate::domain::names::Timestamp;
use crate::domain::push::{
    Push, WEBHOOK_FRESHNESS_SECONDS, WebhookError, delivery_key, github_push, verify_signature,
};
use crate::ports::{DeploymentStore, Events, Secrets};

/// What a delivery carries: GitHub's headers and the raw body (the signature covers its bytes).
pub struct Delivery<'a> {
    pub event: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The push is on the bus.
    Accepted(Push),
    /// Signed and fine, but nothing to do (a ping, a tag, a deleted branch, another event).
    Ignored(String),
}

#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Refused(#[from] WebhookError),
    /// paved could not check or forward the delivery; GitHub may retry it.
    #[error("{0}")]
    Unavailable(String),
}

#[derive(Clone)]
pub struct Webhook {
    pub store: Arc<dyn DeploymentStore>,
    pub events: Arc<dyn Events>,
    pub secrets: Arc<dyn Secrets>,
    /// The secret's id (`PAVED_WEBHOOK_SECRET_ID`); without one, every delivery is refused.
    pub secret_id: Option<String>,
}

impl Webhook {
    #[tracing::instrument(skip_all, fields(event = delivery.event.unwrap_or("")))]
    pub async fn receive(&self, delivery: Delivery<'_>) -> Result<Outcome, Rejection> {
        let Some(secret_id) = &self.secret_id else {
            return Err(Rejection::Unavailable(
                "no webhook secret is configured (PAVED_WEBHOOK_SECRET_ID)".into(),
            ));
        };
        let secret = self.secrets.secret(secret_id).await.map_err(|e| {
            Rejection::Unavailable(format!("the webhook secret could not be read: {e}"))
        })?;
        verify_signature(&secret, delivery.body, delivery.signature)?;
        match delivery.event {
            Some("push") => {}
            Some("ping") => return Ok(Outcome::Ignored("pong".into())),
            other => {
                return Ok(Outcome::Ignored(format!(
                    "event {:?} is not a push",
                    other.unwrap_or("")
                )));
            }
        }
        let now = Timestamp::now().0 as i64;
        let push = github_push(delivery.body, now)?;
        // Deliveries are remembered by their signed content, longer than they stay fresh: a
        // replay is either remembered or stale.
        let key = delivery_key(delivery.body);
        let expires_at = (now + 4 * WEBHOOK_FRESHNESS_SECONDS) as u64;
        let first = self
            .store
            .remember_delivery(&key, expires_at)
            .await
            .map_err(|e| Rejection::Unavailable(crate::domain::error::chain(&e)))?;
        if !first {
            return Err(WebhookError::Replayed.into());
        }
        let Some(push) = push else {
            return Ok(Outcome::Ignored("not a push to a branch".into()));
        };
        if let Err(error) = self.events.put_push(&push).await {
            // Forgotten, so that GitHub's retry of this delivery is not taken for a replay.
            if let Err(forget) = self.store.forget_delivery(&key).await {
                tracing::warn!(error = %forget, "delivery not forgotten");
            }
            return Err(Rejection::Unavailable(format!(
                "the push could not be put on the bus: {error}"
            )));
        }
        tracing::info!(repository = %push.repository_id, branch = %push.branch, commit = %push.commit_id, "push accepted");
        Ok(Outcome::Accepted(push))
    }
}
