//! Vendor credentials, from AWS Secrets Manager (deployed) or environment variables (local
//! runs). Values are [`Secret`]s from the moment they are read, and no error message here
//! contains one.
//!
//! Secret shapes (`SecretString`):
//! - `SEGMENT_WRITE_KEY_SECRET_ARN`: the write key as plain text, or `{"write_key": "…"}`.
//! - `MIXPANEL_SECRET_ARN`: `{"project_id": "…", "service_account_username": "…",
//!   "service_account_secret": "…"}` or `{"project_token": "…"}` (`project_id` may instead come
//!   from `MIXPANEL_PROJECT_ID`).

use metrics_http::Secret;
use metrics_http::secrets_manager::{SecretError, read_secret};
use serde::Deserialize;

use crate::destination::mixpanel::MixpanelAuth;

/// Where Segment's write key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentSource {
    Env(Secret),
    SecretArn(String),
}

/// Where Mixpanel's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MixpanelSource {
    Env(MixpanelAuth),
    /// The secret, and `MIXPANEL_PROJECT_ID` if set (used when the secret has no project id).
    SecretArn {
        arn: String,
        project_id: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error(transparent)]
    Read(#[from] SecretError),
    #[error("secret {arn} is not in a supported shape: {expected}")]
    Shape { arn: String, expected: &'static str },
}

impl CredentialsError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            CredentialsError::Read(e) => e.code(),
            CredentialsError::Shape { .. } => "secret_bad_shape",
        }
    }
}

const SEGMENT_SHAPE: &str = "the write key as text, or {\"write_key\": \"...\"}";
const MIXPANEL_SHAPE: &str =
    "{\"project_id\", \"service_account_username\", \"service_account_secret\"} or {\"project_token\"}";

#[derive(Deserialize)]
struct SegmentSecret {
    write_key: String,
}

#[derive(Deserialize)]
struct MixpanelSecret {
    project_id: Option<String>,
    service_account_username: Option<String>,
    service_account_secret: Option<String>,
    project_token: Option<String>,
}

/// The write key in a secret's text.
pub fn segment_from_secret(arn: &str, text: &str) -> Result<Secret, CredentialsError> {
    let shape = || CredentialsError::Shape {
        arn: arn.to_owned(),
        expected: SEGMENT_SHAPE,
    };
    let trimmed = text.trim();
    let key = if trimmed.starts_with('{') {
        serde_json::from_str::<SegmentSecret>(trimmed)
            .map_err(|_| shape())?
            .write_key
    } else {
        trimmed.to_owned()
    };
    if key.is_empty() {
        Err(shape())
    } else {
        Ok(Secret::new(key))
    }
}

/// Mixpanel credentials in a secret's text.
pub fn mixpanel_from_secret(
    arn: &str,
    text: &str,
    project_id: Option<&str>,
) -> Result<MixpanelAuth, CredentialsError> {
    let shape = || CredentialsError::Shape {
        arn: arn.to_owned(),
        expected: MIXPANEL_SHAPE,
    };
    let secret: MixpanelSecret = serde_json::from_str(text).map_err(|_| shape())?;
    let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let project = non_empty(secret.project_id).or_else(|| project_id.map(str::to_owned));
    match (
        project,
        non_empty(secret.service_account_username),
        non_empty(secret.service_account_secret),
        non_empty(secret.project_token),
    ) {
        (Some(project_id), Some(username), Some(secret), _) => Ok(MixpanelAuth::ServiceAccount {
            project_id,
            username,
            secret: Secret::new(secret),
        }),
        (_, None, None, Some(token)) => Ok(MixpanelAuth::ProjectToken {
            token: Secret::new(token),
        }),
        _ => Err(shape()),
    }
}

/// A secret's text, or why it cannot be read.
async fn fetch(
    client: Option<&aws_sdk_secretsmanager::Client>,
    arn: &str,
) -> Result<Secret, CredentialsError> {
    let Some(client) = client else {
        return Err(SecretError::Fetch {
            arn: arn.to_owned(),
            message: "no Secrets Manager client".into(),
        }
        .into());
    };
    Ok(read_secret(client, arn).await?)
}

/// Segment's write key from its source.
pub async fn segment(
    source: &SegmentSource,
    client: Option<&aws_sdk_secretsmanager::Client>,
) -> Result<Secret, CredentialsError> {
    match source {
        SegmentSource::Env(key) => Ok(key.clone()),
        SegmentSource::SecretArn(arn) => segment_from_secret(arn, fetch(client, arn).await?.expose()),
    }
}

/// Mixpanel's credentials from their source.
pub async fn mixpanel(
    source: &MixpanelSource,
    client: Option<&aws_sdk_secretsmanager::Client>,
) -> Result<MixpanelAuth, CredentialsError> {
    match source {
        MixpanelSource::Env(auth) => Ok(auth.clone()),
        MixpanelSource::SecretArn { arn, project_id } => {
            mixpanel_from_secret(arn, fetch(client, arn).await?.expose(), project_id.as_deref())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_secrets_are_plain_text_or_json() {
        assert_eq!(segment_from_secret("a", " wk-1\n").unwrap().expose(), "wk-1");
        assert_eq!(
            segment_from_secret("a", r#"{"write_key":"wk-2"}"#)
                .unwrap()
                .expose(),
            "wk-2"
        );
        assert_eq!(
            segment_from_secret("a", "").unwrap_err().code(),
            "secret_bad_shape"
        );
    }

    #[test]
    fn mixpanel_secrets_hold_a_service_account_or_a_token() {
        let sa = r#"{"project_id":"42","service_account_username":"u","service_account_secret":"s"}"#;
        assert_eq!(
            mixpanel_from_secret("a", sa, None).unwrap(),
            MixpanelAuth::ServiceAccount {
                project_id: "42".into(),
                username: "u".into(),
                secret: Secret::new("s")
            }
        );
        let no_project = r#"{"service_account_username":"u","service_account_secret":"s"}"#;
        assert!(mixpanel_from_secret("a", no_project, None).is_err());
        assert_eq!(
            mixpanel_from_secret("a", no_project, Some("7"))
                .unwrap()
                .project_id(),
            Some("7")
        );
        assert_eq!(
            mixpanel_from_secret("a", r#"{"project_token":"t"}"#, None).unwrap(),
            MixpanelAuth::ProjectToken {
                token: Secret::new("t")
            }
        );
    }

    #[test]
    fn a_malformed_secret_error_never_quotes_the_secret() {
        let error = mixpanel_from_secret("arn:x", r#"{"project_token": 12345678}"#, None).unwrap_err();
        assert!(!error.to_string().contains("12345678"), "{error}");
        let error = segment_from_secret("arn:x", r#"{"write_key": ["very-secret"]}"#).unwrap_err();
        assert!(!error.to_string().contains("very-secret"), "{error}");
    }
}
