// Message text to DOM nodes: *bold* (and **bold**), _italic_, `code`, and links that stay on
// this box. Built with createElement and text nodes only: whatever people type
// can never become markup, and anything that is not one of these shows as typed.

const LINK = /https?:\/\/[^\s<>"'`]+/y;
const TRAILING = /[.,;:!?)\]}'"]+$/;
const boxHosts = new Set(['ahoy.internal']);

/** Remember the box's own addresses (from /api/info) as safe link targets. */
export function addBoxHosts(...urls) {
  for (const u of urls) {
    try {
      if (u) boxHosts.add(new URL(u).hostname);
    } catch {
      // not a URL: ignore
    }
  }
}

function safeLink(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (url.username || url.password) return null;
  if (url.hostname !== location.hostname && !boxHosts.has(url.hostname)) return null;
  return url.href;
}

const isWordChar = (ch) => !!ch && /[\p{L}\p{N}]/u.test(ch);

/** Where the closing `mark` of a span opened at `start` is, or -1. */
function closing(text, start, mark) {
  if (!text[start + 1] || /\s/.test(text[start + 1]) || text[start + 1] === mark) return -1;
  if (isWordChar(text[start - 1])) return -1;
  for (let i = start + 2; i < text.length; i++) {
    if (text[i] === '\n') return -1;
    if (text[i] === mark && !/\s/.test(text[i - 1]) && !isWordChar(text[i + 1])) return i;
  }
  return -1;
}

/** Where the closing `**` of a `**bold**` opened at `start` is, or -1. */
function closingDouble(text, start) {
  const first = text[start + 2];
  if (!first || /\s/.test(first) || first === '*' || isWordChar(text[start - 1])) return -1;
  for (let i = start + 3; i < text.length - 1; i++) {
    if (text[i] === '\n') return -1;
    if (text[i] === '*' && text[i + 1] === '*' && !/\s/.test(text[i - 1]) && text[i + 2] !== '*' && !isWordChar(text[i + 2])) return i;
  }
  return -1;
}

/**
 * Append `text` to `parent` with formatting. `open` lists the marks we are
 * already inside, so *_x_* works but a span never nests in itself.
 */
function render(parent, text, open) {
  let plain = '';
  const flush = () => {
    if (plain) parent.append(document.createTextNode(plain));
    plain = '';
  };
  for (let i = 0; i < text.length;) {
    const ch = text[i];
    if (ch === '`') {
      const end = text.indexOf('`', i + 1);
      if (end > i + 1 && !text.slice(i + 1, end).includes('\n')) {
        flush();
        const code = document.createElement('code');
        code.textContent = text.slice(i + 1, end);
        parent.append(code);
        i = end + 1;
        continue;
      }
    } else if (ch === '*' && text[i + 1] === '*' && !open.includes('*') && open.length < 2) {
      // **bold**, the habit from other chat apps, as well as *bold*.
      const end = closingDouble(text, i);
      if (end > 0) {
        flush();
        const node = document.createElement('strong');
        render(node, text.slice(i + 2, end), [...open, '*']);
        parent.append(node);
        i = end + 2;
        continue;
      }
      plain += '**';
      i += 2;
      continue;
    } else if ((ch === '*' || ch === '_') && !open.includes(ch) && open.length < 2) {
      const end = closing(text, i, ch);
      if (end > 0) {
        flush();
        const node = document.createElement(ch === '*' ? 'strong' : 'em');
        render(node, text.slice(i + 1, end), [...open, ch]);
        parent.append(node);
        i = end + 1;
        continue;
      }
    } else if (ch === 'h' && !isWordChar(text[i - 1])) {
      LINK.lastIndex = i;
      const m = LINK.exec(text);
      if (m) {
        const raw = m[0].replace(TRAILING, '');
        const href = safeLink(raw);
        if (href) {
          flush();
          const a = document.createElement('a');
          a.href = href;
          a.rel = 'noopener noreferrer';
          a.textContent = raw;
          parent.append(a);
        } else {
          plain += raw;
        }
        i += raw.length;
        continue;
      }
    }
    plain += ch;
    i++;
  }
  flush();
}

/** A fragment with `text` formatted. */
export function formatText(text) {
  const frag = document.createDocumentFragment();
  render(frag, String(text ?? ''), []);
  return frag;
}
