// Logs: what the service did lately, the hotspot's state and the config file's problems.
import {get} from './api.js';
import {clear, formatTime, formatValue, h, say} from './dom.js';

const REFRESH_MS = 5000;
let section = null;
let timer = null;

export function show(el) {
  leave();
  section = el;
  clear(section, h('p', {class: 'muted'}, 'Loading…'));
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
}

export function leave() {
  if (timer) clearInterval(timer);
  timer = null;
}

async function refresh() {
  const status = h('p', {class: 'status', hidden: true});
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
    h('div', {class: 'grid'},
      h('div', {class: 'card'},
        h('h2', {}, 'Hotspot'),
        hotspot.length
          ? h('dl', {class: 'facts', testid: 'log-hotspot'}, hotspot.map(([k, v]) =>
            [h('dt', {}, k.replaceAll('_', ' ')), h('dd', {}, formatValue(v))]))
          : h('p', {class: 'empty'}, 'No hotspot reports (development mode, or the watcher is not running).')),
      h('div', {class: 'card'},
        h('h2', {}, 'Config file'),
        h('p', {}, {file: 'ahoy.txt is in use.', 'last-good': 'ahoy.txt has problems: the last config that worked is in use.',
          defaults: 'No usable ahoy.txt: the safe defaults are in use.'}[config.source] || 'No report from the apply step yet.'),
        (config.errors || []).length ? h('ul', {testid: 'log-config-errors'}, config.errors.map((m) => h('li', {class: 'field-error'}, m))) : null,
        (config.notices || []).length ? h('ul', {}, config.notices.map((m) => h('li', {}, m))) : null)),
    h('div', {class: 'card'},
      h('h2', {}, `Recent events (${records.length})`),
      records.length
        ? h('div', {class: 'table-wrap'}, h('table', {testid: 'log-table'},
          h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Level'), h('th', {}, 'Event'))),
          h('tbody', {}, records.map((r) => h('tr', {'data-level': r.level, testid: 'log-row'},
            h('td', {class: 'small'}, formatTime(r.time * 1000)),
            h('td', {class: 'small'}, r.level.toLowerCase()),
            h('td', {class: 'msg'}, r.message, h('br'), h('span', {class: 'muted small'}, r.logger)))))))
        : h('p', {class: 'empty'}, 'Nothing logged since the service started.')),
    status);
}
