// The dashboard in a real headless Chromium (Debian's package, driven by playwright-core):
// `metrics-lake run` prepares a store from the sample data, `metrics-lake serve` serves it,
// and the page must load, draw exactly the API's points, switch tenants, and show the error
// state when the API fails, and the themes switch; alerts created through the API show with
// their threshold on their chart, and which of them fire after `metrics-lake alerts evaluate`.
// Screenshots are saved to test/output/ (ignored by git, so a test run leaves the tree clean).
//
// Needs Chromium at /usr/bin/chromium (or $CHROMIUM); scripts/test installs it. It never
// skips: without a browser it fails saying so.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const web = fileURLToPath(new URL('..', import.meta.url));
const root = join(web, '..');
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';
const run = promisify(execFile);
const screenshot = join(web, 'test', 'output', 'dashboard.png');
const alertsScreenshot = join(web, 'test', 'output', 'dashboard-alerts.png');

/** The metrics-lake binary: $METRICS_LAKE_BIN, else built now (a no-op when fresh). */
function binary() {
  if (process.env.METRICS_LAKE_BIN) return process.env.METRICS_LAKE_BIN;
  execFileSync('cargo', ['build', '--quiet', '--locked', '-p', 'metrics-lake'], { cwd: root, stdio: 'inherit' });
  return join(process.env.CARGO_TARGET_DIR || join(root, 'target'), 'debug', 'metrics-lake');
}

/**
 * Starts `metrics-lake serve --port 0` and resolves with its base URL. Alerts are evaluated
 * only when a test says so (`alerts evaluate`), and may post to a receiver on 127.0.0.1.
 */
function serve(bin, stateDir) {
  const args = ['serve', '--port', '0', '--alerts-every', '0', '--allow-local-webhooks', '--state-dir', stateDir];
  const child = spawn(bin, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve printed no URL: ${out}`)), 20_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[0] });
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
  });
}

/** A webhook receiver on 127.0.0.1: counts the requests it gets, answers 200. */
function receiver() {
  const received = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push({ id: req.headers['webhook-id'], body: JSON.parse(body) });
      res.end('ok');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, received, url: `http://127.0.0.1:${server.address().port}/hook` })));
}

/** What a chart asked the API, asked again directly: the expected answer. */
async function apiAnswer(page, selector) {
  return page.evaluate(async (sel) => {
    const el = document.querySelector(sel);
    const params = new URLSearchParams();
    for (const name of ['metric', 'bin', 'from', 'to', 'fill', 'measure', 'aggregation', 'dimension', 'limit']) {
      const v = el.getAttribute(name);
      if (v) params.set(name, v);
    }
    const kind = el.getAttribute('kind') === 'breakdown' ? 'breakdown' : 'series';
    const r = await fetch(`/v1/${kind}?${params}`, { headers: { Authorization: `Bearer ${el.getAttribute('token')}` } });
    return r.json();
  }, selector);
}

const ready = (page, selector) =>
  page.waitForFunction((sel) => document.querySelector(sel)?.dataset.state === 'ready', selector, { timeout: 15_000 });

describe('dashboard in headless Chromium', () => {
  let server;
  let browser;
  let page;
  let tmp;
  let bin;
  let hooks;

  before(async () => {
    assert.ok(
      existsSync(browserPath),
      `Chromium is not at ${browserPath}: install Debian's chromium package (scripts/test does) or set CHROMIUM`,
    );
    bin = binary();
    hooks = await receiver();
    mkdirSync(join(web, 'test', 'tmp'), { recursive: true });
    tmp = mkdtempSync(join(web, 'test', 'tmp', 'state-'));
    execFileSync(bin, ['run', '--sample-events', '3000', '--state-dir', tmp, '--quiet'], { cwd: root, stdio: 'ignore' });
    server = await serve(bin, tmp);
    browser = await chromium.launch({
      executablePath: browserPath,
      headless: true,
      // Without the background-networking flags Chromium keeps calling out to a closed network.
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  after(async () => {
    await browser?.close();
    server?.child.kill();
    hooks?.server.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('loads with every local tenant in the picker and its charts drawn', async () => {
    await page.goto(server.url + '/');
    await page.waitForFunction(() => document.body.dataset.tenant, null, { timeout: 15_000 });
    const tenants = await page.$$eval('#tenant option', (os) => os.map((o) => o.value));
    assert.deepEqual(tenants, ['acme-prod', 'globex', 'hooli-staging', 'initech', 'umbrella-eu']);
    // The README's headline metric, not the first in alphabetical order.
    assert.equal(await page.$eval('#metric', (s) => s.value), 'findings_upload_completed');
    for (const sel of ['#series-count', '#series-measure', '#breakdown']) await ready(page, sel);
    const canvases = await page.$$eval('metrics-lake-chart', (els) => els.map((e) => e.shadowRoot.querySelector('canvas')?.width ?? 0));
    assert.equal(canvases.length, 3);
    assert.ok(canvases.every((w) => w > 0), `every chart has a canvas: ${canvases}`);
    await page.screenshot({ path: screenshot, fullPage: true });
  });

  it("charts a measure with its catalog default aggregation: a duration is averaged, a count summed", async () => {
    const catalog = await page.evaluate(async () => {
      const token = document.querySelector('#series-measure').getAttribute('token');
      const r = await fetch('/v1/metrics', { headers: { Authorization: `Bearer ${token}` } });
      return (await r.json()).metrics;
    });
    assert.equal(catalog.findings_upload_completed.default_aggregation.new_findings_count, 'sum');
    assert.equal(catalog.scan_completed.default_aggregation.duration_ms, 'avg');
    const measure = () => page.$eval('#series-measure', (el) => ({
      measure: el.getAttribute('measure'),
      aggregation: el.getAttribute('aggregation'),
      answered: el.data?.aggregation,
      title: el.shadowRoot.querySelector('.title').textContent,
      ys: el.chart?.data[1],
    }));
    const first = await measure();
    assert.equal(first.aggregation, catalog.findings_upload_completed.default_aggregation[first.measure]);
    assert.equal(first.answered, 'sum');

    await page.selectOption('#metric', 'scan_completed');
    await page.waitForFunction(() => document.querySelector('#series-measure')?.getAttribute('measure') === 'duration_ms');
    await ready(page, '#series-measure');
    const scan = await measure();
    assert.equal(scan.aggregation, 'avg');
    assert.equal(scan.answered, 'avg');
    assert.match(scan.title, /avg of duration_ms/);
    // The API's own default (no aggregation asked) is the same answer.
    const expected = await apiAnswer(page, '#series-measure');
    assert.equal(expected.aggregation, 'avg');
    assert.deepEqual(scan.ys, expected.series[0].points.map((p) => p.v));
    assert.ok(scan.ys.filter((v) => v != null).every((v) => v >= 5_000 && v <= 245_000), `daily averages of 5-245 s scans: ${scan.ys}`);

    await page.selectOption('#metric', 'findings_upload_completed');
    await ready(page, '#series-measure');
    assert.equal((await measure()).measure, first.measure);
  });

  it('switches every chart between the light and dark themes', async () => {
    const background = () => page.$$eval('metrics-lake-chart', (els) => els.map((e) => e.style.getPropertyValue('--bg')));
    const start = await page.evaluate(() => document.documentElement.dataset.theme);
    await page.click('#theme');
    const flipped = start === 'dark' ? 'light' : 'dark';
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), flipped);
    await page.waitForFunction(() => document.querySelector('#series-count')?.dataset.state === 'ready');
    const expected = flipped === 'dark' ? '#0d1117' : '#ffffff';
    assert.deepEqual(await background(), [expected, expected, expected]);
    await page.click('#theme');
    await page.waitForFunction(() => document.querySelector('#series-count')?.dataset.state === 'ready');
  });

  it('draws exactly the points the API answers for a known series', async () => {
    const expected = await apiAnswer(page, '#series-count');
    const points = expected.series[0].points;
    assert.ok(points.length >= 20, `a month of daily bins: ${points.length}`);
    const drawn = await page.$eval('#series-count', (el) => ({
      xs: el.chart.data[0].length,
      ys: el.chart.data[1],
      points: el.points,
    }));
    assert.equal(drawn.xs, points.length);
    assert.deepEqual(drawn.ys, points.map((p) => p.v));
    assert.equal(drawn.points, points.filter((p) => p.v != null).length);

    const bars = await apiAnswer(page, '#breakdown');
    const drawnBars = await page.$eval('#breakdown', (el) => el.chart.data[1]);
    assert.deepEqual(drawnBars, bars.rows.map((r) => r.v));
  });

  it("switching tenants redraws with the other tenant's data", async () => {
    const before = await page.$eval('#series-count', (el) => ({ ys: el.chart.data[1], token: el.getAttribute('token') }));
    await page.selectOption('#tenant', 'globex');
    await page.waitForFunction(() => document.body.dataset.tenant === 'globex');
    await ready(page, '#series-count');
    const afterSwitch = await page.$eval('#series-count', (el) => ({ ys: el.chart.data[1], token: el.getAttribute('token') }));
    assert.notEqual(afterSwitch.token, before.token);
    assert.notDeepEqual(afterSwitch.ys, before.ys);
    const expected = await apiAnswer(page, '#series-count');
    assert.deepEqual(afterSwitch.ys, expected.series[0].points.map((p) => p.v));
    const tenant = await page.evaluate(async () => {
      const token = document.querySelector('#series-count').getAttribute('token');
      const r = await fetch('/v1/metrics', { headers: { Authorization: `Bearer ${token}` } });
      return (await r.json()).tenant;
    });
    assert.equal(tenant, 'globex');
  });

  it('shows the error state when the API fails, and the empty state with no data', async () => {
    await page.route('**/v1/series**', (route) =>
      route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'store_unavailable', message: 'the store could not answer; try again later' } }) }),
    );
    await page.selectOption('#bin', '1h');
    await page.waitForFunction(() => document.querySelector('#series-count')?.dataset.state === 'error', null, { timeout: 15_000 });
    const message = await page.$eval('#series-count', (el) => el.shadowRoot.querySelector('.status').textContent);
    assert.match(message, /store could not answer.*store_unavailable/);
    assert.equal(await page.$eval('#series-count', (el) => el.chart), null);
    await page.unroute('**/v1/series**');

    // A real refusal from the API (an unknown metric) is an error state too.
    await page.$eval('#series-count', (el) => el.setAttribute('metric', 'no_such_metric'));
    await page.waitForFunction(() => document.querySelector('#series-count')?.dataset.state === 'error');
    const refused = await page.$eval('#series-count', (el) => el.shadowRoot.querySelector('.status').textContent);
    assert.match(refused, /unknown_metric/);

    // A range with no records: the empty state, not an empty chart.
    await page.$eval('#series-measure', (el) => {
      el.setAttribute('from', '2000-01-01');
      el.setAttribute('to', '2000-01-02');
    });
    await page.waitForFunction(() => document.querySelector('#series-measure')?.dataset.state === 'empty');
  });
  it("shows an alert's threshold on its chart, and which alerts fire", async () => {
    await page.goto(server.url + '/');
    await page.waitForFunction(() => document.body.dataset.tenant === 'acme-prod', null, { timeout: 15_000 });
    assert.equal(await page.$eval('#alerts', (el) => el.hidden), true, 'no alerts yet: no alert section');
    // Two alerts on the uploads per day, created through the API as the tenant: one low
    // threshold the sample crosses, one it never reaches.
    const created = await page.evaluate(async (url) => {
      const token = document.querySelector('#series-count').getAttribute('token');
      const post = async (name, threshold) => {
        const r = await fetch('/v1/alerts', {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ name, metric: 'findings_upload_completed', window: '1d', condition: { type: 'above', threshold }, url }),
        });
        return { status: r.status, body: await r.json() };
      };
      return [await post('Uploads today', 3), await post('Upload flood', 100000)];
    }, hooks.url);
    assert.deepEqual(created.map((c) => c.status), [201, 201], JSON.stringify(created));
    const [low, high] = created.map((c) => c.body);

    // One evaluation at a sample weekday: the low one fires (one signed request), the other does not.
    // Asynchronously: the receiver answers from this process's event loop.
    const { stdout } = await run(bin, ['alerts', 'evaluate', '--now', '2026-11-20T12:00:00Z', '--allow-local-webhooks', '--json', '--state-dir', tmp], { cwd: root });
    const report = JSON.parse(stdout);
    assert.equal(report.delivered, 1, JSON.stringify(report));
    assert.deepEqual(hooks.received.map((r) => r.id), [`${low.id}.1.firing`]);

    await page.reload();
    await page.waitForFunction(() => document.body.dataset.tenant === 'acme-prod', null, { timeout: 15_000 });
    const listed = await page.$$eval('#alert-list li', (lis) => lis.map((li) => ({ id: li.dataset.alertId, status: li.dataset.status })));
    assert.deepEqual(listed, [
      { id: low.id, status: 'firing' },
      { id: high.id, status: 'ok' },
    ]);
    assert.equal(await page.$eval('#alert-summary', (el) => el.textContent), '(1 of 2 firing)');

    for (const a of [low, high]) {
      const sel = `#alert-${a.id}`;
      await ready(page, sel);
      const drawn = await page.$eval(sel, (el) => ({
        bin: el.getAttribute('bin'),
        threshold: el.threshold,
        title: el.shadowRoot.querySelector('.title').textContent,
        columns: el.chart.data.length,
        ys: el.chart.data[1],
        line: el.chart.data[2],
        labels: el.chart.series.map((s) => s.label),
      }));
      assert.equal(drawn.bin, '1d');
      assert.equal(drawn.threshold, a.condition.threshold);
      assert.equal(drawn.columns, 3, 'time, the values, the threshold');
      assert.deepEqual(drawn.labels.slice(1), ['count', 'threshold']);
      assert.ok(drawn.line.every((v) => v === a.condition.threshold), `a flat line at ${a.condition.threshold}`);
      assert.match(drawn.title, a === low ? /Uploads today \(firing\)/ : /Upload flood \(ok\)/);
      const expected = await apiAnswer(page, sel);
      assert.deepEqual(drawn.ys, expected.series[0].points.map((p) => p.v));
      assert.ok(drawn.ys.some((v) => v > a.condition.threshold) === (a === low), 'the firing alert crosses its line, the other does not');
    }
    await page.screenshot({ path: alertsScreenshot, fullPage: true });

    // Another tenant sees none of them.
    await page.selectOption('#tenant', 'globex');
    await page.waitForFunction(() => document.body.dataset.tenant === 'globex');
    assert.equal(await page.$eval('#alerts', (el) => el.hidden), true);
    assert.equal(await page.$$eval('metrics-lake-chart[id^="alert-"]', (els) => els.length), 0);
  });
});
