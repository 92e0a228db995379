//! Delivery: one signed `POST` per attempt (Standard Webhooks headers: `webhook-id` stays the
//! same across attempts, `webhook-timestamp` and `webhook-signature` are made per attempt, as
//! the specification asks), a timeout per attempt, a cap on how much of an answer is read,
//! retries with exponential backoff and full jitter for what a retry can fix (timeouts,
//! connection failures, 408, 429, 5xx), and a dead letter with a reason code when retries run
//! out or a retry cannot help (a refused address, a redirect, another 4xx).
//!
//! Redirects are never followed: the client does not follow them, and a 3xx is a dead letter
//! (`redirect_refused`), so a receiver cannot bounce a delivery to an internal address.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, header};
use metrics_http::{HttpClient, HttpError, HttpResponse, Secret};
use serde::Serialize;

use crate::clock::Clock;
use crate::signing;
use crate::url::UrlPolicy;

/// Why a notification was dead lettered. [`DeliveryReason::code`] is the stable reason code
/// (stage `alerts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryReason {
    /// A 4xx other than 408 and 429: the receiver refused it; a retry would not help.
    ReceiverRefused,
    /// 408, 429 or 5xx on every attempt.
    ReceiverFailed,
    /// A 3xx: redirects are not followed.
    RedirectRefused,
    /// No answer within the timeout, on every attempt.
    Timeout,
    /// No connection, on every attempt.
    ConnectionFailed,
    /// The host is, or now resolves to, an address alerts never call.
    AddressNotAllowed,
    /// The stored URL no longer passes the URL policy.
    InvalidUrl,
    /// The stored secret cannot sign.
    BadSecret,
}

impl DeliveryReason {
    pub const ALL: [DeliveryReason; 8] = [
        DeliveryReason::ReceiverRefused,
        DeliveryReason::ReceiverFailed,
        DeliveryReason::RedirectRefused,
        DeliveryReason::Timeout,
        DeliveryReason::ConnectionFailed,
        DeliveryReason::AddressNotAllowed,
        DeliveryReason::InvalidUrl,
        DeliveryReason::BadSecret,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            DeliveryReason::ReceiverRefused => "receiver_refused",
            DeliveryReason::ReceiverFailed => "receiver_failed",
            DeliveryReason::RedirectRefused => "redirect_refused",
            DeliveryReason::Timeout => "timeout",
            DeliveryReason::ConnectionFailed => "connection_failed",
            DeliveryReason::AddressNotAllowed => "address_not_allowed",
            DeliveryReason::InvalidUrl => "invalid_url",
            DeliveryReason::BadSecret => "bad_secret",
        }
    }
}

metrics_schema::display_as_code!(DeliveryReason);

/// How a notification ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Delivery {
    Delivered {
        attempts: u32,
        status: u16,
    },
    DeadLettered {
        attempts: u32,
        reason: DeliveryReason,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
}

impl Delivery {
    pub fn is_delivered(&self) -> bool {
        matches!(self, Delivery::Delivered { .. })
    }
}

/// Delivery settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Per attempt, for the whole exchange.
    pub timeout: Duration,
    /// At most this much of an answer is read (the status decides; the body is not used).
    pub max_response_bytes: usize,
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// The first retry waits up to this long; each next one up to twice as long.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
            attempts: 4,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// One attempt's end.
enum Attempt {
    Done(u16),
    Retry(DeliveryReason, Option<u16>, Option<Duration>),
    Stop(DeliveryReason, Option<u16>),
}

/// Sends signed notifications.
#[derive(Debug, Clone)]
pub struct Deliverer {
    client: HttpClient,
    policy: UrlPolicy,
    settings: DeliverySettings,
    clock: Arc<dyn Clock>,
}

impl Deliverer {
    pub fn new(
        policy: UrlPolicy,
        settings: DeliverySettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, HttpError> {
        Ok(Deliverer {
            client: policy
                .client()?
                .with_max_response_bytes(settings.max_response_bytes),
            policy,
            settings,
            clock,
        })
    }

    pub fn policy(&self) -> UrlPolicy {
        self.policy
    }

    /// Delivers `body` to `url` as message `id`, retrying as the module docs say.
    pub async fn send(&self, url: &str, secret: &Secret, id: &str, body: &str) -> Delivery {
        let Ok(url) = self.policy.parse(url) else {
            return Delivery::DeadLettered {
                attempts: 0,
                reason: DeliveryReason::InvalidUrl,
                status: None,
            };
        };
        let attempts = self.settings.attempts.max(1);
        let mut last = (DeliveryReason::ConnectionFailed, None);
        for attempt in 1..=attempts {
            match self.attempt(url.uri(), secret, id, body).await {
                Attempt::Done(status) => {
                    return Delivery::Delivered {
                        attempts: attempt,
                        status,
                    };
                }
                Attempt::Stop(reason, status) => {
                    return Delivery::DeadLettered {
                        attempts: attempt,
                        reason,
                        status,
                    };
                }
                Attempt::Retry(reason, status, retry_after) => {
                    last = (reason, status);
                    if attempt < attempts {
                        tokio::time::sleep(self.backoff(attempt, retry_after)).await;
                    }
                }
            }
        }
        Delivery::DeadLettered {
            attempts,
            reason: last.0,
            status: last.1,
        }
    }

    async fn attempt(&self, uri: &http::Uri, secret: &Secret, id: &str, body: &str) -> Attempt {
        let timestamp = self.clock.now_ms().div_euclid(1000);
        let Ok(signature) = signing::sign(secret, id, timestamp, body.as_bytes()) else {
            return Attempt::Stop(DeliveryReason::BadSecret, None);
        };
        let headers = match headers(id, timestamp, &signature) {
            Some(h) => h,
            None => return Attempt::Stop(DeliveryReason::BadSecret, None),
        };
        let result = self
            .client
            .post(
                uri,
                &headers,
                Bytes::copy_from_slice(body.as_bytes()),
                self.settings.timeout,
            )
            .await;
        classify(result)
    }

    /// Full jitter over an exponential step (AWS Architecture Blog, "Exponential Backoff And
    /// Jitter"), never less than a `Retry-After` the receiver asked for (up to the cap).
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let step = self
            .settings
            .backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.settings.max_backoff);
        let jittered = step.mul_f64(fastrand::f64());
        match retry_after {
            Some(asked) => jittered.max(asked.min(self.settings.max_backoff)),
            None => jittered,
        }
    }
}

fn headers(id: &str, timestamp: i64, signature: &str) -> Option<Vec<(HeaderName, HeaderValue)>> {
    Some(vec![
        (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (
            header::USER_AGENT,
            HeaderValue::from_static("metrics-lake-alerts"),
        ),
        (
            HeaderName::from_static("webhook-id"),
            HeaderValue::from_str(id).ok()?,
        ),
        (
            HeaderName::from_static("webhook-timestamp"),
            HeaderValue::from_str(&timestamp.to_string()).ok()?,
        ),
        (
            HeaderName::from_static("webhook-signature"),
            HeaderValue::from_str(signature).ok()?,
        ),
    ])
}

fn classify(result: Result<HttpResponse, HttpError>) -> Attempt {
    match result {
        Ok(r) if (200..300).contains(&r.status) => Attempt::Done(r.status),
        Ok(r) if (300..400).contains(&r.status) => {
            Attempt::Stop(DeliveryReason::RedirectRefused, Some(r.status))
        }
        Ok(r) if r.status == 408 || r.status == 429 || r.status >= 500 => Attempt::Retry(
            DeliveryReason::ReceiverFailed,
            Some(r.status),
            r.retry_after_delay(),
        ),
        Ok(r) => Attempt::Stop(DeliveryReason::ReceiverRefused, Some(r.status)),
        Err(HttpError::AddressRefused(_)) => Attempt::Stop(DeliveryReason::AddressNotAllowed, None),
        Err(HttpError::Timeout(_)) => Attempt::Retry(DeliveryReason::Timeout, None, None),
        Err(_) => Attempt::Retry(DeliveryReason::ConnectionFailed, None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_snake_case_and_distinct() {
        assert_eq!(
            metrics_schema::outcome::first_bad_code(DeliveryReason::ALL.map(DeliveryReason::code)),
            None
        );
    }

    #[test]
    fn answers_are_classified_by_what_a_retry_can_fix() {
        let answer = |status| {
            let r = Ok(HttpResponse {
                status,
                retry_after: None,
                body: Bytes::new(),
            });
            match classify(r) {
                Attempt::Done(_) => "done",
                Attempt::Retry(..) => "retry",
                Attempt::Stop(reason, _) => reason.code(),
            }
        };
        assert_eq!(answer(200), "done");
        assert_eq!(answer(204), "done");
        assert_eq!(answer(302), "redirect_refused");
        assert_eq!(answer(307), "redirect_refused");
        assert_eq!(answer(400), "receiver_refused");
        assert_eq!(answer(410), "receiver_refused");
        assert_eq!(answer(408), "retry");
        assert_eq!(answer(429), "retry");
        assert_eq!(answer(503), "retry");
    }
}
