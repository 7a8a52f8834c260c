// The dialogs about the box: the invite QR codes and how to reach the secure
// address when calls are not possible. Loaded when one is first opened.

import {el} from './dom.js';
import {openDialog} from './ui.js';
import {t} from './strings.js';
import {state} from './store.js';
import {boxInfo, openSecureAddress} from './boxinfo.js';

export function qrImage(text, what) {
  return el('img', {class: 'qr-img', src: '/api/qr.svg?text=' + encodeURIComponent(text), alt: t('qr_alt', {what}), width: 220, height: 220, 'data-testid': 'qr'});
}

/** Wi-Fi QR text in the format phone cameras understand. */
function wifiQrText(ssid, pass) {
  const esc = (s) => s.replace(/([\\;,:"])/g, '\\$1');
  return pass ? `WIFI:T:WPA;S:${esc(ssid)};P:${esc(pass)};;` : `WIFI:T:nopass;S:${esc(ssid)};;`;
}

export async function inviteDialog() {
  const info = await boxInfo();
  if (!info) {
    openDialog(t('invite_title'), el('p', {text: t('invite_unavailable')}), {testid: 'invite-dialog'});
    return;
  }
  const parts = [];
  // A withheld password (`open` false, no passphrase) means this device is not on the
  // hotspot: a QR code for an open network would be wrong, so show none.
  if (info.wifi?.ssid && (info.wifi.passphrase || info.wifi.open)) {
    const {ssid, passphrase} = info.wifi;
    parts.push(el('figure', {class: 'qr'},
      qrImage(wifiQrText(ssid, passphrase), t('invite_wifi')),
      el('figcaption', {}, el('strong', {text: t('invite_wifi')}), el('br'),
        el('span', {text: passphrase ? t('invite_wifi_pass', {ssid, pass: passphrase}) : t('invite_wifi_open', {ssid})}))));
  }
  const url = info.https_url || info.http_url || location.origin;
  parts.push(el('figure', {class: 'qr'},
    qrImage(url, t('invite_app')),
    el('figcaption', {}, el('strong', {text: t(parts.length ? 'invite_app_then' : 'invite_app')}), el('br'), el('a', {href: url, text: url}))));
  openDialog(t('invite_title'), parts, {testid: 'invite-dialog'});
}

/** Explain how to get to the secure address; used by the banner and call buttons. */
export async function httpsHelpDialog() {
  const info = await boxInfo();
  const httpsUrl = (info?.https_url || 'https://' + location.hostname) + location.pathname + location.hash;
  const caUrl = info?.ca_url || '/ca.crt';
  openDialog(t('calls_need_https_title'), [
    el('p', {text: t('calls_need_https')}),
    el('a', {class: 'button primary wide', href: httpsUrl, 'data-testid': 'https-link', text: t('calls_open_https'),
      onclick: (ev) => {
        if (!state.token) return; // nobody to carry over yet: the plain link
        ev.preventDefault();
        openSecureAddress(info?.https_url || 'https://' + location.hostname);
      }}),
    el('p', {class: 'small', text: t('calls_warning_hint')}),
    el('a', {class: 'button wide', href: caUrl, download: 'ahoy-ca.crt', 'data-testid': 'ca-link', text: t('calls_get_ca')}),
    el('ul', {class: 'small muted'}, el('li', {text: t('calls_ca_android')}), el('li', {text: t('calls_ca_ios')})),
  ], {testid: 'https-dialog'});
}
