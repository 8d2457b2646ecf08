// How the dashboard shows things: durations, times, how a run ended, and
// the small DOM helpers every view uses.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

export function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'class') e.className = v;
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pad(n) { return String(n).padStart(2, '0'); }

export function formatDuration(ms) {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return d + 'd ' + h + 'h ' + pad(m) + 'm';
  if (h) return h + 'h ' + pad(m) + 'm ' + pad(s) + 's';
  if (m) return m + 'm ' + pad(s) + 's';
  return s + 's';
}

export function formatTime(iso) {
  if (!iso) return '';
  const t = new Date(iso);
  if (isNaN(t)) return '';
  const now = new Date();
  const hm = pad(t.getHours()) + ':' + pad(t.getMinutes());
  if (t.toDateString() === now.toDateString()) return hm + ':' + pad(t.getSeconds());
  const day = MONTHS[t.getMonth()] + ' ' + t.getDate();
  return (t.getFullYear() === now.getFullYear() ? day : day + ' ' + t.getFullYear()) + ', ' + hm;
}

export function fullTime(iso) {
  const t = new Date(iso);
  return isNaN(t) ? '' : t.toString();
}

// howEnded describes a finished run (a status's last_run or a run).
export function howEnded(r) {
  let s = r.outcome || 'ended';
  if (r.exit_code !== undefined && r.exit_code !== null) s += ' (' + r.exit_code + ')';
  else if (r.signal) s += ' (' + r.signal + ')';
  return s;
}

// failed reports whether a finished run went wrong: a non-zero exit code,
// a signal it did not ask for, or no clean end at all.
export function failed(r) {
  switch (r.outcome) {
    case 'exited': return (r.exit_code !== undefined && r.exit_code !== null && r.exit_code !== 0) || !!r.signal;
    case 'killed': case 'failed_to_start': case 'unknown': return true;
    default: return false;
  }
}

export function outcomeEl(r) {
  return el('span', { class: 'outcome', dataset: { outcome: r.outcome || '', failed: String(failed(r)) }, textContent: howEnded(r) });
}

export function uptimeOf(st) {
  if (!st || st.state !== 'running' || !st.since) return '';
  return formatDuration(Date.now() - new Date(st.since).getTime());
}

// setHealth shows what a job's health check says of its run, in a badge
// hidden while there is nothing to say (no check, or no run running).
export function setHealth(e, st) {
  const h = (st && st.health) || '';
  e.hidden = !h;
  e.textContent = h;
  e.dataset.health = h;
  e.title = h && st.health_failure ? 'Last failed check: ' + st.health_failure : '';
}

// waitingText says what a start waits for: "waiting for db (healthy)".
export function waitingText(w) {
  const names = Object.keys(w || {}).sort();
  return names.length ? 'waiting for ' + names.map((n) => n + ' (' + w[n] + ')').join(', ') : '';
}

// setBadge shows a state; an exited job whose last run failed is marked so.
export function setBadge(e, state, st) {
  e.textContent = state || '…';
  e.dataset.state = state || '';
  e.dataset.failed = String(state === 'exited' && !!st && !!st.last_run && failed(st.last_run));
}

// cpuPercent is the share of one CPU a job used, from two readings of its
// usage (GET /jobs/usage): between two readings of one run, the growth of its
// CPU time over that of its age; at a run's first reading, its CPU time over
// its age.
export function cpuPercent(prev, u) {
  const cpu = u.cpu_user_seconds + u.cpu_system_seconds;
  if (prev && prev.run === u.run && u.age_seconds > prev.age_seconds) {
    return 100 * (cpu - prev.cpu_user_seconds - prev.cpu_system_seconds) / (u.age_seconds - prev.age_seconds);
  }
  return u.age_seconds > 0 ? 100 * cpu / u.age_seconds : 0;
}

export function formatPercent(p) {
  return (p < 10 ? p.toFixed(1) : p.toFixed(0)) + '%';
}

// formatBytes is a size in binary units: 512 KiB, 4.1 MiB, 1.25 GiB.
export function formatBytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1 << 20) return (n / 1024).toFixed(0) + ' KiB';
  if (n < 1 << 30) return (n / (1 << 20)).toFixed(1) + ' MiB';
  return (n / (1 << 30)).toFixed(2) + ' GiB';
}
