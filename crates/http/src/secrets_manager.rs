//! Reading a secret's text from AWS Secrets Manager (`GetSecretValue`), once per container.
//! The value is a [`Secret`] from the moment it is read, and no error here contains it.
//! <https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html>

use crate::Secret;

/// Why a secret could not be read. Messages name the secret, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("reading secret {arn} failed: {message}")]
    Fetch { arn: String, message: String },
    /// The secret holds binary data (`SecretBinary`), not text.
    #[error("secret {arn} has no SecretString")]
    NotText { arn: String },
}

impl SecretError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            SecretError::Fetch { .. } => "secret_fetch_failed",
            SecretError::NotText { .. } => "secret_not_text",
        }
    }
}

/// The text (`SecretString`) of the secret `arn` (an ARN or a name).
pub async fn read_secret(client: &aws_sdk_secretsmanager::Client, arn: &str) -> Result<Secret, SecretError> {
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| SecretError::Fetch {
            arn: arn.to_owned(),
            // The SDK's error text names the operation and the service's error code, never the value.
            message: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
        })?;
    output
        .secret_string
        .map(Secret::new)
        .ok_or_else(|| SecretError::NotText { arn: arn.to_owned() })
}
