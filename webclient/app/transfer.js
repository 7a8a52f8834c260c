// A file or photo sent to one online person outside a call, loaded on first
// use. The box only relays the set-up (`signal` without `call`); the bytes go
// phone to phone over a data channel. The receiver is asked first.
//
// Signal data: {transfer: id, ask: {name, size, mime}} → {transfer, accept: true|false}
// → {transfer, description} / {transfer, candidate} both ways (peer.js: the sender
// offers first, then either side may renegotiate, e.g. to restart ICE), then
// share.js's file framing on the channel.

import {state, nameOf, newId} from './store.js';
import {send} from './net.js';
import {$, el} from './dom.js';
import {openDialog, closeDialog, toast} from './ui.js';
import {attachChannel, sendFile, progressRow} from './share.js';
import {beep} from './notify.js';
import {t} from './strings.js';
import {Peer} from './peer.js';

const transfers = new Map(); // id -> {id, userId, outgoing, file?, row?, peer?, channel?}
const BOX = '#transfers';
const GIVE_UP_MS = 20000; // how long a failed connection may take to come back after its ICE restart

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
  send({type: 'signal', to: tr.userId, data: {transfer: tr.id, ...data}});
}

/** The connection for one transfer; the file goes over its one data channel. */
function connect(tr) {
  tr.peer = new Peer({
    polite: !tr.outgoing,
    offerer: tr.outgoing,
    iceServers: state.iceServers,
    signal: (data) => signal(tr, data),
    setup: (pc) => {
      const ch = pc.createDataChannel('file', {negotiated: true, id: 0, ordered: true});
      ch.binaryType = 'arraybuffer';
      tr.channel = ch;
      if (tr.outgoing) {
        ch.onopen = async () => {
          tr.row.el.remove();
          await sendFile(ch, tr.file, BOX);
        };
      } else {
        attachChannel(ch, tr.userId, BOX, () => finish(tr));
      }
      ch.addEventListener('close', () => tr.channel === ch && finish(tr));
    },
    onState: (s) => {
      // A failed connection restarts ICE (peer.js); give up if it does not come back.
      if (s === 'connected') {
        clearTimeout(tr.giveUp);
        tr.giveUp = null;
      } else if (s === 'failed' && !tr.giveUp) {
        tr.giveUp = setTimeout(() => finish(tr), GIVE_UP_MS);
      }
    },
  });
}

function finish(tr) {
  clearTimeout(tr.giveUp);
  transfers.delete(tr.id);
  setTimeout(() => tr.peer?.close(), 300);
}

/** The connections of the transfers under way (for tests). */
export function peerConnections() {
  return [...transfers.values()].filter((tr) => tr.peer).map((tr) => tr.peer.pc);
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
  const tr = {id: newId('t-'), userId, file, outgoing: true};
  tr.row = progressRow(t('file_waiting', {name: nameOf(userId) || t('someone'), file: file.name}), file.size, BOX);
  transfers.set(tr.id, tr);
  signal(tr, {ask: {name: file.name, size: file.size, mime: file.type}});
}

function ask(tr, info) {
  const who = nameOf(tr.userId) || t('someone');
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
    connect(tr);
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

function apply(tr, data) {
  if (data.accept === true && tr.outgoing && !tr.peer) {
    tr.row.label.textContent = t('file_sending', {name: tr.file.name});
    connect(tr);
  } else if (data.accept === false && tr.outgoing) {
    tr.row.label.textContent = t('file_declined', {name: nameOf(tr.userId) || t('someone'), file: tr.file.name});
    transfers.delete(tr.id);
  } else if ((data.description || data.candidate) && tr.peer) {
    tr.peer.receive(data).catch((err) => console.warn('transfer', err));
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
    tr = {id, userId: msg.from, outgoing: false};
    transfers.set(id, tr);
    ask(tr, data.ask);
    return;
  }
  if (tr.userId !== msg.from) return;
  apply(tr, data);
}
