// The hosts of the fleet (GET /hosts): their page (#/hosts), and whether
// the list shows a Host column, which it does only once the database holds
// more than one host: a ProcMan alone has nothing to tell apart.

import { apiJSON } from './api.js';
import { $, el, formatDuration, fullTime } from './format.js';

let hosts = [];

/** whether the fleet has more than one host */
export const isFleet = () => hosts.length > 1;

// loadHosts reads the hosts again and shows them.
export async function loadHosts() {
  hosts = (await apiJSON('GET', '/hosts')) || [];
  renderHosts();
  return hosts;
}

function renderHosts() {
  const now = Date.now();
  $('#hosts tbody').replaceChildren(...hosts.map((h) => {
    const name = el('td', { class: 'name' }, el('span', { textContent: h.name }));
    if (h.this) name.append(' ', el('span', { class: 'muted small', textContent: '(this host)' }));
    return el('tr', { dataset: { host: h.name, alive: String(h.alive) } },
      name,
      el('td', {}, el('span', { class: 'badge', dataset: { state: h.alive ? 'running' : 'unknown' }, textContent: h.alive ? 'alive' : 'dead' })),
      el('td', { class: 'epoch num', dataset: { label: 'Epoch' }, textContent: String(h.epoch) }),
      el('td', { class: 'heartbeat', dataset: { label: 'Heartbeat' }, title: fullTime(h.heartbeat_at),
        textContent: formatDuration(now - new Date(h.heartbeat_at)) + ' ago' }),
      el('td', { class: 'version', dataset: { label: 'Version' }, textContent: h.version || '' }),
      el('td', { class: 'active num', dataset: { label: 'Active jobs' }, textContent: String(h.active_jobs) }),
      el('td', { class: 'advertise mono', dataset: { label: 'Advertised URL' }, textContent: h.advertise || '—' }));
  }));
}
