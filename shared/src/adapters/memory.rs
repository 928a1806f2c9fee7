//! In-memory adapters with the same atomicity and conditions as the AWS ones, for fast tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::names::ResourceName;
use crate::domain::template::{Template, TemplateKind, TemplateVersion, VersionNumber};
use crate::ports::{
    BlobError, BundleStore, CatalogStore, CatalogWrite, IdempotencyRecord, Page, PageRequest,
    StoreError, TemplateWrite, VersionWrite,
};

type VersionKey = (TemplateKind, String, VersionNumber);

#[derive(Default)]
struct Tables {
    templates: BTreeMap<(TemplateKind, String), Template>,
    versions: BTreeMap<VersionKey, TemplateVersion>,
    tokens: HashMap<(String, String), IdempotencyRecord>,
}

#[derive(Default)]
pub struct MemoryCatalogStore {
    tables: Mutex<Tables>,
}

impl MemoryCatalogStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave a half-applied write: writes are checked
        // before any change is made.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn page_of<T: Clone>(items: Vec<(String, T)>, page: &PageRequest) -> Result<Page<T>, StoreError> {
    let limit = page.limit.unwrap_or(100).max(1) as usize;
    let start = match &page.cursor {
        None => 0,
        Some(cursor) => items
            .iter()
            .position(|(key, _)| key.as_str() > cursor.as_str())
            .unwrap_or(items.len()),
    };
    if let Some(cursor) = &page.cursor
        && !cursor.starts_with("mem:")
    {
        return Err(StoreError::BadCursor);
    }
    let slice: Vec<(String, T)> = items.into_iter().skip(start).take(limit + 1).collect();
    let more = slice.len() > limit;
    let taken: Vec<(String, T)> = slice.into_iter().take(limit).collect();
    let cursor = if more {
        taken.last().map(|(key, _)| key.clone())
    } else {
        None
    };
    Ok(Page {
        items: taken.into_iter().map(|(_, item)| item).collect(),
        cursor,
    })
}

#[async_trait]
impl CatalogStore for MemoryCatalogStore {
    async fn template(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
    ) -> Result<Option<Template>, StoreError> {
        Ok(self
            .lock()
            .templates
            .get(&(kind, name.to_string()))
            .cloned())
    }

    async fn templates(
        &self,
        kind: TemplateKind,
        page: PageRequest,
    ) -> Result<Page<Template>, StoreError> {
        let items = self
            .lock()
            .templates
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, name), t)| (format!("mem:{name}"), t.clone()))
            .collect();
        page_of(items, &page)
    }

    async fn version(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        number: VersionNumber,
    ) -> Result<Option<TemplateVersion>, StoreError> {
        Ok(self
            .lock()
            .versions
            .get(&(kind, name.to_string(), number))
            .cloned())
    }

    async fn versions(
        &self,
        kind: TemplateKind,
        name: &ResourceName,
        major: Option<u64>,
        page: PageRequest,
    ) -> Result<Page<TemplateVersion>, StoreError> {
        let items = self
            .lock()
            .versions
            .iter()
            .filter(|((k, n, number), _)| {
                *k == kind && n == name.as_str() && major.is_none_or(|m| number.major == m)
            })
            .map(|((_, _, number), v)| {
                (
                    format!("mem:{:020}.{:020}", number.major, number.minor),
                    v.clone(),
                )
            })
            .collect();
        page_of(items, &page)
    }

    async fn idempotency_record(
        &self,
        scope: &str,
        token: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self
            .lock()
            .tokens
            .get(&(scope.to_string(), token.to_string()))
            .cloned())
    }

    async fn write(&self, write: CatalogWrite) -> Result<(), StoreError> {
        let mut tables = self.lock();
        // Check every condition first, then apply: all or nothing.
        if let Some(template_write) = &write.template {
            let (kind, name, expected) = match template_write {
                TemplateWrite::Create(t) => (t.kind, t.name.to_string(), None),
                TemplateWrite::Replace {
                    template,
                    expected_rev,
                } => (
                    template.kind,
                    template.name.to_string(),
                    Some(*expected_rev),
                ),
                TemplateWrite::Delete {
                    kind,
                    name,
                    expected_rev,
                } => (*kind, name.to_string(), Some(*expected_rev)),
            };
            let current = tables.templates.get(&(kind, name)).map(|t| t.rev);
            if current != expected {
                return Err(StoreError::ConditionFailed);
            }
        }
        if let Some(version_write) = &write.version {
            let (version, expected) = match version_write {
                VersionWrite::Create(v) => (v, None),
                VersionWrite::Replace {
                    version,
                    expected_rev,
                }
                | VersionWrite::Delete {
                    version,
                    expected_rev,
                } => (version, Some(*expected_rev)),
            };
            let key = (
                version.kind,
                version.template_name.to_string(),
                version.number,
            );
            if tables.versions.get(&key).map(|v| v.rev) != expected {
                return Err(StoreError::ConditionFailed);
            }
        }
        if let Some(record) = &write.idempotency
            && tables
                .tokens
                .contains_key(&(record.scope.clone(), record.token.clone()))
        {
            return Err(StoreError::ConditionFailed);
        }
        match write.template {
            Some(TemplateWrite::Create(t)) | Some(TemplateWrite::Replace { template: t, .. }) => {
                tables.templates.insert((t.kind, t.name.to_string()), t);
            }
            Some(TemplateWrite::Delete { kind, name, .. }) => {
                tables.templates.remove(&(kind, name.to_string()));
            }
            None => {}
        }
        match write.version {
            Some(VersionWrite::Create(v)) | Some(VersionWrite::Replace { version: v, .. }) => {
                tables
                    .versions
                    .insert((v.kind, v.template_name.to_string(), v.number), v);
            }
            Some(VersionWrite::Delete { version, .. }) => {
                tables.versions.remove(&(
                    version.kind,
                    version.template_name.to_string(),
                    version.number,
                ));
            }
            None => {}
        }
        if let Some(record) = write.idempotency {
            tables
                .tokens
                .insert((record.scope.clone(), record.token.clone()), record);
        }
        Ok(())
    }
}

/// Objects by `(bucket, key)`; `keep` writes to the bucket named at construction.
pub struct MemoryBundleStore {
    own_bucket: String,
    objects: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl MemoryBundleStore {
    pub fn new(own_bucket: impl Into<String>) -> Self {
        Self {
            own_bucket: own_bucket.into(),
            objects: Mutex::default(),
        }
    }

    pub fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((bucket.to_string(), key.to_string()), bytes);
    }

    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        let mut keys: Vec<String> = objects
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, k)| k.clone())
            .collect();
        keys.sort();
        keys
    }
}

#[async_trait]
impl BundleStore for MemoryBundleStore {
    async fn fetch(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Vec<u8>, BlobError> {
        let objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = objects
            .get(&(bucket.to_string(), key.to_string()))
            .ok_or_else(|| BlobError::NotFound {
                bucket: bucket.into(),
                key: key.into(),
            })?;
        if bytes.len() as u64 > max_bytes {
            return Err(BlobError::TooLarge {
                bucket: bucket.into(),
                key: key.into(),
                size: bytes.len() as u64,
                max: max_bytes,
            });
        }
        Ok(bytes.clone())
    }

    async fn keep(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.put(&self.own_bucket.clone(), key, bytes);
        Ok(())
    }

    async fn discard(&self, key: &str) -> Result<(), BlobError> {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(self.own_bucket.clone(), key.to_string()));
        Ok(())
    }
}
