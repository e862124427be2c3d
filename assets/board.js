// The live task board's client (served as /board.js; plain browser JavaScript, no build step, no dependencies).
//
// Reads /api/events with fetch() and a streaming body rather than EventSource, because EventSource cannot send an
// Authorization header: with a token (from `#token=…` or the form shown after a 401) every request carries
// `Authorization: Bearer`. Reconnects with `Last-Event-ID` and backoff; a `snapshot` frame replaces the state; a
// stream silent for three heartbeats is treated as dead. Everything upstream-controlled (tool names, agent ids) is put
// in the page with textContent, never as HTML.
'use strict';
(() => {
  const cfg = JSON.parse(document.getElementById('board-config').textContent);
  const TOKEN_KEY = 'mastra-task-bridge.token';
  const MAX_FINISHED_KEPT = 1000;
  const FINISHED_SHOWN = 30;
  const OPEN_SHOWN = 200;
  const TRACE_ID = /^[0-9a-f]{32}$/;

  const open = new Map(); // taskId -> task view (running or suspended)
  const finished = new Map(); // taskId -> task view, insertion order = order seen
  let lastId;
  let backoffMs = 1000;
  let controller;
  let watchdog;
  let renderQueued = false;

  function readToken() {
    const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (m) {
      // A malformed escape (`#token=%E0%A4%A`) would throw URIError here and leave the board "connecting…" for good:
      // take it as typed; the server then answers 401 and the board asks for a token.
      let t;
      try {
        t = decodeURIComponent(m[1]);
      } catch {
        t = m[1];
      }
      try {
        sessionStorage.setItem(TOKEN_KEY, t);
      } catch {}
      // Out of the address bar, history and screenshots.
      history.replaceState(null, '', location.pathname + location.search);
      return t;
    }
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch {
      return '';
    }
  }
  let token = readToken();

  const conn = document.getElementById('conn');
  function setState(state, text) {
    conn.dataset.state = state;
    conn.textContent = text;
  }

  // ---- formatting -------------------------------------------------------------------------------------------------
  function fmtDuration(ms) {
    if (ms === undefined || ms === null || !isFinite(ms)) return '—';
    ms = Math.max(0, ms);
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} m ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
    return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`;
  }
  function fmtTime(ms) {
    return ms ? new Date(ms).toLocaleTimeString() : '—';
  }
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function status(s) {
    return el('span', s.replace('_', ' '), `st st-${s}`);
  }
  function shortId(id) {
    return id && id.length > 12 ? `${id.slice(0, 8)}…` : id || '—';
  }
  function traceCell(task) {
    if (!task.traceId) return el('span', '—');
    if (cfg.traceUrlTemplate && TRACE_ID.test(task.traceId)) {
      const a = el('a', shortId(task.traceId), 'trace-link');
      a.href = cfg.traceUrlTemplate.split('{traceId}').join(task.traceId);
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      a.title = task.traceId;
      return a;
    }
    const c = el('code', shortId(task.traceId));
    c.title = task.traceId;
    return c;
  }
  function row(cells, data) {
    const tr = document.createElement('tr');
    Object.assign(tr.dataset, data);
    for (const cell of cells) {
      const td = document.createElement('td');
      if (cell instanceof Node) td.append(cell);
      else if (cell && typeof cell === 'object') {
        td.textContent = cell.text;
        if (cell.cls) td.className = cell.cls;
        if (cell.title) td.title = cell.title;
      } else td.textContent = cell === undefined ? '—' : String(cell);
      tr.append(td);
    }
    return tr;
  }
  function emptyRow(cols, text) {
    const tr = document.createElement('tr');
    const td = el('td', text, 'empty');
    td.colSpan = cols;
    tr.append(td);
    return tr;
  }

  // ---- rendering --------------------------------------------------------------------------------------------------
  function since(task) {
    if (task.status === 'suspended') return task.suspendedAt ?? task.startedAt;
    return task.resumedAt ?? task.startedAt;
  }
  function render() {
    renderQueued = false;
    const now = Date.now();
    const openRows = [...open.values()].sort((a, b) => (since(a) ?? now) - (since(b) ?? now));
    const openBody = document.querySelector('#open-tasks tbody');
    const rows = openRows.slice(0, OPEN_SHOWN).map((t) =>
      row(
        [
          t.toolName,
          t.agentId,
          status(t.status),
          { text: fmtDuration(now - (since(t) ?? now)), cls: 'num age' },
          fmtTime(t.startedAt),
          { text: t.outputCount, cls: 'num outputs' },
          t.threadId,
          { text: shortId(t.taskId), title: t.taskId },
        ],
        { taskId: t.taskId, status: t.status },
      ),
    );
    openBody.replaceChildren(...(rows.length ? rows : [emptyRow(8, 'No task is running or suspended.')]));
    const running = openRows.filter((t) => t.status === 'running').length;
    const suspended = openRows.filter((t) => t.status === 'suspended').length;
    const requeued = openRows.length - running - suspended; // pending: put back in Mastra's queue for a retry
    document.getElementById('open-count').textContent =
      `${running} running, ${suspended} suspended` + (requeued ? `, ${requeued} waiting to retry` : '') + (openRows.length > OPEN_SHOWN ? ` (oldest ${OPEN_SHOWN} shown)` : '');

    const done = [...finished.values()].reverse().slice(0, FINISHED_SHOWN);
    const finishedBody = document.querySelector('#finished-tasks tbody');
    const frows = done.map((t) =>
      row(
        [
          fmtTime(t.completedAt),
          t.toolName,
          t.agentId,
          status(t.status),
          { text: fmtDuration(t.durationMs), cls: 'num duration' },
          t.errorType ?? '',
          traceCell(t),
          { text: shortId(t.taskId), title: t.taskId },
        ],
        { taskId: t.taskId, status: t.status },
      ),
    );
    finishedBody.replaceChildren(...(frows.length ? frows : [emptyRow(8, 'No task finished since this page connected.')]));

    const windowStart = now - cfg.failureWindowMinutes * 60_000;
    const perTool = new Map();
    for (const t of finished.values()) {
      if ((t.completedAt ?? 0) < windowStart) continue;
      const s = perTool.get(t.toolName) ?? { finished: 0, failed: 0 };
      s.finished++;
      if (t.status === 'failed' || t.status === 'timed_out') s.failed++;
      perTool.set(t.toolName, s);
    }
    const toolBody = document.querySelector('#tool-failures tbody');
    const trows = [...perTool.entries()]
      .sort((a, b) => b[1].failed / b[1].finished - a[1].failed / a[1].finished || a[0].localeCompare(b[0]))
      .map(([tool, s]) => {
        const ratio = s.failed / s.finished;
        const bar = el('span', undefined, 'bar');
        bar.style.width = `${Math.round(ratio * 120)}px`;
        const cells = [tool, { text: s.finished, cls: 'num' }, { text: s.failed, cls: 'num' }, { text: `${(ratio * 100).toFixed(0)} %`, cls: 'num ratio' }, bar];
        return row(cells, { tool });
      });
    toolBody.replaceChildren(...(trows.length ? trows : [emptyRow(5, `No task finished in the last ${cfg.failureWindowMinutes} minutes.`)]));
  }
  function queueRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(render);
  }

  // ---- events -----------------------------------------------------------------------------------------------------
  function remember(task) {
    finished.delete(task.taskId);
    finished.set(task.taskId, task);
    if (finished.size > MAX_FINISHED_KEPT) finished.delete(finished.keys().next().value);
  }
  function apply(type, data) {
    if (type === 'snapshot') {
      open.clear();
      for (const t of data.tasks) open.set(t.taskId, t);
      // A reset means events were missed: what this page knew may be stale.
      if (data.reason === 'reset') finished.clear();
      for (const t of data.finished) remember(t);
    } else if (type === 'finished') {
      open.delete(data.task.taskId);
      remember(data.task);
    } else if (data && data.task && !finished.has(data.task.taskId)) {
      open.set(data.task.taskId, data.task);
    }
    queueRender();
  }
  function frame(block) {
    let type = 'message';
    let id;
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? '' : line.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
    if (id !== undefined) lastId = id;
    if (data.length === 0) return;
    let parsed;
    try {
      parsed = JSON.parse(data.join('\n'));
    } catch {
      return;
    }
    apply(type, parsed);
  }

  function armWatchdog() {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => controller && controller.abort(), (cfg.heartbeatSeconds * 3 + 5) * 1000);
  }
  function retry() {
    clearTimeout(watchdog);
    setState('reconnecting', `reconnecting in ${Math.round(backoffMs / 1000)} s…`);
    setTimeout(connect, backoffMs);
    backoffMs = Math.min(backoffMs * 2, 15_000);
  }
  async function connect() {
    controller = new AbortController();
    const headers = { Accept: 'text/event-stream' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (lastId) headers['Last-Event-ID'] = lastId;
    let res;
    try {
      res = await fetch(cfg.eventsUrl, { headers, signal: controller.signal, cache: 'no-store' });
    } catch {
      retry();
      return;
    }
    if (res.status === 401 || res.status === 403) {
      setState('unauthorized', token ? 'token rejected' : 'token required');
      document.getElementById('token-form').hidden = false;
      return;
    }
    if (!res.ok || !res.body) {
      retry();
      return;
    }
    document.getElementById('token-form').hidden = true;
    setState('live', 'live');
    backoffMs = 1000;
    armWatchdog();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        armWatchdog();
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          frame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {}
    retry();
  }

  document.getElementById('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    token = document.getElementById('token-input').value.trim();
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch {}
    setState('connecting', 'connecting…');
    connect();
  });
  setInterval(render, 1000); // ages tick
  render();
  connect();
})();
