//! The store chosen at run time (`METRICS_STORE`).

use std::str::FromStr;

use metrics_schema::TenantId;

use crate::embedded::EmbeddedStore;
use crate::influx::InfluxStore;
use crate::port::{Deadline, Store, StoreError, WriteReport};
use crate::record::StoreRecord;
use crate::timestream::TimestreamStore;

/// Which adapter to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreKind {
    #[default]
    Timestream,
    Embedded,
    /// Timestream for InfluxDB (or any InfluxDB 3 / 2 server), over line protocol.
    Influxdb,
}

impl FromStr for StoreKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "timestream" => Ok(StoreKind::Timestream),
            "embedded" => Ok(StoreKind::Embedded),
            "influxdb" => Ok(StoreKind::Influxdb),
            other => Err(format!(
                "unknown store {other:?}: expected timestream, influxdb or embedded"
            )),
        }
    }
}

impl StoreKind {
    /// The variable that chooses the store, for every binary that opens or queries one.
    pub const VARIABLE: &'static str = "METRICS_STORE";

    /// The store a `METRICS_STORE` value names: unset or blank is the default (Timestream),
    /// anything else must be one of the names, exactly. The one parser of the variable.
    pub fn from_setting(value: Option<&str>) -> Result<StoreKind, String> {
        match value.map(str::trim) {
            None | Some("") => Ok(StoreKind::default()),
            Some(name) => name.parse(),
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            StoreKind::Timestream => "timestream",
            StoreKind::Embedded => "embedded",
            StoreKind::Influxdb => "influxdb",
        }
    }
}

/// One of the adapters.
#[derive(Debug)]
pub enum AnyStore {
    Timestream(TimestreamStore),
    Embedded(EmbeddedStore),
    /// Boxed: its client and settings are large, and the enum is held by value.
    Influxdb(Box<InfluxStore>),
}

impl AnyStore {
    pub const fn kind(&self) -> StoreKind {
        match self {
            AnyStore::Timestream(_) => StoreKind::Timestream,
            AnyStore::Embedded(_) => StoreKind::Embedded,
            AnyStore::Influxdb(_) => StoreKind::Influxdb,
        }
    }
}

impl Store for AnyStore {
    async fn ensure_table(&self, tenant: &TenantId<'_>, deadline: Deadline) -> Result<(), StoreError> {
        match self {
            AnyStore::Timestream(s) => s.ensure_table(tenant, deadline).await,
            AnyStore::Embedded(s) => s.ensure_table(tenant, deadline).await,
            AnyStore::Influxdb(s) => s.ensure_table(tenant, deadline).await,
        }
    }

    async fn write(&self, tenant: &TenantId<'_>, records: &[StoreRecord], deadline: Deadline) -> WriteReport {
        match self {
            AnyStore::Timestream(s) => s.write(tenant, records, deadline).await,
            AnyStore::Embedded(s) => s.write(tenant, records, deadline).await,
            AnyStore::Influxdb(s) => s.write(tenant, records, deadline).await,
        }
    }
}

impl<S: Store> Store for std::sync::Arc<S> {
    async fn ensure_table(&self, tenant: &TenantId<'_>, deadline: Deadline) -> Result<(), StoreError> {
        self.as_ref().ensure_table(tenant, deadline).await
    }

    async fn write(&self, tenant: &TenantId<'_>, records: &[StoreRecord], deadline: Deadline) -> WriteReport {
        self.as_ref().write(tenant, records, deadline).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_defaults_to_timestream_and_takes_exact_names_only() {
        assert_eq!(StoreKind::from_setting(None), Ok(StoreKind::Timestream));
        assert_eq!(StoreKind::from_setting(Some("  ")), Ok(StoreKind::Timestream));
        for kind in [StoreKind::Timestream, StoreKind::Embedded, StoreKind::Influxdb] {
            assert_eq!(StoreKind::from_setting(Some(kind.name())), Ok(kind));
        }
        assert_eq!(
            StoreKind::from_setting(Some(" influxdb\n")),
            Ok(StoreKind::Influxdb)
        );
        let refused = StoreKind::from_setting(Some("influx")).unwrap_err();
        assert!(
            refused.contains("\"influx\"") && refused.contains("embedded"),
            "{refused}"
        );
        assert!(
            StoreKind::from_setting(Some("Timestream")).is_err(),
            "names are exact"
        );
    }
}
