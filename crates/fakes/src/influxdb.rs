//! A local InfluxDB 3 / 2 HTTP server that answers as InfluxData documents, for tests of the
//! adapter and the query engine over real HTTP on 127.0.0.1. Not for production.
//!
//! - `POST /api/v3/write_lp?db&precision&accept_partial` (`Bearer` or `Token` auth) and
//!   `POST /api/v2/write?org&bucket&precision` (`Token` auth): gzip or plain bodies; 401 without
//!   a known token, 403 for a read-only token; 400 for a missing database or bucket parameter or
//!   an unknown precision; 404 for an unknown database, bucket or org; 413 over the body limit;
//!   204 when every line is good. A bad line (no field set, or a measurement starting with
//!   `bad`) is refused as each version does: v3 writes the good lines and answers 400 with the
//!   partial-write JSON naming each bad line (1-based); v2 writes nothing and names the first.
//! - `POST /api/v3/configure/database` (409 when it exists), `GET /api/v2/orgs?org=`,
//!   `POST /api/v2/buckets` (422 when it exists).
//! - `POST /api/v3/query_sql` (`{"db","q","format"}`): the next scripted answer, or `[]`; a
//!   read token is limited to its own database (403 elsewhere).
//! - Scripted write replies ([`Reply`]: 429 with `Retry-After`, 5xx, any status) are answered
//!   first, in order. Every request, create and query is recorded.
#![allow(clippy::expect_used)] // a test server: a poisoned lock is a failed test already
#![allow(clippy::result_large_err)] // handlers return the error response itself

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

/// A scripted answer to one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

impl Reply {
    /// 429 with `Retry-After: <secs>`.
    pub fn throttle(secs: u64) -> Reply {
        Reply {
            status: 429,
            retry_after: Some(secs.to_string()),
            body: r#"{"error":"too many requests"}"#.into(),
        }
    }

    /// 503 without `Retry-After`.
    pub fn unavailable() -> Reply {
        Reply {
            status: 503,
            retry_after: None,
            body: r#"{"error":"service unavailable"}"#.into(),
        }
    }

    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            retry_after: None,
            body: body.into(),
        }
    }
}

/// One request the server received (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// `Bearer` or `Token`, when an `Authorization` header was sent.
    pub auth_scheme: Option<String>,
    pub gzip: bool,
    /// The body, decompressed.
    pub body: String,
}

#[derive(Debug)]
struct State {
    org_name: String,
    org_id: String,
    write_token: String,
    /// Read-only tokens and the one database each may query.
    read_tokens: HashMap<String, String>,
    /// Database or bucket → retention as created (`"30d"`, or seconds for a bucket).
    databases: BTreeMap<String, Option<String>>,
    script: VecDeque<Reply>,
    max_body_bytes: usize,
    /// Answer 400 to a database created with `retention_period` (an older InfluxDB 3).
    reject_retention: bool,
    points: Vec<(String, String)>,
    requests: Vec<Captured>,
    creates: Vec<(Instant, String)>,
    query_answers: VecDeque<(u16, String)>,
    queries: Vec<(String, String)>,
}

/// The running server; it stops with the tokio runtime that started it.
#[derive(Debug, Clone)]
pub struct FakeInflux {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeInflux {
    /// Starts on a free port of 127.0.0.1 with one write token, the org `org` (v2) and no
    /// database.
    pub async fn start(write_token: &str, org: &str) -> std::io::Result<FakeInflux> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            org_name: org.to_owned(),
            org_id: "0123456789abcdef".into(),
            write_token: write_token.to_owned(),
            read_tokens: HashMap::new(),
            databases: BTreeMap::new(),
            script: VecDeque::new(),
            max_body_bytes: 10 * 1024 * 1024,
            reject_retention: false,
            points: Vec::new(),
            requests: Vec::new(),
            creates: Vec::new(),
            query_answers: VecDeque::new(),
            queries: Vec::new(),
        }));
        let app = Router::new()
            .route(WriteApi::V3.path(), write_route(WriteApi::V3))
            .route(WriteApi::V2.path(), write_route(WriteApi::V2))
            .route("/api/v3/configure/database", post(create_database))
            .route("/api/v2/orgs", get(orgs))
            .route("/api/v2/buckets", post(create_bucket))
            .route("/api/v3/query_sql", post(query_sql))
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeInflux { addr, state })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("fake influx state"))
    }

    /// Answers the next writes with these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.with(|s| s.script.extend(replies));
    }

    /// Largest decompressed write body accepted (413 above).
    pub fn set_max_body_bytes(&self, n: usize) {
        self.with(|s| s.max_body_bytes = n);
    }

    /// Answer as an InfluxDB 3 release without retention periods: 400 to `retention_period`.
    pub fn reject_retention(&self) {
        self.with(|s| s.reject_retention = true);
    }

    pub fn add_database(&self, db: &str) {
        self.with(|s| s.databases.insert(db.to_owned(), None));
    }

    /// A token that may only query `db`.
    pub fn add_read_token(&self, token: &str, db: &str) {
        self.with(|s| s.read_tokens.insert(token.to_owned(), db.to_owned()));
    }

    /// Databases or buckets with the retention they were created with.
    pub fn databases(&self) -> BTreeMap<String, Option<String>> {
        self.with(|s| s.databases.clone())
    }

    /// Lines written to `db`, in order.
    pub fn points(&self, db: &str) -> Vec<String> {
        self.with(|s| {
            s.points
                .iter()
                .filter(|(d, _)| d == db)
                .map(|(_, l)| l.clone())
                .collect()
        })
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.with(|s| s.requests.clone())
    }

    /// Create calls (databases and buckets) with the time each arrived.
    pub fn creates(&self) -> Vec<(Instant, String)> {
        self.with(|s| s.creates.clone())
    }

    /// The next query answers: status and JSON body.
    pub fn answer_queries(&self, answers: impl IntoIterator<Item = (u16, String)>) {
        self.with(|s| s.query_answers.extend(answers));
    }

    /// Queries received: database and SQL.
    pub fn queries(&self) -> Vec<(String, String)> {
        self.with(|s| s.queries.clone())
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().expect("fake influx state")
}

fn json_response(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The token from `Authorization`, with its scheme, when the scheme is accepted.
fn bearer(headers: &HeaderMap, schemes: &[&str]) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    schemes
        .contains(&scheme)
        .then(|| (scheme.to_owned(), token.trim().to_owned()))
}

enum Auth {
    Write,
    Read(String),
}

fn authorize(state: &State, headers: &HeaderMap, schemes: &[&str]) -> Result<Auth, Response> {
    match bearer(headers, schemes) {
        Some((_, t)) if t == state.write_token => Ok(Auth::Write),
        Some((_, t)) => match state.read_tokens.get(&t) {
            Some(db) => Ok(Auth::Read(db.clone())),
            None => Err(json_response(
                401,
                json!({"code": "unauthorized", "error": "unauthorized access"}),
            )),
        },
        None => Err(json_response(
            401,
            json!({"code": "unauthorized", "error": "unauthorized access"}),
        )),
    }
}

fn decode_body(headers: &HeaderMap, body: &Bytes) -> Result<(bool, String), Response> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let text = if gzip {
        let mut out = String::new();
        flate2::read::GzDecoder::new(body.as_ref())
            .read_to_string(&mut out)
            .map_err(|_| json_response(400, json!({"error": "invalid gzip body"})))?;
        out
    } else {
        String::from_utf8(body.to_vec())
            .map_err(|_| json_response(400, json!({"error": "body is not UTF-8"})))?
    };
    Ok((gzip, text))
}

/// Why a line is bad, if it is: no field set after the key, or a measurement starting `bad`.
fn bad_line(line: &str) -> Option<&'static str> {
    if line.starts_with("bad") {
        return Some("measurement refused by the test server");
    }
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ' ' => {
                return line[i + 1..]
                    .contains('=')
                    .then_some(())
                    .map_or(Some("No fields were provided"), |()| None);
            }
            _ => {}
        }
    }
    Some("No fields were provided")
}

fn capture(
    state: &mut State,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    gzip: bool,
    body: &str,
) {
    let auth_scheme = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(s, _)| s.to_owned());
    state.requests.push(Captured {
        path: path.to_owned(),
        query: query.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        auth_scheme,
        gzip,
        body: body.to_owned(),
    });
}

/// Shared by both write endpoints once the database and precision are known.
fn write_lines(state: &mut State, v3: bool, db: &str, body: &str) -> Response {
    if let Some(reply) = state.script.pop_front() {
        let mut response = json_response(
            reply.status,
            serde_json::from_str(&reply.body).unwrap_or(json!(reply.body)),
        );
        if let Some(after) = reply.retry_after.and_then(|a| a.parse().ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, after);
        }
        return response;
    }
    if body.len() > state.max_body_bytes {
        return if v3 {
            json_response(413, json!({"error": "the request was too large"}))
        } else {
            json_response(
                413,
                json!({"code": "request too large", "message": "unable to read data: points batch is too large"}),
            )
        };
    }
    if !state.databases.contains_key(db) {
        return if v3 {
            json_response(404, json!({"error": format!("database not found: {db}")}))
        } else {
            json_response(
                404,
                json!({"code": "not found", "message": format!("bucket \"{db}\" not found")}),
            )
        };
    }
    let lines: Vec<&str> = body
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    let bad: Vec<(usize, &str, &str)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| bad_line(l).map(|why| (i, *l, why)))
        .collect();
    if let (false, Some((_, line, why))) = (v3, bad.first()) {
        return json_response(
            400,
            json!({"code": "invalid", "message": format!("unable to parse '{line}': {why}")}),
        );
    }
    for (i, line) in lines.iter().enumerate() {
        if !bad.iter().any(|(b, _, _)| *b == i) {
            state.points.push((db.to_owned(), (*line).to_owned()));
        }
    }
    if bad.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let data: Vec<Value> = bad
        .iter()
        .map(|(i, line, why)| json!({"original_line": line, "line_number": i + 1, "error_message": why}))
        .collect();
    json_response(
        400,
        json!({"error": "partial write of line protocol occurred", "data": data}),
    )
}

/// The two write APIs, which differ in path, accepted token schemes and error bodies.
#[derive(Debug, Clone, Copy)]
enum WriteApi {
    /// `POST /api/v3/write_lp?db=…`
    V3,
    /// `POST /api/v2/write?org=…&bucket=…`
    V2,
}

impl WriteApi {
    const fn path(self) -> &'static str {
        match self {
            WriteApi::V3 => "/api/v3/write_lp",
            WriteApi::V2 => "/api/v2/write",
        }
    }

    const fn schemes(self) -> &'static [&'static str] {
        match self {
            WriteApi::V3 => &["Bearer", "Token"],
            WriteApi::V2 => &["Token"],
        }
    }

    /// The answer to a read-only token.
    fn read_only(self) -> Response {
        match self {
            WriteApi::V3 => json_response(403, json!({"error": "token does not have write permission"})),
            WriteApi::V2 => json_response(
                403,
                json!({"code": "forbidden", "message": "insufficient permissions for write"}),
            ),
        }
    }

    /// Where the lines go (database or bucket), or the API's answer to a bad query string.
    fn target(self, s: &State, query: &HashMap<String, String>) -> Result<String, Response> {
        match self {
            WriteApi::V3 => {
                let Some(db) = query.get("db").filter(|d| !d.is_empty()).cloned() else {
                    return Err(json_response(
                        400,
                        json!({"error": "missing query parameter: db"}),
                    ));
                };
                let precision = query.get("precision").map_or("auto", String::as_str);
                if !["auto", "nanosecond", "microsecond", "millisecond", "second"].contains(&precision) {
                    return Err(json_response(
                        400,
                        json!({"error": format!("invalid precision: {precision}")}),
                    ));
                }
                Ok(db)
            }
            WriteApi::V2 => {
                if query.get("org") != Some(&s.org_name) {
                    return Err(json_response(
                        404,
                        json!({"code": "not found", "message": "organization not found"}),
                    ));
                }
                let Some(bucket) = query.get("bucket").filter(|b| !b.is_empty()).cloned() else {
                    return Err(json_response(
                        400,
                        json!({"code": "invalid", "message": "bucket is required"}),
                    ));
                };
                let precision = query.get("precision").map_or("ns", String::as_str);
                if !["ns", "us", "ms", "s"].contains(&precision) {
                    return Err(json_response(
                        400,
                        json!({"code": "invalid", "message": format!("invalid precision {precision}")}),
                    ));
                }
                Ok(bucket)
            }
        }
    }
}

/// The handler of one write API.
fn write_route(api: WriteApi) -> axum::routing::MethodRouter<Shared> {
    post(
        move |AxumState(state): AxumState<Shared>,
              Query(query): Query<HashMap<String, String>>,
              headers: HeaderMap,
              body: Bytes| async move { write(api, &state, &query, &headers, &body) },
    )
}

/// A write through either API: decode the body, record the request, let only the write token
/// through, check the query string, then write the lines.
fn write(
    api: WriteApi,
    state: &Shared,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let mut s = lock(state);
    let (gzip, text) = match decode_body(headers, body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    capture(&mut s, api.path(), query, headers, gzip, &text);
    match authorize(&s, headers, api.schemes()) {
        Ok(Auth::Write) => {}
        Ok(Auth::Read(_)) => return api.read_only(),
        Err(r) => return r,
    }
    match api.target(&s, query) {
        Ok(target) => write_lines(&mut s, matches!(api, WriteApi::V3), &target, &text),
        Err(r) => r,
    }
}

async fn create_database(AxumState(state): AxumState<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = lock(&state);
    match authorize(&s, &headers, &["Bearer", "Token"]) {
        Ok(Auth::Write) => {}
        Ok(Auth::Read(_)) => {
            return json_response(
                403,
                json!({"error": "token does not have permission to create databases"}),
            );
        }
        Err(r) => return r,
    }
    let json: Value = serde_json::from_slice(&body).unwrap_or_default();
    let Some(db) = json["db"].as_str().map(str::to_owned) else {
        return json_response(400, json!({"error": "missing field db"}));
    };
    s.creates.push((Instant::now(), db.clone()));
    if s.reject_retention && json.get("retention_period").is_some() {
        return json_response(
            400,
            json!({"error": "unknown field `retention_period`, expected `db`"}),
        );
    }
    if s.databases.contains_key(&db) {
        return json_response(
            409,
            json!({"error": "attempted to create a resource that already exists"}),
        );
    }
    let retention = json["retention_period"].as_str().map(str::to_owned);
    s.databases.insert(db, retention);
    StatusCode::OK.into_response()
}

async fn orgs(
    AxumState(state): AxumState<Shared>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let s = lock(&state);
    if !matches!(authorize(&s, &headers, &["Token"]), Ok(Auth::Write)) {
        return json_response(
            401,
            json!({"code": "unauthorized", "message": "unauthorized access"}),
        );
    }
    if query.get("org") != Some(&s.org_name) {
        return json_response(
            404,
            json!({"code": "not found", "message": "organization name not found"}),
        );
    }
    json_response(200, json!({"orgs": [{"id": s.org_id, "name": s.org_name}]}))
}

async fn create_bucket(AxumState(state): AxumState<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = lock(&state);
    if !matches!(authorize(&s, &headers, &["Token"]), Ok(Auth::Write)) {
        return json_response(
            401,
            json!({"code": "unauthorized", "message": "unauthorized access"}),
        );
    }
    let json: Value = serde_json::from_slice(&body).unwrap_or_default();
    if json["orgID"].as_str() != Some(s.org_id.as_str()) {
        return json_response(400, json!({"code": "invalid", "message": "orgID is invalid"}));
    }
    let Some(name) = json["name"].as_str().map(str::to_owned) else {
        return json_response(
            400,
            json!({"code": "invalid", "message": "bucket name is required"}),
        );
    };
    s.creates.push((Instant::now(), name.clone()));
    if s.databases.contains_key(&name) {
        return json_response(
            422,
            json!({"code": "conflict", "message": format!("bucket with name {name} already exists")}),
        );
    }
    let retention = json["retentionRules"][0]["everySeconds"]
        .as_u64()
        .map(|n| n.to_string());
    s.databases.insert(name, retention);
    json_response(201, json!({"id": "b1", "name": json["name"]}))
}

async fn query_sql(AxumState(state): AxumState<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = lock(&state);
    let json: Value = serde_json::from_slice(&body).unwrap_or_default();
    let (Some(db), Some(q)) = (json["db"].as_str(), json["q"].as_str()) else {
        return json_response(400, json!({"error": "db and q are required"}));
    };
    match authorize(&s, &headers, &["Bearer", "Token"]) {
        Ok(Auth::Write) => {}
        Ok(Auth::Read(allowed)) if allowed == db => {}
        Ok(Auth::Read(_)) => {
            return json_response(
                403,
                json!({"error": "token does not have read permission for this database"}),
            );
        }
        Err(r) => return r,
    }
    if json["format"].as_str().is_some_and(|f| f != "json") {
        return json_response(400, json!({"error": "only json is served here"}));
    }
    s.queries.push((db.to_owned(), q.to_owned()));
    match s.query_answers.pop_front() {
        Some((status, body)) => json_response(status, serde_json::from_str(&body).unwrap_or(json!(body))),
        None => json_response(200, json!([])),
    }
}
