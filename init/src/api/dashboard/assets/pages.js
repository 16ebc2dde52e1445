// baton's dashboard: the cluster, a service, and the events. Each page reads the JSON routes
// the CLI reads, and puts every text in through B.el (text nodes only).
'use strict';

// Where a service's instances run: "web-1@pi-a".
function where(service) {
  return (service.instances || []).map((i) => i.id + (i.board ? '@' + i.board : '')).join(', ');
}

function readyCount(service) {
  return (service.instances || []).filter((i) => i.ready).length;
}

B.pages.cluster = function (main) {
  const board = B.el('section', {id: 'board'});
  const boards = B.el('section', {id: 'boards-box'});
  const services = B.el('section', {id: 'services-box'});
  B.put(main, B.el('h1', {}, 'Cluster'), board, boards, services);
  // Each board's CPU times at the last reading: its share is the busy time between two.
  let last = {};
  B.every(5000, async () => {
    const [status, cluster, list] = await Promise.all([
      B.json('/v1/status').catch((e) => e),
      B.json('/v1/boards').catch((e) => e),
      B.json('/v1/services').catch((e) => e),
    ]);
    const cpu = {};
    for (const b of (cluster instanceof Error ? [] : cluster.boards || [])) {
      const now = b.load, was = last[b.name];
      if (now && was && now.cpu_total_ms > was.cpu_total_ms) {
        cpu[b.name] = Math.round(100 * (now.cpu_busy_ms - was.cpu_busy_ms) /
          (now.cpu_total_ms - was.cpu_total_ms)) + ' %';
      }
      if (now) last[b.name] = now;
    }
    drawBoard(board, status);
    drawBoards(boards, status, cluster, cpu);
    drawServices(services, list);
  });
};

function drawBoard(box, status) {
  B.clear(box);
  B.put(box, B.el('h2', {}, 'This board'));
  if (status instanceof Error) { B.put(box, B.problem('/v1/status', status)); return; }
  const addresses = (status.addresses || []).map((a) => a.address + ' (' + a.interface + ')');
  const facts = [
    ['hostname', 'Host name', status.hostname],
    ['model', 'Board', status.board],
    ['kernel', 'Kernel', status.kernel],
    ['uptime', 'Up', B.duration(status.uptime_ms)],
    ['addresses', 'Addresses', addresses.join(', ')],
    ['memory', 'Memory in use', B.bytes(status.memory && status.memory.system_used_bytes)],
    ['init-rss', 'Init RSS', B.bytes(status.memory && status.memory.init_rss_bytes)],
    ['api-tls', 'API', status.api_tls && status.api_tls.enabled ? 'TLS' : 'plain HTTP'],
    ['clock', 'Clock', status.clock && status.clock.synced ? 'synced' : 'not synced'],
  ];
  const list = B.el('dl', {class: 'facts'});
  for (const [id, label, value] of facts) {
    B.put(list, B.el('dt', {}, label), B.el('dd', {id: 'fact-' + id}, value || '–'));
  }
  B.put(box, list);
  if ((status.errors || []).length) {
    B.put(box, B.el('h3', {}, 'Errors since boot'),
      B.el('ul', {class: 'errors'}, status.errors.slice(-10).map((e) => B.el('li', {}, e))));
  }
}

function drawBoards(box, status, cluster, cpu) {
  B.clear(box);
  B.put(box, B.el('h2', {}, 'Boards'));
  if (cluster instanceof Error) { B.put(box, B.problem('/v1/boards', cluster)); return; }
  const rows = (cluster.boards || []).map((b) => {
    const load = b.load;
    const memory = load && load.memory_total_bytes
      ? B.bytes(load.memory_total_bytes - load.memory_available_bytes) + ' of ' +
        B.bytes(load.memory_total_bytes)
      : '–';
    const disk = load && load.data_used_bytes !== null && load.data_used_bytes !== undefined
      ? B.bytes(load.data_used_bytes) + ' used, ' + B.bytes(load.data_free_bytes) + ' free'
      : '–';
    return B.el('tr', {'data-board': b.name},
      B.el('td', {class: 'name'}, b.name),
      B.el('td', {}, B.chip(b.state)),
      B.el('td', {class: 'cpu'}, b.error ? '–' : (cpu[b.name] || 'measuring…')),
      B.el('td', {class: 'mem'}, memory),
      B.el('td', {class: 'disk'}, disk),
      B.el('td', {class: 'version'}, b.version || '–'),
      B.el('td', {class: 'note'}, b.error || ''));
  });
  B.put(box, B.table('boards', ['Board', 'State', 'CPU', 'Memory', 'Disk (/data)', 'Version', ''], rows));
}

// A service's state over the whole cluster: the API's `state` speaks of this board's
// instances only, which in a cluster may be none.
function clusterState(s) {
  const ready = readyCount(s);
  if (s.state === 'removing') return 'removing';
  if ((s.instances || []).some((i) => i.state === 'crash-loop')) return 'crash-loop';
  // At zero (scaled down while idle, or scale.min = 0 and no call yet).
  if (s.desired === 0) return ready > 0 ? 'stopping' : 'idle';
  if (ready >= s.desired) return 'running';
  return ready > 0 ? 'degraded' : 'starting';
}

function drawServices(box, list) {
  B.clear(box);
  B.put(box, B.el('h2', {}, 'Services'));
  if (list instanceof Error) { B.put(box, B.problem('/v1/services', list)); return; }
  const rows = (list.services || []).map((s) => B.el('tr', {'data-service': s.name},
    B.el('td', {class: 'name'}, B.el('a', {href: '#/service/' + encodeURIComponent(s.name)}, s.name)),
    B.el('td', {class: 'state'}, B.chip(clusterState(s))),
    B.el('td', {class: 'desired'}, s.desired),
    B.el('td', {class: 'running'}, s.running),
    B.el('td', {class: 'ready'}, readyCount(s)),
    B.el('td', {class: 'where'}, where(s))));
  B.put(box, B.table('services', ['Service', 'State', 'Desired', 'Running', 'Ready', 'Instances'], rows));
  for (const e of list.errors || []) B.put(box, B.el('p', {class: 'error'}, e.file + ': ' + e.message));
}

B.pages.service = function (main, name) {
  const head = B.el('section', {id: 'service-head'});
  const instances = B.el('section', {});
  const scaling = B.el('section', {});
  const allow = B.el('section', {id: 'allow'});
  const logs = B.el('ol', {id: 'logs', class: 'logs'});
  const restart = B.el('button', {type: 'button', id: 'restart'}, 'Restart every instance');
  const said = B.el('span', {class: 'note', role: 'status'});
  restart.addEventListener('click', async () => {
    const answer = await B.call('/v1/services/' + encodeURIComponent(name) + '/restart', {method: 'POST'})
      .catch((e) => e);
    const body = answer.json ? await answer.json().catch(() => null) : null;
    said.textContent = answer.ok ? ' Restarting.' : ' ' + ((body && body.error) || String(answer));
  });
  B.put(main, B.el('h1', {}, 'Service ', B.el('span', {id: 'service-name'}, name)),
    head, B.el('p', {}, restart, said), instances, scaling, allow,
    B.el('h2', {}, 'Log'), B.el('div', {class: 'scroll logbox'}, logs));
  const path = '/v1/services/' + encodeURIComponent(name);
  B.every(5000, async () => {
    const [service, network] = await Promise.all([
      B.json(path).catch((e) => e), B.json('/v1/network').catch((e) => e)]);
    drawService(head, instances, scaling, service);
    drawAllow(allow, network, name);
  });
  const add = (line) => {
    if (!line) return; // the stream's keep-alive
    B.put(logs, B.el('li', {}, line));
    while (logs.childNodes.length > 500) logs.removeChild(logs.firstChild);
    if (logs.parentNode) logs.parentNode.scrollTop = logs.parentNode.scrollHeight;
  };
  const page = B.page;
  // Every board's instances, each line prefixed instance@board (a board alone: its own).
  B.lines(path + '/logs?tail=100&follow=1&cluster=1', {}, add)
    .catch((e) => { if (!page.left) add('(the log stream ended: ' + e.message + ')'); });
};

function drawService(head, box, scaling, s) {
  B.clear(head); B.clear(box); B.clear(scaling);
  if (s instanceof Error) { B.put(head, B.problem('service', s)); return; }
  const list = B.el('dl', {class: 'facts'});
  for (const [label, value] of [['State', B.chip(s.state)], ['Image', s.image],
    ['Desired', String(s.desired)], ['Running', String(s.running)], ['Ready', String(readyCount(s))],
    ['Published port', s.publish ? String(s.publish) : '–']]) {
    B.put(list, B.el('dt', {}, label), B.el('dd', {}, value));
  }
  B.put(head, list);
  if (s.error) B.put(head, B.el('p', {class: 'error'}, s.error));
  for (const u of s.unplaced || []) B.put(head, B.el('p', {class: 'note'}, 'Not placed: ' + u));
  const rows = (s.instances || []).map((i) => {
    const exit = i.last_exit;
    const exitText = !exit ? '–' : exit.oom_killed ? 'OOM kill'
      : exit.signal ? 'signal ' + exit.signal : 'code ' + exit.code;
    const health = i.healthy === undefined || i.healthy === null ? '–' : i.healthy ? 'healthy' : 'failing';
    return B.el('tr', {'data-instance': i.id},
      B.el('td', {class: 'name'}, i.id), B.el('td', {}, i.board || 'this board'),
      B.el('td', {}, B.chip(i.state)), B.el('td', {}, B.chip(i.ready ? 'yes' : 'no')),
      B.el('td', {}, health),
      B.el('td', {class: 'restarts'}, i.restarts === undefined ? '–' : i.restarts),
      B.el('td', {}, exitText), B.el('td', {}, i.address || '–'),
      B.el('td', {}, i.last_error || ''));
  });
  B.put(box, B.el('h2', {}, 'Instances'), B.table('instances',
    ['Instance', 'Board', 'State', 'Ready', 'Health', 'Restarts', 'Last exit', 'Address', 'Last error'], rows));
  const sc = s.scaling;
  B.put(scaling, B.el('h2', {}, 'Scaling'));
  if (!sc) { B.put(scaling, B.el('p', {class: 'note'}, 'No scaling figures for this service.')); return; }
  B.put(scaling, B.el('p', {}, 'Wants ' + sc.desired + ' (' + sc.ready + ' ready, ' + sc.frozen +
    ' frozen, ' + sc.in_flight + ' requests in flight); between ' + sc.min + ' and ' + sc.max +
    (sc.max_why ? ' (' + sc.max_why + ')' : '') + '.'));
  const decisions = (sc.decisions || []).slice().reverse().map((d) =>
    B.el('tr', {}, B.el('td', {}, B.time(d.at_ms)), B.el('td', {}, d.count), B.el('td', {}, d.reason)));
  B.put(scaling, decisions.length ? B.table('decisions', ['When', 'Instances', 'Why'], decisions)
    : B.el('p', {class: 'note'}, 'No scaling decisions yet.'));
}

function drawAllow(box, network, name) {
  B.clear(box);
  B.put(box, B.el('h2', {}, 'Who it may call, and who may call it'));
  if (network instanceof Error) { B.put(box, B.problem('/v1/network', network)); return; }
  const all = network.services || [];
  const me = all.find((s) => s.name === name);
  const calls = me ? me.allow : [];
  const callers = all.filter((s) => (s.allow || []).includes(name)).map((s) => s.name);
  const list = (names) => names.length ? names.join(', ') : 'none';
  B.put(box, B.el('dl', {class: 'facts'},
    B.el('dt', {}, 'May call'), B.el('dd', {id: 'allow-out'}, list(calls)),
    B.el('dt', {}, 'Called by'), B.el('dd', {id: 'allow-in'}, list(callers)),
    B.el('dt', {}, 'Outside'), B.el('dd', {}, me ? me.egress : '–')));
}

B.pages.events = function (main) {
  const list = B.el('ol', {id: 'events', class: 'events', reversed: true});
  const state = B.el('p', {class: 'note', id: 'events-state', role: 'status'}, 'Connecting…');
  B.put(main, B.el('h1', {}, 'Events'), B.el('section', {}, state, list));
  const page = B.page;
  let lastId = null;
  let data = [];
  const frame = () => {
    if (data.length) {
      try { show(list, JSON.parse(data.join('\n'))); } catch (e) { /* not an event */ }
    }
    data = [];
  };
  const connect = async () => {
    const headers = {Accept: 'text/event-stream'};
    if (lastId) headers['Last-Event-ID'] = lastId;
    await B.lines('/v1/events?follow=1&tail=100', headers, (line) => {
      if (line === '') frame();
      else if (line.startsWith('data:')) data.push(line.slice(5).trim());
      else if (line.startsWith('id:')) lastId = line.slice(3).trim();
    }, () => { state.textContent = 'Live.'; }).catch((e) => { state.textContent = 'Disconnected: ' + e.message; });
    if (page.left) return;
    state.textContent = 'Disconnected; connecting again…';
    setTimeout(() => { if (!page.left) connect(); }, 3000);
  };
  connect().then(() => {}, () => {});
};

// One event at the top of the list, in words.
function show(list, e) {
  const what = [];
  if (e.service) what.push(e.service);
  if (e.instance) what.push(e.instance);
  const detail = [];
  if (e.exit) detail.push(e.exit.oom_killed ? 'OOM kill' : e.exit.signal ? 'signal ' + e.exit.signal : 'exit code ' + e.exit.code);
  if (e.error) detail.push(e.error);
  if (e.next) detail.push('next: ' + e.next);
  if (e.count !== undefined) detail.push(e.count + ' instances');
  if (e.reason) detail.push(e.reason);
  if (e.missed !== undefined) detail.push(e.missed + ' events missed');
  const item = B.el('li', {'data-kind': e.kind, class: 'event'},
    B.el('time', {}, B.time(e.at_ms)), ' ', B.el('span', {class: 'board'}, e.board), ' ',
    B.el('strong', {class: 'kind'}, e.kind), ' ', B.el('span', {class: 'what'}, what.join(' ')),
    detail.length ? B.el('span', {class: 'detail'}, ' — ' + detail.join('; ')) : null);
  list.insertBefore(item, list.firstChild);
  while (list.childNodes.length > 300) list.removeChild(list.lastChild);
}
