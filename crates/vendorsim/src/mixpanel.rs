//! `POST /import` as Mixpanel documents it.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use crate::auth::basic;
use crate::state::{Shared, Target};

/// Uncompressed bytes per request: 10 MB (gzip does not raise it).
pub const MAX_REQUEST_BYTES: usize = 10_000_000;
/// Events per request.
pub const MAX_EVENTS: usize = 2_000;
/// One event's JSON: under 1 MB.
pub const MAX_EVENT_BYTES: usize = 1_000_000;
/// Properties per event.
pub const MAX_PROPERTIES: usize = 255;
/// `$insert_id`: at most 36 bytes.
pub const MAX_INSERT_ID_BYTES: usize = 36;
/// 1971-01-01T00:00:00Z in seconds: earlier times are refused.
const MIN_TIME_SECS: f64 = 31_536_000.0;
/// Times more than an hour ahead are refused.
const MAX_FUTURE_SECS: f64 = 3_600.0;

/// Values Mixpanel refuses as `distinct_id` or `$insert_id`.
const PLACEHOLDERS: [&str; 17] = [
    "00000000-0000-0000-0000-000000000000",
    "<nil>",
    "[]",
    "{}",
    "0",
    "-1",
    "anon",
    "anonymous",
    "false",
    "lmy47d",
    "n/a",
    "nan",
    "nil",
    "none",
    "null",
    "true",
    "undefined",
];

fn error(status: StatusCode, message: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    (
        status,
        Json(json!({"code": status.as_u16(), "error": message, "status": reason})),
    )
        .into_response()
}

pub(crate) async fn import(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = shared.before_request(Target::Mixpanel, body.len()).await {
        return response;
    }
    let gzip = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let (status, events, response) = handle(&shared, &query, &headers, &body, gzip);
    shared.log(Target::Mixpanel, status.as_u16(), events, body.len(), gzip);
    response
}

fn handle(
    shared: &Shared,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
    gzip: bool,
) -> (StatusCode, usize, Response) {
    let credentials = &shared.credentials;
    let authorised = match (query.get("project_id"), basic(headers)) {
        (Some(project), Some((user, secret))) => {
            project == &credentials.mixpanel_project_id
                && user == credentials.mixpanel_service_account
                && secret == credentials.mixpanel_service_secret
        }
        (None, Some((user, secret))) => user == credentials.mixpanel_project_token && secret.is_empty(),
        (_, None) => false,
    };
    if !authorised {
        return (
            StatusCode::UNAUTHORIZED,
            0,
            error(StatusCode::UNAUTHORIZED, "Invalid credentials"),
        );
    }
    let strict = query.get("strict").is_none_or(|s| s == "1");

    let max = shared.lock().settings.mixpanel_max_bytes;
    let too_large = || {
        let message = format!("request exceeds max limit of {max} bytes");
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            0,
            error(StatusCode::PAYLOAD_TOO_LARGE, &message),
        )
    };
    let plain = if gzip {
        let mut out = Vec::new();
        let read = MultiGzDecoder::new(body)
            .take(max as u64 + 1)
            .read_to_end(&mut out);
        if read.is_err() {
            return (
                StatusCode::BAD_REQUEST,
                0,
                error(StatusCode::BAD_REQUEST, "invalid gzip body"),
            );
        }
        out
    } else {
        body.to_vec()
    };
    if plain.len() > max {
        return too_large();
    }

    let ndjson = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson"));
    let Some(events) = parse_events(&plain, ndjson) else {
        return (
            StatusCode::BAD_REQUEST,
            0,
            error(StatusCode::BAD_REQUEST, "unable to parse the request body"),
        );
    };
    let count = events.len();
    if count > MAX_EVENTS {
        let message = format!("request contains {count} events, the limit is {MAX_EVENTS}");
        return (
            StatusCode::BAD_REQUEST,
            count,
            error(StatusCode::BAD_REQUEST, &message),
        );
    }

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut inner = shared.lock();
    let key = inner.settings.failed_records_key.clone();
    let mut failed = Vec::new();
    let mut imported = 0;
    for (index, event) in events.into_iter().enumerate() {
        match validate(&event, now) {
            Err((field, message)) => {
                let insert_id = event
                    .pointer("/properties/$insert_id")
                    .cloned()
                    .unwrap_or(Value::Null);
                let mut record = Map::new();
                record.insert("index".into(), json!(index));
                record.insert(key.clone(), insert_id);
                record.insert("field".into(), json!(field));
                record.insert("message".into(), json!(message));
                failed.push(Value::Object(record));
            }
            Ok(dedup_key) => {
                imported += 1;
                inner.mixpanel.received += 1;
                match inner.mixpanel_keys.get(&dedup_key) {
                    Some(&position) => inner.mixpanel.accepted[position] = event,
                    None => {
                        let position = inner.mixpanel.accepted.len();
                        inner.mixpanel_keys.insert(dedup_key, position);
                        inner.mixpanel.accepted.push(event);
                    }
                }
            }
        }
    }
    inner.mixpanel.failed += failed.len();
    if failed.is_empty() || !strict {
        let body = json!({"code": 200, "num_records_imported": imported, "status": "OK"});
        return (StatusCode::OK, count, Json(body).into_response());
    }
    let body = json!({
        "code": 400,
        "error": "some data points in the request failed validation",
        "status": "Bad Request",
        "num_records_imported": imported,
        "failed_records": failed,
    });
    (
        StatusCode::BAD_REQUEST,
        count,
        (StatusCode::BAD_REQUEST, Json(body)).into_response(),
    )
}

fn parse_events(body: &[u8], ndjson: bool) -> Option<Vec<Value>> {
    if ndjson {
        body.split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(|line| serde_json::from_slice(line).ok())
            .collect()
    } else {
        serde_json::from_slice(body).ok()
    }
}

fn is_placeholder(value: &str) -> bool {
    PLACEHOLDERS.iter().any(|p| p.eq_ignore_ascii_case(value.trim()))
}

/// The event's dedup key, or the failing field and Mixpanel-style message.
fn validate(event: &Value, now_secs: f64) -> Result<String, (&'static str, String)> {
    let size = serde_json::to_vec(event).map(|v| v.len()).unwrap_or(usize::MAX);
    if size >= MAX_EVENT_BYTES {
        return Err(("event", "event is larger than 1MB".into()));
    }
    let name = event
        .get("event")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let name = name.ok_or(("event", "'event' must be a non-empty string".to_owned()))?;
    let properties = event.get("properties").and_then(Value::as_object);
    let properties = properties.ok_or(("properties", "'properties' must be an object".to_owned()))?;
    if properties.len() > MAX_PROPERTIES {
        return Err(("properties", format!("more than {MAX_PROPERTIES} properties")));
    }

    let time = properties.get("time").and_then(Value::as_f64);
    let time = time.ok_or(("properties.time", "'properties.time' must be a number".to_owned()))?;
    // Seconds or milliseconds: anything past the year 5138 in seconds is milliseconds.
    let secs = if time > 1e11 { time / 1000.0 } else { time };
    if secs < MIN_TIME_SECS {
        return Err(("properties.time", "'properties.time' is before 1971-01-01".into()));
    }
    if secs > now_secs + MAX_FUTURE_SECS {
        return Err((
            "properties.time",
            "'properties.time' is more than 1 hour in the future".into(),
        ));
    }

    let distinct_id = match properties.get("distinct_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err((
                "properties.distinct_id",
                "'properties.distinct_id' is required".into(),
            ));
        }
    };
    if !distinct_id.is_empty() && is_placeholder(&distinct_id) {
        return Err((
            "properties.distinct_id",
            "'properties.distinct_id' is a placeholder value".into(),
        ));
    }

    let insert_id = properties.get("$insert_id").and_then(Value::as_str);
    let insert_id = insert_id.ok_or((
        "properties.$insert_id",
        "'properties.$insert_id' is required".to_owned(),
    ))?;
    let valid = !insert_id.is_empty()
        && insert_id.len() <= MAX_INSERT_ID_BYTES
        && insert_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !is_placeholder(insert_id);
    if !valid {
        return Err((
            "properties.$insert_id",
            "'properties.$insert_id' must be 1-36 characters of [A-Za-z0-9-]".into(),
        ));
    }
    let time_ms = (secs * 1000.0).round() as i64;
    Ok(format!("{name}\u{0}{time_ms}\u{0}{distinct_id}\u{0}{insert_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_795_428_000.0;

    fn event(properties: Value) -> Value {
        json!({"event": "scan_started", "properties": properties})
    }

    #[test]
    fn a_complete_event_passes_and_seconds_and_milliseconds_share_a_key() {
        let ms = event(json!({"time": 1_795_427_000_000_i64, "distinct_id": "u1", "$insert_id": "abc-1"}));
        let secs = event(json!({"time": 1_795_427_000, "distinct_id": "u1", "$insert_id": "abc-1"}));
        assert_eq!(validate(&ms, NOW), validate(&secs, NOW));
        assert!(validate(&ms, NOW).is_ok());
    }

    #[test]
    fn each_rule_names_its_field() {
        let base = json!({"time": 1_795_427_000, "distinct_id": "u1", "$insert_id": "abc-1"});
        let with = |key: &str, value: Value| {
            let mut p = base.clone();
            p[key] = value;
            validate(&event(p), NOW).unwrap_err().0
        };
        assert_eq!(with("time", json!(100)), "properties.time");
        assert_eq!(with("time", json!(NOW + 7200.0)), "properties.time");
        assert_eq!(with("distinct_id", json!("undefined")), "properties.distinct_id");
        assert_eq!(with("$insert_id", json!("a".repeat(37))), "properties.$insert_id");
        assert_eq!(
            with("$insert_id", json!("has_underscore")),
            "properties.$insert_id"
        );
        assert!(
            validate(
                &event(json!({"time": 1_795_427_000, "distinct_id": "", "$insert_id": "x"})),
                NOW
            )
            .is_ok()
        );
    }
}
