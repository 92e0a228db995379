import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seriesData } from '../src/series.js';

const HOUR = 3600e3;
const answer = (fromMs) => ({
  bin: '1h',
  range: { from_ms: fromMs, to_ms: 3 * HOUR },
  series: [{ measure: 'count', points: [{ t: 0, v: 1 }, { t: HOUR, v: 40 }, { t: 2 * HOUR, v: 38 }] }],
});

test('a range that starts mid-bin leaves its partial first bin out', () => {
  const { aligned, count } = seriesData(answer(HOUR / 2));
  assert.deepEqual(aligned, [[3600, 7200], [40, 38]]);
  assert.equal(count, 2);
});

test('a range of whole bins keeps every bin', () => {
  const { aligned, count } = seriesData(answer(0));
  assert.deepEqual(aligned, [[0, 3600, 7200], [1, 40, 38]]);
  assert.equal(count, 3);
});

test('groups are named by measure and group', () => {
  const data = { ...answer(0), series: [{ ...answer(0).series[0], group: 'high' }] };
  assert.deepEqual(seriesData(data).series, ['count [high]']);
});
