// What ships is what runs: `npm pack` (prepack builds dist/), then the tarball installed into an empty folder with
// production dependencies only — as a user gets it from the registry — and the installed command run from there. The
// demo (demo/, development dependencies) must not be in the tarball, and the installed command must not need it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { name: string; version: string; dependencies: Record<string, string> };
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

describe('the packed package, installed with production dependencies only', () => {
  const work = mkdtempSync(join(tmpdir(), 'mtb-pack-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  // npm gets the whole environment (a proxy, NODE_EXTRA_CA_CERTS for a TLS-inspecting gateway, npm_config_*); the
  // installed command gets it without the variables that configure the bridge, so only what a case sets applies.
  const env: Record<string, string | undefined> = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(MASTRA_|BRIDGE_|OTEL_|DEMO_)/.test(k)),
  );

  it('packs without the demo, installs, and its command answers --version, --check-config and (no MASTRA_URL) a clear error', () => {
    const packed = JSON.parse(
      execFileSync(npm, ['pack', '--json', '--pack-destination', work], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 240_000 }),
    ) as { filename: string; files: { path: string }[] }[];
    const files = packed[0]!.files.map((f) => f.path);
    expect(files).toContain('dist/main.js');
    expect(files).toContain('assets/board.js');
    expect(files.filter((f) => /(^|\/)demo\//.test(f) || f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);

    const app = join(work, 'app');
    mkdirSync(app);
    execFileSync(npm, ['install', '--omit=dev', '--no-audit', '--no-fund', '--no-save', join(work, packed[0]!.filename)], {
      cwd: app,
      env: { ...process.env, npm_config_loglevel: 'error' },
      stdio: ['ignore', 'pipe', 'inherit'],
      // A sync call blocks the test's own timeout: bound it here (a registry that cannot be reached fails, not hangs).
      timeout: 240_000,
    });
    // Production dependencies only: none of the demo's packages came along (they are dev dependencies).
    for (const dev of ['@mastra/core', 'ai', 'vitest', 'tsx']) {
      expect(existsSync(join(app, 'node_modules', dev)), `${dev} is not installed`).toBe(false);
    }
    const bin = join(app, 'node_modules', '.bin', 'mastra-task-bridge');
    const run = (args: string[], extra: Record<string, string> = {}) =>
      spawnSync(bin, args, { cwd: app, encoding: 'utf8', env: { ...env, ...extra }, timeout: 60_000 });

    const version = run(['--version']);
    expect(version.stderr).toBe('');
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toBe(pkg.version);

    const check = run(['--check-config'], { MASTRA_URL: 'http://mastra.example:4111', MASTRA_TOKEN: 'secret-token' });
    expect(check.status, check.stderr).toBe(0);
    const shown = JSON.parse(check.stdout) as { source: { mastraUrl: string; token: string } };
    expect(shown.source.mastraUrl).toBe('http://mastra.example:4111');
    expect(shown.source.token).toBe('<set>');

    const bare = run([], { BRIDGE_HOST: '127.0.0.1', BRIDGE_PORT: '0' });
    expect(bare.status).toBe(1);
    expect(bare.stderr).toContain('this install has no embedded demo');
    expect(bare.stderr).not.toMatch(/^\s+at /m);
  }, 300_000);
});
