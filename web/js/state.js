// state.js: the whole view lives in the URL's query string, so that a view
// can be reloaded, bookmarked and shared: model, image set, scores (category
// or contrast), target, metric, projection, extraction mode and thresholds,
// the input image, the selection and the camera.

const KEYS = ['model', 'set', 'scores', 'target', 'metric', 'proj', 'mode', 'tn', 'te', 'keep', 'image', 'sel', 'cam', 'ctx'];
const NUMERIC = new Set(['tn', 'te', 'keep']);

export function readState(defaults) {
  const q = new URLSearchParams(location.search);
  const s = { ...defaults };
  for (const k of KEYS) {
    const v = q.get(k);
    if (v === null) continue;
    s[k] = NUMERIC.has(k) ? Number(v) : v;
  }
  return s;
}

let pending = null;
// Writes the state into the URL (replaceState: no history entry per slider step).
export function writeState(s) {
  clearTimeout(pending);
  pending = setTimeout(() => {
    const q = new URLSearchParams();
    for (const k of KEYS) if (s[k] !== undefined && s[k] !== null && s[k] !== '') q.set(k, String(s[k]));
    const url = `${location.pathname}?${q.toString()}`;
    if (url !== location.pathname + location.search) history.replaceState(null, '', url);
  }, 60);
}

export function flushState(s) {
  clearTimeout(pending);
  const q = new URLSearchParams();
  for (const k of KEYS) if (s[k] !== undefined && s[k] !== null && s[k] !== '') q.set(k, String(s[k]));
  history.replaceState(null, '', `${location.pathname}?${q.toString()}`);
}

// "node:features.3:5" -> {kind:'node', layer:'features.3', out:5}; "edge:L:J:I" likewise.
export function parseSel(sel) {
  if (!sel) return null;
  const p = sel.split(':');
  if (p[0] === 'node' && p.length >= 3) return { kind: 'node', layer: p.slice(1, -1).join(':'), ch: Number(p[p.length - 1]) };
  if (p[0] === 'edge' && p.length >= 4)
    return { kind: 'edge', layer: p.slice(1, -2).join(':'), out: Number(p[p.length - 2]), in: Number(p[p.length - 1]) };
  return null;
}
