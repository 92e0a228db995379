//! Local tokens: HS256 JWTs signed with a per-run secret, for `metrics-lake serve` and tests.
//! They stand in for the identity provider API Gateway verifies in the deployed API, and are
//! checked just as strictly: signature, algorithm (HS256 only, so `alg: none` fails), audience
//! and expiry.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use metrics_schema::TenantId;
use serde::{Deserialize, Serialize};

/// The audience of local tokens; a token for any other audience is refused.
pub const LOCAL_AUDIENCE: &str = "metrics-lake-local";
/// The issuer written into local tokens.
pub const LOCAL_ISSUER: &str = "metrics-lake-serve";
/// The claim that holds the tenant id in local tokens (the deployed default, too).
pub const LOCAL_TENANT_CLAIM: &str = "tenant_id";

/// The claims of a local token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalClaims {
    pub sub: String,
    pub tenant_id: String,
    pub aud: String,
    pub iss: String,
    pub iat: u64,
    pub exp: u64,
}

/// Why a local token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no randomness for the signing secret: {0}")]
    Random(String),
    #[error("cannot sign the token: {0}")]
    Sign(String),
}

/// Mints and verifies local tokens with one secret. Clones share the secret.
#[derive(Clone)]
pub struct LocalTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for LocalTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalTokens { secret: <hidden> }")
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl LocalTokens {
    /// Tokens signed with `secret`.
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[LOCAL_AUDIENCE]);
        validation.set_issuer(&[LOCAL_ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        // Local clocks are the same clock: no leeway past expiry.
        validation.leeway = 0;
        LocalTokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Tokens signed with a fresh 32-byte secret: each run's tokens die with it.
    pub fn random() -> Result<Self, TokenError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| TokenError::Random(e.to_string()))?;
        Ok(LocalTokens::new(&secret))
    }

    /// A token for `tenant`, valid for `ttl_secs`.
    pub fn mint(&self, tenant: &TenantId<'_>, ttl_secs: u64) -> Result<String, TokenError> {
        let now = now_secs();
        self.mint_claims(&LocalClaims {
            sub: format!("local:{tenant}"),
            tenant_id: tenant.as_str().to_owned(),
            aud: LOCAL_AUDIENCE.to_owned(),
            iss: LOCAL_ISSUER.to_owned(),
            iat: now,
            exp: now + ttl_secs,
        })
    }

    /// A token with exactly these claims (tests use it to make expired or foreign tokens).
    pub fn mint_claims(&self, claims: &LocalClaims) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| TokenError::Sign(e.to_string()))
    }

    /// The claims of a valid token; `None` for anything else, whatever the reason (the
    /// reason is not the caller's business).
    pub fn verify(&self, token: &str) -> Option<LocalClaims> {
        jsonwebtoken::decode::<LocalClaims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
    }
}
