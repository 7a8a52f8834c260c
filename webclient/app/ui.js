// The home screen and what every screen shares: screens, tabs, lists, banners,
// dialogs, toasts, avatars. Elements are built with dom.js.
// User text only ever goes through textContent or attributes, never innerHTML.

import {state, on, emit, nameOf, dmConv, dmPeer, roomOfConv, orderedMessages, totalUnread, memberCount} from './store.js';
import {t} from './strings.js';
import {$, el} from './dom.js';

export function icon(name) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS('http://www.w3.org/2000/svg', 'use');
  use.setAttribute('href', '#i-' + name);
  svg.append(use);
  return svg;
}

/** A round badge: the person's picture, else their initial on their colour. */
export function avatar(name, extra = '', userId = null) {
  const letter = (name || '?').trim().charAt(0).toUpperCase() || '?';
  let h = 0;
  for (const ch of name || '') h = (h * 31 + ch.codePointAt(0)) % 360;
  const a = el('span', {class: 'avatar ' + extra, 'aria-hidden': 'true', text: letter});
  a.style.setProperty('--hue', h);
  const p = userId ? state.profiles.get(userId) : null;
  if (p?.colour && /^#[0-9a-f]{6}$/i.test(p.colour)) a.style.background = p.colour;
  if (p?.avatar && p.avatar.startsWith('/api/avatar/')) a.append(el('img', {src: p.avatar, alt: '', 'data-testid': 'avatar-img'}));
  return a;
}

let toastTimer = null;
/** Show a short notice (also read out by screen readers). */
export function toast(text, ms = 3500) {
  const box = $('#toast');
  box.textContent = text;
  box.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove('show'), ms);
}

export function announce(text) {
  const box = $('#sr-announce');
  box.textContent = '';
  setTimeout(() => (box.textContent = text), 50);
}

/** Show one of the full screens. Calls sit on top of the others. */
export function showScreen(id) {
  for (const s of document.querySelectorAll('#app > .screen:not(.call-screen)')) s.hidden = s.id !== id;
  document.body.dataset.screen = id;
}

export function setOverlay(id, visible) {
  $('#' + id).hidden = !visible;
  const covered = !$('#call-screen').hidden || !$('#incoming-screen').hidden;
  document.body.classList.toggle('in-call', covered);
  // Keyboard and screen-reader users stay inside the call screen while it is up.
  for (const s of document.querySelectorAll('#app > .screen:not(.call-screen)')) s.inert = covered;
  if (!$('#incoming-screen').hidden) $('#call-screen').inert = true;
  else $('#call-screen').inert = false;
}

/**
 * Open the shared <dialog> with a title and content. Returns the dialog;
 * `onClose` runs once when it closes.
 */
export function openDialog(title, content, {testid, onClose} = {}) {
  const dlg = $('#dialog');
  if (dlg.open) dlg.close();
  dlg.replaceChildren(
    el('header', {class: 'dlg-head'},
      el('h2', {id: 'dialog-title', text: title}),
      el('button', {class: 'icon', type: 'button', 'aria-label': t('close'), title: t('close'), 'data-testid': 'dialog-close', onclick: () => dlg.close()}, icon('plus'))),
    el('div', {class: 'dlg-body'}, content));
  dlg.setAttribute('aria-labelledby', 'dialog-title');
  dlg.dataset.testid = testid || 'dialog';
  dlg.addEventListener('close', () => onClose && onClose(), {once: true});
  dlg.showModal();
  return dlg;
}

export function closeDialog() {
  const dlg = $('#dialog');
  if (dlg.open) dlg.close();
}

export function formatTime(ts) {
  const d = new Date(ts);
  const now = new Date();
  const time = d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'});
  if (d.toDateString() === now.toDateString()) return time;
  return d.toLocaleDateString([], {day: 'numeric', month: 'short'}) + ' ' + time;
}

export function statusText(status) {
  return t('status_' + (status || 'offline'));
}

// ---------- Home screen ----------

let openConvHandler = () => {};
let roomHandler = () => {};
let sendFileHandler = () => {};

/** Wire the home lists: what to do when a chat, person or room is tapped. */
export function initHome({openConv, openRoom, sendFile}) {
  openConvHandler = openConv;
  roomHandler = openRoom;
  sendFileHandler = sendFile;
  for (const tab of document.querySelectorAll('[role=tab]')) {
    tab.addEventListener('click', () => selectTab(tab.dataset.tab));
    tab.addEventListener('keydown', (ev) => {
      const tabs = [...document.querySelectorAll('[role=tab]')];
      const i = tabs.indexOf(tab);
      const step = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
      if (!step) return;
      const next = tabs[(i + step + tabs.length) % tabs.length];
      next.focus();
      selectTab(next.dataset.tab);
    });
  }
  selectTab(state.tab);
  for (const ev of ['welcome', 'presence', 'rooms', 'messages', 'unread', 'conn']) on(ev, renderHome);
}

export function selectTab(name) {
  state.tab = name;
  emit('tab', name);
  for (const tab of document.querySelectorAll('[role=tab]')) {
    const sel = tab.dataset.tab === name;
    tab.setAttribute('aria-selected', String(sel));
    tab.tabIndex = sel ? 0 : -1;
    $('#' + tab.getAttribute('aria-controls')).hidden = !sel;
  }
}

let renderQueued = false;
export function renderHome() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderChats();
    renderPeople();
    renderRooms();
    renderHeader();
  });
}

function renderHeader() {
  $('#me-name').textContent = state.me ? state.me.name : '';
  const dot = $('#conn-dot');
  dot.dataset.state = state.conn;
  const label = state.conn === 'online' ? t('conn_online') : state.conn === 'connecting' ? t('conn_connecting') : t('conn_offline');
  dot.setAttribute('aria-label', label);
  dot.title = label;
  const n = totalUnread();
  const badge = $('#tab-chats-badge');
  badge.hidden = !n;
  badge.textContent = n;
  badge.setAttribute('aria-label', t('unread_label', {n}));
  // How many others are online (the box says how many; it names them on the people tab).
  const others = Math.max(state.online - 1, state.users.size);
  $('#tab-people-count').textContent = others ? String(others) : '';
  $('#tab-rooms-count').textContent = state.rooms.size ? String(state.rooms.size) : '';
}

function lastMessage(conv) {
  const list = orderedMessages(conv);
  return list[list.length - 1];
}

function chatEntries() {
  const entries = [];
  const seen = new Set();
  const me = state.me?.id;
  for (const room of state.rooms.values()) {
    if (!room.members.includes(me)) continue;
    const conv = 'room:' + room.id;
    seen.add(conv);
    entries.push({conv, title: room.name, last: lastMessage(conv)});
  }
  for (const conv of state.convs.keys()) {
    if (seen.has(conv) || !conv.startsWith('dm:') || !me) continue;
    const peer = dmPeer(conv);
    const last = lastMessage(conv);
    if (!last) continue;
    entries.push({conv, title: nameOf(peer) || t('someone'), last, peer});
  }
  entries.sort((a, b) => (b.last?.ts || 0) - (a.last?.ts || 0));
  return entries;
}

function renderChats() {
  const list = $('#chat-list');
  const entries = chatEntries();
  if (!entries.length) {
    list.replaceChildren(el('li', {class: 'empty muted', text: t('chats_empty')}));
    return;
  }
  list.replaceChildren(...entries.map((e) => {
    const unread = state.unread[e.conv] || 0;
    const preview = e.last ? (e.last.from === state.me?.id ? t('you') + ': ' : (e.conv.startsWith('room:') ? (e.last.name || nameOf(e.last.from) || '') + ': ' : '')) + e.last.text : '';
    const peerStatus = e.peer ? state.users.get(e.peer)?.status : null;
    return el('li', {},
      el('button', {class: 'row', 'data-testid': 'chat-item', 'data-conv': e.conv, onclick: () => openConvHandler(e.conv)},
        avatar(e.title, peerStatus ? 'status-' + peerStatus : '', e.peer),
        el('span', {class: 'row-main'},
          el('span', {class: 'row-title', dir: 'auto', text: e.title}),
          el('span', {class: 'row-sub muted', dir: 'auto', text: preview})),
        el('span', {class: 'row-side'},
          e.last ? el('span', {class: 'muted small', text: formatTime(e.last.ts)}) : null,
          unread ? el('span', {class: 'badge', 'data-testid': 'unread-badge', 'aria-label': t('unread_label', {n: unread}), text: unread}) : null)));
  }));
}

function renderPeople() {
  const list = $('#user-list');
  const users = [...state.users.values()].sort((a, b) => a.name.localeCompare(b.name));
  if (!users.length) {
    list.replaceChildren(el('li', {class: 'empty muted', text: t('people_empty')}));
    return;
  }
  list.replaceChildren(...users.map((u) => {
    const unread = state.me ? state.unread[dmConv(u.id)] || 0 : 0;
    return el('li', {class: 'with-action'},
      el('button', {class: 'row', 'data-testid': 'user-item', 'data-user': u.id, 'data-status': u.status, onclick: () => openConvHandler(dmConv(u.id))},
        avatar(u.name, 'status-' + u.status, u.id),
        el('span', {class: 'row-main'},
          el('span', {class: 'row-title', dir: 'auto', text: u.name}),
          el('span', {class: 'row-sub status-text ' + u.status, 'data-testid': 'user-status', text: statusText(u.status)}),
          u.status_text ? el('span', {class: 'row-sub muted small', 'data-testid': 'user-status-line', text: u.status_text}) : null),
        el('span', {class: 'row-side'},
          unread ? el('span', {class: 'badge', 'aria-label': t('unread_label', {n: unread}), text: unread}) : null)),
      el('button', {class: 'icon row-action', 'data-testid': 'user-send-file', 'aria-label': t('file_send_to', {name: u.name}), title: t('file_send_to', {name: u.name}), onclick: () => sendFileHandler(u.id)}, icon('clip')));
  }));
}

function renderRooms() {
  const list = $('#room-list');
  const rooms = [...state.rooms.values()].sort((a, b) => b.online - a.online || a.name.localeCompare(b.name));
  if (!rooms.length) {
    list.replaceChildren(el('li', {class: 'empty muted', text: t('rooms_empty')}));
    return;
  }
  const me = state.me?.id;
  list.replaceChildren(...rooms.map((r) => {
    const tags = [];
    if (r.members.includes(me)) tags.push(el('span', {class: 'tag', text: t('room_member_tag')}));
    else if (r.invited?.includes(me)) tags.push(el('span', {class: 'tag live', text: t('room_invited_tag')}));
    else if (r.requests?.includes(me)) tags.push(el('span', {class: 'tag', text: t('room_pending_tag')}));
    if (r.visibility === 'hidden') tags.push(el('span', {class: 'tag', text: t('room_hidden_tag')}));
    if (r.requests?.length && (r.owner === me || r.moderators?.includes(me))) tags.push(el('span', {class: 'tag warn', 'data-testid': 'room-requests-tag', text: t('room_requests_tag', {n: r.requests.length})}));
    if (!r.active) tags.push(el('span', {class: 'tag warn', text: t('room_inactive_tag')}));
    if (r.call?.participants?.length) tags.push(el('span', {class: 'tag live', text: t('room_call_tag', {n: r.call.participants.length})}));
    const unread = state.unread['room:' + r.id] || 0;
    return el('li', {},
      el('button', {class: 'row', 'data-testid': 'room-item', 'data-room': r.id, onclick: () => roomHandler(r.id)},
        avatar(r.name, 'room'),
        el('span', {class: 'row-main'},
          el('span', {class: 'row-title'}, el('span', {dir: 'auto', text: r.name}), ...tags),
          el('span', {class: 'row-sub muted', 'data-testid': 'room-counts', text: t('room_counts', {online: r.online, members: memberCount(r), limit: r.limit})}),
          r.description ? el('span', {class: 'row-sub muted small', text: r.description}) : null),
        el('span', {class: 'row-side'},
          unread ? el('span', {class: 'badge', 'aria-label': t('unread_label', {n: unread}), text: unread}) : null)));
  }));
}

/** Banners above the tabs: connection state, calls needing https. */
export function setBanner(id, content) {
  const box = $('#banners');
  let b = box.querySelector(`[data-banner="${id}"]`);
  if (!content) {
    if (b) b.remove();
    return;
  }
  if (!b) {
    b = el('div', {class: 'banner', dataset: {banner: id}, 'data-testid': 'banner-' + id, role: 'status'});
    box.append(b);
  }
  b.replaceChildren(...[content].flat());
}

export {roomOfConv};
