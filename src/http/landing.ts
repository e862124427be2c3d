// The landing page at `/`: what this is, which mode it runs in, and links to every endpoint (Prometheus
// "Writing exporters": `/` should not be a 404). Plain HTML, no build step, no external assets.

import type { BridgeStatus } from './app.js';

const escape = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function landingPage(s: BridgeStatus): string {
  const ready = s.connected && s.synced;
  const demo =
    s.mode === 'demo'
      ? `<p class="demo"><strong>Demo mode:</strong> no <code>MASTRA_URL</code> is set, so the bridge runs an embedded demo Mastra app in process (agents with a mock model, no network) and observes its background tasks. Set <code>MASTRA_URL</code> to watch a real Mastra server.</p>`
      : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mastra-task-bridge</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}
code{background:#f3f4f6;padding:0 .25rem;border-radius:3px}.demo{background:#fff7e0;border:1px solid #f0c36d;padding:.5rem .75rem;border-radius:4px}
.ok{color:#137333}.bad{color:#b3261e}table{border-collapse:collapse}td{padding:.15rem .75rem .15rem 0}</style></head>
<body>
<h1>mastra-task-bridge <small>${escape(s.version)}</small></h1>
<p>Makes Mastra background tasks observable: one OpenTelemetry span per task, Prometheus metrics with exemplars.</p>
${demo}
<table>
<tr><td>Mode</td><td>${escape(s.mode)}</td></tr>
<tr><td>Source</td><td>${escape(s.source)}</td></tr>
<tr><td>Status</td><td class="${ready ? 'ok' : 'bad'}">${ready ? 'ready' : escape(s.reason ?? 'not ready')}</td></tr>
<tr><td>Open tasks</td><td>${s.openTasks}</td></tr>
<tr><td>Spans</td><td>${s.tracesExported ? 'exported over OTLP' : 'not exported (no OTLP endpoint set)'}</td></tr>
</table>
<h2>Endpoints</h2>
<ul>
<li><a href="/metrics">/metrics</a> — Prometheus metrics (OpenMetrics with exemplars when asked)</li>
<li><a href="/healthz">/healthz</a> — liveness</li>
<li><a href="/readyz">/readyz</a> — readiness (503 until connected and synced)</li>
</ul>
</body></html>
`;
}
