// Test support: where the Go-built test peers are (test/peers/build.sh builds them into a cache outside the repo).
// A peer's binary is the *_BIN variable when set (.ci/run sets them all), else the build script's cache path for the
// version pinned in test/peers/<module>/go.mod — so `test/peers/build.sh && npx vitest run test/x.test.ts` works with
// no variables. This file only computes paths; it never builds.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export type PeerName = 'jaeger' | 'prometheus' | 'promtool' | 'alertmanager' | 'amtool';

const MODULES: Record<PeerName, { dir: string; module: string; env: string }> = {
  jaeger: { dir: 'jaeger', module: 'github.com/jaegertracing/jaeger', env: 'JAEGER_BIN' },
  prometheus: { dir: 'prometheus', module: 'github.com/prometheus/prometheus', env: 'PROMETHEUS_BIN' },
  promtool: { dir: 'prometheus', module: 'github.com/prometheus/prometheus', env: 'PROMTOOL_BIN' },
  alertmanager: { dir: 'alertmanager', module: 'github.com/prometheus/alertmanager', env: 'ALERTMANAGER_BIN' },
  amtool: { dir: 'alertmanager', module: 'github.com/prometheus/alertmanager', env: 'AMTOOL_BIN' },
};

const PEERS_DIR = resolve(import.meta.dirname, '../peers');

/** The version test/peers/<dir>/go.mod requires of the peer's module (e.g. 'v1.75.0'). */
export function peerVersion(name: PeerName): string {
  const { dir, module } = MODULES[name];
  const gomod = readFileSync(join(PEERS_DIR, dir, 'go.mod'), 'utf8');
  const m = new RegExp(`^\\s*(?:require\\s+)?${module.replace(/[.]/g, '\\.')}\\s+(v\\S+)`, 'm').exec(gomod);
  if (!m) throw new Error(`no version of ${module} in test/peers/${dir}/go.mod`);
  return m[1]!;
}

/** Where test/peers/build.sh puts the peer (PEERS_CACHE, default ~/.cache/mastra-task-bridge/peers). */
export function peerCachePath(name: PeerName): string {
  const cache = process.env.PEERS_CACHE ?? join(homedir(), '.cache', 'mastra-task-bridge', 'peers');
  return join(cache, `${name}-${peerVersion(name)}`, name);
}

/** The binary to run: $<NAME>_BIN if set, else the build cache's, else `fallback` (a system binary) when given. */
export function peerBinary(name: PeerName, fallback?: string): string {
  const fromEnv = process.env[MODULES[name].env];
  if (fromEnv) return fromEnv;
  const cached = peerCachePath(name);
  if (existsSync(cached) || fallback === undefined) return cached;
  return fallback;
}

/** The error to throw when a peer binary is missing: says how to get it. */
export function missingPeer(name: PeerName, path: string): Error {
  return new Error(`${path} not found: build the test peers with test/peers/build.sh (or set ${MODULES[name].env})`);
}
