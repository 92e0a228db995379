//! What each destination may receive: which metrics, which fields become properties, and which
//! fields must not leave in clear (dropped, or replaced by a salted SHA-256 hex hash). Pure
//! data and pure functions, so the rules are tested without a network.

use std::borrow::Cow;
use std::collections::BTreeSet;

use metrics_schema::{MeasureValue, UnifiedEvent};
use serde_json::value::RawValue;

use crate::dedup::salted_hash;
use metrics_http::Secret;

/// A set of names: everything (`*`), or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    Only(BTreeSet<String>),
}

impl Selection {
    /// `*` is everything; otherwise a comma-separated list (empty: nothing).
    pub fn parse(text: &str) -> Selection {
        if text.trim() == "*" {
            Selection::All
        } else {
            Selection::Only(names(text))
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Only(names) => names.contains(name),
        }
    }
}

/// A comma-separated list of names, trimmed, empty entries ignored.
pub fn names(text: &str) -> BTreeSet<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One destination's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Metric names this destination receives.
    pub metrics: Selection,
    /// `metadata` fields copied into properties.
    pub metadata: Selection,
    /// `data` fields copied into properties.
    pub data: Selection,
    /// Fields never sent (properties and the user identity).
    pub drop: BTreeSet<String>,
    /// Fields sent as `sha256(salt \0 value)` hex (properties and the user identity).
    pub hash: BTreeSet<String>,
    /// Required when `hash` is not empty.
    pub salt: Option<Secret>,
    /// The `metadata` field that identifies the user; without it (or when the event lacks it)
    /// the identity is the tenant.
    pub user_id_field: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            metrics: Selection::All,
            metadata: Selection::parse(DEFAULT_METADATA_FIELDS),
            data: Selection::All,
            drop: BTreeSet::new(),
            hash: BTreeSet::new(),
            salt: None,
            user_id_field: None,
        }
    }
}

/// Metadata forwarded by default: what enrichment adds, nothing a producer might put PII in.
pub const DEFAULT_METADATA_FIELDS: &str = "tenant_name,environment";

/// A property value as it will be written.
#[derive(Debug, Clone)]
pub enum PropertyValue<'e> {
    /// A `metadata` string.
    Str(&'e str),
    /// A `data` value, as sent by the producer.
    Raw(&'e RawValue),
    /// A hashed value.
    Hashed(String),
}

impl PartialEq for PropertyValue<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PropertyValue::Str(a), PropertyValue::Str(b)) => a == b,
            (PropertyValue::Raw(a), PropertyValue::Raw(b)) => a.get() == b.get(),
            (PropertyValue::Hashed(a), PropertyValue::Hashed(b)) => a == b,
            _ => false,
        }
    }
}

impl Policy {
    pub fn admits(&self, metric: &str) -> bool {
        self.metrics.contains(metric)
    }

    fn hash(&self, value: &str) -> String {
        // `Config` refuses hash fields without a salt; an empty salt is still a one-way hash.
        salted_hash(self.salt.as_ref().map(Secret::expose).unwrap_or_default(), value)
    }

    fn apply<'e>(
        &self,
        name: &str,
        clear: PropertyValue<'e>,
        text: impl FnOnce() -> &'e str,
    ) -> Option<PropertyValue<'e>> {
        if self.drop.contains(name) {
            None
        } else if self.hash.contains(name) {
            Some(PropertyValue::Hashed(self.hash(text())))
        } else {
            Some(clear)
        }
    }

    /// The properties of an event: selected `metadata`, then selected `data`, in event order,
    /// without dropped fields and with hashed ones replaced.
    pub fn properties<'e>(&self, event: &'e UnifiedEvent<'_>) -> Vec<(&'e str, PropertyValue<'e>)> {
        let mut out = Vec::with_capacity(event.dimensions.len() + event.measures.len());
        for d in &event.dimensions {
            if !self.metadata.contains(&d.name) {
                continue;
            }
            if let Some(v) = self.apply(&d.name, PropertyValue::Str(&d.value), || d.value.as_ref()) {
                out.push((d.name.as_ref(), v));
            }
        }
        for m in &event.measures {
            if self.data.contains(&m.name) {
                let text = || match &m.value {
                    MeasureValue::Str(s) => s.as_ref(),
                    _ => m.raw.get(),
                };
                if let Some(v) = self.apply(&m.name, PropertyValue::Raw(m.raw), text) {
                    out.push((m.name.as_ref(), v));
                }
            }
        }
        out
    }

    /// The user identity from the configured `metadata` field, hashed when it is a hash field;
    /// `None` when unset, absent, empty or dropped.
    pub fn user_id<'e>(&self, event: &'e UnifiedEvent<'_>) -> Option<Cow<'e, str>> {
        let field = self.user_id_field.as_deref()?;
        let value = event.dimension(field).filter(|v| !v.is_empty())?;
        if self.drop.contains(field) {
            None
        } else if self.hash.contains(field) {
            Some(Cow::Owned(self.hash(value)))
        } else {
            Some(Cow::Borrowed(value))
        }
    }
}

/// The stable tenant-level identity used when there is no user: `tenant:<tenant_id>`.
pub fn tenant_identity(event: &UnifiedEvent<'_>) -> String {
    format!("tenant:{}", event.tenant_id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_schema::{EventTime, parse_event};

    const EVENT: &str = r#"{"metric_name":"scan_started","metadata":{"tenant_id":"acme","event_id":"e1","tenant_name":"Acme","user_email":"a@b.c","user_id":"u-7"},"data":{"event_time":1,"n":3,"status":"ok","ip_addr":"203.0.113.9"}}"#;

    fn event() -> UnifiedEvent<'static> {
        parse_event(EVENT.as_bytes(), EventTime::from_millis(1_795_428_000_000)).unwrap()
    }

    fn keys(properties: &[(&str, PropertyValue<'_>)]) -> Vec<String> {
        properties.iter().map(|(k, _)| (*k).to_owned()).collect()
    }

    #[test]
    fn by_default_data_and_enrichment_metadata_are_sent() {
        let e = event();
        assert_eq!(
            keys(&Policy::default().properties(&e)),
            ["tenant_name", "n", "status", "ip_addr"]
        );
    }

    #[test]
    fn dropped_fields_vanish_and_hashed_fields_are_salted_sha256() {
        let policy = Policy {
            metadata: Selection::All,
            drop: names("user_email, ip_addr"),
            hash: names("user_id,status"),
            salt: Some(Secret::new("pepper")),
            ..Policy::default()
        };
        let e = event();
        let properties = policy.properties(&e);
        assert_eq!(
            keys(&properties),
            ["tenant_id", "event_id", "tenant_name", "user_id", "n", "status"]
        );
        let value = |key: &str| properties.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
        assert_eq!(
            value("user_id"),
            Some(PropertyValue::Hashed(salted_hash("pepper", "u-7")))
        );
        // A string measure is hashed by its value, not its JSON text.
        assert_eq!(
            value("status"),
            Some(PropertyValue::Hashed(salted_hash("pepper", "ok")))
        );
        assert_ne!(salted_hash("pepper", "u-7"), salted_hash("salt", "u-7"));
    }

    #[test]
    fn the_allow_list_and_field_selection_apply() {
        let policy = Policy {
            metrics: Selection::parse("scan_completed"),
            metadata: Selection::parse(""),
            data: Selection::parse("n"),
            ..Policy::default()
        };
        assert!(!policy.admits("scan_started"));
        assert!(policy.admits("scan_completed"));
        assert_eq!(keys(&policy.properties(&event())), ["n"]);
    }

    #[test]
    fn the_user_identity_follows_drop_and_hash_rules() {
        let e = event();
        let mut policy = Policy {
            user_id_field: Some("user_id".into()),
            ..Policy::default()
        };
        assert_eq!(policy.user_id(&e).as_deref(), Some("u-7"));
        policy.hash = names("user_id");
        policy.salt = Some(Secret::new("s"));
        assert_eq!(
            policy.user_id(&e).as_deref(),
            Some(salted_hash("s", "u-7").as_str())
        );
        policy.drop = names("user_id");
        assert_eq!(policy.user_id(&e), None);
        policy.user_id_field = Some("absent".into());
        assert_eq!(policy.user_id(&e), None);
        assert_eq!(tenant_identity(&e), "tenant:acme");
    }
}
