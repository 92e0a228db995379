//! The API token, a [`Secret`] (it never prints), and where it comes from: `INFLUXDB_TOKEN`
//! (local runs) or a Secrets Manager secret named by `INFLUXDB_TOKEN_SECRET_ARN`, read once per
//! container. The writer and the query API read the same two variables through
//! [`TokenSource::from_lookup`].

use std::future::Future;

use aws_config::SdkConfig;
pub use metrics_http::Secret;
pub use metrics_http::Secret as Token;
use metrics_http::secrets_manager::{SecretError, read_secret};

/// Where the API token comes from. Either way the result is the secret's text, which the
/// reader parses: the writer with [`token_from_secret_string`], the query API with its
/// per-tenant token map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The text itself (`INFLUXDB_TOKEN`, for local runs).
    Value(Secret),
    /// A Secrets Manager secret (`INFLUXDB_TOKEN_SECRET_ARN`).
    SecretArn(String),
}

/// Both token variables are set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("set either INFLUXDB_TOKEN or INFLUXDB_TOKEN_SECRET_ARN, not both")]
pub struct BothTokenVariables;

impl BothTokenVariables {
    /// The variable a configuration error names.
    pub const VARIABLE: &'static str = "INFLUXDB_TOKEN_SECRET_ARN";
}

impl TokenSource {
    /// `INFLUXDB_TOKEN` or `INFLUXDB_TOKEN_SECRET_ARN` (`get` answers `None` for unset or
    /// empty variables); `None` when neither is set.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<TokenSource>, BothTokenVariables> {
        match (get("INFLUXDB_TOKEN"), get("INFLUXDB_TOKEN_SECRET_ARN")) {
            (Some(_), Some(_)) => Err(BothTokenVariables),
            (Some(token), None) => Ok(Some(TokenSource::Value(Secret::new(token)))),
            (None, Some(arn)) => Ok(Some(TokenSource::SecretArn(arn.trim().to_owned()))),
            (None, None) => Ok(None),
        }
    }

    /// The token's text: the value itself, or the secret's, read with the SDK configuration
    /// `sdk` gives (called only for a secret, so a local run loads no AWS configuration).
    pub async fn read<F>(&self, sdk: impl FnOnce() -> F) -> Result<Secret, SecretError>
    where
        F: Future<Output = SdkConfig>,
    {
        match self {
            TokenSource::Value(text) => Ok(text.clone()),
            TokenSource::SecretArn(arn) => {
                read_secret(&aws_sdk_secretsmanager::Client::new(&sdk().await), arn).await
            }
        }
    }
}

/// The token in a secret's text: the whole string, or the `token` (or `apiToken`) member of a
/// JSON object, trimmed; `None` when there is none.
pub fn token_from_secret_string(secret: &str) -> Option<Token> {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(secret) {
        return ["token", "apiToken", "api_token"]
            .iter()
            .find_map(|k| map.get(*k).and_then(|v| v.as_str()))
            .map(|t| Token::new(t.trim()))
            .filter(|t| !t.is_empty());
    }
    Some(Token::new(secret.trim())).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_a_bare_token_or_a_json_object_with_one() {
        assert_eq!(token_from_secret_string(" abc \n"), Some(Token::new("abc")));
        assert_eq!(
            token_from_secret_string(r#"{"token":"xyz","username":"u"}"#),
            Some(Token::new("xyz"))
        );
        assert_eq!(
            token_from_secret_string(r#"{"username":"u","password":"p"}"#),
            None
        );
        assert_eq!(token_from_secret_string("  "), None);
    }

    #[test]
    fn the_token_comes_from_exactly_one_of_the_two_variables() {
        let lookup = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            TokenSource::from_lookup(lookup(&[("INFLUXDB_TOKEN", "t0k")])),
            Ok(Some(TokenSource::Value(Secret::new("t0k"))))
        );
        assert_eq!(
            TokenSource::from_lookup(lookup(&[("INFLUXDB_TOKEN_SECRET_ARN", " arn:x ")])),
            Ok(Some(TokenSource::SecretArn("arn:x".into())))
        );
        assert_eq!(TokenSource::from_lookup(lookup(&[])), Ok(None));
        assert_eq!(
            TokenSource::from_lookup(lookup(&[
                ("INFLUXDB_TOKEN", "a"),
                ("INFLUXDB_TOKEN_SECRET_ARN", "b")
            ])),
            Err(BothTokenVariables)
        );
        let source = TokenSource::from_lookup(lookup(&[("INFLUXDB_TOKEN", "s3cret")]));
        assert!(!format!("{source:?}").contains("s3cret"));
    }
}
