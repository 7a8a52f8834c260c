// The admin page: sign-in, the screen tabs, and signing out.
import {api, get, onSignedOut, post, setCsrfToken} from './api.js';
import {$} from '/dom.js';
import {say} from './feedback.js';
import * as dashboard from './dashboard.js';
import * as settings from './settings.js';
import * as people from './people.js';
import * as certificates from './certificates.js';
import * as clock from './clock.js';
import * as logs from './logs.js';
import * as system from './system.js';

const SCREENS = {dashboard, settings, people, certificates, clock, logs, system};
const state = {session: null, screen: null};
// For tests and for poking at the page from the console.
window.ahoyAdmin = state;

function showLogin(session) {
  stopScreen();
  $('#admin').hidden = true;
  $('#logout-button').hidden = true;
  $('#login-screen').hidden = false;
  const hint = $('#login-hint');
  hint.textContent = session && !session.has_password ? session.password_hint : '';
  hint.hidden = !hint.textContent;
  const note = $('#https-note');
  if (session && !session.secure) {
    const port = session.https_port === 443 ? '' : `:${session.https_port}`;
    note.textContent = `This page is not encrypted. Where the Wi-Fi is open, use https://${location.hostname}${port}/admin/ instead (accept the certificate warning once) so nobody nearby can read the password.`;
    note.hidden = false;
  }
  $('#password-input').focus();
}

function showAdmin(session) {
  state.session = session;
  setCsrfToken(session.csrf_token);
  $('#login-screen').hidden = true;
  $('#admin').hidden = false;
  $('#logout-button').hidden = false;
  $('#dev-banner').hidden = !session.dev;
  route();
}

function stopScreen() {
  if (state.screen && SCREENS[state.screen].leave) SCREENS[state.screen].leave();
  state.screen = null;
}

function route() {
  if ($('#admin').hidden) return;
  const name = location.hash.slice(1);
  const screen = Object.hasOwn(SCREENS, name) ? name : 'dashboard';
  stopScreen();
  for (const key of Object.keys(SCREENS)) {
    $(`#screen-${key}`).hidden = key !== screen;
  }
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.screen === screen) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  state.screen = screen;
  SCREENS[screen].show($(`#screen-${screen}`), state.session);
}

async function signIn(event) {
  event.preventDefault();
  const input = $('#password-input');
  const error = $('#login-error');
  const button = $('[data-testid="login-button"]');
  if (!input.value) {
    say(error, 'Type the admin password.', 'error');
    return;
  }
  button.disabled = true;
  say(error, '');
  try {
    await post('login', {password: input.value});
    input.value = '';
    showAdmin(await get('session'));
  } catch (e) {
    say(error, e.message, 'error');
    input.select();
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  try { await post('logout'); } catch { /* signed out either way */ }
  setCsrfToken(null);
  showLogin(await get('session').catch(() => null));
}

async function start() {
  $('#login-form').addEventListener('submit', signIn);
  $('#logout-button').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  onSignedOut(() => {
    if (!$('#admin').hidden) {
      showLogin(state.session);
      say($('#login-error'), 'You were signed out (idle for too long, or the password changed). Sign in again.', 'warn');
    }
  });
  let session = null;
  try {
    session = await api('GET', 'session');
  } catch (e) {
    $('#boot-note').textContent = e.message;
    return;
  }
  $('#boot-note').hidden = true;
  $('#box-title').textContent = `admin · ${session.box_name}`;
  if (session.signed_in) showAdmin(session);
  else showLogin(session);
}

start();
