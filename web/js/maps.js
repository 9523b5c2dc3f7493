// maps.js: colour maps and the small map views of the panels (activation
// maps, edge maps, kernels): a canvas with one pixel per unit, a colour bar,
// the value under the mouse, and a hover callback for receptive fields.

// ColorBrewer RdBu, reversed: negative blue, 0 white, positive red.
const RDBU = ['#053061', '#2166ac', '#4393c3', '#92c5de', '#d1e5f0', '#f7f7f7', '#fddbc7', '#f4a582', '#d6604d', '#b2182b', '#67001f'];
// matplotlib's plasma at 9 stops (for importance, 0..1).
const PLASMA = ['#0d0887', '#4b03a1', '#7d03a8', '#a82296', '#cb4679', '#e56b5d', '#f89441', '#fdc328', '#f0f921'];

function rgb(hex) { return [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16)); }
function table(stops, n = 256) {
  const c = stops.map(rgb), out = new Uint8Array(n * 4);
  for (let k = 0; k < n; k++) {
    const t = k / (n - 1) * (c.length - 1), i = Math.min(Math.floor(t), c.length - 2), f = t - i;
    for (let ch = 0; ch < 3; ch++) out[4 * k + ch] = Math.round(c[i][ch] * (1 - f) + c[i + 1][ch] * f);
    out[4 * k + 3] = 255;
  }
  return out;
}
export const DIVERGING = table(RDBU);
export const SEQUENTIAL = table(PLASMA);

export function seqColor(t) {
  const k = Math.max(0, Math.min(255, Math.round(t * 255)));
  return `rgb(${SEQUENTIAL[4 * k]},${SEQUENTIAL[4 * k + 1]},${SEQUENTIAL[4 * k + 2]})`;
}

// Fills an ImageData-sized canvas with v (h*w) through the diverging map,
// symmetric about 0: [-a, a] with a = max |v|.
export function drawDiverging(canvas, v, h, w) {
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext('2d'), img = ctx.createImageData(w, h);
  let a = 0;
  for (let k = 0; k < v.length; k++) a = Math.max(a, Math.abs(v[k]));
  for (let k = 0; k < h * w; k++) {
    const t = a > 0 ? (v[k] / a + 1) / 2 : 0.5, c = Math.max(0, Math.min(255, Math.round(t * 255)));
    img.data.set(DIVERGING.subarray(4 * c, 4 * c + 4), 4 * k);
  }
  ctx.putImageData(img, 0, 0);
  return a;
}

// An image (c = 1 or 3 planes of h*w values in [0, 1]) into a canvas.
export function drawImage(canvas, v, c, h, w) {
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext('2d'), img = ctx.createImageData(w, h), P = h * w;
  for (let k = 0; k < P; k++) {
    for (let ch = 0; ch < 3; ch++) {
      const x = v[(c === 3 ? ch : 0) * P + k];
      img.data[4 * k + ch] = Math.max(0, Math.min(255, Math.round(x * 255)));
    }
    img.data[4 * k + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function fmt(x) {
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1000 || a < 0.01 ? x.toExponential(2) : x.toPrecision(3);
}
export { fmt };

// A map view in `box`: canvas, colour bar (-a, 0, a) and readout.
// opts.onHover(y, x, value) / opts.onLeave(); opts.size: CSS pixels.
export function mapView(box, map, opts = {}) {
  box.replaceChildren();
  const canvas = document.createElement('canvas');
  canvas.className = 'map';
  if (opts.size) { canvas.style.width = canvas.style.height = opts.size + 'px'; }
  const a = drawDiverging(canvas, map.data, map.h, map.w);
  const bar = document.createElement('div');
  bar.className = 'cbar';
  const bc = document.createElement('canvas');
  drawDiverging(bc, Float32Array.from({ length: 64 }, (_, k) => k / 31.5 - 1), 1, 64);
  const labels = document.createElement('div');
  labels.className = 'cbar';
  labels.innerHTML = `<span>${fmt(-a)}</span><span>0</span><span>${fmt(a)}</span>`;
  const readout = document.createElement('div');
  readout.className = 'readout';
  readout.textContent = `${map.h}×${map.w}, range ${fmt(map.min)} … ${fmt(map.max)}`;
  const idle = readout.textContent;
  bar.append(bc);
  box.append(canvas, bar, labels, readout);
  canvas.addEventListener('mousemove', ev => {
    const r = canvas.getBoundingClientRect();
    const x = Math.min(map.w - 1, Math.max(0, Math.floor((ev.clientX - r.left) / r.width * map.w)));
    const y = Math.min(map.h - 1, Math.max(0, Math.floor((ev.clientY - r.top) / r.height * map.h)));
    const v = map.data[y * map.w + x];
    readout.textContent = `(${y}, ${x}) = ${fmt(v)}`;
    if (opts.onHover) opts.onHover(y, x, v);
  });
  canvas.addEventListener('mouseleave', () => { readout.textContent = idle; if (opts.onLeave) opts.onLeave(); });
  return canvas;
}

// A small map canvas without bar/readout (tables, diagrams).
export function thumb(map, cls = '') {
  const c = document.createElement('canvas');
  if (cls) c.className = cls;
  drawDiverging(c, map.data, map.h, map.w);
  return c;
}
