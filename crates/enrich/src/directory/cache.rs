//! A TTL cache in front of a [`TenantSource`], kept across invocations of a warm Lambda.
//!
//! Found tenants are kept for one TTL, unknown ones for a shorter TTL (so a tenant added to the
//! directory is accepted soon, while a flood of records for an unknown id costs one lookup per
//! TTL, not one per batch). The clock is a parameter so tests can move time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{DirectoryError, TenantSource};

/// Entries kept at most. Past it, expired entries are evicted first, then everything: the cache
/// stays bounded whatever ids the records carry.
pub const MAX_CACHED_TENANTS: usize = 10_000;

/// Monotonic time, injectable.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[derive(Debug, Clone)]
struct Entry {
    /// `None`: the directory does not know this tenant.
    name: Option<Arc<str>>,
    expires: Instant,
}

/// A [`TenantSource`] with answers remembered for a while.
#[derive(Debug)]
pub struct CachedDirectory<S, C = SystemClock> {
    source: S,
    clock: C,
    ttl: Duration,
    unknown_ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl<S: TenantSource> CachedDirectory<S, SystemClock> {
    pub fn new(source: S, ttl: Duration, unknown_ttl: Duration) -> Self {
        Self::with_clock(source, ttl, unknown_ttl, SystemClock)
    }
}

impl<S: TenantSource, C: Clock> CachedDirectory<S, C> {
    pub fn with_clock(source: S, ttl: Duration, unknown_ttl: Duration, clock: C) -> Self {
        CachedDirectory {
            source,
            clock,
            ttl,
            unknown_ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    /// Names for `ids` (distinct), asking the source only for ids not freshly cached. Known ids
    /// are in the answer; unknown ones are not.
    pub async fn resolve(&self, ids: &[&str]) -> Result<HashMap<String, Arc<str>>, DirectoryError> {
        let mut names = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let now = self.clock.now();
            let entries = self.entries();
            for &id in ids {
                match entries.get(id) {
                    Some(entry) if entry.expires > now => {
                        if let Some(name) = &entry.name {
                            names.insert(id.to_owned(), Arc::clone(name));
                        }
                    }
                    _ => missing.push(id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(names);
        }

        let found = self.source.lookup_many(&missing).await?;

        let now = self.clock.now();
        let mut entries = self.entries();
        if entries.len() + missing.len() > MAX_CACHED_TENANTS {
            entries.retain(|_, entry| entry.expires > now);
            if entries.len() + missing.len() > MAX_CACHED_TENANTS {
                entries.clear();
            }
        }
        for id in missing {
            let name: Option<Arc<str>> = found.get(id).map(|name| Arc::from(name.as_str()));
            let ttl = if name.is_some() {
                self.ttl
            } else {
                self.unknown_ttl
            };
            let expires = now.checked_add(ttl).unwrap_or(now);
            if let Some(name) = &name {
                names.insert(id.to_owned(), Arc::clone(name));
            }
            if entries.len() < MAX_CACHED_TENANTS {
                entries.insert(id.to_owned(), Entry { name, expires });
            }
        }
        Ok(names)
    }

    /// How many tenants are cached (fresh or not).
    pub fn cached(&self) -> usize {
        self.entries().len()
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panic elsewhere cannot leave the map half-updated in a way that matters here.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    /// A clock that moves only when told.
    struct ManualClock {
        start: Instant,
        offset_ms: AtomicU64,
    }

    impl ManualClock {
        fn new() -> Self {
            ManualClock {
                start: Instant::now(),
                offset_ms: AtomicU64::new(0),
            }
        }
        fn advance(&self, by: Duration) {
            self.offset_ms.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
        }
    }

    impl Clock for &ManualClock {
        fn now(&self) -> Instant {
            self.start + Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
        }
    }

    /// A source that records what it was asked and can be made to fail.
    #[derive(Default)]
    struct FakeSource {
        names: HashMap<String, String>,
        calls: AtomicUsize,
        asked: Mutex<Vec<Vec<String>>>,
        failing: std::sync::atomic::AtomicBool,
    }

    impl TenantSource for FakeSource {
        async fn lookup_many(&self, ids: &[&str]) -> Result<HashMap<String, String>, DirectoryError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.asked
                .lock()
                .unwrap()
                .push(ids.iter().map(|s| s.to_string()).collect());
            if self.failing.load(Ordering::SeqCst) {
                return Err(DirectoryError::Lookup {
                    table: "t".into(),
                    source: "outage".into(),
                });
            }
            Ok(ids
                .iter()
                .filter_map(|id| self.names.get(*id).map(|n| (id.to_string(), n.clone())))
                .collect())
        }
    }

    fn source() -> FakeSource {
        FakeSource {
            names: [("acme".to_string(), "Acme".to_string())].into(),
            ..Default::default()
        }
    }

    const TTL: Duration = Duration::from_secs(300);
    const UNKNOWN_TTL: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn known_tenants_are_served_from_cache_until_their_ttl_ends() {
        let clock = ManualClock::new();
        let cache = CachedDirectory::with_clock(source(), TTL, UNKNOWN_TTL, &clock);
        let names = cache.resolve(&["acme"]).await.unwrap();
        assert_eq!(names.get("acme").map(|n| &**n), Some("Acme"));
        clock.advance(TTL - Duration::from_secs(1));
        assert!(cache.resolve(&["acme"]).await.unwrap().contains_key("acme"));
        assert_eq!(cache.source().calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(1));
        assert!(cache.resolve(&["acme"]).await.unwrap().contains_key("acme"));
        assert_eq!(cache.source().calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn unknown_tenants_are_cached_for_the_shorter_ttl() {
        let clock = ManualClock::new();
        let cache = CachedDirectory::with_clock(source(), TTL, UNKNOWN_TTL, &clock);
        assert!(cache.resolve(&["ghost"]).await.unwrap().is_empty());
        clock.advance(UNKNOWN_TTL - Duration::from_secs(1));
        assert!(cache.resolve(&["ghost"]).await.unwrap().is_empty());
        assert_eq!(cache.source().calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(1));
        cache.resolve(&["ghost"]).await.unwrap();
        assert_eq!(cache.source().calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn only_uncached_ids_are_asked_for() {
        let clock = ManualClock::new();
        let cache = CachedDirectory::with_clock(source(), TTL, UNKNOWN_TTL, &clock);
        cache.resolve(&["acme"]).await.unwrap();
        cache.resolve(&["acme", "ghost"]).await.unwrap();
        let asked = cache.source().asked.lock().unwrap().clone();
        assert_eq!(asked, vec![vec!["acme".to_string()], vec!["ghost".to_string()]]);
    }

    #[tokio::test]
    async fn a_failing_source_is_an_error_and_caches_nothing() {
        let clock = ManualClock::new();
        let cache = CachedDirectory::with_clock(source(), TTL, UNKNOWN_TTL, &clock);
        cache.source().failing.store(true, Ordering::SeqCst);
        assert!(cache.resolve(&["acme"]).await.is_err());
        assert_eq!(cache.cached(), 0);
        cache.source().failing.store(false, Ordering::SeqCst);
        assert!(cache.resolve(&["acme"]).await.unwrap().contains_key("acme"));
    }

    #[tokio::test]
    async fn the_cache_stays_bounded_under_a_flood_of_ids() {
        let clock = ManualClock::new();
        let cache = CachedDirectory::with_clock(source(), TTL, UNKNOWN_TTL, &clock);
        let ids: Vec<String> = (0..MAX_CACHED_TENANTS + 500)
            .map(|i| format!("tenant-{i}"))
            .collect();
        for chunk in ids.chunks(3000) {
            let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
            cache.resolve(&chunk).await.unwrap();
            assert!(cache.cached() <= MAX_CACHED_TENANTS);
        }
    }
}
