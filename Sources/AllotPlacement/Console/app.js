// Entry point: session and login, hash routing, the top bar (navigation, live indicator, status, log out) and
// the readiness signals the tests read (body data-page, data-ready, data-renders).

import { h, clear, setStatus } from '/ui/dom.js';
import { session, loadSession, hasToken, setToken, clearToken, onUnauthorized } from '/ui/api.js';
import * as stream from '/ui/stream.js';
import * as fleet from '/ui/fleet.js';
import * as node from '/ui/node.js';
import * as instances from '/ui/instances.js';
import * as fit from '/ui/fit.js';
import * as live from '/ui/live.js';

const body = document.body;
const main = document.getElementById('main');
let current = null;
let navigation = 0;
let loggedIn = false;
let pendingFocus = false; // "/" pressed on another page: focus the fleet search once it shows

/** Parses the hash: {page, params}. Unknown routes go to the fleet. */
export function parseRoute(hash) {
  const path = String(hash || '').replace(/^#/, '');
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'node' && parts[1]) return { page: 'node', params: { uuid: decodeURIComponent(parts[1]) } };
  if (parts[0] === 'instances') return { page: 'instances', params: {} };
  if (parts[0] === 'fit' && session.placement) return { page: 'fit', params: {} };
  if (parts[0] === 'live') return { page: 'live', params: {} };
  return { page: 'fleet', params: {} };
}

const PAGES = { fleet, node, instances, fit, live };
const TITLES = { fleet: 'Fleet', node: 'Node', instances: 'Instances and moves', fit: 'Where does it fit?', live: 'Live', login: 'Log in' };

function unmountCurrent() {
  if (current) { try { current.unmount(); } catch { /* already gone */ } }
  current = null;
}

async function navigate(options = {}) {
  if (!loggedIn) return;
  const gen = ++navigation;
  body.dataset.ready = '0';
  const route = parseRoute(location.hash);
  const canonical = route.page === 'node' ? `#/node/${encodeURIComponent(route.params.uuid)}` : `#/${route.page}`;
  if (location.hash !== canonical && !(route.page === 'node')) history.replaceState(null, '', canonical);
  unmountCurrent();
  clear(main);
  body.dataset.page = route.page;
  document.title = `${TITLES[route.page]} · Allot`;
  for (const a of document.querySelectorAll('#nav a')) {
    const active = a.dataset.nav === route.page || (route.page === 'node' && a.dataset.nav === 'fleet');
    a.classList.toggle('active', active);
    if (active) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  try {
    current = PAGES[route.page].mount(main, route.params, { focusSearch: options.focusSearch });
    await current.ready;
  } catch (err) {
    setStatus(`Could not show the page: ${err && err.message ? err.message : err}`, 'error');
  }
  if (gen === navigation && loggedIn) {
    body.dataset.ready = '1';
    // For measuring: when this page became interactive (tests read it through the DevTools protocol).
    performance.mark(`allot:ready:${route.page}`);
  }
}

function showLogin(message = '') {
  loggedIn = false;
  navigation += 1;
  stream.stop();
  unmountCurrent();
  clear(main);
  body.dataset.page = 'login';
  document.title = 'Log in · Allot';
  const input = h('input', { id: 'login-token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: session.auth === 'keystone' ? 'Keystone token' : 'Token' });
  const msg = h('p', { id: 'login-message', class: `login-message${message ? ' shown' : ''}`, role: 'alert', text: message });
  const form = h('form', { id: 'login-form', class: 'login-form', autocomplete: 'off', novalidate: true },
    h('h1', null, 'Allot console'),
    h('p', { class: 'muted' }, session.auth === 'keystone'
      ? 'Paste a Keystone token (openstack token issue -f value -c id). It stays in this tab only.'
      : 'Enter an API token. It stays in this tab only (session storage).'),
    h('label', { for: 'login-token' }, 'Token'), input, msg,
    h('button', { type: 'submit', class: 'primary', id: 'login-submit' }, 'Log in'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) { msg.textContent = 'Enter a token.'; msg.classList.add('shown'); return; }
    setToken(token);
    input.value = '';
    enter();
  });
  main.appendChild(h('div', { class: 'page page-login' }, form));
  input.focus();
  body.dataset.ready = '1';
}

function enter() {
  loggedIn = true;
  setStatus('');
  stream.start();
  navigate();
}

function setupTopBar() {
  const indicator = document.getElementById('live-indicator');
  const label = indicator.querySelector('.label');
  stream.onState((state, reason) => {
    indicator.dataset.state = state;
    if (label) label.textContent = state === 'open' ? 'live' : 'offline';
    indicator.title = state === 'open' ? 'Event stream connected' : `Event stream closed${reason ? `: ${reason}` : ''}`;
  });
  const logout = document.getElementById('logout');
  logout.hidden = session.auth === 'noauth';
  logout.addEventListener('click', () => {
    clearToken();
    showLogin('Logged out.');
  });
  const fitLink = document.querySelector('#nav a[data-nav="fit"]');
  if (fitLink) fitLink.hidden = !session.placement;
  body.dataset.auth = session.auth;
  body.dataset.placement = String(session.placement);
}

document.addEventListener('keydown', (e) => {
  if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || !loggedIn) return;
  const t = e.target;
  if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
  e.preventDefault();
  if (body.dataset.page === 'fleet' && current && current.focusSearch) current.focusSearch();
  else { location.hash = '#/fleet'; pendingFocus = true; }
});

window.addEventListener('hashchange', () => {
  const focus = pendingFocus;
  pendingFocus = false;
  navigate({ focusSearch: focus });
});
window.addEventListener('unhandledrejection', (e) => {
  // Nothing should get here; if something does, say so in the page rather than only in the console.
  e.preventDefault();
  setStatus(`Unexpected error: ${e.reason && e.reason.message ? e.reason.message : e.reason}`, 'error');
});

onUnauthorized((message) => { showLogin(message); });

async function boot() {
  body.dataset.ready = '0';
  if (!body.dataset.renders) body.dataset.renders = '0';
  const problem = await loadSession();
  setupTopBar();
  if (problem) setStatus(problem, 'error');
  if (session.auth === 'noauth' || hasToken()) enter();
  else showLogin();
}

boot();
