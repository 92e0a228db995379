//! Why a record was not enriched: a schema rule (the schema crate's stable codes), a mapping
//! rule (the mapping crate's), or one of the few rules only this stage has. Codes appear in logs and metric dimensions, so they are never
//! renamed or reused.

use metrics_mapping::MapReason;
use metrics_schema::Reason;

/// The reason a record was dropped or failed. [`RejectReason::code`] is the stable string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// A rule of the unified event schema.
    Schema(Reason),
    /// A wrapped event the mapping could not turn into a unified event.
    Mapping(MapReason),
    /// Firehose's `data` is not standard padded base64.
    NotBase64,
    /// The tenant id is valid but the tenant directory does not know it.
    UnknownTenant,
    /// The tenant directory's display name breaks the rules for one (see
    /// [`crate::directory::check_tenant_name`]), so it cannot be added to events.
    InvalidTenantName,
}

impl RejectReason {
    /// Every reason this stage adds on top of the schema's.
    pub const ENRICH: [RejectReason; 3] = [
        RejectReason::NotBase64,
        RejectReason::UnknownTenant,
        RejectReason::InvalidTenantName,
    ];

    /// The stable snake_case code.
    pub const fn code(self) -> &'static str {
        match self {
            RejectReason::Schema(reason) => reason.code(),
            RejectReason::Mapping(reason) => reason.code(),
            RejectReason::NotBase64 => "not_base64",
            RejectReason::UnknownTenant => "unknown_tenant",
            RejectReason::InvalidTenantName => "invalid_tenant_name",
        }
    }

    /// Every code: the schema's, the mapping's, then this stage's.
    pub fn all() -> impl Iterator<Item = RejectReason> {
        Reason::ALL
            .into_iter()
            .map(RejectReason::Schema)
            .chain(MapReason::ALL.into_iter().map(RejectReason::Mapping))
            .chain(RejectReason::ENRICH)
    }
}

impl From<Reason> for RejectReason {
    fn from(reason: Reason) -> Self {
        RejectReason::Schema(reason)
    }
}

metrics_schema::display_as_code!(RejectReason);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let codes = RejectReason::all().map(RejectReason::code);
        assert_eq!(metrics_schema::outcome::first_bad_code(codes), None);
    }
}
