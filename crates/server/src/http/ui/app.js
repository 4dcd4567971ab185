// The kvs console: routes the hash to its three screens (#/dashboard, #/keys[/…], #/ops) and
// asks for the operator's user and password when the server answers 401.

import * as api from './api.js';
import { $, reportError } from './dom.js';
import * as dashboard from './dashboard.js';
import * as keys from './keys.js';
import * as ops from './ops.js';

const screens = {
  dashboard: { module: dashboard, title: 'Dashboard' },
  keys: { module: keys, title: 'Keys' },
  ops: { module: ops, title: 'Operations' },
};

let current = null;

/** `#/keys/users%2F1` → { name: 'keys', param: 'users%2F1' } (the parameter still encoded). */
function parseHash() {
  const path = location.hash.replace(/^#\/?/, '');
  const slash = path.indexOf('/');
  return slash < 0
    ? { name: path, param: '' }
    : { name: path.slice(0, slash), param: path.slice(slash + 1) };
}

function route() {
  const { name, param } = parseHash();
  const screen = screens[name];
  if (!screen) {
    location.replace('#/dashboard');
    return;
  }
  if (current && current !== name) screens[current].module.hide();
  for (const n of Object.keys(screens)) {
    $(`screen-${n}`).hidden = n !== name;
    const tab = $(`tab-${n}`);
    if (n === name) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  current = name;
  document.title = `${screen.title} · kvs console`;
  try {
    screen.module.show(param);
  } catch (err) {
    reportError(err);
  }
}

function showSession() {
  const user = api.currentUser();
  $('whoami').textContent = user ? `Signed in as ${user}` : '';
  $('logout').hidden = !user;
}

function showLogin(message) {
  $('login-message').textContent = message
    ? `Sign-in failed: ${message}`
    : 'This server asks for a user and password.';
  $('login-message').classList.toggle('problem', Boolean(message));
  $('login').hidden = false;
  $('main').inert = true;
  $('topbar').inert = true;
  const user = $('login-user');
  if (!user.value && api.currentUser()) user.value = api.currentUser();
  (user.value ? $('login-password') : user).focus();
}

function setupLogin() {
  api.onLoginNeeded(showLogin);
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const user = $('login-user').value;
    const password = $('login-password').value;
    $('login-password').value = '';
    $('login').hidden = true;
    $('main').inert = false;
    $('topbar').inert = false;
    api.login(user, password);
    showSession();
  });
  $('logout').addEventListener('click', () => {
    api.logout();
    location.reload();
  });
}

function start() {
  setupLogin();
  showSession();
  $('skip').addEventListener('click', (e) => {
    e.preventDefault();
    $('main').focus();
  });
  dashboard.init();
  keys.init();
  ops.init();
  window.addEventListener('hashchange', route);
  // A last resort: a failure no handler caught is shown rather than lost.
  window.addEventListener('unhandledrejection', (e) => {
    e.preventDefault();
    reportError(e.reason);
  });
  if (!location.hash || location.hash === '#' || location.hash === '#/') location.replace('#/dashboard');
  else route();
}

start();
