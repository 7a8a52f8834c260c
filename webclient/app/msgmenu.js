// The small menu on a message (long-press, right-click or its ☺ button):
// a row of common emoji to react with, and Reply. Loaded on first use.

import {state} from './store.js';
import {el} from './dom.js';
import {t} from './strings.js';

export const EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🎉', '👎', '🙏'];
let menu = null;

function close() {
  if (!menu) return;
  menu.remove();
  menu = null;
  document.removeEventListener('pointerdown', outside, true);
  document.removeEventListener('keydown', onKey, true);
}

function outside(ev) {
  if (menu && !menu.contains(ev.target)) close();
}

function onKey(ev) {
  if (ev.key === 'Escape') close();
}

export function openMenu(m, anchor, {onReply, onReact}) {
  close();
  const act = (fn) => () => {
    close();
    fn();
  };
  menu = el('div', {class: 'msg-menu', role: 'menu', 'data-testid': 'reaction-picker', 'aria-label': t('msg_actions')},
    el('div', {class: 'emoji-row'}, EMOJI.map((e) => {
      const mine = (m.reactions?.[e] || []).includes(state.me?.id);
      return el('button', {type: 'button', role: 'menuitem', class: mine ? 'on' : '', 'data-testid': 'pick-emoji', 'data-emoji': e, 'aria-label': t(mine ? 'react_remove' : 'react_add', {emoji: e}), onclick: act(() => onReact(m, e))}, e);
    })),
    el('button', {type: 'button', role: 'menuitem', class: 'menu-item', 'data-testid': 'reply-button', onclick: act(() => onReply(m)), text: t('reply')}));
  document.body.append(menu);
  const box = anchor.getBoundingClientRect();
  const w = menu.offsetWidth;
  const h = menu.offsetHeight;
  menu.style.left = Math.max(8, Math.min(innerWidth - w - 8, box.left)) + 'px';
  menu.style.top = (box.top > h + 16 ? box.top - h - 6 : Math.min(innerHeight - h - 8, box.bottom + 6)) + 'px';
  menu.querySelector('button').focus();
  setTimeout(() => {
    document.addEventListener('pointerdown', outside, true);
    document.addEventListener('keydown', onKey, true);
  });
}
