//! Answers kept in the container for a short time, per tenant and normalized request, so a
//! dashboard refreshing (or many viewers of one tenant) does not rerun the same query; plus
//! the HTTP validators (`ETag`) that let a browser skip the body too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// A cached answer: its body and entity tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub body: Bytes,
    pub etag: String,
}

/// A bounded map with a time to live. Keys hold the tenant, so one tenant never reads
/// another's entry.
#[derive(Debug)]
pub struct ResponseCache {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<(String, String), (Instant, Cached)>>,
}

/// The entity tag of a body: a digest, so equal answers have equal tags across containers.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

impl ResponseCache {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        ResponseCache {
            ttl,
            max_entries,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn get(&self, tenant: &str, key: &str) -> Option<Cached> {
        if self.max_entries == 0 {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let (at, cached) = entries.get(&(tenant.to_owned(), key.to_owned()))?;
        (at.elapsed() < self.ttl).then(|| cached.clone())
    }

    /// Stores `body` and returns it with its tag. When full, expired entries go first, then
    /// the oldest.
    pub fn put(&self, tenant: &str, key: &str, body: Bytes) -> Cached {
        let cached = Cached {
            etag: etag(&body),
            body,
        };
        if self.max_entries == 0 {
            return cached;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.max_entries {
                let ttl = self.ttl;
                entries.retain(|_, (at, _)| at.elapsed() < ttl);
            }
            if entries.len() >= self.max_entries {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    entries.remove(&k);
                }
            }
            entries.insert(
                (tenant.to_owned(), key.to_owned()),
                (Instant::now(), cached.clone()),
            );
        }
        cached
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
