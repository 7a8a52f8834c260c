// Connect by address: two browsers on the same network chat with no box at
// all. One makes an invitation (a WebRTC offer with a data channel), the other
// pastes it (or scans its QR code) and gives back an answer the same way.
// The text is the session description with every candidate in it (peer.js
// without trickle: the codes are the only signaling), deflated when the browser
// can, in base64. Loaded on first use; after the page is loaded nothing here
// talks to the box.

import {$, el} from './dom.js';
import {showScreen} from './ui.js';
import {qrSvg} from './qr.js';
import {t} from './strings.js';
import {Peer} from './peer.js';

let peer = null;
let channel = null;

function b64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function unb64(text) {
  const s = atob(text);
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

async function through(bytes, transform) {
  return new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(transform)).arrayBuffer());
}

/** A session description as copyable text: "Z" + deflated base64, or "P" + plain base64. */
export async function pack(desc) {
  const bytes = new TextEncoder().encode(JSON.stringify({t: desc.type, s: desc.sdp}));
  if (typeof CompressionStream !== 'undefined') return 'Z' + b64(await through(bytes, new CompressionStream('deflate')));
  return 'P' + b64(bytes);
}

export async function unpack(text) {
  const clean = String(text).replace(/\s+/g, '');
  let bytes = unb64(clean.slice(1));
  if (clean[0] === 'Z') {
    if (typeof DecompressionStream === 'undefined') throw new Error(t('direct_no_inflate'));
    bytes = await through(bytes, new DecompressionStream('deflate'));
  } else if (clean[0] !== 'P') {
    throw new Error(t('direct_bad_code'));
  }
  const {t: type, s: sdp} = JSON.parse(new TextDecoder().decode(bytes));
  if ((type !== 'offer' && type !== 'answer') || typeof sdp !== 'string') throw new Error(t('direct_bad_code'));
  return {type, sdp};
}

/**
 * A new connection in place of any old one. Resolves `description` with the
 * first description it makes (once all its candidates are in it).
 */
function fresh(options) {
  if (peer) peer.close();
  let described;
  const description = new Promise((resolve) => (described = resolve));
  // No ICE servers: both devices are on the same network, host candidates do.
  // No ICE restart: a new offer could only travel by hand.
  peer = new Peer({trickle: false, iceRestart: false, signal: (data) => data.description && described(data.description),
    onState: (s) => setStatus(t('direct_state_' + s)), ...options});
  return {peer, description};
}

/** A pasted code, which must hold the kind of description this step needs. */
async function unpackAs(type, text) {
  const desc = await unpack(text);
  if (desc.type !== type) throw new Error(t('direct_bad_code'));
  return desc;
}

function useChannel(ch) {
  channel = ch;
  ch.onopen = () => showChat();
  ch.onclose = () => setStatus(t('direct_state_closed'));
  ch.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (typeof msg.text === 'string') addLine(msg.text.slice(0, 4000), false);
  };
}

function setStatus(text) {
  const s = $('#direct-status');
  if (s) s.textContent = text;
}

function codeBlock(label, text, testid) {
  let qr;
  try {
    qr = qrSvg(text, t('qr_alt', {what: label}), 'L');
  } catch {
    qr = el('p', {class: 'small muted', text: t('direct_qr_too_long')});
  }
  const area = el('textarea', {readonly: true, rows: 4, class: 'code', 'data-testid': testid, 'aria-label': label});
  area.value = text;
  return el('div', {class: 'stack'},
    el('strong', {text: label}), area,
    el('button', {type: 'button', class: 'small', text: t('direct_copy'), onclick: () => {
      area.select();
      navigator.clipboard?.writeText(text).catch(() => {});
    }}),
    el('figure', {class: 'qr'}, qr));
}

async function start(body) {
  const {peer: conn, description} = fresh({polite: false, setup: (pc) => useChannel(pc.createDataChannel('chat'))});
  const offer = await pack(await description);
  const answer = el('textarea', {rows: 4, class: 'code', 'data-testid': 'direct-answer-input', 'aria-label': t('direct_paste_answer')});
  const error = el('p', {class: 'error', role: 'alert'});
  body.replaceChildren(
    el('p', {text: t('direct_offer_help')}),
    codeBlock(t('direct_offer'), offer, 'direct-offer'),
    el('label', {class: 'field'}, el('span', {text: t('direct_paste_answer')}), answer),
    error,
    el('button', {class: 'primary wide', 'data-testid': 'direct-connect', text: t('direct_connect'), onclick: async () => {
      try {
        await conn.receive({description: await unpackAs('answer', answer.value)});
        setStatus(t('direct_state_connecting'));
      } catch (err) {
        error.textContent = err.message || t('direct_bad_code');
      }
    }}));
}

function join(body) {
  const offer = el('textarea', {rows: 4, class: 'code', 'data-testid': 'direct-offer-input', 'aria-label': t('direct_paste_offer')});
  const error = el('p', {class: 'error', role: 'alert'});
  body.replaceChildren(
    el('label', {class: 'field'}, el('span', {text: t('direct_paste_offer')}), offer),
    error,
    el('button', {class: 'primary wide', 'data-testid': 'direct-make-answer', text: t('direct_make_answer'), onclick: async () => {
      const {peer: conn, description} = fresh({polite: true, offerer: false, onChannel: useChannel});
      try {
        await conn.receive({description: await unpackAs('offer', offer.value)});
      } catch (err) {
        error.textContent = err.message || t('direct_bad_code');
        return;
      }
      body.replaceChildren(el('p', {text: t('direct_answer_help')}), codeBlock(t('direct_answer'), await pack(await description), 'direct-answer'));
    }}));
}

function addLine(text, mine) {
  const list = $('#direct-messages');
  list.append(el('li', {class: 'msg ' + (mine ? 'mine' : 'theirs'), 'data-testid': 'direct-message'}, el('span', {class: 'text', text})));
  list.lastElementChild.scrollIntoView({block: 'end'});
}

function showChat() {
  setStatus(t('direct_state_connected'));
  const input = el('input', {'data-testid': 'direct-input', maxlength: 4000, 'aria-label': t('composer_label'), placeholder: t('composer_placeholder'), autocomplete: 'off'});
  $('#direct-body').replaceChildren(
    el('ol', {id: 'direct-messages', class: 'messages', 'data-testid': 'direct-messages'}),
    el('form', {class: 'composer', onsubmit: (ev) => {
      ev.preventDefault();
      const text = input.value.trim();
      if (!text || channel?.readyState !== 'open') return;
      channel.send(JSON.stringify({text}));
      addLine(text, true);
      input.value = '';
    }}, input, el('button', {class: 'primary', 'data-testid': 'direct-send', text: t('send')})));
  input.focus();
}

export function openDirect() {
  let screen = $('#direct-screen');
  if (!screen) {
    const body = el('div', {id: 'direct-body', class: 'direct-body'});
    screen = el('section', {id: 'direct-screen', class: 'screen', 'data-testid': 'direct-screen'},
      el('header', {class: 'bar'},
        el('a', {class: 'button icon', href: '/', 'aria-label': t('back'), title: t('back'), text: '‹'}),
        el('h1', {class: 'title', text: t('direct_title')})),
      el('p', {id: 'direct-status', class: 'typing muted small', role: 'status', 'data-testid': 'direct-status'}),
      body);
    $('#app').append(screen);
    if (typeof RTCPeerConnection === 'undefined') {
      // Some browsers (WebKitGTK, locked-down ones) have no WebRTC: say so instead of failing on a tap.
      body.append(
        el('p', {text: t('direct_intro')}),
        el('p', {class: 'error', role: 'alert', 'data-testid': 'direct-unavailable', text: t('direct_no_webrtc')}));
    } else {
      body.append(
        el('p', {text: t('direct_intro')}),
        el('button', {class: 'primary wide', 'data-testid': 'direct-start', text: t('direct_start'), onclick: () => start(body)}),
        el('button', {class: 'wide', 'data-testid': 'direct-join', text: t('direct_join'), onclick: () => join(body)}));
    }
  }
  showScreen('direct-screen');
}
