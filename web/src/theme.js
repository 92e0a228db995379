// Light and dark themes: the colours the shadow DOM's CSS and uPlot's canvas both use.

export const THEMES = {
  light: { fg: '#1f2328', muted: '#59636e', grid: '#d1d9e0', bg: '#ffffff', error: '#cf222e',
    series: ['#0969da', '#1a7f37', '#bf3989', '#9a6700', '#8250df', '#cf222e', '#116329', '#953800'] },
  dark: { fg: '#e6edf3', muted: '#9198a1', grid: '#3d444d', bg: '#0d1117', error: '#f85149',
    series: ['#4493f8', '#3fb950', '#db61a2', '#d29922', '#ab7df8', '#f85149', '#56d364', '#e3b341'] },
};

/** The theme named by the attribute, or the page's colour scheme. */
export function pickTheme(name) {
  if (name === 'light' || name === 'dark') return name;
  const dark = typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches;
  return dark ? 'dark' : 'light';
}
