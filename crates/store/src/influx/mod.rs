//! The Timestream for InfluxDB adapter: line protocol over HTTP to an InfluxDB 3 instance
//! (`/api/v3/write_lp`, the default) or an InfluxDB 2 instance (`/api/v2/write`).
//!
//! - Each tenant is the engine's own unit: one database (v3) or bucket (v2) named as the
//!   tenant, created on first write with the configured retention ([`tenants`]).
//! - A record is one line ([`line_protocol`]): measurement = metric name, tags = dimensions
//!   but `event_id`, fields = typed measures and `event_id` (a string field, so the series
//!   index does not grow with events), time in nanoseconds: the event's millisecond plus an
//!   offset below a millisecond derived from `event_id`. A record that line protocol cannot
//!   carry exactly is rejected (`invalid_record`), never altered.
//! - Replays and dedup: InfluxDB identifies a point by measurement, tag set and time, and a
//!   point written again replaces the fields of the one there. The same event always gets the
//!   same time, so a replayed record rewrites its own point (reported `written`; InfluxDB does
//!   not say whether the point was there). Two events of one metric with the same dimensions in
//!   the same millisecond stay apart unless their `event_id` hashes agree modulo 1,000,000
//!   (about one pair in a million); then the later overwrites the earlier.
//! - Bodies are gzip-compressed, up to [`InfluxSettings::max_batch_bytes`] of lines each. 429
//!   and 5xx are retried with backoff and full jitter, never sooner than `Retry-After` (seconds
//!   or an HTTP date, `metrics_http::parse_retry_after`), until
//!   the deadline; a missing database is created and the write sent again once.
//! - Refused lines ([`api::classify_write`]): a v3 partial write names them and the rest is in;
//!   a v2 400 names the first and the rest is sent again; an answer that names none (413, 422,
//!   an unparsable 400) splits the lines in halves until the bad ones are alone. Resending is
//!   safe because writing a point twice is writing it once.
//! - The token comes from `INFLUXDB_TOKEN` or a Secrets Manager secret read once per
//!   container ([`TokenSource`]); it is never printed ([`Token`] is a [`Secret`]).

pub mod api;
pub mod http;
pub mod line_protocol;
mod tenants;
pub mod token;

use std::collections::VecDeque;
use std::io::Write as _;
use std::time::{Duration, Instant};

use ::http::{HeaderName, HeaderValue, Method, Uri, header};
use aws_config::SdkConfig;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use metrics_http::secrets_manager::SecretError;
use metrics_schema::TenantId;

use crate::port::{Deadline, RecordOutcome, Store, StoreError, WriteReport};
use crate::reason::RejectReason;
use crate::record::StoreRecord;
use crate::retry::Backoff;
pub use api::{ApiVersion, Endpoint, WriteAnswer};
use http::{HttpClient, HttpError, HttpResponse};
pub use token::{BothTokenVariables, Secret, Token, TokenSource, token_from_secret_string};

/// One second between create calls of a process, as for Timestream's control plane: InfluxDB
/// documents no rate, and a burst of new tenants should not become a burst of creates.
pub const CREATE_INTERVAL: Duration = Duration::from_secs(1);

/// The adapter's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfluxSettings {
    /// `https://<endpoint>:<port>` of the instance.
    pub url: String,
    pub api: ApiVersion,
    /// The organization (v2 only).
    pub org: Option<String>,
    /// Retention of new databases or buckets, days; 0 keeps data forever (default 365).
    pub retention_days: u32,
    pub backoff: Backoff,
    /// Minimum time between two create calls of this process.
    pub create_interval: Duration,
    /// Longest wait for one answer.
    pub request_timeout: Duration,
    /// Uncompressed line-protocol bytes per request (InfluxData suggests about 5,000 lines).
    pub max_batch_bytes: usize,
}

impl Default for InfluxSettings {
    fn default() -> Self {
        InfluxSettings {
            url: String::new(),
            api: ApiVersion::V3,
            org: None,
            retention_days: 365,
            backoff: Backoff::default(),
            create_interval: CREATE_INTERVAL,
            request_timeout: Duration::from_secs(10),
            max_batch_bytes: 1024 * 1024,
        }
    }
}

/// The endpoint, token and client every call uses.
#[derive(Debug)]
pub(crate) struct Connection {
    http: HttpClient,
    endpoint: Endpoint,
    token: Token,
    settings: InfluxSettings,
}

impl Connection {
    fn headers(&self, content_type: &'static str, gzip: bool) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = vec![(header::CONTENT_TYPE, HeaderValue::from_static(content_type))];
        if let Some(auth) = self.token.authorization(self.endpoint.auth_scheme()) {
            headers.push((header::AUTHORIZATION, auth));
        }
        if gzip {
            headers.push((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
        }
        headers
    }

    /// One JSON call (control plane); `Err` is a transport failure, as text.
    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &Uri,
        body: Option<Bytes>,
        deadline: Deadline,
    ) -> Result<HttpResponse, String> {
        let timeout = self
            .timeout(deadline)
            .ok_or_else(|| "the deadline passed".to_owned())?;
        let headers = self.headers("application/json", false);
        self.http
            .send(method, uri, &headers, body.unwrap_or_default(), timeout)
            .await
            .map_err(|e| e.to_string())
    }

    /// The request timeout, cut to the time left; `None` when none is left.
    fn timeout(&self, deadline: Deadline) -> Option<Duration> {
        let left = deadline.checked_duration_since(Instant::now())?;
        Some(left.min(self.settings.request_timeout)).filter(|d| !d.is_zero())
    }
}

/// Writes to Timestream for InfluxDB (or any InfluxDB 3 / 2 server).
#[derive(Debug)]
pub struct InfluxStore {
    conn: Connection,
    tenants: tenants::Tenants,
}

/// What became of one request's lines.
enum Sent {
    Written,
    Lines {
        rejected: Vec<(usize, String)>,
        others_written: bool,
    },
    Split {
        status: u16,
        message: String,
    },
    Retryable(String),
}

impl InfluxStore {
    /// With the token at hand.
    pub fn new(settings: InfluxSettings, token: Token) -> Result<Self, StoreError> {
        let endpoint = Endpoint::new(&settings.url, settings.api, settings.org.clone())
            .map_err(|e| StoreError::Refused(e.to_string()))?;
        if token.expose().trim().is_empty() {
            return Err(StoreError::Refused("the InfluxDB token is empty".into()));
        }
        let http = HttpClient::new().map_err(|e| StoreError::Refused(e.to_string()))?;
        Ok(InfluxStore {
            conn: Connection {
                http,
                endpoint,
                token,
                settings,
            },
            tenants: tenants::Tenants::default(),
        })
    }

    /// Resolves the token (one Secrets Manager call when it comes from a secret) and builds the
    /// store. Called once per container, so the secret is fetched once.
    pub async fn connect(
        sdk: &SdkConfig,
        settings: InfluxSettings,
        source: TokenSource,
    ) -> Result<Self, StoreError> {
        let text = source.read(|| async { sdk.clone() }).await.map_err(|e| match e {
            SecretError::Fetch { .. } => StoreError::Unavailable(format!("reading the InfluxDB token: {e}")),
            SecretError::NotText { .. } => StoreError::Refused(e.to_string()),
        })?;
        let token = token_from_secret_string(text.expose())
            .ok_or_else(|| StoreError::Refused("the InfluxDB token secret holds no token".into()))?;
        InfluxStore::new(settings, token)
    }

    pub fn settings(&self) -> &InfluxSettings {
        &self.conn.settings
    }

    /// One request of `lines` (each without its newline), retried until the deadline.
    async fn send(&self, db: &str, lines: &[&str], deadline: Deadline) -> Sent {
        let uri = match self.conn.endpoint.write_uri(db) {
            Ok(u) => u,
            Err(e) => return Sent::Retryable(e.to_string()),
        };
        let body = match gzip(lines) {
            Ok(b) => b,
            Err(e) => return Sent::Retryable(format!("gzip failed: {e}")),
        };
        let headers = self.conn.headers("text/plain; charset=utf-8", true);
        let mut attempt = 0u32;
        let mut created = false;
        let mut last_cause: Option<String> = None;
        loop {
            let Some(timeout) = self.conn.timeout(deadline) else {
                return Sent::Retryable(deadline_cause(last_cause.as_deref()));
            };
            let answer = match self
                .conn
                .http
                .send(Method::POST, &uri, &headers, body.clone(), timeout)
                .await
            {
                Ok(response) => api::classify_write(self.conn.endpoint.api, &response, lines),
                Err(HttpError::Timeout(_)) if Instant::now() >= deadline => {
                    return Sent::Retryable(deadline_cause(last_cause.as_deref()));
                }
                Err(e) => WriteAnswer::Transient {
                    cause: e.to_string(),
                    retry_after: None,
                },
            };
            let (cause, retry_after) = match answer {
                WriteAnswer::Written => return Sent::Written,
                WriteAnswer::Lines {
                    rejected,
                    others_written,
                } => {
                    return Sent::Lines {
                        rejected,
                        others_written,
                    };
                }
                WriteAnswer::Split { status, message } => return Sent::Split { status, message },
                WriteAnswer::Refused(cause) => return Sent::Retryable(cause),
                WriteAnswer::NotFound(cause) if !created => {
                    self.tenants.forget(db);
                    if let Err(e) = self.tenants.ensure(&self.conn, db, deadline).await {
                        return Sent::Retryable(e.to_string());
                    }
                    created = true;
                    tracing::debug!(database = db, cause = %cause, "The database was missing; writing again.");
                    continue;
                }
                WriteAnswer::NotFound(cause) => (cause, None),
                WriteAnswer::Transient { cause, retry_after } => (cause, retry_after),
            };
            let now = Instant::now();
            let wait = self
                .conn
                .settings
                .backoff
                .delay(attempt, now, deadline)
                .map(|d| d.max(retry_after.unwrap_or_default()))
                .filter(|d| now + *d < deadline);
            match wait {
                Some(delay) => {
                    tracing::debug!(database = db, attempt, cause = %cause, "Write failed; retrying.");
                    attempt += 1;
                    last_cause = Some(cause);
                    tokio::time::sleep(delay).await;
                }
                None => return Sent::Retryable(cause),
            }
        }
    }
}

fn deadline_cause(last: Option<&str>) -> String {
    match last {
        None => "the deadline passed before the write".to_owned(),
        Some(cause) => format!("the deadline passed; last failure: {cause}"),
    }
}

fn gzip(lines: &[&str]) -> std::io::Result<Bytes> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    for line in lines {
        encoder.write_all(line.as_bytes())?;
        encoder.write_all(b"\n")?;
    }
    Ok(Bytes::from(encoder.finish()?))
}

/// Groups of line indices, each under `max_bytes` (a longer line goes alone).
fn batches(lines: &[String], max_bytes: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut size = 0;
    for (i, line) in lines.iter().enumerate() {
        match out.last_mut() {
            Some(group) if size + line.len() < max_bytes => group.push(i),
            _ => {
                out.push(vec![i]);
                size = 0;
            }
        }
        size += line.len() + 1;
    }
    out
}

impl Store for InfluxStore {
    async fn ensure_table(&self, tenant: &TenantId<'_>, deadline: Deadline) -> Result<(), StoreError> {
        self.tenants.ensure(&self.conn, tenant.as_str(), deadline).await
    }

    async fn write(&self, tenant: &TenantId<'_>, records: &[StoreRecord], deadline: Deadline) -> WriteReport {
        let db = tenant.as_str();
        let mut outcomes: Vec<Option<RecordOutcome>> = vec![None; records.len()];
        // Encode once; `of[i]` is the record of line `i`.
        let mut lines: Vec<String> = Vec::with_capacity(records.len());
        let mut of: Vec<usize> = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            let mut line = String::new();
            match line_protocol::encode_line(&mut line, record) {
                Ok(()) => {
                    line.pop();
                    lines.push(line);
                    of.push(i);
                }
                Err(e) => {
                    outcomes[i] = Some(RecordOutcome::Rejected {
                        reason: RejectReason::InvalidRecord,
                        detail: format!("{}: {e}", e.code()),
                    });
                }
            }
        }
        if !lines.is_empty()
            && let Err(e) = self.tenants.ensure(&self.conn, db, deadline).await
        {
            let cause = e.to_string();
            for &i in &of {
                outcomes[i] = Some(RecordOutcome::Retryable { cause: cause.clone() });
            }
            lines.clear();
        }
        let mut queue: VecDeque<Vec<usize>> = batches(&lines, self.conn.settings.max_batch_bytes).into();
        while let Some(group) = queue.pop_front() {
            let texts: Vec<&str> = group.iter().map(|&l| lines[l].as_str()).collect();
            let mut set = |l: usize, outcome: RecordOutcome| outcomes[of[l]] = Some(outcome);
            match self.send(db, &texts, deadline).await {
                Sent::Written => group.iter().for_each(|&l| set(l, RecordOutcome::Written)),
                Sent::Lines {
                    rejected,
                    others_written,
                } => {
                    let mut rest = Vec::new();
                    for (k, &l) in group.iter().enumerate() {
                        match rejected.iter().find(|(r, _)| *r == k) {
                            Some((_, why)) => set(
                                l,
                                RecordOutcome::Rejected {
                                    reason: api::reject_reason(400, why),
                                    detail: why.clone(),
                                },
                            ),
                            None if others_written => set(l, RecordOutcome::Written),
                            None => rest.push(l),
                        }
                    }
                    if !rest.is_empty() {
                        queue.push_front(rest);
                    }
                }
                Sent::Split { status, message } if group.len() == 1 => {
                    for &l in &group {
                        set(
                            l,
                            RecordOutcome::Rejected {
                                reason: api::reject_reason(status, &message),
                                detail: format!("HTTP {status}: {message}"),
                            },
                        );
                    }
                }
                Sent::Split { .. } => {
                    let (a, b) = group.split_at(group.len() / 2);
                    queue.push_front(b.to_vec());
                    queue.push_front(a.to_vec());
                }
                Sent::Retryable(cause) => {
                    group
                        .iter()
                        .for_each(|&l| set(l, RecordOutcome::Retryable { cause: cause.clone() }));
                }
            }
        }
        WriteReport {
            outcomes: outcomes
                .into_iter()
                .map(|o| {
                    o.unwrap_or(RecordOutcome::Retryable {
                        cause: "not written".into(),
                    })
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_stay_under_the_byte_budget_and_keep_order() {
        let lines: Vec<String> = ["aaaa", "bbbb", "cccc", "dddddddddddd", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(batches(&lines, 11), vec![vec![0, 1], vec![2], vec![3], vec![4]]);
        assert_eq!(batches(&lines, 1000), vec![vec![0, 1, 2, 3, 4]]);
        assert!(batches(&[], 10).is_empty());
    }

    #[test]
    fn bodies_are_gzip_of_newline_terminated_lines() {
        use std::io::Read as _;
        let body = gzip(&["a x=1i 1", "b y=2i 2"]).unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(body.as_ref())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "a x=1i 1\nb y=2i 2\n");
    }
}
