// panels.js: the input image (with the receptive-field overlay), the node
// panel and the edge panel.
import * as api from './api.js';
import { edgeIds } from './graph3d.js';
import { mapView, drawImage, thumb, fmt } from './maps.js';
import { writeState } from './state.js';
import { showError, escapeHtml } from './errors.js';

const $ = id => document.getElementById(id);
const RF_RES = 320;   // the overlay canvas's resolution

export class Panels {
  constructor(app) {
    this.app = app;
    this.gen = 0;
    this.inputReady = Promise.resolve();
  }

  // ---- input image ---------------------------------------------------------------------
  initInput() {
    const app = this.app, M = app.M;
    const catSel = $('c-image-cat');
    const cats = [['*', `all images (${M.set.images})`], ...M.set.categories.map((c, i) => [String(i), `${c.name} (${c.images})`]), ['up', 'uploaded images']];
    catSel.replaceChildren(...cats.map(([v, t]) => { const o = document.createElement('option'); o.value = v; o.textContent = t; return o; }));
    const id = app.S.image;
    if (id.startsWith('up:')) catSel.value = 'up';
    else { const im = M.set.list.find(x => x.id === id); catSel.value = im ? String(im.cat) : '*'; }
    this.fillImages();
    catSel.onchange = () => { this.fillImages(); const first = $('c-image').options[0]; if (first) this.setImage(first.value); };
    $('c-image').onchange = () => this.setImage($('c-image').value);
    $('b-prev').onclick = () => this.step(-1);
    $('b-next').onclick = () => this.step(1);
    $('c-upload').onchange = () => { const f = $('c-upload').files[0]; if (f) this.upload(f); $('c-upload').value = ''; };
    const box = $('p-input');
    box.addEventListener('dragover', ev => { ev.preventDefault(); });
    box.addEventListener('drop', ev => { ev.preventDefault(); const f = ev.dataTransfer.files[0]; if (f) this.upload(f); });
    this.inputReady = this.loadInput();
  }

  fillImages() {
    const app = this.app, M = app.M, cat = $('c-image-cat').value;
    let items;
    if (cat === 'up') items = (app.uploads || []).map(u => [u.id, u.name]);
    else items = M.set.list.filter(x => cat === '*' || String(x.cat) === cat).map(x => [x.id, `${x.name} (${M.set.categories[x.cat].name})`]);
    const sel = $('c-image');
    sel.replaceChildren(...items.map(([v, t]) => { const o = document.createElement('option'); o.value = v; o.textContent = t; return o; }));
    if (items.some(i => i[0] === app.S.image)) sel.value = app.S.image;
  }

  step(d) {
    const sel = $('c-image'), n = sel.options.length;
    if (!n) return;
    sel.selectedIndex = ((sel.selectedIndex < 0 ? 0 : sel.selectedIndex) + d + n) % n;
    this.setImage(sel.value);
  }

  async upload(file) {
    try {
      const r = await this.app.track(api.upload(file));
      const app = this.app;
      app.uploads = [...(app.uploads || []).filter(u => u.id !== r.id), { id: r.id, name: r.name }];
      app.fillSets();
      $('c-image-cat').value = 'up';
      this.fillImages();
      await this.setImage(r.id);
    } catch (e) { showError(e); }
  }

  async setImage(id) {
    this.app.S.image = id;
    writeState(this.app.S);
    $('c-image').value = id;
    this.inputReady = this.loadInput();
    await this.inputReady;
    if (this.app.selEdge >= 0) await this.showEdge(this.app.selEdge);
    else if (this.app.selNode >= 0) await this.showNode(this.app.selNode);
    this.app.circuit.refreshImages();
  }

  async loadInput() {
    const app = this.app, id = app.S.image;
    try {
      const [inp, pred] = await Promise.all([app.track(api.get('input', { image: id })), app.track(api.get('predict', { image: id }))]);
      if (id !== app.S.image) return;
      this.input = inp;
      drawImage($('input-canvas'), api.b64floats(inp.data), inp.c, inp.h, inp.w);
      const up = (app.uploads || []).find(u => u.id === id), im = app.M.set.list.find(x => x.id === id);
      $('input-name').textContent = up ? up.name : im ? `${im.name} · ${app.M.set.categories[im.cat].name}` : id;
      this.clearRF();
      const ol = $('predictions');
      ol.replaceChildren(...pred.top.slice(0, 3).map(t => {
        const li = document.createElement('li');
        li.textContent = `${t.label || t.class}  ${(100 * t.p).toFixed(1)}%`;
        if (t.class === pred.label) li.className = 'correct';
        return li;
      }));
    } catch (e) { showError(e); }
  }

  // ---- receptive fields -----------------------------------------------------------------
  clearRF() {
    const c = $('rf-canvas');
    c.width = c.height = RF_RES;
    c.getContext('2d').clearRect(0, 0, RF_RES, RF_RES);
    delete c.dataset.rf;
  }
  // box: [y0, x0, y1, x1] in input pixels (may reach into padding)
  drawRF(box) {
    const inp = this.input;
    if (!inp) return;
    const c = $('rf-canvas'), ctx = c.getContext('2d');
    c.width = c.height = RF_RES;
    const sy = RF_RES / inp.h, sx = RF_RES / inp.w;
    const y0 = Math.max(0, box[0]), x0 = Math.max(0, box[1]), y1 = Math.min(inp.h - 1, box[2]), x1 = Math.min(inp.w - 1, box[3]);
    ctx.fillStyle = 'rgba(0, 0, 0, 0.45)';
    ctx.fillRect(0, 0, RF_RES, RF_RES);
    ctx.clearRect(x0 * sx, y0 * sy, (x1 - x0 + 1) * sx, (y1 - y0 + 1) * sy);
    ctx.strokeStyle = '#5cc8ff';
    ctx.lineWidth = 3;
    ctx.strokeRect(x0 * sx + 1.5, y0 * sy + 1.5, (x1 - x0 + 1) * sx - 3, (y1 - y0 + 1) * sy - 3);
    c.dataset.rf = box.join(',');
  }
  // Hover handler for a map whose receptive-field geometry is rf (affine) of node `layer`.
  rfHover(rf, layer) {
    let pending = null;
    return (y, x) => {
      if (rf && rf.affine) {
        const y0 = rf.start[0] + y * rf.jump[0], x0 = rf.start[1] + x * rf.jump[1];
        this.drawRF([y0, x0, y0 + rf.size[0] - 1, x0 + rf.size[1] - 1]);
        return;
      }
      clearTimeout(pending);
      pending = setTimeout(() => api.get('rf', { layer, y, x }).then(r => this.drawRF(r.box)).catch(showError), 25);
    };
  }

  // ---- feature visualisations -------------------------------------------------------------
  async featvis(box, spec, small) {
    const M = this.app.M;
    box.replaceChildren();
    box.classList.toggle('small', !!small);
    if (!M.features.featvis) {
      const d = document.createElement('div');
      d.className = 'na error-inline';
      d.textContent = small ? 'n/a' : M.features.featvis_missing;
      d.title = M.features.featvis_missing;
      box.append(d);
      return;
    }
    try {
      const [k, v] = spec.split('=');
      const res = await api.get('featvis', { [k]: v });
      const img = document.createElement('img');
      img.src = URL.createObjectURL(await res.blob());
      img.alt = `feature visualisation of ${v}`;
      box.append(img);
    } catch (e) {
      const d = document.createElement('div');
      d.className = 'na error-inline';
      d.textContent = e.message;
      box.append(d);
    }
  }

  // ---- node panel -----------------------------------------------------------------------
  nodeInfo(k) {
    const app = this.app, s = app.nodeScore[k];
    const L = app.G.layers[app.G.nodeLayer[k]];
    let t = `${L.kind} layer, channel ${app.G.nodeCh[k]} of ${L.channels}, map ${L.h}×${L.w}`;
    if (s >= 0) t += ` · importance ${s.toFixed(3)} (raw ${fmt(app.rawNode[k])}) · ${app.nodeKept[k] ? 'in the circuit' : 'not in the circuit'}`;
    else if (L.kind === 'conv') t += ' · no score (at or after the target)';
    return t;
  }

  async showNode(k) {
    const app = this.app, G = app.G, gen = ++this.gen;
    const l = G.nodeLayer[k], L = G.layers[l], ch = G.nodeCh[k];
    $('p-node').hidden = false;
    $('p-edge').hidden = true;
    $('node-title').textContent = `${L.name} : ${ch}`;
    $('node-info').textContent = this.nodeInfo(k);
    $('b-node-target').hidden = L.kind === 'input';
    $('b-node-target').onclick = () => app.setTargetNode(k);
    $('node-pre-name').textContent = L.pre !== L.name ? `(${L.pre})` : '';
    $('node-post-name').textContent = L.post ? `(${L.post})` : '';
    for (const id of ['node-pre', 'node-post']) $(id).replaceChildren(Object.assign(document.createElement('div'), { className: 'muted', textContent: 'loading…' }));
    this.featvis($('node-fv'), `node=${L.name}:${ch}`);
    const tbody = $('node-edges').querySelector('tbody');
    tbody.replaceChildren();
    try {
      const a = await app.track(api.get('act', { image: app.S.image, layer: L.name, ch }));
      if (gen !== this.gen) return;
      const pre = { ...a.pre, data: api.b64floats(a.pre.data) };
      mapView($('node-pre'), pre, { onHover: this.rfHover(a.rf, a.pre.node), onLeave: () => this.clearRF() });
      if (a.post) {
        const post = { ...a.post, data: api.b64floats(a.post.data) };
        mapView($('node-post'), post, { onHover: this.rfHover(a.rf, a.post.node), onLeave: () => this.clearRF() });
      } else $('node-post').replaceChildren(Object.assign(document.createElement('div'), { className: 'muted', textContent: 'no ReLU after this layer' }));
    } catch (e) { if (gen === this.gen) showError(e); }
    await this.incoming(k, gen);
  }

  async incoming(k, gen) {
    const app = this.app, G = app.G, L = G.layers[G.nodeLayer[k]], ch = G.nodeCh[k];
    const tbody = $('node-edges').querySelector('tbody');
    const note = text => { const tr = document.createElement('tr'); tr.innerHTML = `<td colspan="5" class="muted">${escapeHtml(text)}</td>`; tbody.append(tr); };
    if (L.kind === 'input') { note('the image: no incoming edges'); return; }
    if (L.kind === 'add') { note('a residual sum: two identity edges, one from each operand'); return; }
    const e0 = L.edgeOffset + ch * L.cg;
    const idx = Array.from({ length: L.cg }, (_, i) => e0 + i);
    const scored = app.edgeScore[e0] >= 0;
    if (scored) idx.sort((a, b) => app.edgeScore[b] - app.edgeScore[a]);
    const top = idx.slice(0, 6);
    if (!scored) note('no scores at or after the target: kernels in channel order');
    const rows = top.map(e => {
      const tr = document.createElement('tr'), src = G.edgeSrc[e];
      tr.dataset.edge = e;
      const s = app.edgeScore[e];
      tr.innerHTML = `<td>${src >= 0 ? escapeHtml(app.nodeName(src)) : '—'}</td><td class="fv"></td><td class="em"></td><td class="kn"></td>` +
        `<td>${s >= 0 ? `${s.toFixed(3)}<div class="scorebar" style="width:${Math.round(40 * s)}px"></div>` : ''}${app.edgeKept[e] ? ' ●' : ''}</td>`;
      tr.onclick = () => app.selectEdge(e);
      tbody.append(tr);
      const fv = document.createElement('div');
      fv.className = 'fvbox small';
      tr.querySelector('.fv').append(fv);
      if (src >= 0) { const sL = G.layers[G.nodeLayer[src]]; this.featvis(fv, `node=${sL.name}:${G.nodeCh[src]}`, true); }
      return tr;
    });
    for (const tr of rows) {   // one at a time: the compute thread serves them in order anyway
      const e = Number(tr.dataset.edge), id = edgeIds(G, e);
      try {
        const r = await app.track(api.get('edge', { image: app.S.image, layer: id.layer, out: id.out, in: id.in }));
        if (gen !== this.gen) return;
        tr.querySelector('.em').append(thumb({ ...r.edge, data: api.b64floats(r.edge.data) }));
        tr.querySelector('.kn').append(thumb({ ...r.kernel, data: api.b64floats(r.kernel.data) }));
      } catch (err) { if (gen === this.gen) showError(err); return; }
    }
  }

  // ---- edge panel -----------------------------------------------------------------------
  async showEdge(k) {
    const app = this.app, G = app.G, gen = ++this.gen, id = edgeIds(G, k);
    const L = G.layers[G.edgeLayer[k]], src = G.edgeSrc[k], dst = G.edgeDst[k];
    $('p-node').hidden = true;
    $('p-edge').hidden = false;
    $('edge-title').textContent = `${L.name}:${id.out} ← ${src >= 0 ? app.nodeName(src) : '?'}`;
    const s = app.edgeScore[k];
    $('edge-info').textContent = L.kind === 'conv'
      ? `kernel W[${id.out}, ${id.in}] of ${L.name} (${L.kernel[0]}×${L.kernel[1]}, stride ${L.stride[0]}, padding ${L.padding[0]})` +
        (s >= 0 ? ` · importance ${s.toFixed(3)} · ${app.edgeKept[k] ? 'in the circuit' : 'not in the circuit'}` : ' · no score')
      : `identity edge of the residual sum ${L.name}: operand ${id.in}, channel ${id.out}, added as it is (no kernel)`;
    $('b-edge-from').onclick = () => src >= 0 && app.selectNode(src);
    $('b-edge-to').onclick = () => app.selectNode(dst);
    for (const b of ['edge-kernel', 'edge-input', 'edge-map']) $(b).replaceChildren();
    if (L.kind !== 'conv') { $('edge-fv').replaceChildren(); return; }
    this.featvis($('edge-fv'), `edge=${L.name}:${id.out}:${id.in}`);
    try {
      const r = await app.track(api.get('edge', { image: app.S.image, layer: L.name, out: id.out, in: id.in }));
      if (gen !== this.gen) return;
      mapView($('edge-kernel'), { ...r.kernel, data: api.b64floats(r.kernel.data) });
      $('edge-in-name').textContent = `(${r.input.node}, channel ${r.in_channel})`;
      mapView($('edge-input'), { ...r.input, data: api.b64floats(r.input.data) },
              { onHover: this.rfHover(r.input.rf, r.input.node), onLeave: () => this.clearRF() });
      mapView($('edge-map'), { ...r.edge, data: api.b64floats(r.edge.data) },
              { onHover: this.rfHover(r.edge.rf, L.name), onLeave: () => this.clearRF() });
    } catch (e) { if (gen === this.gen) showError(e); }
  }

  refreshScores() {
    const app = this.app;
    if (app.selNode >= 0 && !$('p-node').hidden) {
      $('node-info').textContent = this.nodeInfo(app.selNode);
      const tbody = $('node-edges').querySelector('tbody');
      tbody.replaceChildren();
      this.incoming(app.selNode, this.gen).catch(showError);
    }
  }
  refreshMarks() { this.app.view.setMarks(this.app.targetNode(), this.app.selNode ?? -1, this.app.selEdge ?? -1); }
}
