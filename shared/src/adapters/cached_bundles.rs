//! Kept bundles, read once per process: a kept bundle's key names one immutable archive (it is
//! written once when its version registers, and removed with the version), so a warm function
//! that deploys a fleet on one version reads it from S3 once, not once per target and step.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::ports::{BlobError, BundleStore};

/// Archives kept in memory at most (the oldest read goes first).
const CAPACITY: usize = 32;

/// The archives read, by key, and the keys in the order they were read.
type Kept = (HashMap<String, Arc<Vec<u8>>>, VecDeque<String>);

/// A bundle store that keeps the kept bundles it read.
pub struct CachedBundles {
    inner: Arc<dyn BundleStore>,
    kept: Mutex<Kept>,
}

impl CachedBundles {
    pub fn new(inner: Arc<dyn BundleStore>) -> Self {
        Self {
            inner,
            kept: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl BundleStore for CachedBundles {
    async fn fetch(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Vec<u8>, BlobError> {
        self.inner.fetch(bucket, key, max_bytes).await
    }

    async fn keep(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.inner.keep(key, bytes).await
    }

    async fn discard(&self, key: &str) -> Result<(), BlobError> {
        {
            let mut kept = self.lock();
            kept.0.remove(key);
            kept.1.retain(|k| k != key);
        }
        self.inner.discard(key).await
    }

    async fn read_kept(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        // Only bundles are immutable under their key; other kept objects (a deployment's
        // rendered template, written again if it is planned again) are read through.
        if key.starts_with(crate::domain::bundle::RENDERED_PREFIX) {
            return self.inner.read_kept(key).await;
        }
        if let Some(bytes) = self.lock().0.get(key) {
            return Ok(bytes.as_ref().clone());
        }
        let bytes = self.inner.read_kept(key).await?;
        let mut kept = self.lock();
        if !kept.0.contains_key(key) {
            kept.0.insert(key.to_string(), Arc::new(bytes.clone()));
            kept.1.push_back(key.to_string());
            while kept.1.len() > CAPACITY {
                if let Some(oldest) = kept.1.pop_front() {
                    kept.0.remove(&oldest);
                }
            }
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts reads of kept bundles; every key holds its own name.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    #[async_trait]
    impl BundleStore for Counting {
        async fn fetch(&self, _: &str, _: &str, _: u64) -> Result<Vec<u8>, BlobError> {
            Ok(vec![])
        }
        async fn keep(&self, _: &str, _: Vec<u8>) -> Result<(), BlobError> {
            Ok(())
        }
        async fn discard(&self, _: &str) -> Result<(), BlobError> {
            Ok(())
        }
        async fn read_kept(&self, key: &str) -> Result<Vec<u8>, BlobError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(key.as_bytes().to_vec())
        }
    }

    #[tokio::test]
    async fn a_kept_bundle_is_read_once_until_it_is_discarded_or_pushed_out() {
        let counting = Arc::new(Counting::default());
        let cached = CachedBundles::new(counting.clone());
        for _ in 0..3 {
            assert_eq!(cached.read_kept("bundles/a").await.unwrap(), b"bundles/a");
        }
        assert_eq!(counting.0.load(Ordering::SeqCst), 1);
        cached.discard("bundles/a").await.unwrap();
        cached.read_kept("bundles/a").await.unwrap();
        assert_eq!(counting.0.load(Ordering::SeqCst), 2);
        for i in 0..CAPACITY {
            cached.read_kept(&format!("bundles/{i}")).await.unwrap();
        }
        let before = counting.0.load(Ordering::SeqCst);
        cached.read_kept("bundles/a").await.unwrap();
        assert_eq!(
            counting.0.load(Ordering::SeqCst),
            before + 1,
            "the oldest was pushed out"
        );
    }
}
