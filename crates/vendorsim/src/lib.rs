//! A local stand-in for Segment's HTTP Tracking API (`POST /v1/batch`) and Mixpanel's ingestion
//! API (`POST /import`), behaving as their documentation says, so the forwarder can be tested
//! over real HTTP on 127.0.0.1:
//!
//! - [`segment`]: Basic auth with the write key (or `writeKey` in the body), 500 KB per request,
//!   32 KB per event, 2,500 events per batch (over that: 200 and every event rejected), `type`,
//!   `event` and `userId`/`anonymousId` checks, dedup by `messageId`;
//! - [`mixpanel`]: service-account or project-token Basic auth, gzip bodies, 2,000 events and
//!   10 MB uncompressed per request (413 over the size), strict-mode validation answering 400
//!   with `failed_records` while keeping the valid events, dedup by
//!   (`event`, `time`, `distinct_id`, `$insert_id`);
//! - [`control`]: what was accepted, a request log, programmable faults (429 with
//!   `Retry-After`, 5xx, slow answers) and settings, all under `/_sim/`.
//!
//! Sizes are read in decimal units (500 KB = 500,000 bytes), the smaller reading of the
//! vendors' pages, so a client that passes here also passes there.

pub mod auth;
pub mod client;
pub mod control;
pub mod mixpanel;
pub mod segment;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use client::{SimClient, SimClientError};
pub use state::{Credentials, Fault, Settings, SimState, Target};

/// Bodies above the vendors' limits must still reach the handlers, which answer as the vendor
/// does (400 or 413) instead of the framework's own 413.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The router: vendor endpoints plus the `/_sim/` control API.
pub fn app(credentials: Credentials) -> Router {
    let shared = Arc::new(state::Shared::new(credentials));
    Router::new()
        .route("/v1/batch", post(segment::batch))
        .route("/import", post(mixpanel::import))
        .route("/_sim/state", get(control::state))
        .route("/_sim/faults", post(control::push_fault))
        .route("/_sim/settings", post(control::settings))
        .route("/_sim/reset", post(control::reset))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// A running simulator.
#[derive(Debug)]
pub struct Sim {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Sim {
    /// Starts the simulator on `addr` (`127.0.0.1:0` picks a free port).
    pub async fn start(addr: SocketAddr, credentials: Credentials) -> std::io::Result<Sim> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let router = app(credentials);
        let task = tokio::spawn(async move {
            // Serving ends only when the listener fails; there is nobody to report to.
            let _ = axum::serve(listener, router).await;
        });
        Ok(Sim { addr, task })
    }

    /// Starts on a free port of 127.0.0.1 with the test credentials.
    pub async fn start_local() -> std::io::Result<Sim> {
        Sim::start(SocketAddr::from(([127, 0, 0, 1], 0)), Credentials::test()).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A control client for this simulator.
    pub fn client(&self) -> SimClient {
        SimClient::new(&self.endpoint())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.task.abort();
    }
}
