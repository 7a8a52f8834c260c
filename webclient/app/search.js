// Search in one conversation (the box searches its whole history), loaded on
// first use. Tapping a result shows that message, loading it if needed.

import {nameOf} from './store.js';
import {request} from './net.js';
import {el} from './dom.js';
import {openDialog, closeDialog, formatTime} from './ui.js';
import {jumpTo} from './chat.js';
import {t} from './strings.js';

export function searchDialog(conv) {
  const input = el('input', {type: 'search', maxlength: 200, 'data-testid': 'search-input', 'aria-label': t('search'), placeholder: t('search_placeholder'), enterkeyhint: 'search'});
  const status = el('p', {class: 'small muted', role: 'status', 'data-testid': 'search-status'});
  const list = el('ul', {class: 'list search-results', 'data-testid': 'search-results'});
  const run = async (ev) => {
    ev.preventDefault();
    const query = input.value.trim();
    if (!query) return;
    status.textContent = t('search_working');
    list.replaceChildren();
    try {
      const reply = await request({type: 'search', conv, query, limit: 50});
      const found = (reply.messages || []).slice().reverse();
      status.textContent = found.length ? t('search_count', {n: found.length}) : t('search_none');
      list.replaceChildren(...found.map((m) => el('li', {},
        el('button', {class: 'row', 'data-testid': 'search-result', 'data-seq': m.seq, onclick: () => {
          closeDialog();
          jumpTo(conv, m.seq);
        }},
        el('span', {class: 'row-main'},
          el('span', {class: 'row-title'}, el('span', {text: m.name || nameOf(m.from) || t('someone')}), el('span', {class: 'muted small', text: formatTime(m.ts)})),
          el('span', {class: 'row-sub', text: m.text}))))));
    } catch (err) {
      status.textContent = err.message;
    }
  };
  openDialog(t('search_title'), [el('form', {class: 'search-form', onsubmit: run}, input, el('button', {class: 'primary', 'data-testid': 'search-submit', text: t('search')})), status, list], {testid: 'search-dialog'});
  input.focus();
}
