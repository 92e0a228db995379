// The API's answers as uPlot's columns. No DOM and no uPlot here, so tests can import it.

/**
 * uPlot's columns: x (bin starts in seconds), then one column per series. A range that starts
 * mid-bin (`since=7d` does, unlike whole-bin `from`/`to`) makes the first bin cover only part of
 * its width; it is left out rather than drawn as a dip.
 */
export function seriesData(data) {
  const skip = data.series[0]?.points[0]?.t < data.range?.from_ms ? 1 : 0;
  const series = data.series.map((s) => ({ ...s, points: s.points.slice(skip) }));
  const xs = series[0] ? series[0].points.map((p) => p.t / 1000) : [];
  const names = series.map((s) => (s.group != null ? `${s.measure} [${s.group}]` : s.measure));
  const columns = series.map((s) => s.points.map((p) => p.v));
  const count = columns.reduce((n, c) => n + c.filter((v) => v != null).length, 0);
  return { aligned: [xs, ...columns], series: names, count, labels: [] };
}

/** A breakdown as bars: x is the row index, labelled with the dimension's value. */
export function breakdownData(data) {
  const labels = data.rows.map((r) => r.value);
  return {
    aligned: [labels.map((_, i) => i), data.rows.map((r) => r.v)],
    series: [data.aggregation],
    count: data.rows.length,
    labels,
  };
}
