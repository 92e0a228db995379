//! The `/_sim/` control API: read what was accepted, queue faults, change settings, reset.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use http::StatusCode;

use crate::state::{Fault, Settings, Shared, SimState};

pub(crate) async fn state(State(shared): State<Arc<Shared>>) -> Json<SimState> {
    let inner = shared.lock();
    Json(SimState {
        segment: inner.segment.clone(),
        mixpanel: inner.mixpanel.clone(),
        requests: inner.requests.clone(),
    })
}

pub(crate) async fn push_fault(State(shared): State<Arc<Shared>>, Json(fault): Json<Fault>) -> StatusCode {
    if fault.count > 0 {
        shared.lock().faults.push_back(fault);
    }
    StatusCode::NO_CONTENT
}

pub(crate) async fn settings(State(shared): State<Arc<Shared>>, Json(update): Json<Settings>) -> StatusCode {
    let mut inner = shared.lock();
    if let Some(ms) = update.latency_ms {
        inner.settings.latency = Duration::from_millis(ms);
    }
    if let Some(bytes) = update.mixpanel_max_bytes {
        inner.settings.mixpanel_max_bytes = bytes;
    }
    match update.failed_records_key.as_deref() {
        Some(key @ ("$insert_id" | "insert_id")) => inner.settings.failed_records_key = key.to_owned(),
        Some(_) => return StatusCode::BAD_REQUEST,
        None => {}
    }
    StatusCode::NO_CONTENT
}

/// Forgets accepted events, requests, faults and settings (credentials stay).
pub(crate) async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    *shared.lock() = Default::default();
    StatusCode::NO_CONTENT
}
