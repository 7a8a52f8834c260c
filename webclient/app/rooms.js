// Rooms: create, join, leave, and the owner's controls (rename, description,
// open/closed, limit, remove participant, delete). Room events from the box.

import {state, emit, nameOf, removeConv} from './store.js';
import {request, handle} from './net.js';
import {el, openDialog, closeDialog, toast} from './ui.js';
import {qrImage, boxInfo} from './boxinfo.js';
import {t} from './strings.js';

export function initRooms({openConv, closeConv}) {
  handle('room_update', (msg) => {
    state.rooms.set(msg.room.id, msg.room);
    emit('rooms');
  });
  handle('room', (msg) => {
    if (msg.room) state.rooms.set(msg.room.id, msg.room);
    emit('rooms');
  });
  handle('room_deleted', (msg) => {
    const r = state.rooms.get(msg.room);
    state.rooms.delete(msg.room);
    const conv = 'room:' + msg.room;
    if (state.current === conv) closeConv();
    if (r && r.members.includes(state.me?.id) && r.owner !== state.me?.id) toast(t('room_deleted', {name: r.name}));
    if (r?.ephemeral || !r) removeConv(conv);
    emit('rooms');
  });
  handle('room_removed', (msg) => {
    const r = state.rooms.get(msg.room);
    if (state.current === 'room:' + msg.room) closeConv();
    toast(t('room_removed', {name: r ? r.name : ''}));
    emit('rooms');
  });
  openConvFn = openConv;
}

let openConvFn = () => {};

function field(label, input) {
  return el('label', {class: 'field'}, el('span', {text: label}), input);
}

export function createRoomDialog() {
  const name = el('input', {name: 'name', maxlength: 48, required: true, 'data-testid': 'room-name-input', autocomplete: 'off'});
  const desc = el('input', {name: 'description', maxlength: 200, 'data-testid': 'room-description-input', autocomplete: 'off'});
  const limit = el('input', {name: 'limit', type: 'number', min: 2, max: state.limits.room_members || 200, value: 20, inputmode: 'numeric', 'data-testid': 'room-limit-input'});
  const ephemeral = el('input', {type: 'checkbox', name: 'ephemeral'});
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
      const reply = await request({type: 'room_create', name: n, description: desc.value.trim(), limit: Number(limit.value) || 20, ephemeral: ephemeral.checked});
      state.rooms.set(reply.room.id, reply.room);
      emit('rooms');
      closeDialog();
      openConvFn('room:' + reply.room.id);
    } catch (err) {
      error.textContent = err.message;
    }
  }},
  field(t('room_name'), name),
  field(t('room_description'), desc),
  field(t('room_limit'), limit),
  el('label', {class: 'check'}, ephemeral, el('span', {text: t('room_ephemeral')})),
  error,
  el('button', {class: 'primary wide', 'data-testid': 'room-create-submit', text: t('room_create_button')}));
  openDialog(t('room_create_title'), form, {testid: 'room-create-dialog'});
  name.focus();
}

/** Open a room from the list: join it if needed, then show it. */
export async function openRoom(id) {
  const r = state.rooms.get(id);
  if (r && !r.members.includes(state.me?.id) && r.active) {
    try {
      const reply = await request({type: 'room_join', room: id});
      state.rooms.set(id, reply.room);
      emit('rooms');
    } catch (err) {
      toast(err.message);
    }
  }
  openConvFn('room:' + id);
}

export async function roomInfoDialog(id) {
  const r = state.rooms.get(id);
  if (!r) return;
  const me = state.me.id;
  const owner = r.owner === me;
  const info = await boxInfo();
  const roomUrl = (info?.https_url || location.origin) + '/#room=' + r.id;
  const parts = [];
  if (r.description) parts.push(el('p', {text: r.description}));
  parts.push(el('figure', {class: 'qr'}, qrImage(roomUrl, t('room_qr_title')), el('figcaption', {}, el('strong', {text: t('room_qr_title')}), el('br'), el('span', {class: 'small muted', text: roomUrl}))));

  if (owner) {
    const name = el('input', {value: r.name, maxlength: 48, required: true, 'data-testid': 'room-edit-name'});
    const desc = el('input', {value: r.description || '', maxlength: 200, 'data-testid': 'room-edit-description'});
    const limit = el('input', {type: 'number', min: 2, max: state.limits.room_members || 200, value: r.limit, inputmode: 'numeric', 'data-testid': 'room-edit-limit'});
    const active = el('input', {type: 'checkbox', checked: r.active, 'data-testid': 'room-edit-active'});
    const error = el('p', {class: 'error', role: 'alert'});
    parts.push(el('form', {class: 'stack', onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await request({type: 'room_update', room: r.id, name: name.value.trim(), description: desc.value.trim(), active: active.checked, limit: Number(limit.value)});
        toast(t('room_saved'));
        closeDialog();
      } catch (err) {
        error.textContent = err.message;
      }
    }},
    field(t('room_name'), name),
    field(t('room_description'), desc),
    field(t('room_limit'), limit),
    el('label', {class: 'check'}, active, el('span', {text: t('room_active')})),
    error,
    el('button', {class: 'primary wide', 'data-testid': 'room-save', text: t('room_save')})));
  }

  parts.push(el('h3', {text: t('room_members')}));
  parts.push(el('ul', {class: 'members', 'data-testid': 'room-members'}, r.members.map((uid) => {
    const nm = nameOf(uid) || t('someone');
    const online = uid === me || state.users.has(uid);
    return el('li', {},
      el('span', {class: online ? 'dot on' : 'dot', 'aria-hidden': 'true'}),
      el('span', {class: 'grow', text: uid === me ? nm + ' (' + t('you') + ')' : nm}),
      uid === r.owner ? el('span', {class: 'tag', text: t('room_owner_tag')}) : null,
      owner && uid !== me ? el('button', {class: 'small danger-text', 'aria-label': t('room_remove_label', {name: nm}), 'data-testid': 'room-kick', onclick: async (ev) => {
        try {
          await request({type: 'room_kick', room: r.id, user: uid});
          ev.target.closest('li').remove();
        } catch (err) {
          toast(err.message);
        }
      }, text: t('room_remove')}) : null);
  })));

  const actions = el('div', {class: 'row-actions'});
  if (r.members.includes(me) && !owner) {
    actions.append(el('button', {class: 'wide', 'data-testid': 'room-leave', onclick: async () => {
      try {
        await request({type: 'room_leave', room: r.id});
        closeDialog();
      } catch (err) {
        toast(err.message);
      }
    }, text: t('room_leave')}));
  }
  if (owner) {
    actions.append(el('button', {class: 'wide danger', 'data-testid': 'room-delete', onclick: async () => {
      if (!confirm(t('room_delete_confirm', {name: r.name}))) return;
      try {
        await request({type: 'room_delete', room: r.id});
        closeDialog();
      } catch (err) {
        toast(err.message);
      }
    }, text: t('room_delete')}));
  }
  parts.push(actions);
  openDialog(r.name, parts, {testid: 'room-info-dialog'});
}
