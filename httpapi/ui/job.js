// A job's page: its status, its definition, its CPU and memory over the
// last minutes, its runs, and the output of one of them, followed while the
// run goes on.

import { APIError, AuthError, NAME_RE, api, apiJSON, errorOf, jobPath, readStream } from './api.js';
import { drawChart } from './chart.js';
import { $, cpuPercent, el, formatBytes, formatDuration, formatPercent, formatTime, fullTime, howEnded, outcomeEl, setBadge, setHealth, uptimeOf, waitingText } from './format.js';
import { FIELDS, envText } from './fields.js';
import { jobs, onStatusChange, putJob, setButtons, statusVersion } from './list.js';
import { report, show } from './page.js';

const LOG_TAIL = 5000; // lines of a log loaded at first
const LOG_MAX_CHARS = 2 << 20; // the log view keeps the last 2 MiB
const USAGE_SPAN = 5 * 60 * 1000; // the charts show the last five minutes

/** the open job page: {name, runs, pinned (null: the latest run), logRun, missing,
 *  samples: [{t, cpu, rss, pss}] read while the page is open, last: the last usage read} */
let current = null;
let logAbort = null;

onStatusChange((name) => {
  if (current && (name === null || name === current.name || dependsOn(current.name, name))) renderJobHead();
});

// dependsOn reports whether job name depends on job dep.
function dependsOn(name, dep) {
  const j = jobs.get(name);
  return !!(j && j.def && j.def.depends_on && Object.hasOwn(j.def.depends_on, dep));
}

// currentName is the name of the job whose page is open, or ''.
export function currentName() {
  return current ? current.name : '';
}

export function closeJob() {
  current = null;
  stopLog();
}

export function stopLog() {
  if (logAbort) logAbort.abort();
  logAbort = null;
}

export function openJob(name) {
  if (!current || current.name !== name) {
    stopLog();
    current = { name, runs: [], pinned: null, logRun: null, missing: '', samples: [], last: null };
    renderUsage();
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

// refreshJob reads the open job's definition, status and runs again.
export async function refreshJob() {
  const name = current && current.name;
  if (!name) return;
  try {
    const asked = statusVersion();
    const [def, st] = await Promise.all([apiJSON('GET', jobPath(name)), apiJSON('GET', jobPath(name) + '/state')]);
    if (!current || current.name !== name) return;
    putJob(def, st, asked);
    renderJobHead();
    renderDefinition(def);
    await refreshRuns(false);
  } catch (e) {
    if (e instanceof APIError && e.code === 'not_found') {
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
  $('#jv-host').textContent = st.host || '—';
  $('#jv-pid').textContent = st.pid ? String(st.pid) : '—';
  $('#jv-uptime').textContent = uptimeOf(st) || '—';
  $('#jv-restarts').textContent = String(st.restarts || 0);
  $('#jv-last-exit').textContent = st.last_run ? howEnded(st.last_run) + ' at ' + formatTime(st.last_run.ended_at) : '—';
  $('#jv-next-run').textContent = st.next_run ? formatTime(st.next_run) : '—';
  setHealth($('#jv-health'), st);
  $('#jv-no-health').hidden = !!st.health;
  $('#jv-health-failure').textContent = st.health_failure || '—';
  $('#jv-health-checked').textContent = st.health_checked_at ? formatTime(st.health_checked_at) : '—';
  $('#jv-health-checked').title = st.health_checked_at ? fullTime(st.health_checked_at) : '';
  $('#jv-waiting').textContent = waitingText(st.waiting_for) || '—';
  renderDeps((j.def && j.def.depends_on) || {});
  setButtons($('#jv-actions'), st);
  document.title = current.name + ' · ProcMan';
}

// renderDeps lists the open job's dependencies, each a link to its page,
// with its condition and how that job is now.
function renderDeps(deps) {
  const dd = $('#jv-deps');
  const names = Object.keys(deps).sort();
  dd.replaceChildren();
  if (!names.length) dd.textContent = '—';
  for (const n of names) {
    const st = (jobs.get(n) || {}).status || {};
    const state = el('span', { class: 'badge state' });
    setBadge(state, st.state, st);
    const health = el('span', { class: 'badge health' });
    setHealth(health, st);
    dd.append(el('div', { class: 'dep', dataset: { dep: n } },
      el('a', { href: '#/job/' + encodeURIComponent(n), textContent: n }), ' ',
      el('span', { class: 'muted cond', textContent: deps[n] }), ' ', state, ' ', health));
  }
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
    add(spec.label, spec.kind === 'env' && v ? envText(v) : spec.kind === 'json' && v ? JSON.stringify(v) : spec.f === 'schedule' ? v || 'manual' : v);
  }
  for (const [k, v] of Object.entries(def)) { // a field this page does not know yet
    if (!FIELDS.some((spec) => spec.f === k)) add(k, typeof v === 'object' && v ? JSON.stringify(v) : v);
  }
}

// refreshRuns reloads the run history; the log view follows the newest run
// unless the user picked another.
export async function refreshRuns(soon) {
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
      el('td', { class: 'num', textContent: r.cpu_user_seconds !== undefined ? formatSeconds(r.cpu_user_seconds + r.cpu_system_seconds) : '' }),
      el('td', { class: 'num', textContent: r.max_rss_bytes !== undefined ? formatBytes(r.max_rss_bytes) : '' }),
      el('td', {}, r.ended_at
        ? outcomeEl(r)
        : el('span', { class: 'badge', dataset: { state: 'running' }, textContent: 'running' })),
      el('td', { class: 'num', textContent: r.pid ? String(r.pid) : '' }));
    tbody.append(tr);
  }
  $('#no-runs').hidden = current.runs.length > 0;
  $('#runs').hidden = current.runs.length === 0;
}

// onRunClick shows the output of the run clicked, or of the latest again.
export function onRunClick(ev) {
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

function formatSeconds(s) {
  return s < 10 ? s.toFixed(2) + ' s' : formatDuration(s * 1000);
}

// sampleUsage reads what the open job's running run costs, for its charts,
// while the page is open and can be seen; a job that does not run is a gap.
// One read at a time: samples stay in the order they were taken.
let sampling = false;
export async function sampleUsage() {
  if (sampling || !current || current.missing || document.visibilityState !== 'visible' || $('#job-view').hidden) return;
  const name = current.name;
  let u = null;
  sampling = true;
  try {
    u = await apiJSON('GET', jobPath(name) + '/usage');
  } catch (e) {
    if (!(e instanceof APIError && (e.code === 'not_running' || e.code === 'not_found'))) throw e;
  } finally {
    sampling = false;
  }
  if (!current || current.name !== name) return;
  const now = Date.now();
  current.samples.push({ t: now, cpu: u ? cpuPercent(current.last, u) : null, rss: u ? u.rss_bytes : null, pss: u ? u.pss_bytes : undefined });
  current.last = u;
  while (current.samples.length && current.samples[0].t < now - USAGE_SPAN) current.samples.shift();
  renderUsage();
}

// renderUsage shows the last reading and draws the charts.
function renderUsage() {
  const samples = current ? current.samples : [];
  const last = samples[samples.length - 1];
  const running = last && last.cpu !== null;
  $('#jv-cpu').textContent = running ? formatPercent(last.cpu) : '—';
  $('#jv-mem').textContent = running ? formatBytes(last.rss) + (last.pss !== undefined ? ' (PSS ' + formatBytes(last.pss) + ')' : '') : '—';
  drawChart($('#chart-cpu'), samples.map((s) => ({ t: s.t, v: s.cpu })),
    { span: USAGE_SPAN, unit: 1, fmt: formatPercent, label: 'CPU over the last five minutes', cls: 'cpu' });
  drawChart($('#chart-mem'), samples.map((s) => ({ t: s.t, v: s.rss })),
    { span: USAGE_SPAN, unit: 1 << 20, fmt: formatBytes, label: 'Memory over the last five minutes', cls: 'mem' });
  $('#jv-cpu-top').textContent = samples.length ? 'scale to ' + $('#chart-cpu svg').dataset.top : '';
  $('#jv-mem-top').textContent = samples.length ? 'scale to ' + $('#chart-mem svg').dataset.top : '';
}

// tick moves the open job's uptime on.
export function tick() {
  if (!current) return;
  const j = jobs.get(current.name);
  $('#jv-uptime').textContent = (j && uptimeOf(j.status)) || '—';
}
