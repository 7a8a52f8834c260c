// Room settings, loaded on first use: creating a room, the owner's controls
// (name, limit, open/closed, public/hidden, approval), invitations (people,
// link and QR code), join requests, moderators and removing members.

import {state, emit, nameOf, roomIn} from './store.js';
import {request} from './net.js';
import {el} from './dom.js';
import {openDialog, closeDialog, toast} from './ui.js';
import {boxInfo} from './boxinfo.js';
import {qrImage} from './boxdialogs.js';
import {t} from './strings.js';

function field(label, input) {
  return el('label', {class: 'field'}, el('span', {text: label}), input);
}

function visibilitySelect(value, testid) {
  return el('select', {'data-testid': testid},
    el('option', {value: 'public', selected: value === 'public', text: t('room_public')}),
    el('option', {value: 'hidden', selected: value === 'hidden', text: t('room_hidden')}));
}

export function createRoomDialog(openConv) {
  const name = el('input', {name: 'name', maxlength: 48, required: true, 'data-testid': 'room-name-input', autocomplete: 'off'});
  const desc = el('input', {name: 'description', maxlength: 200, 'data-testid': 'room-description-input', autocomplete: 'off'});
  const limit = el('input', {name: 'limit', type: 'number', min: 2, max: state.limits.room_members || 200, value: 20, inputmode: 'numeric', 'data-testid': 'room-limit-input'});
  const ephemeral = el('input', {type: 'checkbox', name: 'ephemeral'});
  const visibility = visibilitySelect('public', 'room-visibility-input');
  const approval = el('input', {type: 'checkbox', 'data-testid': 'room-approval-input'});
  const error = el('p', {class: 'error', role: 'alert'});
  const form = el('form', {class: 'stack', onsubmit: async (ev) => {
    ev.preventDefault();
    const n = name.value.trim();
    if (!n) {
      error.textContent = t('join_name_empty');
      name.focus();
      return;
    }
    try {
      const reply = await request({type: 'room_create', name: n, description: desc.value.trim(), limit: Number(limit.value) || 20,
        ephemeral: ephemeral.checked, visibility: visibility.value, approval: approval.checked});
      state.rooms.set(reply.room.id, reply.room);
      emit('rooms');
      closeDialog();
      openConv('room:' + reply.room.id);
    } catch (err) {
      error.textContent = err.message;
    }
  }},
  field(t('room_name'), name),
  field(t('room_description'), desc),
  field(t('room_limit'), limit),
  field(t('room_visibility'), visibility),
  el('label', {class: 'check'}, approval, el('span', {text: t('room_approval')})),
  el('label', {class: 'check'}, ephemeral, el('span', {text: t('room_ephemeral')})),
  error,
  el('button', {class: 'primary wide', 'data-testid': 'room-create-submit', text: t('room_create_button')}));
  openDialog(t('room_create_title'), form, {testid: 'room-create-dialog'});
  name.focus();
}

/** Run a room request; on success show the dialog again with the new state. */
async function act(id, msg, after) {
  try {
    const reply = await request({room: id, ...msg});
    if (reply.room?.id) {
      state.rooms.set(reply.room.id, reply.room);
      emit('rooms');
    }
    if (after) after(reply);
    else roomInfoDialog(id, {refresh: true});
  } catch (err) {
    toast(err.message);
  }
}

const small = (label, testid, onclick, cls = '') => el('button', {type: 'button', class: 'small ' + cls, 'data-testid': testid, onclick, text: label});

async function inviteLinkSection(r, reset) {
  const info = await boxInfo();
  const box = el('div', {class: 'invite-link', 'data-testid': 'invite-link-box'});
  await act(r.id, {type: 'room_invite_link', reset}, (reply) => {
    const url = (info?.https_url || location.origin) + '/#join=' + r.id + ':' + reply.code;
    box.append(el('figure', {class: 'qr'}, qrImage(url, t('room_invite_link')),
      el('figcaption', {}, el('strong', {text: t('room_invite_link')}), el('br'), el('span', {class: 'small', 'data-testid': 'invite-link', text: url}))),
    small(t('room_invite_link_reset'), 'invite-link-reset', () => inviteLinkSection(r, true).then((b) => box.replaceWith(b))));
  });
  return box;
}

/** The room's settings and members. With `refresh`, the open dialog shown
 * again after a change made in it, unless it was closed meanwhile (its
 * requests take a moment: the dialog must not pop back after Escape). */
export async function roomInfoDialog(id, {refresh = false} = {}) {
  let r = state.rooms.get(id);
  if (!r) return;
  const me = state.me.id;
  // Who is in it, with names and who is online (a room we are not in, or one
  // of over 50, comes without its members): ask for it whole.
  let people;
  try {
    const reply = await request({type: 'room_get', room: id});
    r = roomIn(reply.room);
    people = new Map((reply.people || []).map((p) => [p.id, p]));
  } catch (err) {
    toast(err.message);
    return;
  }
  const owner = r.owner === me;
  const mod = owner || (r.moderators || []).includes(me);
  // Whom to invite: everyone online (the box names them on request).
  let online = [];
  if (mod) {
    try {
      online = (await request({type: 'people'})).users || [];
    } catch {
      online = [...state.users.values()];
    }
  }
  const info = await boxInfo();
  const parts = [];
  if (r.description) parts.push(el('p', {text: r.description}));
  parts.push(el('p', {class: 'small muted', 'data-testid': 'room-kind', text: t(r.visibility === 'hidden' ? 'room_hidden' : 'room_public') + (r.approval ? ' · ' + t('room_approval') : '')}));
  if (r.visibility !== 'hidden') {
    const roomUrl = (info?.https_url || location.origin) + '/#room=' + r.id;
    parts.push(el('figure', {class: 'qr'}, qrImage(roomUrl, t('room_qr_title')), el('figcaption', {}, el('strong', {text: t('room_qr_title')}), el('br'), el('span', {class: 'small muted', text: roomUrl}))));
  }
  if (mod) {
    const linkSlot = el('div', {}, small(t('room_invite_link_make'), 'invite-link-button', async () => {
      linkSlot.replaceChildren(await inviteLinkSection(r, false));
    }));
    parts.push(linkSlot);
  }

  if (owner) {
    const name = el('input', {value: r.name, maxlength: 48, required: true, 'data-testid': 'room-edit-name'});
    const desc = el('input', {value: r.description || '', maxlength: 200, 'data-testid': 'room-edit-description'});
    const limit = el('input', {type: 'number', min: 2, max: state.limits.room_members || 200, value: r.limit, inputmode: 'numeric', 'data-testid': 'room-edit-limit'});
    const active = el('input', {type: 'checkbox', checked: r.active, 'data-testid': 'room-edit-active'});
    const visibility = visibilitySelect(r.visibility || 'public', 'room-edit-visibility');
    const approval = el('input', {type: 'checkbox', checked: !!r.approval, 'data-testid': 'room-edit-approval'});
    const error = el('p', {class: 'error', role: 'alert'});
    parts.push(el('form', {class: 'stack', onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await request({type: 'room_update', room: r.id, name: name.value.trim(), description: desc.value.trim(), active: active.checked,
          limit: Number(limit.value), visibility: visibility.value, approval: approval.checked});
        toast(t('room_saved'));
        closeDialog();
      } catch (err) {
        error.textContent = err.message;
      }
    }},
    field(t('room_name'), name),
    field(t('room_description'), desc),
    field(t('room_limit'), limit),
    field(t('room_visibility'), visibility),
    el('label', {class: 'check'}, approval, el('span', {text: t('room_approval')})),
    el('label', {class: 'check'}, active, el('span', {text: t('room_active')})),
    error,
    el('button', {class: 'primary wide', 'data-testid': 'room-save', text: t('room_save')})));
  }

  const person = (uid, ...extra) => el('li', {'data-user': uid},
    el('span', {class: (people.get(uid) ? people.get(uid).status !== 'offline' : state.users.has(uid)) || uid === me ? 'dot on' : 'dot', 'aria-hidden': 'true'}),
    el('span', {class: 'grow', text: (nameOf(uid) || t('someone')) + (uid === me ? ' (' + t('you') + ')' : '')}), ...extra);

  if (mod && r.requests?.length) {
    parts.push(el('h3', {text: t('room_requests')}));
    parts.push(el('ul', {class: 'members', 'data-testid': 'room-requests'}, r.requests.map((uid) => person(uid,
      small(t('room_approve'), 'room-approve', () => act(r.id, {type: 'room_approve', user: uid}), 'primary'),
      small(t('room_deny'), 'room-deny', () => act(r.id, {type: 'room_deny', user: uid}))))));
  }
  if (mod) {
    const candidates = online.filter((u) => !r.members.includes(u.id) && !(r.invited || []).includes(u.id));
    parts.push(el('h3', {text: t('room_invite_people')}));
    parts.push(candidates.length
      ? el('ul', {class: 'members', 'data-testid': 'room-invite-list'}, candidates.map((u) => person(u.id,
        small(t('room_invite'), 'room-invite', () => act(r.id, {type: 'room_invite', user: u.id})))))
      : el('p', {class: 'small muted', text: t('room_invite_nobody')}));
  }
  if (r.invited?.length) {
    parts.push(el('h3', {text: t('room_invited_list')}));
    parts.push(el('ul', {class: 'members', 'data-testid': 'room-invited'}, r.invited.map((uid) => person(uid))));
  }

  parts.push(el('h3', {text: t('room_members')}));
  const mods = r.moderators || [];
  parts.push(el('ul', {class: 'members', 'data-testid': 'room-members'}, r.members.map((uid) => {
    const isMod = mods.includes(uid);
    const canKick = uid !== me && uid !== r.owner && (owner || (mod && !isMod));
    return person(uid,
      uid === r.owner ? el('span', {class: 'tag', text: t('room_owner_tag')}) : null,
      isMod ? el('span', {class: 'tag', 'data-testid': 'moderator-tag', text: t('room_moderator_tag')}) : null,
      owner && uid !== me ? small(t(isMod ? 'room_unmake_mod' : 'room_make_mod'), 'room-role', () => act(r.id, {type: 'room_role', user: uid, role: isMod ? 'member' : 'moderator'})) : null,
      canKick ? el('button', {class: 'small danger-text', 'aria-label': t('room_remove_label', {name: nameOf(uid) || ''}), 'data-testid': 'room-kick', text: t('room_remove'),
        onclick: () => act(r.id, {type: 'room_kick', user: uid})}) : null);
  })));

  const actions = el('div', {class: 'row-actions'});
  if (r.members.includes(me) && !owner) {
    actions.append(el('button', {class: 'wide', 'data-testid': 'room-leave', text: t('room_leave'), onclick: () => act(r.id, {type: 'room_leave'}, closeDialog)}));
  }
  if (owner) {
    actions.append(el('button', {class: 'wide danger', 'data-testid': 'room-delete', text: t('room_delete'), onclick: () => {
      if (confirm(t('room_delete_confirm', {name: r.name}))) act(r.id, {type: 'room_delete'}, closeDialog);
    }}));
  }
  parts.push(actions);
  const dlg = document.getElementById('dialog');
  if (refresh && !(dlg.open && dlg.dataset.testid === 'room-info-dialog')) return;
  openDialog(r.name, parts, {testid: 'room-info-dialog'});
}
