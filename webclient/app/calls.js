// Calls: one-to-one and room mesh (up to 4), one RTCPeerConnection per other
// participant, perfect negotiation. Loaded on first use to keep the chat light.
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
import {callBlocker, httpsHelpDialog} from './boxinfo.js';
import {attachChannel, shareFiles, clearFiles} from './share.js';

let call = null; // the call we are in (or dialling)
let screenTrack = null; // the shared screen, sent instead of the camera
let incoming = null; // a call ringing on this phone
let timer = null;

export function peerConnections() {
  return call ? [...call.peers.values()].map((p) => p.pc) : [];
}

export function current() {
  if (!call) return null;
  return {id: call.id, media: call.media, room: call.room, phase: call.phase, peers: [...call.peers.keys()], startedAt: call.startedAt};
}

export function incomingCall() {
  return incoming;
}

// ---------- one peer connection ----------

class Peer {
  constructor(userId, offerer) {
    this.userId = userId;
    this.polite = state.me.id < userId;
    this.offerer = offerer;
    this.gotRemote = false;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.queue = Promise.resolve();
    this.tile = makeTile(userId);
    this.open();
  }

  open() {
    const pc = new RTCPeerConnection({iceServers: state.iceServers});
    this.pc = pc;
    // Negotiated data channel: both sides create it with the same id, so no
    // extra round trip, and the first offer already carries it.
    attachChannel(pc.createDataChannel('files', {negotiated: true, id: 0, ordered: true}), this.userId);
    const tracks = (call.stream?.getTracks() || []).filter((tr) => !(screenTrack && tr.kind === 'video'));
    if (screenTrack) tracks.push(screenTrack);
    for (const track of tracks) pc.addTrack(track, call.stream);
    pc.onnegotiationneeded = () => this.negotiate();
    pc.onicecandidate = ({candidate}) => {
      if (candidate) this.signal({candidate: candidate.toJSON()});
    };
    pc.ontrack = (ev) => {
      const stream = ev.streams[0] || new MediaStream([ev.track]);
      if (this.tile.video.srcObject !== stream) this.tile.video.srcObject = stream;
      this.tile.video.play().catch(() => {});
      applySink(this.tile.video);
    };
    pc.onconnectionstatechange = () => this.onState();
    pc.oniceconnectionstatechange = () => {
      // Older Safari has no connectionState; ICE state tells the same story.
      if (pc.connectionState === undefined) this.onState(pc.iceConnectionState);
    };
  }

  signal(data) {
    send({type: 'signal', call: call.id, to: this.userId, data});
  }

  async negotiate() {
    if (!this.offerer && !this.gotRemote) return; // the other side makes the first offer
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.signal({description: this.pc.localDescription.toJSON()});
    } catch (err) {
      console.warn('negotiation', err);
    } finally {
      this.makingOffer = false;
    }
  }

  onState(s = this.pc.connectionState) {
    this.tile.el.dataset.state = s;
    if (s === 'connected' || s === 'completed') {
      clearTimeout(this.failTimer);
      if (!call.startedAt) {
        call.startedAt = Date.now();
        startTimer();
      }
    } else if (s === 'failed') {
      // Wi-Fi dropped long enough for ICE to give up: gather again and re-offer.
      this.pc.restartIce();
    }
    // 'disconnected' is usually a short Wi-Fi hiccup; ICE recovers on its own.
    updateStatus();
  }

  /** Handle one signal from this peer, in order. */
  onSignal(data) {
    this.queue = this.queue.then(() => this.apply(data)).catch((err) => console.warn('signal', err));
  }

  async apply({description, candidate}) {
    const pc = this.pc;
    if (description) {
      const collision = description.type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      try {
        await pc.setRemoteDescription(description);
      } catch (err) {
        if (description.type !== 'offer') throw err;
        // The other side started over (e.g. it reloaded the page): so do we.
        this.reopen();
        await this.pc.setRemoteDescription(description);
      }
      this.gotRemote = true;
      if (description.type === 'offer') {
        await this.pc.setLocalDescription();
        this.signal({description: this.pc.localDescription.toJSON()});
      }
    } else if (candidate) {
      try {
        await pc.addIceCandidate(candidate);
      } catch (err) {
        if (!this.ignoreOffer) console.warn('candidate', err);
      }
    }
  }

  reopen() {
    this.pc.close();
    this.gotRemote = false;
    this.open();
  }

  close() {
    this.pc.close();
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

// ---------- local media ----------

async function getMedia(media) {
  const video = media === 'video' ? {facingMode: 'user', width: {ideal: 640}, height: {ideal: 480}} : false;
  try {
    return await navigator.mediaDevices.getUserMedia({audio: {echoCancellation: true, noiseSuppression: true}, video});
  } catch (err) {
    if (video && (err.name === 'NotFoundError' || err.name === 'OverconstrainedError')) {
      return navigator.mediaDevices.getUserMedia({audio: true}); // no camera: talk anyway
    }
    throw err;
  }
}

function mediaError(err) {
  const key = err.name === 'NotAllowedError' || err.name === 'SecurityError' ? 'calls_denied'
    : err.name === 'NotFoundError' ? 'calls_no_device'
    : err.name === 'NotReadableError' ? 'calls_device_busy' : null;
  const text = key ? t(key) : t('call_error', {reason: err.message || err.name});
  openDialog(t('call_video'), el('p', {'data-testid': 'call-error', text}), {testid: 'call-error-dialog'});
}

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
  call = {id: null, media: 'audio', room: null, peers: new Map(), stream: null, phase: 'outgoing', startedAt: null, micOn: true, camOn: true, facing: 'user', ...fields};
  $('#call-grid').replaceChildren();
  clearFiles();
  return call;
}

async function prepareLocal(media) {
  const stream = await getMedia(media);
  if (!call) {
    stream.getTracks().forEach((tr) => tr.stop());
    return false;
  }
  call.stream = stream;
  call.camOn = stream.getVideoTracks().length > 0;
  const local = $('#local-video');
  local.srcObject = stream;
  local.hidden = !call.camOn;
  local.classList.toggle('mirror', call.facing === 'user');
  setupControls();
  return true;
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
    p = new Peer(uid, offerer);
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

/** The names of the people in the room call, above the video tiles. */
function renderPeople() {
  const line = $('#call-people');
  const ids = call?.room ? state.rooms.get(call.room)?.call?.participants || [] : [];
  line.hidden = !ids.length;
  line.textContent = t('call_in_room', {names: ids.map((u) => (u === state.me.id ? t('call_local') : nameOf(u) || t('someone'))).join(', ')});
}

async function accept() {
  const inc = incoming;
  if (!inc) return;
  hideIncoming();
  if (!canCall()) {
    if (!inc.room) send({type: 'call_reject', call: inc.id});
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
    send({type: 'call_reject', call: inc.id});
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
  call.stream?.getTracks().forEach((tr) => tr.stop());
  screenTrack?.stop();
  screenTrack = null;
  call = null;
  clearInterval(timer);
  timer = null;
  $('#local-video').srcObject = null;
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
      if (call?.id === msg.call) {
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
      if (call?.room && call.room === msg.room?.id) renderPeople();
      break;
  }
}

/** We came back after a network drop while in a call: restart ICE with everyone. */
async function onResume(msg) {
  if (call && call.id === msg.call) {
    for (const uid of msg.peers || []) {
      const p = call.peers.get(uid);
      if (p) p.pc.restartIce();
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
  const states = [...call.peers.values()].map((p) => p.pc.connectionState || p.pc.iceConnectionState);
  let key;
  let st;
  if (call.phase === 'outgoing' && !call.room) {
    key = call.id ? 'call_ringing' : 'call_calling';
    st = call.id ? 'ringing' : 'calling';
  } else if (states.some((s) => s === 'connected' || s === 'completed')) {
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

let controlsWired = false;

function setupControls() {
  const mute = $('#mute-button');
  const cam = $('#camera-button');
  const hasVideo = call.stream.getVideoTracks().length > 0;
  renderToggles();
  cam.hidden = !hasVideo;
  $('#switch-button').hidden = true;
  if (hasVideo) {
    navigator.mediaDevices.enumerateDevices().then((devs) => {
      $('#switch-button').hidden = devs.filter((d) => d.kind === 'videoinput').length < 2;
    }).catch(() => {});
  }
  setupSpeakers();
  // Desktop browsers can share the screen; phones have no getDisplayMedia.
  const canShare = !!navigator.mediaDevices?.getDisplayMedia;
  $('#screen-button').hidden = !canShare;
  $('#screen-note').hidden = canShare;
  renderScreenButton();
  if (controlsWired) return;
  controlsWired = true;
  mute.addEventListener('click', () => {
    if (!call) return;
    call.micOn = !call.micOn;
    for (const tr of call.stream.getAudioTracks()) tr.enabled = call.micOn;
    renderToggles();
  });
  cam.addEventListener('click', () => toggleCamera());
  $('#screen-button').addEventListener('click', () => toggleScreen());
  $('#switch-button').addEventListener('click', () => switchCamera());
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
  $('#speaker-select').addEventListener('change', () => {
    for (const v of document.querySelectorAll('#call-grid video')) applySink(v);
  });
}

function renderToggles() {
  const mute = $('#mute-button');
  mute.setAttribute('aria-pressed', String(!call.micOn));
  mute.setAttribute('aria-label', t(call.micOn ? 'call_mute' : 'call_unmute'));
  mute.title = mute.getAttribute('aria-label');
  mute.querySelector('use').setAttribute('href', call.micOn ? '#i-mic' : '#i-mic-off');
  const cam = $('#camera-button');
  cam.setAttribute('aria-pressed', String(!call.camOn));
  cam.setAttribute('aria-label', t(call.camOn ? 'call_cam_off' : 'call_cam_on'));
  cam.title = cam.getAttribute('aria-label');
  cam.querySelector('use').setAttribute('href', call.camOn ? '#i-video' : '#i-cam-off');
}

function videoSenders() {
  const out = [];
  for (const p of call.peers.values()) {
    for (const tr of p.pc.getTransceivers()) {
      if (tr.receiver.track?.kind === 'video' && tr.sender) out.push(tr.sender);
    }
  }
  return out;
}

async function replaceVideo(track) {
  for (const old of call.stream.getVideoTracks()) {
    call.stream.removeTrack(old);
    old.stop();
  }
  if (track) call.stream.addTrack(track);
  await Promise.all(videoSenders().map((s) => s.replaceTrack(track).catch(() => {})));
  const local = $('#local-video');
  local.srcObject = call.stream;
  local.hidden = !track;
  local.classList.toggle('mirror', call.facing === 'user');
}

function renderScreenButton() {
  const b = $('#screen-button');
  b.setAttribute('aria-pressed', String(!!screenTrack));
  b.setAttribute('aria-label', t(screenTrack ? 'screen_stop' : 'screen_share'));
  b.title = b.getAttribute('aria-label');
}

/** Send `track` as everyone's outgoing video (replaceTrack; an audio call gets a video line). */
async function sendVideo(track) {
  for (const p of call.peers.values()) {
    const tr = p.pc.getTransceivers().find((x) => x.sender.track?.kind === 'video' || x.receiver.track?.kind === 'video');
    if (tr) await tr.sender.replaceTrack(track).catch(() => {});
    else if (track) p.pc.addTrack(track, call.stream);
  }
}

async function toggleScreen() {
  if (!call) return;
  if (screenTrack) {
    await stopScreen();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({video: true, audio: false});
  } catch (err) {
    if (err.name !== 'NotAllowedError' && err.name !== 'AbortError') toast(t('screen_failed', {reason: err.message || err.name}));
    return;
  }
  if (!call) {
    stream.getTracks().forEach((tr) => tr.stop());
    return;
  }
  screenTrack = stream.getVideoTracks()[0];
  // The browser's own "Stop sharing" button ends the track: go back to the camera.
  screenTrack.addEventListener('ended', () => stopScreen());
  await sendVideo(screenTrack);
  const local = $('#local-video');
  local.srcObject = new MediaStream([screenTrack]);
  local.hidden = false;
  local.classList.remove('mirror');
  renderScreenButton();
}

async function stopScreen() {
  if (!screenTrack) return;
  screenTrack.stop();
  screenTrack = null;
  if (!call) return;
  const cam = call.camOn ? call.stream.getVideoTracks()[0] || null : null;
  await sendVideo(cam);
  const local = $('#local-video');
  local.srcObject = call.stream;
  local.hidden = !cam;
  local.classList.toggle('mirror', call.facing === 'user');
  renderScreenButton();
}

/** What each peer is sent as video right now (for tests): track labels. */
export function outgoingVideo() {
  return call ? [...call.peers.values()].map((p) => p.pc.getSenders().find((x) => x.track?.kind === 'video')?.track?.label || null) : [];
}

async function cameraTrack(facing) {
  // Stop the current camera first: many phones cannot open two at once.
  const base = {width: {ideal: 640}, height: {ideal: 480}};
  try {
    const s = await navigator.mediaDevices.getUserMedia({video: {...base, facingMode: {exact: facing}}});
    return s.getVideoTracks()[0];
  } catch {
    const s = await navigator.mediaDevices.getUserMedia({video: {...base, facingMode: facing}});
    return s.getVideoTracks()[0];
  }
}

async function toggleCamera() {
  if (!call) return;
  try {
    if (call.camOn) {
      call.camOn = false;
      await replaceVideo(null);
    } else {
      const track = await cameraTrack(call.facing);
      call.camOn = true;
      await replaceVideo(track);
    }
  } catch (err) {
    mediaError(err);
  }
  renderToggles();
}

async function switchCamera() {
  if (!call || !call.camOn) return;
  call.facing = call.facing === 'user' ? 'environment' : 'user';
  try {
    for (const old of call.stream.getVideoTracks()) old.stop();
    await replaceVideo(await cameraTrack(call.facing));
  } catch (err) {
    mediaError(err);
  }
}

function setupSpeakers() {
  const row = $('#speaker-row');
  // Choosing the speaker only works where the browser has setSinkId (Chrome, Edge, recent Firefox).
  if (!('setSinkId' in HTMLMediaElement.prototype)) {
    row.hidden = true;
    return;
  }
  navigator.mediaDevices.enumerateDevices().then((devs) => {
    const outs = devs.filter((d) => d.kind === 'audiooutput');
    row.hidden = outs.length < 2;
    const sel = $('#speaker-select');
    sel.replaceChildren(...outs.map((d, i) => el('option', {value: d.deviceId, text: d.label || (d.deviceId === 'default' ? t('call_speaker_default') : t('call_speaker') + ' ' + (i + 1))})));
  }).catch(() => {
    row.hidden = true;
  });
}

function applySink(video) {
  const id = $('#speaker-select').value;
  if (id && video.setSinkId) video.setSinkId(id).catch(() => {});
}

// ---------- wiring ----------

export function init() {
  $('#accept-button').addEventListener('click', accept);
  $('#reject-button').addEventListener('click', reject);
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && incoming) reject();
  });
}

export {httpsHelpDialog};
