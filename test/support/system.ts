// Test support: the system binaries the system tier runs (Debian packages), and the rule for when one is missing —
// a developer gets the tests skipped with a line saying what to install; CI (where .ci/run installs them) fails
// instead, so a run can never pass by skipping.
import { existsSync } from 'node:fs';
import { describe, it } from 'vitest';
import { ALERTMANAGER_BIN, AMTOOL_BIN } from './alertmanager.js';
import { JAEGER_BIN } from './jaeger.js';
import { PROMETHEUS_BIN, PROMTOOL_BIN } from './prometheus.js';

export interface SystemBinary {
  path: string;
  /** The Debian package that provides it. */
  apt: string;
  /** How to get it when it is not a Debian package (the Go-built peers). */
  install?: string;
}

// Prometheus and Alertmanager: the binaries support/peers.ts selects ($…_BIN, the Go-built peers, else Debian's).
export const PROMETHEUS: SystemBinary = { path: PROMETHEUS_BIN, apt: 'prometheus' };
export const PROMTOOL: SystemBinary = { path: PROMTOOL_BIN, apt: 'prometheus' };
export const ALERTMANAGER: SystemBinary = { path: ALERTMANAGER_BIN, apt: 'prometheus-alertmanager' };
export const AMTOOL: SystemBinary = { path: AMTOOL_BIN, apt: 'prometheus-alertmanager' };
// Jaeger v2 has no Debian package: test/peers/build.sh builds it from its Go module.
export const JAEGER: SystemBinary = { path: JAEGER_BIN, apt: '', install: 'test/peers/build.sh jaeger' };
export const CHROMIUM: SystemBinary = { path: '/usr/bin/chromium', apt: 'chromium' };
export const DOCKER_COMPOSE: SystemBinary = { path: '/usr/bin/docker-compose', apt: 'docker-compose' };

function missing(bins: SystemBinary[]): string | undefined {
  const absent = bins.filter((b) => !existsSync(b.path));
  if (absent.length === 0) return undefined;
  return absent.map((b) => `${b.path} (${b.install ?? `apt-get install -y ${b.apt}`})`).join(', ');
}

/** Whether every binary is there (for hooks outside a describe). */
export function hasAll(bins: SystemBinary[]): boolean {
  return missing(bins) === undefined;
}

/** `describe` when every binary is there; else a visible skip (a developer) or a failing test (CI). */
export function describeWith(bins: SystemBinary[], name: string, fn: () => void): void {
  const absent = missing(bins);
  if (absent === undefined) {
    describe(name, fn);
  } else if (process.env.CI) {
    describe(name, () => {
      it(`needs ${absent}`, () => {
        throw new Error(`${absent} missing under CI: .ci/run installs the system packages`);
      });
    });
  } else {
    console.warn(`SKIPPED (system binary missing): "${name}" needs ${absent}`);
    describe.skip(`${name} [skipped: needs ${absent}]`, fn);
  }
}

/** `it` with the same rule, for one test that needs a binary among tests that do not. */
export function itWith(bins: SystemBinary[], name: string, fn: () => unknown, timeout?: number): void {
  const absent = missing(bins);
  if (absent === undefined) it(name, fn, timeout);
  else if (process.env.CI) {
    it(name, () => {
      throw new Error(`${absent} missing under CI: .ci/run installs the system packages`);
    });
  } else {
    console.warn(`SKIPPED (system binary missing): "${name}" needs ${absent}`);
    it.skip(`${name} [skipped: needs ${absent}]`, fn);
  }
}
