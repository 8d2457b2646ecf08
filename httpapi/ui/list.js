// The jobs as the dashboard knows them, and the table that lists them.
// Views that show a job's status too (the job page) hear of every change
// through onStatusChange.

import { APIError, apiJSON, jobPath } from './api.js';
import { $, $$, cpuPercent, el, formatBytes, formatPercent, formatTime, fullTime, outcomeEl, setBadge, setHealth, uptimeOf, waitingText } from './format.js';
import { matches, parseFilter, termOf } from './filter.js';
import { isFleet, loadHosts } from './hosts.js';
import { report } from './page.js';

// ACTIVE are the states in which a job can be stopped but not started.
const ACTIVE = new Set(['starting', 'running', 'retrying', 'stopping']);

/** name -> {def: job definition, status: job status} */
export const jobs = new Map();
/** name -> the dashboard's <tr> */
const rows = new Map();
/** name -> {reading: the last of GET /jobs/usage, cpu: percent of a CPU}, for the running jobs */
const usage = new Map();

const listeners = [];

/** the list's filter (filter.js), and what it shows */
let filter = parseFilter('');

// Statuses come from events and from answers to requests, which may cross:
// an answer read before an event arrived must not undo what the event
// showed. Each status shown gets the next version; a status asked for at
// version v is dropped if the job's shown status is newer than v.
let version = 0;
const shownAt = new Map(); // name -> version of the status shown

// statusVersion is the version to ask a status at.
export const statusVersion = () => version;

function newer(name, asked) {
  return asked !== undefined && (shownAt.get(name) || 0) > asked;
}

function shown(name) {
  shownAt.set(name, ++version);
}

// onStatusChange calls fn(name) whenever the status the dashboard shows for
// a job may have changed; name is null when every job was read again.
export function onStatusChange(fn) {
  listeners.push(fn);
}

function changed(name) {
  for (const fn of listeners) fn(name);
}

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
    el('td', { class: 'name' }, link, el('div', { class: 'cmd' }), el('div', { class: 'why' }), el('div', { class: 'labels' })),
    el('td', { class: 'host', dataset: { label: 'Host' } }),
    el('td', { class: 'state-cell' }, el('span', { class: 'badge state' }), ' ', el('span', { class: 'badge health', hidden: true }),
      el('div', { class: 'waiting muted small' })),
    el('td', { class: 'pid num', dataset: { label: 'PID' } }),
    el('td', { class: 'uptime', dataset: { label: 'Uptime' } }),
    el('td', { class: 'cpu num', dataset: { label: 'CPU' } }),
    el('td', { class: 'mem num', dataset: { label: 'Memory' } }),
    el('td', { class: 'restarts num', dataset: { label: 'Restarts' } }),
    el('td', { class: 'last-exit', dataset: { label: 'Last exit' } }),
    el('td', { class: 'next-run', dataset: { label: 'Next run' } }),
    el('td', { class: 'actions' }, actionButtons()));
}

// setButtons enables Start or Stop as the job's state allows, but for a
// button whose request is under way.
export function setButtons(root, st) {
  const active = st && ACTIVE.has(st.state);
  for (const b of $$('button[data-action]', root)) {
    if (b.dataset.busy === 'true') continue;
    if (b.dataset.action === 'start') b.disabled = active;
    if (b.dataset.action === 'stop') b.disabled = !active;
  }
}

export function renderRow(name) {
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
  tr.hidden = !matches(filter, name, def.labels);
  renderLabels($('.labels', tr), def.labels);
  $('.host', tr).textContent = st.host || def.host || '';
  $('.host', tr).title = def.host === '*' ? 'floating: the fleet places it on a live host' : '';
  $('.cmd', tr).textContent = def.command || '';
  $('.cmd', tr).title = def.command || '';
  setBadge($('.state', tr), st.state, st);
  setHealth($('.health', tr), st);
  $('.waiting', tr).textContent = waitingText(st.waiting_for);
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
  renderUsage(name, tr);
  setButtons(tr, st);
}

// renderLabels shows a job's labels as chips, each of which adds itself to
// the filter when clicked.
function renderLabels(box, labels) {
  const terms = Object.keys(labels || {}).sort().map((k) => termOf(k, labels[k]));
  if (box.dataset.terms === terms.join(' ')) return;
  box.dataset.terms = terms.join(' ');
  box.replaceChildren(...terms.map((t) => el('button', {
    type: 'button', class: 'chip', dataset: { term: t }, textContent: t, title: 'Show only the jobs labelled ' + t,
  })));
}

// renderUsage shows a running job's CPU and memory as last read.
function renderUsage(name, tr) {
  const u = usage.get(name);
  const st = (jobs.get(name) || {}).status || {};
  const shown = u && (st.state === 'running' || st.state === 'stopping');
  $('.cpu', tr).textContent = shown ? formatPercent(u.cpu) : '';
  $('.mem', tr).textContent = shown ? formatBytes(u.reading.rss_bytes) : '';
  $('.mem', tr).title = shown ? u.reading.processes + (u.reading.processes === 1 ? ' process' : ' processes') : '';
}

// pollUsage reads what the running jobs cost, while the list is on a page
// someone can see: a hidden tab, or the job page, asks nothing. One read at
// a time, so that a slow answer never lands after a newer one.
let polling = false;
export async function pollUsage() {
  if (polling || document.visibilityState !== 'visible' || $('#dashboard').hidden) return;
  let readings;
  polling = true;
  try {
    readings = await apiJSON('GET', '/jobs/usage');
  } finally {
    polling = false;
  }
  const seen = new Set();
  for (const u of readings || []) {
    const prev = usage.get(u.job);
    usage.set(u.job, { reading: u, cpu: cpuPercent(prev && prev.reading, u) });
    seen.add(u.job);
  }
  for (const name of usage.keys()) {
    if (!seen.has(name)) usage.delete(name);
  }
  for (const [name, tr] of rows) renderUsage(name, tr);
}

export function renderTable() {
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
  $('#jobs').dataset.fleet = String(isFleet());
  $('#no-jobs').hidden = names.length > 0;
  $('#jobs').hidden = names.length === 0;
  renderCount();
}

// setFilter shows only the jobs a filter (as typed) chooses.
export function setFilter(text) {
  filter = parseFilter(text);
  for (const [name, tr] of rows) tr.hidden = !matches(filter, name, (jobs.get(name).def || {}).labels);
  renderCount();
}

export const currentFilter = () => filter;

// shownNames are the jobs the filter chooses, sorted.
export function shownNames() {
  return Array.from(jobs.keys()).sort().filter((name) => matches(filter, name, (jobs.get(name).def || {}).labels));
}

function renderCount() {
  const n = shownNames().length;
  const filtered = filter.text.trim() !== '';
  $('#filter-count').textContent = filtered ? n + ' of ' + jobs.size + (jobs.size === 1 ? ' job' : ' jobs') : '';
  $('#filter-error').textContent = filter.bad.length
    ? 'Not a label term: ' + filter.bad.join(' ') + ' (use key=value, key!=value or !key)' : '';
  $('#no-match').hidden = n > 0 || jobs.size === 0;
  for (const b of $$('#bulk button[data-bulk]')) {
    if (b.dataset.busy !== 'true') b.disabled = n === 0;
  }
}

// loadAll reads every job again.
export async function loadAll() {
  const asked = version;
  const [defs, states] = await Promise.all([apiJSON('GET', '/jobs'), apiJSON('GET', '/jobs/states'), loadHosts()]);
  const byName = new Map((states || []).map((s) => [s.name, s]));
  const before = new Map(jobs);
  jobs.clear();
  for (const def of defs || []) {
    const kept = newer(def.name, asked) && before.has(def.name);
    jobs.set(def.name, { def, status: kept ? before.get(def.name).status : byName.get(def.name) || null });
    if (!kept) shown(def.name);
  }
  renderTable();
  changed(null);
}

export function reloadQuietly() {
  loadAll().catch(report);
}

// applyStatus shows a job's new status: from an event, or from an answer to
// a request made at version asked.
export function applyStatus(st, asked) {
  const j = jobs.get(st.name);
  if (!j || newer(st.name, asked)) return;
  j.status = st;
  shown(st.name);
  renderRow(st.name);
  changed(st.name);
}

// putJob keeps a job's definition and status as read by a view of its own.
// (status asked for at version asked).
export function putJob(def, status, asked) {
  const j = jobs.get(def.name);
  if (j && newer(def.name, asked)) status = j.status;
  else shown(def.name);
  jobs.set(def.name, { def, status });
  renderRow(def.name);
  renderCount(); // its labels may have changed
}

// showSaved shows a definition just saved here (created, or edited).
export function showSaved(def) {
  const j = jobs.get(def.name);
  jobs.set(def.name, { def, status: j ? j.status : null });
  renderTable();
  refreshSoon(def.name);
}

// refreshSoon re-reads one job's status a moment after a change made here
// (a save), once for a burst of them.
const refreshTimers = new Map();
function refreshSoon(name) {
  clearTimeout(refreshTimers.get(name));
  refreshTimers.set(name, setTimeout(async () => {
    refreshTimers.delete(name);
    try {
      const asked = version;
      applyStatus(await apiJSON('GET', jobPath(name) + '/state'), asked);
    } catch (e) {
      if (e instanceof APIError && e.code === 'not_found') reloadQuietly();
      else report(e);
    }
  }, 150));
}

// control starts, stops or restarts a job.
export async function control(name, action) {
  const asked = version;
  applyStatus(await apiJSON('POST', jobPath(name) + '/' + action), asked);
}

// remove deletes a job.
export async function remove(name) {
  await apiJSON('DELETE', '/job/delete/' + encodeURIComponent(name));
  jobs.delete(name);
  renderTable();
}

// rerender shows a job as known, as after a request that changed nothing.
export function rerender(name) {
  if (!jobs.has(name)) return;
  renderRow(name);
  changed(name);
}

// tick moves the uptimes of the running jobs on.
export function tick() {
  for (const [name, tr] of rows) {
    const j = jobs.get(name);
    if (j && j.status && j.status.state === 'running') $('.uptime', tr).textContent = uptimeOf(j.status);
  }
}
