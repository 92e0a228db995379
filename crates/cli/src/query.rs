//! `metrics-lake query`: one tenant's time series from the local store, through the same
//! structured-query model the query API uses. Prints a table and a terminal chart, or JSON.

use std::process::ExitCode;

use clap::Args;
use metrics_query::embedded::EmbeddedReader;
use metrics_query::{
    Aggregation, AggregationDefaults, Bin, Fill, Filter, QueryError, SeriesRequest, SeriesResult, TimeRange,
};
use metrics_schema::{EventTime, TenantId};

use crate::output::{err, out};
use crate::state::{StateArgs, StateDir};
use crate::summary::thousands;

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    metric: String,
    /// Measures to aggregate (repeat for several); none counts records.
    #[arg(long = "measure")]
    measures: Vec<String>,
    /// sum, avg, min, max or count (default: the measure's `agg` in the mapping file, sum when
    /// it declares none; count without a measure).
    #[arg(long)]
    agg: Option<String>,
    /// Bin width: 1m, 15m, 1h, 1d, …
    #[arg(long, default_value = "1d")]
    bin: String,
    /// The last span before now (e.g. 30d). Default: the metric's whole time range.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    since: Option<String>,
    /// Start (RFC 3339 or YYYY-MM-DD).
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// End, exclusive (RFC 3339 or YYYY-MM-DD).
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// dimension=value (repeat for several; all must hold).
    #[arg(long = "where")]
    filters: Vec<String>,
    /// One series per value of this dimension.
    #[arg(long)]
    group_by: Option<String>,
    /// Empty bins: none (default) or zero.
    #[arg(long, default_value = "none")]
    fill: String,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: QueryArgs) -> ExitCode {
    match query(&args) {
        Ok(result) => {
            if args.json {
                out(serde_json::to_string(&result).unwrap_or_default());
            } else {
                print(&args, &result);
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            err(format!("error: {message}"));
            ExitCode::FAILURE
        }
    }
}

fn query(args: &QueryArgs) -> Result<SeriesResult, String> {
    let tenant = TenantId::parse(args.tenant.as_str()).map_err(|e| e.to_string())?;
    let state = StateDir::existing(&args.state.state_dir)?;
    let store = state.open_store()?;
    let engine = EmbeddedReader::new(&store);
    let show = |e: QueryError| format!("{} ({})", e.message, e.code.as_str());

    let given = match &args.agg {
        Some(a) => Some(Aggregation::parse(a).map_err(|e| show(e.into()))?),
        None => None,
    };
    let bin = Bin::parse(&args.bin).map_err(show)?;
    let catalog = engine.catalog(&tenant).map_err(show)?;
    // Without --agg, the measures' default from the mapping file, as the query API does.
    let aggregation = given.unwrap_or_else(|| {
        AggregationDefaults::compiled_in().for_request(&catalog, &args.metric, &args.measures)
    });
    let Some(metric) = catalog.metrics.get(&args.metric) else {
        let known: Vec<&str> = catalog.metrics.keys().map(String::as_str).collect();
        return Err(if known.is_empty() {
            format!("tenant {tenant} has no data (see `metrics-lake tenants`)")
        } else {
            format!(
                "tenant {tenant} has no metric {:?}; it has: {}",
                args.metric,
                known.join(", ")
            )
        });
    };
    let range = match (&args.since, &args.from, &args.to) {
        (Some(since), _, _) => TimeRange::since(since, EventTime::now()).map_err(show)?,
        (None, Some(from), Some(to)) => TimeRange::between(from, to).map_err(show)?,
        _ => {
            let (first, last) = (metric.first_ms.unwrap_or(0), metric.last_ms.unwrap_or(0));
            TimeRange {
                from_ms: bin.floor(first),
                to_ms: bin.floor(last) + bin.millis(),
            }
        }
    };
    let filters = args
        .filters
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(show)?;
    let request = SeriesRequest {
        metric: args.metric.clone(),
        measures: args.measures.clone(),
        aggregation,
        bin,
        range,
        filters,
        group_by: args.group_by.clone(),
        fill: Fill::parse(&args.fill).map_err(show)?,
    };
    engine.series(&tenant, &request).map_err(show)
}

fn label(t: i64, bin: &str) -> String {
    let text = EventTime::from_millis(t).to_rfc3339();
    if bin.ends_with('d') {
        text[..10].to_owned()
    } else {
        text[..16].replace('T', " ")
    }
}

fn value_text(v: Option<f64>) -> String {
    match v {
        None => "-".to_owned(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => {
            let n = thousands(v.abs() as u64);
            if v < 0.0 { format!("-{n}") } else { n }
        }
        Some(v) => format!("{v:.3}"),
    }
}

fn series_name(s: &metrics_query::Series) -> String {
    match &s.group {
        Some(g) => format!("{} [{g}]", s.measure),
        None => s.measure.clone(),
    }
}

fn print(args: &QueryArgs, result: &SeriesResult) {
    out(format!(
        "{} / {}: {} per {} (tenant {})",
        result.metric,
        result
            .series
            .first()
            .map(|s| s.measure.as_str())
            .unwrap_or("count"),
        result.aggregation.as_str(),
        result.bin,
        args.tenant
    ));
    let shown: Vec<&metrics_query::Series> = result.series.iter().take(6).collect();
    let headers = column_headers(&shown);
    let width = column_width(&headers, &shown);
    let mut header = format!("{:<17}", "bin");
    for h in &headers {
        header.push_str(&format!("{h:>width$}"));
    }
    out(header);
    let points = shown.first().map(|s| s.points.len()).unwrap_or(0);
    for i in 0..points {
        let mut line = format!("{:<17}", label(shown[0].points[i].t, &result.bin));
        for s in &shown {
            line.push_str(&format!("{:>width$}", value_text(s.points[i].v)));
        }
        out(line);
    }
    if result.series.len() > shown.len() {
        out(format!(
            "… and {} more series (use --json)",
            result.series.len() - shown.len()
        ));
    }
    out("");
    for s in &result.series {
        out(format!(
            "{:<24} {}",
            truncate(&series_name(s), 23),
            sparkline(&s.points)
        ));
    }
    if let Some(s) = result
        .series
        .first()
        .filter(|_| result.series.len() == 1 && points <= 62)
    {
        out("");
        bars(s, &result.bin);
    }
}

/// The table's column headers, whole: the group alone when every column shows the same
/// measure (the title line names it), else the measure with its group.
fn column_headers(shown: &[&metrics_query::Series]) -> Vec<String> {
    let one_measure = shown.windows(2).all(|w| w[0].measure == w[1].measure);
    shown
        .iter()
        .map(|s| match &s.group {
            Some(group) if one_measure => group.clone(),
            _ => series_name(s),
        })
        .collect()
}

/// One width for every column: its widest header or value, two spaces apart, at least 16.
fn column_width(headers: &[String], shown: &[&metrics_query::Series]) -> usize {
    let values = shown
        .iter()
        .flat_map(|s| s.points.iter().map(|p| value_text(p.v).chars().count()));
    headers
        .iter()
        .map(|h| h.chars().count())
        .chain(values)
        .max()
        .map_or(16, |w| (w + 2).max(16))
}

fn truncate(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(n - 1).collect::<String>())
    }
}

/// One character per point, `▁` to `█`, blank for empty bins.
pub fn sparkline(points: &[metrics_query::Point]) -> String {
    const TICKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let values: Vec<f64> = points.iter().filter_map(|p| p.v).collect();
    let (min, max) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    points
        .iter()
        .map(|p| match p.v {
            None => ' ',
            Some(v) if max > min => TICKS[(((v - min) / (max - min)) * 7.0).round() as usize],
            Some(_) => TICKS[3],
        })
        .collect()
}

/// A horizontal bar per bin, scaled to 50 columns.
fn bars(series: &metrics_query::Series, bin: &str) {
    let max = series.points.iter().filter_map(|p| p.v).fold(0.0_f64, f64::max);
    for p in &series.points {
        let width = match p.v {
            Some(v) if max > 0.0 && v > 0.0 => ((v / max) * 50.0).round().max(1.0) as usize,
            _ => 0,
        };
        out(format!(
            "{:<17}{:<51}{}",
            label(p.t, bin),
            "█".repeat(width),
            value_text(p.v)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_query::{Point, Series};

    fn series(measure: &str, group: Option<&str>, v: f64) -> Series {
        Series {
            measure: measure.into(),
            group: group.map(str::to_owned),
            points: vec![Point { t: 0, v: Some(v) }],
        }
    }

    #[test]
    fn grouped_columns_are_headed_by_their_whole_group() {
        let a = series("count", Some("critical"), 7.0);
        let b = series("count", Some("a-group-name-longer-than-a-column"), 1.0);
        let shown = [&a, &b];
        let headers = column_headers(&shown);
        assert_eq!(headers, ["critical", "a-group-name-longer-than-a-column"]);
        assert_eq!(column_width(&headers, &shown), 35);
    }

    #[test]
    fn columns_of_different_measures_name_the_measure() {
        let a = series("duration_ms", Some("sast"), 1.5);
        let b = series("files_scanned", Some("sast"), 2.0);
        let shown = [&a, &b];
        let headers = column_headers(&shown);
        assert_eq!(headers, ["duration_ms [sast]", "files_scanned [sast]"]);
        assert_eq!(column_width(&headers, &shown), 22);
        assert_eq!(column_width(&["n".to_owned()], &[&series("n", None, 1.0)]), 16);
    }
}
