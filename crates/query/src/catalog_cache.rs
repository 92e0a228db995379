//! Each tenant's catalog, kept for a while per container: the catalog is read before every
//! request (to check the request against it), and reading it costs the store one or two
//! queries, so the engines that pay per round trip (Timestream, InfluxDB) reuse it. New metrics
//! and columns show up once an entry expires.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::catalog::Catalog;

/// How long a tenant's catalog is reused.
pub const CATALOG_TTL: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct CatalogCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Catalog)>>,
}

impl Default for CatalogCache {
    fn default() -> Self {
        CatalogCache::new(CATALOG_TTL)
    }
}

impl CatalogCache {
    pub fn new(ttl: Duration) -> Self {
        CatalogCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's catalog, if one was kept less than the TTL ago.
    pub fn get(&self, tenant: &str) -> Option<Catalog> {
        let entries = self.entries.lock().ok()?;
        let (at, catalog) = entries.get(tenant)?;
        (at.elapsed() < self.ttl).then(|| catalog.clone())
    }

    /// Keeps the tenant's catalog from now.
    pub fn put(&self, tenant: &str, catalog: &Catalog) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(tenant.to_owned(), (Instant::now(), catalog.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::MetricSchema;

    #[test]
    fn an_entry_is_kept_per_tenant_until_it_expires() {
        let mut catalog = Catalog::default();
        catalog.metrics.insert("clicks".into(), MetricSchema::default());
        let cache = CatalogCache::default();
        assert_eq!(cache.get("acme"), None);
        cache.put("acme", &catalog);
        assert_eq!(cache.get("acme"), Some(catalog.clone()));
        assert_eq!(cache.get("ACME"), None, "tenants are case-sensitive");
        let expired = CatalogCache::new(Duration::ZERO);
        expired.put("acme", &catalog);
        assert_eq!(expired.get("acme"), None);
    }
}
