//! The simulator's state: credentials, settings, queued faults, what each vendor accepted and a
//! log of requests. Every type here is also the JSON of the control API.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which vendor a fault or a log line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Segment,
    Mixpanel,
}

/// What the simulator accepts as credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub segment_write_key: String,
    pub mixpanel_project_id: String,
    pub mixpanel_service_account: String,
    pub mixpanel_service_secret: String,
    pub mixpanel_project_token: String,
}

impl Credentials {
    /// Fixed values for tests and local runs.
    pub fn test() -> Credentials {
        Credentials {
            segment_write_key: "test-write-key".into(),
            mixpanel_project_id: "424242".into(),
            mixpanel_service_account: "sa-test.mp-service-account".into(),
            mixpanel_service_secret: "test-service-secret".into(),
            mixpanel_project_token: "test-project-token".into(),
        }
    }
}

/// A programmed misbehaviour: the next `count` requests to `target` wait `delay_ms`, then answer
/// `status` (with `Retry-After` and `body` when given) instead of being processed. Without a
/// status the request is only delayed, then processed normally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub target: Target,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default = "one")]
    pub count: u32,
    /// Sent verbatim: seconds (`"2"`) or an HTTP date.
    #[serde(default)]
    pub retry_after: Option<String>,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub body: Option<String>,
}

fn one() -> u32 {
    1
}

/// A partial update of the settings; absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Added to every vendor request before it is processed (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Mixpanel's uncompressed request limit (default 10,000,000); lower it to provoke 413.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixpanel_max_bytes: Option<usize>,
    /// The key naming the insert id in `failed_records`: `$insert_id` (default) or `insert_id`,
    /// the two spellings Mixpanel's pages show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_records_key: Option<String>,
}

/// Everything the control API reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimState {
    pub segment: SegmentState,
    pub mixpanel: MixpanelState,
    pub requests: Vec<RequestLog>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentState {
    /// Accepted events, one per `messageId` (the first wins, as Segment drops later copies).
    pub accepted: Vec<Value>,
    /// Events received in accepted requests, duplicates included.
    pub received: usize,
    /// Events answered with 200 but not accepted, with why.
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    pub reason: String,
    pub item: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MixpanelState {
    /// Accepted events, one per (`event`, `time`, `distinct_id`, `$insert_id`) (the latest wins).
    pub accepted: Vec<Value>,
    /// Events imported, duplicates included.
    pub received: usize,
    /// Events refused by validation.
    pub failed: usize,
}

/// One vendor request as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLog {
    pub target: Target,
    pub status: u16,
    /// Events in the body (0 when it was not read).
    pub events: usize,
    /// Body bytes as received.
    pub bytes: usize,
    pub gzip: bool,
}

#[derive(Debug)]
pub(crate) struct Effective {
    pub latency: Duration,
    pub mixpanel_max_bytes: usize,
    pub failed_records_key: String,
}

impl Default for Effective {
    fn default() -> Self {
        Effective {
            latency: Duration::ZERO,
            mixpanel_max_bytes: crate::mixpanel::MAX_REQUEST_BYTES,
            failed_records_key: "$insert_id".into(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub settings: Effective,
    pub faults: VecDeque<Fault>,
    pub segment: SegmentState,
    pub segment_ids: HashMap<String, usize>,
    pub mixpanel: MixpanelState,
    pub mixpanel_keys: HashMap<String, usize>,
    pub requests: Vec<RequestLog>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub credentials: Credentials,
    inner: Mutex<Inner>,
}

impl Shared {
    pub fn new(credentials: Credentials) -> Shared {
        Shared {
            credentials,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The state; a poisoned lock still holds usable data (handlers do not panic mid-update).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn log(&self, target: Target, status: u16, events: usize, bytes: usize, gzip: bool) {
        self.lock().requests.push(RequestLog {
            target,
            status,
            events,
            bytes,
            gzip,
        });
    }

    /// Waits the configured latency, then applies the next fault for `target`, if any. Returns
    /// the response to send instead of processing the request.
    pub async fn before_request(&self, target: Target, bytes: usize) -> Option<Response> {
        let (latency, fault) = {
            let mut inner = self.lock();
            let fault = take_fault(&mut inner.faults, target);
            (inner.settings.latency, fault)
        };
        tokio::time::sleep(latency).await;
        let fault = fault?;
        tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        let status = fault.status.and_then(|s| http::StatusCode::from_u16(s).ok())?;
        self.log(target, status.as_u16(), 0, bytes, false);
        let mut response = (status, fault.body.unwrap_or_default()).into_response();
        if let Some(value) = fault
            .retry_after
            .and_then(|v| http::HeaderValue::from_str(&v).ok())
        {
            response.headers_mut().insert(http::header::RETRY_AFTER, value);
        }
        Some(response)
    }
}

fn take_fault(faults: &mut VecDeque<Fault>, target: Target) -> Option<Fault> {
    let position = faults.iter().position(|f| f.target == target)?;
    let fault = faults.get_mut(position)?;
    fault.count = fault.count.saturating_sub(1);
    let taken = fault.clone();
    if fault.count == 0 {
        faults.remove(position);
    }
    Some(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(target: Target, count: u32) -> Fault {
        Fault {
            target,
            status: Some(503),
            count,
            retry_after: None,
            delay_ms: 0,
            body: None,
        }
    }

    #[test]
    fn faults_are_used_up_per_target_in_order() {
        let mut faults = VecDeque::from([fault(Target::Mixpanel, 1), fault(Target::Segment, 2)]);
        assert!(take_fault(&mut faults, Target::Segment).is_some());
        assert!(take_fault(&mut faults, Target::Segment).is_some());
        assert!(take_fault(&mut faults, Target::Segment).is_none());
        assert!(take_fault(&mut faults, Target::Mixpanel).is_some());
        assert!(faults.is_empty());
    }
}
