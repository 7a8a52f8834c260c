// Overview: the Wi-Fi (with a QR code to print), devices, people, rooms, calls, health, clock.
import {del, get, post} from './api.js';
import {clear, el} from '/dom.js';
import {confirmInline, say} from './feedback.js';
import {formatBytes, formatDuration, formatTime, formatValue} from './format.js';
import {clockWarning} from './clock.js';

const REFRESH_MS = 5000;
let timer = null;
let section = null;

export function show(screen) {
  leave();
  section = screen;
  if (!section.firstChild) section.append(el('p', {class: 'muted'}, 'Loading…'));
  refresh();
  timer = setInterval(() => {
    // Never pull the page from under a question being asked.
    if (!section.querySelector('[data-testid="confirm"]')) refresh();
  }, REFRESH_MS);
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
    clear(target, el('p', {class: 'status', 'data-kind': 'error'}, e.message));
    return;
  }
  const offset = data.time_ms - (sent + Date.now()) / 2;
  if (target !== section || target.hidden) return;
  clear(target,
    clockWarning(offset, refresh),
    configProblems(data.config_status),
    el('div', {class: 'grid'},
      data.wifi ? wifiCard(data.wifi) : null,
      lanCard(data.lan),
      siteCard(data.site_link),
      replicationCard(data.site_replication),
      devicesCard(data),
      peopleCard(data.users),
      roomsCard(data.rooms, data.calls),
      healthCard(data),
    ));
}

function configProblems(status) {
  if (!status || !status.errors || !status.errors.length) return null;
  return el('div', {class: 'status', 'data-kind': 'error', testid: 'config-errors'},
    el('p', {}, 'The config file on the SD card has problems; the box is using ',
      status.source === 'last-good' ? 'the last config that worked' : 'safe defaults', ':'),
    el('ul', {}, status.errors.map((m) => el('li', {}, m))));
}

// LAN mode (no Wi-Fi of the box's own), or the network beside the hotspot: the
// addresses people on that network open.
function lanCard(lan) {
  if (!lan) return null;
  return el('div', {class: 'card print-wifi', testid: 'lan-card'},
    el('h2', {}, lan.beside_hotspot ? `Also on the network on ${lan.interface}` : 'On this network'),
    el('p', {}, 'People on the network open one of these addresses (the first works on most phones and laptops; the number always):'),
    lan.links.map((link) => el('figure', {},
      el('img', {src: link.qr_url, alt: `QR code for ${link.url}`, width: 160, height: 160}),
      el('figcaption', {testid: 'lan-url'}, link.url))),
    lan.addresses.length ? null : el('p', {class: 'status', 'data-kind': 'warn'},
      `${lan.interface || 'The uplink'} has no address yet: is the cable in, and does the network have a DHCP server?`));
}

// The chat shared with the other boxes of a site: each box's link, how far behind it
// is, and why a box is refused (another site secret). None when the box is alone.
const LINK_WORDS = {connected: 'linked', connecting: 'connecting', unreachable: 'not reachable',
  refused: 'refused', self: 'this box', removed: 'removed from the site'};
// What removing or adding a box said; kept across refreshes of the card.
const siteStatus = el('p', {class: 'status', role: 'status', testid: 'site-box-status', hidden: true});

async function siteChange(boxId, remove) {
  try {
    if (remove) await del(`site/boxes/${encodeURIComponent(boxId)}`);
    else await post(`site/boxes/${encodeURIComponent(boxId)}`);
    say(siteStatus, remove
      ? `Box ${boxId} was removed from the site: its messages stay; if it comes back it is refused until you add it again.`
      : `Box ${boxId} is part of the site again.`, 'ok');
  } catch (e) {
    say(siteStatus, e.message, 'error');
  }
  await refresh();
}

// A dead box (not reachable) can be removed; a removed box can be added again.
function siteBoxButton(boxId, state) {
  if (!boxId) return null;
  if (state === 'removed') {
    const again = el('button', {type: 'button', testid: 'add-box'}, 'Add again');
    again.addEventListener('click', () => siteChange(boxId, false));
    return again;
  }
  if (state !== 'unreachable') return null;
  const button = el('button', {type: 'button', testid: 'remove-box'}, 'Remove from the site');
  button.addEventListener('click', () => confirmInline(button,
    `Remove box ${boxId} from the site? Its messages stay here.`, 'Yes, remove',
    () => siteChange(boxId, true)));
  return button;
}

function replicationCard(rep) {
  if (!rep) return null;
  const own = rep.own.state === 'connected' ? null : el('p', {class: 'status', 'data-kind': 'error'},
    `This box's own message server is ${LINK_WORDS[rep.own.state] || rep.own.state}: its phones chat, the other boxes get their messages once it is back.`);
  const rows = rep.links.map((l) => el('li', {testid: 'replication-link'},
    `${l.server || l.url}: ${LINK_WORDS[l.state] || l.state}`,
    l.state === 'connected' ? `, ${l.phones} phone${l.phones === 1 ? '' : 's'}, ${l.lag} behind` : '',
    l.problem ? ` (${l.problem})` : '', ' ', siteBoxButton(l.box, l.state)));
  const shown = new Set(rep.links.map((l) => l.box));
  const away = (rep.removed || []).filter((b) => !shown.has(b)).map((b) =>
    el('li', {testid: 'removed-box'}, `${b}: removed from the site `, siteBoxButton(b, 'removed')));
  return el('div', {class: 'card', testid: 'site-replication'},
    el('h2', {}, 'Shared chat'),
    el('p', {}, `Site ${rep.site}, this box ${rep.box}: ${rep.phones} phone${rep.phones === 1 ? '' : 's'} here; ${rep.outbox} change${rep.outbox === 1 ? '' : 's'} waiting to be shared.`),
    own,
    rows.length ? el('ul', {}, rows) : el('p', {class: 'muted'}, 'No other box named yet.'),
    away.length ? el('h3', {}, 'Removed boxes') : null,
    away.length ? el('ul', {}, away) : null,
    siteStatus);
}

// The link to the other boxes of a site, as the backbone heard them (none when alone).
function siteCard(link) {
  if (!link) return null;
  const rows = (link.peers || []).map((p) => el('li', {},
    `${p.name}: phones on ${p.hotspot}, backbone ${p.backbone}`,
    p.same_wifi === false ? ' (another Wi-Fi name or password: phones will not roam to it)' : ''));
  return el('div', {class: 'card', testid: 'site-link'},
    el('h2', {}, 'Site'),
    el('p', {class: link.alone ? 'status' : null, 'data-kind': link.alone ? 'warn' : null,
      testid: 'site-link-text'}, link.text.charAt(0).toUpperCase() + link.text.slice(1)),
    link.box ? el('p', {class: 'muted'}, `This box: phones on ${link.box.hotspot}, backbone ${link.box.backbone}`) : null,
    rows.length ? el('ul', {}, rows) : null,
    link.mesh ? el('h3', {}, 'Wi-Fi mesh') : null,
    link.mesh ? (link.mesh.length ? el('ul', {testid: 'mesh-neighbours'}, link.mesh.map((n) =>
      el('li', {}, `${n.mac}: link quality ${n.quality_percent}%`,
        n.direct ? ' (in reach)' : ` (through ${n.via})`,
        `, heard ${n.last_seen_s.toFixed(1)} s ago`)))
      : el('p', {class: 'status', 'data-kind': 'warn'}, 'No other mesh radio in reach.')) : null,
    (link.problems || []).length ? el('ul', {class: 'status', 'data-kind': 'error'},
      link.problems.map((m) => el('li', {}, m))) : null);
}

function wifiCard(wifi) {
  return el('div', {class: 'card print-wifi', testid: 'wifi-card'},
    el('h2', {}, 'Wi-Fi'),
    el('dl', {class: 'facts'},
      el('dt', {}, 'Name'), el('dd', {testid: 'wifi-name'}, wifi.ssid),
      el('dt', {}, 'Password'),
      el('dd', {testid: 'wifi-password'}, wifi.open ? 'none (open network)' : wifi.passphrase)),
    el('img', {class: 'qr', src: wifi.qr_url, alt: `QR code to join the Wi-Fi ${wifi.ssid}`,
      width: 200, height: 200, testid: 'wifi-qr'}),
    el('p', {class: 'hint'}, 'Point a phone camera at the code to join. Print it and put it up where people gather.'),
    el('div', {class: 'actions no-print'},
      el('button', {type: 'button', onclick: () => window.print()}, 'Print')));
}

function devicesCard(data) {
  const clients = data.clients || [];
  let body;
  if (data.dev) body = el('p', {class: 'empty'}, 'Development mode: there is no hotspot on this machine.');
  else if (data.clients_problem) body = el('p', {class: 'status', 'data-kind': 'warn'}, data.clients_problem);
  else if (!clients.length) body = el('p', {class: 'empty'}, 'No devices on the Wi-Fi right now.');
  else {
    body = el('ul', {class: 'list', testid: 'client-list'}, clients.map((c) =>
      el('li', {testid: 'client-item'},
        el('span', {class: 'grow'}, c.hostname || 'unnamed device', el('br'),
          el('span', {class: 'muted small mono'}, `${c.ip} · ${c.mac}`)),
        el('span', {class: 'pill'}, c.state === 'reachable' ? 'active' : c.state === 'leased' ? 'may have left' : 'quiet'))));
  }
  return el('div', {class: 'card', testid: 'devices-card'},
    el('h2', {}, `Devices on the Wi-Fi (${clients.length})`), body,
    el('p', {class: 'hint'}, "The Pi's built-in Wi-Fi handles roughly 8 to 19 devices, depending on its firmware. For more, plug in a USB Wi-Fi adapter and set interface in ahoy.txt."));
}

const CAPACITY = [
  'Raspberry Pi 4 B: 1000 or more phones, ready 5.0 s after start',
  'Raspberry Pi 3 B: about 200 phones, ready 12.3 s after start',
  'Raspberry Pi Zero 2 W: about 50 phones, ready 16.4 s after start'
];

function peopleCard(users) {
  return el('div', {class: 'card', testid: 'people-card'},
    el('h2', {}, `People online (${users.length})`),
    users.length
      ? el('ul', {class: 'list', testid: 'dashboard-user-list'}, users.map((u) =>
        el('li', {testid: 'dashboard-user'}, el('span', {class: 'grow'}, u.name),
          el('span', {class: 'pill'}, u.status === 'busy' ? 'in a call' : u.status))))
      : el('p', {class: 'empty'}, 'Nobody is in the chat right now.'),
    el('p', {}, el('a', {href: '/admin/#people'}, 'Manage people and rooms')),
    // Measured by `python -m bench --only pi` (docs/benchmarks.md, "Capacity per board").
    el('p', {class: 'hint', testid: 'capacity-hint'},
      'Phones the Ahoy service on one box serves chatting (20 messages a second in all, replies within 0.1 s), estimated with bench/pi.py; the built-in Wi-Fi reaches its own limit (8 to 19 devices) long before: ',
      CAPACITY.join('; '), '.'));
}

function roomsCard(rooms, calls) {
  return el('div', {class: 'card', testid: 'rooms-card'},
    el('h2', {}, `Rooms (${rooms.length}) and calls (${calls.length})`),
    rooms.length
      ? el('ul', {class: 'list'}, rooms.map((r) =>
        el('li', {testid: 'dashboard-room'}, el('span', {class: 'grow'}, r.name),
          el('span', {class: 'pill'}, `${r.online} online`),
          r.call ? el('span', {class: 'pill'}, 'call') : null)))
      : el('p', {class: 'empty'}, 'No rooms yet.'),
    el('p', {class: 'muted'}, calls.length
      ? `${calls.length} call${calls.length === 1 ? '' : 's'} in progress (${calls.reduce((n, c) => n + c.participants.length, 0)} people).`
      : 'No calls in progress.'));
}

function meter(percent) {
  return el('div', {class: `meter${percent > 90 ? ' high' : ''}`, role: 'presentation'},
    el('span', {style: `width:${Math.min(100, Math.max(0, Number(percent) || 0))}%`}));
}

function healthCard(data) {
  const health = data.health;
  const facts = [
    el('dt', {}, 'Box clock'), el('dd', {testid: 'dashboard-clock'}, formatTime(data.time_ms)),
    el('dt', {}, 'Service running'), el('dd', {}, formatDuration(data.service_uptime_s)),
  ];
  if (health) {
    facts.push(
      el('dt', {}, 'Box up'), el('dd', {}, formatDuration(health.uptime_s)),
      el('dt', {}, 'CPU temperature'),
      el('dd', {}, health.cpu_temperature_c === null ? 'no sensor'
        : `${health.cpu_temperature_c.toFixed(1)} °C${health.cpu_temperature_c >= 80 ? ' (hot: give it air)' : ''}`),
      el('dt', {}, 'Memory'),
      el('dd', {}, `${health.memory_used_percent}% used of ${formatBytes(health.memory_total)}`, meter(health.memory_used_percent)),
      el('dt', {}, 'Storage'),
      el('dd', {}, `${formatBytes(health.disk_free)} free of ${formatBytes(health.disk_total)}`, meter(health.disk_used_percent)),
      el('dt', {}, 'Load'), el('dd', {}, health.load_average.map((x) => x.toFixed(2)).join(' · ')),
    );
  }
  const counts = data.counts || {};
  facts.push(el('dt', {}, 'Messages stored'), el('dd', {}, String(counts.messages_stored ?? '?')));
  const hotspot = Object.entries(data.hotspot || {});
  return el('div', {class: 'card', testid: 'health-card'},
    el('h2', {}, 'Box'),
    el('dl', {class: 'facts'}, facts),
    hotspot.length ? el('h3', {}, 'Hotspot') : null,
    hotspot.length ? el('dl', {class: 'facts', testid: 'hotspot-status'},
      hotspot.map(([k, v]) => [el('dt', {}, k.replaceAll('_', ' ')), el('dd', {}, formatValue(v))])) : null);
}
