// Number and time labels for axes and tooltips: compact, with the unit.

const SUFFIXES = [
  [1e12, 'T'],
  [1e9, 'B'],
  [1e6, 'M'],
  [1e3, 'k'],
];

/** 1234 → "1.2k", 0.25 → "0.25", with an optional unit ("ms", "%"). */
export function formatValue(v, unit = '') {
  if (v == null || Number.isNaN(v)) return '–';
  const abs = Math.abs(v);
  let text;
  const big = SUFFIXES.find(([n]) => abs >= n);
  if (big) text = trim(v / big[0]) + big[1];
  else if (abs >= 100 || Number.isInteger(v)) text = String(Math.round(v));
  else text = trim(v);
  return unit ? `${text} ${unit}` : text;
}

function trim(v) {
  return Number(v.toPrecision(3)).toString();
}

/** A bin start (epoch ms) as a label fitting the bin: dates for days, times otherwise. */
export function formatTime(ms, bin) {
  const iso = new Date(ms).toISOString();
  return bin && bin.endsWith('d') ? iso.slice(0, 10) : `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
}
