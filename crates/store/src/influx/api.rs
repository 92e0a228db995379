//! The two write APIs a Timestream for InfluxDB instance speaks, as requests and as answers.
//!
//! - InfluxDB 3: `POST /api/v3/write_lp?db=<tenant>&precision=nanosecond&accept_partial=true`,
//!   `Authorization: Bearer <token>`. A 400 whose JSON lists rejected lines (`data[].line_number`,
//!   1-based) is a partial write: with `accept_partial=true` every other line was written.
//! - InfluxDB 2 (and the v2-compatible endpoint of 3): `POST /api/v2/write?org=<org>&bucket=
//!   <tenant>&precision=ns`, `Authorization: Token <token>`. OSS 2 refuses the whole body on a
//!   400 and names the first bad line in `message` (`unable to parse '<line>': …`).
//!
//! Bodies are gzip-compressed line protocol. Answers are classified into what they mean for the
//! lines sent ([`WriteAnswer`]); the adapter acts on that.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use http::Uri;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::http::HttpResponse;
use crate::reason::RejectReason;
use crate::timestream::classify::bounded;

/// Which write API the instance speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiVersion {
    /// InfluxDB 3 Core or Enterprise (AWS's recommendation for new workloads).
    #[default]
    V3,
    /// InfluxDB 2 (orgs and buckets).
    V2,
}

impl FromStr for ApiVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "v3" | "3" => Ok(ApiVersion::V3),
            "v2" | "2" => Ok(ApiVersion::V2),
            other => Err(format!("unknown InfluxDB API {other:?}: expected v3 or v2")),
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiVersion::V3 => "v3",
            ApiVersion::V2 => "v2",
        })
    }
}

/// A query parameter value, percent-encoded.
pub(crate) fn param(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

/// Where and how to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://host:port`, without a trailing slash.
    base: String,
    pub api: ApiVersion,
    /// The organization (v2 only).
    pub org: Option<String>,
}

/// An endpoint setting the adapter cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EndpointError(pub String);

impl Endpoint {
    pub fn new(url: &str, api: ApiVersion, org: Option<String>) -> Result<Endpoint, EndpointError> {
        let base = url.trim().trim_end_matches('/').to_owned();
        let uri: Uri = base
            .parse()
            .map_err(|_| EndpointError(format!("{base:?} is not a URL")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(EndpointError(format!("{base:?} must be http(s)://host[:port]")));
        }
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(EndpointError(format!("{base:?} must not have a path")));
        }
        if api == ApiVersion::V2 && org.as_deref().is_none_or(str::is_empty) {
            return Err(EndpointError("the v2 API needs an organization".into()));
        }
        Ok(Endpoint { base, api, org })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn uri(&self, path_and_query: &str) -> Result<Uri, EndpointError> {
        format!("{}{path_and_query}", self.base)
            .parse()
            .map_err(|_| EndpointError(format!("cannot build a URL for {path_and_query:?}")))
    }

    /// `Bearer` on v3, `Token` on v2 (v3 accepts both).
    pub const fn auth_scheme(&self) -> &'static str {
        match self.api {
            ApiVersion::V3 => "Bearer",
            ApiVersion::V2 => "Token",
        }
    }

    /// The write URL for a tenant's database (v3) or bucket (v2), nanosecond precision (each
    /// point's time is its millisecond plus an offset from its event id: `line_protocol`).
    pub fn write_uri(&self, database: &str) -> Result<Uri, EndpointError> {
        match self.api {
            ApiVersion::V3 => self.uri(&format!(
                "/api/v3/write_lp?db={}&precision=nanosecond&accept_partial=true",
                param(database)
            )),
            ApiVersion::V2 => self.uri(&format!(
                "/api/v2/write?org={}&bucket={}&precision=ns",
                param(self.org.as_deref().unwrap_or_default()),
                param(database)
            )),
        }
    }

    /// v3: `POST /api/v3/configure/database`.
    pub fn create_database_uri(&self) -> Result<Uri, EndpointError> {
        self.uri("/api/v3/configure/database")
    }

    /// v2: `GET /api/v2/orgs?org=<name>` (bucket creation needs the org's id).
    pub fn org_lookup_uri(&self) -> Result<Uri, EndpointError> {
        self.uri(&format!(
            "/api/v2/orgs?org={}",
            param(self.org.as_deref().unwrap_or_default())
        ))
    }

    /// v2: `POST /api/v2/buckets`.
    pub fn create_bucket_uri(&self) -> Result<Uri, EndpointError> {
        self.uri("/api/v2/buckets")
    }

    /// v3: `POST /api/v3/query_sql`.
    pub fn query_sql_uri(&self) -> Result<Uri, EndpointError> {
        self.uri("/api/v3/query_sql")
    }
}

/// What an answer to a write means for the lines sent.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteAnswer {
    /// Every line was written.
    Written,
    /// These lines (0-based, into the request) were refused with the server's message. When
    /// `others_written` the rest were written (a v3 partial write); otherwise nothing was, and
    /// the rest can be sent again.
    Lines {
        rejected: Vec<(usize, String)>,
        others_written: bool,
    },
    /// The request was refused (400, 413, 422) and the answer does not say which line: send
    /// the lines again in halves until the bad ones are alone. Safe because a point written
    /// twice is the same point (identity includes `event_id`).
    Split { status: u16, message: String },
    /// The database or bucket does not exist.
    NotFound(String),
    /// Worth retrying after a wait: 429, 5xx (with the server's `Retry-After`, if any).
    Transient {
        cause: String,
        retry_after: Option<Duration>,
    },
    /// The records are not at fault but retrying now will not help (401, 403, another 4xx).
    Refused(String),
}

/// The InfluxDB 3 error body: `{"error": "...", "data": [{"line_number": 2, ...}]}` (`data`
/// may also be a single object).
#[derive(Debug, Deserialize)]
struct V3Error {
    #[serde(default)]
    error: String,
    #[serde(default)]
    data: Option<V3Data>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum V3Data {
    Many(Vec<V3Line>),
    One(V3Line),
}

#[derive(Debug, Deserialize)]
struct V3Line {
    line_number: usize,
    #[serde(default)]
    error_message: String,
}

/// The InfluxDB 2 error body: `{"code": "invalid", "message": "..."}`.
#[derive(Debug, Deserialize)]
struct V2Error {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The server's message, bounded, for a cause or a detail.
fn message(api: ApiVersion, body: &[u8]) -> String {
    let text = match api {
        ApiVersion::V3 => serde_json::from_slice::<V3Error>(body).ok().map(|e| e.error),
        ApiVersion::V2 => serde_json::from_slice::<V2Error>(body)
            .ok()
            .map(|e| format!("{}: {}", e.code, e.message)),
    };
    bounded(
        &text
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
    )
}

/// Classifies an answer to a write of `lines` (each without its newline).
pub fn classify_write(api: ApiVersion, response: &HttpResponse, lines: &[&str]) -> WriteAnswer {
    let status = response.status;
    let body = response.body.as_ref();
    match status {
        200..=299 => WriteAnswer::Written,
        400 => match api {
            ApiVersion::V3 => v3_rejected_lines(body, lines.len()).unwrap_or_else(|| WriteAnswer::Split {
                status,
                message: message(api, body),
            }),
            ApiVersion::V2 => v2_rejected_line(body, lines).unwrap_or_else(|| WriteAnswer::Split {
                status,
                message: message(api, body),
            }),
        },
        413 | 422 => WriteAnswer::Split {
            status,
            message: message(api, body),
        },
        404 => WriteAnswer::NotFound(message(api, body)),
        429 | 500..=599 => WriteAnswer::Transient {
            cause: format!("HTTP {status}: {}", message(api, body)),
            retry_after: response.retry_after_delay(),
        },
        _ => WriteAnswer::Refused(format!("HTTP {status}: {}", message(api, body))),
    }
}

fn v3_rejected_lines(body: &[u8], n: usize) -> Option<WriteAnswer> {
    let parsed: V3Error = serde_json::from_slice(body).ok()?;
    let lines = match parsed.data? {
        V3Data::Many(v) => v,
        V3Data::One(l) => vec![l],
    };
    let mut rejected: Vec<(usize, String)> = lines
        .into_iter()
        .filter(|l| (1..=n).contains(&l.line_number))
        .map(|l| (l.line_number - 1, bounded(&l.error_message)))
        .collect();
    if rejected.is_empty() {
        return None;
    }
    rejected.sort_by_key(|(i, _)| *i);
    rejected.dedup_by_key(|(i, _)| *i);
    // "partial write of line protocol occurred": the other lines are in. Any other error
    // listing lines wrote nothing; the rest go again.
    let others_written = parsed.error.contains("partial write");
    Some(WriteAnswer::Lines {
        rejected,
        others_written,
    })
}

fn v2_rejected_line(body: &[u8], lines: &[&str]) -> Option<WriteAnswer> {
    let parsed: V2Error = serde_json::from_slice(body).ok()?;
    // `unable to parse '<line>': <why>`: find that line among ours.
    let start = parsed.message.find("unable to parse '")? + "unable to parse '".len();
    let rest = &parsed.message[start..];
    let end = rest.rfind("': ")?;
    let quoted = &rest[..end];
    let index = lines.iter().position(|l| *l == quoted)?;
    let why = bounded(&rest[end + 3..]);
    Some(WriteAnswer::Lines {
        rejected: vec![(index, why)],
        others_written: false,
    })
}

/// The stable reason for a line the server refused, from its message.
pub fn reject_reason(status: u16, message: &str) -> RejectReason {
    let lower = message.to_ascii_lowercase();
    let mentions = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if status == 413 || mentions(&["too large", "too long"]) {
        RejectReason::RecordTooLarge
    } else if mentions(&[
        "type conflict",
        "conflict",
        "schema",
        "invalid column type",
        "type",
    ]) {
        RejectReason::SchemaConflict
    } else if mentions(&["retention", "outside", "timestamp", "time out of range"]) {
        RejectReason::TimeOutOfRange
    } else if mentions(&["limit", "exceed", "maximum", "too many"]) {
        RejectReason::LimitExceeded
    } else {
        RejectReason::InvalidRecord
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn answer(status: u16, body: &str, retry_after: Option<&str>) -> HttpResponse {
        HttpResponse {
            status,
            retry_after: retry_after.map(str::to_owned),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn write_urls_carry_database_precision_and_partial_writes() {
        let v3 = Endpoint::new("https://db.example:8181/", ApiVersion::V3, None).unwrap();
        assert_eq!(
            v3.write_uri("acme-prod").unwrap().to_string(),
            "https://db.example:8181/api/v3/write_lp?db=acme%2Dprod&precision=nanosecond&accept_partial=true"
        );
        let v2 = Endpoint::new("http://127.0.0.1:8086", ApiVersion::V2, Some("my org".into())).unwrap();
        assert_eq!(
            v2.write_uri("t.1").unwrap().to_string(),
            "http://127.0.0.1:8086/api/v2/write?org=my%20org&bucket=t%2E1&precision=ns"
        );
        assert_eq!((v3.auth_scheme(), v2.auth_scheme()), ("Bearer", "Token"));
    }

    #[test]
    fn endpoints_that_cannot_work_are_refused_at_start() {
        for (url, api, org) in [
            ("db.example:8181", ApiVersion::V3, None),
            ("ftp://db.example", ApiVersion::V3, None),
            ("https://db.example/api", ApiVersion::V3, None),
            ("https://db.example", ApiVersion::V2, None),
        ] {
            assert!(Endpoint::new(url, api, org).is_err(), "{url}");
        }
    }

    #[test]
    fn a_v3_partial_write_names_rejected_lines_and_the_rest_is_written() {
        let body = r#"{"error":"partial write of line protocol occurred","data":[
            {"original_line":"bad","line_number":3,"error_message":"No fields were provided"},
            {"original_line":"bad2","line_number":1,"error_message":"invalid column type for column 'x'"}]}"#;
        assert_eq!(
            classify_write(ApiVersion::V3, &answer(400, body, None), &["a", "b", "c"]),
            WriteAnswer::Lines {
                rejected: vec![
                    (0, "invalid column type for column 'x'".into()),
                    (2, "No fields were provided".into())
                ],
                others_written: true
            }
        );
        let single = r#"{"error":"parsing failed for write_lp endpoint","data":{"original_line":"x","line_number":2,"error_message":"bad"}}"#;
        assert_eq!(
            classify_write(ApiVersion::V3, &answer(400, single, None), &["a", "b"]),
            WriteAnswer::Lines {
                rejected: vec![(1, "bad".into())],
                others_written: false
            }
        );
    }

    #[test]
    fn a_v2_400_names_the_first_bad_line_and_nothing_was_written() {
        let body = r#"{"code":"invalid","message":"unable to parse 'm x=': missing field value"}"#;
        assert_eq!(
            classify_write(ApiVersion::V2, &answer(400, body, None), &["m x=1i 1", "m x="]),
            WriteAnswer::Lines {
                rejected: vec![(1, "missing field value".into())],
                others_written: false
            }
        );
    }

    #[test]
    fn an_answer_that_does_not_say_which_line_means_split() {
        for (status, body) in [
            (400, "{}"),
            (400, r#"{"code":"invalid","message":"unable to parse 'zzz': x"}"#),
            (413, ""),
            (422, ""),
        ] {
            assert!(
                matches!(
                    classify_write(ApiVersion::V2, &answer(status, body, None), &["a"]),
                    WriteAnswer::Split { .. }
                ),
                "{status} {body}"
            );
        }
    }

    #[test]
    fn throttling_and_outages_are_transient_with_the_servers_wait() {
        let a = classify_write(
            ApiVersion::V3,
            &answer(429, r#"{"error":"slow down"}"#, Some("7")),
            &["a"],
        );
        assert_eq!(
            a,
            WriteAnswer::Transient {
                cause: "HTTP 429: slow down".into(),
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(matches!(
            classify_write(ApiVersion::V3, &answer(503, "", None), &["a"]),
            WriteAnswer::Transient {
                retry_after: None,
                ..
            }
        ));
        // An HTTP date counts too (it was ignored before): a past one means "now".
        assert!(matches!(
            classify_write(
                ApiVersion::V3,
                &answer(503, "", Some("Wed, 21 Oct 2015 07:28:00 GMT")),
                &["a"]
            ),
            WriteAnswer::Transient {
                retry_after: Some(Duration::ZERO),
                ..
            }
        ));
        assert!(matches!(
            classify_write(ApiVersion::V3, &answer(401, "", None), &["a"]),
            WriteAnswer::Refused(_)
        ));
        assert!(matches!(
            classify_write(ApiVersion::V3, &answer(404, "", None), &["a"]),
            WriteAnswer::NotFound(_)
        ));
    }

    #[test]
    fn server_messages_map_to_stable_reasons() {
        assert_eq!(
            reject_reason(
                400,
                "invalid column type for column 'x', expected iox::column_type::field::integer"
            ),
            RejectReason::SchemaConflict
        );
        assert_eq!(
            reject_reason(422, "partial write: field type conflict"),
            RejectReason::SchemaConflict
        );
        assert_eq!(
            reject_reason(422, "partial write: points beyond retention policy dropped=1"),
            RejectReason::TimeOutOfRange
        );
        assert_eq!(reject_reason(413, ""), RejectReason::RecordTooLarge);
        assert_eq!(
            reject_reason(400, "No fields were provided"),
            RejectReason::InvalidRecord
        );
    }
}
