// Clock: the Pi has no battery-backed clock, so the box may be wrong after a power cut.
import {get, post} from './api.js';
import {clear, el} from '/dom.js';
import {say} from './feedback.js';
import {formatTime} from './format.js';

export const TOLERANCE_MS = 60 * 1000;
let timer = null;

/** How far the box's clock is ahead of this device's (ms), from one timed request. */
export async function measureOffset() {
  const sent = Date.now();
  const data = await get('clock');
  const received = Date.now();
  return data.time_ms - (sent + received) / 2;
}

export function describeOffset(offset) {
  const seconds = Math.round(Math.abs(offset) / 1000);
  const amount = seconds < 120 ? `${seconds} seconds`
    : seconds < 7200 ? `${Math.round(seconds / 60)} minutes`
    : seconds < 172800 ? `${Math.round(seconds / 3600)} hours`
    : `${Math.round(seconds / 86400)} days`;
  return `The box's clock is ${amount} ${offset > 0 ? 'ahead of' : 'behind'} this device.`;
}

/** Set the box's clock to this device's; resolves to the box's answer. */
export function setFromBrowser() {
  return post('clock', {time_ms: Date.now()});
}

/** A warning with a fix button, or null when the clocks agree. */
export function clockWarning(offset, onFixed) {
  if (Math.abs(offset) <= TOLERANCE_MS) return null;
  const status = el('p', {class: 'status', hidden: true});
  const button = el('button', {type: 'button', class: 'primary', testid: 'clock-fix'},
    'Set the box clock from this device');
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const r = await setFromBrowser();
      say(status, r.message, r.applied ? 'ok' : 'info');
      if (onFixed) onFixed();
    } catch (e) {
      say(status, e.message, 'error');
    } finally {
      button.disabled = false;
    }
  });
  return el('div', {class: 'status', 'data-kind': 'warn', testid: 'clock-warning'},
    el('p', {}, describeOffset(offset),
      ' Messages get wrong times and certificates may look invalid until it is set.'),
    button, status);
}

export function show(section) {
  leave();
  const boxTime = el('p', {class: 'big-clock', testid: 'box-time'}, '…');
  const hereTime = el('p', {class: 'muted', testid: 'browser-time'});
  const warning = el('div');
  const status = el('p', {class: 'status', role: 'status', testid: 'clock-status', hidden: true});
  const button = el('button', {type: 'button', class: 'primary', testid: 'clock-set'},
    'Set the box clock from this device');
  let offset = 0;

  async function measure() {
    try {
      offset = await measureOffset();
      clear(warning, clockWarning(offset, measure));
      if (Math.abs(offset) <= TOLERANCE_MS) {
        clear(warning, el('p', {class: 'status', 'data-kind': 'ok', testid: 'clock-ok'},
          'The box clock agrees with this device (within a minute).'));
      }
    } catch (e) {
      say(status, e.message, 'error');
    }
  }

  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const r = await setFromBrowser();
      say(status, r.message, r.applied ? 'ok' : 'info');
      await measure();
    } catch (e) {
      say(status, e.message, 'error');
    } finally {
      button.disabled = false;
    }
  });

  const tick = () => {
    boxTime.textContent = formatTime(Date.now() + offset);
    hereTime.textContent = `This device: ${formatTime(Date.now())}`;
  };
  clear(section, el('div', {class: 'card'},
    el('h2', {}, 'Clock'),
    el('p', {class: 'muted'}, 'The box has no battery-backed clock. After a power cut it starts from the last time it saved, so it can be behind. Set it from a phone or laptop whose time is right.'),
    el('p', {class: 'muted small'}, 'The box clock:'),
    boxTime, hereTime, warning,
    el('div', {class: 'actions'}, button), status));
  tick();
  timer = setInterval(tick, 1000);
  measure();
}

export function leave() {
  if (timer) clearInterval(timer);
  timer = null;
}
