// Service worker: keeps the app shell so Ahoy opens even when the box is
// briefly out of reach. The page is network first (the box is always the
// fresher copy), the cache only when the network fails. Scripts and style
// sheets live under the app's version (/v/<version>/app.js, see
// appliance/webapp.py) and never change there: cache first. The box writes the
// version below when it sends this file, so an update is a new worker with a
// new cache, and the old cache is dropped. /api, /ws and /ca.crt are never cached.

const VERSION = 'dev';
const CACHE = 'ahoy-shell-' + VERSION;
const FILES = [
  'style.css', 'app.js', 'strings.js', 'store.js', 'net.js', 'dom.js', 'ui.js',
  'chat.js', 'rooms.js', 'boxinfo.js', 'boxdialogs.js', 'notify.js', 'calls.js', 'callmedia.js', 'peer.js', 'share.js',
  'format.js', 'roomadmin.js', 'msgmenu.js', 'search.js', 'profile.js', 'transfer.js', 'direct.js', 'qr.js',
];
const KEPT = FILES.map((f) => `/v/${VERSION}/${f}`);
const SHELL = ['/', '/index.html', '/manifest.webmanifest', '/icons/icon.svg', '/icons/icon-192.png'];

self.addEventListener('install', (ev) => {
  ev.waitUntil(caches.open(CACHE).then((c) => c.addAll([...SHELL, ...KEPT])).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (ev) => {
  ev.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (ev) => {
  const url = new URL(ev.request.url);
  if (ev.request.method !== 'GET' || url.origin !== location.origin) return;
  if (url.pathname.startsWith('/api/') || url.pathname === '/ws' || url.pathname === '/ca.crt') return;
  const key = url.pathname;
  if (KEPT.includes(key)) {
    ev.respondWith(caches.match(key).then((hit) => hit || fetch(ev.request)));
    return;
  }
  if (!SHELL.includes(key)) return;
  ev.respondWith(
    fetch(ev.request)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          caches.open(CACHE).then((c) => c.put(key, copy));
        }
        return res;
      })
      .catch(() => caches.match(key).then((hit) => hit || Response.error())),
  );
});

self.addEventListener('notificationclick', (ev) => {
  ev.notification.close();
  ev.waitUntil(
    self.clients.matchAll({type: 'window'}).then((list) => (list[0] ? list[0].focus() : self.clients.openWindow('/'))),
  );
});
