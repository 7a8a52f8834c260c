// The WebSocket to the box: hello, reconnect with backoff, replies matched by
// `ref`, the outbox of unsent messages and per-conversation sequence tracking.
// See docs/protocol.md.

import {state, emit, setIdentity, setBox, forgetIdentity, mergeMessage, saveOutbox, conversation, persistConv, flushSaves, rememberUser, rememberName, boxNow, newId, roomIn} from './store.js';

const handlers = new Map(); // type -> [fn]
const pending = new Map(); // ref -> {resolve, reject, timer}
let ws = null;
let refCounter = 0;
let retry = 0;
let retryTimer = null;
let watchTimer = null;
let lastHeard = 0; // when the current socket last received anything
let probeSent = 0; // when we last asked for a pong and have not heard back since (0: none)
let opened = 0; // when the current socket was created
let pendingName = null; // name to send in the next hello (first join or rename)
let helloRef = null;
let stopped = false;

/** Register a handler for a server message type. */
export function handle(type, fn) {
  if (!handlers.has(type)) handlers.set(type, []);
  handlers.get(type).push(fn);
}

function dispatch(msg) {
  for (const fn of handlers.get(msg.type) || []) {
    try {
      fn(msg);
    } catch (err) {
      console.error('handler for', msg.type, err);
    }
  }
  for (const fn of handlers.get('*') || []) fn(msg);
}

function wsUrl() {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
}

function setConn(conn) {
  if (state.conn === conn) return;
  state.conn = conn;
  emit('conn', conn);
}

/** Connect (or reconnect now). With `name`, join or rename as that name. */
export function connect(name) {
  if (name !== undefined) pendingName = name;
  stopped = false;
  clearTimeout(retryTimer);
  if (ws && state.conn === 'online' && name !== undefined) {
    // The box takes one hello per connection: rename over a fresh one.
    const old = ws;
    ws = null;
    stopWatch();
    old.close(1000);
  }
  if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) {
    if (ws.readyState === WebSocket.OPEN) sendHello();
    return;
  }
  setConn('connecting');
  let sock;
  try {
    sock = new WebSocket(wsUrl());
  } catch {
    scheduleReconnect();
    return;
  }
  ws = sock;
  startWatch();
  sock.onopen = () => {
    if (sock !== ws) return;
    lastHeard = Date.now();
    sendHello();
  };
  sock.onmessage = (ev) => {
    if (sock !== ws) return;
    lastHeard = Date.now();
    probeSent = 0;
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    onMessage(msg);
  };
  sock.onclose = (ev) => {
    if (sock !== ws) return; // a socket we already replaced or gave up on
    ws = null;
    stopWatch();
    failPending();
    if (ev.code === 4001) {
      setConn('replaced');
      return;
    }
    if (ev.code === 4003) {
      setConn('offline');
      emit('fatal', 'conn_origin');
      return;
    }
    setConn('offline');
    if (!stopped) scheduleReconnect();
  };
}

/** Close the connection and do not come back (e.g. "forget me"). */
export function disconnect() {
  stopped = true;
  clearTimeout(retryTimer);
  if (ws) {
    const s = ws;
    ws = null;
    s.close(1000);
  }
  stopWatch();
  setConn('offline');
}

/** Close the socket as a Wi-Fi drop would; the usual reconnect follows (for tests). */
export function drop() {
  if (ws) ws.close();
}

function scheduleReconnect() {
  clearTimeout(retryTimer);
  // 0.5 s, 1 s, 2 s … capped at 10 s, with jitter so phones do not stampede the box.
  const base = Math.min(10000, 500 * 2 ** retry);
  retry++;
  retryTimer = setTimeout(() => connect(), base / 2 + Math.random() * base / 2);
}

/**
 * The network may have changed (the browser's `online`/`offline` events, the
 * tab shown again): connect now instead of waiting for the backoff, or, while
 * we believe we are connected, make sure the socket still answers.
 */
export function nudge() {
  if (stopped || !(state.token || pendingName)) return;
  if (state.conn === 'offline') {
    retry = 0;
    connect();
  } else if (ws && ws.readyState === WebSocket.OPEN) {
    probe();
  } else if (ws && Date.now() - opened > 1000) {
    // A socket still opening over the network that went away may never open.
    giveUp(false);
  }
}

function sendHello() {
  const hello = {type: 'hello'};
  if (state.token) {
    hello.token = state.token;
    hello.since = {...state.lastSeq};
    if (state.box) {
      // Moved to another box of the site? It reads what we have seen by position.
      hello.box = state.box;
      hello.since_at = {...state.seenAt};
    }
  }
  if (pendingName) hello.name = pendingName;
  if (!hello.token && !hello.name) {
    emit('need_name');
    return;
  }
  helloRef = nextRef();
  hello.ref = helloRef;
  raw(hello);
}

// Liveness (docs/protocol.md, "Connection liveness"). A phone that walks out
// of Wi-Fi range gets no close event: its socket just goes quiet, and
// browsers take a minute or more to notice. The box pings every 25 s, but
// browsers answer those pings without telling the page. So the app watches
// what it hears: after QUIET_MS without a frame it sends a `ping`; when
// nothing at all arrives within PONG_WAIT_MS of that, the socket is dead.
// We drop it at once (not waiting for a close event that can take a minute),
// show offline and open a new one. A socket that neither opens nor gets its
// `welcome` within OPEN_WAIT_MS is given up the same way.
const WATCH_EVERY_MS = 500;
const QUIET_MS = 2500;
const PONG_WAIT_MS = 4000;
const OPEN_WAIT_MS = 8000;

function startWatch() {
  stopWatch();
  opened = Date.now();
  lastHeard = opened;
  probeSent = 0;
  watchTimer = setInterval(watch, WATCH_EVERY_MS);
}

function stopWatch() {
  clearInterval(watchTimer);
  watchTimer = null;
  probeSent = 0;
}

function watch() {
  if (!ws) return stopWatch();
  const now = Date.now();
  if (state.conn !== 'online') {
    // Still opening, or our hello unanswered (not: waiting for a person to pick a name).
    const waiting = ws.readyState === WebSocket.CONNECTING || helloRef;
    if (waiting && now - opened > OPEN_WAIT_MS) giveUp(false);
    return;
  }
  if (probeSent && now - probeSent > PONG_WAIT_MS) {
    giveUp(true);
  } else if (!probeSent && now - lastHeard > QUIET_MS) {
    probe();
  }
}

/** Ask the box for a pong; no frame back within PONG_WAIT_MS means the socket is dead. */
function probe() {
  if (probeSent || !ws || ws.readyState !== WebSocket.OPEN) return;
  probeSent = Date.now();
  raw({type: 'ping'});
}

/** Forget the current socket without waiting for its close event, and try again. */
function giveUp(wasOnline) {
  const dead = ws;
  ws = null;
  stopWatch();
  failPending();
  setConn('offline');
  try {
    dead.close(4000, 'no answer');
  } catch {
    // already closing
  }
  if (stopped) return;
  if (wasOnline) {
    // The network went quiet: try again at once (the backoff follows).
    retry = 0;
  }
  scheduleReconnect();
}

function nextRef() {
  refCounter = (refCounter + 1) % 1e9;
  return 'r' + refCounter;
}

function raw(obj) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(obj));
  return true;
}

/** Send a message that needs no reply. Returns false when not connected. */
export function send(obj) {
  if (state.conn !== 'online') return false;
  return raw(obj);
}

/** Send and wait for the reply carrying the same ref (rejects with the error message). */
export function request(obj, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    if (state.conn !== 'online') {
      reject(Object.assign(new Error('offline'), {code: 'offline'}));
      return;
    }
    const ref = nextRef();
    const timer = setTimeout(() => {
      pending.delete(ref);
      reject(Object.assign(new Error('timeout'), {code: 'timeout'}));
    }, timeoutMs);
    pending.set(ref, {resolve, reject, timer});
    raw({...obj, ref});
  });
}

function failPending() {
  for (const [ref, p] of pending) {
    clearTimeout(p.timer);
    p.reject(Object.assign(new Error('offline'), {code: 'offline'}));
    pending.delete(ref);
  }
}

/** Names that frames carry with ids (typing, read markers, calls, room
 * details): the app shows them without knowing everyone online. */
function noteNames(msg) {
  if (typeof msg.name === 'string') {
    const id = msg.type === 'call_accepted' ? msg.by : msg.type.startsWith('call_peer_') ? msg.user : msg.from;
    if (id && msg.type !== 'room_request') rememberName(id, msg.name);
    else if (msg.type === 'room_request') rememberName(msg.user, msg.name);
  }
  for (const [id, name] of Object.entries(msg.names || {})) rememberName(id, name);
  for (const p of msg.people || []) rememberName(p.id, p.name);
  const rooms = msg.rooms || (msg.room && typeof msg.room === 'object' ? [msg.room] : []);
  for (const r of rooms) for (const [id, name] of Object.entries(r?.call?.names || {})) rememberName(id, name);
}

function onMessage(msg) {
  if (msg.type === 'pong') return;
  noteNames(msg);
  if (msg.type === 'error' && msg.ref && msg.ref === helloRef) {
    helloRef = null;
    onHelloError(msg);
    return;
  }
  if (msg.type === 'welcome') {
    helloRef = null;
    onWelcome(msg);
  } else if (msg.type === 'ack') {
    onAck(msg);
  } else if (msg.type === 'message') {
    onIncoming(msg);
  } else if (msg.type === 'history') {
    onHistory(msg);
  } else if (msg.type === 'error' && msg.ref && msg.ref.startsWith('m-')) {
    onSendError(msg);
  }
  if (msg.ref && pending.has(msg.ref)) {
    const p = pending.get(msg.ref);
    pending.delete(msg.ref);
    clearTimeout(p.timer);
    if (msg.type === 'error') p.reject(Object.assign(new Error(msg.message || msg.code), {code: msg.code}));
    else p.resolve(msg);
  }
  dispatch(msg);
}

function onHelloError(msg) {
  if (msg.code === 'bad_token') {
    // The box forgot us (e.g. its data was wiped): start over with a name.
    forgetIdentity(false);
    pendingName = null;
    emit('need_name', 'join_forgotten');
    return;
  }
  pendingName = null;
  emit('hello_error', msg);
  if (!state.token) return; // first join refused: wait for another name
  // A rename was refused: join again under the old name.
  sendHello();
}

function onWelcome(msg) {
  retry = 0;
  pendingName = null;
  state.clockSkew = (msg.server_time || Date.now()) - Date.now();
  setIdentity({id: msg.you.id, name: msg.you.name}, msg.token || state.token);
  setBox(msg.box);
  state.users = new Map();
  state.online = msg.online ?? 0;
  rememberUser(msg.you);
  for (const u of msg.users || []) {
    state.users.set(u.id, u.status ? u : {...u, status: 'online'});
    rememberUser(u);
  }
  state.rooms = new Map((msg.rooms || []).map((r) => [r.id, roomIn(r)]));
  state.iceServers = msg.ice_servers || [];
  state.iceAt = Date.now();
  if (msg.limits) state.limits = {...state.limits, ...msg.limits};
  // Retarget outbox items written before we knew our id.
  for (const item of state.outbox) {
    if (item.to && !item.conv) item.conv = dmConvFor(item.to);
  }
  setConn('online');
  emit('welcome', msg);
  flushOutbox();
}

function dmConvFor(userId) {
  const ids = [state.me.id, userId].sort();
  return `dm:${ids[0]}:${ids[1]}`;
}

function noteSeq(conv, seq) {
  const last = state.lastSeq[conv] || 0;
  if (last && seq > last + 1) {
    // We missed something (e.g. a frame lost in a reconnect race): catch up.
    send({type: 'sync', conv, after: last, limit: 500});
  }
}

function onAck(msg) {
  const idx = state.outbox.findIndex((o) => o.id === msg.id);
  const item = idx >= 0 ? state.outbox[idx] : null;
  if (idx >= 0) {
    state.outbox.splice(idx, 1);
    saveOutbox();
  }
  noteSeq(msg.conv, msg.seq);
  const known = conversation(msg.conv).messages.get(msg.id);
  mergeMessage({
    id: msg.id,
    conv: msg.conv,
    seq: msg.seq,
    at: msg.at,
    ts: msg.ts,
    from: state.me.id,
    name: state.me.name,
    text: known?.text ?? item?.text ?? '',
    reply_to: known?.reply_to ?? item?.reply_to,
  });
  emit('messages', {conv: msg.conv, fresh: []});
}

function onSendError(msg) {
  const idx = state.outbox.findIndex((o) => o.id === msg.ref);
  if (idx < 0) return;
  if (msg.code === 'rate_limited') {
    // Dropped unread, not refused: it stays queued and goes again shortly.
    const item = state.outbox[idx];
    setTimeout(() => state.outbox.includes(item) && transmit(item), 2000);
    return;
  }
  const [item] = state.outbox.splice(idx, 1);
  saveOutbox();
  const m = conversation(item.conv).messages.get(item.id);
  if (m) {
    m.status = 'failed';
    m.error = msg.message || msg.code;
  }
  emit('messages', {conv: item.conv, fresh: []});
}

function onIncoming(msg) {
  noteSeq(msg.conv, msg.seq);
  const isNew = mergeMessage(strip(msg));
  emit('messages', {conv: msg.conv, fresh: isNew ? [msg] : []});
}

function onHistory(msg) {
  const known = (state.lastSeq[msg.conv] || 0) > 0;
  const fresh = [];
  for (const m of msg.messages || []) {
    if (mergeMessage(strip(m))) fresh.push(m);
    // Our own message stored by the box but whose ack we missed.
    const idx = state.outbox.findIndex((o) => o.id === m.id);
    if (idx >= 0) {
      state.outbox.splice(idx, 1);
      saveOutbox();
    }
  }
  const c = conversation(msg.conv);
  if (msg.more && msg.messages?.length) {
    const last = msg.messages[msg.messages.length - 1].seq;
    send({type: 'sync', conv: msg.conv, after: last, limit: 500});
  }
  if (msg.messages?.length && msg.messages[0].seq === 1) c.loadedOldest = true;
  persistConv(msg.conv);
  emit('messages', {conv: msg.conv, fresh, history: true, known});
}

function strip(m) {
  const {type, ...rest} = m;
  return rest;
}

/**
 * Queue a text message and send it if connected. It stays in the outbox
 * (localStorage) until the box acks it; resending uses the same id, so the box
 * stores it once.
 */
export function sendText(target, text, replyTo) {
  const item = {id: newId(), text, ts: boxNow()};
  if (replyTo) item.reply_to = replyTo;
  if (target.room) {
    item.room = target.room;
    item.conv = 'room:' + target.room;
  } else {
    item.to = target.to;
    item.conv = dmConvFor(target.to);
  }
  state.outbox.push(item);
  saveOutbox();
  const c = conversation(item.conv);
  c.messages.set(item.id, {id: item.id, conv: item.conv, from: state.me.id, name: state.me.name, text, ts: item.ts, reply_to: item.reply_to, status: 'sending'});
  emit('messages', {conv: item.conv, fresh: []});
  transmit(item);
  return item;
}

function transmit(item) {
  const frame = {type: 'send', id: item.id, text: item.text, ref: item.id};
  if (item.reply_to) frame.reply_to = item.reply_to;
  if (item.room) frame.room = item.room;
  else frame.to = item.to;
  send(frame);
}

function flushOutbox() {
  for (const item of [...state.outbox]) transmit(item);
}

/** Ask the box for messages older than what we have. */
export function loadOlder(conv, beforeSeq) {
  return request({type: 'sync', conv, before: beforeSeq, limit: 100});
}

export function flush() {
  flushSaves();
}
