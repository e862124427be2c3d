// The page at `/`: the live task board (running and suspended tasks with ages, recently finished tasks with status,
// duration and trace link, failure ratio per tool) plus what the landing page always said — mode, source, readiness,
// links to /metrics, /healthz, /readyz. Plain HTML and one static script (assets/board.js), no build step, no
// external assets. The page holds no task data: the script reads it from /api/events.
//
// Token: when the /api routes require a bearer token, open `/#token=<token>`: the script moves it from the fragment
// (never sent to the server, never in access logs) to sessionStorage and sends it as `Authorization: Bearer`; it also
// asks for one after a 401.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { BridgeStatus } from '../status.js';

export interface BoardOptions {
  /** `{traceId}` is replaced by a finished task's trace id; empty: no links. */
  traceUrlTemplate: string;
  heartbeatSeconds: number;
  /** Whether /api/events is served (an app built without the event hub shows the landing part only). */
  eventsEnabled: boolean;
}

/** Minutes of finished tasks the failure-ratio table covers. */
export const FAILURE_WINDOW_MINUTES = 5;

const escape = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** JSON safe inside a <script> element: no `</script>`, no HTML comment openers, no line separators. */
const scriptJson = (v: unknown) =>
  JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

let script: string | undefined;
/** The board's client script, read once (it sits next to src/ and dist/ alike: `<package>/assets/board.js`). */
export function boardScript(): string {
  script ??= readFileSync(new URL('../../assets/board.js', import.meta.url), 'utf8');
  return script;
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#fafbfc}
header,main,footer{max-width:72rem;margin:0 auto;padding:0 1rem}header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.25rem 1rem;padding-top:1rem}
h1{font-size:1.3rem;margin:0}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}small{color:#57606a;font-weight:normal}
code{background:#eef0f3;padding:0 .25rem;border-radius:3px}.demo{background:#fff7e0;border:1px solid #f0c36d;padding:.5rem .75rem;border-radius:4px}
.ok{color:#137333}.bad{color:#b3261e}table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.2rem .6rem;border-bottom:1px solid #e5e7eb;white-space:nowrap}th{font-weight:600;color:#57606a;font-size:.85rem}
td.num{text-align:right;font-variant-numeric:tabular-nums}.empty{color:#57606a;font-style:italic}
.st{display:inline-block;padding:0 .4rem;border-radius:8px;font-size:.8rem}.st-running{background:#ddf4ff}.st-suspended{background:#fff1c2}
.st-completed{background:#dafbe1}.st-failed,.st-timed_out{background:#ffdcd7}.st-cancelled{background:#eaeef2}
#conn{padding:.1rem .5rem;border-radius:8px;font-size:.85rem;background:#eaeef2}#conn[data-state=live]{background:#dafbe1}
#conn[data-state=reconnecting],#conn[data-state=unauthorized]{background:#ffdcd7}.bar{display:inline-block;height:.6rem;background:#cf222e;vertical-align:middle}
.meta td{border:0;padding:.05rem .75rem .05rem 0}footer{margin-top:2rem;padding-bottom:2rem;color:#57606a}`;

/**
 * The page's Content-Security-Policy: nothing from elsewhere, no inline script (the config block is JSON, not run),
 * the one inline style by its hash, the event stream from this origin only, and no framing (clickjacking).
 */
export const BOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  `style-src 'sha256-${createHash('sha256').update(STYLE, 'utf8').digest('base64')}'`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function boardPage(s: BridgeStatus, opts: BoardOptions): string {
  const ready = s.connected && s.synced;
  const demo =
    s.mode === 'demo'
      ? `<p class="demo"><strong>Demo mode:</strong> no <code>MASTRA_URL</code> is set, so the bridge runs an embedded demo Mastra app in process (agents with a mock model, no network) and observes its background tasks. Set <code>MASTRA_URL</code> to watch a real Mastra server.</p>`
      : '';
  const config = {
    eventsUrl: '/api/events',
    traceUrlTemplate: opts.traceUrlTemplate,
    heartbeatSeconds: opts.heartbeatSeconds,
    failureWindowMinutes: FAILURE_WINDOW_MINUTES,
  };
  const board = opts.eventsEnabled
    ? `<h2>Running and suspended <small id="open-count"></small></h2>
<table id="open-tasks"><thead><tr><th>Tool</th><th>Agent</th><th>Status</th><th>Age</th><th>Started</th><th>Outputs</th><th>Thread</th><th>Task</th></tr></thead><tbody></tbody></table>
<h2>Recently finished</h2>
<table id="finished-tasks"><thead><tr><th>Finished</th><th>Tool</th><th>Agent</th><th>Status</th><th>Duration</th><th>Error</th><th>Trace</th><th>Task</th></tr></thead><tbody></tbody></table>
<h2>Failure ratio per tool <small>finished in the last ${FAILURE_WINDOW_MINUTES} minutes; failed and timed out count as failures</small></h2>
<table id="tool-failures"><thead><tr><th>Tool</th><th>Finished</th><th>Failed</th><th>Ratio</th><th></th></tr></thead><tbody></tbody></table>
<form id="token-form" hidden><p>The event stream needs a token: <input id="token-input" type="password" autocomplete="off" aria-label="API token"> <button>Connect</button></p></form>
<script id="board-config" type="application/json">${scriptJson(config)}</script>
<script src="/board.js" defer></script>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>mastra-task-bridge — task board</title><style>${STYLE}</style></head>
<body>
<header><h1>mastra-task-bridge <small>${escape(s.version)}</small></h1>${opts.eventsEnabled ? '<span id="conn" data-state="connecting">connecting…</span>' : ''}</header>
<main>
<p>Makes Mastra background tasks observable: one OpenTelemetry span per task, Prometheus metrics with exemplars, and this live board.</p>
${demo}
<table class="meta">
<tr><td>Mode</td><td>${escape(s.mode)}</td></tr>
<tr><td>Source</td><td>${escape(s.source)}</td></tr>
${(s.sources ?? []).map((x) => `<tr><td>Server ${escape(x.source)}</td><td class="${x.connected && x.synced ? 'ok' : 'bad'}">${x.connected && x.synced ? 'connected' : escape(x.reason ?? 'not connected')}</td></tr>`).join('\n')}
<tr><td>Status</td><td class="${ready ? 'ok' : 'bad'}">${ready ? 'ready' : escape(s.reason ?? 'not ready')}</td></tr>
<tr><td>Spans</td><td>${s.tracesExported ? 'exported over OTLP' : 'not exported (no OTLP endpoint set, or OTEL_TRACES_EXPORTER=none)'}</td></tr>
</table>
${board}
</main>
<footer><h2>Endpoints</h2>
<ul>
<li><a href="/metrics">/metrics</a> — Prometheus metrics (OpenMetrics with exemplars when asked)</li>
<li><a href="/healthz">/healthz</a> — liveness</li>
<li><a href="/readyz">/readyz</a> — readiness (503 until connected and synced)</li>
<li><a href="/api/tasks">/api/tasks</a>, <code>/api/tasks/:id</code> — stored tasks with their trace ids (payloads redacted)</li>
${opts.eventsEnabled ? '<li><a href="/api/events">/api/events</a> — task events (Server-Sent Events; resumable with Last-Event-ID)</li>' : ''}
</ul></footer>
</body></html>
`;
}
