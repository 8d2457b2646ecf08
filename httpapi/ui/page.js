// The page's frame: which view shows, the flash line for errors, and the
// badge that says whether live updates come in.

import { AuthError } from './api.js';
import { $ } from './format.js';

export function show(view) {
  for (const id of ['login', 'dashboard', 'hosts-view', 'job-view']) $('#' + id).hidden = id !== view;
}

let flashTimer = 0;
export function flash(message) {
  $('#flash-text').textContent = message;
  $('#flash').hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { $('#flash').hidden = true; }, 10000);
}

// report shows what went wrong, but for the token being asked for and
// requests given up on purpose.
export function report(e) {
  if (e instanceof AuthError || (e && e.name === 'AbortError')) return;
  flash(e && e.message ? e.message : String(e));
}

export function setConn(live, text) {
  const c = $('#conn');
  c.dataset.live = String(live);
  c.textContent = text || (live ? 'live' : 'reconnecting…');
}
