// ProcMan dashboard: plain JavaScript, no build step, no dependencies.
//
// Every request is a same-origin fetch() to a relative URL. The token, when the
// server asks for one (401), is kept in sessionStorage and sent as
// "Authorization: Bearer" on every request. EventSource cannot send that
// header, so /events and log follows are read with fetch() and a stream reader.
'use strict';

(() => {
  const TOKEN_KEY = 'procman.token';
  const ACTIVE = new Set(['starting', 'running', 'retrying', 'stopping']);
  const LOG_TAIL = 5000; // lines of a log loaded at first
  const LOG_MAX_CHARS = 2 << 20; // the log view keeps the last 2 MiB
  const RELOAD_EVERY = 20000; // full refresh, for jobs created or deleted elsewhere

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let askingToken = false;
  let booted = false;

  /** name -> {def: job definition, status: job status} */
  const jobs = new Map();
  /** name -> the dashboard's <tr> */
  const rows = new Map();

  // ---------------------------------------------------------------- requests

  class AuthError extends Error {}
  class APIError extends Error {
    constructor(status, message, errors) {
      super(message);
      this.status = status;
      this.errors = errors || []; // [{field, message}] for a refused definition
    }
  }

  function headers(extra) {
    const h = Object.assign({}, extra);
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  // api makes one request; a 401 asks for the token and throws AuthError.
  // A PATCH body is a JSON merge patch (RFC 7396).
  async function api(method, path, body, signal) {
    const init = { method, headers: headers(), cache: 'no-store', signal };
    if (body !== undefined) {
      init.headers['Content-Type'] = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    if (res.status === 401) {
      askToken(token ? 'The token was refused.' : '');
      throw new AuthError('a token is needed');
    }
    return res;
  }

  // apiErrorOf reads an error answer: {"error": "...", "errors": [...]}.
  async function apiErrorOf(res) {
    const text = await res.text();
    try {
      const v = JSON.parse(text);
      if (v && typeof v.error === 'string') return new APIError(res.status, v.error, Array.isArray(v.errors) ? v.errors : []);
    } catch (_) { /* not JSON */ }
    return new APIError(res.status, text.trim() || res.status + ' ' + res.statusText);
  }

  async function errorOf(res) {
    return (await apiErrorOf(res)).message;
  }

  async function apiJSON(method, path, body) {
    const res = await api(method, path, body);
    if (!res.ok) throw await apiErrorOf(res);
    return res.json();
  }

  // A job's name is one path segment: encoded, so that no name can reach
  // another route (the server also refuses an encoded '/').
  const jobPath = (name) => '/job/' + encodeURIComponent(name);
  const NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

  // readStream calls onText with each decoded piece of the body until it ends.
  async function readStream(res, onText) {
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        onText(value);
      }
    } finally {
      reader.releaseLock();
    }
  }

  // ---------------------------------------------------------------- token

  function askToken(message) {
    $('#login-error').textContent = message;
    if (askingToken) return;
    askingToken = true;
    stopStreams();
    show('login');
    $('#new-job').hidden = true;
    setConn(false, 'signed out');
    $('#token').value = '';
    $('#token').focus();
  }

  async function submitToken(ev) {
    ev.preventDefault();
    const candidate = $('#token').value.trim();
    if (!candidate) {
      $('#login-error').textContent = 'Enter the token.';
      return;
    }
    const res = await fetch('/jobs', { headers: { Authorization: 'Bearer ' + candidate }, cache: 'no-store' });
    if (res.status === 401) {
      $('#login-error').textContent = 'The token was refused.';
      $('#token').select();
      return;
    }
    token = candidate;
    sessionStorage.setItem(TOKEN_KEY, token);
    askingToken = false;
    $('#login-error').textContent = '';
    start();
  }

  function forgetToken() {
    sessionStorage.removeItem(TOKEN_KEY);
    token = '';
    location.reload();
  }

  // ---------------------------------------------------------------- formatting

  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

  function pad(n) { return String(n).padStart(2, '0'); }

  function formatDuration(ms) {
    let s = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d) return d + 'd ' + h + 'h ' + pad(m) + 'm';
    if (h) return h + 'h ' + pad(m) + 'm ' + pad(s) + 's';
    if (m) return m + 'm ' + pad(s) + 's';
    return s + 's';
  }

  function formatTime(iso) {
    if (!iso) return '';
    const t = new Date(iso);
    if (isNaN(t)) return '';
    const now = new Date();
    const hm = pad(t.getHours()) + ':' + pad(t.getMinutes());
    if (t.toDateString() === now.toDateString()) return hm + ':' + pad(t.getSeconds());
    const day = MONTHS[t.getMonth()] + ' ' + t.getDate();
    return (t.getFullYear() === now.getFullYear() ? day : day + ' ' + t.getFullYear()) + ', ' + hm;
  }

  function fullTime(iso) {
    const t = new Date(iso);
    return isNaN(t) ? '' : t.toString();
  }

  // howEnded describes a finished run (a status's last_run or a run).
  function howEnded(r) {
    let s = r.outcome || 'ended';
    if (r.exit_code !== undefined && r.exit_code !== null) s += ' (' + r.exit_code + ')';
    else if (r.signal) s += ' (' + r.signal + ')';
    return s;
  }

  // failed reports whether a finished run went wrong: a non-zero exit code,
  // a signal it did not ask for, or no clean end at all.
  function failed(r) {
    switch (r.outcome) {
      case 'exited': return (r.exit_code !== undefined && r.exit_code !== null && r.exit_code !== 0) || !!r.signal;
      case 'killed': case 'failed_to_start': case 'unknown': return true;
      default: return false;
    }
  }

  function outcomeEl(r) {
    return el('span', { class: 'outcome', dataset: { outcome: r.outcome || '', failed: String(failed(r)) }, textContent: howEnded(r) });
  }

  function uptimeOf(st) {
    if (!st || st.state !== 'running' || !st.since) return '';
    return formatDuration(Date.now() - new Date(st.since).getTime());
  }

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'class') e.className = v;
      else e[k] = v;
    }
    for (const c of children) e.append(c);
    return e;
  }

  // ---------------------------------------------------------------- views

  function show(view) {
    for (const id of ['login', 'dashboard', 'job-view']) $('#' + id).hidden = id !== view;
  }

  let flashTimer = 0;
  function flash(message) {
    $('#flash-text').textContent = message;
    $('#flash').hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { $('#flash').hidden = true; }, 10000);
  }

  function setConn(live, text) {
    const c = $('#conn');
    c.dataset.live = String(live);
    c.textContent = text || (live ? 'live' : 'reconnecting…');
  }

  function route() {
    if (askingToken) return;
    const m = /^#\/job\/(.+)$/.exec(location.hash);
    if (m) {
      let name = '';
      try {
        name = decodeURIComponent(m[1]);
      } catch (_) { /* malformed escape: no job has that name */ }
      openJob(name || m[1]);
    } else {
      closeJob();
      show('dashboard');
    }
  }

  // ---------------------------------------------------------------- dashboard

  function actionButtons() {
    return el('div', { class: 'buttons' },
      el('button', { type: 'button', dataset: { action: 'start' }, textContent: 'Start' }),
      el('button', { type: 'button', dataset: { action: 'stop' }, textContent: 'Stop' }),
      el('button', { type: 'button', dataset: { action: 'restart' }, textContent: 'Restart' }),
      el('button', { type: 'button', dataset: { action: 'edit' }, textContent: 'Edit' }),
      el('button', { type: 'button', dataset: { action: 'delete' }, class: 'danger', textContent: 'Delete' }));
  }

  function newRow(name) {
    const link = el('a', { href: '#/job/' + encodeURIComponent(name), textContent: name });
    // data-label names a cell where a narrow screen shows rows as cards.
    return el('tr', { dataset: { job: name } },
      el('td', { class: 'name' }, link, el('div', { class: 'cmd' }), el('div', { class: 'why' })),
      el('td', { class: 'state-cell' }, el('span', { class: 'badge state' })),
      el('td', { class: 'pid num', dataset: { label: 'PID' } }),
      el('td', { class: 'uptime', dataset: { label: 'Uptime' } }),
      el('td', { class: 'restarts num', dataset: { label: 'Restarts' } }),
      el('td', { class: 'last-exit', dataset: { label: 'Last exit' } }),
      el('td', { class: 'next-run', dataset: { label: 'Next run' } }),
      el('td', { class: 'actions' }, actionButtons()));
  }

  function setButtons(root, st) {
    const active = st && ACTIVE.has(st.state);
    for (const b of $$('button[data-action]', root)) {
      if (b.dataset.busy === 'true') continue;
      if (b.dataset.action === 'start') b.disabled = active;
      if (b.dataset.action === 'stop') b.disabled = !active;
    }
  }

  // setBadge shows a state; an exited job whose last run failed is marked so.
  function setBadge(e, state, st) {
    e.textContent = state || '…';
    e.dataset.state = state || '';
    e.dataset.failed = String(state === 'exited' && !!st && !!st.last_run && failed(st.last_run));
  }

  function renderRow(name) {
    const j = jobs.get(name);
    if (!j) return;
    let tr = rows.get(name);
    if (!tr) {
      tr = newRow(name);
      rows.set(name, tr);
    }
    const st = j.status || {};
    const def = j.def || {};
    tr.dataset.state = st.state || '';
    $('.cmd', tr).textContent = def.command || '';
    $('.cmd', tr).title = def.command || '';
    setBadge($('.state', tr), st.state, st);
    const why = st.state === 'error' || st.state === 'retrying' ? (st.error || '') : '';
    $('.why', tr).textContent = why;
    $('.why', tr).title = why;
    $('.pid', tr).textContent = st.pid ? String(st.pid) : '';
    $('.uptime', tr).textContent = uptimeOf(st);
    $('.restarts', tr).textContent = st.restarts ? String(st.restarts) : '0';
    const le = $('.last-exit', tr);
    le.replaceChildren();
    if (st.last_run) {
      le.append(outcomeEl(st.last_run),
        el('div', { class: 'muted small', textContent: formatTime(st.last_run.ended_at) }));
      le.title = fullTime(st.last_run.ended_at);
    }
    $('.next-run', tr).textContent = st.next_run ? formatTime(st.next_run) : '';
    $('.next-run', tr).title = st.next_run ? fullTime(st.next_run) : '';
    setButtons(tr, st);
  }

  function renderTable() {
    const tbody = $('#jobs tbody');
    const names = Array.from(jobs.keys()).sort();
    for (const [name, tr] of rows) {
      if (!jobs.has(name)) {
        tr.remove();
        rows.delete(name);
      }
    }
    for (const name of names) {
      renderRow(name);
      tbody.append(rows.get(name)); // moves rows into sorted order
    }
    $('#no-jobs').hidden = names.length > 0;
    $('#jobs').hidden = names.length === 0;
  }

  async function loadAll() {
    const [defs, states] = await Promise.all([apiJSON('GET', '/jobs'), apiJSON('GET', '/jobs/states')]);
    const byName = new Map((states || []).map((s) => [s.name, s]));
    jobs.clear();
    for (const def of defs || []) jobs.set(def.name, { def, status: byName.get(def.name) || null });
    renderTable();
    if (current) renderJobHead();
  }

  function reloadQuietly() {
    loadAll().catch(report);
  }

  function report(e) {
    if (e instanceof AuthError || (e && e.name === 'AbortError')) return;
    flash(e && e.message ? e.message : String(e));
  }

  function applyStatus(st) {
    const j = jobs.get(st.name);
    if (!j) return;
    j.status = st;
    renderRow(st.name);
    if (current && current.name === st.name) renderJobHead();
  }

  // refreshSoon re-reads one job's status a moment after a change made here
  // (a save), once for a burst of them.
  const refreshTimers = new Map();
  function refreshSoon(name) {
    clearTimeout(refreshTimers.get(name));
    refreshTimers.set(name, setTimeout(async () => {
      refreshTimers.delete(name);
      try {
        applyStatus(await apiJSON('GET', jobPath(name) + '/state'));
      } catch (e) {
        if (e instanceof APIError && e.status === 404) reloadQuietly();
        else report(e);
      }
    }, 150));
  }

  async function doAction(name, action, button) {
    if (action === 'edit') {
      openEditor(name);
      return;
    }
    if (action === 'delete' && !confirm('Delete job "' + name + '"? It is stopped first; its logs stay on disk.')) return;
    button.disabled = true;
    button.dataset.busy = 'true';
    button.classList.add('busy');
    try {
      if (action === 'delete') {
        await apiJSON('DELETE', '/job/delete/' + encodeURIComponent(name));
        jobs.delete(name);
        renderTable();
        if (current && current.name === name) location.hash = '#/';
      } else {
        applyStatus(await apiJSON('POST', jobPath(name) + '/' + action));
      }
    } catch (e) {
      report(e);
    } finally {
      delete button.dataset.busy;
      button.classList.remove('busy');
      button.disabled = false;
      const j = jobs.get(name);
      if (j) {
        renderRow(name);
        if (current && current.name === name) renderJobHead();
      }
    }
  }

  function onActionClick(ev) {
    const b = ev.target.closest('button[data-action]');
    if (!b) return;
    const name = b.closest('[data-job]') ? b.closest('[data-job]').dataset.job : current && current.name;
    if (name) doAction(name, b.dataset.action, b);
  }

  // ---------------------------------------------------------------- events

  let eventsAbort = null;
  let retryTimer = 0;

  function stopStreams() {
    if (eventsAbort) eventsAbort.abort();
    eventsAbort = null;
    clearTimeout(retryTimer);
    stopLog();
  }

  async function connectEvents() {
    if (eventsAbort) eventsAbort.abort();
    clearTimeout(retryTimer);
    const ac = new AbortController();
    eventsAbort = ac;
    try {
      const res = await api('GET', '/events', undefined, ac.signal);
      if (!res.ok) throw new APIError(res.status, await errorOf(res));
      setConn(true);
      // Loaded after subscribing, so that no change falls between the two.
      await loadAll();
      if (current) refreshJob();
      let buf = '';
      await readStream(res, (text) => {
        buf += text;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) { // ProcMan ends each event with a blank line
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          onSSE(block);
        }
      });
    } catch (e) {
      if (ac.signal.aborted || e instanceof AuthError) return;
    }
    if (ac.signal.aborted || askingToken) return;
    setConn(false);
    retryTimer = setTimeout(connectEvents, 2000);
  }

  // onSSE handles one Server-Sent Events block: "event:" and "data:" lines.
  function onSSE(block) {
    let type = 'message';
    const data = [];
    for (let line of block.split('\n')) {
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '' || line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? '' : line.slice(c + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) return;
    let ev;
    try {
      ev = JSON.parse(data.join('\n'));
    } catch (_) {
      return;
    }
    onEvent(type, ev);
  }

  function onEvent(type, ev) {
    if (type === 'lagged' || ev.type === 'lagged') {
      reloadQuietly();
      if (current) refreshJob();
      return;
    }
    const name = ev.job;
    if (!name) return;
    if (!jobs.has(name)) {
      reloadQuietly(); // a job created elsewhere
      return;
    }
    // Each event carries the job's whole status after it: nothing to work out here.
    if (ev.status && ev.status.name === name) applyStatus(ev.status);
    if (current && current.name === name) refreshRuns(true);
  }

  // ---------------------------------------------------------------- job page

  /** the open job page: {name, runs, shownRun (null: the latest), log state} */
  let current = null;
  let logAbort = null;

  function closeJob() {
    current = null;
    stopLog();
  }

  function stopLog() {
    if (logAbort) logAbort.abort();
    logAbort = null;
  }

  function openJob(name) {
    if (!current || current.name !== name) {
      stopLog();
      current = { name, runs: [], pinned: null, logRun: null, missing: '' };
      $('#log').textContent = '';
      $('#log-title').textContent = '';
      $('#runs tbody').replaceChildren();
      $('#jv-def').replaceChildren();
    }
    show('job-view');
    renderJobHead();
    if (!NAME_RE.test(name)) { // a crafted link: no job has that name, so ask nothing
      current.missing = 'No job named "' + name + '".';
      renderJobHead();
      return;
    }
    refreshJob();
  }

  async function refreshJob() {
    const name = current && current.name;
    if (!name) return;
    try {
      const [def, st] = await Promise.all([apiJSON('GET', jobPath(name)), apiJSON('GET', jobPath(name) + '/state')]);
      if (!current || current.name !== name) return;
      jobs.set(name, { def, status: st });
      renderRow(name);
      renderJobHead();
      renderDefinition(def);
      await refreshRuns(false);
    } catch (e) {
      if (e instanceof APIError && e.status === 404) {
        current.missing = 'No job named "' + name + '".';
        renderJobHead();
        return;
      }
      report(e);
    }
  }

  function renderJobHead() {
    if (!current) return;
    const j = jobs.get(current.name) || {};
    const st = j.status || {};
    $('#jv-name').textContent = current.name;
    setBadge($('#jv-state'), st.state, st);
    $('#jv-error').textContent = current.missing || (st.error && (st.state === 'error' || st.state === 'retrying') ? st.error : '');
    $('#jv-pid').textContent = st.pid ? String(st.pid) : '—';
    $('#jv-uptime').textContent = uptimeOf(st) || '—';
    $('#jv-restarts').textContent = String(st.restarts || 0);
    $('#jv-last-exit').textContent = st.last_run ? howEnded(st.last_run) + ' at ' + formatTime(st.last_run.ended_at) : '—';
    $('#jv-next-run').textContent = st.next_run ? formatTime(st.next_run) : '—';
    setButtons($('#jv-actions'), st);
    document.title = current.name + ' · ProcMan';
  }

  // renderDefinition lists every field the job sets, those of the form first.
  function renderDefinition(def) {
    const dl = $('#jv-def');
    dl.replaceChildren();
    const add = (k, v) => {
      if (v === undefined || v === null || v === '' || v === 0) return;
      dl.append(el('dt', { textContent: k }), el('dd', { textContent: String(v) }));
    };
    for (const spec of FIELDS) {
      if (spec.f === 'name') continue;
      const v = def[spec.f];
      add(spec.label, spec.kind === 'env' && v ? envText(v) : spec.f === 'schedule' ? v || 'manual' : v);
    }
    for (const [k, v] of Object.entries(def)) { // a field this page does not know yet
      if (!FIELDS.some((spec) => spec.f === k)) add(k, typeof v === 'object' && v ? JSON.stringify(v) : v);
    }
  }

  // refreshRuns reloads the run history; the log view follows the newest run
  // unless the user picked another.
  async function refreshRuns(soon) {
    if (soon) {
      clearTimeout(refreshRuns.timer);
      refreshRuns.timer = setTimeout(() => refreshRuns(false).catch(report), 150);
      return;
    }
    const name = current && current.name;
    if (!name) return;
    const runs = await apiJSON('GET', jobPath(name) + '/runs?limit=50');
    if (!current || current.name !== name) return;
    current.runs = runs || [];
    renderRuns();
    const run = current.pinned ? current.runs.find((r) => r.id === current.pinned) : current.runs[0];
    if (!run) {
      if (!current.runs.length) showLogNote('No runs yet.');
      return;
    }
    if (run.outcome === 'failed_to_start' || run.outcome === 'skipped') {
      showRunNote(run);
    } else if (current.logRun !== run.id) {
      showLog(name, run);
    } else if (run.ended_at && !logAbort) {
      // A follow ends once the run has ended and its output is drained.
      $('#log').dataset.following = 'false';
      $('#log-title').textContent = 'run ' + run.id + ' · ' + howEnded(run);
    }
  }

  function renderRuns() {
    const tbody = $('#runs tbody');
    tbody.replaceChildren();
    const shown = current.pinned || (current.runs[0] && current.runs[0].id);
    for (const r of current.runs) {
      const end = r.ended_at ? new Date(r.ended_at) : new Date();
      const tr = el('tr', { dataset: { run: String(r.id) }, class: r.id === shown ? 'selected' : '', title: 'Show the output of run ' + r.id },
        el('td', { class: 'run-id', textContent: '#' + r.id }),
        el('td', { textContent: r.trigger || '' }),
        el('td', { textContent: formatTime(r.started_at), title: fullTime(r.started_at) }),
        el('td', { textContent: r.outcome === 'skipped' ? '' : formatDuration(end - new Date(r.started_at)) }),
        el('td', {}, r.ended_at
          ? outcomeEl(r)
          : el('span', { class: 'badge', dataset: { state: 'running' }, textContent: 'running' })),
        el('td', { class: 'num', textContent: r.pid ? String(r.pid) : '' }));
      tbody.append(tr);
    }
    $('#no-runs').hidden = current.runs.length > 0;
    $('#runs').hidden = current.runs.length === 0;
  }

  function onRunClick(ev) {
    const tr = ev.target.closest('tr[data-run]');
    if (!tr || !current) return;
    const id = Number(tr.dataset.run);
    current.pinned = current.runs[0] && current.runs[0].id === id ? null : id;
    current.logRun = null;
    renderRuns();
    refreshRuns(false).catch(report);
  }

  // showRunNote shows, for a run that has no output, why: the reason it failed
  // to start, or why a tick was skipped.
  function showRunNote(run) {
    stopLog();
    current.logRun = run.id;
    const pre = $('#log');
    pre.dataset.run = String(run.id);
    pre.dataset.following = 'false';
    $('#log-title').textContent = 'run ' + run.id + ' · ' + howEnded(run);
    pre.textContent = (run.outcome === 'skipped' ? 'Skipped: ' : 'Failed to start: ') + (run.error || 'no reason recorded');
  }

  function showLogNote(text) {
    stopLog();
    current.logRun = null;
    $('#log').textContent = '';
    $('#log-title').textContent = text;
  }

  function appendLog(text) {
    const pre = $('#log');
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    let all = pre.textContent + text;
    if (all.length > LOG_MAX_CHARS) all = all.slice(all.length - LOG_MAX_CHARS);
    pre.textContent = all;
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  // showLog shows a run's output: a running run is followed as it is written
  // (GET logs?follow=1, streamed), a finished one is read once.
  async function showLog(name, run) {
    stopLog();
    const ac = new AbortController();
    logAbort = ac;
    const live = !run.ended_at;
    current.logRun = run.id;
    const pre = $('#log');
    pre.textContent = '';
    pre.dataset.run = String(run.id);
    pre.dataset.following = String(live);
    $('#log-title').textContent = 'run ' + run.id + (live ? ' · following' : ' · ' + howEnded(run));
    const q = new URLSearchParams({ run: String(run.id), tail: String(LOG_TAIL) });
    if (live) q.set('follow', '1');
    try {
      const res = await api('GET', jobPath(name) + '/logs?' + q, undefined, ac.signal);
      if (!res.ok) {
        const msg = await errorOf(res);
        if (logAbort === ac) $('#log-title').textContent = 'run ' + run.id + ' · ' + msg;
        return;
      }
      await readStream(res, (text) => { if (logAbort === ac) appendLog(text); });
    } catch (e) {
      if (ac.signal.aborted || e instanceof AuthError) return;
      report(e);
      return;
    } finally {
      if (logAbort === ac) logAbort = null;
    }
    if (live && !ac.signal.aborted && current && current.name === name) {
      refreshRuns(true); // how it ended, and perhaps the next run
    }
  }

  // ---------------------------------------------------------------- editor

  // The job form, one line a field, in the form's order. kind: text, area,
  // select, signal, int or env; only: the type a field applies to; wide: a
  // whole row; note: beside the label; hint: under the input.
  const FIELDS = [
    { f: 'name', label: 'Name', kind: 'text', placeholder: 'web' },
    { f: 'type', label: 'Type', kind: 'select', options: [['one_time', 'one_time: runs once per start'], ['continuous', 'continuous: restarted whenever it exits']] },
    { f: 'command', label: 'Command', note: '(run as /bin/sh -c)', kind: 'area', wide: true, placeholder: 'python3 -m http.server 8080' },
    { f: 'schedule', label: 'Schedule', kind: 'text', placeholder: 'manual', list: ['reboot', 'manual', '@hourly', '@daily', '@every 5m', '*/5 * * * *'], hint: 'reboot, manual, or cron: */5 * * * *, @daily, @every 90s' },
    { f: 'overlap', label: 'Overlap', kind: 'select', only: 'one_time', options: [['', 'default (skip)'], 'skip', 'queue', 'restart'], hint: 'with a cron schedule: what a tick does while the last run goes' },
    { f: 'dir', label: 'Working directory', kind: 'text', wide: true, placeholder: "ProcMan's own" },
    { f: 'env', label: 'Environment', note: '(KEY=VALUE, one a line)', kind: 'env', wide: true, placeholder: 'PORT=8080' },
    { f: 'env_file', label: 'Environment file', note: '(KEY=VALUE lines, read at each start)', kind: 'text', wide: true, placeholder: 'none' },
    { f: 'user', label: 'User', note: '(user[:group]; ProcMan must run as root)', kind: 'text', placeholder: "ProcMan's user" },
    { f: 'stop_signal', label: 'Stop signal', kind: 'signal', options: [['', 'default (TERM)'], 'TERM', 'INT', 'HUP', 'QUIT', 'KILL', 'USR1', 'USR2'] },
    { f: 'stop_timeout', label: 'Stop timeout', kind: 'text', placeholder: '10s', hint: 'up to 1h' },
    { f: 'max_retries', label: 'Max retries', note: '(0: forever)', kind: 'int', only: 'continuous', placeholder: '0' },
    { f: 'min_uptime', label: 'Min uptime', kind: 'text', only: 'continuous', placeholder: '10s', hint: 'up to 24h' },
    { f: 'backoff_initial', label: 'Backoff initial', kind: 'text', only: 'continuous', placeholder: '1s', hint: 'up to 24h' },
    { f: 'backoff_max', label: 'Backoff max', kind: 'text', only: 'continuous', placeholder: '1m', hint: 'up to 24h' },
    { f: 'keep_runs', label: 'Keep runs', kind: 'int', placeholder: '100' },
    { f: 'max_log_bytes', label: 'Max log bytes', kind: 'int', placeholder: 'no cap' },
  ];
  let editing = null; // the definition being edited; null for a new job

  const input = (field) => $('#f-' + field);
  const fieldBox = (field) => $('#job-form .field[data-field="' + field + '"]');
  const sigName = (v) => String(v || '').toUpperCase().replace(/^SIG/, '');
  const envText = (env) => Object.keys(env).sort().map((k) => k + '=' + env[k]).join('\n');

  // buildForm makes the form's inputs from FIELDS.
  function buildForm() {
    const box = $('#job-form .fields');
    for (const spec of FIELDS) {
      const id = 'f-' + spec.f;
      let ctl;
      if (spec.options) {
        ctl = el('select', { id, name: spec.f });
        for (const o of spec.options) {
          const [value, text] = Array.isArray(o) ? o : [o, o];
          ctl.append(el('option', { value, textContent: text }));
        }
      } else if (spec.kind === 'area' || spec.kind === 'env') {
        ctl = el('textarea', { id, name: spec.f, spellcheck: false, placeholder: spec.placeholder || '' });
        ctl.rows = spec.kind === 'env' ? 3 : 2;
      } else {
        ctl = el('input', { id, name: spec.f, spellcheck: false, autocomplete: 'off', placeholder: spec.placeholder || '', class: 'mono' });
        if (spec.kind === 'int') ctl.inputMode = 'numeric';
      }
      const label = el('label', { htmlFor: id, textContent: spec.label });
      if (spec.note) label.append(' ', el('span', { class: 'muted', textContent: spec.note }));
      const field = el('div', { class: 'field' + (spec.wide ? ' wide' : ''), dataset: { field: spec.f } }, label, ctl);
      if (spec.list) {
        const list = el('datalist', { id: id + '-list' });
        for (const v of spec.list) list.append(el('option', { value: v }));
        ctl.setAttribute('list', list.id);
        field.append(list);
      }
      if (spec.hint) field.append(el('small', { class: 'hint', textContent: spec.hint }));
      field.append(el('small', { class: 'err', dataset: { err: spec.f } }));
      box.append(field);
    }
  }

  function clearErrors() {
    $('#form-error').textContent = '';
    for (const e of $$('#job-form [data-err]')) e.textContent = '';
    for (const f of $$('#job-form .field')) f.classList.remove('invalid');
  }

  // fieldError shows a message under its field's input, if the field is shown.
  function fieldError(field, message) {
    const slot = $('#job-form [data-err="' + field + '"]');
    const f = fieldBox(field);
    if (!slot || !f || f.hidden) return false;
    slot.textContent = slot.textContent ? slot.textContent + '\n' + message : message;
    f.classList.add('invalid');
    return true;
  }

  function showTypeFields() {
    const type = input('type').value;
    for (const spec of FIELDS) if (spec.only) fieldBox(spec.f).hidden = spec.only !== type;
  }

  // setInput shows a definition's value in its input.
  function setInput(spec, v) {
    const ctl = input(spec.f);
    if (v === undefined || v === null) return;
    if (spec.kind === 'env') {
      ctl.value = envText(v);
    } else if (spec.kind === 'signal') {
      const sig = sigName(v);
      if (![...ctl.options].some((o) => o.value === sig)) ctl.append(el('option', { value: sig, textContent: sig }));
      ctl.value = sig;
    } else {
      ctl.value = String(v);
    }
  }

  async function openEditor(name) {
    let def = null;
    if (name) {
      try {
        def = await apiJSON('GET', jobPath(name));
      } catch (e) {
        report(e);
        return;
      }
    }
    if ($('#editor').open) return;
    editing = def;
    $('#job-form').reset();
    clearErrors();
    $('#editor-title').textContent = name ? 'Edit ' + name : 'New job';
    $('#editor-save').textContent = name ? 'Save' : 'Create';
    input('name').readOnly = !!name;
    if (def) for (const spec of FIELDS) setInput(spec, def[spec.f]);
    showTypeFields();
    $('#editor').showModal();
    (name ? input('command') : input('name')).focus();
  }

  // readValue reads one input: undefined when empty or hidden.
  function readValue(spec, errors) {
    if (fieldBox(spec.f).hidden) return undefined;
    const raw = input(spec.f).value;
    const v = spec.kind === 'area' || spec.kind === 'env' ? raw : raw.trim();
    if (v.trim() === '') return undefined;
    if (spec.kind === 'int') {
      if (/^\d+$/.test(v)) return Number(v);
      errors[spec.f] = 'must be a whole number';
      return undefined;
    }
    if (spec.kind !== 'env') return v;
    const env = {};
    v.split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === '' || line.trim().startsWith('#')) return;
      const eq = line.indexOf('=');
      if (eq <= 0) errors[spec.f] = errors[spec.f] || 'line ' + (i + 1) + ': expected KEY=VALUE';
      else env[line.slice(0, eq).trim()] = line.slice(eq + 1);
    });
    return Object.keys(env).length ? env : undefined;
  }

  // readForm turns the form into a job definition, leaving out empty fields.
  function readForm() {
    const job = {};
    const errors = {};
    for (const spec of FIELDS) {
      const v = readValue(spec, errors);
      if (v !== undefined) job[spec.f] = v;
      else if (spec.f === 'name' || spec.f === 'command') job[spec.f] = ''; // required: the server says so
    }
    return { job, errors };
  }

  // patchOf is the JSON merge patch (RFC 7396) from a definition to the form:
  // only what the form changed, null for what it emptied. Fields the form does
  // not show are left as they are, whatever they hold.
  function patchOf(def, job) {
    const patch = {};
    const given = (v) => v !== undefined && v !== null && v !== '';
    for (const spec of FIELDS) {
      const f = spec.f;
      if (f === 'name') continue;
      const was = given(def[f]) ? def[f] : undefined;
      const now = job[f];
      if (spec.kind === 'env') {
        const env = envPatch(was || {}, now || {});
        if (env !== undefined) patch.env = env;
      } else if (spec.kind === 'signal' ? sigName(was) !== sigName(now) : was !== now) {
        patch[f] = now === undefined ? null : now;
      }
    }
    return patch;
  }

  function envPatch(was, now) {
    const patch = {};
    for (const k of new Set([...Object.keys(was), ...Object.keys(now)])) {
      if (was[k] !== now[k]) patch[k] = k in now ? now[k] : null;
    }
    if (!Object.keys(patch).length) return undefined;
    return Object.keys(now).length ? patch : null;
  }

  async function saveJob(ev) {
    ev.preventDefault();
    clearErrors();
    const { job, errors } = readForm();
    const bad = Object.keys(errors);
    if (bad.length) {
      for (const f of bad) fieldError(f, errors[f]);
      input(bad[0]).focus();
      return;
    }
    const save = $('#editor-save');
    save.disabled = true;
    try {
      const saved = editing
        ? await apiJSON('PATCH', jobPath(editing.name), patchOf(editing, job))
        : await apiJSON('POST', '/job/create', job);
      $('#editor').close();
      const j = jobs.get(saved.name);
      jobs.set(saved.name, { def: saved, status: j ? j.status : null });
      renderTable();
      refreshSoon(saved.name);
      if (current && current.name === saved.name) refreshJob();
      else if (!editing) reloadQuietly();
    } catch (e) {
      showSaveError(e);
    } finally {
      save.disabled = false;
    }
  }

  // showSaveError puts each field's problem next to its input, and anything
  // else above the form.
  function showSaveError(e) {
    if (e instanceof AuthError) {
      $('#editor').close();
      return;
    }
    if (e instanceof APIError && e.status === 400 && e.errors.length) {
      const rest = [];
      let first = '';
      for (const fe of e.errors) {
        if (fieldError(fe.field, fe.message)) first = first || fe.field;
        else rest.push(fe.field + ': ' + fe.message);
      }
      $('#form-error').textContent = rest.join('\n');
      if (first) input(first).focus();
      return;
    }
    if (e instanceof APIError && e.status === 409 && !editing && fieldError('name', e.message)) {
      input('name').focus();
      return;
    }
    $('#form-error').textContent = e.message || String(e);
  }

  // ---------------------------------------------------------------- start

  function tick() {
    for (const [name, tr] of rows) {
      const j = jobs.get(name);
      if (j && j.status && j.status.state === 'running') $('.uptime', tr).textContent = uptimeOf(j.status);
    }
    if (current) {
      const j = jobs.get(current.name);
      $('#jv-uptime').textContent = (j && uptimeOf(j.status)) || '—';
    }
  }

  function start() {
    askingToken = false;
    $('#new-job').hidden = false;
    $('#forget-token').hidden = !token;
    route();
    connectEvents();
  }

  function boot() {
    if (booted) return;
    booted = true;
    buildForm();
    $('#login-form').addEventListener('submit', (ev) => submitToken(ev).catch(report));
    $('#forget-token').addEventListener('click', forgetToken);
    $('#flash-close').addEventListener('click', () => { $('#flash').hidden = true; });
    $('#new-job').addEventListener('click', () => openEditor(null));
    $('#new-job-empty').addEventListener('click', () => openEditor(null));
    $('#jobs').addEventListener('click', onActionClick);
    $('#jv-actions').addEventListener('click', onActionClick);
    $('#runs').addEventListener('click', onRunClick);
    $('#job-form').addEventListener('submit', (ev) => saveJob(ev).catch(showSaveError));
    $('#editor-cancel').addEventListener('click', () => $('#editor').close());
    input('type').addEventListener('change', showTypeFields);
    window.addEventListener('hashchange', route);
    setInterval(tick, 1000);
    setInterval(() => {
      if (!askingToken && document.visibilityState === 'visible') reloadQuietly();
    }, RELOAD_EVERY);
    start();
  }

  boot();
})();
