// graph3d.js: the 3-D layered graph (docs/architecture.md §6): x = depth, (y, z) = the
// projection. Every node is one vertex of ONE point buffer, every edge one
// segment of ONE line buffer; the circuit's kept edges are drawn again on top
// as one instanced buffer of screen-space quads whose width grows with the
// edge's importance. Importance is colour (plasma), width and alpha.
//
// Speed on big graphs (alexnet: 1,155 nodes, 250,048 edges). The faint
// "whole network" layer is the expensive one; it depends on the camera and
// the scores, not on the thresholds, so it is rendered into a texture and
// reused: a threshold change redraws that texture, the kept edges and the
// nodes. While the camera moves, only the strongest edges of the whole
// network are drawn (the line buffer is sorted by score, so that is a prefix
// of it); the full layer comes back when the camera stops.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { SEQUENTIAL } from './maps.js';

const BG = 0x0c0f14;
THREE.ColorManagement.enabled = false;   // colours are drawn as given (shaders write them raw)
const LOD_EDGES = 30000;
const CONTEXT_RES = 0.3;

// Graph structure from /api/model: node and edge index arrays.
export function buildGraph(model) {
  const layers = model.layers.map(L => ({ ...L, offset: 0, edgeOffset: 0, edgeCount: 0 }));
  let n = 0;
  for (const L of layers) { L.offset = n; n += L.channels; }
  let e = 0, kernels = 0, identity = 0, unsourced = 0;
  for (const L of layers) {
    L.edgeOffset = e;
    if (L.kind === 'conv') { L.edgeCount = L.channels * L.cg; kernels += L.edgeCount; }
    else if (L.kind === 'add') { L.edgeCount = L.src.length / 2; identity += L.edgeCount; }
    e += L.edgeCount;
  }
  const g = {
    layers, nNodes: n, nEdges: e, kernels, identity,
    nodeLayer: new Int32Array(n), nodeCh: new Int32Array(n),
    edgeSrc: new Int32Array(e), edgeDst: new Int32Array(e), edgeLayer: new Int32Array(e),
  };
  layers.forEach((L, l) => { for (let c = 0; c < L.channels; c++) { g.nodeLayer[L.offset + c] = l; g.nodeCh[L.offset + c] = c; } });
  layers.forEach((L, l) => {
    if (!L.edgeCount) return;
    const src = L.src;
    if (L.kind === 'conv') {
      const Cog = L.channels / L.groups;
      for (let j = 0; j < L.channels; j++)
        for (let i = 0; i < L.cg; i++) {
          const k = L.edgeOffset + j * L.cg + i, ci = Math.floor(j / Cog) * L.cg + i;
          const sl = src[2 * ci], sc = src[2 * ci + 1];
          g.edgeSrc[k] = sl >= 0 ? layers[sl].offset + sc : -1;
          g.edgeDst[k] = L.offset + j;
          g.edgeLayer[k] = l;
          if (sl < 0) unsourced++;
        }
    } else {   // add: operand o's channel ch -> ch
      for (let q = 0; q < L.edgeCount; q++) {
        const k = L.edgeOffset + q, sl = src[2 * q], sc = src[2 * q + 1];
        g.edgeSrc[k] = sl >= 0 ? layers[sl].offset + sc : -1;
        g.edgeDst[k] = L.offset + (q % L.channels);
        g.edgeLayer[k] = l;
        if (sl < 0) unsourced++;
      }
    }
  });
  g.unsourced = unsourced;
  return g;
}

// Edge k of layer l as (out, in) (conv) or (ch, operand) (add).
export function edgeIds(g, k) {
  const L = g.layers[g.edgeLayer[k]], q = k - L.edgeOffset;
  return L.kind === 'conv' ? { layer: L.name, out: Math.floor(q / L.cg), in: q % L.cg }
                           : { layer: L.name, out: q % L.channels, in: Math.floor(q / L.channels) };
}

function cmapTexture() {
  const t = new THREE.DataTexture(SEQUENTIAL, 256, 1, THREE.RGBAFormat);
  t.magFilter = t.minFilter = THREE.LinearFilter;
  t.needsUpdate = true;
  return t;
}

const CONTEXT_VS = `
attribute float score;
varying float vs;
void main() { vs = score; gl_Position = projectionMatrix * modelViewMatrix * vec4(position, 1.0); }`;
const CONTEXT_FS = `
uniform sampler2D cmap;
uniform float gain;
varying float vs;
void main() {
  if (vs < 0.0) { gl_FragColor = vec4(0.45, 0.5, 0.6, 0.012 * gain); return; }   // no score (at or after the target)
  vec3 c = texture2D(cmap, vec2(0.15 + 0.85 * vs, 0.5)).rgb;
  gl_FragColor = vec4(c, (0.03 + 0.45 * vs * vs) * gain);
}`;

// Instanced quads: one per kept edge, width in pixels by score.
const KEPT_VS = `
attribute vec3 ia;
attribute vec3 ib;
attribute float iscore;
uniform vec2 resolution;
uniform float wmin, wmax;
varying float vs;
varying float vy;
void main() {
  vec4 ca = projectionMatrix * modelViewMatrix * vec4(ia, 1.0);
  vec4 cb = projectionMatrix * modelViewMatrix * vec4(ib, 1.0);
  vec2 sa = ca.xy / ca.w * resolution, sb = cb.xy / cb.w * resolution;
  vec2 d = sb - sa;
  d = length(d) > 1e-6 ? normalize(d) : vec2(1.0, 0.0);
  vec2 nrm = vec2(-d.y, d.x);
  float w = iscore > 1.5 ? wmax + 1.5 : wmin + (wmax - wmin) * iscore;
  vec4 c = mix(ca, cb, position.x);
  c.xy += nrm * position.y * 0.5 * w / resolution * c.w;   // w pixels across
  gl_Position = c;
  vs = iscore; vy = position.y;
}`;
const KEPT_FS = `
uniform sampler2D cmap;
varying float vs;
varying float vy;
void main() {
  float edge = 1.0 - smoothstep(0.55, 1.0, abs(vy));
  if (vs > 1.5) { gl_FragColor = vec4(0.36, 0.78, 1.0, edge); return; }   // the selected edge
  vec3 c = texture2D(cmap, vec2(0.25 + 0.75 * vs, 0.5)).rgb;
  gl_FragColor = vec4(c, (0.35 + 0.6 * vs) * edge);
}`;

const NODE_VS = `
attribute float score;
attribute float state;    // 0 no score, 1 scored, 2 kept; +4 target, +8 selected
uniform float scale;
varying float vs;
varying float vstate;
void main() {
  vec4 mv = modelViewMatrix * vec4(position, 1.0);
  gl_Position = projectionMatrix * mv;
  float st = mod(state, 4.0);
  float r = st > 1.5 ? 0.13 + 0.2 * score : 0.09;
  if (state >= 4.0) r = max(r, 0.3);
  gl_PointSize = clamp(2.0 * r * scale / -mv.z, 3.0, 30.0);
  vs = score; vstate = state;
}`;
const NODE_FS = `
uniform sampler2D cmap;
varying float vs;
varying float vstate;
void main() {
  vec2 p = gl_PointCoord * 2.0 - 1.0;
  float d = length(p);
  if (d > 1.0) discard;
  float st = mod(vstate, 4.0);
  bool target = mod(vstate, 8.0) >= 4.0, sel = vstate >= 8.0;
  vec3 c = st > 1.5 ? texture2D(cmap, vec2(0.25 + 0.75 * vs, 0.5)).rgb
         : st > 0.5 ? vec3(0.33, 0.37, 0.45) : vec3(0.25, 0.27, 0.32);
  if ((target || sel) && d > 0.62) c = sel ? vec3(0.36, 0.78, 1.0) : vec3(1.0);
  gl_FragColor = vec4(c, 1.0);
}`;

export class GraphView {
  constructor(canvas, handlers = {}) {
    this.canvas = canvas;
    this.h = handlers;
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: false, powerPreference: 'high-performance' });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.autoClear = false;
    this.gl = this.renderer.getContext();
    this.camera = new THREE.PerspectiveCamera(40, 1, 0.05, 5000);
    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.enableDamping = false;
    this.controls.zoomSpeed = 1.2;
    this.cmap = cmapTexture();
    this.showContext = true;
    this.interacting = false;
    this.ctxDirty = true;
    this.stats = { frames: 0, lastFrameMs: 0 };
    this.scene = new THREE.Scene();
    this.ctxScene = new THREE.Scene();
    this.quadScene = new THREE.Scene();
    this.quadCam = new THREE.OrthographicCamera(-1, 1, 1, -1, 0, 1);
    this.rt = null;
    // the cached whole-network layer, copied to the screen as it is
    this.quad = new THREE.Mesh(new THREE.PlaneGeometry(2, 2), new THREE.ShaderMaterial({
      uniforms: { map: { value: null } }, depthTest: false, depthWrite: false,
      vertexShader: 'varying vec2 vUv; void main() { vUv = uv; gl_Position = vec4(position.xy, 0.0, 1.0); }',
      fragmentShader: 'uniform sampler2D map; varying vec2 vUv; void main() { gl_FragColor = texture2D(map, vUv); }' }));
    this.quadScene.add(this.quad);
    this.labels = [];
    this.controls.addEventListener('start', () => { this.interacting = true; });
    this.controls.addEventListener('change', () => { this.ctxDirty = true; this.requestRender(); if (this.h.onCamera) this.h.onCamera(); });
    this.controls.addEventListener('end', () => { this.interacting = false; this.ctxDirty = true; this.requestRender(); });
    this._bindPointer();
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.resize();
  }

  resize() {
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    if (!w || !h) return;
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    const s = this.renderer.getDrawingBufferSize(new THREE.Vector2());
    if (this.rt) this.rt.dispose();
    // the faint layer at half resolution: a quarter of the pixels to fill
    // (software renderers are fill-bound on 250k lines); linear filtering
    // softens it into a haze, which is what it is for
    this.rt = new THREE.WebGLRenderTarget(Math.ceil(s.x * CONTEXT_RES), Math.ceil(s.y * CONTEXT_RES),
                                          { depthBuffer: false, minFilter: THREE.LinearFilter, magFilter: THREE.LinearFilter });
    this.quad.material.uniforms.map.value = this.rt.texture;
    if (this.kept) this.kept.material.uniforms.resolution.value.set(s.x / 2, s.y / 2);
    this.ctxDirty = true;
    this.requestRender();
  }

  // ---- data ------------------------------------------------------------------------
  setGraph(g) {
    this.g = g;
    this.nodeScore = new Float32Array(g.nNodes).fill(-1);
    this.nodeState = new Float32Array(g.nNodes);
    this.edgeScore = new Float32Array(g.nEdges).fill(-1);
    this.edgeKept = new Uint8Array(g.nEdges);
    this.pos = new Float32Array(g.nNodes * 3);
    for (const o of [this.points, this.context, this.kept]) if (o) { o.geometry.dispose(); o.parent.remove(o); }
    // nodes
    const ng = new THREE.BufferGeometry();
    ng.setAttribute('position', new THREE.BufferAttribute(this.pos, 3));
    ng.setAttribute('score', new THREE.BufferAttribute(this.nodeScore, 1));
    ng.setAttribute('state', new THREE.BufferAttribute(this.nodeState, 1));
    this.points = new THREE.Points(ng, new THREE.ShaderMaterial({
      uniforms: { cmap: { value: this.cmap }, scale: { value: 1 } }, vertexShader: NODE_VS, fragmentShader: NODE_FS }));
    this.points.frustumCulled = false;
    // every edge: two vertices each, in score order (strongest first)
    this.order = new Uint32Array(g.nEdges);
    for (let k = 0; k < g.nEdges; k++) this.order[k] = k;
    const cg = new THREE.BufferGeometry();
    cg.setAttribute('position', new THREE.BufferAttribute(new Float32Array(g.nEdges * 6), 3));
    cg.setAttribute('score', new THREE.BufferAttribute(new Float32Array(g.nEdges * 2), 1));
    this.context = new THREE.LineSegments(cg, new THREE.ShaderMaterial({
      uniforms: { cmap: { value: this.cmap }, gain: { value: 1 } }, vertexShader: CONTEXT_VS, fragmentShader: CONTEXT_FS,
      transparent: true, depthWrite: false, depthTest: false }));
    this.context.frustumCulled = false;
    this.ctxScene.add(this.context);
    // kept edges: instanced quads
    const kg = new THREE.InstancedBufferGeometry();
    kg.setAttribute('position', new THREE.BufferAttribute(new Float32Array([0, -1, 0, 1, -1, 0, 1, 1, 0, 0, 1, 0]), 3));
    kg.setIndex([0, 1, 2, 0, 2, 3]);
    this.keptCap = 0;
    this.kept = new THREE.Mesh(kg, new THREE.ShaderMaterial({
      uniforms: { cmap: { value: this.cmap }, resolution: { value: new THREE.Vector2(1, 1) }, wmin: { value: 1.2 }, wmax: { value: 4.5 } },
      vertexShader: KEPT_VS, fragmentShader: KEPT_FS, transparent: true, depthWrite: false, depthTest: false }));
    this.kept.frustumCulled = false;
    const s = this.renderer.getDrawingBufferSize(new THREE.Vector2());
    this.kept.material.uniforms.resolution.value.set(s.x / 2, s.y / 2);
    this.scene.add(this.kept);
    this.scene.add(this.points);
    this._ensureKept(0);
    this._makeLabels();
  }

  // positions: per display layer [[y, z] ...]
  // deferFill: the scores come next and fill the edge buffer then (first load)
  setLayout(layout, deferFill) {
    const g = this.g;
    let maxR = 1;
    layout.layers.forEach(L => L.positions.forEach(p => { maxR = Math.max(maxR, Math.hypot(p[0], p[1])); }));
    // layers apart by 1.4 radii, closer in deep networks so the whole stays about 8 radii long
    const gaps = Math.max(1, g.layers.length - 1);
    this.dx = Math.max(2.5, Math.min(1.4 * maxR, 8 * maxR / gaps));
    layout.layers.forEach((L, l) => {
      const D = g.layers[l];
      for (let c = 0; c < D.channels; c++) {
        const k = D.offset + c;
        this.pos[3 * k] = l * this.dx;
        this.pos[3 * k + 1] = L.positions[c][0];
        this.pos[3 * k + 2] = L.positions[c][1];
      }
    });
    this.extent = { x: (g.layers.length - 1) * this.dx, r: maxR };
    this.points.geometry.attributes.position.needsUpdate = true;
    this.points.geometry.computeBoundingSphere();
    if (!deferFill) this._fillContext();
    this._fillKept();
    this.ctxDirty = true;
    this.requestRender();
  }

  // nodeScore/edgeScore: normalised scores, -1 where there is none.
  setScores(nodeScore, edgeScore) {
    this.nodeScore.set(nodeScore);
    this.edgeScore.set(edgeScore);
    // order: bucket sort by score, strongest first; unscored last
    const g = this.g, B = 1024, count = new Uint32Array(B + 2);
    const bucket = k => { const s = edgeScore[k]; return s < 0 || g.edgeSrc[k] < 0 ? B + 1 : B - Math.min(B, Math.floor(s * B)); };
    for (let k = 0; k < g.nEdges; k++) count[bucket(k)]++;
    for (let b = 1; b < B + 2; b++) count[b] += count[b - 1];
    for (let k = g.nEdges - 1; k >= 0; k--) this.order[--count[bucket(k)]] = k;
    this.points.geometry.attributes.score.needsUpdate = true;
    this._fillContext();
    this.ctxDirty = true;
    this.requestRender();
  }

  // kept: Uint8 per node / per edge (circuit); target, selected node: index or -1
  setCircuit(nodeKept, edgeKept) {
    this.edgeKept.set(edgeKept);
    this.nodeKept = nodeKept;
    this._fillNodeState();
    this._fillKept();
    this.requestRender();
  }

  setMarks(target, selectedNode, selectedEdge) {
    this.target = target; this.selNode = selectedNode; this.selEdge = selectedEdge;
    this._fillNodeState();
    this._fillKept();
    this.requestRender();
  }

  setContextVisible(on) { this.showContext = on; this.ctxDirty = true; this.requestRender(); }

  _fillNodeState() {
    const st = this.nodeState, n = this.g.nNodes;
    for (let k = 0; k < n; k++) st[k] = this.nodeScore[k] < 0 ? 0 : (this.nodeKept && this.nodeKept[k] ? 2 : 1);
    if (this.target >= 0) st[this.target] += 4;
    if (this.selNode >= 0) st[this.selNode] += 8;
    this.points.geometry.attributes.state.needsUpdate = true;
  }

  _fillContext() {
    const g = this.g, P = this.pos, pa = this.context.geometry.attributes.position.array, sa = this.context.geometry.attributes.score.array;
    let v = 0;
    for (let q = 0; q < g.nEdges; q++) {
      const k = this.order[q], a = g.edgeSrc[k], b = g.edgeDst[k];
      if (a < 0) continue;
      pa[6 * v] = P[3 * a]; pa[6 * v + 1] = P[3 * a + 1]; pa[6 * v + 2] = P[3 * a + 2];
      pa[6 * v + 3] = P[3 * b]; pa[6 * v + 4] = P[3 * b + 1]; pa[6 * v + 5] = P[3 * b + 2];
      sa[2 * v] = sa[2 * v + 1] = this.edgeScore[k];
      v++;
    }
    this.nContext = v;
    this.context.geometry.attributes.position.needsUpdate = true;
    this.context.geometry.attributes.score.needsUpdate = true;
  }

  _ensureKept(n) {
    if (n <= this.keptCap && this.keptCap) return;
    const cap = Math.max(1024, Math.ceil(n * 1.5));
    const kg = this.kept.geometry;
    kg.setAttribute('ia', new THREE.InstancedBufferAttribute(new Float32Array(cap * 3), 3));
    kg.setAttribute('ib', new THREE.InstancedBufferAttribute(new Float32Array(cap * 3), 3));
    kg.setAttribute('iscore', new THREE.InstancedBufferAttribute(new Float32Array(cap), 1));
    this.keptCap = cap;
  }

  // kept edges, weakest first (the strongest end up on top); the selected edge last
  _fillKept() {
    const g = this.g, P = this.pos, K = this.edgeKept, S = this.edgeScore;
    let n = 0;
    for (let k = 0; k < g.nEdges; k++) if (K[k] && g.edgeSrc[k] >= 0) n++;
    const sel = this.selEdge >= 0 && g.edgeSrc[this.selEdge] >= 0 ? this.selEdge : -1;
    this._ensureKept(n + 1);
    const kg = this.kept.geometry, A = kg.attributes.ia.array, B = kg.attributes.ib.array, C = kg.attributes.iscore.array;
    const NB = 64, count = new Uint32Array(NB + 1), list = new Uint32Array(n);
    const bk = k => Math.min(NB - 1, Math.floor(Math.max(0, S[k]) * NB));
    for (let k = 0; k < g.nEdges; k++) if (K[k] && g.edgeSrc[k] >= 0) count[bk(k) + 1]++;
    for (let b = 1; b <= NB; b++) count[b] += count[b - 1];
    for (let k = 0; k < g.nEdges; k++) if (K[k] && g.edgeSrc[k] >= 0) list[count[bk(k)]++] = k;
    const put = (q, k, s) => {
      const a = g.edgeSrc[k], b = g.edgeDst[k];
      A[3 * q] = P[3 * a]; A[3 * q + 1] = P[3 * a + 1]; A[3 * q + 2] = P[3 * a + 2];
      B[3 * q] = P[3 * b]; B[3 * q + 1] = P[3 * b + 1]; B[3 * q + 2] = P[3 * b + 2];
      C[q] = s;
    };
    for (let q = 0; q < n; q++) put(q, list[q], Math.max(0, S[list[q]]));
    if (sel >= 0) { put(n, sel, 2.0); n++; }
    this.keptList = list;
    kg.instanceCount = n;
    kg.attributes.ia.needsUpdate = kg.attributes.ib.needsUpdate = kg.attributes.iscore.needsUpdate = true;
  }

  // ---- camera --------------------------------------------------------------------
  resetCamera() {
    const L = this.extent ? this.extent.x : 10, R = this.extent ? this.extent.r : 5;
    const c = new THREE.Vector3(L / 2, 0, 0);
    this.controls.target.copy(c);
    const size = Math.max(L, 2 * R);
    this.camera.near = size / 500; this.camera.far = size * 50;
    // a three-quarter view from the input's side; backed off until the whole
    // bounding box (corners projected) sits inside 85% of the view
    const dir = new THREE.Vector3(-0.45, 0.42, 1).normalize();
    const corners = [];
    for (const x of [0, L]) for (const y of [-R, R]) for (const z of [-R, R]) corners.push(new THREE.Vector3(x, y, z));
    let dist = size;
    const fits = () => {
      this.camera.position.copy(c).addScaledVector(dir, dist);
      this.camera.lookAt(c);
      this.camera.updateMatrixWorld();
      this.camera.updateProjectionMatrix();
      let m = 0;
      for (const p of corners) { const v = p.clone().project(this.camera); m = Math.max(m, v.z < 1 ? Math.max(Math.abs(v.x), Math.abs(v.y)) : 9); }
      return m;
    };
    for (let k = 0; k < 40; k++) {
      const m = fits();
      if (m > 0.85) dist *= 1.08;
      else if (m < 0.7) dist /= 1.06;
      else break;
    }
    this.controls.update();
    this.ctxDirty = true;
    this.requestRender();
  }
  cameraString() {
    const p = this.camera.position, t = this.controls.target, f = v => Number(v.toFixed(3));
    return [p.x, p.y, p.z, t.x, t.y, t.z].map(f).join(',');
  }
  setCameraString(s) {
    const v = String(s || '').split(',').map(Number);
    if (v.length !== 6 || v.some(x => !Number.isFinite(x))) return false;
    this.camera.position.set(v[0], v[1], v[2]);
    this.controls.target.set(v[3], v[4], v[5]);
    const size = this.extent ? Math.max(this.extent.x, 2 * this.extent.r) : 10;
    this.camera.near = size / 500; this.camera.far = size * 50;
    this.camera.updateProjectionMatrix();
    this.controls.update();
    this.ctxDirty = true;
    this.requestRender();
    return true;
  }

  compile() {
    this.renderer.compile(this.scene, this.camera);
    this.renderer.compile(this.ctxScene, this.camera);
    this.renderer.compile(this.quadScene, this.quadCam);
  }

  // ---- rendering -----------------------------------------------------------------
  requestRender() {
    if (this.pending || this.hold) return;
    this.pending = requestAnimationFrame(() => { this.pending = 0; this.renderNow(false); });
  }

  // Draws a frame now; sync: wait for the GPU (readPixels) so the time is real.
  renderNow(sync) {
    if (!this.g || !this.points) return 0;
    const t0 = performance.now(), r = this.renderer;
    const s = r.getDrawingBufferSize(new THREE.Vector2());
    this.points.material.uniforms.scale.value = s.y / (2 * Math.tan(THREE.MathUtils.degToRad(this.camera.fov) / 2));
    if (this.showContext && this.ctxDirty) {
      this.context.geometry.setDrawRange(0, 2 * (this.interacting ? Math.min(LOD_EDGES, this.nContext) : this.nContext));
      this.context.material.uniforms.gain.value = this.interacting && this.nContext > LOD_EDGES ? 1.6 : 1.0;
      r.setRenderTarget(this.rt);
      r.setClearColor(BG, 1);
      r.clear();
      r.render(this.ctxScene, this.camera);
      r.setRenderTarget(null);
      this.ctxDirty = false;
      this.stats.contextFull = !this.interacting;
    }
    r.setClearColor(BG, 1);
    r.clear();
    if (this.showContext) r.render(this.quadScene, this.quadCam);
    r.render(this.scene, this.camera);
    if (sync) { const px = new Uint8Array(4); this.gl.readPixels(0, 0, 1, 1, this.gl.RGBA, this.gl.UNSIGNED_BYTE, px); }
    const dt = performance.now() - t0;
    this.stats.frames++;
    this.stats.lastFrameMs = dt;
    this._placeLabels();
    if (this.h.onFrame) this.h.onFrame(dt);
    return dt;
  }

  // ---- layer labels ----------------------------------------------------------------
  _makeLabels() {
    this.labels.forEach(d => d.remove());
    const stage = this.canvas.parentElement;
    this.labels = this.g.layers.map(L => {
      const d = document.createElement('div');
      d.className = 'tip layer-label';
      d.style.opacity = '0.75';
      d.textContent = `${L.name} · ${L.channels}`;
      stage.append(d);
      return d;
    });
  }
  _placeLabels() {
    if (!this.extent) return;
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight, v = new THREE.Vector3();
    const shown = [];   // boxes of the labels placed so far: a label that would overlap one is hidden
    this.g.layers.forEach((L, l) => {
      v.set(l * this.dx, -Math.max(this.extent.r, 1) * 1.08, 0).project(this.camera);
      const d = this.labels[l];
      d.style.display = '';
      const x = (v.x + 1) / 2 * w - d.offsetWidth / 2, y = (1 - v.y) / 2 * h, bw = d.offsetWidth, bh = d.offsetHeight;
      const free = !shown.some(b => x < b[0] + b[2] + 4 && b[0] < x + bw + 4 && y < b[1] + b[3] && b[1] < y + bh);
      const visible = v.z < 1 && Math.abs(v.x) < 0.92 && Math.abs(v.y) < 0.97 && free;
      d.style.display = visible ? '' : 'none';
      if (!visible) return;
      d.style.left = `${x}px`;
      d.style.top = `${y}px`;
      shown.push([x, y, bw, bh]);
    });
  }

  // ---- picking (screen space) -----------------------------------------------------
  screenNodes() {
    const m = new THREE.Matrix4().multiplyMatrices(this.camera.projectionMatrix, this.camera.matrixWorldInverse).elements;
    const n = this.g.nNodes, out = new Float32Array(2 * n), P = this.pos;
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    for (let k = 0; k < n; k++) {
      const x = P[3 * k], y = P[3 * k + 1], z = P[3 * k + 2];
      const cw = m[3] * x + m[7] * y + m[11] * z + m[15];
      if (cw <= 0) { out[2 * k] = out[2 * k + 1] = NaN; continue; }
      out[2 * k] = ((m[0] * x + m[4] * y + m[8] * z + m[12]) / cw + 1) / 2 * w;
      out[2 * k + 1] = (1 - (m[1] * x + m[5] * y + m[9] * z + m[13]) / cw) / 2 * h;
    }
    return out;
  }
  pickNode(mx, my, sc = this.screenNodes()) {
    let best = -1, bd = 9 * 9;
    for (let k = 0; k < this.g.nNodes; k++) {
      const dx = sc[2 * k] - mx, dy = sc[2 * k + 1] - my, d = dx * dx + dy * dy;
      if (d < bd) { bd = d; best = k; }
    }
    return best;
  }
  pickEdge(mx, my, sc = this.screenNodes()) {
    const g = this.g;
    const dist = k => {
      const a = g.edgeSrc[k], b = g.edgeDst[k];
      if (a < 0) return Infinity;
      const ax = sc[2 * a], ay = sc[2 * a + 1], bx = sc[2 * b], by = sc[2 * b + 1];
      const vx = bx - ax, vy = by - ay, l2 = vx * vx + vy * vy;
      const t = l2 > 0 ? Math.max(0, Math.min(1, ((mx - ax) * vx + (my - ay) * vy) / l2)) : 0;
      const dx = ax + t * vx - mx, dy = ay + t * vy - my;
      return dx * dx + dy * dy;
    };
    let best = -1, bd = 6 * 6;
    for (const k of this.keptList || []) { const d = dist(k); if (d < bd) { bd = d; best = k; } }
    if (best >= 0 || !this.showContext) return best;
    bd = 3 * 3;
    for (let k = 0; k < g.nEdges; k++) { if (this.edgeScore[k] < 0.05) continue; const d = dist(k); if (d < bd) { bd = d; best = k; } }
    return best;
  }
  // Screen position (CSS px, relative to the canvas) of a node / an edge's midpoint.
  nodeScreen(k) { const sc = this.screenNodes(); return [sc[2 * k], sc[2 * k + 1]]; }
  edgeScreen(k, t = 0.5) {
    const sc = this.screenNodes(), a = this.g.edgeSrc[k], b = this.g.edgeDst[k];
    return [sc[2 * a] + t * (sc[2 * b] - sc[2 * a]), sc[2 * a + 1] + t * (sc[2 * b + 1] - sc[2 * a + 1])];
  }

  _bindPointer() {
    let down = null, hoverPending = false, last = null;
    const c = this.canvas;
    c.addEventListener('pointerdown', ev => { down = [ev.clientX, ev.clientY]; });
    c.addEventListener('pointerup', ev => {
      if (!down || Math.hypot(ev.clientX - down[0], ev.clientY - down[1]) > 4 || !this.g) { down = null; return; }
      down = null;
      const r = c.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top, sc = this.screenNodes();
      const n = this.pickNode(mx, my, sc);
      if (n >= 0) { if (this.h.onClickNode) this.h.onClickNode(n, ev); return; }
      const e = this.pickEdge(mx, my, sc);
      if (e >= 0) { if (this.h.onClickEdge) this.h.onClickEdge(e, ev); return; }
      if (this.h.onClickEmpty) this.h.onClickEmpty(ev);
    });
    c.addEventListener('pointermove', ev => {
      last = ev;
      if (hoverPending || down) return;
      hoverPending = true;
      requestAnimationFrame(() => {
        hoverPending = false;
        if (!this.g || !last) return;
        const r = c.getBoundingClientRect(), mx = last.clientX - r.left, my = last.clientY - r.top;
        const n = this.pickNode(mx, my);
        c.classList.toggle('picking', n >= 0);
        if (this.h.onHover) this.h.onHover(n, mx, my);
      });
    });
    c.addEventListener('pointerleave', () => { last = null; if (this.h.onHover) this.h.onHover(-1, 0, 0); });
  }
}
