// Logs: what the service did lately, the hotspot's state and the config file's problems.
import {get} from './api.js';
import {clear, el} from '/dom.js';
import {say} from './feedback.js';
import {formatTime, formatValue} from './format.js';

const REFRESH_MS = 5000;
let section = null;
let timer = null;

export function show(screen) {
  leave();
  section = screen;
  clear(section, el('p', {class: 'muted'}, 'Loading…'));
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
}

export function leave() {
  if (timer) clearInterval(timer);
  timer = null;
}

async function refresh() {
  const status = el('p', {class: 'status', hidden: true});
  let data;
  try {
    data = await get('logs');
  } catch (e) {
    clear(section, status);
    say(status, e.message, 'error');
    return;
  }
  const records = data.records.slice().reverse();
  const hotspot = Object.entries(data.hotspot || {});
  const config = data.config_status || {};
  clear(section,
    el('div', {class: 'grid'},
      el('div', {class: 'card'},
        el('h2', {}, 'Hotspot'),
        hotspot.length
          ? el('dl', {class: 'facts', testid: 'log-hotspot'}, hotspot.map(([k, v]) =>
            [el('dt', {}, k.replaceAll('_', ' ')), el('dd', {}, formatValue(v))]))
          : el('p', {class: 'empty'}, 'No hotspot reports (development mode, or the watcher is not running).')),
      el('div', {class: 'card'},
        el('h2', {}, 'Config file'),
        el('p', {}, {file: 'ahoy.txt is in use.', 'last-good': 'ahoy.txt has problems: the last config that worked is in use.',
          defaults: 'No usable ahoy.txt: the safe defaults are in use.'}[config.source] || 'No report from the apply step yet.'),
        (config.errors || []).length ? el('ul', {testid: 'log-config-errors'}, config.errors.map((m) => el('li', {class: 'field-error'}, m))) : null,
        (config.notices || []).length ? el('ul', {}, config.notices.map((m) => el('li', {}, m))) : null)),
    el('div', {class: 'card'},
      el('h2', {}, `Recent events (${records.length})`),
      records.length
        ? el('div', {class: 'table-wrap'}, el('table', {testid: 'log-table'},
          el('thead', {}, el('tr', {}, el('th', {}, 'Time'), el('th', {}, 'Level'), el('th', {}, 'Event'))),
          el('tbody', {}, records.map((r) => el('tr', {'data-level': r.level, testid: 'log-row'},
            el('td', {class: 'small'}, formatTime(r.time * 1000)),
            el('td', {class: 'small'}, r.level.toLowerCase()),
            el('td', {class: 'msg'}, r.message, el('br'), el('span', {class: 'muted small'}, r.logger)))))))
        : el('p', {class: 'empty'}, 'Nothing logged since the service started.')),
    status);
}
