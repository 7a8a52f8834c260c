// The conversation screen: message list, composer, typing, unread, read markers.

import {state, on, emit, conversation, orderedMessages, nameOf, dmPeer, roomOfConv, setUnread} from './store.js';
import {send, sendText, loadOlder, request} from './net.js';
import {$, el, showScreen, formatTime, toast, statusText} from './ui.js';
import {t} from './strings.js';

const TYPING_SEND_EVERY = 3000;
const TYPING_SHOW_FOR = 5000;
let lastTypingSent = 0;
let rendered = new Map(); // msg id -> <li> in the open conversation

export function initChat({onCall, onRoomInfo}) {
  $('#conv-back').addEventListener('click', closeConv);
  $('#composer').addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
  });
  const input = $('#composer-input');
  input.addEventListener('keydown', (ev) => {
    // Enter sends, Shift+Enter makes a new line (phones use the send button).
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submit();
    }
  });
  input.addEventListener('input', () => {
    autosize(input);
    maybeSendTyping();
  });
  $('#call-audio-button').addEventListener('click', () => onCall(state.current, 'audio'));
  $('#call-video-button').addEventListener('click', () => onCall(state.current, 'video'));
  $('#room-info-button').addEventListener('click', () => onRoomInfo(roomOfConv(state.current)));
  $('#room-join-button').addEventListener('click', async () => {
    const room = roomOfConv(state.current);
    try {
      await request({type: 'room_join', room});
    } catch (err) {
      toast(err.message);
    }
  });
  $('#load-older').addEventListener('click', async () => {
    const conv = state.current;
    const first = orderedMessages(conv).find((m) => m.seq);
    if (!first) return;
    try {
      const reply = await loadOlder(conv, first.seq);
      if (!reply.messages?.length || reply.messages[0].seq <= 1) conversation(conv).loadedOldest = true;
      renderConv(true);
    } catch (err) {
      toast(err.message);
    }
  });

  on('messages', ({conv}) => {
    if (conv !== state.current) return;
    renderConv();
    renderTyping();
  });
  on('typing', ({conv}) => conv === state.current && renderTyping());
  on('rooms', () => state.current && renderHeader());
  on('presence', () => state.current && renderHeader());
  on('welcome', () => {
    if (state.current) {
      renderHeader();
      markRead();
    }
  });
  on('read', ({conv}) => conv === state.current && renderConv());
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.current) markRead();
  });
  setInterval(() => state.current && renderTyping(), 1000);
}

function autosize(input) {
  input.style.height = 'auto';
  input.style.height = Math.min(input.scrollHeight, 140) + 'px';
}

function submit() {
  const input = $('#composer-input');
  const text = input.value.trim();
  if (!text || !state.current) return;
  if (text.length > state.limits.text) {
    toast(t('msg_failed', {reason: String(state.limits.text)}));
    return;
  }
  const conv = state.current;
  const room = roomOfConv(conv);
  sendText(room ? {room} : {to: dmPeer(conv)}, text);
  input.value = '';
  autosize(input);
  input.focus();
  lastTypingSent = 0;
}

function maybeSendTyping() {
  const now = Date.now();
  if (now - lastTypingSent < TYPING_SEND_EVERY || !state.current) return;
  lastTypingSent = now;
  const room = roomOfConv(state.current);
  send(room ? {type: 'typing', room} : {type: 'typing', to: dmPeer(state.current)});
}

/** Open a conversation ('room:…' or 'dm:…'). */
export function openConv(conv) {
  state.current = conv;
  rendered = new Map();
  const list = $('#messages');
  // Do not read the whole history aloud when a chat opens; only what arrives later.
  list.setAttribute('aria-live', 'off');
  list.replaceChildren();
  setTimeout(() => list.setAttribute('aria-live', 'polite'), 500);
  $('#composer-input').value = '';
  showScreen('conv-screen');
  renderHeader();
  renderConv();
  markRead();
  history.replaceState(null, '', conv.startsWith('room:') ? '#room=' + roomOfConv(conv) : location.pathname + location.search);
  $('#composer-input').focus({preventScroll: true});
  emit('open', conv);
}

export function closeConv() {
  state.current = null;
  history.replaceState(null, '', location.pathname + location.search);
  showScreen('home-screen');
  emit('open', null);
}

function isMember(conv) {
  const room = roomOfConv(conv);
  if (!room) return true;
  return !!state.rooms.get(room)?.members.includes(state.me?.id);
}

export function renderHeader() {
  const conv = state.current;
  if (!conv) return;
  const room = roomOfConv(conv);
  const member = isMember(conv);
  const canCall = !!(room ? member : true);
  if (room) {
    const r = state.rooms.get(room);
    $('#conv-title').textContent = r ? r.name : '…';
    $('#conv-subtitle').textContent = r ? t('room_subtitle', {online: r.online, members: r.members.length}) : '';
    $('#room-info-button').hidden = false;
    const inCall = r?.call?.participants?.length;
    $('#call-audio-button').setAttribute('aria-label', t('call_room_audio'));
    $('#call-video-button').setAttribute('aria-label', t('call_room_video'));
    $('#call-audio-button').classList.toggle('live', !!inCall);
  } else {
    const peer = dmPeer(conv);
    const u = state.users.get(peer);
    $('#conv-title').textContent = nameOf(peer) || t('someone');
    const status = u ? u.status : 'offline';
    $('#conv-subtitle').textContent = t('dm_subtitle_' + status);
    $('#conv-subtitle').dataset.status = status;
    $('#room-info-button').hidden = true;
    $('#call-audio-button').setAttribute('aria-label', t('call_audio'));
    $('#call-video-button').setAttribute('aria-label', t('call_video'));
    $('#call-audio-button').classList.remove('live');
  }
  $('#call-audio-button').hidden = !canCall;
  $('#call-video-button').hidden = !canCall;
  $('#room-join-bar').hidden = member;
  $('#composer').hidden = !member;
}

function statusMark(m, readSeq) {
  if (m.from !== state.me?.id) return null;
  let mark;
  let label;
  if (m.status === 'failed') {
    mark = '!';
    label = t('msg_failed', {reason: m.error || ''});
  } else if (m.seq === undefined) {
    mark = '';
    label = t('msg_sending');
  } else if (readSeq >= m.seq) {
    mark = '✓✓';
    label = t('msg_read');
  } else {
    mark = '✓';
    label = t('msg_delivered');
  }
  return el('span', {class: 'mark ' + (m.status || '') + (mark ? '' : ' clock'), role: 'img', 'data-testid': 'msg-status', 'data-state': m.seq === undefined ? (m.status === 'failed' ? 'failed' : 'sending') : 'delivered', title: label, 'aria-label': label, text: mark});
}

function messageNode(m, isRoom, readSeq) {
  const mine = m.from === state.me?.id;
  const li = el('li', {class: 'msg ' + (mine ? 'mine' : 'theirs'), 'data-testid': 'message', 'data-id': m.id, 'data-seq': m.seq ?? ''});
  if (isRoom && !mine) li.append(el('span', {class: 'sender', 'data-testid': 'msg-sender', text: m.name || nameOf(m.from) || t('someone')}));
  // textContent only: whatever people type is shown as text, never parsed as HTML.
  li.append(el('span', {class: 'text', 'data-testid': 'msg-text', text: m.text}));
  li.append(el('span', {class: 'meta'}, el('time', {datetime: new Date(m.ts).toISOString(), text: formatTime(m.ts)}), statusMark(m, readSeq)));
  return li;
}

/** Render the open conversation, reusing nodes that did not change. */
export function renderConv(keepScroll = false) {
  const conv = state.current;
  if (!conv) return;
  const list = $('#messages');
  const body = $('#conv-body');
  const atBottom = body.scrollHeight - body.scrollTop - body.clientHeight < 80;
  const prevHeight = body.scrollHeight;
  const msgs = orderedMessages(conv);
  const isRoom = conv.startsWith('room:');
  const peer = dmPeer(conv);
  const readSeq = peer ? state.readBy[conv]?.[peer] || 0 : 0;
  const next = new Map();
  const nodes = msgs.map((m) => {
    const key = `${m.id}|${m.seq}|${m.status}|${m.from === state.me?.id && readSeq >= (m.seq || Infinity)}`;
    let li = rendered.get(m.id);
    if (!li || li.dataset.key !== key) {
      li = messageNode(m, isRoom, readSeq);
      li.dataset.key = key;
    }
    next.set(m.id, li);
    return li;
  });
  // Only touch the DOM where something changed, so screen readers announce new messages only.
  let i = 0;
  for (const node of nodes) {
    const cur = list.children[i];
    if (cur !== node) list.insertBefore(node, cur || null);
    i++;
  }
  while (list.children.length > nodes.length) list.lastElementChild.remove();
  rendered = next;
  $('#conv-empty').hidden = msgs.length > 0;
  const first = msgs.find((m) => m.seq);
  $('#load-older').hidden = !first || first.seq <= 1 || conversation(conv).loadedOldest || !isMember(conv);
  if (keepScroll) body.scrollTop = body.scrollHeight - prevHeight;
  else if (atBottom || msgs[msgs.length - 1]?.from === state.me?.id) body.scrollTop = body.scrollHeight;
  if (!document.hidden) markRead();
}

function renderTyping() {
  const conv = state.current;
  const box = $('#typing');
  const now = Date.now();
  const who = Object.entries(state.typing[conv] || {}).filter(([, until]) => until > now).map(([id]) => id);
  const text = who.length === 1 ? t('typing_one', {name: nameOf(who[0]) || t('someone')}) : who.length > 1 ? t('typing_many', {n: who.length}) : '';
  if (box.textContent !== text) box.textContent = text;
}

const lastMessageAt = new Map(); // `${conv}|${user}` -> when their last message came

export function noteTyping(msg) {
  const conv = msg.conv;
  // A typing notice overtaken by the message it was about: ignore it.
  if (Date.now() - (lastMessageAt.get(conv + '|' + msg.from) || 0) < 700) return;
  if (!state.typing[conv]) state.typing[conv] = {};
  state.typing[conv][msg.from] = Date.now() + TYPING_SHOW_FOR;
  emit('typing', {conv});
}

/** A message arrived: whoever sent it has stopped typing. */
export function clearTyping(conv, from) {
  lastMessageAt.set(conv + '|' + from, Date.now());
  if (state.typing[conv]) delete state.typing[conv][from];
}

function markRead() {
  const conv = state.current;
  if (!conv || document.hidden) return;
  if (state.unread[conv]) setUnread(conv, 0);
  const last = state.lastSeq[conv];
  const c = conversation(conv);
  if (last && c.readSent !== last && state.conn === 'online' && isMember(conv)) {
    c.readSent = last;
    send({type: 'read', conv, seq: last});
  }
}

export {statusText};
