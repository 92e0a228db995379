//! Mixpanel's ingestion API: `POST {endpoint}/import?strict=1[&project_id=…]`, gzip bodies,
//! service-account Basic auth with the project id, or the project token as user name.
//! A strict-mode 400 with `failed_records` is a partial success: the listed events were
//! refused, every other event of the batch was imported.

use std::time::Duration;

use base64::Engine;
use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::{Destination, Endpoint, SendFuture, SendOutcome};
use crate::http::HttpClient;
use crate::payload::mixpanel::{MixpanelFormat, PATH};
use crate::payload::{Format, PreparedBatch};
use metrics_http::Secret;

/// Data residency: the project's region decides the host, or nothing is ingested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residency {
    Us,
    Eu,
    India,
}

impl Residency {
    pub fn parse(text: &str) -> Option<Residency> {
        match text.trim().to_ascii_lowercase().as_str() {
            "us" => Some(Residency::Us),
            "eu" => Some(Residency::Eu),
            "in" | "india" => Some(Residency::India),
            _ => None,
        }
    }

    pub const fn endpoint(self) -> &'static str {
        match self {
            Residency::Us => "https://api.mixpanel.com",
            Residency::Eu => "https://api-eu.mixpanel.com",
            Residency::India => "https://api-in.mixpanel.com",
        }
    }
}

/// How the forwarder authenticates to Mixpanel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MixpanelAuth {
    /// A service account (Owner or Admin) and the project it writes to.
    ServiceAccount {
        project_id: String,
        username: String,
        secret: Secret,
    },
    /// The project token as user name, empty password.
    ProjectToken { token: Secret },
}

impl MixpanelAuth {
    /// The project id for the URL (service accounts only).
    pub fn project_id(&self) -> Option<&str> {
        match self {
            MixpanelAuth::ServiceAccount { project_id, .. } => Some(project_id),
            MixpanelAuth::ProjectToken { .. } => None,
        }
    }

    fn header(&self) -> Option<HeaderValue> {
        let pair = match self {
            MixpanelAuth::ServiceAccount { username, secret, .. } => {
                format!("{username}:{}", secret.expose())
            }
            MixpanelAuth::ProjectToken { token } => format!("{}:", token.expose()),
        };
        Secret::new(base64::engine::general_purpose::STANDARD.encode(pair)).authorization("Basic")
    }
}

/// Path and query of an import request.
pub fn path_and_query(project_id: Option<&str>) -> String {
    match project_id {
        Some(id) => format!("{PATH}?strict=1&project_id={}", percent_encode(id)),
        None => format!("{PATH}?strict=1"),
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The headers of an import request, credentials excepted.
pub fn public_headers() -> Vec<(HeaderName, HeaderValue)> {
    vec![
        (
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (http::header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
        (
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("metrics-lake/", env!("CARGO_PKG_VERSION"))),
        ),
    ]
}

#[derive(Debug, Clone)]
pub struct Mixpanel {
    format: MixpanelFormat,
    endpoint: Endpoint,
}

impl Mixpanel {
    /// `None` when a credential cannot be a header value or the endpoint is not a URL.
    pub fn new(
        format: MixpanelFormat,
        endpoint: &str,
        auth: &MixpanelAuth,
        http: HttpClient,
    ) -> Option<Mixpanel> {
        let uri = format!(
            "{}{}",
            endpoint.trim_end_matches('/'),
            path_and_query(auth.project_id())
        );
        let endpoint = Endpoint::new(&uri, public_headers(), auth.header()?, http)?;
        Some(Mixpanel { format, endpoint })
    }
}

impl Destination for Mixpanel {
    fn format(&self) -> &dyn Format {
        &self.format
    }

    fn send<'a>(&'a self, batch: &'a PreparedBatch, timeout: Duration) -> SendFuture<'a> {
        // A strict-mode 400 that lists failed records is a partial success.
        Box::pin(self.endpoint.send(batch, timeout, |response| {
            (response.status == 400)
                .then(|| failed_records(&response.body, batch))
                .flatten()
                .map(|refused| SendOutcome::Partial { refused })
        }))
    }
}

#[derive(Deserialize)]
struct StrictError {
    failed_records: Option<Vec<FailedRecord>>,
}

#[derive(Deserialize)]
struct FailedRecord {
    index: Option<usize>,
    #[serde(rename = "$insert_id")]
    dollar_insert_id: Option<String>,
    insert_id: Option<String>,
    field: Option<String>,
    message: Option<String>,
}

/// The refused events of a strict-mode 400, by position in the batch, with Mixpanel's message.
/// The insert id (either spelling) identifies an event; the index is the fallback. `None` when
/// the body has no `failed_records`: then the whole request was refused.
pub fn failed_records(body: &[u8], batch: &PreparedBatch) -> Option<Vec<(usize, String)>> {
    let records = serde_json::from_slice::<StrictError>(body).ok()?.failed_records?;
    if records.is_empty() {
        // A 400 that names no failed event cannot be partial: the whole request was refused.
        return None;
    }
    let mut refused: Vec<(usize, String)> = Vec::with_capacity(records.len());
    for record in records {
        let insert_id = record.dollar_insert_id.as_deref().or(record.insert_id.as_deref());
        let by_index = record.index.filter(|i| {
            batch
                .items
                .get(*i)
                .is_some_and(|item| insert_id.is_none_or(|id| item.dedup_id == id))
        });
        let position =
            by_index.or_else(|| insert_id.and_then(|id| batch.items.iter().position(|i| i.dedup_id == id)));
        let Some(position) = position else {
            tracing::warn!(
                index = record.index,
                "A failed record matches no event of the batch."
            );
            continue;
        };
        let message = match (record.field, record.message) {
            (Some(field), Some(message)) => format!("{field}: {message}"),
            (None, Some(message)) => message,
            (Some(field), None) => field,
            (None, None) => String::from("refused by strict-mode validation"),
        };
        if !refused.iter().any(|(p, _)| *p == position) {
            refused.push((position, message));
        }
    }
    Some(refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::PreparedItem;
    use bytes::Bytes;

    fn batch(ids: &[&str]) -> PreparedBatch {
        let items = ids
            .iter()
            .enumerate()
            .map(|(index, id)| PreparedItem {
                index: index + 10,
                dedup_id: (*id).into(),
                json: Vec::new(),
            })
            .collect();
        PreparedBatch {
            items,
            body: Bytes::new(),
            uncompressed_bytes: 0,
        }
    }

    #[test]
    fn both_insert_id_spellings_are_read() {
        let b = batch(&["a", "b", "c"]);
        let dollar = br#"{"code":400,"failed_records":[{"index":1,"$insert_id":"b","field":"properties.time","message":"too old"}]}"#;
        let plain = br#"{"code":400,"failed_records":[{"index":2,"insert_id":"c","field":"properties.time","message":"too old"}]}"#;
        assert_eq!(
            failed_records(dollar, &b),
            Some(vec![(1, "properties.time: too old".into())])
        );
        assert_eq!(
            failed_records(plain, &b),
            Some(vec![(2, "properties.time: too old".into())])
        );
    }

    #[test]
    fn the_insert_id_wins_over_a_wrong_index_and_the_index_serves_without_one() {
        let b = batch(&["a", "b", "c"]);
        let wrong_index = br#"{"failed_records":[{"index":0,"$insert_id":"c","message":"m"}]}"#;
        assert_eq!(failed_records(wrong_index, &b), Some(vec![(2, "m".into())]));
        let index_only = br#"{"failed_records":[{"index":1}]}"#;
        assert_eq!(
            failed_records(index_only, &b),
            Some(vec![(1, "refused by strict-mode validation".into())])
        );
    }

    #[test]
    fn a_400_without_failed_records_is_not_partial() {
        assert_eq!(
            failed_records(br#"{"code":400,"error":"bad json"}"#, &batch(&["a"])),
            None
        );
        assert_eq!(failed_records(b"not json", &batch(&["a"])), None);
        assert_eq!(
            failed_records(br#"{"code":400,"failed_records":[]}"#, &batch(&["a"])),
            None
        );
    }

    #[test]
    fn residency_hosts_and_query() {
        assert_eq!(
            Residency::parse("EU").map(Residency::endpoint),
            Some("https://api-eu.mixpanel.com")
        );
        assert_eq!(
            Residency::parse("in").map(Residency::endpoint),
            Some("https://api-in.mixpanel.com")
        );
        assert_eq!(Residency::parse("mars"), None);
        assert_eq!(path_and_query(Some("12 3")), "/import?strict=1&project_id=12%203");
        assert_eq!(path_and_query(None), "/import?strict=1");
    }
}
