// circuit.js: the circuit panel — its size, its faithfulness (the r of this
// circuit and the curve over kept fractions, a real plot), the exports, and
// a 2-D diagram of small circuits (<= 100 nodes) like the paper's figures,
// with an image per node.
import * as api from './api.js';
import { thumb, seqColor } from './maps.js';
import { showError } from './errors.js';

const $ = id => document.getElementById(id);
const SVGNS = 'http://www.w3.org/2000/svg';
const DIAGRAM_MAX = 100;

function el(name, attrs = {}, parent) {
  const e = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.append(e);
  return e;
}

export class CircuitPanel {
  constructor(app) {
    this.app = app;
    this.gen = 0;
  }

  update(body) {
    const app = this.app, k = body.kept;
    this.body = body;
    $('circuit-size').innerHTML = `<b>${k.nodes.toLocaleString()}</b> of ${k.cone_nodes.toLocaleString()} nodes and ` +
      `<b>${k.edges.toLocaleString()}</b> of ${k.cone_edges.toLocaleString()} kernels of the target's cone ` +
      `<span class="muted">(${(100 * k.edges / Math.max(1, k.cone_edges)).toFixed(2)}% of the kernels)</span>`;
    $('circuit-size').dataset.nodes = k.nodes;
    $('circuit-size').dataset.edges = k.edges;
    const q = api.query(app.params());
    $('b-export-json').href = `api/export?${q}&format=json`;
    $('b-export-json').download = 'circuit.json';
    $('b-export-pruned').href = `api/export?${q}&format=pruned`;
    $('b-export-pruned').download = `${app.M.model.name}-circuit.safetensors`;
    if (body.faithfulness) this.plot(body.faithfulness);
    else this.requestFaithfulness();
    this.diagram();
  }

  // ---- faithfulness --------------------------------------------------------------------
  requestFaithfulness() {
    const gen = ++this.gen, app = this.app;
    $('faith-info').textContent = 'faithfulness: computing…';
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      try {
        const p = app.params();
        let r = await api.peek('faithfulness', p);
        if (gen !== this.gen) return;
        // jobs for circuits the user has moved on from are cancelled
        for (const id of this.jobs || []) if (!r.job || id !== r.job.id) api.cancelJob(id).catch(() => {});
        this.jobs = r.job ? [r.job.id] : [];
        if (r.job) {
          await api.waitJob(r.job);
          if (gen !== this.gen) return;
          r = await api.peek('faithfulness', p);
        }
        if (gen === this.gen && r.body) this.plot(r.body);
      } catch (e) {
        if (gen === this.gen && !/cancelled/.test(e.message)) showError(e);
      }
    }, 1200);   // not while a slider is being dragged: each circuit's r is a pass over the image set
  }

  plot(f) {
    const svg = $('faith-plot');
    svg.replaceChildren();
    const W = 380, H = 190, ml = 40, mr = 18, mt = 10, mb = 34;
    const pts = f.curve.filter(p => p.r !== null);
    const k = this.body ? this.body.kept : null;
    const cur = k && k.cone_edges ? { fraction: k.edges / k.cone_edges, r: f.r } : null;
    const rmin = Math.min(0, ...pts.map(p => p.r), cur && cur.r !== null ? cur.r : 0);
    const lx = v => Math.log10(Math.max(1e-3, Math.min(1, v)));
    const X = v => ml + (lx(v) + 3) / 3 * (W - ml - mr), Y = v => mt + (1 - (v - rmin) / (1 - rmin)) * (H - mt - mb);
    // grid and axes
    for (const v of [0.001, 0.01, 0.1, 1]) {
      el('line', { x1: X(v), x2: X(v), y1: mt, y2: H - mb, stroke: '#252c39' }, svg);
      el('text', { x: X(v), y: H - mb + 12, 'text-anchor': 'middle' }, svg).textContent = v >= 0.01 ? `${v * 100}%` : '0.1%';
    }
    for (let v = Math.ceil(rmin * 4) / 4; v <= 1.0001; v += 0.25) {
      el('line', { x1: ml, x2: W - mr, y1: Y(v), y2: Y(v), stroke: v === 0 ? '#3a4354' : '#252c39' }, svg);
      el('text', { x: ml - 4, y: Y(v) + 3, 'text-anchor': 'end' }, svg).textContent = v.toFixed(2);
    }
    el('text', { x: (ml + W - mr) / 2, y: H - 4, 'text-anchor': 'middle' }, svg).textContent = 'kernels kept (top by importance, share of the cone)';
    el('text', { x: 10, y: (mt + H - mb) / 2, 'text-anchor': 'middle', transform: `rotate(-90 10 ${(mt + H - mb) / 2})` }, svg).textContent = 'faithfulness r';
    el('polyline', { points: pts.map(p => `${X(p.fraction)},${Y(p.r)}`).join(' '), fill: 'none', stroke: '#5cc8ff', 'stroke-width': 2 }, svg);
    for (const p of pts) {
      const c = el('circle', { cx: X(p.fraction), cy: Y(p.r), r: 3, fill: '#5cc8ff' }, svg);
      el('title', {}, c).textContent = `keep ${(p.fraction * 100).toPrecision(3)}% (${p.edges} kernels): r = ${p.r.toFixed(4)}`;
    }
    if (cur && cur.r !== null) {
      const c = el('circle', { cx: X(cur.fraction), cy: Y(cur.r), r: 5, fill: '#ffb454', stroke: '#000' }, svg);
      el('title', {}, c).textContent = `this circuit: r = ${cur.r.toFixed(4)}`;
    }
    svg.dataset.points = pts.length;
    $('faith-info').innerHTML = `this circuit (orange): r = <b>${f.r === null ? 'n/a' : f.r.toFixed(4)}</b>` +
      ` — Pearson r of the target, full network vs circuit, over ${f.images} images (${f.values} values, in-sample)`;
  }

  // ---- diagram -----------------------------------------------------------------------------
  diagram() {
    const app = this.app, G = app.G, box = $('diagram'), body = this.body;
    box.replaceChildren();
    if (!body) return;
    const kept = [];
    for (let k = G.layers[0].channels; k < G.nNodes; k++) if (app.nodeKept[k]) kept.push(k);
    if (kept.length > DIAGRAM_MAX) {
      box.innerHTML = `<p class="note">The circuit has ${kept.length} nodes; the diagram shows circuits of at most ${DIAGRAM_MAX}. ` +
        'Raise the thresholds (or keep a smaller fraction) to see it.</p>';
      return;
    }
    if (!kept.length) { box.innerHTML = '<p class="note">The circuit is empty: lower the thresholds.</p>'; return; }
    // which edges connect shown nodes (the image's channels join when an edge comes from them)
    const shown = new Set(kept), edges = [];
    for (let e = 0; e < G.nEdges; e++) {
      if (!app.edgeKept[e]) continue;
      const a = G.edgeSrc[e], b = G.edgeDst[e];
      if (a < 0 || !shown.has(b)) continue;
      if (a < G.layers[0].channels) shown.add(a);
      if (shown.has(a)) edges.push(e);
    }
    const cols = [...new Set([...shown].map(k => G.nodeLayer[k]))].sort((a, b) => a - b);
    const colOf = new Map(cols.map((l, i) => [l, i]));
    const byCol = cols.map(l => [...shown].filter(k => G.nodeLayer[k] === l).sort((a, b) => (app.nodeScore[b] || 0) - (app.nodeScore[a] || 0)));
    const S = 44, CW = 120, RH = 62, top = 24;
    const H = top + Math.max(...byCol.map(c => c.length)) * RH + 8, W = cols.length * CW + 10;
    const svg = el('svg', { width: W, height: H });
    const pos = new Map();
    byCol.forEach((c, i) => {
      el('text', { x: 10 + i * CW + S / 2, y: 14, 'text-anchor': 'middle', fill: '#7f8a9c', 'font-size': 10 }, svg).textContent = G.layers[cols[i]].name;
      c.forEach((k, j) => pos.set(k, [10 + i * CW, top + j * RH]));
    });
    const gE = el('g', {}, svg), gN = el('g', {}, svg);
    for (const e of edges) {
      const [ax, ay] = pos.get(G.edgeSrc[e]), [bx, by] = pos.get(G.edgeDst[e]), s = Math.max(0, app.edgeScore[e]);
      const x1 = ax + S, y1 = ay + S / 2, x2 = bx, y2 = by + S / 2, mx = (x1 + x2) / 2;
      const p = el('path', { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, fill: 'none', stroke: seqColor(0.25 + 0.75 * s),
                             'stroke-width': (0.8 + 3.5 * s).toFixed(2), 'stroke-opacity': (0.35 + 0.6 * s).toFixed(2) }, gE);
      p.style.cursor = 'pointer';
      p.onclick = () => app.selectEdge(e);
      el('title', {}, p).textContent = `${app.nodeName(G.edgeDst[e])} ← ${app.nodeName(G.edgeSrc[e])} (${s.toFixed(3)})`;
    }
    this.nodeImages = new Map();
    for (const [k, [x, y]] of pos) {
      const g = el('g', { transform: `translate(${x},${y})` }, gN);
      el('rect', { width: S, height: S, fill: '#000', stroke: app.targetNode() === k ? '#fff' : seqColor(0.25 + 0.75 * Math.max(0, app.nodeScore[k])), 'stroke-width': 2 }, g);
      const img = el('image', { width: S, height: S, preserveAspectRatio: 'none' }, g);
      img.onclick = () => app.selectNode(k);
      this.nodeImages.set(k, img);
      el('text', { x: S / 2, y: S + 11, 'text-anchor': 'middle', fill: '#d8dee9', 'font-size': 10 }, g).textContent = `${G.nodeCh[k]}`;
      el('title', {}, g).textContent = `${app.nodeName(k)} — importance ${app.nodeScore[k] >= 0 ? app.nodeScore[k].toFixed(3) : 'n/a'}`;
    }
    const note = document.createElement('p');
    note.className = 'note';
    note.textContent = app.M.features.featvis
      ? 'Node images: feature visualisations. Edge width and colour: importance. Click a node or an edge to open it.'
      : `Node images: activation maps (after ReLU) for the input image. Feature visualisations are not available in this build. ` +
        'Edge width and colour: importance. Click a node or an edge to open it.';
    box.append(svg, note);
    box.dataset.nodes = pos.size;
    box.dataset.edges = edges.length;
    this.refreshImages();
  }

  // Fills the diagram's node images (feature visualisations, else activation maps).
  async refreshImages() {
    const app = this.app, G = app.G, imgs = this.nodeImages;
    if (!imgs || !imgs.size) return;
    const gen = ++this.imgGen;
    const list = [...imgs.keys()];
    if (app.M.features.featvis) {
      for (const k of list) {
        const L = G.layers[G.nodeLayer[k]];
        try {
          const res = await api.get('featvis', { node: `${L.name}:${G.nodeCh[k]}` });
          if (gen !== this.imgGen) return;
          imgs.get(k).setAttribute('href', URL.createObjectURL(await res.blob()));
        } catch (e) { showError(e); return; }
      }
      return;
    }
    try {
      const r = await app.track(api.get('maps', { image: app.S.image, nodes: list.map(k => app.nodeName(k)).join(',') }));
      if (gen !== this.imgGen) return;
      r.maps.forEach((m, i) => {
        const c = thumb({ ...m, data: api.b64floats(m.data) });
        imgs.get(list[i]).setAttribute('href', c.toDataURL());
      });
    } catch (e) { showError(e); }
  }
}
CircuitPanel.prototype.imgGen = 0;
