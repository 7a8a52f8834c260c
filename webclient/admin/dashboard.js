// Overview: the Wi-Fi (with a QR code to print), devices, people, rooms, calls, health, clock.
import {get} from './api.js';
import {clear, formatBytes, formatDuration, formatTime, formatValue, h} from './dom.js';
import {clockWarning} from './clock.js';

const REFRESH_MS = 5000;
let timer = null;
let section = null;

export function show(el) {
  leave();
  section = el;
  if (!section.firstChild) section.append(h('p', {class: 'muted'}, 'Loading…'));
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
}

export function leave() {
  if (timer) clearInterval(timer);
  timer = null;
}

async function refresh() {
  const target = section;
  let data;
  const sent = Date.now();
  try {
    data = await get('dashboard');
  } catch (e) {
    clear(target, h('p', {class: 'status', 'data-kind': 'error'}, e.message));
    return;
  }
  const offset = data.time_ms - (sent + Date.now()) / 2;
  if (target !== section || target.hidden) return;
  clear(target,
    clockWarning(offset, refresh),
    configProblems(data.config_status),
    h('div', {class: 'grid'},
      wifiCard(data.wifi),
      devicesCard(data),
      peopleCard(data.users),
      roomsCard(data.rooms, data.calls),
      healthCard(data),
    ));
}

function configProblems(status) {
  if (!status || !status.errors || !status.errors.length) return null;
  return h('div', {class: 'status', 'data-kind': 'error', testid: 'config-errors'},
    h('p', {}, 'The config file on the SD card has problems; the box is using ',
      status.source === 'last-good' ? 'the last config that worked' : 'safe defaults', ':'),
    h('ul', {}, status.errors.map((m) => h('li', {}, m))));
}

function wifiCard(wifi) {
  return h('div', {class: 'card print-wifi', testid: 'wifi-card'},
    h('h2', {}, 'Wi-Fi'),
    h('dl', {class: 'facts'},
      h('dt', {}, 'Name'), h('dd', {testid: 'wifi-name'}, wifi.ssid),
      h('dt', {}, 'Password'),
      h('dd', {testid: 'wifi-password'}, wifi.open ? 'none (open network)' : wifi.passphrase)),
    h('img', {class: 'qr', src: wifi.qr_url, alt: `QR code to join the Wi-Fi ${wifi.ssid}`,
      width: 200, height: 200, testid: 'wifi-qr'}),
    h('p', {class: 'hint'}, 'Point a phone camera at the code to join. Print it and put it up where people gather.'),
    h('div', {class: 'actions no-print'},
      h('button', {type: 'button', onclick: () => window.print()}, 'Print')));
}

function devicesCard(data) {
  const clients = data.clients || [];
  let body;
  if (data.dev) body = h('p', {class: 'empty'}, 'Development mode: there is no hotspot on this machine.');
  else if (data.clients_problem) body = h('p', {class: 'status', 'data-kind': 'warn'}, data.clients_problem);
  else if (!clients.length) body = h('p', {class: 'empty'}, 'No devices on the Wi-Fi right now.');
  else {
    body = h('ul', {class: 'list', testid: 'client-list'}, clients.map((c) =>
      h('li', {testid: 'client-item'},
        h('span', {class: 'grow'}, c.hostname || 'unnamed device', h('br'),
          h('span', {class: 'muted small mono'}, `${c.ip} · ${c.mac}`)),
        h('span', {class: 'pill'}, c.state === 'reachable' ? 'active' : c.state === 'leased' ? 'may have left' : 'quiet'))));
  }
  return h('div', {class: 'card', testid: 'devices-card'},
    h('h2', {}, `Devices on the Wi-Fi (${clients.length})`), body,
    h('p', {class: 'hint'}, "The Pi's built-in Wi-Fi handles roughly 8 to 19 devices, depending on its firmware. For more, plug in a USB Wi-Fi adapter and set interface in ahoy.txt."));
}

function peopleCard(users) {
  return h('div', {class: 'card', testid: 'people-card'},
    h('h2', {}, `People online (${users.length})`),
    users.length
      ? h('ul', {class: 'list', testid: 'dashboard-user-list'}, users.map((u) =>
        h('li', {testid: 'dashboard-user'}, h('span', {class: 'grow'}, u.name),
          h('span', {class: 'pill'}, u.status === 'busy' ? 'in a call' : u.status))))
      : h('p', {class: 'empty'}, 'Nobody is in the chat right now.'),
    h('p', {}, h('a', {href: '/admin/#people'}, 'Manage people and rooms')));
}

function roomsCard(rooms, calls) {
  return h('div', {class: 'card', testid: 'rooms-card'},
    h('h2', {}, `Rooms (${rooms.length}) and calls (${calls.length})`),
    rooms.length
      ? h('ul', {class: 'list'}, rooms.map((r) =>
        h('li', {testid: 'dashboard-room'}, h('span', {class: 'grow'}, r.name),
          h('span', {class: 'pill'}, `${r.online} online`),
          r.call ? h('span', {class: 'pill'}, 'call') : null)))
      : h('p', {class: 'empty'}, 'No rooms yet.'),
    h('p', {class: 'muted'}, calls.length
      ? `${calls.length} call${calls.length === 1 ? '' : 's'} in progress (${calls.reduce((n, c) => n + c.participants.length, 0)} people).`
      : 'No calls in progress.'));
}

function meter(percent) {
  return h('div', {class: `meter${percent > 90 ? ' high' : ''}`, role: 'presentation'},
    h('span', {style: `width:${Math.min(100, Math.max(0, Number(percent) || 0))}%`}));
}

function healthCard(data) {
  const health = data.health;
  const facts = [
    h('dt', {}, 'Box clock'), h('dd', {testid: 'dashboard-clock'}, formatTime(data.time_ms)),
    h('dt', {}, 'Service running'), h('dd', {}, formatDuration(data.service_uptime_s)),
  ];
  if (health) {
    facts.push(
      h('dt', {}, 'Box up'), h('dd', {}, formatDuration(health.uptime_s)),
      h('dt', {}, 'CPU temperature'),
      h('dd', {}, health.cpu_temperature_c === null ? 'no sensor'
        : `${health.cpu_temperature_c.toFixed(1)} °C${health.cpu_temperature_c >= 80 ? ' (hot: give it air)' : ''}`),
      h('dt', {}, 'Memory'),
      h('dd', {}, `${health.memory_used_percent}% used of ${formatBytes(health.memory_total)}`, meter(health.memory_used_percent)),
      h('dt', {}, 'Storage'),
      h('dd', {}, `${formatBytes(health.disk_free)} free of ${formatBytes(health.disk_total)}`, meter(health.disk_used_percent)),
      h('dt', {}, 'Load'), h('dd', {}, health.load_average.map((x) => x.toFixed(2)).join(' · ')),
    );
  }
  const counts = data.counts || {};
  facts.push(h('dt', {}, 'Messages stored'), h('dd', {}, String(counts.messages_stored ?? '?')));
  const hotspot = Object.entries(data.hotspot || {});
  return h('div', {class: 'card', testid: 'health-card'},
    h('h2', {}, 'Box'),
    h('dl', {class: 'facts'}, facts),
    hotspot.length ? h('h3', {}, 'Hotspot') : null,
    hotspot.length ? h('dl', {class: 'facts', testid: 'hotspot-status'},
      hotspot.map(([k, v]) => [h('dt', {}, k.replaceAll('_', ' ')), h('dd', {}, formatValue(v))])) : null);
}
