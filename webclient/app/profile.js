// Settings and profile, loaded on first use: name (renamed on the live
// connection), colour, status line, picture (shrunk on the phone before it is
// uploaded), sound, notifications, forgetting this phone.

import {state, savePrefs, forgetIdentity, rememberUser, emit} from './store.js';
import {request, disconnect} from './net.js';
import {el} from './dom.js';
import {openDialog, closeDialog, avatar} from './ui.js';
import {askPermission, notificationsSupported} from './notify.js';
import {t} from './strings.js';

// Dark enough for white initials (contrast 4.5:1 or better), told apart by hue.
export const PALETTE = ['#1565c0', '#00695c', '#2e7d32', '#6a1b9a', '#ad1457', '#c62828', '#a0410d', '#37474f', '#4527a0', '#00838f'];
const PICTURE_MAX = 512; // pixels on the longer side sent to the box

/** Shrink a picture with a canvas so the upload stays small; JPEG out. */
export async function shrinkPicture(file) {
  let source;
  try {
    source = await createImageBitmap(file);
  } catch {
    return file; // the box explains what is wrong with it
  }
  const scale = Math.min(1, PICTURE_MAX / Math.max(source.width, source.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(source.width * scale));
  canvas.height = Math.max(1, Math.round(source.height * scale));
  canvas.getContext('2d').drawImage(source, 0, 0, canvas.width, canvas.height);
  source.close?.();
  return new Promise((resolve) => canvas.toBlob((b) => resolve(b || file), 'image/jpeg', 0.85));
}

/** Upload a profile picture; resolves with the user, rejects with the box's reason. */
export async function uploadPicture(file) {
  const body = await shrinkPicture(file);
  let res;
  try {
    res = await fetch('/api/avatar', {method: 'POST', body, headers: {Authorization: 'Bearer ' + state.token, 'Content-Type': body.type || 'application/octet-stream'}});
  } catch {
    throw new Error(t('err_offline'));
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    // not JSON (e.g. a proxy's page)
  }
  if (!res.ok) throw new Error(data?.error || t('profile_picture_failed', {status: res.status}));
  return data.user;
}

function applyUser(user) {
  if (!user) return;
  rememberUser(user);
  state.me = {...state.me, name: user.name};
  emit('presence', user);
}

export function settingsDialog() {
  const me = state.me?.id;
  const mine = state.profiles.get(me) || {};
  const error = el('p', {class: 'error', role: 'alert', 'data-testid': 'profile-error'});
  const fail = (err) => (error.textContent = err.message);
  const preview = el('span', {class: 'profile-preview'});
  const renderPreview = () => preview.replaceChildren(avatar(state.me?.name, 'big', me));
  renderPreview();

  const name = el('input', {value: state.me?.name || '', maxlength: 32, 'data-testid': 'settings-name'});
  const status = el('input', {value: mine.status_text || '', maxlength: 80, 'data-testid': 'profile-status', placeholder: t('profile_status_hint')});
  let colour = mine.colour || null;
  const swatches = el('div', {class: 'swatches', role: 'radiogroup', 'aria-label': t('profile_colour')}, PALETTE.map((c) => {
    const b = el('button', {type: 'button', class: 'swatch', role: 'radio', 'aria-checked': String(c === colour), 'aria-label': c, 'data-testid': 'profile-colour', 'data-colour': c, onclick: () => {
      colour = c;
      for (const x of swatches.children) x.setAttribute('aria-checked', String(x === b));
    }});
    b.style.background = c;
    return b;
  }));
  const picture = el('input', {type: 'file', accept: 'image/*', 'data-testid': 'profile-picture', class: 'file-input', onchange: async (ev) => {
    const file = ev.target.files[0];
    ev.target.value = '';
    if (!file) return;
    error.textContent = t('profile_uploading');
    try {
      applyUser(await uploadPicture(file));
      error.textContent = '';
      renderPreview();
    } catch (err) {
      fail(err);
    }
  }});

  const save = async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    try {
      const n = name.value.trim();
      if (n && n !== state.me?.name) applyUser((await request({type: 'rename', name: n})).user);
      const profile = {type: 'profile', status_text: status.value.trim()};
      if (colour) profile.colour = colour;
      applyUser((await request(profile)).user);
      renderPreview();
      closeDialog();
    } catch (err) {
      fail(err);
    }
  };

  const sound = el('input', {type: 'checkbox', checked: state.prefs.sound !== false, onchange: (ev) => {
    state.prefs.sound = ev.target.checked;
    savePrefs();
  }});
  const notifyState = el('p', {class: 'small muted'});
  const renderNotify = () => {
    if (!notificationsSupported()) notifyState.textContent = t('settings_notify_unsupported');
    else if (Notification.permission === 'granted') notifyState.textContent = t('settings_notify_on');
    else if (Notification.permission === 'denied') notifyState.textContent = t('settings_notify_blocked');
    else notifyState.textContent = '';
  };
  renderNotify();

  openDialog(t('settings_title'), [
    el('form', {class: 'stack', onsubmit: save},
      el('div', {class: 'profile-row'}, preview, el('label', {class: 'button small'}, el('span', {text: t('profile_picture')}), picture)),
      el('label', {class: 'field'}, el('span', {text: t('settings_name')}), name),
      el('label', {class: 'field'}, el('span', {text: t('profile_status')}), status),
      el('div', {class: 'field'}, el('span', {text: t('profile_colour')}), swatches),
      error,
      el('button', {class: 'primary wide', 'data-testid': 'profile-save', text: t('profile_save')})),
    el('label', {class: 'check'}, sound, el('span', {text: t('settings_sound')})),
    notificationsSupported() && Notification.permission === 'default'
      ? el('button', {class: 'wide', text: t('settings_notify'), onclick: async (ev) => {
        await askPermission();
        ev.target.remove();
        renderNotify();
      }}) : null,
    notifyState,
    el('a', {class: 'button wide', href: '#direct', 'data-testid': 'settings-direct', text: t('direct_link'), onclick: closeDialog}),
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
