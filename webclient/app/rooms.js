// Rooms: joining (also by invite link), and the box's room events: updates,
// invitations, join requests for moderators, pending and refused joins.
// Creating rooms and the room settings (roomadmin.js) load on first use.

import {state, emit, nameOf, removeConv, roomIn} from './store.js';
import {request, handle} from './net.js';
import {el} from './dom.js';
import {toast, setBanner} from './ui.js';
import {beep} from './notify.js';
import {t} from './strings.js';

let openConvFn = () => {};

function keep(room) {
  if (room) state.rooms.set(room.id, roomIn(room));
  emit('rooms');
}

export function initRooms({openConv, closeConv}) {
  openConvFn = openConv;
  handle('changes', (msg) => {
    if (!msg.rooms || !msg.rooms.length) return;
    for (const room of msg.rooms) {
      const known = state.rooms.get(room.id);
      if (room.name !== undefined) state.rooms.set(room.id, roomIn(room));
      else if (known) {
        // Only how many are in it and online, and, in a room we are in, who
        // joined and left (docs/protocol.md).
        let members = known.members;
        if (room.joined) {
          members = members.filter((u) => !room.left.includes(u));
          for (const u of room.joined) if (!members.includes(u)) members.push(u);
        }
        state.rooms.set(room.id, {...known, members, online: room.online, count: room.count ?? members.length});
      }
    }
    emit('rooms');
  });
  handle('room', (msg) => keep(msg.room));
  handle('room_pending', (msg) => {
    keep(msg.room);
    toast(t('room_pending_toast', {name: msg.room.name}));
  });
  handle('room_invited', (msg) => {
    keep(msg.room);
    beep();
    const open = () => {
      setBanner('invite-' + msg.room.id, null);
      openRoom(msg.room.id);
    };
    setBanner('invite-' + msg.room.id, [
      el('span', {text: t('room_invited_banner', {name: nameOf(msg.by) || t('someone'), room: msg.room.name}) + ' '}),
      el('button', {class: 'link', 'data-testid': 'invite-open', text: t('room_join'), onclick: open})]);
  });
  handle('room_request', (msg) => {
    const r = state.rooms.get(msg.room);
    beep();
    toast(t('room_request_toast', {name: msg.name, room: r ? r.name : ''}));
  });
  handle('room_denied', (msg) => {
    const r = state.rooms.get(msg.room);
    toast(t('room_denied', {name: r ? r.name : ''}));
    if (r?.visibility === 'hidden') state.rooms.delete(msg.room);
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
}

/** Join a room (with an invite code from a link, if any); true once a member. */
export async function joinRoom(id, code) {
  try {
    const reply = await request(code ? {type: 'room_join', room: id, code} : {type: 'room_join', room: id});
    keep(reply.room);
    return reply.type === 'room';
  } catch (err) {
    toast(err.message);
    return false;
  }
}

/** Open a room from the list: join it if needed, then show it. */
export async function openRoom(id, code) {
  const r = state.rooms.get(id);
  const member = r?.members.includes(state.me?.id);
  if (!member && (code || (r && r.active && !r.requests?.includes(state.me?.id)))) {
    const joined = await joinRoom(id, code);
    if (!joined && !state.rooms.has(id)) return;
  }
  if (state.rooms.has(id)) openConvFn('room:' + id);
}

const admin = () => import('./roomadmin.js');

export function createRoomDialog() {
  admin().then((m) => m.createRoomDialog(openConvFn));
}

export function roomInfoDialog(id) {
  admin().then((m) => m.roomInfoDialog(id));
}
