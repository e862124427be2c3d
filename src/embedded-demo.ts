// Finds the optional embedded demo (demo/embedded.ts, a sibling of src/) for `npm start` with no MASTRA_URL. The demo
// imports Mastra, a mock model and LibSQL — development dependencies — so it is not in the published package and
// the CLI never imports it statically: it is loaded by path, and only when no MASTRA_URL is set. What can go wrong
// (no demo/ in this install, or its packages missing) comes back as one sentence for the operator.

import type { MastraLike } from './sources/in-process.js';

export interface EmbeddedDemo {
  mastra: MastraLike;
  startWorkload(opts: { ratePerSecond: number; onError: (err: unknown) => void }): { stop(): Promise<void> };
  shutdown(): Promise<void>;
}

export interface EmbeddedDemoModule {
  createEmbeddedDemo(): EmbeddedDemo;
}

/** From src/ (tsx) or dist/ (compiled), the demo folder is `../demo/` at the package root. */
export const EMBEDDED_DEMO_ENTRY = new URL('../demo/embedded.js', import.meta.url);

export async function loadEmbeddedDemo(entry: URL = EMBEDDED_DEMO_ENTRY): Promise<EmbeddedDemoModule | { error: string }> {
  try {
    return (await import(entry.href)) as EmbeddedDemoModule;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const missingEntry = err.code === 'ERR_MODULE_NOT_FOUND' && err.message.includes(entry.pathname);
    return {
      error: missingEntry
        ? 'no MASTRA_URL set, and this install has no embedded demo (demo/ lives in the source repository, where `npm start` runs it).\n' +
          'Set MASTRA_URL (and MASTRA_TOKEN if the server needs one) to watch a Mastra server.\n'
        : `no MASTRA_URL set, and the embedded demo cannot load (${err.message.split('\n')[0]}).\n` +
          'Set MASTRA_URL (and MASTRA_TOKEN if the server needs one) to watch a Mastra server; the demo mode needs\n' +
          '@mastra/core, @mastra/observability and ai installed (a development install of this package has them).\n',
    };
  }
}
