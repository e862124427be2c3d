// Holds the unit tier to its promise (seconds, no system binaries, no Mastra, no child processes) and every test file
// to exactly one tier.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { INTEGRATION_TESTS, SYSTEM_TESTS } from './tiers.js';

const all = readdirSync('test').filter((f) => f.endsWith('.test.ts')).map((f) => `test/${f}`);
const unit = all.filter((f) => !INTEGRATION_TESTS.includes(f) && !SYSTEM_TESTS.includes(f));

/** Imports that mean a file is not a unit test: Mastra and the demo, system binaries, browsers, processes. */
const HEAVY = [/'@mastra\//, /'\.\.\/demo\//, /'node:child_process'/, /'playwright-core'/, /support\/(prometheus|alertmanager|jaeger|child|bridge-cli|demo-process|system)\.js'/, /'\.\.\/bench\//];

describe('test tiers', () => {
  it('every listed file exists and is in one tier only', () => {
    for (const f of [...INTEGRATION_TESTS, ...SYSTEM_TESTS]) expect(all, f).toContain(f);
    expect(INTEGRATION_TESTS.filter((f) => SYSTEM_TESTS.includes(f))).toEqual([]);
    expect(unit.length).toBeGreaterThan(10);
  });

  it('unit files import no Mastra, demo, system binary, browser or child process', () => {
    const offenders = unit.flatMap((f) => {
      const imports = readFileSync(f, 'utf8').split('\n').filter((l) => /^\s*(import|\} from)|await import\(/.test(l));
      return HEAVY.filter((re) => imports.some((l) => re.test(l))).map((re) => `${f}: ${re}`);
    });
    expect(offenders).toEqual([]);
  });
});
