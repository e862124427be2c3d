// The task board at `/` in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core), fed by a
// bridge watching a real Mastra running the demo workload: running tasks appear with ages that tick, move to the
// finished table with their true status, and link to the trace their span was exported in; the failure ratio per
// tool fills in; upstream strings are shown as text, never as HTML. Also with a bearer token required (`#token=` and
// the token form). A screenshot is kept in test-results/board.png (a CI artifact).
import { mkdirSync } from 'node:fs';
import type { Mastra } from '@mastra/core';
import pino from 'pino';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import { createDemoMastra, shutdownDemoMastra } from '../demo/app.js';
import { type Workload, startWorkload } from '../demo/workload.js';
import { type OtlpReceiver, startOtlpReceiver } from './support/otlp-receiver.js';
import { waitFor } from './support/poll.js';
import { type DemoStack, startDemoStack } from './support/stack.js';
import { CHROMIUM, describeWith } from './support/system.js';


const silent = pino({ level: 'silent' });
const TEMPLATE = 'http://jaeger.example:16686/trace/{traceId}';
const TOKEN = 'board-test-token';

// A developer without Chromium gets a visible skip and a hint; CI (which installs it in .ci/run) fails instead.
describeWith([CHROMIUM], 'the task board in headless Chromium', () => {
  let receiver: OtlpReceiver;
  let mastra: Mastra;
  let bridge: BridgeHandle;
  let secured: BridgeHandle;
  let workload: Workload;
  let browser: Browser;
  let base: string;
  let securedBase: string;
  let stack: DemoStack | undefined;

  beforeAll(async () => {
    // research_topic streams 3 chunks 2.5 s apart: running rows stay long enough to watch their age and outputs.
    // Room for every task to run at once (about 14 research tasks overlap at this rate): none waits as pending, none
    // is cancelled by the workload's own deadline, so every row's status is the scenario's.
    const config = { metrics: { defaultMetrics: false }, board: { traceUrlTemplate: TEMPLATE }, events: { heartbeatSeconds: 2 } };
    stack = await startDemoStack({
      mastra: { timings: { completeStepMs: 2500 }, backgroundTasks: { globalConcurrency: 100, perAgentConcurrency: 100 } },
      config,
      mode: 'demo',
    });
    ({ mastra, bridge, base } = stack);
    receiver = stack.receiver!;
    secured = startBridge({ mastra, logger: silent, mode: 'demo', config: { ...config, otel: { tracesExporter: 'none' }, api: { tokens: [TOKEN] } } });
    securedBase = await secured.app.listen({ host: '127.0.0.1', port: 0 });
    await secured.whenReady();
    workload = startWorkload(mastra, { ratePerSecond: 3, order: 'interleaved' }); // every status within a few seconds
    browser = await chromium.launch({
      executablePath: CHROMIUM.path,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await workload?.stop();
    await secured?.close();
    await stack?.close();
  });

  /** Text of an element now, or an error (waitFor retries) when it is not on the page: never Playwright's long wait. */
  const text = (page: Page, selector: string) => page.$eval(selector, (e) => e.textContent ?? '');
  const rowIds = (page: Page, table: string, status?: string) =>
    page.$$eval(`#${table} tbody tr[data-task-id]${status ? `[data-status="${status}"]` : ''}`, (rows) => rows.map((r) => (r as HTMLElement).dataset.taskId!));

  it('shows running tasks with live ages, then the same tasks finished with status, duration and a trace link', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}/`);
    expect(await page.textContent('body')).toContain('Demo mode');
    for (const link of ['/metrics', '/healthz', '/readyz']) expect(await page.$(`a[href="${link}"]`), link).not.toBeNull();
    await waitFor(async () => (await page.getAttribute('#conn', 'data-state')) === 'live', { message: 'board connected' });

    // A research_topic task that just started (no output yet): its age ticks and its output count grows as we watch.
    const taskId = await waitFor(async () => {
      const ids = await page.$$eval('#open-tasks tbody tr[data-status="running"]', (rows) =>
        rows
          .filter((r) => r.children[0]?.textContent === 'research_topic' && r.querySelector('.outputs')?.textContent === '0')
          .map((r) => (r as HTMLElement).dataset.taskId!),
      );
      return ids.at(-1);
    }, { timeoutMs: 20_000, message: 'a research_topic row that just started' });
    const row = `#open-tasks tbody tr[data-task-id="${taskId}"]`;
    const firstAge = await text(page, `${row} .age`);
    await waitFor(async () => (await text(page, `${row} .age`)) !== firstAge, { message: 'the age ticks' });
    await waitFor(async () => Number(await text(page, `${row} .outputs`)) > 0, { message: 'outputs grow live', timeoutMs: 10_000 });
    expect(await text(page, `${row} td:nth-child(7)`)).toMatch(/^workload-/);

    // The same task moves to the finished table.
    const finishedRow = `#finished-tasks tbody tr[data-task-id="${taskId}"]`;
    await waitFor(async () => (await page.$(finishedRow)) !== null && (await page.$(row)) === null, { timeoutMs: 20_000, message: 'the task finished on the board' });
    // Read the row at once: only the last 30 finished tasks are shown, and the workload keeps finishing more.
    const finished = await page.$eval(finishedRow, (r) => ({
      status: (r as HTMLElement).dataset.status,
      duration: r.querySelector('.duration')?.textContent,
      href: r.querySelector('a.trace-link')?.getAttribute('href') ?? '',
    }));
    expect(finished.status).toBe('completed');
    expect(finished.duration).toMatch(/^\d+(\.\d)? s$/);
    // The trace link follows the template with the trace id of the span the bridge really exported.
    const m = /^http:\/\/jaeger\.example:16686\/trace\/([0-9a-f]{32})$/.exec(finished.href);
    expect(m, finished.href).not.toBeNull();
    await bridge.tracing.forceFlush();
    const span = await waitFor(() => receiver.spans().find((s) => s.attributes['mastra.background_task.id'] === taskId), { message: 'the task span exported' });
    expect(m![1]).toBe(span.traceId);

    // Every final status shows up, failures with their error class; the failure ratio per tool fills in.
    const rows = await waitFor(
      async () => {
        const shown = await page.$$eval('#finished-tasks tbody tr[data-task-id]', (trs) =>
          trs.map((r) => ({ status: (r as HTMLElement).dataset.status!, error: r.children[5]?.textContent ?? '' })),
        );
        return ['completed', 'failed', 'timed_out', 'cancelled'].every((st) => shown.some((r) => r.status === st)) && shown;
      },
      { timeoutMs: 30_000, message: 'finished rows of every status' },
    );
    for (const r of rows) expect(r.error, r.status).toBe(r.status === 'timed_out' ? 'timed_out' : r.status === 'failed' ? 'Error' : '');
    expect(await text(page, '#tool-failures tr[data-tool="charge_card"] .ratio')).toBe('100 %');
    expect(await text(page, '#tool-failures tr[data-tool="research_topic"] .ratio')).toBe('0 %');

    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/board.png', fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 150_000);

  it('shows upstream strings as text, never as HTML', async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    await waitFor(async () => (await page.getAttribute('#conn', 'data-state')) === 'live', { message: 'board connected' });
    const evil = '<img src=x onerror="window.__xss=1">';
    bridge.events.publish({
      type: 'started',
      at: Date.now(),
      task: { taskId: 'xss-task', toolName: evil, toolCallId: 'c', agentId: '<b>agent</b>', runId: 'r', status: 'running', outputCount: 0, startedAt: Date.now() },
    });
    const row = '#open-tasks tbody tr[data-task-id="xss-task"]';
    await waitFor(() => page.$(row), { message: 'the crafted row' });
    expect(await page.textContent(`${row} td:nth-child(1)`)).toBe(evil);
    expect(await page.$(`${row} img, ${row} b`)).toBeNull();
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    bridge.events.publish({
      type: 'finished',
      at: Date.now(),
      task: { taskId: 'xss-task', toolName: evil, toolCallId: 'c', agentId: 'a', runId: 'r', status: 'failed', outputCount: 0, traceId: 'javascript:alert(1)' },
    });
    const done = '#finished-tasks tbody tr[data-task-id="xss-task"]';
    await waitFor(() => page.$(done), { message: 'the crafted finished row' });
    expect(await page.$(`${done} a`)).toBeNull();
    await page.close();
  });

  it('works when a token is required: asks for it after a 401, or takes it from #token= and hides it', async () => {
    expect((await fetch(`${securedBase}/api/events`)).status).toBe(401);
    const page = await browser.newPage();
    await page.goto(`${securedBase}/`);
    await waitFor(async () => (await page.getAttribute('#conn', 'data-state')) === 'unauthorized', { message: 'board asks for a token' });
    expect(await page.isVisible('#token-form')).toBe(true);
    await page.fill('#token-input', TOKEN);
    await page.click('#token-form button');
    await waitFor(async () => (await page.getAttribute('#conn', 'data-state')) === 'live', { message: 'connected with the pasted token' });
    await waitFor(async () => (await rowIds(page, 'finished-tasks')).length > 0, { timeoutMs: 20_000, message: 'finished rows with a token' });
    await page.close();

    const fresh = await browser.newPage();
    await fresh.goto(`${securedBase}/#token=${TOKEN}`);
    await waitFor(async () => (await fresh.getAttribute('#conn', 'data-state')) === 'live', { message: 'connected with #token=' });
    expect(new URL(fresh.url()).hash).toBe('');
    await waitFor(async () => (await rowIds(fresh, 'open-tasks')).length + (await rowIds(fresh, 'finished-tasks')).length > 0, {
      timeoutMs: 20_000,
      message: 'task rows with a token',
    });
    await fresh.close();
  });

  it('runs under its Content-Security-Policy with no violation, and a malformed #token= asks for a token instead of hanging', async () => {
    const page = await browser.newPage();
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${securedBase}/#token=%E0%A4%A`);
    await waitFor(async () => (await page.getAttribute('#conn', 'data-state')) === 'unauthorized', { message: 'board asks for a token' });
    expect(await page.isVisible('#token-form')).toBe(true);
    await page.fill('#token-input', TOKEN);
    await page.click('#token-form button');
    await waitFor(async () => (await page.getAttribute('#conn', 'data-state')) === 'live', { message: 'connected with the pasted token' });
    expect(errors).toEqual([]);
    expect(violations).toEqual([]);
    await page.close();
  });
});
