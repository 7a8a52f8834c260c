// People and rooms: remove a user, close a room, delete a message.
import {del, get} from './api.js';
import {clear, el} from '/dom.js';
import {confirmInline, say} from './feedback.js';
import {formatTime} from './format.js';

const REFRESH_MS = 5000;
let section = null;
let timer = null;
let status = null;
// Rooms whose recent messages are open, so a refresh keeps them open.
const openRooms = new Set();

export function show(screen) {
  leave();
  section = screen;
  status = el('p', {class: 'status', role: 'status', testid: 'people-status', hidden: true});
  clear(section, el('p', {class: 'muted'}, 'Loading…'));
  refresh();
  timer = setInterval(() => {
    // Never pull the list from under a question being asked.
    if (!section.querySelector('[data-testid="confirm"]')) refresh();
  }, REFRESH_MS);
}

export function leave() {
  if (timer) clearInterval(timer);
  timer = null;
}

async function refresh() {
  let data;
  try {
    data = await get('people');
  } catch (e) {
    say(status, e.message, 'error');
    return;
  }
  const rooms = await Promise.all(data.rooms.map(async (room) => {
    if (!openRooms.has(room.id)) return [room, null];
    try {
      return [room, (await get(`rooms/${encodeURIComponent(room.id)}/messages`)).messages];
    } catch {
      return [room, []];
    }
  }));
  clear(section, status,
    el('div', {class: 'grid'},
      el('div', {class: 'card'},
        el('h2', {}, `People online (${data.users.length})`),
        el('p', {class: 'muted small'}, 'Removing someone disconnects them and forgets their name; they can come back only by picking a name again.'),
        data.users.length
          ? el('ul', {class: 'list', testid: 'user-list'}, data.users.map(userItem))
          : el('p', {class: 'empty', testid: 'no-users'}, 'Nobody is in the chat right now.')),
      el('div', {class: 'card'},
        el('h2', {}, `Rooms (${data.rooms.length})`),
        rooms.length
          ? el('ul', {class: 'list', testid: 'room-list'}, rooms.map(([room, messages]) => roomItem(room, messages)))
          : el('p', {class: 'empty'}, 'No rooms yet.'))));
}

function userItem(user) {
  const button = el('button', {type: 'button', testid: 'remove-user'}, 'Remove');
  button.addEventListener('click', () => confirmInline(button, `Remove ${user.name}?`, 'Yes, remove', async () => {
    try {
      await del(`users/${encodeURIComponent(user.id)}`);
      say(status, `${user.name} was removed.`, 'ok');
    } catch (e) {
      say(status, e.message, 'error');
    }
    await refresh();
  }));
  return el('li', {testid: 'user-item', 'data-user-id': user.id},
    el('span', {class: 'grow', testid: 'user-name'}, user.name),
    el('span', {class: 'pill'}, user.status === 'busy' ? 'in a call' : user.status),
    button);
}

function roomItem(room, messages) {
  const close = el('button', {type: 'button', testid: 'close-room'}, 'Close room');
  close.addEventListener('click', () => confirmInline(close, `Close ${room.name} for everyone?`, 'Yes, close it', async () => {
    try {
      await del(`rooms/${encodeURIComponent(room.id)}`);
      openRooms.delete(room.id);
      say(status, `${room.name} was closed.`, 'ok');
    } catch (e) {
      say(status, e.message, 'error');
    }
    await refresh();
  }));
  const toggle = el('button', {type: 'button', testid: 'room-messages', 'aria-expanded': String(messages !== null)},
    messages === null ? 'Messages' : 'Hide messages');
  toggle.addEventListener('click', () => {
    if (openRooms.has(room.id)) openRooms.delete(room.id);
    else openRooms.add(room.id);
    refresh();
  });
  return el('li', {testid: 'room-item', 'data-room-id': room.id},
    el('span', {class: 'grow'}, el('span', {testid: 'room-name'}, room.name), el('br'),
      el('span', {class: 'muted small'}, `${room.members.length} members, ${room.online} online${room.call ? ', call going on' : ''}`)),
    toggle, close,
    messages === null ? null : messageList(room, messages));
}

function messageList(room, messages) {
  if (!messages.length) return el('p', {class: 'empty messages'}, 'No messages.');
  return el('ul', {class: 'messages', testid: 'message-list'}, messages.slice().reverse().map((m) => {
    const button = el('button', {type: 'button', testid: 'delete-message'}, 'Delete');
    button.addEventListener('click', () => confirmInline(button, 'Delete this message?', 'Yes, delete', async () => {
      try {
        await del(`messages/${encodeURIComponent(m.conv)}/${m.seq}`);
        say(status, 'The message was deleted.', 'ok');
      } catch (e) {
        say(status, e.message, 'error');
      }
      await refresh();
    }));
    return el('li', {testid: 'message-item'},
      el('span', {class: 'grow'},
        el('span', {class: 'muted small'}, `${m.name} · ${formatTime(m.ts)}`), el('br'),
        el('span', {testid: 'message-text'}, m.text)),
      button);
  }));
}
