// Start-up: wires the modules together, the join screen, settings, and the
// routing of box messages. Calls and file sharing load on first use.

import {state, on, emit, loadKeptConversations, forgetIdentity, setUnread, nameOf, dmConv, savePrefs, flushSaves, rememberName} from './store.js';
import {connect, disconnect, nudge, handle, send, request, drop} from './net.js';
import {$, el, showScreen, initHome, renderHome, setBanner, openDialog, closeDialog, toast, announce} from './ui.js';
import {initChat, openConv, closeConv, noteTyping, clearTyping, renderHeader} from './chat.js';
import {initRooms, createRoomDialog, openRoom, roomInfoDialog} from './rooms.js';
import {inviteDialog, callBlocker, httpsHelpDialog} from './boxinfo.js';
import {initNotify, beep, systemNotify, askPermission, notificationsSupported, updateTitle} from './notify.js';
import {t, applyStrings} from './strings.js';

// ---------- calls, loaded lazily ----------

let callsModule = null;
let callsLoading = null;
let callQueue = Promise.resolve();

function loadCalls() {
  if (!callsLoading) {
    callsLoading = import('./calls.js').then((m) => {
      m.init();
      callsModule = m;
      return m;
    });
  }
  return callsLoading;
}

/** Call messages go to calls.js in arrival order, even while it is loading. */
function toCalls(msg) {
  callQueue = callQueue.then(() => loadCalls()).then((m) => m.onMessage(msg)).catch((err) => console.error(err));
}

for (const type of ['call_ringing', 'call_incoming', 'call_accepted', 'call_joined', 'call_peer_joined', 'call_peer_left', 'call_ended', 'call_resume', 'signal']) {
  handle(type, toCalls);
}
handle('room_update', (msg) => callsModule && callsModule.onMessage(msg));

async function startCall(conv, media) {
  const blocker = callBlocker();
  if (blocker === 'calls_need_https') {
    httpsHelpDialog();
    return;
  }
  const m = await loadCalls();
  m.startCall(conv, media);
}

// ---------- box events that are not chat messages ----------

handle('presence', (msg) => {
  const u = msg.user;
  rememberName(u.id, u.name);
  if (u.status === 'offline') state.users.delete(u.id);
  else state.users.set(u.id, u);
  emit('presence', u);
});

handle('typing', (msg) => {
  if (msg.from !== state.me?.id) noteTyping(msg);
});

handle('read', (msg) => {
  if (!state.readBy[msg.conv]) state.readBy[msg.conv] = {};
  state.readBy[msg.conv][msg.from] = Math.max(state.readBy[msg.conv][msg.from] || 0, msg.seq);
  emit('read', {conv: msg.conv});
});

handle('ice', (msg) => {
  state.iceServers = msg.ice_servers || [];
});

handle('error', (msg) => {
  // Errors answering a request are shown by whoever made it; the rest here.
  if (!msg.ref && msg.code !== 'rate_limited') toast(msg.message || msg.code);
  if (msg.code === 'replaced') setConnBanner('replaced');
});

// New messages: unread counts, sound, notification, screen reader.
let initialLoad = false;
on('messages', ({conv, fresh, history, known}) => {
  if (!fresh || !fresh.length) return;
  const others = fresh.filter((m) => m.from !== state.me?.id);
  for (const m of others) clearTyping(conv, m.from);
  if (!others.length) return;
  const viewing = state.current === conv && !document.hidden;
  if (viewing) return;
  // A room's backlog seen for the first time (new device, just joined) is old
  // news, not unread mail; one-to-one messages that waited for us are not.
  if (history && !conv.startsWith('dm:') && (!known || initialLoad)) return;
  setUnread(conv, (state.unread[conv] || 0) + others.length);
  if (history) return;
  const last = others[others.length - 1];
  beep();
  const who = last.name || nameOf(last.from) || t('someone');
  announce(t('notify_new_message', {name: who}) + ': ' + last.text);
  systemNotify(t('notify_new_message', {name: who}), last.text, conv, () => openConv(conv));
});

// ---------- connection banners ----------

function setConnBanner(conn) {
  if (conn === 'replaced') {
    setBanner('conn', [el('span', {text: t('conn_replaced') + ' '}), el('button', {class: 'link', text: t('conn_use_here'), onclick: () => connect()})]);
  } else if (conn === 'offline' && state.me) {
    setBanner('conn', el('span', {text: t('conn_offline')}));
  } else {
    setBanner('conn', null);
  }
  const line = $('#conv-offline');
  line.hidden = conn === 'online' || !state.me || (conn === 'connecting' && line.hidden);
  line.textContent = conn === 'replaced' ? t('conn_replaced') : t('conn_offline');
}

on('conn', (conn) => {
  setConnBanner(conn);
  renderHome();
  document.body.dataset.conn = conn;
});

on('fatal', (key) => setBanner('conn', el('span', {text: t(key)})));

// ---------- joining ----------

function showJoin(messageKey) {
  showScreen('join-screen');
  $('#join-error').textContent = messageKey ? t(messageKey) : '';
  $('#join-button').disabled = false;
  $('#join-button').textContent = t('join_button');
  const input = $('#name-input');
  if (!input.value && state.me?.name) input.value = state.me.name;
  input.focus();
}

function initJoin() {
  $('#join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = $('#name-input').value.trim();
    if (!name) {
      $('#join-error').textContent = t('join_name_empty');
      $('#name-input').focus();
      return;
    }
    $('#join-error').textContent = '';
    $('#join-button').disabled = true;
    $('#join-button').textContent = t('join_working');
    initialLoad = true;
    connect(name);
  });
}

on('need_name', (key) => showJoin(key));

on('hello_error', (msg) => {
  if (!state.token) {
    showJoin();
    $('#join-error').textContent = msg.message || msg.code;
    $('#name-input').select();
  } else {
    toast(msg.message || msg.code);
  }
});

on('welcome', () => {
  if (document.body.dataset.screen === 'join-screen' || !document.body.dataset.screen) showScreen('home-screen');
  renderHome();
  if (state.current) renderHeader();
  updateTitle();
  setTimeout(() => (initialLoad = false), 1500);
  openHashRoom();
});

/** Links like https://box/#room=r_ab12 (from a room QR code) open that room. */
function openHashRoom() {
  const m = /^#room=([\w-]+)$/.exec(location.hash);
  if (!m || !state.me) return;
  if (state.current === 'room:' + m[1]) return;
  if (state.rooms.has(m[1])) openRoom(m[1]);
}

window.addEventListener('hashchange', openHashRoom);

// ---------- settings ----------

function settingsDialog() {
  const name = el('input', {value: state.me?.name || '', maxlength: 32, 'data-testid': 'settings-name'});
  const notifyState = el('p', {class: 'small muted'});
  const renderNotify = () => {
    if (!notificationsSupported()) notifyState.textContent = t('settings_notify_unsupported');
    else if (Notification.permission === 'granted') notifyState.textContent = t('settings_notify_on');
    else if (Notification.permission === 'denied') notifyState.textContent = t('settings_notify_blocked');
    else notifyState.textContent = '';
  };
  renderNotify();
  const sound = el('input', {type: 'checkbox', checked: state.prefs.sound !== false, onchange: (ev) => {
    state.prefs.sound = ev.target.checked;
    savePrefs();
  }});
  openDialog(t('settings_title'), [
    el('form', {class: 'stack', onsubmit: (ev) => {
      ev.preventDefault();
      const n = name.value.trim();
      if (n && n !== state.me?.name) connect(n);
      closeDialog();
    }}, el('label', {class: 'field'}, el('span', {text: t('settings_name')}), name), el('button', {class: 'wide', text: t('settings_rename')})),
    el('label', {class: 'check'}, sound, el('span', {text: t('settings_sound')})),
    notificationsSupported() && Notification.permission === 'default'
      ? el('button', {class: 'wide', text: t('settings_notify'), onclick: async (ev) => {
        await askPermission();
        ev.target.remove();
        renderNotify();
      }}) : null,
    notifyState,
    el('button', {class: 'wide danger', 'data-testid': 'forget-me', text: t('settings_forget'), onclick: () => {
      if (!confirm(t('settings_forget_confirm'))) return;
      disconnect();
      forgetIdentity(true);
      closeDialog();
      location.hash = '';
      location.reload();
    }}),
  ], {testid: 'settings-dialog'});
}

// ---------- service worker (app shell for offline start / install) ----------

function registerServiceWorker() {
  // Only secure pages may have one; with a clicked-through certificate warning
  // Chrome refuses it, which is fine: the app works without.
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return;
  addEventListener('load', () => {
    setTimeout(() => navigator.serviceWorker.register('/sw.js').catch(() => {}), 3000);
  });
}

// ---------- test hooks ----------

window.ahoy = {
  state,
  calls: {
    peerConnections: () => (callsModule ? callsModule.peerConnections() : []),
    current: () => (callsModule ? callsModule.current() : null),
    load: loadCalls,
  },
  send,
  request,
  openConv,
  net: {drop},
};

// ---------- start ----------

function start() {
  applyStrings();
  loadKeptConversations();
  initNotify();
  initJoin();
  initHome({openConv, openRoom});
  initChat({onCall: startCall, onRoomInfo: roomInfoDialog});
  initRooms({openConv, closeConv});
  $('#create-room-button').addEventListener('click', createRoomDialog);
  $('#invite-button').addEventListener('click', inviteDialog);
  $('#settings-button').addEventListener('click', settingsDialog);

  const blocker = callBlocker();
  if (blocker) {
    setBanner('calls', blocker === 'calls_need_https'
      ? [el('span', {text: t('calls_banner') + ' '}), el('button', {class: 'link', 'data-testid': 'calls-help', text: t('calls_banner_more'), onclick: httpsHelpDialog})]
      : el('span', {text: t(blocker)}));
    document.body.dataset.calls = 'unavailable';
  }

  addEventListener('online', nudge);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) nudge();
    else flushSaves();
  });
  addEventListener('pagehide', flushSaves);

  if (state.token) {
    // Known device: show the chats at once from what the phone kept, then catch up.
    showScreen('home-screen');
    renderHome();
    connect();
  } else {
    showJoin();
  }
  registerServiceWorker();
  document.body.dataset.ready = 'true';
}

start();
