// <metrics-lake-chart>: one chart of a tenant's metric, drawn with uPlot from the
// metrics-lake query API, with the caller's token.
//
// Attributes: api (base URL, default same origin), token, kind (series | breakdown), metric,
// measure (comma-separated), aggregation, bin, since | from + to, filter (dim=value;…),
// group-by, fill, dimension and limit (breakdown), unit, title, theme (light | dark | auto),
// height, threshold (series: a dashed line at that value, e.g. an alert's). The host's
// data-state is loading, empty, error or ready; `points` is the number of non-empty values
// drawn, `chart` the uPlot instance, `threshold` the line's value (null without one).

import uPlot from 'uplot';
import uplotCss from 'uplot/dist/uPlot.min.css';
import { apiGet } from './api.js';
import { formatTime, formatValue } from './format.js';
import { breakdownData, seriesData } from './series.js';
import { THEMES, pickTheme } from './theme.js';

const STYLE = `
:host { display: block; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
.frame { background: var(--bg); color: var(--fg); border: 1px solid var(--grid); border-radius: 8px; padding: 12px; }
.title { font-weight: 600; margin: 0 0 8px; }
.status { color: var(--muted); padding: 24px 0; text-align: center; }
.status[data-kind="error"] { color: var(--error); }
.status[hidden], .plot[hidden] { display: none; }
.u-legend { color: var(--fg); }
.u-legend .u-marker { border-radius: 2px; }
`;

const OBSERVED = ['api', 'token', 'kind', 'metric', 'measure', 'aggregation', 'bin', 'since', 'from', 'to', 'filter',
  'group-by', 'fill', 'dimension', 'limit', 'unit', 'title', 'theme', 'height', 'threshold'];

export class MetricsLakeChart extends HTMLElement {
  static get observedAttributes() {
    return OBSERVED;
  }

  constructor() {
    super();
    this.attachShadow({ mode: 'open' });
    this.shadowRoot.innerHTML = `<style>${uplotCss}${STYLE}</style>
      <div class="frame" part="frame"><div class="title" part="title"></div>
      <div class="status" part="status" role="status" aria-live="polite"></div><div class="plot" part="plot"></div></div>`;
    this.chart = null;
    this.points = 0;
    this.data = null;
    this.threshold = null;
    this._abort = null;
    this._queued = false;
  }

  connectedCallback() {
    this._resize = new ResizeObserver(() => this.chart && this.chart.setSize(this._size()));
    this._resize.observe(this);
    this._schedule();
  }

  disconnectedCallback() {
    this._resize?.disconnect();
    this._abort?.abort();
    this.chart?.destroy();
    this.chart = null;
  }

  attributeChangedCallback() {
    if (this.isConnected) this._schedule();
  }

  /** Reload now (e.g. after the token changed outside the attributes). */
  refresh() {
    return this._load();
  }

  // Several attributes often change together: load once after them.
  _schedule() {
    if (this._queued) return;
    this._queued = true;
    queueMicrotask(() => {
      this._queued = false;
      this._load();
    });
  }

  _attr(name, fallback = '') {
    const v = this.getAttribute(name);
    return v == null || v === '' ? fallback : v;
  }

  _size() {
    return { width: Math.max(200, this.clientWidth - 26), height: Number(this._attr('height', '260')) };
  }

  _show(state, message = '') {
    this.dataset.state = state;
    const status = this.shadowRoot.querySelector('.status');
    status.textContent = message;
    status.dataset.kind = state;
    status.hidden = state === 'ready';
    this.shadowRoot.querySelector('.plot').hidden = state !== 'ready';
    this.dispatchEvent(new CustomEvent('metrics-lake-state', { detail: { state, message }, bubbles: true, composed: true }));
  }

  _params() {
    const range = this._attr('from') && this._attr('to')
      ? { from: this._attr('from'), to: this._attr('to') }
      : { since: this._attr('since', '7d') };
    const filter = this._attr('filter').split(';').map((f) => f.trim()).filter(Boolean);
    const common = { metric: this._attr('metric'), aggregation: this._attr('aggregation'), filter, ...range };
    if (this._kind() === 'breakdown') {
      return { ...common, measure: this._attr('measure'), dimension: this._attr('dimension'), limit: this._attr('limit') };
    }
    const measure = this._attr('measure').split(',').map((m) => m.trim()).filter(Boolean);
    return { ...common, measure, bin: this._attr('bin'), group_by: this._attr('group-by'), fill: this._attr('fill') };
  }

  _kind() {
    return this._attr('kind', 'series') === 'breakdown' ? 'breakdown' : 'series';
  }

  async _load() {
    this.shadowRoot.querySelector('.title').textContent = this._attr('title', this._attr('metric'));
    const theme = THEMES[pickTheme(this._attr('theme', 'auto'))];
    for (const [k, v] of Object.entries(theme)) if (typeof v === 'string') this.style.setProperty(`--${k}`, v);
    if (!this._attr('metric')) {
      this._show('empty', 'No metric chosen.');
      return;
    }
    this._abort?.abort();
    const abort = new AbortController();
    this._abort = abort;
    this._show('loading', 'Loading…');
    try {
      const kind = this._kind();
      const data = await apiGet(this._attr('api', ''), this._attr('token'), `/v1/${kind}`, this._params(), abort.signal);
      if (abort.signal.aborted) return;
      this.data = data;
      this._draw(kind, data, theme);
    } catch (e) {
      if (e.name === 'AbortError') return;
      this.chart?.destroy();
      this.chart = null;
      this.points = 0;
      this._show('error', `Could not load the chart: ${e.message}${e.code ? ` (${e.code})` : ''}`);
    }
  }

  /** The threshold attribute as a number, on series charts only. */
  _threshold(kind) {
    const text = this._attr('threshold');
    const value = Number(text);
    return kind === 'series' && text !== '' && Number.isFinite(value) ? value : null;
  }

  _draw(kind, data, theme) {
    const { aligned, series, count, labels } = kind === 'breakdown' ? breakdownData(data) : seriesData(data);
    this.threshold = this._threshold(kind);
    this.points = count;
    this.chart?.destroy();
    this.chart = null;
    if (count === 0) {
      this._show('empty', 'No data in this range.');
      return;
    }
    this._show('ready');
    const unit = this._attr('unit');
    const axis = { stroke: theme.muted, grid: { stroke: theme.grid, width: 1 }, ticks: { stroke: theme.grid, width: 1 } };
    const opts = {
      ...this._size(),
      series: [
        kind === 'breakdown' ? { label: data.dimension, value: (_, i) => labels[i] ?? '' } : { label: 'time', value: (_, t) => (t == null ? '' : formatTime(t * 1000, data.bin)) },
        ...series.map((s, i) => ({
          label: s,
          stroke: theme.series[i % theme.series.length],
          fill: kind === 'breakdown' ? theme.series[i % theme.series.length] + '99' : undefined,
          width: 2,
          points: { show: kind === 'series', size: 5 },
          paths: kind === 'breakdown' ? uPlot.paths.bars({ size: [0.6, 64] }) : undefined,
          value: (_, v) => formatValue(v, unit),
          spanGaps: false,
        })),
        // An alert's threshold: a dashed line over the whole range (in the scale, so always in view).
        ...(this.threshold == null
          ? []
          : [{ label: 'threshold', stroke: theme.error, dash: [6, 4], width: 1.5, points: { show: false }, value: (_, v) => formatValue(v, unit) }]),
      ],
      // Bars start at zero; bins are UTC (as the API's), so the time axis is too.
      scales: kind === 'breakdown'
        ? { x: { time: false, range: (_, min, max) => [min - 0.5, max + 0.5] }, y: { range: (_, min, max) => [0, max * 1.1 || 1] } }
        : {},
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
      axes: [
        kind === 'breakdown'
          ? { ...axis, values: (_, ticks) => ticks.map((t) => (Number.isInteger(t) ? labels[t] ?? '' : '')), splits: () => labels.map((_, i) => i) }
          : { ...axis },
        { ...axis, size: 56, values: (_, ticks) => ticks.map((v) => formatValue(v)), label: unit || undefined, labelSize: 18 },
      ],
      legend: { show: true },
      cursor: { points: { size: 7 } },
    };
    const columns = this.threshold == null ? aligned : [...aligned, aligned[0].map(() => this.threshold)];
    this.chart = new uPlot(opts, columns, this.shadowRoot.querySelector('.plot'));
  }
}
