//! What the tests share: a webhook receiver on 127.0.0.1 that records every request and
//! answers from a script, a read port that answers from a table, and alert builders.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use metrics_alerts::reader::ReadFuture;
use metrics_alerts::store::sqlite::SqliteAlertStore;
use metrics_alerts::{
    Alert, AlertInput, AlertLimits, AlertStore, Deliverer, DeliverySettings, Evaluator, EvaluatorSettings,
    FixedClock, ReadError, UrlPolicy, WindowQuery, WindowReader,
};
use metrics_http::Secret;
use metrics_schema::TenantId;
use serde_json::json;

/// 2026-11-20T12:00:00Z.
pub const T0: i64 = 1_795_176_000_000;
pub const MINUTE: i64 = 60_000;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Verifies the signature as a receiver would.
    pub fn verifies(&self, secret: &Secret, now_secs: i64) -> bool {
        metrics_alerts::signing::verify(
            secret,
            &self.id,
            &self.timestamp,
            &self.signature,
            &self.body,
            now_secs,
        )
        .is_ok()
    }
}

#[derive(Debug, Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Statuses to answer, in order; 200 once it is empty.
    script: Mutex<VecDeque<u16>>,
}

/// A webhook receiver on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(ReceiverState::default());
        let app = Router::new()
            .route("/hook", post(hook))
            .route(
                "/moved",
                post(|| async {
                    (StatusCode::FOUND, [(header::LOCATION, "http://169.254.169.254/")]).into_response()
                }),
            )
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers these statuses first.
    pub fn script(&self, statuses: &[u16]) {
        self.state.script.lock().unwrap().extend(statuses);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

async fn hook(State(state): State<Arc<ReceiverState>>, headers: HeaderMap, body: Bytes) -> Response {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    state.received.lock().unwrap().push(Received {
        id: text("webhook-id"),
        timestamp: text("webhook-timestamp"),
        signature: text("webhook-signature"),
        body,
    });
    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap().into_response()
}

/// A read port answering from a table: (tenant, from_ms) → value; no entry is no data.
#[derive(Debug, Default)]
pub struct TableReader {
    pub values: Mutex<BTreeMap<(String, i64), f64>>,
    pub asked: Mutex<Vec<(String, WindowQuery)>>,
    /// When set, every read waits here first (to make evaluations overlap).
    pub gate: Option<Arc<tokio::sync::Barrier>>,
}

impl TableReader {
    pub fn set(&self, tenant: &str, from_ms: i64, value: f64) {
        self.values
            .lock()
            .unwrap()
            .insert((tenant.to_owned(), from_ms), value);
    }
}

impl WindowReader for TableReader {
    fn value<'a>(
        &'a self,
        tenant: &'a TenantId<'static>,
        query: &'a WindowQuery,
    ) -> ReadFuture<'a, Option<f64>> {
        Box::pin(async move {
            if let Some(gate) = &self.gate {
                gate.wait().await;
            }
            self.asked
                .lock()
                .unwrap()
                .push((tenant.as_str().to_owned(), query.clone()));
            if query.metric == "hangs" {
                // A store that never answers (the tenant's budget has to end it).
                std::future::pending::<()>().await;
            }
            if query.metric == "broken" {
                return Err(ReadError {
                    code: "store_unavailable",
                    message: "down".into(),
                });
            }
            Ok(self
                .values
                .lock()
                .unwrap()
                .get(&(tenant.as_str().to_owned(), query.from_ms))
                .copied())
        })
    }
}

/// An alert of `tenant` posting to `url`: the sum of new findings over 1 h above 5.
pub fn alert(tenant: &str, url: &str, patch: serde_json::Value) -> Alert {
    let mut input = json!({
        "name": "Many new findings",
        "metric": "findings_upload_completed",
        "measure": "new_findings_count",
        "aggregation": "sum",
        "window": "1h",
        "interval": "1m",
        "condition": {"type": "above", "threshold": 5},
        "url": url
    });
    for (k, v) in patch.as_object().unwrap() {
        input[k] = v.clone();
    }
    let input: AlertInput = serde_json::from_value(input).unwrap();
    Alert {
        id: metrics_alerts::store::new_id().unwrap(),
        tenant: tenant.to_owned(),
        definition: input
            .validate(&AlertLimits::default(), UrlPolicy::LOCAL, None)
            .unwrap(),
        created_ms: T0,
        updated_ms: T0,
    }
}

pub fn fast_delivery() -> DeliverySettings {
    DeliverySettings {
        timeout: Duration::from_secs(5),
        attempts: 3,
        backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..DeliverySettings::default()
    }
}

/// Everything an evaluation needs, over one SQLite store.
pub struct Kit {
    pub store: Arc<SqliteAlertStore>,
    pub reader: Arc<TableReader>,
    pub clock: Arc<FixedClock>,
}

impl Kit {
    pub fn new(reader: TableReader) -> Kit {
        Kit {
            store: Arc::new(SqliteAlertStore::in_memory().unwrap()),
            reader: Arc::new(reader),
            clock: Arc::new(FixedClock::new(T0)),
        }
    }

    pub fn evaluator(&self) -> Evaluator {
        self.evaluator_with(EvaluatorSettings::default())
    }

    pub fn evaluator_with(&self, settings: EvaluatorSettings) -> Evaluator {
        let deliverer = Deliverer::new(UrlPolicy::LOCAL, fast_delivery(), self.clock.clone()).unwrap();
        Evaluator::new(
            self.store.clone(),
            self.reader.clone(),
            Arc::new(deliverer),
            self.clock.clone(),
            settings,
        )
    }

    pub async fn add(&self, alert: &Alert) -> Secret {
        let secret = metrics_alerts::signing::new_secret().unwrap();
        self.store.create(alert, &secret, 100).await.unwrap();
        secret
    }
}
