//! Where a mapped value lands in the unified event, and which field types each place accepts.
//! The checks and the mapping share these rules, so a file that passes the checks maps.

use crate::model::FieldKind;

/// A place in the unified event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    TenantId,
    EventId,
    EventTime,
    Metadata,
    Data,
    Extra,
}

impl Section {
    pub fn describe(self) -> &'static str {
        match self {
            Section::TenantId => "tenant_id",
            Section::EventId => "event_id",
            Section::EventTime => "event_time",
            Section::Metadata => "metadata",
            Section::Data => "data",
            Section::Extra => "extra",
        }
    }

    /// Whether a field of `kind` may be mapped here. Dimensions are strings (numbers and
    /// booleans are written as their text), measures are scalars, extra members are objects.
    pub fn accepts(self, kind: FieldKind) -> bool {
        use FieldKind::{Bool, Id, Number, Object, Text};
        match self {
            Section::TenantId | Section::EventId => kind == Id,
            Section::EventTime => false,
            Section::Metadata | Section::Data => matches!(kind, Id | Text | Number | Bool),
            Section::Extra => kind == Object,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_in_metadata_and_data_objects_only_at_top_level() {
        for kind in [FieldKind::Id, FieldKind::Text, FieldKind::Number, FieldKind::Bool] {
            assert!(Section::Metadata.accepts(kind));
            assert!(Section::Data.accepts(kind));
            assert!(!Section::Extra.accepts(kind));
        }
        assert!(!Section::Metadata.accepts(FieldKind::Object));
        assert!(!Section::Data.accepts(FieldKind::Object));
        assert!(Section::Extra.accepts(FieldKind::Object));
    }
}
