// This phone's side of a call: its mic, camera and shared screen, the preview,
// and the call screen's buttons that change them (mute, camera on and off,
// switch camera, share the screen, choose the speaker). calls.js says which
// peer connections the call has; nothing here knows who is in it.

import {$, el} from './dom.js';
import {openDialog, toast} from './ui.js';
import {t} from './strings.js';

// {stream, micOn, camOn, facing, screen, connections}: the call's own media;
// `screen` is the shared screen's track, sent instead of the camera.
let local = null;

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

/** Explain why the mic or camera could not be used. */
export function mediaError(err) {
  const key = err.name === 'NotAllowedError' || err.name === 'SecurityError' ? 'calls_denied'
    : err.name === 'NotFoundError' ? 'calls_no_device'
    : err.name === 'NotReadableError' ? 'calls_device_busy' : null;
  const text = key ? t(key) : t('call_error', {reason: err.message || err.name});
  openDialog(t('call_video'), el('p', {'data-testid': 'call-error', text}), {testid: 'call-error-dialog'});
}

/**
 * Open the mic, and the camera for a video call, and show the preview and buttons.
 * `connections()` gives the call's RTCPeerConnections; false when `stillWanted()`
 * says the call went away meanwhile. Throws what getUserMedia throws.
 */
export async function openLocal(media, connections, stillWanted) {
  const stream = await getMedia(media);
  if (!stillWanted()) {
    stream.getTracks().forEach((tr) => tr.stop());
    return false;
  }
  local = {stream, micOn: true, camOn: stream.getVideoTracks().length > 0, facing: 'user', screen: null, connections};
  showPreview(stream, local.camOn);
  renderControls();
  return true;
}

/** Stop the mic, camera and screen: the call is over. */
export function closeLocal() {
  if (!local) return;
  local.stream.getTracks().forEach((tr) => tr.stop());
  local.screen?.stop();
  local = null;
  $('#local-video').srcObject = null;
}

/** Put what this phone sends on a new peer connection: mic, and camera or screen. */
export function addLocalTracks(pc) {
  if (!local) return;
  const tracks = local.stream.getTracks().filter((tr) => !(local.screen && tr.kind === 'video'));
  if (local.screen) tracks.push(local.screen);
  for (const track of tracks) pc.addTrack(track, local.stream);
}

/** What each peer is sent as video right now (for tests): track labels. */
export function outgoingVideo() {
  return local ? local.connections().map((pc) => pc.getSenders().find((x) => x.track?.kind === 'video')?.track?.label || null) : [];
}

function showPreview(stream, visible, mirror = local.facing === 'user') {
  const preview = $('#local-video');
  preview.srcObject = stream;
  preview.hidden = !visible;
  preview.classList.toggle('mirror', mirror);
}

// ---------- the buttons ----------

/** Wire the media buttons once; each call's state is drawn by renderControls(). */
export function initMediaControls() {
  $('#mute-button').addEventListener('click', () => {
    if (!local) return;
    local.micOn = !local.micOn;
    for (const tr of local.stream.getAudioTracks()) tr.enabled = local.micOn;
    renderToggles();
  });
  $('#camera-button').addEventListener('click', () => toggleCamera());
  $('#screen-button').addEventListener('click', () => toggleScreen());
  $('#switch-button').addEventListener('click', () => switchCamera());
  $('#speaker-select').addEventListener('change', () => {
    for (const v of document.querySelectorAll('#call-grid video')) applySink(v);
  });
}

function renderControls() {
  const hasVideo = local.stream.getVideoTracks().length > 0;
  renderToggles();
  $('#camera-button').hidden = !hasVideo;
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
}

function renderToggles() {
  const mute = $('#mute-button');
  mute.setAttribute('aria-pressed', String(!local.micOn));
  mute.setAttribute('aria-label', t(local.micOn ? 'call_mute' : 'call_unmute'));
  mute.title = mute.getAttribute('aria-label');
  mute.querySelector('use').setAttribute('href', local.micOn ? '#i-mic' : '#i-mic-off');
  const cam = $('#camera-button');
  cam.setAttribute('aria-pressed', String(!local.camOn));
  cam.setAttribute('aria-label', t(local.camOn ? 'call_cam_off' : 'call_cam_on'));
  cam.title = cam.getAttribute('aria-label');
  cam.querySelector('use').setAttribute('href', local.camOn ? '#i-video' : '#i-cam-off');
}

function renderScreenButton() {
  const b = $('#screen-button');
  const sharing = !!local?.screen;
  b.setAttribute('aria-pressed', String(sharing));
  b.setAttribute('aria-label', t(sharing ? 'screen_stop' : 'screen_share'));
  b.title = b.getAttribute('aria-label');
}

// ---------- camera ----------

function videoSenders() {
  const out = [];
  for (const pc of local.connections()) {
    for (const tr of pc.getTransceivers()) {
      if (tr.receiver.track?.kind === 'video' && tr.sender) out.push(tr.sender);
    }
  }
  return out;
}

async function replaceVideo(track) {
  for (const old of local.stream.getVideoTracks()) {
    local.stream.removeTrack(old);
    old.stop();
  }
  if (track) local.stream.addTrack(track);
  await Promise.all(videoSenders().map((s) => s.replaceTrack(track).catch(() => {})));
  showPreview(local.stream, !!track);
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
  if (!local) return;
  const mine = local;
  try {
    if (mine.camOn) {
      mine.camOn = false;
      renderToggles(); // the button answers at once; the senders follow
      await replaceVideo(null);
    } else {
      const track = await cameraTrack(mine.facing);
      if (local !== mine) {
        track.stop(); // the call ended while the camera opened
        return;
      }
      mine.camOn = true;
      await replaceVideo(track);
    }
  } catch (err) {
    mediaError(err);
  }
  if (local === mine) renderToggles();
}

async function switchCamera() {
  if (!local || !local.camOn) return;
  const mine = local;
  mine.facing = mine.facing === 'user' ? 'environment' : 'user';
  try {
    for (const old of mine.stream.getVideoTracks()) old.stop();
    const track = await cameraTrack(mine.facing);
    if (local !== mine) track.stop();
    else await replaceVideo(track);
  } catch (err) {
    mediaError(err);
  }
}

// ---------- screen sharing ----------

/** Send `track` as everyone's outgoing video (replaceTrack; an audio call gets a video line). */
async function sendVideo(track) {
  for (const pc of local.connections()) {
    const tr = pc.getTransceivers().find((x) => x.sender.track?.kind === 'video' || x.receiver.track?.kind === 'video');
    if (tr) await tr.sender.replaceTrack(track).catch(() => {});
    else if (track) pc.addTrack(track, local.stream);
  }
}

async function toggleScreen() {
  if (!local) return;
  if (local.screen) {
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
  if (!local) {
    stream.getTracks().forEach((tr) => tr.stop());
    return;
  }
  const screen = stream.getVideoTracks()[0];
  local.screen = screen;
  // The browser's own "Stop sharing" button ends the track: go back to the camera.
  screen.addEventListener('ended', () => stopScreen());
  await sendVideo(screen);
  showPreview(new MediaStream([screen]), true, false);
  renderScreenButton();
}

async function stopScreen() {
  if (!local?.screen) return;
  local.screen.stop();
  local.screen = null;
  const cam = local.camOn ? local.stream.getVideoTracks()[0] || null : null;
  await sendVideo(cam);
  showPreview(local.stream, !!cam);
  renderScreenButton();
}

// ---------- speakers ----------

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

/** Play `video` (a peer's tile) on the chosen speaker. */
export function applySink(video) {
  const id = $('#speaker-select').value;
  if (id && video.setSinkId) video.setSinkId(id).catch(() => {});
}
