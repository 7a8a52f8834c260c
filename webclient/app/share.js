// Files and photos sent straight from phone to phone over an RTCDataChannel
// (a call's, or one made for a single transfer by transfer.js). The box never sees them. Each transfer: a JSON header
// {t: 'file', id, name, size, mime}, the bytes in 16 KiB chunks, then {t: 'end', id}.

import {nameOf} from './store.js';
import {$, el} from './dom.js';
import {t} from './strings.js';

const CHUNK = 16 * 1024;
const HIGH_WATER = 1024 * 1024; // pause sending while this much is buffered
const channels = new Map(); // user id -> RTCDataChannel
const incoming = new Map(); // `${user}|${id}` -> {name, size, mime, parts, got, row}

/** Receive files on `ch`; progress rows go into `box`, `onEnd` runs after each file. */
export function attachChannel(ch, userId, box = '#call-files', onEnd = null) {
  ch.binaryType = 'arraybuffer';
  ch.bufferedAmountLowThreshold = HIGH_WATER / 4;
  channels.set(userId, ch);
  let receiving = null;
  ch.onmessage = (ev) => {
    if (typeof ev.data === 'string') {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.t === 'file') {
        receiving = {...msg, parts: [], got: 0, row: progressRow(t('file_receiving', {name: msg.name}), msg.size, box)};
        incoming.set(userId + '|' + msg.id, receiving);
      } else if (msg.t === 'end' && receiving && receiving.id === msg.id) {
        finish(receiving, userId);
        incoming.delete(userId + '|' + msg.id);
        receiving = null;
        if (onEnd) onEnd();
      }
    } else if (receiving) {
      receiving.parts.push(ev.data);
      receiving.got += ev.data.byteLength;
      setProgress(receiving.row, receiving.got, receiving.size);
    }
  };
  ch.onclose = () => {
    if (channels.get(userId) === ch) channels.delete(userId);
    if (receiving) receiving.row.label.textContent = t('file_failed', {name: receiving.name});
  };
}

export function progressRow(label, size, box = '#call-files') {
  const bar = el('progress', {max: size || 1, value: 0, 'data-testid': 'file-progress'});
  const labelEl = el('span', {text: label});
  const row = el('div', {class: 'file-row', 'data-testid': 'file-transfer'}, labelEl, bar);
  $(box).append(row);
  return {el: row, bar, label: labelEl};
}

function setProgress(row, done, size) {
  row.bar.value = Math.min(done, size);
}

function finish(rec, userId) {
  const blob = new Blob(rec.parts, {type: rec.mime || 'application/octet-stream'});
  const url = URL.createObjectURL(blob);
  rec.row.label.textContent = t('file_received', {name: rec.name}) + ' · ' + (nameOf(userId) || '');
  rec.row.bar.value = rec.size;
  rec.row.el.dataset.done = 'true';
  if (/^image\/(png|jpeg|gif|webp)$/.test(rec.mime)) {
    rec.row.el.append(el('img', {class: 'file-preview', src: url, alt: rec.name}));
  }
  // download attribute: the file is saved, never opened as a page of this site.
  rec.row.el.append(el('a', {class: 'button', href: url, download: rec.name, 'data-testid': 'file-save', text: t('file_save')}));
}

/** Send files to everyone in the call whose data channel is open. */
export async function shareFiles(files) {
  const open = [...channels.entries()].filter(([, ch]) => ch.readyState === 'open');
  if (!open.length) {
    progressRow(t('file_none_peer'), 1);
    return;
  }
  for (const file of files) {
    await Promise.all(open.map(([, ch]) => sendFile(ch, file)));
  }
}

/** Send one file over an open channel, showing progress in `box`. Resolves true once all is sent. */
export async function sendFile(ch, file, box = '#call-files') {
  const id = Math.random().toString(36).slice(2, 10);
  const row = progressRow(t('file_sending', {name: file.name}), file.size, box);
  ch.send(JSON.stringify({t: 'file', id, name: file.name, size: file.size, mime: file.type}));
  let offset = 0;
  try {
    while (offset < file.size) {
      if (ch.bufferedAmount > HIGH_WATER) await drained(ch);
      const buf = await file.slice(offset, offset + CHUNK).arrayBuffer();
      ch.send(buf);
      offset += buf.byteLength;
      setProgress(row, offset, file.size);
    }
    ch.send(JSON.stringify({t: 'end', id}));
    row.label.textContent = t('file_sent', {name: file.name});
    row.el.dataset.done = 'true';
    return true;
  } catch {
    row.label.textContent = t('file_failed', {name: file.name});
    return false;
  }
}

function drained(ch) {
  return new Promise((resolve, reject) => {
    ch.addEventListener('bufferedamountlow', resolve, {once: true});
    ch.addEventListener('close', reject, {once: true});
  });
}

export function clearFiles() {
  $('#call-files').replaceChildren();
  channels.clear();
  incoming.clear();
}
