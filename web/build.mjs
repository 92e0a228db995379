// Builds the embeddable chart into one file, dist/metrics-lake-chart.js, which the Rust
// binary embeds (so `cargo build` needs no npm). The options live here so the staleness test
// builds exactly the same bytes.
import * as esbuild from 'esbuild';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

export const options = {
  absWorkingDir: here,
  entryPoints: ['src/index.js'],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  legalComments: 'inline',
  loader: { '.css': 'text' },
  charset: 'utf8',
};

export const outfile = 'dist/metrics-lake-chart.js';

/** The bundle's text. */
export async function bundle() {
  const result = await esbuild.build({ ...options, write: false });
  return result.outputFiles[0].text;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(new URL(outfile, import.meta.url), await bundle());
  console.log(`wrote ${outfile}`);
}
