// A file or photo sent to one online person outside a call, loaded on first
// use. The box only relays the set-up (`signal` without `call`); the bytes go
// phone to phone over a data channel. The receiver is asked first.
//
// Signal data: {transfer: id, ask: {name, size, mime}} → {transfer, accept: true|false}
// → {transfer, description} / {transfer, candidate} both ways, then share.js's
// file framing on the channel.

import {state, nameOf, newId} from './store.js';
import {send} from './net.js';
import {$, el} from './dom.js';
import {openDialog, closeDialog, toast} from './ui.js';
import {attachChannel, sendFile, progressRow} from './share.js';
import {beep} from './notify.js';
import {t} from './strings.js';

const transfers = new Map(); // id -> {peer, pc, file?, row?, queue}
const BOX = '#transfers';

function panel() {
  let p = $(BOX);
  if (!p) {
    p = el('section', {id: 'transfers', class: 'transfers', 'data-testid': 'transfers', 'aria-live': 'polite'},
      el('header', {}, el('strong', {text: t('transfers_title')}),
        el('button', {class: 'icon', type: 'button', 'aria-label': t('close'), title: t('close'), 'data-testid': 'transfers-close', onclick: () => p.remove(), text: '×'})));
    document.body.append(p);
  }
  return p;
}

function sizeText(n) {
  return n < 1024 * 1024 ? Math.max(1, Math.round(n / 1024)) + ' KB' : (n / 1024 / 1024).toFixed(1) + ' MB';
}

function signal(tr, data) {
  send({type: 'signal', to: tr.peer, data: {transfer: tr.id, ...data}});
}

function connect(tr) {
  const pc = new RTCPeerConnection({iceServers: state.iceServers});
  tr.pc = pc;
  pc.onicecandidate = ({candidate}) => {
    if (candidate) signal(tr, {candidate: candidate.toJSON()});
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'failed') finish(tr);
  };
  const ch = pc.createDataChannel('file', {negotiated: true, id: 0, ordered: true});
  ch.binaryType = 'arraybuffer';
  ch.onclose = () => finish(tr);
  return ch;
}

function finish(tr) {
  transfers.delete(tr.id);
  setTimeout(() => tr.pc?.close(), 300);
}

/** Let the person pick a file and send it to `userId`. */
export function pickAndSend(userId) {
  if (!state.users.has(userId)) {
    toast(t('file_offline', {name: nameOf(userId) || t('someone')}));
    return;
  }
  if (typeof RTCPeerConnection === 'undefined') {
    toast(t('calls_no_webrtc'));
    return;
  }
  const input = el('input', {type: 'file', hidden: true, 'data-testid': 'transfer-input'});
  input.addEventListener('change', () => {
    const file = input.files[0];
    input.remove();
    if (file) sendTo(userId, file);
  });
  document.body.append(input);
  input.click();
}

export function sendTo(userId, file) {
  panel();
  const tr = {id: newId('t-'), peer: userId, file, queue: Promise.resolve(), outgoing: true};
  tr.row = progressRow(t('file_waiting', {name: nameOf(userId) || t('someone'), file: file.name}), file.size, BOX);
  transfers.set(tr.id, tr);
  signal(tr, {ask: {name: file.name, size: file.size, mime: file.type}});
}

function ask(tr, info) {
  const who = nameOf(tr.peer) || t('someone');
  beep();
  const answer = (yes) => {
    tr.answered = true;
    closeDialog();
    signal(tr, {accept: yes});
    if (!yes) {
      transfers.delete(tr.id);
      return;
    }
    panel();
    const ch = connect(tr);
    attachChannel(ch, tr.peer, BOX, () => finish(tr));
  };
  openDialog(t('file_offer_title'), [
    el('p', {'data-testid': 'transfer-offer', text: t('file_offer', {name: who, file: String(info.name || ''), size: sizeText(Number(info.size) || 0)})}),
    el('div', {class: 'row-buttons'},
      el('button', {class: 'wide', 'data-testid': 'transfer-decline', text: t('call_reject'), onclick: () => answer(false)}),
      el('button', {class: 'primary wide', 'data-testid': 'transfer-accept', text: t('call_accept'), onclick: () => answer(true)})),
  ], {testid: 'transfer-dialog', onClose: () => {
    if (!tr.answered) answer(false);
  }});
}

async function apply(tr, data) {
  if (data.accept === true && tr.outgoing && !tr.pc) {
    tr.row.label.textContent = t('file_sending', {name: tr.file.name});
    const ch = connect(tr);
    ch.onopen = async () => {
      tr.row.el.remove();
      await sendFile(ch, tr.file, BOX);
    };
    await tr.pc.setLocalDescription();
    signal(tr, {description: tr.pc.localDescription.toJSON()});
  } else if (data.accept === false && tr.outgoing) {
    tr.row.label.textContent = t('file_declined', {name: nameOf(tr.peer) || t('someone'), file: tr.file.name});
    transfers.delete(tr.id);
  } else if (data.description && tr.pc) {
    await tr.pc.setRemoteDescription(data.description);
    if (data.description.type === 'offer') {
      await tr.pc.setLocalDescription();
      signal(tr, {description: tr.pc.localDescription.toJSON()});
    }
  } else if (data.candidate && tr.pc) {
    await tr.pc.addIceCandidate(data.candidate).catch(() => {});
  }
}

/** A `signal` with no call: a transfer being offered, answered or set up. */
export function onSignal(msg) {
  const data = msg.data || {};
  const id = typeof data.transfer === 'string' ? data.transfer.slice(0, 64) : null;
  if (!id || !msg.from) return;
  let tr = transfers.get(id);
  if (!tr) {
    if (!data.ask) return;
    tr = {id, peer: msg.from, queue: Promise.resolve(), outgoing: false};
    transfers.set(id, tr);
    ask(tr, data.ask);
    return;
  }
  if (tr.peer !== msg.from) return;
  tr.queue = tr.queue.then(() => apply(tr, data)).catch((err) => console.warn('transfer', err));
}
