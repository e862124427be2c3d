// Every fact a user relies on is written once and checked against the code: the README's metric table against
// METRIC_NAMES, its environment table against ENV_VARS, and config/bridge.yaml against the schema's keys.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigSchema, ENV_VARS } from '../src/config.js';
import { METRIC_NAMES } from '../src/metrics.js';

const readme = readFileSync('README.md', 'utf8');

/** First-column backticked names of the markdown table rows under the heading `## {title}`. */
function tableNames(title: string): string[] {
  const section = readme.split(/^## /m).find((s) => s.startsWith(`${title}\n`));
  if (!section) throw new Error(`README has no "## ${title}" section`);
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
}

function keys(obj: unknown, prefix = ''): string[] {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return [prefix];
  return Object.entries(obj).flatMap(([k, v]) => keys(v, prefix ? `${prefix}.${k}` : k));
}

describe('documentation matches the code', () => {
  it('README metric table lists exactly the metrics defined in src/metrics.ts', () => {
    expect(tableNames('Metrics').sort()).toEqual([...METRIC_NAMES].sort());
  });

  it('README environment table lists exactly ENV_VARS, with the config path each overrides', () => {
    const rows = [...readme.matchAll(/^\| `([A-Z_]+)` \| `([a-zA-Z.]+)` \|/gm)].map((m) => `${m[1]} → ${m[2]}`);
    expect(rows.sort()).toEqual(ENV_VARS.map((v) => `${v.name} → ${v.path}`).sort());
  });

  it('config/bridge.yaml shows every configuration key, at its default', () => {
    const file = parse(readFileSync('config/bridge.yaml', 'utf8'));
    const defaults = ConfigSchema.parse({});
    expect(keys(file).sort()).toEqual(keys(defaults).sort());
    expect(file).toEqual(defaults);
  });

  it('config/bridge.yaml names the environment variable of every key it can be set by', () => {
    const text = readFileSync('config/bridge.yaml', 'utf8');
    for (const v of ENV_VARS) expect(text, v.name).toContain(v.name);
  });
});
