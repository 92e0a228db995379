// The bundle's entry: registers <metrics-lake-chart> once, and exposes the class for pages
// that want to drive it from script.
import { MetricsLakeChart } from './chart.js';

if (!customElements.get('metrics-lake-chart')) customElements.define('metrics-lake-chart', MetricsLakeChart);
globalThis.MetricsLakeChart = MetricsLakeChart;
