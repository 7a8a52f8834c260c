// The conversation screen: message list, composer, typing, unread, read markers.

import {state, on, emit, conversation, orderedMessages, nameOf, dmPeer, roomOfConv, setUnread, messageBySeq, applyReaction, deleteBySeq, mergeMessage, memberCount} from './store.js';
import {send, sendText, loadOlder, request, handle} from './net.js';
import {$, el} from './dom.js';
import {showScreen, formatTime, toast, statusText, avatar} from './ui.js';
import {formatText} from './format.js';
import {t} from './strings.js';

const TYPING_SEND_EVERY = 3000;
const TYPING_SHOW_FOR = 5000;
const GROUP_WITHIN_MS = 5 * 60 * 1000; // one person's messages this close are one group
let lastTypingSent = 0;
let rendered = new Map(); // msg id -> <li> in the open conversation

let replyTo = null; // the message the composer answers, or null

export function initChat({onCall, onRoomInfo, onSearch, onSendFile, onJoinCall}) {
  $('#conv-back').addEventListener('click', closeConv);
  $('#search-button').addEventListener('click', () => onSearch(state.current));
  $('#file-button').addEventListener('click', () => onSendFile(dmPeer(state.current)));
  $('#join-call-button').addEventListener('click', () => onJoinCall(state.current));
  $('#reply-cancel').addEventListener('click', () => setReply(null));
  handle('reaction', (msg) => {
    if (applyReaction(msg.conv, msg.seq, msg.from, msg.emoji, msg.on !== false) && msg.conv === state.current) renderConv(true);
  });
  handle('message_deleted', (msg) => {
    if (deleteBySeq(msg.conv, msg.seq)) emit('messages', {conv: msg.conv, fresh: []});
  });
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
    showCount();
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

/** Characters as the box counts them (code points, not UTF-16 units). */
const charCount = (text) => [...text].length;

/**
 * The composer never cuts text (no maxlength: a paste would be cut silently);
 * near the box's limit a counter shows how much is left, over it how much too much.
 */
function showCount() {
  const out = $('#composer-count');
  const n = charCount($('#composer-input').value.trim());
  const max = state.limits.text;
  out.hidden = n < Math.floor(max * 0.9);
  out.textContent = t('composer_count', {n, max});
  out.classList.toggle('over', n > max);
}

function submit() {
  const input = $('#composer-input');
  const text = input.value.trim();
  if (!text || !state.current) return;
  if (charCount(text) > state.limits.text) {
    // The box's own words (protocol.clean_text); the text stays to be shortened.
    toast(t('msg_too_long', {max: state.limits.text, n: charCount(text)}));
    showCount();
    return;
  }
  const conv = state.current;
  const room = roomOfConv(conv);
  sendText(room ? {room} : {to: dmPeer(conv)}, text, replyTo?.conv === conv ? replyTo.seq : undefined);
  setReply(null);
  input.value = '';
  autosize(input);
  showCount();
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
  showCount();
  setReply(null);
  showScreen('conv-screen');
  renderHeader();
  renderConv();
  markRead();
  showInAddress();
  $('#composer-input').focus({preventScroll: true});
  emit('open', conv);
}

export function closeConv() {
  state.current = null;
  history.replaceState(null, '', location.pathname + location.search);
  showScreen('home-screen');
  emit('open', null);
}

/**
 * The address names the open room while I am in it (#room=…), so a reload
 * lands there again; otherwise nothing. Once I leave a room (here, or in
 * another tab when its update arrives) its address goes, and a reload does
 * not take me back into it.
 */
function showInAddress() {
  const room = roomOfConv(state.current || '');
  const hash = room && isMember(state.current) ? '#room=' + room : '';
  if (location.hash !== hash) history.replaceState(null, '', location.pathname + location.search + hash);
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
    $('#conv-subtitle').textContent = r ? t('room_subtitle', {online: r.online, members: memberCount(r)}) : '';
    $('#room-info-button').hidden = false;
    const inCall = r?.call?.participants?.length;
    $('#call-audio-button').setAttribute('aria-label', t('call_room_audio'));
    $('#call-video-button').setAttribute('aria-label', t('call_room_video'));
    $('#call-audio-button').classList.toggle('live', !!inCall);
    renderCallBar(r);
    const me = state.me?.id;
    const pending = !member && r?.requests?.includes(me);
    $('#room-join-prompt').textContent = t(pending ? 'room_pending' : r?.invited?.includes(me) ? 'room_invited_prompt' : 'room_join_prompt');
    $('#room-join-button').hidden = !!pending;
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
    $('#room-call-bar').hidden = true;
  }
  $('#file-button').hidden = !!room || !state.users.has(dmPeer(conv));
  $('#search-button').hidden = !member;
  $('#call-audio-button').hidden = !canCall;
  $('#call-video-button').hidden = !canCall;
  $('#room-join-bar').hidden = member;
  $('#composer').hidden = !member;
  showInAddress();
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

/** Who is in the open room's call, and a button to join it. */
function renderCallBar(r) {
  const bar = $('#room-call-bar');
  if (!r) {
    bar.hidden = true;
    return;
  }
  const people = r?.call?.participants || [];
  const inThisCall = window.ahoy?.calls.current()?.room === r?.id;
  bar.hidden = !people.length || !isMember('room:' + r.id);
  $('#room-call-people').textContent = t('call_in_room', {names: people.map((u) => nameOf(u) || t('someone')).join(', ')});
  $('#join-call-button').hidden = inThisCall || people.length >= (state.limits.call_members || 4);
}

function setReply(m) {
  replyTo = m ? {conv: m.conv, seq: m.seq} : null;
  $('#reply-bar').hidden = !m;
  if (m) {
    $('#reply-text').textContent = t('reply_to', {name: m.name || nameOf(m.from) || t('someone')}) + ' ' + snippet(m.text);
    $('#composer-input').focus();
  }
}

const snippet = (text) => (text.length > 80 ? text.slice(0, 80) + '…' : text);

/** The actions for one message: reactions and reply (the menu loads on first use). */
async function openActions(m, anchor) {
  if (m.seq === undefined || !isMember(m.conv)) return;
  const {openMenu} = await import('./msgmenu.js');
  openMenu(m, anchor, {onReply: setReply, onReact: react});
}

/** Toggle my reaction `emoji` on message `m`. */
export function react(m, emoji) {
  const on = !(m.reactions?.[emoji] || []).includes(state.me?.id);
  request({type: 'react', conv: m.conv, seq: m.seq, emoji, on}).catch((err) => toast(err.message));
}

function reactionRow(m) {
  const entries = Object.entries(m.reactions || {}).filter(([, who]) => who.length);
  if (!entries.length) return null;
  return el('span', {class: 'reactions'}, entries.map(([emoji, who]) => {
    const mine = who.includes(state.me?.id);
    const names = who.map((u) => nameOf(u) || t('someone')).join(', ');
    return el('button', {type: 'button', class: 'reaction' + (mine ? ' mine' : ''), 'data-testid': 'reaction', 'data-emoji': emoji, 'aria-pressed': String(mine), title: names, 'aria-label': t('reaction_label', {emoji, n: who.length, names}), onclick: () => react(m, emoji)}, emoji + ' ' + who.length);
  }));
}

/** Whether `m` continues a run of messages from one person (shown without name and picture again). */
function continues(prev, m) {
  return !!prev && prev.from === m.from && !m.reply_to && Math.abs((m.ts || 0) - (prev.ts || 0)) < GROUP_WITHIN_MS;
}

function messageNode(m, isRoom, readSeq, cont = false) {
  const mine = m.from === state.me?.id;
  const li = el('li', {class: 'msg ' + (mine ? 'mine' : 'theirs') + (cont ? ' cont' : ''), 'data-testid': 'message', 'data-id': m.id, 'data-seq': m.seq ?? ''});
  const name = m.name || nameOf(m.from) || t('someone');
  if (isRoom && !mine && !cont) li.append(el('span', {class: 'msg-head'}, avatar(name, 'small', m.from), el('span', {class: 'sender', 'data-testid': 'msg-sender', dir: 'auto', text: name})));
  if (m.reply_to) {
    const orig = messageBySeq(m.conv, m.reply_to);
    li.append(el('button', {type: 'button', class: 'quote', 'data-testid': 'msg-quote', 'data-seq': m.reply_to, onclick: () => jumpTo(m.conv, m.reply_to)},
      el('strong', {dir: 'auto', text: orig ? orig.name || nameOf(orig.from) || t('someone') : t('reply_earlier')}),
      orig ? el('span', {dir: 'auto', text: snippet(orig.text)}) : null));
  }
  // Formatting builds elements and text nodes only: typed markup never becomes HTML.
  // dir=auto: Hebrew or Arabic reads right to left, whatever the page's language.
  li.append(el('span', {class: 'text', 'data-testid': 'msg-text', dir: 'auto'}, formatText(m.text)));
  li.append(reactionRow(m) || '');
  li.append(el('span', {class: 'meta'},
    m.seq !== undefined ? el('button', {type: 'button', class: 'msg-more', 'data-testid': 'msg-actions', 'aria-label': t('msg_actions'), title: t('msg_actions'), onclick: (ev) => openActions(m, ev.currentTarget), text: '☺'}) : null,
    el('time', {datetime: new Date(m.ts).toISOString(), text: formatTime(m.ts)}), statusMark(m, readSeq)));
  li.addEventListener('contextmenu', (ev) => {
    ev.preventDefault();
    openActions(m, li);
  });
  let press = null;
  li.addEventListener('pointerdown', (ev) => {
    if (ev.pointerType !== 'touch') return;
    press = setTimeout(() => openActions(m, li), 550);
  });
  for (const type of ['pointerup', 'pointercancel', 'pointermove']) li.addEventListener(type, () => clearTimeout(press));
  return li;
}

/** Show message `seq` of `conv`, loading the messages around it first if needed. */
export async function jumpTo(conv, seq) {
  if (state.current !== conv) openConv(conv);
  if (!messageBySeq(conv, seq)) {
    const loaded = orderedMessages(conv).find((m) => m.seq);
    const from = Math.max(0, seq - 25);
    const upTo = loaded ? loaded.seq : seq + 26;
    try {
      const reply = await request({type: 'sync', conv, after: from, limit: Math.min(500, Math.max(50, upTo - from))});
      for (const m of reply.messages || []) {
        const {type, ...rest} = m;
        mergeMessage(rest);
      }
      if (from === 0) conversation(conv).loadedOldest = true;
    } catch (err) {
      toast(err.message);
      return;
    }
    renderConv(true);
  }
  const node = $(`#messages [data-seq="${Number(seq)}"]`);
  if (!node) return;
  node.scrollIntoView({block: 'center'});
  node.classList.remove('flash');
  void node.offsetWidth;
  node.classList.add('flash');
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
  const nodes = msgs.map((m, idx) => {
    const cont = continues(msgs[idx - 1], m);
    const key = `${cont}|${m.id}|${m.seq}|${m.status}|${m.from === state.me?.id && readSeq >= (m.seq || Infinity)}|${JSON.stringify(m.reactions || '')}|${m.reply_to ? !!messageBySeq(conv, m.reply_to) : ''}`;
    let li = rendered.get(m.id);
    if (!li || li.dataset.key !== key) {
      li = messageNode(m, isRoom, readSeq, cont);
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
