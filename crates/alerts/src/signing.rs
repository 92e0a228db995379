//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>, the specification's
//! "Signature scheme"): the signed content is `{webhook-id}.{webhook-timestamp}.{body}`, the
//! signature HMAC-SHA256 with the secret's bytes, sent as `v1,<base64>` in
//! `webhook-signature`. Secrets are `whsec_` and the base64 of 32 random bytes, the form the
//! specification's libraries accept, so a receiver verifies with any of them.
//!
//! Written here rather than taken from a crate: it is a dozen lines over the HMAC and base64
//! crates the workspace already builds, and the tests reproduce the specification's published
//! test vector.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use metrics_http::Secret;
use sha2::Sha256;

/// The prefix of a secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// How far a receiver may trust a timestamp (the specification's suggested tolerance).
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// A secret that is not `whsec_` and base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the secret is not whsec_ and base64")]
    BadSecret,
    #[error("the random source failed")]
    Random,
    #[error("no signature matches")]
    Mismatch,
    #[error("the timestamp is missing or outside the tolerance")]
    Timestamp,
}

/// A new secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> Result<Secret, SignatureError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| SignatureError::Random)?;
    Ok(Secret::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))))
}

fn key(secret: &Secret) -> Result<Vec<u8>, SignatureError> {
    let encoded = secret.expose();
    let encoded = encoded.strip_prefix(SECRET_PREFIX).unwrap_or(encoded);
    STANDARD.decode(encoded).map_err(|_| SignatureError::BadSecret)
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Result<Hmac<Sha256>, SignatureError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| SignatureError::BadSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// The `webhook-signature` header value for one message.
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
    let tag = mac(&key(secret)?, id, timestamp, body)?.finalize().into_bytes();
    Ok(format!("v1,{}", STANDARD.encode(tag)))
}

/// Verifies a message as a receiver does: one of the space-separated `v1,` signatures must
/// match (in constant time), and the timestamp must be within [`TOLERANCE_SECS`] of `now`.
pub fn verify(
    secret: &Secret,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now_secs: i64,
) -> Result<(), SignatureError> {
    let timestamp: i64 = timestamp.parse().map_err(|_| SignatureError::Timestamp)?;
    if (now_secs - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Timestamp);
    }
    let key = key(secret)?;
    for candidate in signatures.split(' ') {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(tag) = STANDARD.decode(encoded) else {
            continue;
        };
        if mac(&key, id, timestamp, body)?.verify_slice(&tag).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector the Standard Webhooks reference libraries share.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_specification_test_vector_is_reproduced() {
        assert_eq!(
            sign(&Secret::new(SECRET), ID, TIMESTAMP, BODY),
            Ok(SIGNATURE.to_owned())
        );
    }

    #[test]
    fn verification_accepts_the_vector_among_others_and_refuses_changes() {
        let secret = Secret::new(SECRET);
        let ts = TIMESTAMP.to_string();
        let listed = format!("v1,bm9wZQ== {SIGNATURE}");
        assert_eq!(verify(&secret, ID, &ts, &listed, BODY, TIMESTAMP + 10), Ok(()));
        assert_eq!(
            verify(&secret, ID, &ts, SIGNATURE, br#"{"test": 2432232315}"#, TIMESTAMP),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secret, "msg_other", &ts, SIGNATURE, BODY, TIMESTAMP),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secret, ID, &ts, SIGNATURE, BODY, TIMESTAMP + TOLERANCE_SECS + 1),
            Err(SignatureError::Timestamp)
        );
    }

    #[test]
    fn new_secrets_are_random_and_sign() {
        let (a, b) = (new_secret(), new_secret());
        let (Ok(a), Ok(b)) = (a, b) else {
            unreachable!("the random source works in tests")
        };
        assert_ne!(a, b);
        assert!(a.expose().starts_with(SECRET_PREFIX));
        assert_eq!(key(&a).map(|k| k.len()), Ok(32));
        let sig = sign(&a, ID, TIMESTAMP, BODY).unwrap_or_default();
        assert_eq!(
            verify(&a, ID, &TIMESTAMP.to_string(), &sig, BODY, TIMESTAMP),
            Ok(())
        );
    }
}
