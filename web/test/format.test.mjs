import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatTime, formatValue } from '../src/format.js';

test('values are compact and carry their unit', () => {
  assert.equal(formatValue(1234), '1.23k');
  assert.equal(formatValue(2_500_000, 'events'), '2.5M events');
  assert.equal(formatValue(0.25), '0.25');
  assert.equal(formatValue(42, 'ms'), '42 ms');
  assert.equal(formatValue(null), '–');
});

test('bin starts read as dates for daily bins and as times otherwise', () => {
  const t = Date.UTC(2026, 10, 23, 15, 30);
  assert.equal(formatTime(t, '1d'), '2026-11-23');
  assert.equal(formatTime(t, '1h'), '2026-11-23 15:30');
});
