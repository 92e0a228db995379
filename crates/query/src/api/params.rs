//! Request parameters: a query string (`GET`) or a JSON body (`POST`) turned into the
//! structured model. Only known names are taken; a name that tries to choose the tenant is
//! refused with its own code, any other unknown name with `unknown_parameter`.
//!
//! Relative ranges (`since`) end at the current minute, so the same request within a minute
//! is the same query (and the same cache entry).

use std::collections::BTreeMap;

use metrics_schema::EventTime;
use serde::Deserialize;

use super::error::AppError;
use super::identity::names_a_tenant;
use crate::model::{Aggregation, Bin, BreakdownRequest, Fill, Filter, QueryError, SeriesRequest, TimeRange};

/// `from`/`to`: epoch milliseconds, RFC 3339, or `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Instant {
    Millis(i64),
    Text(String),
}

/// The parameters of `/v1/series`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesParams {
    pub metric: Option<String>,
    #[serde(default)]
    pub measures: Vec<String>,
    pub aggregation: Option<String>,
    pub bin: Option<String>,
    pub from: Option<Instant>,
    pub to: Option<Instant>,
    pub since: Option<String>,
    #[serde(default)]
    pub filters: BTreeMap<String, String>,
    pub group_by: Option<String>,
    pub fill: Option<String>,
}

const SERIES_FIELDS: &[&str] = &[
    "metric",
    "measures",
    "aggregation",
    "bin",
    "from",
    "to",
    "since",
    "filters",
    "group_by",
    "fill",
];

/// The parameters of `/v1/breakdown`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakdownParams {
    pub metric: Option<String>,
    pub measure: Option<String>,
    pub aggregation: Option<String>,
    pub from: Option<Instant>,
    pub to: Option<Instant>,
    pub since: Option<String>,
    #[serde(default)]
    pub filters: BTreeMap<String, String>,
    pub dimension: Option<String>,
    pub limit: Option<usize>,
}

const BREAKDOWN_FIELDS: &[&str] = &[
    "metric",
    "measure",
    "aggregation",
    "from",
    "to",
    "since",
    "filters",
    "dimension",
    "limit",
];

/// The default span when a request gives no range.
pub const DEFAULT_SINCE: &str = "7d";
/// The default bin of a series.
pub const DEFAULT_BIN: &str = "1h";
/// The default number of rows of a breakdown.
pub const DEFAULT_LIMIT: usize = 10;

fn pairs(query: Option<&str>) -> Result<Vec<(String, String)>, AppError> {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Ok(Vec::new());
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| AppError::InvalidRequest("the query string is not valid form encoding".into()))?;
    for (key, _) in &pairs {
        if names_a_tenant(key) {
            return Err(AppError::TenantNotAllowed);
        }
    }
    Ok(pairs)
}

fn set_once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), AppError> {
    if slot.replace(value).is_some() {
        return Err(AppError::InvalidRequest(format!("{key} is given more than once")));
    }
    Ok(())
}

fn instant(text: String) -> Instant {
    match text.parse::<i64>() {
        Ok(ms) => Instant::Millis(ms),
        Err(_) => Instant::Text(text),
    }
}

fn add_filter(filters: &mut BTreeMap<String, String>, text: &str) -> Result<(), AppError> {
    let f = Filter::parse(text)?;
    if filters.insert(f.dimension, f.value).is_some() {
        return Err(AppError::InvalidRequest("one filter per dimension".into()));
    }
    Ok(())
}

/// A JSON object body, with its field names checked before typing.
pub(crate) fn body<T: serde::de::DeserializeOwned>(bytes: &[u8], fields: &[&str]) -> Result<T, AppError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| AppError::InvalidRequest("the body is not JSON".into()))?;
    let object = value
        .as_object()
        .ok_or_else(|| AppError::InvalidRequest("the body is a JSON object".into()))?;
    for key in object.keys() {
        if names_a_tenant(key) {
            return Err(AppError::TenantNotAllowed);
        }
        if !fields.contains(&key.as_str()) {
            return Err(AppError::UnknownParameter(key.clone()));
        }
    }
    serde_json::from_value(value)
        .map_err(|_| AppError::InvalidRequest("a field of the body has the wrong type".into()))
}

/// Refuses any query parameter (routes that take none).
pub fn no_params(query: Option<&str>) -> Result<(), AppError> {
    match pairs(query)?.into_iter().next() {
        Some((key, _)) => Err(AppError::UnknownParameter(key)),
        None => Ok(()),
    }
}

impl QueryParams for SeriesParams {
    const ROUTE: &'static str = "series";
    type Request = SeriesRequest;

    fn from_query(query: Option<&str>) -> Result<Self, AppError> {
        let mut p = SeriesParams::default();
        for (key, value) in pairs(query)? {
            match key.as_str() {
                "metric" => set_once(&mut p.metric, &key, value)?,
                "measure" | "measures" => p.measures.push(value),
                "aggregation" | "agg" => set_once(&mut p.aggregation, &key, value)?,
                "bin" => set_once(&mut p.bin, &key, value)?,
                "from" => set_once(&mut p.from, &key, instant(value))?,
                "to" => set_once(&mut p.to, &key, instant(value))?,
                "since" => set_once(&mut p.since, &key, value)?,
                "filter" => add_filter(&mut p.filters, &value)?,
                "group_by" => set_once(&mut p.group_by, &key, value)?,
                "fill" => set_once(&mut p.fill, &key, value)?,
                _ => return Err(AppError::UnknownParameter(key)),
            }
        }
        Ok(p)
    }

    fn from_body(bytes: &[u8]) -> Result<Self, AppError> {
        body(bytes, SERIES_FIELDS)
    }

    /// The metric and measures whose default aggregation the request takes: set when it names
    /// a measure but no aggregation.
    fn needs_default(&self) -> Option<(&str, &[String])> {
        match (&self.metric, &self.aggregation) {
            (Some(metric), None) if !self.measures.is_empty() => Some((metric, &self.measures)),
            _ => None,
        }
    }

    /// The structured request (still to be checked against the tenant's catalog).
    /// `default` is the aggregation of a request that names measures and no aggregation
    /// (see [`SeriesParams::needs_default`]); `sum` when not given.
    fn resolve(self, now: EventTime, default: Option<Aggregation>) -> Result<SeriesRequest, AppError> {
        let metric = required(self.metric, "metric")?;
        let aggregation = aggregation(self.aggregation.as_deref(), !self.measures.is_empty(), default)?;
        Ok(SeriesRequest {
            metric,
            measures: self.measures,
            aggregation,
            bin: Bin::parse(self.bin.as_deref().unwrap_or(DEFAULT_BIN))?,
            range: range(self.from, self.to, self.since.as_deref(), now)?,
            filters: filters(self.filters),
            group_by: self.group_by,
            fill: self
                .fill
                .as_deref()
                .map(Fill::parse)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

impl QueryParams for BreakdownParams {
    const ROUTE: &'static str = "breakdown";
    type Request = BreakdownRequest;

    fn from_query(query: Option<&str>) -> Result<Self, AppError> {
        let mut p = BreakdownParams::default();
        for (key, value) in pairs(query)? {
            match key.as_str() {
                "metric" => set_once(&mut p.metric, &key, value)?,
                "measure" => set_once(&mut p.measure, &key, value)?,
                "aggregation" | "agg" => set_once(&mut p.aggregation, &key, value)?,
                "from" => set_once(&mut p.from, &key, instant(value))?,
                "to" => set_once(&mut p.to, &key, instant(value))?,
                "since" => set_once(&mut p.since, &key, value)?,
                "filter" => add_filter(&mut p.filters, &value)?,
                "dimension" => set_once(&mut p.dimension, &key, value)?,
                "limit" => {
                    let n = value
                        .parse()
                        .map_err(|_| AppError::InvalidRequest("limit is a whole number".into()))?;
                    set_once(&mut p.limit, &key, n)?
                }
                _ => return Err(AppError::UnknownParameter(key)),
            }
        }
        Ok(p)
    }

    fn from_body(bytes: &[u8]) -> Result<Self, AppError> {
        body(bytes, BREAKDOWN_FIELDS)
    }

    /// The metric and measure whose default aggregation the request takes: set when it names
    /// a measure but no aggregation.
    fn needs_default(&self) -> Option<(&str, &[String])> {
        match (&self.metric, &self.aggregation, &self.measure) {
            (Some(metric), None, Some(measure)) => Some((metric, std::slice::from_ref(measure))),
            _ => None,
        }
    }

    /// The structured request; `default` as in [`SeriesParams::resolve`].
    fn resolve(self, now: EventTime, default: Option<Aggregation>) -> Result<BreakdownRequest, AppError> {
        Ok(BreakdownRequest {
            metric: required(self.metric, "metric")?,
            aggregation: aggregation(self.aggregation.as_deref(), self.measure.is_some(), default)?,
            measure: self.measure,
            range: range(self.from, self.to, self.since.as_deref(), now)?,
            filters: filters(self.filters),
            dimension: required(self.dimension, "dimension")?,
            limit: self.limit.unwrap_or(DEFAULT_LIMIT),
        })
    }
}

/// What `/v1/series` and `/v1/breakdown` share: parameters read from a query string or a JSON
/// body, then resolved into the request an engine answers.
pub(crate) trait QueryParams: Sized + Send {
    /// The route's name, in cache keys.
    const ROUTE: &'static str;
    type Request: serde::Serialize + super::Routed;

    fn from_query(query: Option<&str>) -> Result<Self, AppError>;
    fn from_body(bytes: &[u8]) -> Result<Self, AppError>;
    /// The metric and measures whose default aggregation the request takes, if it does.
    fn needs_default(&self) -> Option<(&str, &[String])>;
    fn resolve(self, now: EventTime, default: Option<Aggregation>) -> Result<Self::Request, AppError>;
}

fn required(value: Option<String>, name: &str) -> Result<String, AppError> {
    value.ok_or_else(|| AppError::InvalidRequest(format!("{name} is required")))
}

/// The named aggregation; else the measures' default (sum when none is known), or count
/// without a measure.
fn aggregation(
    text: Option<&str>,
    has_measure: bool,
    default: Option<Aggregation>,
) -> Result<Aggregation, AppError> {
    Ok(match text {
        Some(a) => Aggregation::parse(a).map_err(QueryError::from)?,
        None if has_measure => default.unwrap_or(Aggregation::Sum),
        None => Aggregation::Count,
    })
}

fn filters(map: BTreeMap<String, String>) -> Vec<Filter> {
    map.into_iter()
        .map(|(dimension, value)| Filter { dimension, value })
        .collect()
}

fn millis(at: Instant) -> Result<i64, AppError> {
    match at {
        Instant::Millis(ms) => Ok(ms),
        Instant::Text(text) => Ok(TimeRange::between(&text, &text)?.from_ms),
    }
}

fn range(
    from: Option<Instant>,
    to: Option<Instant>,
    since: Option<&str>,
    now: EventTime,
) -> Result<TimeRange, AppError> {
    let minute = EventTime::from_millis(Bin(Bin::MINUTE).floor(now.as_millis()) + Bin::MINUTE);
    match (from, to, since) {
        (Some(from), Some(to), None) => Ok(TimeRange {
            from_ms: millis(from)?,
            to_ms: millis(to)?,
        }),
        (None, None, since) => Ok(TimeRange::since(since.unwrap_or(DEFAULT_SINCE), minute)?),
        (Some(from), None, None) => Ok(TimeRange {
            from_ms: millis(from)?,
            to_ms: minute.as_millis(),
        }),
        _ => Err(AppError::InvalidRequest(
            "give from and to, from alone, or since".into(),
        )),
    }
}
