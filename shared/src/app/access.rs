//! Deciding calls, and keeping the access document: versioned, put only by callers allowed to,
//! and read by every API instance within [`CACHE_SECONDS`] of a change.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Error, Result};
use crate::domain::access::{
    AccessDocument, AccessRequest, Authorizer, Caller, Decision, StoredAccess,
};
use crate::domain::names::Timestamp;
use crate::ports::{AccessStore, StoreError};

/// How long an API instance decides with the document it last read before reading it again.
pub const CACHE_SECONDS: u64 = 10;

struct Cached {
    read_at: Instant,
    version: u64,
    authorizer: Arc<Authorizer>,
}

pub struct Access {
    store: Arc<dyn AccessStore>,
    /// Version 0: in force until the first PutAccessPolicy.
    default: AccessDocument,
    /// The actions requests name: every operation, and PassRole.
    actions: Vec<&'static str>,
    cache: Mutex<Option<Cached>>,
    ttl: Duration,
}

impl Access {
    pub fn new(
        store: Arc<dyn AccessStore>,
        default: AccessDocument,
        actions: Vec<&'static str>,
    ) -> Self {
        Self {
            store,
            default,
            actions,
            cache: Mutex::new(None),
            ttl: Duration::from_secs(CACHE_SECONDS),
        }
    }

    pub fn actions(&self) -> &[&'static str] {
        &self.actions
    }

    /// Checks a document as PutAccessPolicy would, without keeping it.
    pub fn compile(&self, document: &AccessDocument) -> Result<Authorizer> {
        Authorizer::compile(document, &self.actions).map_err(Error::Validation)
    }

    fn default_version(&self) -> StoredAccess {
        StoredAccess {
            version: 0,
            document: self.default.clone(),
            updated_by: None,
            updated_at: 0.0,
        }
    }

    /// The document in force.
    pub async fn current(&self) -> Result<StoredAccess> {
        Ok(self
            .store
            .current()
            .await?
            .unwrap_or_else(|| self.default_version()))
    }

    pub async fn version(&self, version: u64) -> Result<StoredAccess> {
        if version == 0 {
            return Ok(self.default_version());
        }
        self.store.version(version).await?.ok_or_else(|| {
            Error::not_found(format!("access policy version {version} does not exist"))
        })
    }

    /// Versions newest first; the default (version 0) comes last.
    pub async fn versions(&self, before: Option<u64>, limit: u32) -> Result<Vec<StoredAccess>> {
        let limit = limit.clamp(1, 100);
        let mut versions = self.store.versions(before, limit).await?;
        if versions.len() < limit as usize && before != Some(0) {
            versions.push(self.default_version());
        }
        Ok(versions)
    }

    async fn authorizer(&self) -> Result<Arc<Authorizer>> {
        if let Some(cached) = self.cache.lock().unwrap().as_ref()
            && cached.read_at.elapsed() < self.ttl
        {
            return Ok(cached.authorizer.clone());
        }
        let current = self.current().await?;
        let authorizer = Arc::new(
            Authorizer::compile(&current.document, &self.actions).map_err(|reason| {
                // A stored document always compiled when it was put; one that no longer does
                // (a paved upgrade renamed an action) denies everything rather than guess.
                Error::AccessDenied(format!(
                    "access policy version {} no longer compiles ({reason}); put a corrected one",
                    current.version
                ))
            })?,
        );
        *self.cache.lock().unwrap() = Some(Cached {
            read_at: Instant::now(),
            version: current.version,
            authorizer: authorizer.clone(),
        });
        Ok(authorizer)
    }

    /// Decides every request of one call; the first one denied refuses the call.
    pub async fn check(&self, caller: &Caller, requests: &[AccessRequest]) -> Result<()> {
        let authorizer = self.authorizer().await?;
        for request in requests {
            let decision = authorizer.decide(caller, request);
            if !decision.allowed {
                return Err(Error::AccessDenied(denial(caller, request, &decision)));
            }
        }
        Ok(())
    }

    /// Puts a new version. `expected_version` is the version the caller read: if another
    /// version was put since, the call is refused (ConflictException) and nothing changes.
    pub async fn put(
        &self,
        caller: &Caller,
        document: AccessDocument,
        expected_version: u64,
    ) -> Result<StoredAccess> {
        self.compile(&document)?;
        let current = self.current().await?;
        if current.version != expected_version {
            return Err(Error::conflict(format!(
                "expectedVersion: the access policy is at version {}, not {expected_version}; read it again and reapply your change",
                current.version
            )));
        }
        if current.document == document {
            return Ok(current);
        }
        let stored = StoredAccess {
            version: current.version + 1,
            document,
            updated_by: Some(caller.initiator()),
            updated_at: Timestamp::now().0,
        };
        match self.store.put(stored.clone()).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed) => {
                return Err(Error::conflict(format!(
                    "expectedVersion: another caller put version {} first; read it again and reapply your change",
                    stored.version
                )));
            }
            Err(other) => return Err(other.into()),
        }
        *self.cache.lock().unwrap() = None;
        Ok(stored)
    }

    /// The version decisions are made with now (for the log and the banner).
    pub fn cached_version(&self) -> Option<u64> {
        self.cache.lock().unwrap().as_ref().map(|c| c.version)
    }
}

/// IAM's wording, so that scripts that match on it keep working.
pub fn denial(caller: &Caller, request: &AccessRequest, decision: &Decision) -> String {
    let why = if decision.policies.is_empty() {
        "no policy allows it".to_string()
    } else {
        format!("denied by policy {}", decision.policies.join(", "))
    };
    format!(
        "User: {} is not authorized to perform: proton:{} on resource: {} ({why})",
        caller.principal.arn, request.action, request.resource.arn
    )
}

/// Offline: what `document` decides for each request (`paved access check`).
pub fn check_offline(
    document: &AccessDocument,
    actions: &[&str],
    caller: &Caller,
    requests: &[AccessRequest],
) -> std::result::Result<Vec<Decision>, String> {
    let authorizer = Authorizer::compile(document, actions)?;
    Ok(requests
        .iter()
        .map(|r| authorizer.decide(caller, r))
        .collect())
}
