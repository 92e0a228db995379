//! A local HTTP server speaking Timestream's write protocol (AWS JSON 1.0), with scripted
//! answers and a fixed latency, for fault-injection tests and benchmarks. moto cannot be made
//! to throttle, fail or reject records; this can. Not for production.
//!
//! It keeps a set of tables (`DescribeTable`, `CreateTable`, `DescribeDatabase`,
//! `CreateDatabase`), answers `WriteRecords` with the next scripted [`Reply`] (success when the
//! script is empty) after the configured latency, and records every request.
#![allow(clippy::expect_used)] // a test server: a poisoned lock is a failed test already

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_timestreamwrite::config::Credentials;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A scripted answer to one `WriteRecords` call.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ok,
    /// `ThrottlingException` (HTTP 400).
    Throttle,
    /// `InternalServerException` (HTTP 500).
    ServerError,
    /// `ResourceNotFoundException`, whether or not the table exists.
    NotFound,
    /// `ValidationException`.
    Validation(String),
    /// `AccessDeniedException`.
    AccessDenied,
    /// `RejectedRecordsException` with (index, reason, existing version).
    Rejected(Vec<(i32, String, Option<i64>)>),
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Captured {
    /// `WriteRecords`, `CreateTable`, …
    pub operation: String,
    pub body: Value,
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Reply>,
    latency: Duration,
    tables: HashSet<(String, String)>,
    databases: HashSet<String>,
    requests: Vec<Captured>,
    in_flight: usize,
    max_in_flight: usize,
    /// Keep only the operation of each request, not its body (benchmarks).
    drop_bodies: bool,
}

/// The running server; it stops with the tokio runtime that started it.
#[derive(Debug, Clone)]
pub struct FakeTimestream {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeTimestream {
    /// Starts on a free port of 127.0.0.1, with database `db` existing and no tables.
    pub async fn start(db: &str) -> std::io::Result<FakeTimestream> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        state.lock().expect("fresh lock").databases.insert(db.to_owned());
        let server = FakeTimestream { addr, state };
        let accept = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let conn = accept.clone();
                tokio::spawn(async move { conn.serve(stream).await });
            }
        });
        Ok(server)
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client for this server: test credentials, and no SDK retries (the adapter retries).
    pub async fn client(&self) -> aws_sdk_timestreamwrite::Client {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "fake-timestream",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        aws_sdk_timestreamwrite::Client::new(&sdk)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("fake timestream state"))
    }

    /// Answers the next `WriteRecords` calls with these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.with(|s| s.script.extend(replies));
    }

    /// Every `WriteRecords` answer waits this long first.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency);
    }

    /// Records only the operation of each request from now on, not its body (benchmarks).
    pub fn drop_request_bodies(&self) {
        self.with(|s| s.drop_bodies = true);
    }

    pub fn add_table(&self, db: &str, table: &str) {
        self.with(|s| s.tables.insert((db.to_owned(), table.to_owned())));
    }

    pub fn has_table(&self, db: &str, table: &str) -> bool {
        self.with(|s| s.tables.contains(&(db.to_owned(), table.to_owned())))
    }

    pub fn remove_database(&self, db: &str) {
        self.with(|s| s.databases.remove(db));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Captured> {
        self.with(|s| s.requests.clone())
    }

    /// The requests of one operation.
    pub fn requests_of(&self, operation: &str) -> Vec<Captured> {
        self.with(|s| {
            s.requests
                .iter()
                .filter(|c| c.operation == operation)
                .cloned()
                .collect()
        })
    }

    /// The most `WriteRecords` calls that were in progress at once.
    pub fn max_in_flight(&self) -> usize {
        self.with(|s| s.max_in_flight)
    }

    async fn serve(&self, mut stream: TcpStream) {
        let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
        loop {
            let Some((head_len, operation, body_len)) = read_head(&mut stream, &mut buf).await else {
                return;
            };
            while buf.len() < head_len + body_len {
                let mut chunk = [0u8; 64 * 1024];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body: Value =
                serde_json::from_slice(&buf[head_len..head_len + body_len]).unwrap_or(Value::Null);
            buf.drain(..head_len + body_len);
            let (status, error_type, response) = self.answer(&operation, body).await;
            let payload = response.to_string();
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nx-amzn-requestid: fake\r\n",
                if status == 200 { "OK" } else { "Error" },
                payload.len()
            );
            if let Some(t) = error_type {
                head.push_str(&format!("x-amzn-errortype: {t}\r\n"));
            }
            head.push_str("\r\n");
            // One write per response: a head and body written apart meet Nagle's algorithm and
            // the client's delayed ACK, which adds tens of milliseconds to every call.
            let mut response = head.into_bytes();
            response.extend_from_slice(payload.as_bytes());
            if stream.write_all(&response).await.is_err() {
                return;
            }
        }
    }

    async fn answer(&self, operation: &str, body: Value) -> (u16, Option<&'static str>, Value) {
        let db = body["DatabaseName"].as_str().unwrap_or_default().to_owned();
        let table = body["TableName"].as_str().unwrap_or_default().to_owned();
        self.with(|s| {
            let kept = if s.drop_bodies { Value::Null } else { body.clone() };
            s.requests.push(Captured {
                operation: operation.to_owned(),
                body: kept,
            })
        });
        match operation {
            "DescribeEndpoints" => (
                200,
                None,
                json!({"Endpoints": [{"Address": self.addr.to_string(), "CachePeriodInMinutes": 60}]}),
            ),
            "DescribeDatabase" => {
                if self.with(|s| s.databases.contains(&db)) {
                    (200, None, json!({"Database": {"DatabaseName": db}}))
                } else {
                    not_found("database")
                }
            }
            "CreateDatabase" => {
                self.with(|s| s.databases.insert(db.clone()));
                (200, None, json!({"Database": {"DatabaseName": db}}))
            }
            "DescribeTable" => {
                if self.has_table(&db, &table) {
                    (
                        200,
                        None,
                        json!({"Table": {"DatabaseName": db, "TableName": table}}),
                    )
                } else {
                    not_found("table")
                }
            }
            "CreateTable" => {
                let created = self.with(|s| {
                    if !s.databases.contains(&db) {
                        return None;
                    }
                    Some(s.tables.insert((db.clone(), table.clone())))
                });
                match created {
                    None => not_found("database"),
                    Some(false) => error(400, "ConflictException", "the table exists", json!({})),
                    Some(true) => (
                        200,
                        None,
                        json!({"Table": {"DatabaseName": db, "TableName": table}}),
                    ),
                }
            }
            "WriteRecords" => self.write_records(&db, &table, &body).await,
            _ => error(400, "ValidationException", "unknown operation", json!({})),
        }
    }

    async fn write_records(&self, db: &str, table: &str, body: &Value) -> (u16, Option<&'static str>, Value) {
        let (latency, reply) = self.with(|s| {
            s.in_flight += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
            let reply = if s.tables.contains(&(db.to_owned(), table.to_owned())) {
                s.script.pop_front().unwrap_or(Reply::Ok)
            } else {
                Reply::NotFound
            };
            (s.latency, reply)
        });
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        self.with(|s| s.in_flight -= 1);
        let n = body["Records"].as_array().map_or(0, Vec::len);
        match reply {
            Reply::Ok => (
                200,
                None,
                json!({"RecordsIngested": {"Total": n, "MemoryStore": n, "MagneticStore": 0}}),
            ),
            Reply::Throttle => error(400, "ThrottlingException", "Rate exceeded", json!({})),
            Reply::ServerError => error(500, "InternalServerException", "Internal error", json!({})),
            Reply::NotFound => not_found("table"),
            Reply::Validation(m) => error(400, "ValidationException", &m, json!({})),
            Reply::AccessDenied => error(400, "AccessDeniedException", "denied", json!({})),
            Reply::Rejected(list) => {
                let records: Vec<Value> = list
                    .into_iter()
                    .map(|(i, reason, v)| {
                        let mut r = json!({"RecordIndex": i, "Reason": reason});
                        if let Some(v) = v {
                            r["ExistingVersion"] = json!(v);
                        }
                        r
                    })
                    .collect();
                error(
                    419,
                    "RejectedRecordsException",
                    "One or more records have been rejected.",
                    json!({"RejectedRecords": records}),
                )
            }
        }
    }
}

fn not_found(what: &str) -> (u16, Option<&'static str>, Value) {
    error(
        400,
        "ResourceNotFoundException",
        &format!("The {what} does not exist."),
        json!({}),
    )
}

fn error(
    status: u16,
    kind: &'static str,
    message: &str,
    mut extra: Value,
) -> (u16, Option<&'static str>, Value) {
    extra["__type"] = json!(format!("com.amazonaws.timestream.v20181101#{kind}"));
    // Timestream's modelled errors carry `Message`; generic errors use `message`.
    extra["Message"] = json!(message);
    extra["message"] = json!(message);
    (status, Some(kind), extra)
}

/// Reads one request head: returns its length, the operation (from `X-Amz-Target`) and the
/// body length, or `None` when the connection closes.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(usize, String, usize)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let mut operation = String::new();
            let mut length = 0;
            for line in head.lines().skip(1) {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "x-amz-target" => operation = value.rsplit('.').next().unwrap_or_default().to_owned(),
                    "content-length" => length = value.parse().unwrap_or(0),
                    _ => {}
                }
            }
            return Some((end + 4, operation, length));
        }
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
