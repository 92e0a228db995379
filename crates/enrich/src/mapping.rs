//! The mapping wrapped events are turned into unified events with: `infra/metrics.toml`,
//! compiled into the binary, so the function and the rules rendered from the same file are
//! built and deployed together, and there is no file to go missing at run time. It is parsed
//! and checked once at start; a mapping with any finding stops the function before it takes an
//! event, with every finding in the message, never record by record.

use metrics_mapping::{Diagnostic, Mapping};

/// The mapping file the binary is built with.
pub const MAPPING_FILE: &str = include_str!("../../../infra/metrics.toml");

/// A mapping file that does not pass its checks.
#[derive(Debug, thiserror::Error)]
#[error("the metric mapping (infra/metrics.toml) is invalid: {}", list(.0))]
pub struct InvalidMapping(pub Vec<Diagnostic>);

fn list(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Parses and checks mapping text.
pub fn load(text: &str) -> Result<Mapping, InvalidMapping> {
    Mapping::from_toml(text).map_err(InvalidMapping)
}

/// The compiled-in mapping.
pub fn compiled_in() -> Result<Mapping, InvalidMapping> {
    load(MAPPING_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_mapping_loads_with_every_shipped_metric() {
        let mapping = compiled_in().unwrap();
        assert!(mapping.metric("findings_upload_completed").is_some());
        assert_eq!(mapping.len(), 7);
    }

    /// The response-size derivation (crate docs) relies on this: for every shipped metric, no
    /// mapped event is longer than the wrapped event it comes from. Checked on a minimal event
    /// (every mapped field present, values as short as their type allows) with every way a
    /// real event can do relatively worse added: a default written where the event has nothing,
    /// a field left out whose source key is longer than its output name, and two quotes for an
    /// `id` or `text` sent as a number. Otherwise values never grow when copied (strings are
    /// re-escaped no longer than sent; the quotes a dimension puts around a number or boolean
    /// are in the minimal event too).
    #[test]
    fn a_mapped_event_is_never_longer_than_its_wrapped_event() {
        use metrics_mapping::{FieldKind, MappingFile, model::DefaultValue};
        use serde_json::{Value, json};
        let file = MappingFile::parse(MAPPING_FILE).unwrap();
        let mapping = compiled_in().unwrap();
        for metric in &file.metrics {
            let mut event = json!({"version": "0", "id": "e", "detail-type": "", "source": "", "account": "",
                                   "time": "1970-01-01T00:00:00Z", "region": "", "resources": [], "detail": {}});
            let mut extra = 0;
            let mut set = |path: &str, value: Value| {
                let mut at = &mut event;
                let keys: Vec<&str> = path.trim_start_matches("$.").split('.').collect();
                for key in &keys[..keys.len() - 1] {
                    at = at.as_object_mut().unwrap().entry(*key).or_insert(json!({}));
                }
                at[keys[keys.len() - 1]] = value;
            };
            set(metric.tenant_id.as_deref().unwrap(), json!("abc"));
            if let Some(time) = &metric.event_time {
                set(&time.from, json!(0));
            }
            for (name, field) in metric.metadata.iter().chain(metric.data.iter()) {
                let minimal = match field.kind {
                    FieldKind::Number => json!(0),
                    FieldKind::Bool => json!(true),
                    _ => json!(""),
                };
                set(&field.from, minimal);
                let source_key = field.from.rsplit('.').next().unwrap_or_default();
                extra += source_key.len().saturating_sub(name.len());
                if matches!(field.kind, FieldKind::Id | FieldKind::Text) {
                    extra += 2;
                }
                // A default is written where the event has nothing: count it whole, with quotes.
                extra += match &field.default {
                    None => 0,
                    Some(DefaultValue::String(s)) => s.len() + 2,
                    Some(DefaultValue::Integer(n)) => n.to_string().len() + 2,
                    Some(DefaultValue::Float(f)) => f.to_string().len() + 2,
                    Some(DefaultValue::Bool(_)) => 7,
                };
            }
            let wrapped = serde_json::to_vec(&json!({"metric": metric.name, "event": event})).unwrap();
            let mut mapped = Vec::new();
            mapping.map_record(&wrapped, &mut mapped).unwrap();
            assert!(
                mapped.len() + extra <= wrapped.len(),
                "{}: mapped {} + {extra} > wrapped {}",
                metric.name,
                mapped.len(),
                wrapped.len()
            );
        }
    }

    #[test]
    fn an_invalid_mapping_names_every_problem() {
        let e = load("[[metric]]\nname = \"m\"\npattern = { source = [\"s\"], detail-type = [\"t\"] }\n")
            .unwrap_err();
        let message = e.to_string();
        assert!(
            message.starts_with(
                "the metric mapping (infra/metrics.toml) is invalid: error[missing_tenant_id] in metric \"m\""
            ),
            "{message}"
        );
    }
}
