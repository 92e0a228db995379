//! One database (InfluxDB 3) or bucket (InfluxDB 2) per tenant, created on first write with the
//! configured retention. Create calls of this process are spaced by at least the configured
//! interval, one at a time; an existing database or bucket (another writer was first) is
//! success. Known names are remembered for the life of the container.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::Method;
use serde_json::json;

use super::Connection;
use super::api::{ApiVersion, param};
use super::http::HttpResponse;
use crate::port::{Deadline, StoreError};
use crate::timestream::classify::bounded;

#[derive(Debug, Default)]
pub(super) struct Tenants {
    known: Mutex<HashSet<String>>,
    /// The v2 organization's id, looked up once.
    org_id: Mutex<Option<String>>,
    last_create: tokio::sync::Mutex<Option<Instant>>,
    /// The v3 server refused `retention_period` (an InfluxDB 3 release before retention
    /// periods): databases are created without it rather than not at all.
    no_retention: AtomicBool,
}

/// What a create call's answer means.
enum Created {
    Yes,
    Again(String),
}

impl Tenants {
    fn is_known(&self, db: &str) -> bool {
        self.known.lock().map(|k| k.contains(db)).unwrap_or(false)
    }

    pub(super) fn forget(&self, db: &str) {
        if let Ok(mut k) = self.known.lock() {
            k.remove(db);
        }
    }

    fn remember(&self, db: &str) {
        if let Ok(mut k) = self.known.lock() {
            k.insert(db.to_owned());
        }
    }

    /// Makes sure the tenant's database or bucket exists.
    pub(super) async fn ensure(
        &self,
        conn: &Connection,
        db: &str,
        deadline: Deadline,
    ) -> Result<(), StoreError> {
        if self.is_known(db) {
            return Ok(());
        }
        // One create at a time: concurrent writers of a new tenant wait here, and find it known
        // once the first one has created it.
        let mut last_create = self.last_create.lock().await;
        if self.is_known(db) {
            return Ok(());
        }
        let mut attempt = 0u32;
        loop {
            if let Some(last) = *last_create {
                let ready = last + conn.settings.create_interval;
                if ready >= deadline {
                    return Err(StoreError::DeadlineExceeded(format!(
                        "creating the database of {db}"
                    )));
                }
                tokio::time::sleep_until(ready.into()).await;
            }
            let result = self.create(conn, db, deadline).await;
            *last_create = Some(Instant::now());
            match result? {
                Created::Yes => {
                    tracing::info!(database = db, api = %conn.endpoint.api, "Created the tenant's database.");
                    self.remember(db);
                    return Ok(());
                }
                Created::Again(cause) => match conn.settings.backoff.delay(attempt, Instant::now(), deadline)
                {
                    Some(delay) => {
                        attempt += 1;
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(StoreError::Unavailable(cause)),
                },
            }
        }
    }

    async fn create(&self, conn: &Connection, db: &str, deadline: Deadline) -> Result<Created, StoreError> {
        let days = conn.settings.retention_days;
        let (uri, body) = match conn.endpoint.api {
            ApiVersion::V3 => {
                let mut body = json!({ "db": db });
                if days > 0 && !self.no_retention.load(Ordering::Relaxed) {
                    body["retention_period"] = json!(format!("{days}d"));
                }
                (conn.endpoint.create_database_uri(), body)
            }
            ApiVersion::V2 => {
                let org_id = match self.org_id(conn, deadline).await? {
                    Ok(id) => id,
                    Err(again) => return Ok(again),
                };
                let rules = if days > 0 {
                    json!([{ "type": "expire", "everySeconds": u64::from(days) * 86_400 }])
                } else {
                    json!([])
                };
                (
                    conn.endpoint.create_bucket_uri(),
                    json!({ "orgID": org_id, "name": db, "retentionRules": rules }),
                )
            }
        };
        let uri = uri.map_err(|e| StoreError::Refused(e.to_string()))?;
        let response = conn
            .call(Method::POST, &uri, Some(Bytes::from(body.to_string())), deadline)
            .await;
        let response = match response {
            Ok(r) => r,
            Err(cause) => return Ok(Created::Again(cause)),
        };
        let text = bounded(&String::from_utf8_lossy(&response.body));
        let sent_retention = body.get("retention_period").is_some();
        match response.status {
            400 | 422 if sent_retention && text.to_ascii_lowercase().contains("retention") => {
                tracing::warn!(database = db, answer = %text, "The server refused a retention period; creating databases without one.");
                self.no_retention.store(true, Ordering::Relaxed);
                Ok(Created::Again(format!("retention refused: {text}")))
            }
            200..=299 => Ok(Created::Yes),
            // v3 answers 409 for an existing database; v2 answers 422 "bucket with name … already exists".
            409 => Ok(Created::Yes),
            400 | 422 if text.contains("already exists") => Ok(Created::Yes),
            429 | 500..=599 => Ok(Created::Again(format!("HTTP {}: {text}", response.status))),
            status => Err(StoreError::Refused(format!(
                "creating the database of {db}: HTTP {status}: {text}"
            ))),
        }
    }

    /// The v2 organization's id; `Err` is a transient failure to retry.
    async fn org_id(
        &self,
        conn: &Connection,
        deadline: Deadline,
    ) -> Result<Result<String, Created>, StoreError> {
        if let Some(id) = self.org_id.lock().ok().and_then(|g| g.clone()) {
            return Ok(Ok(id));
        }
        let org = conn.endpoint.org.clone().unwrap_or_default();
        let uri = conn
            .endpoint
            .org_lookup_uri()
            .map_err(|e| StoreError::Refused(e.to_string()))?;
        let response: HttpResponse = match conn.call(Method::GET, &uri, None, deadline).await {
            Ok(r) => r,
            Err(cause) => return Ok(Err(Created::Again(cause))),
        };
        match response.status {
            200 => {}
            429 | 500..=599 => {
                return Ok(Err(Created::Again(format!(
                    "HTTP {} looking up the organization",
                    response.status
                ))));
            }
            status => {
                return Err(StoreError::Refused(format!(
                    "looking up the organization {}: HTTP {status}",
                    param(&org)
                )));
            }
        }
        let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
        let id = json["orgs"]
            .as_array()
            .and_then(|orgs| {
                orgs.iter()
                    .find(|o| o["name"].as_str() == Some(org.as_str()))
                    .or(orgs.first())
            })
            .and_then(|o| o["id"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Refused(format!("the organization {org:?} was not found")))?;
        if let Ok(mut g) = self.org_id.lock() {
            *g = Some(id.clone());
        }
        Ok(Ok(id))
    }
}
