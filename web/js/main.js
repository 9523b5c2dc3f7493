// main.js: the viscnn page. Loads the model and its display graph, keeps the
// view state in the URL, fetches layouts, scores and circuits (following the
// server's jobs), and wires the controls, the 3-D view and the panels.
import * as api from './api.js';
import { GraphView, buildGraph, edgeIds } from './graph3d.js';
import { readState, writeState, flushState, parseSel } from './state.js';
import { Panels } from './panels.js';
import { CircuitPanel } from './circuit.js';
import { seqColor } from './maps.js';
import { showError, escapeHtml } from './errors.js';

const $ = id => document.getElementById(id);
const T = { t0: performance.now() };

function fatal(msg) {
  const f = $('fatal');
  f.hidden = false;
  f.textContent = msg;
}

// ---- job bar -------------------------------------------------------------------------
function showJobs(list) {
  const box = $('jobs');
  box.replaceChildren();
  for (const j of list) {
    if (j.state !== 'queued' && j.state !== 'running') continue;
    const d = document.createElement('div');
    d.className = 'job';
    d.dataset.id = j.id;
    const p = document.createElement('progress');
    if (j.total > 0) { p.max = j.total; p.value = j.done; }
    const label = document.createElement('span');
    label.textContent = `${j.label}${j.state === 'queued' ? ' (queued)' : j.total ? ` ${j.done}/${j.total}` : ''}`;
    const b = document.createElement('button');
    b.textContent = '×';
    b.title = 'cancel this job';
    b.onclick = () => api.cancelJob(j.id).catch(showError);
    d.append(label, p, b);
    box.append(d);
  }
}
api.onJobs(showJobs);

// ---- the app -----------------------------------------------------------------------------
class App {
  constructor(model) {
    this.M = model;
    this.G = buildGraph(model);
    const d = model.defaults;
    this.S = readState({ model: model.model.name, set: d.set, scores: d.scores, target: d.target, metric: d.metric,
                         proj: d.projection, mode: d.mode, tn: d.tn, te: d.te, keep: 0.1, image: d.image, ctx: '1' });
    if (this.S.model !== model.model.name) {
      showError(`this view's URL was made for the model "${this.S.model}"; this server has "${model.model.name}"`);
      this.S.model = model.model.name;
    }
    this.nodeScore = new Float32Array(this.G.nNodes).fill(-1);
    this.edgeScore = new Float32Array(this.G.nEdges).fill(-1);
    this.nodeKept = new Uint8Array(this.G.nNodes);
    this.edgeKept = new Uint8Array(this.G.nEdges);
    this.stats = { counts: { nodes: this.G.nNodes, kernels: this.G.kernels, identity: this.G.identity, edges: this.G.nEdges,
                             unsourced: this.G.unsourced } };
    this.inflight = 0;
    this.view = new GraphView($('graph'), {
      onClickNode: (k, ev) => ev.shiftKey ? this.setTargetNode(k) : this.selectNode(k),
      onClickEdge: k => this.selectEdge(k),
      onClickEmpty: () => {},
      onHover: (k, x, y) => this.hover(k, x, y),
      onCamera: () => { if (this.ready) { this.S.cam = this.view.cameraString(); writeState(this.S); } },
    });
    this.view.setGraph(this.G);
    this.panels = new Panels(this);
    this.circuit = new CircuitPanel(this);
  }

  // ---- helpers ------------------------------------------------------------------------
  layerIndex(name) { return this.G.layers.findIndex(L => L.name === name); }
  nodeIndex(layer, ch) { const l = this.layerIndex(layer); return l < 0 || ch < 0 || ch >= this.G.layers[l].channels ? -1 : this.G.layers[l].offset + ch; }
  edgeIndex(layer, out, inn) {
    const l = this.layerIndex(layer), L = this.G.layers[l];
    if (!L || L.kind !== 'conv' || out < 0 || out >= L.channels || inn < 0 || inn >= L.cg) return -1;
    return L.edgeOffset + out * L.cg + inn;
  }
  nodeName(k) { const L = this.G.layers[this.G.nodeLayer[k]]; return `${L.name}:${this.G.nodeCh[k]}`; }
  params(extra = {}) {
    const S = this.S;
    const p = { set: S.set, target: S.target, metric: S.metric, scores: S.scores };
    if (S.mode === 'keep') p.mode = `keep:${S.keep}`;
    else { p.mode = S.mode; p.tn = S.tn; p.te = S.te; }
    return { ...p, ...extra };
  }
  async track(promise) {
    this.inflight++;
    try { return await promise; } finally { this.inflight--; }
  }
  targetNode() {
    const m = /^node:(.+):(\d+)$/.exec(this.S.target);
    if (!m) return -1;
    let k = this.nodeIndex(m[1], Number(m[2]));
    if (k < 0) {   // a BN or ReLU name: the display layer whose maps it is
      const l = this.G.layers.findIndex(L => L.pre === m[1] || L.post === m[1]);
      if (l >= 0) k = this.G.layers[l].offset + Number(m[2]);
    }
    return k;
  }

  // ---- controls --------------------------------------------------------------------------
  initControls() {
    const M = this.M, S = this.S;
    $('model-name').textContent = M.model.name;
    $('model-name').title = M.model.path;
    const c = this.stats.counts;
    $('counts').textContent = `${c.nodes.toLocaleString()} nodes · ${c.kernels.toLocaleString()} kernels` +
      (c.identity ? ` + ${c.identity.toLocaleString()} identity edges` : '') + ` · ${M.set.images} images`;
    $('counts').dataset.nodes = c.nodes;
    $('counts').dataset.edges = c.kernels;
    const fill = (sel, items) => { sel.replaceChildren(...items.map(([v, t]) => { const o = document.createElement('option'); o.value = v; o.textContent = t; return o; })); };
    fill($('c-metric'), M.choices.metrics.map(m => [m, m]));
    fill($('c-proj'), M.choices.projections.map(p => [p, p]));
    const K = M.model.classes;
    fill($('c-target-class'), Array.from({ length: K }, (_, k) => [k, `${k} ${M.model.labels[k] || ''}`]));
    $('layer-suggest').replaceChildren(...M.layers.filter(L => L.kind !== 'input').map(L => {
      const o = document.createElement('option'); o.value = `${L.name}:0`; return o; }));
    this.fillSets();
    const cats = M.set.categories.map(x => x.name);
    $('scores-suggest').replaceChildren(...['overall', ...cats, ...cats.map(x => `${/^[A-Za-z_][A-Za-z0-9_.]*$/.test(x) ? x : JSON.stringify(x)} - overall`)].map(v => {
      const o = document.createElement('option'); o.value = v; return o; }));
    this.syncControls();

    $('c-set').onchange = () => { S.set = $('c-set').value; if (S.set !== 'main') S.scores = 'overall'; this.changed('scores'); };
    const scores = $('c-scores');
    scores.onchange = () => { S.scores = scores.value.trim() || 'overall'; this.changed('scores'); };
    $('c-target-kind').onchange = () => this.readTarget();
    $('c-target-class').onchange = () => this.readTarget();
    $('c-target-node').onchange = () => this.readTarget();
    $('c-metric').onchange = () => { S.metric = $('c-metric').value; this.changed('scores'); };
    $('c-proj').onchange = () => { S.proj = $('c-proj').value; this.changed('layout'); };
    $('c-mode').onchange = () => {
      const was = S.mode;
      S.mode = $('c-mode').value;
      // threshold: normalised scores, 0.2 keeps the clearly important; hierarchical: cumulative shares, 0.8
      if (S.mode === 'hierarchical' && was !== 'hierarchical') S.tn = S.te = 0.8;
      if (S.mode === 'threshold' && was === 'hierarchical') S.tn = S.te = 0.2;
      this.syncControls();
      this.changed('circuit');
    };
    for (const [id, key] of [['c-tn', 'tn'], ['c-te', 'te']])
      $(id).oninput = ev => { S[key] = Number($(id).value); this.syncControls(); this.changed('circuit', ev.timeStamp); };
    $('c-keep').oninput = ev => { S.keep = Number(Math.pow(10, Number($('c-keep').value)).toPrecision(3)); this.syncControls(); this.changed('circuit', ev.timeStamp); };
    $('c-context').onchange = () => { S.ctx = $('c-context').checked ? '1' : '0'; this.view.setContextVisible(S.ctx === '1'); writeState(S); };
    $('b-reset-cam').onclick = () => this.view.resetCamera();
    $('b-copy-url').onclick = async () => {
      flushState(this.S);
      try { await navigator.clipboard.writeText(location.href); $('b-copy-url').textContent = 'copied'; }
      catch (e) { prompt('view URL', location.href); }
      setTimeout(() => { $('b-copy-url').textContent = 'copy view URL'; }, 1500);
    };
  }

  fillSets() {
    const opts = [['main', `${this.M.set.source} (${this.M.set.images})`],
                  ...(this.uploads || []).map(u => [u.id, `upload: ${u.name}`])];
    const sel = $('c-set');
    sel.replaceChildren(...opts.map(([v, t]) => { const o = document.createElement('option'); o.value = v; o.textContent = t; return o; }));
    if (!opts.some(o => o[0] === this.S.set)) {
      const o = document.createElement('option'); o.value = this.S.set; o.textContent = this.S.set; sel.append(o);
    }
    sel.value = this.S.set;
  }

  syncControls() {
    const S = this.S;
    $('c-scores').value = S.scores;
    $('c-metric').value = S.metric;
    $('c-proj').value = S.proj;
    $('c-mode').value = S.mode;
    $('c-tn').value = S.tn; $('o-tn').textContent = Number(S.tn).toFixed(2);
    $('c-te').value = S.te; $('o-te').textContent = Number(S.te).toFixed(2);
    $('c-keep').value = Math.log10(Math.max(1e-3, S.keep)); $('o-keep').textContent = `${+(S.keep * 100).toPrecision(3)}%`;
    $('thresholds').hidden = S.mode === 'keep';
    $('keep').hidden = S.mode !== 'keep';
    $('c-context').checked = S.ctx !== '0';
    const t = S.target;
    const kind = t.startsWith('class:') ? 'class' : t.startsWith('node:') ? 'node' : 'loss';
    $('c-target-kind').value = kind;
    $('c-target-class').hidden = kind !== 'class';
    $('c-target-node').hidden = kind !== 'node';
    if (kind === 'class') $('c-target-class').value = t.slice(6);
    if (kind === 'node') $('c-target-node').value = t.slice(5);
  }

  readTarget() {
    const kind = $('c-target-kind').value;
    if (kind === 'loss') this.S.target = 'loss';
    else if (kind === 'class') this.S.target = `class:${$('c-target-class').value}`;
    else {
      const v = $('c-target-node').value.trim();
      if (!v) { this.syncControls(); $('c-target-kind').value = 'node'; $('c-target-node').hidden = false; $('c-target-class').hidden = true; $('c-target-node').focus(); return; }
      this.S.target = `node:${v}`;
    }
    this.changed('scores');
  }

  setTargetNode(k) {
    this.S.target = `node:${this.nodeName(k)}`;
    this.changed('scores');
  }

  // what changed -> what to fetch again; a request the server refuses (a
  // contrast naming no category, a node that is no conv channel) puts the
  // controls back to the last view that worked, and says why
  changed(what, t0) {
    writeState(this.S);
    this.syncControls();
    const undo = e => {
      showError(e);
      if (e instanceof api.ApiError && (e.status === 400 || e.status === 409) && this.good) {
        Object.assign(this.S, this.good);
        writeState(this.S);
        this.syncControls();
      }
    };
    if (what === 'layout') this.loadLayout().catch(undo);
    else if (what === 'scores') this.loadScores().catch(undo);
    else if (what === 'circuit') this.loadCircuit(t0).catch(undo);
  }

  remember() {
    const S = this.S;
    this.good = { set: S.set, scores: S.scores, target: S.target, metric: S.metric, proj: S.proj, mode: S.mode, tn: S.tn, te: S.te, keep: S.keep };
  }

  // ---- data ------------------------------------------------------------------------------
  async loadLayout() {
    this.layoutAbort?.abort();
    const ctl = this.layoutAbort = new AbortController();
    const p = { projection: this.S.proj, set: this.S.set, metric: this.S.metric };
    const r = await this.track(api.peek('layout', p, { signal: ctl.signal }));
    if (r.body) { this.applyLayout(r.body); return; }
    // computing: show the grid meanwhile
    if (!this.haveLayout) this.applyLayout(await api.get('layout', { projection: 'grid' }));
    const body = await this.track(api.get('layout', p, { signal: ctl.signal }));
    if (!ctl.signal.aborted) this.applyLayout(body);
  }
  applyLayout(layout) {
    const first = !this.haveLayout;
    if (this.good) this.good.proj = this.S.proj;
    this.view.setLayout(layout);
    this.haveLayout = true;
    if (first && !(this.S.cam && this.view.setCameraString(this.S.cam))) this.view.resetCamera();
    this.panels.refreshMarks();
  }

  async loadScores() {
    this.scoresAbort?.abort();
    const ctl = this.scoresAbort = new AbortController();
    const body = await this.track(api.get('scores', this.params(), { signal: ctl.signal }));
    if (ctl.signal.aborted) return;
    this.applyScores(body);
    await this.loadCircuit();
    this.panels.refreshScores();
  }

  applyScores(body, first) {
    const G = this.G;
    this.nodeScore.fill(-1);
    this.edgeScore.fill(-1);
    this.rawNode = new Float32Array(G.nNodes).fill(NaN);
    for (const L of body.layers) {
      const D = G.layers[L.dlayer], n = api.b64floats(L.nodes), e = api.b64floats(L.edges), raw = api.b64floats(L.raw_nodes);
      this.nodeScore.set(n, D.offset);
      this.rawNode.set(raw, D.offset);
      this.edgeScore.set(e, D.edgeOffset);
    }
    this.scoreInfo = body;
    this.view.setScores(this.nodeScore, this.edgeScore, first);
  }

  async loadCircuit(t0) {
    this.circuitAbort?.abort();
    const ctl = this.circuitAbort = new AbortController();
    const tf = performance.now();
    const body = await this.track(api.get('circuit', this.params(), { signal: ctl.signal }));
    if (ctl.signal.aborted) return;
    const tr = performance.now();
    this.applyCircuit(body);
    const rms = this.view.renderNow(true);
    const t1 = performance.now();
    if (t0 !== undefined) {
      // from the slider's input event to a finished frame
      this.stats.lastThreshold = { totalMs: t1 - t0, fetchMs: tr - tf, serverMs: body.server_ms, renderMs: rms,
                                   keptEdges: body.kept.edges, keptNodes: body.kept.nodes };
      (this.stats.thresholdLog ||= []).push(this.stats.lastThreshold);
    }
  }

  applyCircuit(body) {
    const G = this.G;
    this.nodeKept.fill(0);
    this.edgeKept.fill(0);
    for (let c = 0; c < G.layers[0].channels; c++) this.nodeKept[c] = 1;   // the image's channels
    for (const L of body.layers) {
      const D = G.layers[L.dlayer];
      this.nodeKept.set(api.b64bits(L.nodes, D.channels), D.offset);
      this.edgeKept.set(api.b64bits(L.edges, D.channels * D.cg), D.edgeOffset);
    }
    this.circuitInfo = body;
    this.view.setCircuit(this.nodeKept, this.edgeKept);
    this.view.setMarks(this.targetNode(), this.selNode ?? -1, this.selEdge ?? -1);
    this.circuit.update(body);
    this.legend();
    this.remember();
  }

  legend() {
    const S = this.S;
    const stops = Array.from({ length: 9 }, (_, k) => seqColor(k / 8)).join(',');
    $('legend').innerHTML = `importance of <b>${S.target}</b> (${S.metric}, ${escapeHtml(S.scores)})<br>` +
      `0 <span class="bar" style="background:linear-gradient(90deg,${stops})"></span> 1 (per layer)` +
      `<br>bright & wide: the circuit; faint: the rest of the network`;
  }

  // ---- selection -----------------------------------------------------------------------
  selectNode(k, quiet) {
    this.selNode = k; this.selEdge = -1;
    this.S.sel = k >= 0 ? `node:${this.nodeName(k)}` : '';
    if (!quiet) writeState(this.S);
    this.view.setMarks(this.targetNode(), k, -1);
    return this.panels.showNode(k);
  }
  selectEdge(k, quiet) {
    this.selEdge = k; this.selNode = -1;
    const id = edgeIds(this.G, k);
    this.S.sel = `edge:${id.layer}:${id.out}:${id.in}`;
    if (!quiet) writeState(this.S);
    this.view.setMarks(this.targetNode(), -1, k);
    return this.panels.showEdge(k);
  }
  restoreSelection() {
    const s = parseSel(this.S.sel);
    if (!s) return null;
    if (s.kind === 'node') { const k = this.nodeIndex(s.layer, s.ch); if (k >= 0) return this.selectNode(k, true); }
    if (s.kind === 'edge') {
      const l = this.layerIndex(s.layer), L = this.G.layers[l];
      let k = this.edgeIndex(s.layer, s.out, s.in);
      if (k < 0 && L && L.kind === 'add' && s.in >= 0 && s.in < 2 && s.out >= 0 && s.out < L.channels) k = L.edgeOffset + s.in * L.channels + s.out;
      if (k >= 0) return this.selectEdge(k, true);
    }
    showError(`selection ${this.S.sel}: not in this model`);
    return null;
  }

  hover(k, x, y) {
    const tip = $('hover');
    if (k < 0) { tip.hidden = true; return; }
    const s = this.nodeScore[k], kept = this.nodeKept[k];
    tip.innerHTML = `<b>${escapeHtml(this.nodeName(k))}</b>` + (s >= 0 ? ` · score ${s.toFixed(3)}${kept ? ' · in circuit' : ''}` : ' · no score');
    tip.style.left = `${x + 14}px`;
    tip.style.top = `${y + 10}px`;
    tip.hidden = false;
  }

  async start() {
    const mark = k => { this.stats.marks[k] = Math.round(performance.now()); };
    this.stats.marks = { model: Math.round(T.model), app: Math.round(T.app) };
    this.initControls();
    this.view.hold = true;   // no frame before the first full one
    this.view.setContextVisible(this.S.ctx !== '0');
    // everything the first view needs, asked for at once; one frame when it is all here
    const p = this.params(), lp = { projection: this.S.proj, set: this.S.set, metric: this.S.metric };
    const uploads = api.get('uploads').catch(e => { showError(e); return { uploads: [] }; });
    const layout = this.track(api.peek('layout', lp));
    const scores = this.track(api.get('scores', p)).catch(e => { showError(e); return null; });
    const circuit = scores.then(sc => sc && this.track(api.get('circuit', p))).catch(e => { showError(e); return null; });
    this.view.compile();   // shaders compile while the data is on its way
    mark('compiled');
    this.uploads = (await uploads).uploads;
    this.fillSets();
    let lay = await layout.catch(e => { showError(e); return null; });
    mark('layout');
    let pendingLayout = null;
    if (!lay || !lay.body) {   // being computed: the grid meanwhile
      if (lay && lay.job) pendingLayout = this.loadLayout().catch(showError);
      lay = { body: await api.get('layout', { projection: 'grid' }) };
    }
    this.view.setLayout(lay.body, true);
    this.haveLayout = true;
    if (!(this.S.cam && this.view.setCameraString(this.S.cam))) this.view.resetCamera();
    this.S.cam = this.view.cameraString();
    writeState(this.S);
    const sc = await scores;
    mark('scores');
    if (sc) this.applyScores(sc, true);
    else this.view.setScores(this.nodeScore, this.edgeScore);
    const ci = await circuit;
    mark('circuit');
    if (ci) this.applyCircuit(ci);
    this.view.hold = false;
    this.view.renderNow(true);
    mark('firstFullRender');
    this.stats.firstFullRenderMs = performance.now();
    this.stats.contextEdges = this.view.nContext;
    this.panels.initInput();   // after the first frame: its forward pass would compete with it for the cores
    this.ready = true;
    const sel = this.restoreSelection();
    if (sel) await sel.catch(showError);
    await this.panels.inputReady;
    if (pendingLayout) await pendingLayout;
    this.stats.readyMs = performance.now();
    window.viscnn.ready = true;
  }
}

// For tests and the curious: window.viscnn
window.viscnn = { ready: false };
(async () => {
  let model;
  try { model = await api.get('model'); T.model = performance.now(); }
  catch (e) { fatal(`Cannot load the model from the server: ${e.message}`); return; }
  let app;
  try { app = new App(model); T.app = performance.now(); }
  catch (e) { fatal(`Cannot start the 3-D view (WebGL): ${e.message}`); return; }
  Object.assign(window.viscnn, {
    app, stats: app.stats, T,
    state: () => ({ ...app.S }),
    nodeIndex: (l, c) => app.nodeIndex(l, c),
    edgeIndex: (l, o, i) => app.edgeIndex(l, o, i),
    nodeScreen: k => app.view.nodeScreen(k),
    edgeScreen: (k, t) => app.view.edgeScreen(k, t),
    keptEdges: () => Array.from(app.view.keptList || []),
    busy: () => app.inflight,
    // a point (canvas CSS px) where a click picks node k / edge k and nothing else, or null
    nodeClickPoint: k => { const v = app.view, sc = v.screenNodes(), p = [sc[2 * k], sc[2 * k + 1]];
                           return v.pickNode(p[0], p[1], sc) === k ? p : null; },
    edgeClickPoint: k => {
      const v = app.view, sc = v.screenNodes();
      for (const t of [0.5, 0.4, 0.6, 0.3, 0.7, 0.35, 0.65, 0.25, 0.75]) {
        const a = app.G.edgeSrc[k], b = app.G.edgeDst[k];
        const p = [sc[2 * a] + t * (sc[2 * b] - sc[2 * a]), sc[2 * a + 1] + t * (sc[2 * b + 1] - sc[2 * a + 1])];
        if (v.pickNode(p[0], p[1], sc) < 0 && v.pickEdge(p[0], p[1], sc) === k) return p;
      }
      return null;
    },
    // renders a frame and reads it back: share of pixels that are not background, distinct colours
    snapshot: () => {
      const v = app.view;
      v.renderNow(true);
      const c = document.createElement('canvas');
      c.width = v.canvas.width; c.height = v.canvas.height;
      const ctx = c.getContext('2d');
      ctx.drawImage(v.canvas, 0, 0);
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      const colours = new Set();
      for (let i = 0; i < d.length; i += 4) {
        if (Math.abs(d[i] - 12) + Math.abs(d[i + 1] - 15) + Math.abs(d[i + 2] - 20) > 12) n++;
        if (i % 64 === 0) colours.add((d[i] >> 3) << 10 | (d[i + 1] >> 3) << 5 | (d[i + 2] >> 3));
      }
      return { drawn: n / (d.length / 4), colours: colours.size, width: c.width, height: c.height };
    },
  });
  app.start().catch(e => showError(e));
})();
