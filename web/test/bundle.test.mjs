// The committed bundle (embedded by `metrics-lake serve`) must be what the sources build to:
// run `npm run build` in web/ after changing src/ and commit dist/ with it.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { bundle, outfile } from '../build.mjs';

test('the committed bundle is built from the current sources', async () => {
  const committed = await readFile(new URL(`../${outfile}`, import.meta.url), 'utf8');
  const fresh = await bundle();
  assert.ok(committed === fresh, `${outfile} is stale: run \`npm run build\` in web/ and commit it`);
});
