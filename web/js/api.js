// api.js: talking to `viscnn serve` (viscnn/server/api.c). Every call returns
// the parsed JSON or throws an ApiError whose message is the server's
// one-line reason. Work that is not cached yet answers 202 with a job: get()
// follows it (the job bar shows its progress) and asks again when it is done.

export class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

const listeners = new Set();
export function onJobs(fn) { listeners.add(fn); }

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  return q.toString();
}

async function once(path, params, opts = {}) {
  const url = `api/${path}${params ? '?' + query(params) : ''}`;
  let res;
  try {
    res = await fetch(url, { signal: opts.signal, method: opts.method || 'GET', body: opts.body, headers: opts.headers });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(`${path}: the server does not answer (${e.message})`, 0);
  }
  const type = res.headers.get('Content-Type') || '';
  if (!type.startsWith('application/json')) {
    if (!res.ok) throw new ApiError(`${path}: HTTP ${res.status}`, res.status);
    return res;
  }
  const body = await res.json();
  if (!res.ok && res.status !== 202) throw new ApiError(body.error || `${path}: HTTP ${res.status}`, res.status);
  return { status: res.status, body };
}

// Active jobs: id -> {job, waiters}
const jobs = new Map();
let polling = false;

async function pollJobs() {
  if (polling) return;
  polling = true;
  try {
    while (jobs.size) {
      await new Promise(r => setTimeout(r, 350));
      let list;
      try { list = (await once('jobs')).body.jobs; } catch (e) { continue; }
      const byId = new Map(list.map(j => [j.id, j]));
      for (const [id, entry] of jobs) {
        const j = byId.get(id) || (await once('job', { id }).catch(() => null))?.body;
        if (!j) { jobs.delete(id); entry.waiters.forEach(w => w.reject(new ApiError(`job ${id} vanished`, 0))); continue; }
        entry.job = j;
        if (j.state === 'done') { jobs.delete(id); entry.waiters.forEach(w => w.resolve(j)); }
        else if (j.state === 'failed' || j.state === 'cancelled') {
          jobs.delete(id);
          entry.waiters.forEach(w => w.reject(new ApiError(j.state === 'failed' ? `${j.label}: ${j.error}` : `${j.label}: cancelled`, 409)));
        }
      }
      listeners.forEach(fn => fn(list));
    }
    listeners.forEach(fn => fn([]));
  } finally { polling = false; }
}

export function waitJob(job, signal) {
  return new Promise((resolve, reject) => {
    let entry = jobs.get(job.id);
    if (!entry) { entry = { job, waiters: [] }; jobs.set(job.id, entry); }
    const w = { resolve, reject };
    entry.waiters.push(w);
    if (signal) signal.addEventListener('abort', () => {
      entry.waiters = entry.waiters.filter(x => x !== w);
      reject(new DOMException('aborted', 'AbortError'));
    });
    pollJobs();
  });
}

export async function cancelJob(id) {
  await once('job/cancel', { id }, { method: 'POST' });
}

// GET path?params; follows jobs until the answer is there.
export async function get(path, params, opts = {}) {
  for (let tries = 0; tries < 20; tries++) {
    const r = await once(path, params, opts);
    if (r instanceof Response) return r;
    if (r.status !== 202) return r.body;
    if (opts.onJob) opts.onJob(r.body.job);
    await waitJob(r.body.job, opts.signal);
  }
  throw new ApiError(`${path}: still not computed after 20 jobs`, 0);
}

// GET without following jobs: {body} or {job}.
export async function peek(path, params, opts = {}) {
  const r = await once(path, params, opts);
  return r.status === 202 ? { job: r.body.job } : { body: r.body };
}

export async function upload(file) {
  const r = await once('upload', { name: file.name }, { method: 'POST', body: file, headers: { 'Content-Type': 'application/octet-stream' } });
  return r.body;
}

// base64 -> typed arrays
export function b64bytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
export function b64floats(s) { return new Float32Array(b64bytes(s).buffer); }
export function b64bits(s, n) {
  const b = b64bytes(s), out = new Uint8Array(n);
  for (let k = 0; k < n; k++) out[k] = (b[k >> 3] >> (k & 7)) & 1;
  return out;
}
