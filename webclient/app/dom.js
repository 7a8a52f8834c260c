// Building the page safely, for the phone app and the admin page alike (the box
// serves this file at /dom.js to both): text goes in with textContent, never as
// HTML, and links and pictures never point at javascript: or data: URLs.

export const $ = (sel, root = document) => root.querySelector(sel);

/**
 * Build an element: el('p', {class: 'x', testid: 'y', dataset: {a: 1}, onclick: fn}, child, 'text', [more]).
 * Skipped: attributes that are null, undefined or false, and such children. `true` is an empty attribute.
 */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'testid') node.dataset.testid = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'href' || k === 'src') node.setAttribute(k, safeUrl(v));
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  append(node, children);
  return node;
}

/** Empty `node` and put `children` in it (as el() takes them). */
export function clear(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// The box's own paths, fragments, web addresses and what the page made itself (blob:).
function safeUrl(value) {
  const text = String(value);
  return /^(\/(?!\/)|#|\?|blob:|https?:)/i.test(text) ? text : '#';
}
