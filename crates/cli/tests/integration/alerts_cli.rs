#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The alerts acceptance test, as a user runs it: the sample data in the local store, an alert
//! created through `metrics-lake serve`'s API with a receiver on 127.0.0.1, then
//! `metrics-lake alerts evaluate --now …`: one signed request per transition, nothing on a
//! second evaluation at the same time, one `resolved` request on the way back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use metrics_http::Secret;
use serde_json::{Value, json};

use crate::run_cli::{State, metrics_lake};

/// One request the receiver got: its Standard Webhooks headers and body.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: Bytes,
}

/// A webhook receiver on 127.0.0.1, answering 200 to every POST /hook (503 while `down`).
struct Receiver {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let is_down = Arc::clone(&down);
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let log = Arc::clone(&log);
                let is_down = Arc::clone(&is_down);
                async move {
                    if is_down.load(std::sync::atomic::Ordering::SeqCst) {
                        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down");
                    }
                    let text = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    log.lock().unwrap().push(Received {
                        id: text("webhook-id"),
                        timestamp: text("webhook-timestamp"),
                        signature: text("webhook-signature"),
                        body,
                    });
                    (axum::http::StatusCode::OK, "ok")
                }
            }),
        );
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            port,
            received,
            down,
            _runtime: runtime,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// `metrics-lake serve` in the background, stopped when dropped.
struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    fn start(state: &State) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_metrics-lake"))
            .args([
                "serve",
                "--port",
                "0",
                "--alerts-every",
                "0",
                "--allow-local-webhooks",
            ])
            .args(["--state-dir", state.arg()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving the dashboard at http://127.0.0.1:PORT/ and …"
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Serve { child, addr }
    }

    /// One HTTP/1.1 exchange (the connection closes after it): status and body.
    fn request(&self, method: &str, path: &str, bearer: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        let body = body.map(Value::to_string).unwrap_or_default();
        let auth = bearer
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
        let text = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, serde_json::from_str(text).unwrap_or(Value::Null))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn evaluate(state: &State, now: &str) -> Value {
    let output = metrics_lake(&[
        "alerts",
        "evaluate",
        "--now",
        now,
        "--allow-local-webhooks",
        "--json",
        "--state-dir",
        state.arg(),
    ]);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn verifies(received: &Received, secret: &Secret) -> bool {
    let now = metrics_schema::EventTime::now().as_millis() / 1000;
    metrics_alerts::signing::verify(
        secret,
        &received.id,
        &received.timestamp,
        &received.signature,
        &received.body,
        now,
    )
    .is_ok()
}

/// Creates, through `serve`'s API as acme-prod, an alert on findings uploaded in a day above 0
/// that posts to `receiver`: its id and the signing secret the API returned.
fn create_alert(state: &State, receiver: &Receiver) -> (String, Secret) {
    let serve = Serve::start(state);
    let (status, token) = serve.request("GET", "/local/token?tenant=acme-prod", None, None);
    assert_eq!(status, 200, "{token}");
    let token = token["token"].as_str().unwrap().to_owned();
    let alert = json!({
        "name": "Findings uploaded in a day",
        "metric": "findings_upload_completed",
        "window": "1d",
        "condition": {"type": "above", "threshold": 0},
        "url": format!("http://127.0.0.1:{}/hook", receiver.port)
    });
    let (status, created) = serve.request("POST", "/v1/alerts", Some(&token), Some(&alert));
    assert_eq!(status, 201, "{created}");
    let (status, listed) = serve.request("GET", "/v1/alerts", Some(&token), None);
    assert_eq!(status, 200);
    assert!(!listed.to_string().contains(created["secret"].as_str().unwrap()));
    (
        created["id"].as_str().unwrap().to_owned(),
        Secret::new(created["secret"].as_str().unwrap()),
    )
}

#[test]
fn acceptance_an_alert_created_through_the_api_fires_once_signed_and_resolves_once() {
    let state = State::new("alerts");
    let run = metrics_lake(&["run", "--sample-events", "3000", "--state-dir", state.arg()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let receiver = Receiver::start();
    let (id, secret) = create_alert(&state, &receiver);

    // Friday 2026-11-20 at noon: the sample has uploads in the day before, so it fires.
    let report = evaluate(&state, "2026-11-20T12:00:00Z");
    assert_eq!(
        (report["transitions"].as_u64(), report["delivered"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, format!("{id}.1.firing"));
    assert!(
        verifies(&got[0], &secret),
        "the signature verifies with the secret from the API"
    );
    assert!(!verifies(
        &got[0],
        &Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    ));
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "alert.firing");
    assert!(body["data"]["value"].as_f64().unwrap() > 0.0, "{body}");

    // The same time again: nothing is sent.
    let report = evaluate(&state, "2026-11-20T12:00:00Z");
    assert_eq!(report["transitions"], 0, "{report}");
    assert_eq!(receiver.received().len(), 1);

    // After the sample's last day there are no uploads: the alert resolves, once.
    let report = evaluate(&state, "2027-01-10T00:00:00Z");
    assert_eq!(report["delivered"], 1, "{report}");
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].id, format!("{id}.2.resolved"));
    assert!(verifies(&got[1], &secret));
    let body: Value = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(body["type"], "alert.resolved");
    assert_eq!(body["data"]["value"], 0.0);

    let listed = metrics_lake(&["alerts", "list", "--json", "--state-dir", state.arg()]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["alerts"][0]["status"], "resolved", "{listed}");
    assert_eq!(listed["alerts"][0]["tenant"], "acme-prod");
}

#[test]
fn alerts_test_sends_a_signed_test_notification_and_changes_nothing() {
    let state = State::new("alerts-test");
    let run = metrics_lake(&["run", "--sample-events", "300", "--state-dir", state.arg()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let receiver = Receiver::start();
    let serve = Serve::start(&state);
    let (_, token) = serve.request("GET", "/local/token?tenant=acme-prod", None, None);
    let token = token["token"].as_str().unwrap().to_owned();
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    let alert = json!({"name": "Any scan", "metric": "scan_completed", "window": "7d",
                       "condition": {"type": "absent"}, "url": url});
    let (status, created) = serve.request("POST", "/v1/alerts", Some(&token), Some(&alert));
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    // Without the flag, a local receiver is refused.
    let refused = metrics_lake(&["alerts", "test", id, "--json", "--state-dir", state.arg()]);
    assert!(!refused.status.success());
    assert!(receiver.received().is_empty());
    let tested = metrics_lake(&[
        "alerts",
        "test",
        id,
        "--allow-local-webhooks",
        "--json",
        "--state-dir",
        state.arg(),
    ]);
    assert!(
        tested.status.success(),
        "{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert!(verifies(
        &got[0],
        &Secret::new(created["secret"].as_str().unwrap())
    ));
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "alert.test");
    let (_, one) = serve.request("GET", &format!("/v1/alerts/{id}"), Some(&token), None);
    assert_eq!(one["state"]["status"], "ok");
    assert_eq!(one["state"]["last_evaluated_ms"], Value::Null);
}

/// A receiver that is down: the firing notification is dead lettered; `metrics-lake errors`
/// lists it under the `alerts` stage; once the receiver is back, `replay` delivers it once,
/// with the same webhook-id and a valid signature, and a second replay sends nothing.
#[test]
fn a_dead_lettered_notification_is_listed_and_replayed_once_the_receiver_is_back() {
    let state = State::new("alerts-replay");
    let run = metrics_lake(&["run", "--sample-events", "3000", "--state-dir", state.arg()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let receiver = Receiver::start();
    let (id, secret) = create_alert(&state, &receiver);
    receiver.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let output = metrics_lake(&[
        "alerts",
        "evaluate",
        "--now",
        "2026-11-20T12:00:00Z",
        "--allow-local-webhooks",
        "--json",
        "--state-dir",
        state.arg(),
    ]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["dead_lettered"], 1, "{report}");

    let errors = metrics_lake(&[
        "errors",
        "--stage",
        "alerts",
        "--json",
        "--raw",
        "--state-dir",
        state.arg(),
    ]);
    assert!(
        errors.status.success(),
        "{}",
        String::from_utf8_lossy(&errors.stderr)
    );
    let errors: Value = serde_json::from_slice(&errors.stdout).unwrap();
    let records = errors["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{errors}");
    assert_eq!(records[0]["stage"], "alerts");
    assert_eq!(records[0]["reason"], "receiver_failed");
    assert_eq!(records[0]["tenant_id"], "acme-prod");
    assert_eq!(records[0]["source"], format!("{id}.1.firing"));
    assert!(records[0]["raw"].as_str().unwrap().contains("alert.firing"));

    receiver.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let replay = |extra: &[&str]| -> Value {
        let mut args = vec![
            "replay",
            "--stage",
            "alerts",
            "--allow-local-webhooks",
            "--json",
            "--state-dir",
            state.arg(),
        ];
        args.extend_from_slice(extra);
        let output = metrics_lake(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let dry = replay(&["--dry-run"]);
    assert_eq!(dry["outcomes"], json!({"would_replay": 1}), "{dry}");
    assert!(receiver.received().is_empty());
    let first = replay(&[]);
    assert_eq!(first["outcomes"], json!({"delivered": 1}), "{first}");
    assert_eq!(first["accounting"]["balanced"], true);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, format!("{id}.1.firing"));
    assert!(verifies(&got[0], &secret));
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "alert.firing");

    let second = replay(&[]);
    assert_eq!(second["outcomes"], json!({"duplicate": 1}), "{second}");
    assert_eq!(receiver.received().len(), 1, "nothing is sent twice");
    let pending = metrics_lake(&[
        "errors",
        "--stage",
        "alerts",
        "--pending",
        "--json",
        "--state-dir",
        state.arg(),
    ]);
    let pending: Value = serde_json::from_slice(&pending.stdout).unwrap();
    assert!(pending["records"].as_array().unwrap().is_empty(), "{pending}");
}
