// Renders the families too large to render in one go: the duration histogram (agent × tool × status series, 18
// lines each: at 1,000 pairs 72,000 lines, about two thirds of a scrape). prom-client builds an object per line and
// renders a family synchronously; here the histogram is written from the state metrics.ts keeps anyway, a slice of
// series at a time, so the caller can yield to the event loop between slices (/healthz keeps answering during a scrape).
//
// The text is what prom-client 15.1's Registry#getMetricsAsString writes for a histogram, line for line (test/metrics
// compares them): `le` first, then the series labels in their declaration order; exemplars on `_bucket` lines in
// OpenMetrics only; values as getValueAsString. Series order may differ (exposition order within a family carries no
// meaning). Must not: know about tasks, or touch prom-client.

import type { HistogramSeriesState } from './prom-fast.js';

/** As prom-client's getValueAsString. */
export function valueString(value: number): string {
  if (Number.isNaN(value)) return 'Nan';
  if (!Number.isFinite(value)) return value < 0 ? '-Inf' : '+Inf';
  return `${value}`;
}

function escapeString(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelPairs(labels: Record<string, string>): string {
  const out: string[] = [];
  for (const [name, value] of Object.entries(labels)) out.push(`${name}="${escapeString(value).replace(/"/g, '\\"')}"`);
  return out.join(',');
}

/** `# HELP` and `# TYPE` lines of a family. */
export function familyHeader(name: string, help: string, type: string): string {
  const n = escapeString(name);
  return `# HELP ${n} ${escapeString(help)}\n# TYPE ${n} ${type}`;
}

/** The sample lines of `series` (only those with observations, as prom-client), appended to `out`. */
export function histogramLines(
  name: string,
  bounds: readonly number[],
  series: Iterable<HistogramSeriesState>,
  openMetrics: boolean,
  out: string[],
): void {
  const bucket = `${escapeString(name)}_bucket`;
  for (const s of series) {
    if (s.count === 0) continue;
    const labels = labelPairs(s.labels);
    const sep = labels ? ',' : '';
    let acc = 0;
    for (let i = 0; i <= bounds.length; i++) {
      const le = i < bounds.length ? `${bounds[i] as number}` : '+Inf';
      acc = i < bounds.length ? acc + (s.buckets[i] as number) : s.count;
      let line = `${bucket}{le="${le}"${sep}${labels}} ${valueString(acc)}`;
      const x = s.bucketExemplars[i];
      if (openMetrics && x) line += ` # {${labelPairs(x.labelSet)}} ${valueString(x.value)} ${x.timestamp}`;
      out.push(line);
    }
    const braces = labels ? `{${labels}}` : '';
    out.push(`${escapeString(name)}_sum${braces} ${valueString(s.sum)}`, `${escapeString(name)}_count${braces} ${valueString(s.count)}`);
  }
}

/** One counter series as prom-client 15.1 keeps it. */
export interface CounterSeries {
  labels: Record<string, string>;
  value: number;
  exemplar?: { labelSet: Record<string, string>; value: number; timestamp: number } | null;
}

/** The sample lines of counter series, appended to `out`: `sampleName` is the family name with `_total`. */
export function counterLines(sampleName: string, series: Iterable<CounterSeries>, openMetrics: boolean, out: string[]): void {
  const name = escapeString(sampleName);
  for (const s of series) {
    const labels = labelPairs(s.labels);
    let line = `${name}${labels ? `{${labels}}` : ''} ${valueString(s.value)}`;
    const x = s.exemplar;
    if (openMetrics && x) line += ` # {${labelPairs(x.labelSet)}} ${valueString(x.value)} ${x.timestamp}`;
    out.push(line);
  }
}
