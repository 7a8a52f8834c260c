// Calls: one-to-one and room mesh (up to 4), one peer connection (peer.js) per
// other participant; this phone's mic, camera and screen are callmedia.js's.
// Loaded on first use to keep the chat light.
//
// Politeness: of two peers, the one with the smaller user id (string order) is
// polite: on an offer collision it rolls back and takes the other's offer.
// Who offers first: the caller in a one-to-one call (after call_accepted), the
// later joiner in a room call (protocol.md). The other side waits for that
// offer, and after it may renegotiate freely (ICE restarts, camera changes).

import {state, nameOf} from './store.js';
import {send, request} from './net.js';
import {$, el} from './dom.js';
import {avatar, setOverlay, toast, openDialog} from './ui.js';
import {t} from './strings.js';
import {startRing, stopRing, systemNotify, beep} from './notify.js';
import {callBlocker} from './boxinfo.js';
import {httpsHelpDialog} from './boxdialogs.js';
import {attachChannel, shareFiles, clearFiles} from './share.js';
import {Peer} from './peer.js';
import {openLocal, closeLocal, addLocalTracks, applySink, mediaError, initMediaControls, outgoingVideo} from './callmedia.js';

let call = null; // the call we are in (or dialling)
let incoming = null; // a call ringing on this phone
let timer = null;

export function peerConnections() {
  return call ? [...call.peers.values()].map((p) => p.peer.pc) : [];
}

export function current() {
  if (!call) return null;
  return {id: call.id, media: call.media, room: call.room, phase: call.phase, peers: [...call.peers.keys()], startedAt: call.startedAt};
}

export function incomingCall() {
  return incoming;
}

// ---------- one other participant ----------

/** Someone else in the call: the connection to them and their video tile. */
class Participant {
  constructor(userId, offerer) {
    this.userId = userId;
    this.tile = makeTile(userId);
    this.peer = new Peer({
      polite: state.me.id < userId,
      offerer,
      iceServers: state.iceServers,
      signal: (data) => call && send({type: 'signal', call: call.id, to: userId, data}),
      setup: (pc) => {
        // Negotiated data channel: both sides create it with the same id, so no
        // extra round trip, and the first offer already carries it.
        attachChannel(pc.createDataChannel('files', {negotiated: true, id: 0, ordered: true}), userId);
        addLocalTracks(pc);
      },
      onTrack: (ev) => this.show(ev),
      onState: (s) => this.onState(s),
    });
  }

  show(ev) {
    const video = this.tile.video;
    const stream = ev.streams[0] || new MediaStream([ev.track]);
    if (video.srcObject !== stream) video.srcObject = stream;
    video.play().catch(() => {});
    applySink(video);
  }

  onState(s) {
    if (!call) return;
    this.tile.el.dataset.state = s;
    if (s === 'connected' && !call.startedAt) {
      call.startedAt = Date.now();
      startTimer();
    }
    updateStatus();
  }

  /** Handle one signal from this participant, in order. */
  onSignal(data) {
    this.peer.receive(data).catch((err) => console.warn('signal', err));
  }

  close() {
    this.peer.close();
    this.tile.el.remove();
  }
}

function makeTile(userId) {
  const name = nameOf(userId) || t('someone');
  const video = el('video', {autoplay: true, playsinline: true, 'data-testid': 'remote-video'});
  const tile = el('figure', {class: 'tile', 'data-user': userId, 'data-testid': 'call-tile'}, avatar(name, 'big'), video, el('figcaption', {text: name}));
  $('#call-grid').append(tile);
  return {el: tile, video};
}

// ---------- before a call ----------

/** Check the browser can call at all; explain and return false when not. */
function canCall() {
  const blocker = callBlocker();
  if (!blocker) return true;
  if (blocker === 'calls_need_https') httpsHelpDialog();
  else openDialog(t('call_video'), el('p', {'data-testid': 'call-error', text: t(blocker)}));
  return false;
}

/** TURN credentials last a few hours: fetch fresh ones when ours are getting old. */
async function freshIce() {
  if (Date.now() - (state.iceAt || 0) < 30 * 60 * 1000) return;
  try {
    const reply = await request({type: 'ice'}, 3000);
    state.iceServers = reply.ice_servers || state.iceServers;
    state.iceAt = Date.now();
  } catch {
    // Keep the old ones: STUN needs no credentials and host candidates still work.
  }
}

function newCall(fields) {
  call = {id: null, media: 'audio', room: null, peers: new Map(), phase: 'outgoing', startedAt: null, ...fields};
  $('#call-grid').replaceChildren();
  clearFiles();
  return call;
}

/** This phone's mic (and camera): false when the call ended while they opened. */
function prepareLocal(media) {
  const mine = call;
  return openLocal(media, peerConnections, () => call === mine);
}

// ---------- starting and answering ----------

/** Start a call from a conversation: dm → ring the person, room → join the room call. */
export async function startCall(conv, media) {
  if (call || !canCall()) return;
  const room = conv.startsWith('room:') ? conv.slice(5) : null;
  const peerId = room ? null : conv.split(':').slice(1).find((id) => id !== state.me.id);
  if (!room && state.users.get(peerId)?.status === 'busy') {
    toast(t('call_busy', {name: nameOf(peerId)}));
    return;
  }
  newCall({media, room, target: peerId});
  showCall();
  try {
    await freshIce();
    if (!(await prepareLocal(media))) return;
  } catch (err) {
    endCall(null);
    mediaError(err);
    return;
  }
  const mine = call;
  try {
    if (room) {
      const joined = await request({type: 'call_join', room, media});
      // Hung up while the box was answering: leave the call we just joined.
      if (call !== mine) send({type: 'call_hangup', call: joined.call});
      else onJoined(joined);
    } else {
      const ringing = await request({type: 'call_invite', to: peerId, media});
      if (call !== mine) send({type: 'call_cancel', call: ringing.call});
      else {
        if (!call.id) call.id = ringing.call;
        if (call.phase === 'outgoing') startRing(false);
      }
    }
  } catch (err) {
    if (call !== mine) return;
    endCall(null);
    toast(err.code === 'user_busy' ? t('call_busy', {name: nameOf(peerId) || t('someone')}) : t('call_error', {reason: err.message}));
  }
  updateStatus();
}

function onJoined(msg) {
  if (!call) return;
  call.id = msg.call;
  call.phase = 'active';
  // We joined last, so we offer to everyone already there.
  for (const uid of msg.peers || []) addPeer(uid, true);
  updateStatus();
}

function addPeer(uid, offerer) {
  if (!call || uid === state.me.id) return null;
  let p = call.peers.get(uid);
  if (!p) {
    p = new Participant(uid, offerer);
    call.peers.set(uid, p);
  }
  return p;
}

function removePeer(uid) {
  const p = call?.peers.get(uid);
  if (!p) return;
  p.close();
  call.peers.delete(uid);
  updateStatus();
}

/** Someone came into or left the room call: a toast and a short sound. */
function notePeer(uid, key) {
  if (uid === state.me.id) return;
  toast(t(key, {name: nameOf(uid) || t('someone')}));
  beep();
}

/**
 * The names of the people in the room call, above the video tiles. `room` is a
 * room_update's newest room: this runs before rooms.js stores it.
 */
function renderPeople(room = call?.room ? state.rooms.get(call.room) : null) {
  const line = $('#call-people');
  const ids = call?.room ? room?.call?.participants || [] : [];
  line.hidden = !ids.length;
  line.textContent = t('call_in_room', {names: ids.map((u) => (u === state.me.id ? t('call_local') : nameOf(u) || t('someone'))).join(', ')});
}

async function accept() {
  const inc = incoming;
  if (!inc) return;
  hideIncoming();
  if (!canCall()) {
    if (!inc.room) send({type: 'call_reject', call: inc.id, why: 'unsupported'});
    return;
  }
  if (inc.room) {
    await startCall('room:' + inc.room, inc.media);
    return;
  }
  newCall({id: inc.id, media: inc.media, target: inc.from, phase: 'connecting'});
  showCall();
  try {
    await freshIce();
    if (!(await prepareLocal(inc.media))) return;
  } catch (err) {
    send({type: 'call_reject', call: inc.id, why: 'no_media'});
    endCall(null);
    mediaError(err);
    return;
  }
  addPeer(inc.from, false);
  send({type: 'call_accept', call: inc.id});
  updateStatus();
}

function reject() {
  if (!incoming) return;
  if (!incoming.room) send({type: 'call_reject', call: incoming.id});
  hideIncoming();
}

function showIncoming(msg) {
  incoming = {...msg, id: msg.call};
  const name = msg.name || nameOf(msg.from) || t('someone');
  $('#incoming-avatar').replaceWith(Object.assign(avatar(name, 'big'), {id: 'incoming-avatar'}));
  $('#incoming-title').textContent = name;
  const room = msg.room ? state.rooms.get(msg.room) : null;
  $('#incoming-text').textContent = msg.room ? t('call_incoming_room', {name, room: room ? room.name : ''}) : t(msg.media === 'video' ? 'call_incoming_video' : 'call_incoming_audio');
  setOverlay('incoming-screen', true);
  $('#accept-button').focus();
  startRing(true);
  systemNotify(t('notify_incoming_call', {name}), $('#incoming-text').textContent, 'call');
}

function hideIncoming() {
  incoming = null;
  stopRing();
  setOverlay('incoming-screen', false);
}

// ---------- ending ----------

export function hangup() {
  if (!call) return;
  if (call.id) send({type: call.phase === 'outgoing' && !call.room ? 'call_cancel' : 'call_hangup', call: call.id});
  endCall('call_ended_hangup');
}

function endCall(reasonKey, params) {
  if (!call) return;
  stopRing();
  for (const p of call.peers.values()) p.close();
  closeLocal();
  call = null;
  clearInterval(timer);
  timer = null;
  $('#call-grid').replaceChildren();
  setOverlay('call-screen', false);
  if (reasonKey) toast(t(reasonKey, params));
}

// ---------- messages from the box ----------

export function onMessage(msg) {
  switch (msg.type) {
    case 'call_ringing':
      if (call && !call.room && !call.id) call.id = msg.call;
      if (call?.id === msg.call) {
        call.phase = 'outgoing';
        updateStatus();
      }
      break;
    case 'call_incoming':
      if (call || incoming) return; // busy here; the box normally stops this
      showIncoming(msg);
      break;
    case 'call_accepted':
      if (call?.id === msg.call && !call.room) {
        stopRing();
        call.phase = 'connecting';
        addPeer(msg.by, true);
        updateStatus();
      }
      break;
    case 'call_joined':
      if (call?.room === msg.room && !call.id) onJoined(msg);
      break;
    case 'call_peer_joined':
      if (call?.id === msg.call) {
        addPeer(msg.user, false);
        notePeer(msg.user, 'call_peer_joined');
      }
      break;
    case 'call_peer_left':
      if (call?.id === msg.call) {
        removePeer(msg.user);
        notePeer(msg.user, 'call_peer_left');
      }
      break;
    case 'call_ended':
      if (incoming?.id === msg.call) hideIncoming();
      if (call?.id === msg.call && msg.reason === 'merged' && call.room && call.room === msg.room) {
        // Two boxes of the site started a call of this room at once; the one that
        // started first stays: join it (the box sends the request there).
        const media = call.media;
        endCall('call_ended_merged');
        startCall('room:' + msg.room, media);
      } else if (call?.id === msg.call) {
        const key = 'call_ended_' + (msg.reason || 'hangup');
        endCall(key, {name: nameOf(msg.by) || t('someone')});
      }
      break;
    case 'call_resume':
      onResume(msg);
      break;
    case 'signal':
      if (call?.id === msg.call && msg.from && msg.data) {
        const p = addPeer(msg.from, false);
        if (p) p.onSignal(msg.data);
      }
      break;
    case 'room_update':
      // A room call we were offered but never joined has ended.
      if (incoming?.room === msg.room?.id && !msg.room.call) hideIncoming();
      if (call?.room && call.room === msg.room?.id) renderPeople(msg.room);
      break;
  }
}

/** We came back after a network drop while in a call: restart ICE with everyone. */
async function onResume(msg) {
  if (call && call.id === msg.call) {
    for (const uid of msg.peers || []) {
      const p = call.peers.get(uid);
      if (p) p.peer.restartIce();
      else addPeer(uid, true);
    }
    for (const uid of [...call.peers.keys()]) if (!(msg.peers || []).includes(uid)) removePeer(uid);
    return;
  }
  if (call) return;
  // The page was reloaded mid-call: pick it up again with fresh connections.
  if (callBlocker()) {
    send({type: 'call_hangup', call: msg.call});
    return;
  }
  newCall({id: msg.call, media: msg.media || 'audio', room: msg.room || null, phase: 'connecting'});
  showCall();
  try {
    if (!(await prepareLocal(call.media))) return;
  } catch (err) {
    send({type: 'call_hangup', call: msg.call});
    endCall(null);
    mediaError(err);
    return;
  }
  for (const uid of msg.peers || []) addPeer(uid, true);
  updateStatus();
}

// ---------- the call screen ----------

function showCall() {
  const target = call.room ? state.rooms.get(call.room)?.name : nameOf(call.target);
  $('#call-title').textContent = target || '';
  $('#call-timer').textContent = '';
  $('#call-screen').dataset.media = call.media;
  renderPeople();
  setOverlay('call-screen', true);
  updateStatus();
  $('#hangup-button').focus();
}

function startTimer() {
  clearInterval(timer);
  const tick = () => {
    if (!call?.startedAt) return;
    const s = Math.floor((Date.now() - call.startedAt) / 1000);
    const hh = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
    const ss = String(s % 60).padStart(2, '0');
    $('#call-timer').textContent = (hh ? hh + ':' : '') + mm + ':' + ss;
  };
  tick();
  timer = setInterval(tick, 1000);
}

function updateStatus() {
  if (!call) return;
  const states = [...call.peers.values()].map((p) => p.peer.state);
  let key;
  let st;
  if (call.phase === 'outgoing' && !call.room) {
    key = call.id ? 'call_ringing' : 'call_calling';
    st = call.id ? 'ringing' : 'calling';
  } else if (states.includes('connected')) {
    key = 'call_connected';
    st = 'connected';
  } else if (states.some((s) => s === 'disconnected' || s === 'failed')) {
    key = 'call_reconnecting';
    st = 'reconnecting';
  } else if (call.room && !states.length) {
    key = 'call_waiting_room';
    st = 'waiting';
  } else {
    key = 'call_connecting';
    st = 'connecting';
  }
  const status = $('#call-status');
  status.textContent = t(key, {name: nameOf(call.target) || ''});
  status.dataset.state = st;
  $('#call-screen').dataset.peers = String(call.peers.size);
}

// ---------- wiring ----------

export function init() {
  $('#accept-button').addEventListener('click', accept);
  $('#reject-button').addEventListener('click', reject);
  $('#hangup-button').addEventListener('click', hangup);
  $('#share-button').addEventListener('click', () => {
    if (call && call.peers.size) $('#share-input').click();
    else toast(t('file_none_peer'));
  });
  $('#share-input').addEventListener('change', (ev) => {
    const files = [...ev.target.files];
    ev.target.value = '';
    if (call && files.length) shareFiles(files);
  });
  initMediaControls();
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && incoming) reject();
  });
}

export {httpsHelpDialog, outgoingVideo};
