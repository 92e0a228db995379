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
