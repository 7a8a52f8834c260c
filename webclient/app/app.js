// Start-up: wires the modules together, the join screen, settings, and the
// routing of box messages. Calls and file sharing load on first use.

import {state, on, emit, loadKeptConversations, setUnread, nameOf, flushSaves, rememberUser, setIdentity, forgetIdentity, roomIn} from './store.js';
import {connect, nudge, handle, send, request, drop} from './net.js';
import {$, el} from './dom.js';
import {showScreen, initHome, renderHome, setBanner, toast, announce} from './ui.js';
import {initChat, openConv, closeConv, noteTyping, clearTyping, renderHeader, jumpTo} from './chat.js';
import {initRooms, createRoomDialog, openRoom, roomInfoDialog} from './rooms.js';
import {callBlocker, boxInfo, secureReachable, openSecureAddress} from './boxinfo.js';
import {initNotify, beep, systemNotify, updateTitle} from './notify.js';
import {addBoxHosts} from './format.js';
import {t, applyStrings} from './strings.js';

// The dialogs about the box, loaded when one is first opened (boxdialogs.js).
const inviteDialog = () => import('./boxdialogs.js').then((m) => m.inviteDialog());
const httpsHelpDialog = () => import('./boxdialogs.js').then((m) => m.httpsHelpDialog());

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

for (const type of ['call_ringing', 'call_incoming', 'call_accepted', 'call_joined', 'call_peer_joined', 'call_peer_left', 'call_ended', 'call_resume']) {
  handle(type, toCalls);
}
// A signal without a call sets up a file sent outside calls (transfer.js).
let transferQueue = Promise.resolve();
handle('signal', (msg) => {
  if (msg.call) toCalls(msg);
  else transferQueue = transferQueue.then(() => import('./transfer.js')).then((m) => m.onSignal(msg)).catch((err) => console.error(err));
});
// Rooms in a `changes` frame: calls.js follows room calls that end (rooms.js keeps the rooms).
handle('changes', (msg) => {
  if (!callsModule) return;
  // Whole rooms only (they have a name): a call's change always comes with the whole room.
  for (const room of msg.rooms || []) if (room.name !== undefined) callsModule.onMessage({type: 'room_update', room});
});

function sendFileTo(userId) {
  import('./transfer.js').then((m) => m.pickAndSend(userId));
}

function joinRoomCall(conv) {
  startCall(conv, 'video');
}

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

// Who came, went or changed since the last `changes` frame (docs/protocol.md).
handle('changes', (msg) => {
  if (msg.online !== undefined) {
    state.online = msg.online;
    emit('presence', {});
  }
  for (const u of msg.users || []) {
    if (u.id === state.me?.id) continue;
    rememberUser(u);
    if (u.status === 'offline') state.users.delete(u.id);
    else state.users.set(u.id, u.status ? u : {...u, status: 'online'});
    emit('presence', u);
  }
});

// ---------- the people online, on demand (docs/protocol.md, "People online") ----------

// The box names only our contacts (people we have one-to-one chats with) in
// `welcome` and `changes`. While the people tab is open, it names everyone:
// we ask for the list and to be told everyone's changes, and stop on leaving.
function watchPeople(on) {
  if (state.conn !== 'online' || on === state.watching) return;
  state.watching = on;
  send({type: 'people', watch: on});
}

/** Someone we have a one-to-one chat with (a message between us): the box
 * keeps telling us of them when we do not watch everyone. */
function isContact(id) {
  const ids = [state.me?.id, id].sort();
  return (state.convs.get(`dm:${ids[0]}:${ids[1]}`)?.messages.size || 0) > 0;
}

handle('people', (msg) => {
  if (msg.online !== undefined) state.online = msg.online;
  for (const u of msg.users || []) rememberUser(u);
  if (msg.users && msg.watch) {
    // Everyone online, kept up to date by `changes` from now on.
    state.users = new Map(msg.users.map((u) => [u.id, u.status ? u : {...u, status: 'online'}]));
  } else if (msg.watch === false && !msg.users) {
    for (const id of [...state.users.keys()]) if (!isContact(id)) state.users.delete(id);
  }
  emit('presence', {});
});

// ---------- the other rooms' counts, on demand (docs/protocol.md, "Rooms and their counts") ----------

// `changes` keep the counts of the rooms we are in; those of the other rooms
// only while we watch them: while the rooms tab (the list that shows them) is
// open, or a room we are not in (its header shows its counts).
function showsOtherRooms() {
  const room = state.current?.startsWith('room:') && state.rooms.get(state.current.slice(5));
  return state.tab === 'rooms' || Boolean(room && !room.members.includes(state.me?.id));
}

function watchRooms(on) {
  if (state.conn !== 'online' || on === state.watchingRooms) return;
  state.watchingRooms = on;
  send({type: 'rooms', watch: on});
}

handle('rooms', (msg) => {
  if (!msg.rooms) return;
  for (const room of msg.rooms) state.rooms.set(room.id, roomIn(room));
  emit('rooms');
});

on('tab', (name) => {
  watchPeople(name === 'people');
  watchRooms(showsOtherRooms());
});
on('open', () => watchRooms(showsOtherRooms()));
on('rooms', () => watchRooms(showsOtherRooms())); // joined or left the open room
on('welcome', () => {
  state.watching = false; // a new connection watches when it asks
  state.watchingRooms = false;
  if (state.tab === 'people') watchPeople(true);
  watchRooms(showsOtherRooms());
});

handle('typing', (msg) => {
  if (msg.from !== state.me?.id) noteTyping(msg);
});

handle('read', (msg) => {
  if (!state.readBy[msg.conv]) state.readBy[msg.conv] = {};
  state.readBy[msg.conv][msg.from] = Math.max(state.readBy[msg.conv][msg.from] || 0, msg.seq);
  emit('read', {conv: msg.conv});
});

// Our own profile or name changed (reply to `profile` or `rename`).
handle('profile', (msg) => {
  if (!msg.user || msg.user.id !== state.me?.id) return;
  rememberUser(msg.user);
  setIdentity({id: msg.user.id, name: msg.user.name});
  emit('presence', msg.user);
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

let offlineShown = false;

function setConnBanner(conn) {
  if (conn === 'replaced') {
    setBanner('conn', [el('span', {text: t('conn_replaced') + ' '}), el('button', {class: 'link', text: t('conn_use_here'), onclick: () => connect()})]);
  } else if ((conn === 'offline' || (conn === 'connecting' && offlineShown)) && state.me) {
    // Trying again does not make us online: keep saying offline until the box answers.
    offlineShown = true;
    setBanner('conn', el('span', {text: t('conn_offline')}));
  } else {
    offlineShown = false;
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
    firstJoin = !state.token;
    connect(name);
  });
}

on('need_name', (key) => showJoin(key));

// A new person opens in the box's default room (config `default_room`): the
// first message is the name, Join, the text and Send. A link to a room wins.
let firstJoin = false;

function landInDefaultRoom(msg) {
  if (!firstJoin) return;
  firstJoin = false;
  const room = msg.default_room && state.rooms.get(msg.default_room);
  if (!room || !room.members.includes(state.me?.id) || /^#(room|join)=/.test(location.hash)) return;
  openConv('room:' + room.id);
}

on('hello_error', (msg) => {
  if (!state.token) {
    showJoin();
    $('#join-error').textContent = msg.message || msg.code;
    $('#name-input').select();
  } else {
    toast(msg.message || msg.code);
  }
});

on('welcome', (msg) => {
  if (document.body.dataset.screen === 'join-screen' || !document.body.dataset.screen) showScreen('home-screen');
  renderHome();
  if (state.current) renderHeader();
  updateTitle();
  landInDefaultRoom(msg);
  setTimeout(() => (initialLoad = false), 1500);
  openHashRoom(linkFollowed);
  linkFollowed = false;
});

/**
 * Whether this page was opened by following a link (a room's QR code or a
 * link sent to the person), not reloaded or come back to through the history:
 * a reloaded #room=… may name a room the person has left since (in another tab),
 * and reloading must not put them back in it.
 */
function openedByLink() {
  const nav = performance.getEntriesByType?.('navigation')[0];
  return !nav || !['reload', 'back_forward'].includes(nav.type);
}

let linkFollowed = openedByLink();

/**
 * Links like https://box/#room=r_ab12 (room QR code) open that room, and join
 * it when `followed` (else a non-member sees it with its Join button);
 * #join=r_ab12:<code> (invite link) joins with the code first.
 */
function openHashRoom(followed) {
  const join = /^#join=([\w-]+):([\w-]+)$/.exec(location.hash);
  if (join && state.me && state.conn === 'online') {
    history.replaceState(null, '', '#room=' + join[1]);
    openRoom(join[1], join[2]);
    return;
  }
  const m = /^#room=([\w-]+)$/.exec(location.hash);
  if (!m || !state.me) return;
  if (state.current === 'room:' + m[1] || !state.rooms.has(m[1])) return;
  if (followed) openRoom(m[1]);
  else openConv('room:' + m[1]);
}

function onHash() {
  if (location.hash === '#direct') openDirect();
  else openHashRoom(true);
}

window.addEventListener('hashchange', onHash);

/** Chat with someone on the same network without a box (direct.js). */
function openDirect() {
  import('./direct.js').then((m) => m.openDirect());
}

// ---------- leading to the secure address early ----------

/**
 * On the plain address, once joined: if this browser can already open the
 * secure one (CA installed, or its warning accepted once), offer to move there
 * now, as the same person, rather than when a call is tried.
 */
let offeredSwitch = false;
function offerSecureAddress() {
  if (offeredSwitch || callBlocker() !== 'calls_need_https' || !state.token) return;
  offeredSwitch = true;
  secureReachable().then(async (ok) => {
    document.body.dataset.secureReachable = String(ok);
    if (!ok) return;
    const info = await boxInfo();
    setBanner('calls', [el('span', {text: t('calls_banner_ready') + ' '}),
      el('button', {class: 'link', 'data-testid': 'switch-secure', text: t('calls_switch'), onclick: () => openSecureAddress(info.https_url)}),
      ' · ',
      el('button', {class: 'link', 'data-testid': 'calls-help', text: t('calls_banner_more'), onclick: httpsHelpDialog})]);
  });
}

on('welcome', offerSecureAddress);

// ---------- arriving from the plain address (boxinfo.js openSecureAddress) ----------

/** The one-time code in `#handoff=<code>[&<rest>]`, taken out of the address bar at once. */
function handoffCode() {
  const m = /^#handoff=([\w-]+)(?:&(.*))?$/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, '', location.pathname + location.search + (m[2] ? '#' + m[2] : ''));
  return m[1];
}

/** Trade the code for the device token; null when done, else what went wrong, in words. */
async function takeHandoff(code) {
  try {
    const r = await fetch('/api/handoff/redeem', {
      method: 'POST', cache: 'no-store', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({code}),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok || !body.token || !body.user?.id) return body.error || t('handoff_failed');
    // Someone else was kept under this address: the person who just came over wins.
    if (state.me && state.me.id !== body.user.id) forgetIdentity(true);
    setIdentity({id: body.user.id, name: body.user.name}, body.token);
    rememberUser(body.user);
    return null;
  } catch {
    return t('handoff_failed');
  }
}

// ---------- settings and profile (profile.js, loaded on first use) ----------

function settingsDialog() {
  import('./profile.js').then((m) => m.settingsDialog());
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
    outgoingVideo: () => (callsModule ? callsModule.outgoingVideo() : []),
    load: loadCalls,
  },
  send,
  request,
  openConv,
  jumpTo,
  load: (name) => import('./' + name + '.js'),
  net: {drop},
};

// ---------- start ----------

function begin() {
  if (location.hash === '#direct') {
    // Direct chat needs no box: do not even connect.
    openDirect();
  } else if (state.token) {
    // Known device: show the chats at once from what the phone kept, then catch up.
    showScreen('home-screen');
    renderHome();
    connect();
  } else {
    showJoin();
  }
}

function start() {
  applyStrings();
  loadKeptConversations();
  initNotify();
  initJoin();
  initHome({openConv, openRoom, sendFile: sendFileTo});
  initChat({onCall: startCall, onRoomInfo: roomInfoDialog, onJoinCall: joinRoomCall, onSendFile: sendFileTo,
    onSearch: (conv) => import('./search.js').then((m) => m.searchDialog(conv))});
  boxInfo().then((info) => info && addBoxHosts(info.http_url, info.https_url));
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

  // Either event may mean another network: reconnect now, or check that the socket still answers.
  addEventListener('online', nudge);
  addEventListener('offline', nudge);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) nudge();
    else flushSaves();
  });
  addEventListener('pagehide', flushSaves);

  const code = handoffCode();
  if (code) {
    takeHandoff(code).then((problem) => {
      begin();
      if (!problem) return;
      if (state.token) toast(problem);
      else $('#join-error').textContent = problem;
    });
  } else {
    begin();
  }
  registerServiceWorker();
  document.body.dataset.ready = 'true';
}

start();
