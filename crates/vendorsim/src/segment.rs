//! `POST /v1/batch` as Segment documents it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::auth::basic;
use crate::state::{Rejected, Shared, Target};

/// Whole request: 500 KB.
pub const MAX_REQUEST_BYTES: usize = 500_000;
/// One event inside a batch: 32 KB.
pub const MAX_EVENT_BYTES: usize = 32_000;
/// Events per batch: over this Segment answers 200 and rejects them all.
pub const MAX_BATCH_EVENTS: usize = 2_500;

const TYPES: [&str; 6] = ["track", "identify", "page", "screen", "group", "alias"];

#[derive(Deserialize)]
struct Batch<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    #[serde(rename = "writeKey", default)]
    write_key: Option<String>,
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"success": false, "message": message})),
    )
        .into_response()
}

pub(crate) async fn batch(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = shared.before_request(Target::Segment, body.len()).await {
        return response;
    }
    let (status, events, response) = handle(&shared, &headers, &body);
    shared.log(Target::Segment, status.as_u16(), events, body.len(), false);
    response
}

fn handle(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> (StatusCode, usize, Response) {
    let json_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_type {
        return (
            StatusCode::BAD_REQUEST,
            0,
            bad_request("Content-Type must be application/json"),
        );
    }
    if body.len() > MAX_REQUEST_BYTES {
        return (
            StatusCode::BAD_REQUEST,
            0,
            bad_request("request is larger than 500KB"),
        );
    }
    let Ok(batch) = serde_json::from_slice::<Batch<'_>>(body) else {
        return (StatusCode::BAD_REQUEST, 0, bad_request("invalid JSON"));
    };
    let key = &shared.credentials.segment_write_key;
    let header_ok = basic(headers).is_some_and(|(user, _)| &user == key);
    let body_ok = batch.write_key.as_ref() == Some(key);
    if !header_ok && !body_ok {
        return (
            StatusCode::UNAUTHORIZED,
            batch.batch.len(),
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"success": false, "message": "invalid write key"})),
            )
                .into_response(),
        );
    }
    let events = batch.batch.len();
    if batch.batch.iter().any(|item| item.get().len() > MAX_EVENT_BYTES) {
        return (
            StatusCode::BAD_REQUEST,
            events,
            bad_request("an event is larger than 32KB"),
        );
    }

    let mut inner = shared.lock();
    for raw in &batch.batch {
        let item: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
        let reason = if events > MAX_BATCH_EVENTS {
            Some("batch_over_2500_events")
        } else {
            check(&item)
        };
        if let Some(reason) = reason {
            inner.segment.rejected.push(Rejected {
                reason: reason.into(),
                item,
            });
            continue;
        }
        inner.segment.received += 1;
        let message_id = item.get("messageId").and_then(Value::as_str).map(str::to_owned);
        let message_id = message_id.unwrap_or_else(|| format!("sim-{}", inner.segment.received));
        if !inner.segment_ids.contains_key(&message_id) {
            let position = inner.segment.accepted.len();
            inner.segment_ids.insert(message_id, position);
            inner.segment.accepted.push(item);
        }
    }
    (
        StatusCode::OK,
        events,
        Json(json!({"success": true})).into_response(),
    )
}

/// Why Segment would drop this item while answering 200.
fn check(item: &Value) -> Option<&'static str> {
    let Some(kind) = item.get("type").and_then(Value::as_str) else {
        return Some("missing_type");
    };
    if !TYPES.contains(&kind) {
        return Some("unknown_type");
    }
    let has_event = item
        .get("event")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if kind == "track" && !has_event {
        return Some("missing_event");
    }
    let present = |name: &str| {
        item.get(name)
            .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()))
    };
    if !present("userId") && !present("anonymousId") {
        return Some("no_user_anon_id");
    }
    if item
        .get("messageId")
        .and_then(Value::as_str)
        .is_some_and(|m| m.len() >= 100)
    {
        return Some("message_id_too_long");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_need_a_type_an_event_and_an_identity() {
        assert_eq!(check(&json!({"event": "e", "userId": "u"})), Some("missing_type"));
        assert_eq!(
            check(&json!({"type": "track", "userId": "u"})),
            Some("missing_event")
        );
        assert_eq!(
            check(&json!({"type": "track", "event": "e"})),
            Some("no_user_anon_id")
        );
        assert_eq!(
            check(&json!({"type": "track", "event": "e", "anonymousId": "a"})),
            None
        );
        assert_eq!(check(&json!({"type": "identify", "userId": "u"})), None);
    }
}
