// baton's dashboard: the core. Sign-in, requests to the board's API, the hash router, and
// el(), the one way text gets into the page: every text from the board (names, log lines,
// events) is hostile and goes in as a text node, never as markup.
'use strict';

const B = {
  csrf: null,
  pages: {},
  page: null,
};

// An element: el('td', {class: 'n', title: t}, 'text', otherNode, ...). Attributes are set one
// by one; children that are not nodes become text nodes.
B.el = function (tag, attrs, ...kids) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined && value !== false) {
      node.setAttribute(name, String(value));
    }
  }
  B.put(node, ...kids);
  return node;
};

// Appends children: nodes as they are, anything else as text.
B.put = function (node, ...kids) {
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined) continue;
    node.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return node;
};

B.clear = function (node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
};

// A table in a box that scrolls sideways on a narrow screen.
B.table = function (id, heads, rows) {
  const head = B.el('tr', {}, heads.map((h) => B.el('th', {scope: 'col'}, h)));
  const table = B.el('table', {id: id}, B.el('thead', {}, head), B.el('tbody', {}, rows));
  return B.el('div', {class: 'scroll'}, table);
};

B.bytes = function (n) {
  if (n === null || n === undefined || isNaN(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
};

B.duration = function (ms) {
  if (ms === null || ms === undefined) return '–';
  const s = Math.floor(ms / 1000);
  if (s < 120) return s + ' s';
  if (s < 7200) return Math.floor(s / 60) + ' min';
  if (s < 172800) return Math.floor(s / 3600) + ' h';
  return Math.floor(s / 86400) + ' d';
};

B.time = function (ms) {
  return ms ? new Date(ms).toLocaleString() : '–';
};

// A state word in a coloured chip (the class is chosen from a fixed list, never from data).
B.chip = function (word) {
  const known = {
    running: 'ok', self: 'ok', alive: 'ok', ready: 'ok', yes: 'ok',
    starting: 'mid', degraded: 'mid', idle: 'mid', backoff: 'mid', frozen: 'mid', stopping: 'mid',
    dead: 'bad', 'crash-loop': 'bad', stopped: 'bad', no: 'bad', removing: 'mid',
  };
  return B.el('span', {class: 'chip ' + (known[word] || 'none')}, word);
};

// A request to the board; a 401 shows the sign-in. Changes carry the CSRF value.
B.call = async function (path, options) {
  const opts = Object.assign({credentials: 'same-origin', headers: {}}, options || {});
  if (opts.method && opts.method !== 'GET' && B.csrf) opts.headers['X-Baton-CSRF'] = B.csrf;
  const answer = await fetch(path, opts);
  if (answer.status === 401 && !path.startsWith('/v1/session')) {
    B.signedOut('The session has ended; sign in again.');
    throw new Error('signed out');
  }
  return answer;
};

// The JSON of a GET; throws with the board's own words on a refusal.
B.json = async function (path) {
  const answer = await B.call(path);
  const body = await answer.json().catch(() => null);
  if (!answer.ok) throw new Error((body && body.error) || (path + ': HTTP ' + answer.status));
  return body;
};

// What went wrong, in the page.
B.problem = function (where, error) {
  return B.el('p', {class: 'error'}, where + ': ' + (error && error.message ? error.message : error));
};

// Runs fn now and every ms until the page is left.
B.every = function (ms, fn) {
  let timer = null;
  const page = B.page;
  const run = async () => {
    try { await fn(); } catch (e) { /* shown by fn */ }
    if (page && !page.left) timer = setTimeout(run, ms);
  };
  B.onLeave(() => clearTimeout(timer));
  run();
};

B.onLeave = function (fn) {
  if (B.page) B.page.leave.push(fn);
};

// Reads a streamed text answer line by line until the page is left: fn(line) for each, and
// opened() once the board has answered.
B.lines = async function (path, headers, fn, opened) {
  const stop = new AbortController();
  B.onLeave(() => stop.abort());
  const answer = await B.call(path, {signal: stop.signal, headers: headers || {}});
  if (!answer.ok) {
    const body = await answer.json().catch(() => null);
    throw new Error((body && body.error) || ('HTTP ' + answer.status));
  }
  if (opened) opened();
  const reader = answer.body.getReader();
  const decoder = new TextDecoder();
  let rest = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    rest += decoder.decode(value, {stream: true});
    const lines = rest.split('\n');
    rest = lines.pop();
    for (const line of lines) fn(line);
  }
};

// The router: #/ the cluster, #/service/NAME, #/calls, #/events.
// Leaves the page shown: its timers stop and its streams close.
B.leave = function () {
  if (!B.page || B.page.left) return;
  B.page.left = true;
  for (const fn of B.page.leave) { try { fn(); } catch (e) { /* going anyway */ } }
};

B.route = function () {
  B.leave();
  const main = B.clear(document.getElementById('main'));
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  const name = parts[0] || 'cluster';
  const page = B.pages[name] || B.pages.cluster;
  B.page = {left: false, leave: []};
  document.body.setAttribute('data-page', B.pages[name] ? name : 'cluster');
  let arg = parts.slice(1).join('/');
  try { arg = decodeURIComponent(arg); } catch (e) { /* a malformed %: the text as written */ }
  page(main, arg);
};

B.signedIn = function (session) {
  B.csrf = session.csrf;
  document.getElementById('signin').hidden = true;
  document.getElementById('nav').hidden = false;
  document.getElementById('main').hidden = false;
  B.route();
};

B.signedOut = function (why) {
  B.csrf = null;
  B.leave();
  document.getElementById('nav').hidden = true;
  B.clear(document.getElementById('main')).hidden = true;
  document.getElementById('signin').hidden = false;
  document.getElementById('signin-error').textContent = why || '';
  document.getElementById('token').focus();
};

B.start = async function () {
  const form = document.getElementById('signin');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const field = document.getElementById('token');
    const error = document.getElementById('signin-error');
    error.textContent = '';
    const answer = await fetch('/v1/session', {
      method: 'POST',
      credentials: 'same-origin',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({token: field.value}),
    }).catch(() => null);
    const body = answer ? await answer.json().catch(() => null) : null;
    if (answer && answer.ok && body && body.signed_in) {
      field.value = '';
      B.signedIn(body);
    } else if (answer && answer.status === 401) {
      error.textContent = 'Wrong token: the board refused it.';
    } else {
      error.textContent = (body && body.error) || 'The board did not answer.';
    }
  });
  document.getElementById('logout').addEventListener('click', async () => {
    await B.call('/v1/session/logout', {method: 'POST'}).catch(() => null);
    B.signedOut('Signed out.');
  });
  window.addEventListener('hashchange', () => { if (B.csrf) B.route(); });
  const session = await fetch('/v1/session', {credentials: 'same-origin'})
    .then((a) => a.json()).catch(() => ({}));
  document.getElementById('plain').hidden = session.encrypted !== false;
  if (session.signed_in) B.signedIn(session); else B.signedOut('');
};

document.addEventListener('DOMContentLoaded', B.start);
