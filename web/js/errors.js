// errors.js: every error is shown in the page (never a blank screen, never
// only in the console): a dismissable line at the bottom of the stage.
const $ = id => document.getElementById(id);

export function showError(msg) {
  if (msg && msg.name === 'AbortError') return;
  const text = String(msg && msg.message ? msg.message : msg);
  console.warn('viscnn:', text);
  const box = $('errors');
  for (const e of box.children) if (e.dataset.text === text) return;   // once
  const d = document.createElement('div');
  d.className = 'error';
  d.dataset.text = text;
  d.textContent = text;
  const b = document.createElement('button');
  b.textContent = '\u00d7';
  b.title = 'dismiss';
  b.onclick = () => d.remove();
  d.append(b);
  box.append(d);
  while (box.children.length > 5) box.firstChild.remove();
}
window.addEventListener('error', e => showError(`page error: ${e.message}`));
window.addEventListener('unhandledrejection', e => showError(e.reason || 'unknown error'));

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
