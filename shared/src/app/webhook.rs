//! GitHub webhooks: a signed, fresh, first-seen `push` delivery is put on the event bus as
//! paved's push event, where the same rule as for CodeCommit routes it to the push handler.
//! Anything unsigned, forged, stale or replayed is refused and writes nothing.

use std::sync::Arc;

use crate::domain::names::Timestamp;
use crate::domain::push::{
    Push, WEBHOOK_FRESHNESS_SECONDS, WebhookError, delivery_key, github_push, verify_signature,
};
use crate::ports::{Deliveries, Events, Secrets};

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
    pub store: Arc<dyn Deliveries>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{MemorySecrets, MemoryStore, RecordingEvents};
    use crate::domain::push::sign;
    use serde_json::json;

    const SECRET: &[u8] = b"s3cret";

    fn webhook() -> (Webhook, Arc<RecordingEvents>) {
        let secrets = MemorySecrets::default();
        secrets
            .values
            .lock()
            .unwrap()
            .insert("hook".into(), SECRET.to_vec());
        let events = Arc::new(RecordingEvents::default());
        let hook = Webhook {
            store: Arc::new(MemoryStore::default()),
            events: events.clone(),
            secrets: Arc::new(secrets),
            secret_id: Some("hook".into()),
        };
        (hook, events)
    }

    fn body(pushed_at: i64) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "ref": "refs/heads/main",
            "after": "0123456789abcdef0123456789abcdef01234567",
            "repository": {"full_name": "acme/web", "pushed_at": pushed_at},
        }))
        .unwrap()
    }

    async fn deliver(
        hook: &Webhook,
        event: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<Outcome, Rejection> {
        hook.receive(Delivery {
            event: Some(event),
            signature,
            body,
        })
        .await
    }

    #[tokio::test]
    async fn a_signed_fresh_push_is_put_on_the_bus_once() {
        let (hook, events) = webhook();
        let body = body(Timestamp::now().0 as i64);
        let signature = sign(SECRET, &body);
        let outcome = deliver(&hook, "push", &body, Some(&signature))
            .await
            .unwrap();
        assert!(
            matches!(outcome, Outcome::Accepted(ref p) if p.repository_id == "acme/web" && p.branch == "main")
        );
        let again = deliver(&hook, "push", &body, Some(&signature))
            .await
            .unwrap_err();
        assert!(
            matches!(again, Rejection::Refused(WebhookError::Replayed)),
            "{again:?}"
        );
        assert_eq!(events.pushes.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn unsigned_forged_and_stale_deliveries_are_refused_and_write_nothing() {
        let (hook, events) = webhook();
        let now = Timestamp::now().0 as i64;
        let fresh = body(now);
        let cases = [
            (None, fresh.clone(), WebhookError::Unsigned),
            (
                Some(sign(b"wrong", &fresh)),
                fresh.clone(),
                WebhookError::Forged,
            ),
            (
                Some("sha256=00".into()),
                fresh.clone(),
                WebhookError::MalformedSignature,
            ),
        ];
        for (signature, body, expected) in cases {
            let refused = deliver(&hook, "push", &body, signature.as_deref())
                .await
                .unwrap_err();
            assert!(
                matches!(refused, Rejection::Refused(ref e) if *e == expected),
                "{refused:?}"
            );
        }
        let stale = body(now - 3600);
        let refused = deliver(&hook, "push", &stale, Some(&sign(SECRET, &stale)))
            .await
            .unwrap_err();
        assert!(matches!(
            refused,
            Rejection::Refused(WebhookError::Stale { .. })
        ));
        assert!(events.pushes.lock().unwrap().is_empty());
        // None of them was remembered: the genuine delivery still goes through.
        let ok = deliver(&hook, "push", &fresh, Some(&sign(SECRET, &fresh))).await;
        assert!(matches!(ok, Ok(Outcome::Accepted(_))), "{ok:?}");
    }

    #[tokio::test]
    async fn pings_and_other_events_are_answered_without_a_push() {
        let (hook, events) = webhook();
        let ping = br#"{"zen": "Keep it logically awesome."}"#;
        let outcome = deliver(&hook, "ping", ping, Some(&sign(SECRET, ping)))
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Ignored("pong".into()));
        let forged_ping = deliver(&hook, "ping", ping, Some(&sign(b"x", ping))).await;
        assert!(forged_ping.is_err(), "the signature is checked first");
        let issue = br#"{"action": "opened"}"#;
        let outcome = deliver(&hook, "issues", issue, Some(&sign(SECRET, issue)))
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Ignored(_)));
        assert!(events.pushes.lock().unwrap().is_empty());
        let no_secret = Webhook {
            secret_id: None,
            ..hook.clone()
        };
        let unavailable = deliver(&no_secret, "ping", ping, Some(&sign(SECRET, ping))).await;
        assert!(matches!(unavailable, Err(Rejection::Unavailable(_))));
    }
}
