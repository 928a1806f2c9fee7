//! Deciding calls, and keeping the access document: versioned, put only by callers allowed to,
//! and read by every API instance within [`CACHE_SECONDS`] of a change.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Error, Result};
use crate::domain::access::{
    AccessDocument, AccessRequest, Authorizer, Caller, Decision, Principal, StoredAccess,
};
use crate::domain::names::Timestamp;
use crate::ports::{AccessStore, PrincipalDirectory, StoreError};

/// How long an API instance decides with the document it last read before reading it again.
pub const CACHE_SECONDS: u64 = 10;
/// The most principals whose tags an API instance keeps at once.
const PRINCIPAL_TAGS_KEPT: usize = 10_000;

type TagCache = HashMap<String, (Instant, BTreeMap<String, String>)>;

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
    /// Where a verified principal's tags come from when groups match on them (IAM, in AWS);
    /// without one, the caller's own (the local identities') are used.
    directory: Option<Arc<dyn PrincipalDirectory>>,
    principal_tags: Mutex<TagCache>,
    principal_tags_ttl: Duration,
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
            directory: None,
            principal_tags: Mutex::new(HashMap::new()),
            principal_tags_ttl: Duration::ZERO,
        }
    }

    /// Reads principals' tags from `directory` whenever a group of the document matches on
    /// principal tags (and only then: no IAM call for documents that do not), keeping each
    /// principal's for `ttl`.
    pub fn with_directory(mut self, directory: Arc<dyn PrincipalDirectory>, ttl: Duration) -> Self {
        self.directory = Some(directory);
        self.principal_tags_ttl = ttl;
        self
    }

    /// The principal's tags from the directory, kept for the directory's time. A failed read
    /// fails the call: deciding without tags could skip a `forbid` for a tagged group.
    async fn tags_of(&self, principal: &Principal) -> Result<BTreeMap<String, String>> {
        let Some(directory) = &self.directory else {
            return Ok(principal.tags.clone());
        };
        let ttl = self.principal_tags_ttl;
        if let Some((read_at, tags)) = self.principal_tags.lock().unwrap().get(&principal.arn)
            && read_at.elapsed() < ttl
        {
            return Ok(tags.clone());
        }
        let tags = directory.tags(principal).await?;
        let mut kept = self.principal_tags.lock().unwrap();
        if kept.len() >= PRINCIPAL_TAGS_KEPT {
            kept.retain(|_, (read_at, _)| read_at.elapsed() < ttl);
            if kept.len() >= PRINCIPAL_TAGS_KEPT {
                kept.clear();
            }
        }
        kept.insert(principal.arn.clone(), (Instant::now(), tags.clone()));
        Ok(tags)
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
        let tagged;
        let caller = if authorizer.matches_principal_tags() && self.directory.is_some() {
            let mut with_tags = caller.clone();
            with_tags.principal.tags = self.tags_of(&caller.principal).await?;
            tagged = with_tags;
            &tagged
        } else {
            caller
        };
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::domain::access::{Group, Resource, ResourceKind};

    /// IAM as a map of principal ARN to tags, counting reads; `None` fails every read.
    struct Directory {
        tags: Option<BTreeMap<String, String>>,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl PrincipalDirectory for Directory {
        async fn tags(
            &self,
            _principal: &Principal,
        ) -> Result<BTreeMap<String, String>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.tags
                .clone()
                .ok_or_else(|| StoreError::Backend("IAM is down".into()))
        }
    }

    fn directory(tags: Option<&[(&str, &str)]>) -> Arc<Directory> {
        Arc::new(Directory {
            tags: tags.map(|t| {
                t.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            reads: AtomicUsize::new(0),
        })
    }

    /// Anyone tagged team=platform may create environment templates.
    fn by_tag() -> AccessDocument {
        AccessDocument {
            groups: vec![Group {
                name: "platform".into(),
                principals: vec![],
                principal_tags: BTreeMap::from([("team".into(), "platform".into())]),
            }],
            policies: r#"permit (principal in Paved::Group::"platform", action, resource);"#.into(),
        }
    }

    fn caller() -> Caller {
        // As API Gateway hands it over: an ARN, no tags.
        Caller {
            principal: Principal::new("arn:aws:sts::123456789012:assumed-role/Deployer/ci"),
            source_ip: None,
            request_id: "r".into(),
        }
    }

    fn request() -> Vec<AccessRequest> {
        vec![AccessRequest::new(
            "CreateEnvironmentTemplate",
            Resource::new(
                ResourceKind::EnvironmentTemplate,
                "arn:aws:proton:us-east-1:123456789012:environment-template/vpc",
            ),
        )]
    }

    fn access(document: AccessDocument, directory: Arc<Directory>) -> Access {
        Access::new(
            Arc::new(MemoryStore::default()),
            document,
            crate::api::authz::actions(),
        )
        .with_directory(directory, Duration::from_secs(60))
    }

    #[tokio::test]
    async fn groups_by_principal_tag_match_on_the_tags_iam_holds_read_once_per_principal() {
        let iam = directory(Some(&[("team", "platform")]));
        let access = access(by_tag(), iam.clone());
        access.check(&caller(), &request()).await.unwrap();
        access.check(&caller(), &request()).await.unwrap();
        assert_eq!(iam.reads.load(Ordering::SeqCst), 1, "kept between calls");

        let other = directory(Some(&[("team", "web")]));
        let err = self::access(by_tag(), other)
            .check(&caller(), &request())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::AccessDenied(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_failed_tag_read_fails_the_call_and_documents_without_tag_groups_never_read() {
        let err = access(by_tag(), directory(None))
            .check(&caller(), &request())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Store(_)), "{err:?}");

        let iam = directory(None);
        let by_arn = AccessDocument {
            groups: vec![Group::new(
                "platform",
                vec!["arn:aws:iam::123456789012:role/Deployer".into()],
            )],
            policies: by_tag().policies,
        };
        access(by_arn, iam.clone())
            .check(&caller(), &request())
            .await
            .unwrap();
        assert_eq!(iam.reads.load(Ordering::SeqCst), 0);
    }
}
