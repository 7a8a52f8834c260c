// Notifications while the app is open: a beep made with WebAudio (no sound
// files to download), the unread count in the tab title, and the Notification
// API when the person allowed it.

import {state, on, totalUnread} from './store.js';
import {t} from './strings.js';

let audio = null;
let ringTimer = null;

function ctx() {
  if (!audio) {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    audio = new AC();
  }
  if (audio.state === 'suspended') audio.resume().catch(() => {});
  return audio;
}

/** Browsers only let a page play sound after a tap: unlock audio on the first one. */
export function initNotify() {
  const unlock = () => {
    ctx();
    document.removeEventListener('pointerdown', unlock);
    document.removeEventListener('keydown', unlock);
  };
  document.addEventListener('pointerdown', unlock);
  document.addEventListener('keydown', unlock);
  on('unread', updateTitle);
  on('welcome', updateTitle);
  updateTitle();
}

function tone(freq, start, dur, gain = 0.12) {
  const ac = ctx();
  if (!ac || ac.state !== 'running') return;
  const osc = ac.createOscillator();
  const g = ac.createGain();
  osc.frequency.value = freq;
  osc.type = 'sine';
  const t0 = ac.currentTime + start;
  g.gain.setValueAtTime(0, t0);
  g.gain.linearRampToValueAtTime(gain, t0 + 0.01);
  g.gain.exponentialRampToValueAtTime(0.0001, t0 + dur);
  osc.connect(g).connect(ac.destination);
  osc.start(t0);
  osc.stop(t0 + dur + 0.05);
}

export function beep() {
  if (!state.prefs.sound) return;
  tone(880, 0, 0.12);
  tone(1320, 0.13, 0.18);
}

/** Repeating ring: `incoming` for the callee, a softer ringback for the caller. */
export function startRing(incoming) {
  stopRing();
  const ring = () => {
    if (incoming) {
      tone(660, 0, 0.3, 0.15);
      tone(880, 0.35, 0.3, 0.15);
    } else {
      tone(440, 0, 0.9, 0.06);
    }
  };
  ring();
  ringTimer = setInterval(ring, incoming ? 1500 : 3000);
  if (incoming && navigator.vibrate) navigator.vibrate([300, 200, 300]);
}

export function stopRing() {
  clearInterval(ringTimer);
  ringTimer = null;
}

export function updateTitle() {
  const n = totalUnread();
  document.title = n ? `(${n}) ${t('app_name')}` : t('app_name');
}

export function notificationsSupported() {
  return 'Notification' in window && window.isSecureContext;
}

export async function askPermission() {
  if (!notificationsSupported()) return 'unsupported';
  if (Notification.permission === 'default') return Notification.requestPermission();
  return Notification.permission;
}

/** Show a system notification when the page is hidden and the person allowed it. */
export function systemNotify(title, body, tag, onClick) {
  if (!notificationsSupported() || Notification.permission !== 'granted' || !document.hidden) return;
  try {
    const n = new Notification(title, {body, tag, icon: '/icons/icon-192.png'});
    n.onclick = () => {
      window.focus();
      n.close();
      if (onClick) onClick();
    };
  } catch {
    // Android Chrome only allows notifications from a service worker.
    navigator.serviceWorker?.ready.then((reg) => reg.showNotification(title, {body, tag, icon: '/icons/icon-192.png'})).catch(() => {});
  }
}
