// The fenced room for prom-client internals. metrics.ts keeps the per-event counts of the finished counter and the
// duration histogram itself and hands them over at collect() time; the hand-over writes prom-client 15.1's private
// series maps directly (no per-call label hashing, validation, closures or exemplar objects). Everything that touches
// those internals lives here, and nowhere else.
//
// Owns: the pinned version, a probe that checks the internals are there and shaped as expected (once, on first use),
// the O(1) lookup of a histogram series by its label hash (prom-client's own `hashObject`, so the key is the one its
// zero()/observe() use), and the visible fallback: when the probe fails, `promFastPathActive()` is false, metrics.ts
// uses prom-client's public inc()/observe() instead, every fallback hand-over is counted, and the reason is logged
// once through the hook the caller installs. test/metrics.test.ts renders both paths against prom-client's own
// inc()/observe() byte for byte. Must not: define metrics, or know about tasks.

import { createRequire } from 'node:module';
import { Counter, Histogram, Registry } from 'prom-client';

/** The prom-client version whose internals this module was written and tested against (package.json pins it). */
export const PROM_CLIENT_PINNED = '15.1.3';

export interface PendingExemplar {
  labelSet: Record<string, string>;
  value: number;
  timestamp: number;
}

/** prom-client 15.1 histogram series entry (`hashMap` value). */
export interface HistogramEntry {
  labels: unknown;
  sum: number;
  count: number;
  bucketValues: Record<string, number>;
  bucketExemplars?: Record<string, PendingExemplar | null>;
}
interface CounterInternals {
  incWithoutExemplar(labels: Record<string, string>, value: number): { labelHash: string };
  hashMap: Record<string, { exemplar?: PendingExemplar }>;
}
interface HistogramInternals {
  hashMap: Record<string, HistogramEntry>;
  upperBounds: number[];
  sortedLabelNames: string[];
}
type HashObject = (labels: Record<string, string>, sortedLabelNames: string[]) => string;

interface Probe {
  active: boolean;
  reason?: string;
  hashObject?: HashObject;
}

let probe: Probe | undefined;
let fallbacks = 0;
let logFallback: ((reason: string) => void) | undefined;
let logged = false;

function runProbe(): Probe {
  try {
    const require = createRequire(import.meta.url);
    const version = (require('prom-client/package.json') as { version?: string }).version;
    if (version !== PROM_CLIENT_PINNED) return { active: false, reason: `prom-client ${version}, fast path written for ${PROM_CLIENT_PINNED}` };
    const util = require('prom-client/lib/util.js') as { hashObject?: unknown };
    if (typeof util.hashObject !== 'function') return { active: false, reason: 'prom-client/lib/util.js has no hashObject' };
    const hashObject = util.hashObject as HashObject;
    // A throwaway pair in a private registry: the internals exist and the hash is the key zero() writes.
    const RegistryWithType = Registry as unknown as new (contentType: string) => Registry;
    const registers = [new RegistryWithType(Registry.OPENMETRICS_CONTENT_TYPE)];
    const c = new Counter({ name: 'probe_total', help: 'probe', labelNames: ['a', 'b'], registers }) as unknown as CounterInternals;
    const h = new Histogram({ name: 'probe_seconds', help: 'probe', labelNames: ['b', 'a'], buckets: [1], enableExemplars: true, registers });
    const hi = h as unknown as HistogramInternals;
    if (typeof c.incWithoutExemplar !== 'function') return { active: false, reason: 'Counter#incWithoutExemplar is missing' };
    const labels = { a: 'x', b: 'y' };
    const { labelHash } = c.incWithoutExemplar(labels, 1);
    if (typeof labelHash !== 'string' || !c.hashMap?.[labelHash]) return { active: false, reason: 'Counter#hashMap is not keyed by labelHash' };
    if (!Array.isArray(hi.upperBounds) || !Array.isArray(hi.sortedLabelNames)) return { active: false, reason: 'Histogram upperBounds/sortedLabelNames missing' };
    h.zero(labels);
    const entry = hi.hashMap?.[hashObject(labels, hi.sortedLabelNames)];
    if (!entry || entry.labels !== labels || typeof entry.bucketValues !== 'object' || typeof entry.bucketExemplars !== 'object') {
      return { active: false, reason: 'Histogram#hashMap entry not found under hashObject(labels)' };
    }
    return { active: true, hashObject };
  } catch (error) {
    return { active: false, reason: `probe failed: ${(error as Error).message}` };
  }
}

function current(): Probe {
  probe ??= runProbe();
  return probe;
}

/** True when the prom-client internals are as pinned and the hand-over writes them directly. */
export function promFastPathActive(): boolean {
  return current().active;
}

/** Why the fast path is off (undefined while it is on), and how many hand-overs took the public-API fallback. */
export function promFastPathStatus(): { active: boolean; reason?: string; fallbacks: number } {
  const p = current();
  return p.reason === undefined ? { active: p.active, fallbacks } : { active: p.active, reason: p.reason, fallbacks };
}

/** Where the one fallback log line goes (a registry of fast paths installs it); without it, process.emitWarning. */
export function onPromFastPathFallback(log: (reason: string) => void): void {
  logFallback = log;
}

/** Called by metrics.ts each time it takes the public-API path because the fast path is off. */
export function countPromFallback(): void {
  fallbacks++;
  if (logged) return;
  logged = true;
  const reason = `prom-client fast path off (${current().reason ?? 'unknown'}); using its public API (slower per event)`;
  if (logFallback) logFallback(reason);
  else process.emitWarning(reason, { code: 'MASTRA_TASK_BRIDGE_PROM_FALLBACK' });
}

/** Test hook: forget the probe (and the one-time log) so a test can force a state. */
export function resetPromFastPath(forced?: Probe): void {
  probe = forced;
  fallbacks = 0;
  logged = false;
}

/** The histogram's upper bounds in prom-client's own bucket-search order (the fast hand-over writes by index). */
export function histogramUpperBounds(histogram: Histogram<string>, fallback: readonly number[]): number[] {
  const bounds = (histogram as unknown as HistogramInternals).upperBounds;
  return Array.isArray(bounds) ? [...bounds] : [...fallback];
}

/** Add `n` to a counter series and set its exemplar (what inc() with exemplar labels stores, without its checks). */
export function counterAdd(counter: Counter<string>, labels: Record<string, string>, n: number, exemplar: PendingExemplar | undefined): void {
  const c = counter as unknown as CounterInternals;
  const { labelHash } = c.incWithoutExemplar(labels, n);
  const held = c.hashMap[labelHash];
  if (held && exemplar) held.exemplar = exemplar;
}

/** One histogram series as metrics.ts keeps it: the whole series, written over prom-client's entry. */
export interface HistogramSeriesState {
  labels: Record<string, string>;
  count: number;
  sum: number;
  /** Per upper bound, not cumulative (prom-client's bucketValues). */
  buckets: number[];
  /** Per bound, the last one for +Inf. */
  bucketExemplars: (PendingExemplar | undefined)[];
  /** prom-client's entry for this series, and the hashMap it lives in (reset() replaces the map). */
  entry: HistogramEntry | undefined;
  entryMap: unknown;
}

/**
 * Overwrite a histogram series with `s`. The entry is found by its label hash in O(1) (prom-client's hashObject over
 * sortedLabelNames, the key zero() and observe() use) and remembered until the map is replaced. Before, the entry was
 * searched with Object.values(hashMap).find() per new series: quadratic in series, 4.9 s for 5,000 pairs.
 */
export function histogramWrite(histogram: Histogram<string>, s: HistogramSeriesState): void {
  const h = histogram as unknown as HistogramInternals;
  if (s.entry === undefined || s.entryMap !== h.hashMap) {
    const hashObject = current().hashObject;
    let entry = hashObject ? h.hashMap[hashObject(s.labels, h.sortedLabelNames)] : undefined;
    if (entry === undefined) {
      histogram.zero(s.labels);
      entry = hashObject ? h.hashMap[hashObject(s.labels, h.sortedLabelNames)] : Object.values(h.hashMap).find((e) => e.labels === s.labels);
    }
    s.entry = entry;
    s.entryMap = h.hashMap;
    if (entry === undefined) return;
  }
  const e = s.entry;
  if (e === undefined) return;
  e.sum = s.sum;
  e.count = s.count;
  const bounds = h.upperBounds;
  for (let i = 0; i < bounds.length; i++) {
    const bound = bounds[i] as number;
    e.bucketValues[bound] = s.buckets[i] as number;
    const x = s.bucketExemplars[i];
    if (x && e.bucketExemplars) e.bucketExemplars[bound] = x;
  }
  const inf = s.bucketExemplars[bounds.length];
  if (inf && e.bucketExemplars) e.bucketExemplars[-1] = inf;
}

/**
 * A prom-client histogram's series as `HistogramSeriesState` views (read only), for the sliced renderer in
 * src/exposition.ts; undefined when the fast path is off (the caller renders through prom-client then).
 */
export function histogramSeries(histogram: Histogram<string>): HistogramSeriesState[] | undefined {
  if (!current().active) return undefined;
  const h = histogram as unknown as HistogramInternals;
  const bounds = h.upperBounds;
  const out: HistogramSeriesState[] = [];
  for (const e of Object.values(h.hashMap)) {
    const ex = e.bucketExemplars;
    const bucketExemplars: (PendingExemplar | undefined)[] = bounds.map((b) => ex?.[b] ?? undefined);
    bucketExemplars.push(ex?.[-1] ?? undefined);
    out.push({
      labels: e.labels as Record<string, string>,
      count: e.count,
      sum: e.sum,
      buckets: bounds.map((b) => e.bucketValues[b] ?? 0),
      bucketExemplars,
      entry: undefined,
      entryMap: undefined,
    });
  }
  return out;
}

/** A prom-client counter's series (read only) for the sliced renderer; undefined when the fast path is off. */
export function counterSeries(counter: Counter<string>): { labels: Record<string, string>; value: number; exemplar?: PendingExemplar | null }[] | undefined {
  if (!current().active) return undefined;
  return Object.values((counter as unknown as { hashMap: Record<string, { labels: Record<string, string>; value: number; exemplar?: PendingExemplar | null }> }).hashMap);
}
