// ProcMan dashboard: plain JavaScript modules, no build step, no
// dependencies. This one starts the page: the token, the routes (#/, with
// #/?q=FILTER, #/hosts and #/job/NAME), the buttons, and the event stream that keeps every view live.
//
// api.js     requests to the API, the token
// format.js  durations, times, outcomes, DOM helpers
// page.js    views, the flash line, the live badge
// fields.js  the fields of a job definition
// list.js    the jobs known, and their table
// hosts.js   the hosts of the fleet, and their page
// filter.js  the list's filter: words and label terms
// bulk.js    the filter box, label chips, and start/stop/restart of the jobs shown
// job.js     a job's page: status, usage, runs, output
// chart.js   the job page's charts, in SVG
// editor.js  the job form

import { APIError, AuthError, api, errorOf, forgetToken, hasToken, readStream, tryToken, whenAuthNeeded } from './api.js';
import { $ } from './format.js';
import { filterFromURL, initToolbar } from './bulk.js';
import { initEditor, openEditor } from './editor.js';
import { closeJob, currentName, onRunClick, openJob, refreshJob, refreshRuns, sampleUsage, stopLog, tick as tickJob } from './job.js';
import { loadHosts } from './hosts.js';
import { applyStatus, control, jobs, loadAll, pollUsage, reloadQuietly, remove, rerender, tick as tickList } from './list.js';
import { report, setConn, show } from './page.js';

const RELOAD_EVERY = 20000; // full refresh, for jobs created or deleted elsewhere
const USAGE_EVERY = 2000; // the list's CPU and memory; the job page samples every second

let askingToken = false;

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
  if (!await tryToken(candidate)) {
    $('#login-error').textContent = 'The token was refused.';
    $('#token').select();
    return;
  }
  askingToken = false;
  $('#login-error').textContent = '';
  start();
}

// ---------------------------------------------------------------- routes

function route() {
  if (askingToken) return;
  const m = /^#\/job\/(.+)$/.exec(location.hash);
  if (m) {
    let name = '';
    try {
      name = decodeURIComponent(m[1]);
    } catch (_) { /* malformed escape: no job has that name */ }
    openJob(name || m[1]);
  } else if (location.hash === '#/hosts') {
    closeJob();
    show('hosts-view');
    loadHosts().catch(report);
  } else {
    closeJob();
    filterFromURL();
    show('dashboard');
    pollUsage().catch(report);
  }
}

// ---------------------------------------------------------------- buttons

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
      await remove(name);
      if (currentName() === name) location.hash = '#/';
    } else {
      await control(name, action);
    }
  } catch (e) {
    report(e);
  } finally {
    delete button.dataset.busy;
    button.classList.remove('busy');
    button.disabled = false;
    rerender(name);
  }
}

function onActionClick(ev) {
  const b = ev.target.closest('button[data-action]');
  if (!b) return;
  const name = b.closest('[data-job]') ? b.closest('[data-job]').dataset.job : currentName();
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
    if (currentName()) refreshJob();
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
    if (currentName()) refreshJob();
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
  if (currentName() === name) refreshRuns(true);
}

// ---------------------------------------------------------------- start

function start() {
  askingToken = false;
  $('#new-job').hidden = false;
  $('#forget-token').hidden = !hasToken();
  route();
  connectEvents();
}

function boot() {
  whenAuthNeeded(askToken);
  initEditor();
  initToolbar();
  $('#login-form').addEventListener('submit', (ev) => submitToken(ev).catch(report));
  $('#forget-token').addEventListener('click', () => {
    forgetToken();
    location.reload();
  });
  $('#flash-close').addEventListener('click', () => { $('#flash').hidden = true; });
  $('#new-job').addEventListener('click', () => openEditor(null));
  $('#new-job-empty').addEventListener('click', () => openEditor(null));
  $('#jobs').addEventListener('click', onActionClick);
  $('#jv-actions').addEventListener('click', onActionClick);
  $('#runs').addEventListener('click', onRunClick);
  window.addEventListener('hashchange', route);
  setInterval(() => {
    tickList();
    tickJob();
    if (!askingToken) sampleUsage().catch(report);
  }, 1000);
  // Usage is asked for only while someone can see it (pollUsage and
  // sampleUsage check), and at once when the page comes back into view.
  setInterval(() => {
    if (askingToken) return;
    pollUsage().catch(report);
    if (!$('#hosts-view').hidden && document.visibilityState === 'visible') loadHosts().catch(report); // heartbeats move on
  }, USAGE_EVERY);
  document.addEventListener('visibilitychange', () => {
    if (!askingToken && document.visibilityState === 'visible') pollUsage().catch(report);
  });
  setInterval(() => {
    if (!askingToken && document.visibilityState === 'visible') reloadQuietly();
  }, RELOAD_EVERY);
  start();
}

boot();
