// Test support: the heap after a full collection, for the tests that bound memory (loose bounds, never timings).
// vitest runs without --expose-gc; the flag set at run time makes `gc` available to a new context.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes of heap in use after two collections (the second one frees what the first one's finalizers released). */
export function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
