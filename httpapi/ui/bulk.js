// The list's toolbar: the filter box, kept in the URL, the label chips that
// add to it, and the buttons that start, stop or restart the jobs it shows.

import { AuthError, apiJSON, jobPath } from './api.js';
import { $, $$, el } from './format.js';
import { filterOfHash, hashOf, selectorOf, withTerm } from './filter.js';
import { applyStatus, currentFilter, setFilter, shownNames, statusVersion } from './list.js';
import { report } from './page.js';

const DONE = { start: 'Started', stop: 'Stopped', restart: 'Restarted' };

const jobsWord = (n) => n + (n === 1 ? ' job' : ' jobs');

// filterFromURL shows the filter the URL holds: after a reload, a shared
// link, or a step back.
export function filterFromURL() {
  const text = filterOfHash(location.hash);
  if ($('#filter').value.trim() !== text) $('#filter').value = text;
  showFilter(text);
}

function showFilter(text) {
  setFilter(text);
  $('.crumbs a').href = hashOf(text); // back from a job's page to the list as it was
}

function onInput() {
  const text = $('#filter').value;
  history.replaceState(null, '', hashOf(text)); // one history entry, not one per key
  showFilter(text);
}

function onChipClick(ev) {
  const chip = ev.target.closest('button.chip[data-term]');
  if (!chip) return;
  $('#filter').value = withTerm($('#filter').value, chip.dataset.term);
  onInput();
}

// The buttons act on the jobs shown. A filter of label terms only says what
// a selector says, so one bulk request does it, in the order of the
// dependencies (no filter at all: ?all=1). A filter with words, which no
// selector can say, acts on each job shown by a request of its own, all at
// once: a job's start starts its dependencies first and its stop stops its
// dependents first, there as in a bulk request.
async function bulk(action) {
  const names = shownNames();
  const sel = selectorOf(currentFilter());
  if (!names.length || !confirmed(action, names.length, sel === '')) return;
  const asked = statusVersion();
  let lines;
  if (sel === null) lines = await Promise.all(names.map((name) => one(name, action)));
  else lines = await apiJSON('POST', '/jobs/' + action + (sel === '' ? '?all=1' : '?selector=' + encodeURIComponent(sel)));
  for (const l of lines) {
    if (l.status && l.status.name === l.name) applyStatus(l.status, asked);
  }
  showResult(action, lines);
}

// confirmed asks before a stop or restart of more than one job.
function confirmed(action, n, all) {
  if (action === 'start' || n < 2) return true;
  const what = all ? 'every job (' + n + ')' : 'the ' + n + ' jobs shown';
  const deps = action === 'stop' && !all ? ' Jobs that depend on them are stopped first.' : '';
  return confirm((action === 'stop' ? 'Stop ' : 'Restart ') + what + '?' + deps);
}

// one acts on one job, answering a line as a bulk request's.
async function one(name, action) {
  try {
    return { name, status: await apiJSON('POST', jobPath(name) + '/' + action) };
  } catch (e) {
    if (e instanceof AuthError) throw e;
    if (action === 'start' && e.code === 'running') return { name }; // as a bulk start, which leaves an active job be
    return { name, error: e.message, code: e.code };
  }
}

// showResult says what a bulk action did, and why it failed for each job it failed for.
function showResult(action, lines) {
  const failed = lines.filter((l) => l.error);
  const dependents = lines.filter((l) => l.dependent).length;
  const chosen = lines.length - dependents;
  let text = DONE[action] + ' ' + (chosen - failed.filter((l) => !l.dependent).length) + ' of ' + jobsWord(chosen);
  if (dependents) text += ', and first ' + jobsWord(dependents) + ' that depend on them';
  text += failed.length ? '; failed for ' + failed.length + ':' : '.';
  $('#bulk-summary').textContent = text;
  $('#bulk-failures').replaceChildren(...failed.map((l) => el('li', { dataset: { job: l.name } },
    el('a', { href: '#/job/' + encodeURIComponent(l.name), textContent: l.name }), ': ' + l.error)));
  $('#bulk-result').dataset.failed = String(failed.length > 0);
  $('#bulk-result').hidden = false;
}

async function onBulkClick(ev) {
  const b = ev.target.closest('button[data-bulk]');
  if (!b) return;
  const buttons = $$('#bulk button[data-bulk]');
  for (const x of buttons) {
    x.disabled = true;
    x.dataset.busy = 'true';
  }
  b.classList.add('busy');
  try {
    await bulk(b.dataset.bulk);
  } catch (e) {
    report(e);
  } finally {
    b.classList.remove('busy');
    const none = shownNames().length === 0;
    for (const x of buttons) {
      delete x.dataset.busy;
      x.disabled = none;
    }
  }
}

export function initToolbar() {
  $('#filter').addEventListener('input', onInput);
  $('#jobs').addEventListener('click', onChipClick);
  $('#bulk').addEventListener('click', onBulkClick);
  $('#bulk-close').addEventListener('click', () => { $('#bulk-result').hidden = true; });
}
