//! Tables on demand: check, then create (never create blindly: moto wipes a table that is
//! created twice, and real Timestream answers `ConflictException`), with the create calls of
//! this process spaced by at least the account's CRUD rate (1 call per second).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_timestreamwrite::Client;
use aws_sdk_timestreamwrite::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_timestreamwrite::types::{MagneticStoreWriteProperties, RetentionProperties};

use super::TimestreamSettings;
use super::classify::bounded;
use crate::port::{Deadline, StoreError};

/// Tables known to exist, and the time of this process's last create call.
#[derive(Debug, Default)]
pub(super) struct Tables {
    known: Mutex<HashSet<String>>,
    last_create: tokio::sync::Mutex<Option<Instant>>,
}

/// The class of a failed control-plane call.
enum CallFailure {
    NotFound,
    Conflict,
    Transient(String),
    Refused(String),
}

fn call_failure<E, R>(err: &SdkError<E, R>) -> CallFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or("unknown");
            let text = bounded(&format!("{code}: {}", ctx.err().message().unwrap_or("")));
            match code {
                "ResourceNotFoundException" => CallFailure::NotFound,
                "ConflictException" => CallFailure::Conflict,
                c if c.contains("Throttl")
                    || c.contains("InternalServer")
                    || c.contains("InvalidEndpoint") =>
                {
                    CallFailure::Transient(text)
                }
                _ => CallFailure::Refused(text),
            }
        }
        other => CallFailure::Transient(bounded(&format!("{other:?}"))),
    }
}

impl Tables {
    pub(super) fn is_known(&self, table: &str) -> bool {
        self.known.lock().map(|k| k.contains(table)).unwrap_or(false)
    }

    pub(super) fn forget(&self, table: &str) {
        if let Ok(mut k) = self.known.lock() {
            k.remove(table);
        }
    }

    fn remember(&self, table: &str) {
        if let Ok(mut k) = self.known.lock() {
            k.insert(table.to_owned());
        }
    }

    /// Makes sure `table` exists in the configured database.
    pub(super) async fn ensure(
        &self,
        client: &Client,
        settings: &TimestreamSettings,
        table: &str,
        deadline: Deadline,
    ) -> Result<(), StoreError> {
        if self.is_known(table) {
            return Ok(());
        }
        // One check-and-create at a time: concurrent writers of a new tenant wait here, and
        // find the table known once the first one has created it.
        let mut last_create = self.last_create.lock().await;
        if self.is_known(table) {
            return Ok(());
        }
        let db = settings.database.as_str();
        if self.table_exists(client, settings, table, deadline).await? {
            self.remember(table);
            return Ok(());
        }
        if settings.table.create_database && !self.database_exists(client, settings, deadline).await? {
            self.create(&mut last_create, settings, deadline, "database", || {
                client.create_database().database_name(db).send()
            })
            .await
            .map_err(|e| match e {
                CreateError::NotFound => StoreError::Refused(format!("cannot create the database {db}")),
                CreateError::Store(e) => e,
            })?;
        }
        let retention = RetentionProperties::builder()
            .memory_store_retention_period_in_hours(settings.table.memory_retention_hours)
            .magnetic_store_retention_period_in_days(settings.table.magnetic_retention_days)
            .build()
            .map_err(|e| StoreError::Refused(e.to_string()))?;
        let magnetic = MagneticStoreWriteProperties::builder()
            .enable_magnetic_store_writes(true)
            .build()
            .map_err(|e| StoreError::Refused(e.to_string()))?;
        let created = self
            .create(&mut last_create, settings, deadline, "table", || {
                client
                    .create_table()
                    .database_name(db)
                    .table_name(table)
                    .retention_properties(retention.clone())
                    .magnetic_store_write_properties(magnetic.clone())
                    .send()
            })
            .await;
        match created {
            Ok(()) => {
                tracing::info!(database = db, table, "Created the tenant's table.");
                self.remember(table);
                Ok(())
            }
            Err(CreateError::NotFound) => Err(StoreError::DatabaseMissing(db.to_owned())),
            Err(CreateError::Store(e)) => Err(e),
        }
    }

    async fn table_exists(
        &self,
        client: &Client,
        settings: &TimestreamSettings,
        table: &str,
        deadline: Deadline,
    ) -> Result<bool, StoreError> {
        let mut attempt = 0;
        loop {
            let result = client
                .describe_table()
                .database_name(&settings.database)
                .table_name(table)
                .send()
                .await;
            match result.as_ref().map_err(call_failure) {
                Ok(_) => return Ok(true),
                Err(CallFailure::NotFound) => return Ok(false),
                Err(CallFailure::Conflict) => return Ok(true),
                Err(CallFailure::Refused(text)) => return Err(StoreError::Refused(text)),
                Err(CallFailure::Transient(text)) => {
                    wait(settings, &mut attempt, deadline, text).await?;
                }
            }
        }
    }

    async fn database_exists(
        &self,
        client: &Client,
        settings: &TimestreamSettings,
        deadline: Deadline,
    ) -> Result<bool, StoreError> {
        let mut attempt = 0;
        loop {
            let result = client
                .describe_database()
                .database_name(&settings.database)
                .send()
                .await;
            match result.as_ref().map_err(call_failure) {
                Ok(_) | Err(CallFailure::Conflict) => return Ok(true),
                Err(CallFailure::NotFound) => return Ok(false),
                Err(CallFailure::Refused(text)) => return Err(StoreError::Refused(text)),
                Err(CallFailure::Transient(text)) => wait(settings, &mut attempt, deadline, text).await?,
            }
        }
    }

    /// A create call, spaced from the previous one, retried while throttled. An existing
    /// resource (`ConflictException`, another writer was first) is success.
    async fn create<T, E, R, F, Fut>(
        &self,
        last_create: &mut Option<Instant>,
        settings: &TimestreamSettings,
        deadline: Deadline,
        what: &str,
        call: F,
    ) -> Result<(), CreateError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let mut attempt = 0;
        loop {
            if let Some(last) = *last_create {
                let ready = last + settings.create_interval;
                if ready >= deadline {
                    return Err(CreateError::Store(StoreError::DeadlineExceeded(format!(
                        "creating the {what}"
                    ))));
                }
                tokio::time::sleep_until(ready.into()).await;
            }
            let result = call().await;
            *last_create = Some(Instant::now());
            match result.as_ref().map_err(call_failure) {
                Ok(_) | Err(CallFailure::Conflict) => return Ok(()),
                Err(CallFailure::NotFound) => return Err(CreateError::NotFound),
                Err(CallFailure::Refused(text)) => return Err(CreateError::Store(StoreError::Refused(text))),
                Err(CallFailure::Transient(text)) => wait(settings, &mut attempt, deadline, text)
                    .await
                    .map_err(CreateError::Store)?,
            }
        }
    }
}

enum CreateError {
    NotFound,
    Store(StoreError),
}

/// Sleeps before the next retry, or gives up when the deadline would pass.
async fn wait(
    settings: &TimestreamSettings,
    attempt: &mut u32,
    deadline: Deadline,
    cause: String,
) -> Result<(), StoreError> {
    match settings.backoff.delay(*attempt, Instant::now(), deadline) {
        Some(delay) => {
            *attempt += 1;
            tokio::time::sleep(delay).await;
            Ok(())
        }
        None => Err(StoreError::Unavailable(cause)),
    }
}

/// One second: Timestream's default rate for create, update and delete calls per account.
pub const CREATE_INTERVAL: Duration = Duration::from_secs(1);
