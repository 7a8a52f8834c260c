// Building the page safely: every piece of text goes in with textContent, never as HTML.

/**
 * h('p', {class: 'muted', testid: 'x', onclick: fn}, 'text', child, ...)
 * Strings become text nodes; null/false children are skipped; arrays are flattened.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'href' || key === 'src') el.setAttribute(key, sameOriginPath(value));
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

// Links and images only ever point at the box itself.
function sameOriginPath(value) {
  const text = String(value);
  return text.startsWith('/') && !text.startsWith('//') ? text : '#';
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/** A status line: kind is 'ok', 'error', 'warn' or 'info'. */
export function say(el, text, kind = 'info') {
  el.textContent = text || '';
  el.dataset.kind = kind;
  el.hidden = !text;
}

/**
 * Ask before doing something drastic, inside the page (no window.confirm, which
 * some phone browsers block): the button is replaced by a question with Yes and Cancel.
 */
export function confirmInline(button, question, yesLabel, onYes) {
  const holder = button.parentNode;
  const box = h('span', {class: 'confirm', role: 'group', testid: 'confirm'},
    h('span', {class: 'confirm-q'}, question), ' ');
  const yes = h('button', {type: 'button', class: 'danger', testid: 'confirm-yes'}, yesLabel);
  const no = h('button', {type: 'button', testid: 'confirm-no'}, 'Cancel');
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

export function formatBytes(n) {
  if (n === null || n === undefined) return '?';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(n < 10 && i ? 1 : 0)} ${units[i]}`;
}

export function formatDuration(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const d = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d) return `${d} d ${hours} h`;
  if (hours) return `${hours} h ${m} min`;
  if (m) return `${m} min`;
  return `${seconds} s`;
}

export function formatTime(ms) {
  return new Date(ms).toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

export function formatDate(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleDateString(undefined, {year: 'numeric', month: 'long', day: 'numeric'});
}

export function daysUntil(iso) {
  return Math.floor((new Date(iso) - Date.now()) / 86400000);
}

/** A status value (from the box's watchers) as a short text. */
export function formatValue(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (Array.isArray(value)) return value.length ? value.map(formatValue).join('; ') : 'none';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
