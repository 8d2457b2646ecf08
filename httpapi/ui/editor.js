// The job form: a new job, or an edit of one. Save sends a create, or a
// JSON merge patch of only what the form changed, so that a change made
// elsewhere meanwhile stays.

import { APIError, AuthError, apiJSON, jobPath } from './api.js';
import { $, $$, el } from './format.js';
import { FIELDS, envText, sigName } from './fields.js';
import { currentName, refreshJob } from './job.js';
import { reloadQuietly, showSaved } from './list.js';
import { report } from './page.js';

let editing = null; // the definition being edited; null for a new job

const input = (field) => $('#f-' + field);
const fieldBox = (field) => $('#job-form .field[data-field="' + field + '"]');

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
    } else if (spec.kind === 'area' || spec.kind === 'env' || spec.kind === 'json') {
      ctl = el('textarea', { id, name: spec.f, spellcheck: false, placeholder: spec.placeholder || '' });
      ctl.rows = spec.kind === 'env' ? 3 : spec.kind === 'json' && !spec.wide ? 1 : 2;
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
  } else if (spec.kind === 'json') {
    ctl.value = JSON.stringify(v);
  } else if (spec.kind === 'signal') {
    const sig = sigName(v);
    if (![...ctl.options].some((o) => o.value === sig)) ctl.append(el('option', { value: sig, textContent: sig }));
    ctl.value = sig;
  } else {
    ctl.value = String(v);
  }
}

export async function openEditor(name) {
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
  if (spec.kind === 'json') {
    try {
      return JSON.parse(v);
    } catch (e) {
      errors[spec.f] = 'must be JSON: ' + e.message;
      return undefined;
    }
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
      const obj = envPatch(was || {}, now || {});
      if (obj !== undefined) patch[f] = obj;
    } else if (spec.kind === 'json') {
      if (JSON.stringify(was) !== JSON.stringify(now)) patch[f] = now === undefined ? null : replacing(was, now);
    } else if (spec.kind === 'signal' ? sigName(was) !== sigName(now) : was !== now) {
      patch[f] = now === undefined ? null : now;
    }
  }
  return patch;
}

// replacing is the merge patch member that makes was into now: an object's
// members that now lacks are removed (null); anything else is replaced whole.
function replacing(was, now) {
  const isObject = (v) => v && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(was) || !isObject(now)) return now;
  const patch = { ...now };
  for (const k of Object.keys(was)) if (!(k in now)) patch[k] = null;
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
    showSaved(saved);
    if (currentName() === saved.name) refreshJob();
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
  if (e instanceof APIError && e.code === 'invalid' && e.errors.length) {
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
  if (e instanceof APIError && e.code === 'exists' && !editing && fieldError('name', e.message)) {
    input('name').focus();
    return;
  }
  $('#form-error').textContent = e.message || String(e);
}

// initEditor builds the form and sets what its buttons do.
export function initEditor() {
  buildForm();
  $('#job-form').addEventListener('submit', (ev) => saveJob(ev).catch(showSaveError));
  $('#editor-cancel').addEventListener('click', () => $('#editor').close());
  input('type').addEventListener('change', showTypeFields);
}
