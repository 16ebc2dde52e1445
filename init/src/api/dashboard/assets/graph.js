// baton's dashboard: who may call whom, drawn as SVG from the services' allow lists
// (GET /v1/network). Nodes sit on a circle, an arrow goes from caller to callee; the same
// calls are listed below the picture. Names go in as text nodes.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

B.pages.calls = function (main) {
  const box = B.el('section', {id: 'calls'});
  B.put(main, B.el('h1', {}, 'Who may call whom'), box);
  B.every(10000, async () => {
    const network = await B.json('/v1/network').catch((e) => e);
    B.clear(box);
    if (network instanceof Error) { B.put(box, B.problem('/v1/network', network)); return; }
    const services = (network.services || []).slice().sort((a, b) => a.name.localeCompare(b.name));
    const names = new Set(services.map((s) => s.name));
    const edges = [];
    for (const s of services) {
      for (const to of s.allow || []) edges.push([s.name, to, names.has(to)]);
    }
    B.put(box, draw(services.map((s) => s.name), edges));
    const rows = edges.map(([from, to, known]) => B.el('tr', {},
      B.el('td', {}, from), B.el('td', {}, to), B.el('td', {}, known ? '' : 'no such service')));
    B.put(box, edges.length ? B.table('call-list', ['Caller', 'May call', ''], rows)
      : B.el('p', {class: 'note'}, 'No service may call another.'));
    const open = services.filter((s) => s.egress === 'internet').map((s) => s.name);
    B.put(box, B.el('p', {class: 'note'}, 'May reach outside the cluster: ' +
      (open.length ? open.join(', ') : 'none') + '.'));
  });
};

// The picture: services on a circle, arrows for the calls allowed.
function draw(names, edges) {
  const size = 480;
  const mid = size / 2;
  const radius = names.length > 1 ? mid - 70 : 0;
  const at = {};
  names.forEach((name, i) => {
    const angle = -Math.PI / 2 + 2 * Math.PI * i / Math.max(names.length, 1);
    at[name] = [mid + radius * Math.cos(angle), mid + radius * Math.sin(angle)];
  });
  const picture = svg('svg', {id: 'graph', viewBox: '0 0 ' + size + ' ' + size, role: 'img'});
  picture.appendChild(svg('title', {}, 'Who may call whom'));
  const defs = svg('defs');
  const marker = svg('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5,
    markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse'});
  marker.appendChild(svg('path', {d: 'M0 0 10 5 0 10z', class: 'arrowhead'}));
  defs.appendChild(marker);
  picture.appendChild(defs);
  for (const [from, to, known] of edges) {
    if (!known || !at[from] || from === to) continue;
    const [x1, y1] = at[from];
    const [x2, y2] = at[to];
    const len = Math.hypot(x2 - x1, y2 - y1) || 1;
    const cut = 34 / len;
    picture.appendChild(svg('line', {
      x1: x1 + (x2 - x1) * cut, y1: y1 + (y2 - y1) * cut,
      x2: x2 - (x2 - x1) * cut, y2: y2 - (y2 - y1) * cut,
      class: 'edge', 'marker-end': 'url(#arrow)', 'data-from': from, 'data-to': to,
    }));
  }
  for (const name of names) {
    const [x, y] = at[name];
    const group = svg('g', {class: 'node', 'data-service': name});
    group.appendChild(svg('circle', {cx: x, cy: y, r: 30}));
    const label = name.length > 12 ? name.slice(0, 11) + '…' : name;
    group.appendChild(svg('text', {x: x, y: y + 4, 'text-anchor': 'middle'}, label));
    group.appendChild(svg('title', {}, name));
    picture.appendChild(group);
  }
  return picture;
}
