// Application state and what of it survives a reload (localStorage).
// Modules change state through the functions here and listen with on().

const KEY = 'ahoy.';
const MAX_KEPT = 200; // messages kept per conversation on the phone

function load(name, fallback) {
  try {
    const v = localStorage.getItem(KEY + name);
    return v === null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}

function save(name, value) {
  try {
    if (value === null || value === undefined) localStorage.removeItem(KEY + name);
    else localStorage.setItem(KEY + name, JSON.stringify(value));
  } catch {
    // Storage full or disabled (private mode): the app still works for this visit.
  }
}

export const state = {
  token: load('token', null),
  me: load('me', null), // {id, name}
  conn: 'offline', // offline | connecting | online | replaced
  users: new Map(), // people online we are told of (contacts; everyone while watching): id -> {id, name, status}
  online: 0, // how many are online on the box, me included
  watching: false, // asked the box for everyone's changes (`people` with watch)
  watchingRooms: false, // asked the box for the other rooms' counts (`rooms` with watch)
  names: new Map(Object.entries(load('names', {}))), // every id we have seen -> name
  profiles: new Map(Object.entries(load('profiles', {}))), // id -> {colour, avatar, status_text}
  rooms: new Map(), // id -> room object from the box
  convs: new Map(), // conv -> {id, messages: Map(msgId -> msg)}
  lastSeq: load('seq', {}), // conv -> highest seq seen (on the box in `box`)
  // A box of a site (docs/protocol.md, "Several boxes"): the box our seqs are
  // from, and per conversation the highest position seen of every box.
  box: load('box', null),
  seenAt: load('seen_at', {}), // conv -> {box id: n}
  unread: load('unread', {}), // conv -> count
  readBy: {}, // conv -> {userId: seq}
  outbox: load('outbox', []), // [{id, conv, room?, to?, text, ts}]
  typing: {}, // conv -> {userId: expiresAt}
  current: null, // open conversation
  tab: 'chats',
  iceServers: [],
  iceAt: 0, // when iceServers came from the box
  limits: {text: 4000, name: 32, room_members: 200, call_members: 4},
  clockSkew: 0, // box time minus phone time
  prefs: load('prefs', {sound: true}),
};

const listeners = new Map();

/** Subscribe to a named change; returns an unsubscribe function. */
export function on(event, fn) {
  if (!listeners.has(event)) listeners.set(event, new Set());
  listeners.get(event).add(fn);
  return () => listeners.get(event).delete(fn);
}

export function emit(event, detail) {
  for (const fn of listeners.get(event) || []) {
    try {
      fn(detail);
    } catch (err) {
      console.error(err);
    }
  }
}

export function setIdentity(me, token) {
  state.me = me;
  if (token !== undefined) state.token = token;
  save('me', me);
  save('token', state.token);
  if (me) rememberName(me.id, me.name);
}

/** Forget who we are (bad_token or "forget me"); chats stay unless `everything`. */
export function forgetIdentity(everything = false) {
  state.token = null;
  state.me = null;
  save('token', null);
  save('me', null);
  if (everything) {
    for (const conv of state.convs.keys()) save('msgs.' + conv, null);
    state.convs.clear();
    state.lastSeq = {};
    state.unread = {};
    state.outbox = [];
    state.names.clear();
    state.seenAt = {};
    state.box = null;
    for (const k of ['seq', 'seen_at', 'box', 'unread', 'outbox', 'names']) save(k, null);
  }
}

export function savePrefs() {
  save('prefs', state.prefs);
}

export function rememberName(id, name) {
  if (!id || !name || state.names.get(id) === name) return;
  state.names.set(id, name);
  save('names', Object.fromEntries(state.names));
}

/** Keep what we know of a person (name, colour, picture, status line). */
export function rememberUser(u) {
  if (!u?.id) return;
  rememberName(u.id, u.name);
  const p = {colour: u.colour || null, avatar: u.avatar || null, status_text: u.status_text || ''};
  const old = state.profiles.get(u.id);
  if (old && old.colour === p.colour && old.avatar === p.avatar && old.status_text === p.status_text) return;
  state.profiles.set(u.id, p);
  save('profiles', Object.fromEntries(state.profiles));
}

/** A room as the box sent it, with `members` always a list: a room we are
 * not in comes without who is in it (its `count` says how many). */
export function roomIn(r) {
  if (r.members) return r;
  // A room of over 50 comes without members even to us: `member` says we are in.
  return {...r, members: r.member && state.me ? [state.me.id] : []};
}

/** How many are in a room. */
export function memberCount(r) {
  return r.count ?? r.members.length;
}

export function nameOf(id) {
  if (state.me && id === state.me.id) return state.me.name;
  return state.users.get(id)?.name || state.names.get(id) || null;
}

/** The conversation id for a one-to-one chat with `userId`. */
export function dmConv(userId) {
  const ids = [state.me.id, userId].sort();
  return `dm:${ids[0]}:${ids[1]}`;
}

/** The other person in a dm conversation, or null for rooms. */
export function dmPeer(conv) {
  if (!conv.startsWith('dm:')) return null;
  const [, a, b] = conv.split(':');
  return a === state.me?.id ? b : a;
}

export function roomOfConv(conv) {
  return conv.startsWith('room:') ? conv.slice(5) : null;
}

export function conversation(conv) {
  let c = state.convs.get(conv);
  if (!c) {
    c = {id: conv, messages: new Map(), loadedOldest: false};
    for (const m of load('msgs.' + conv, [])) c.messages.set(m.id, m);
    state.convs.set(conv, c);
  }
  return c;
}

/** Load every conversation kept on the phone (called once at start). */
export function loadKeptConversations() {
  for (let i = 0; i < localStorage.length; i++) {
    const k = localStorage.key(i);
    if (k && k.startsWith(KEY + 'msgs.')) conversation(k.slice(KEY.length + 5));
  }
  for (const item of state.outbox) {
    const c = conversation(item.conv);
    if (!c.messages.has(item.id)) {
      c.messages.set(item.id, {id: item.id, conv: item.conv, from: state.me?.id, text: item.text, ts: item.ts, status: 'sending'});
    }
  }
}

/** Messages of a conversation in display order: by seq, unsent ones last. */
export function orderedMessages(conv) {
  const list = [...conversation(conv).messages.values()];
  return list.sort((a, b) => {
    if (a.at && b.at) {
      // On a site every phone shows the acknowledging box's time, then the position.
      const [ab, an] = a.at.split(':');
      const [bb, bn] = b.at.split(':');
      return a.ts - b.ts || (ab < bb ? -1 : ab > bb ? 1 : 0) || an - bn;
    }
    return (a.seq ?? Infinity) - (b.seq ?? Infinity) || a.ts - b.ts;
  });
}

/** The box we talk to now; a new one means our seqs are another box's. */
export function setBox(box) {
  if (!box || box === state.box) return;
  if (state.box) state.lastSeq = {};
  state.box = box;
  save('box', box);
  save('seq', state.lastSeq);
}

const pendingSaves = new Set();
let saveTimer = null;

/** Persist a conversation soon (batched so a long history costs one write). */
export function persistConv(conv) {
  pendingSaves.add(conv);
  if (saveTimer) return;
  saveTimer = setTimeout(flushSaves, 200);
}

export function flushSaves() {
  clearTimeout(saveTimer);
  saveTimer = null;
  for (const conv of pendingSaves) {
    const c = state.convs.get(conv);
    if (!c) continue;
    const kept = orderedMessages(conv).filter((m) => m.seq !== undefined).slice(-MAX_KEPT);
    save('msgs.' + conv, kept.map(({id, conv: cv, seq, at, from, name, text, ts, reply_to, reactions}) => ({id, conv: cv, seq, at, from, name, text, ts, reply_to, reactions})));
  }
  pendingSaves.clear();
  save('seq', state.lastSeq);
  save('seen_at', state.seenAt);
  save('unread', state.unread);
}

/**
 * Merge one message from the box (event, history or our own ack).
 * Returns true when it was not known before, so callers can notify.
 */
export function mergeMessage(msg) {
  const c = conversation(msg.conv);
  const known = c.messages.get(msg.id);
  const merged = {...known, ...msg, status: 'delivered'};
  c.messages.set(msg.id, merged);
  if (msg.from && msg.name) rememberName(msg.from, msg.name);
  if (msg.seq > (state.lastSeq[msg.conv] || 0)) state.lastSeq[msg.conv] = msg.seq;
  if (msg.at) {
    const [box, n] = msg.at.split(':');
    const seen = state.seenAt[msg.conv] || (state.seenAt[msg.conv] = {});
    if (Number(n) > (seen[box] || 0)) seen[box] = Number(n);
  }
  persistConv(msg.conv);
  return !known;
}

/** The message with sequence number `seq` in `conv`, if we have it. */
export function messageBySeq(conv, seq) {
  for (const m of conversation(conv).messages.values()) if (m.seq === seq) return m;
  return null;
}

/** Someone reacted (or took a reaction back). Returns the message, if known. */
export function applyReaction(conv, seq, from, emoji, on) {
  const m = messageBySeq(conv, seq);
  if (!m) return null;
  const reactions = {...(m.reactions || {})};
  const who = new Set(reactions[emoji] || []);
  if (on) who.add(from);
  else who.delete(from);
  if (who.size) reactions[emoji] = [...who];
  else delete reactions[emoji];
  m.reactions = reactions;
  persistConv(conv);
  return m;
}

/** The admin deleted a message: forget it here too. */
export function deleteBySeq(conv, seq) {
  const m = messageBySeq(conv, seq);
  if (!m) return false;
  conversation(conv).messages.delete(m.id);
  persistConv(conv);
  return true;
}

export function removeConv(conv) {
  state.convs.delete(conv);
  delete state.lastSeq[conv];
  delete state.unread[conv];
  save('msgs.' + conv, null);
  flushSaves();
}

export function saveOutbox() {
  save('outbox', state.outbox);
}

export function setUnread(conv, n) {
  if (n) state.unread[conv] = n;
  else delete state.unread[conv];
  save('unread', state.unread);
  emit('unread');
}

export function totalUnread() {
  return Object.values(state.unread).reduce((a, b) => a + b, 0);
}

/** A message id the box accepts: 8-64 chars of A-Z a-z 0-9 _ -. */
export function newId(prefix = 'm-') {
  // crypto.randomUUID only exists on secure pages; getRandomValues works on http too.
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return prefix + [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Box time now, in ms. */
export function boxNow() {
  return Date.now() + state.clockSkew;
}
