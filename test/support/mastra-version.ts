// Test support: the @mastra/core these tests run against (package-lock's newest, or .ci/run's floor set), and what it
// changes. Before 1.57 Mastra's tool_call span carries no tool call id, so the bridge cannot place a task span under
// it and falls back to `run` placement (README "How it is tested").
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const MASTRA_CORE_VERSION: string = (
  JSON.parse(readFileSync(resolve(import.meta.dirname, '../../node_modules/@mastra/core/package.json'), 'utf8')) as { version: string }
).version;

/** a >= b for plain x.y.z versions. */
export function versionAtLeast(a: string, b: string): boolean {
  const pa = a.split(/[.-]/).map(Number);
  const pb = b.split(/[.-]/).map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) > (pb[i] ?? 0);
  return true;
}

/** Whether task spans nest under Mastra's tool_call span (auto placement finds it by tool call id). */
export const TOOL_CALL_SPANS_NEST = versionAtLeast(MASTRA_CORE_VERSION, '1.57.0');
