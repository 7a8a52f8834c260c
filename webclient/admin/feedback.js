// What the admin page says back: status lines, and questions asked in place before
// something drastic. Elements are built with the app's dom.js (served at /dom.js).
import {el} from '/dom.js';

/** A status line: kind is 'ok', 'error', 'warn' or 'info'. */
export function say(line, text, kind = 'info') {
  line.textContent = text || '';
  line.dataset.kind = kind;
  line.hidden = !text;
}

/**
 * Ask before doing something drastic, inside the page (no window.confirm, which
 * some phone browsers block): the button is replaced by a question with Yes and Cancel.
 */
export function confirmInline(button, question, yesLabel, onYes) {
  const holder = button.parentNode;
  const box = el('span', {class: 'confirm', role: 'group', testid: 'confirm'},
    el('span', {class: 'confirm-q'}, question), ' ');
  const yes = el('button', {type: 'button', class: 'danger', testid: 'confirm-yes'}, yesLabel);
  const no = el('button', {type: 'button', testid: 'confirm-no'}, 'Cancel');
  box.append(yes, ' ', no);
  const restore = () => { box.replaceWith(button); button.focus(); };
  no.addEventListener('click', restore);
  yes.addEventListener('click', async () => {
    yes.disabled = no.disabled = true;
    try { await onYes(); } finally { if (box.isConnected) restore(); }
  });
  holder.replaceChild(box, button);
  yes.focus();
}
