// The versions the README promises ("How it is tested") are the versions the tests run: .ci/run's Node and Mastra
// floor pins, test/peers/*/go.mod, package-lock.json, package.json engines and peer range, the Dockerfile's Node and
// the compose images. Offline, no binaries.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import lock from '../package-lock.json' with { type: 'json' };
import pkg from '../package.json' with { type: 'json' };
import { peerVersion } from './support/peers.js';

const readme = readFileSync('README.md', 'utf8');
const ciRun = readFileSync('.ci/run', 'utf8');
const section = readme.slice(readme.indexOf('### How it is tested'), readme.indexOf('\n## ', readme.indexOf('### How it is tested')));
/** The backticked versions in the README table row of `component`. */
function row(component: string): string[] {
  const line = section.split('\n').find((l) => l.startsWith(`| ${component} |`));
  if (!line) throw new Error(`README "How it is tested" has no row for ${component}`);
  return [...(line.split('|')[2] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
}
const ciVar = (name: string): string => {
  const m = new RegExp(`^${name}="([^"]+)"`, 'm').exec(ciRun);
  if (!m) throw new Error(`.ci/run sets no ${name}`);
  return m[1]!;
};
const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as { services: Record<string, { image?: string }> };

describe('the versions the README promises are the versions tested', () => {
  it('Node: .ci/run runs the README’s versions; engines admits them and nothing older than the oldest major', () => {
    const tested = ciVar('NODE_VERSIONS').split(' ');
    expect(row('Node.js')).toEqual(tested);
    const floor = pkg.engines.node.replace('>=', '');
    expect(section).toContain(`\`>=${floor}\``);
    const majors = tested.map((v) => Number(v.split('.')[0]));
    expect(Number(floor.split('.')[0])).toBe(Math.min(...majors));
    // The Docker images run one of the tested versions.
    const image = /^ARG NODE_IMAGE=node:(\S+?)-/m.exec(readFileSync('Dockerfile', 'utf8'))?.[1];
    expect(tested).toContain(image);
  });

  it('Mastra: the newest is the locked one, the floor is .ci/run’s and the peer range starts there', () => {
    const newest = (lock as { packages: Record<string, { version: string }> }).packages['node_modules/@mastra/core']!.version;
    const floor = ciVar('MASTRA_FLOOR');
    expect(row('`@mastra/core`')).toEqual([newest, floor]);
    const line = section.split('\n').find((l) => l.startsWith('| `@mastra/core` |'))!;
    expect(line).toContain(`\`${pkg.peerDependencies['@mastra/core']}\``);
    expect(line).toContain(`\`@mastra/libsql\` \`${ciVar('MASTRA_FLOOR_LIBSQL')}\``);
    const [major, minor] = floor.split('.');
    expect(pkg.peerDependencies['@mastra/core']).toBe(`>=${major}.${minor}.0 <2.0.0`);
  });

  it('Jaeger, Prometheus and Alertmanager: the Go modules the tests build, and the images docker-compose runs', () => {
    const [jaeger, jaegerModule] = [row('Jaeger')[0], /`(v\d+\.\d+\.\d+)` on/.exec(section)?.[1]];
    expect(jaegerModule).toBe(peerVersion('jaeger'));
    expect(compose.services.jaeger?.image).toBe(`jaegertracing/jaeger:${jaeger}`);
    const [prom3, prom2] = row('Prometheus, promtool');
    expect(`v0.${prom3!.split('.')[0]}${prom3!.split('.')[1]!.padStart(2, '0')}.${prom3!.split('.')[2]}`).toBe(peerVersion('prometheus'));
    expect(compose.services.prometheus?.image).toBe(`prom/prometheus:v${prom3}`);
    expect(ciRun).toContain('PROMETHEUS_BIN=/usr/bin/prometheus'); // the 2.x run
    expect(prom2).toMatch(/^2\./);
    const [am] = row('Alertmanager, amtool');
    expect(`v${am}`).toBe(peerVersion('alertmanager'));
    expect(compose.services.alertmanager?.image).toBe(`prom/alertmanager:v${am}`);
  });
});
