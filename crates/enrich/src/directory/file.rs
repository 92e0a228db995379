//! `TENANTS_FILE`: a JSON object `tenant_id → display name`, read and checked once at start.

use std::collections::HashMap;
use std::path::Path;

use metrics_schema::TenantId;

use super::{DirectoryError, TenantNames, TenantSource, check_tenant_name};

/// A tenant directory held in memory.
#[derive(Debug, Clone, Default)]
pub struct FileDirectory {
    names: HashMap<String, String>,
}

impl FileDirectory {
    /// Reads and checks a tenants file. Every id must be a valid tenant id and every name a
    /// valid display name, so a bad entry is found at start, not on the first event.
    pub fn load(path: &Path) -> Result<Self, DirectoryError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| DirectoryError::ReadFile {
            path: shown.clone(),
            source,
        })?;
        let names: HashMap<String, String> =
            serde_json::from_slice(&bytes).map_err(|source| DirectoryError::ParseFile {
                path: shown.clone(),
                source,
            })?;
        Self::from_map(names).map_err(|detail| DirectoryError::InvalidEntry { path: shown, detail })
    }

    /// A directory from a map, checked like a file.
    pub fn from_map(names: HashMap<String, String>) -> Result<Self, String> {
        for (id, name) in &names {
            if TenantId::parse(id.as_str()).is_err() {
                return Err(format!("{id:?} is not a valid tenant id"));
            }
            if !check_tenant_name(name) {
                return Err(format!(
                    "the name of {id} must be 1-64 bytes without control characters"
                ));
            }
        }
        Ok(FileDirectory { names })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl TenantNames for FileDirectory {
    fn name(&self, tenant_id: &str) -> Option<&str> {
        self.names.get(tenant_id).map(String::as_str)
    }
}

impl TenantSource for FileDirectory {
    async fn lookup_many(&self, ids: &[&str]) -> Result<HashMap<String, String>, DirectoryError> {
        Ok(ids
            .iter()
            .filter_map(|id| self.names.get_key_value(*id))
            .map(|(id, name)| (id.clone(), name.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, content: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("metrics-enrich-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn loads_names_by_tenant_id() {
        let path = write(
            "ok.json",
            r#"{"acme-prod": "Acme \"Prod\"", "globex": "Globex Ltd"}"#,
        );
        let dir = FileDirectory::load(&path).unwrap();
        assert_eq!(dir.len(), 2);
        assert_eq!(dir.name("acme-prod"), Some("Acme \"Prod\""));
        assert_eq!(dir.name("nope"), None);
    }

    #[test]
    fn bad_files_fail_at_load_with_the_path() {
        let missing = FileDirectory::load(Path::new("/nonexistent/tenants.json")).unwrap_err();
        assert!(matches!(missing, DirectoryError::ReadFile { .. }), "{missing}");
        for (name, content) in [
            ("array.json", "[]"),
            ("number.json", r#"{"acme": 1}"#),
            ("bad-id.json", r#"{"a b": "x"}"#),
            ("long-name.json", &format!(r#"{{"acme": "{}"}}"#, "n".repeat(65))),
            ("control.json", r#"{"acme": "line\nbreak"}"#),
        ] {
            let err = FileDirectory::load(&write(name, content)).unwrap_err();
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }

    #[tokio::test]
    async fn lookup_many_answers_only_known_ids() {
        let dir = FileDirectory::from_map([("acme".to_string(), "Acme".to_string())].into()).unwrap();
        let found = dir.lookup_many(&["acme", "other"]).await.unwrap();
        assert_eq!(found, HashMap::from([("acme".to_string(), "Acme".to_string())]));
    }
}
