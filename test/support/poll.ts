// Test support: deadline-based polling (`waitFor`) and free loopback ports (`freePort`).
// Tests poll with deadlines instead of sleeping for fixed amounts of time.
import { createServer } from 'node:net';

export interface WaitForOptions {
  /** Give up after this many milliseconds (default 10 000). */
  timeoutMs?: number;
  /** Delay between attempts in milliseconds (default 100). */
  intervalMs?: number;
  /** Describes what is awaited; included in the timeout error. */
  message?: string;
}

type Falsy = undefined | false | null | 0 | '';

function describe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
    if (text === undefined) return String(value);
    return text.length > 500 ? `${text.slice(0, 500)}…` : text;
  } catch {
    return String(value);
  }
}

/**
 * Calls `fn` until it returns (or resolves to) a truthy value and returns that value.
 * Errors thrown by `fn` count as "not yet" and are reported if the deadline passes.
 */
export async function waitFor<T>(
  fn: () => T | Falsy | Promise<T | Falsy>,
  opts: WaitForOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let attempts = 0;
  let lastError: unknown;
  let lastValue: unknown;
  let haveValue = false;
  for (;;) {
    attempts++;
    try {
      const value = await fn();
      if (value) return value as T;
      lastValue = value;
      haveValue = true;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, remaining)));
  }
  const what = opts.message ?? 'condition';
  const last =
    lastError !== undefined
      ? `last error: ${describe(lastError)}`
      : haveValue
        ? `last value: ${describe(lastValue)}`
        : 'no attempt completed';
  const error = new Error(`waitFor timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${what}; ${last}`);
  if (lastError !== undefined) (error as Error & { cause?: unknown }).cause = lastError;
  throw error;
}

/** Binds 127.0.0.1:0, reads the assigned port and closes the socket again. */
export async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`unexpected server address: ${String(address)}`));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
