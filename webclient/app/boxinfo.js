// What the box tells about itself (/api/info), whether calls can work in this
// browser, and the way to the secure address. The dialogs that show these
// (invite QR codes, how to reach the secure address) are in boxdialogs.js,
// loaded when one is opened: the first screen does without them.

import {state} from './store.js';

let infoPromise = null;

/** The box's /api/info, fetched once; null when unavailable. */
export function boxInfo() {
  if (!infoPromise) {
    infoPromise = fetch('/api/info', {cache: 'no-store'})
      .then((r) => (r.ok ? r.json() : null))
      .catch(() => null);
    infoPromise.then((v) => {
      if (!v) infoPromise = null; // try again next time
    });
  }
  return infoPromise;
}

/**
 * Why calls cannot work in this browser, as a string key, or null when they can.
 * Pages on plain http have no navigator.mediaDevices in every major browser.
 */
export function callBlocker() {
  if (typeof RTCPeerConnection === 'undefined') return 'calls_no_webrtc';
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) return 'calls_need_https';
  return null;
}

/**
 * Go to the secure address as the same person. The two addresses are two
 * origins with separate storage, so the box hands out a one-time code for this
 * device's token; the code travels after `#` (never sent to a server, never in
 * a Referer) and the secure page trades it once (app.js takeHandoff).
 */
export async function openSecureAddress(base) {
  const rest = location.hash.replace(/^#/, '');
  let target = base + location.pathname + location.hash;
  try {
    const r = await fetch('/api/handoff', {method: 'POST', cache: 'no-store', headers: {Authorization: 'Bearer ' + state.token}});
    if (r.ok) {
      const {code} = await r.json();
      target = base + location.pathname + '#handoff=' + encodeURIComponent(code) + (rest ? '&' + rest : '');
    }
  } catch {
    // The box is out of reach: the plain link still gets there, as a new join.
  }
  location.assign(target);
}

/**
 * Whether this browser can open the secure address already: the box's CA is
 * installed, or its certificate warning was accepted before. A certificate the
 * browser refuses makes the request fail; the answer itself is never read.
 */
export async function secureReachable() {
  const info = await boxInfo();
  if (!info?.https_url || location.protocol !== 'http:') return false;
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), 4000);
  try {
    await fetch(info.https_url + '/healthz', {mode: 'no-cors', cache: 'no-store', signal: stop.signal});
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
