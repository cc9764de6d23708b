// The bench page's chart of the catalogue benchmark (reports/catalog.json, written by
// ./build.sh bench-catalog): per catalogue size, the first and later visit, what the first
// visit downloads, recommend() with shards cached and fetched, and recall against the exact
// ranking, each bar beside the issue's target where it has one. `?catalogReport=URL` (same
// origin) reads another report.
import { el, sameOriginUrl } from './dom.js';

// [field, label, unit, target by size (items → value), lower is better]
const MEASURES = [
  ['first_visit_ms', 'first visit to a personal shelf', 'ms', (n) => (n >= 1e6 ? 3000 : n >= 2e4 ? 1500 : null)],
  ['later_visit_ms', 'later visit (cached)', 'ms', (n) => (n >= 2e4 && n < 1e5 ? 1000 : null)],
  ['first_visit_bytes_gzip', 'first visit downloads (gzip)', 'MB', (n) => (n >= 1e6 ? 10 : n >= 2e4 ? 6 : null), 1e-6],
  ['recommend_cached_ms', 'recommend(), shards cached', 'ms', (n) => (n >= 1e6 ? 50 : null)],
  ['recommend_fetch_ms', 'recommend() with shard fetches', 'ms', (n) => (n >= 1e6 ? 300 : null)],
  ['recall@10', 'recall@10 vs exact ranking', '', (n) => (n >= 1e6 ? 0.95 : null)],
];

function chart(sizes, [field, label, unit, target, scale = 1]) {
  const rows = sizes.filter((s) => typeof s[field] === 'number');
  if (!rows.length) return null;
  const values = rows.map((s) => s[field] * scale);
  const targets = rows.map((s) => target(s.items));
  const max = Math.max(...values, ...targets.filter((t) => t !== null));
  const table = el('table', 'chart');
  table.append(el('caption', null, `${label}${unit ? ` (${unit})` : ''}`));
  rows.forEach((s, i) => {
    const tr = el('tr');
    const bar = el('span', 'bar');
    bar.style.width = `${(200 * values[i]) / max}px`;
    const track = el('td', 'track');
    track.append(bar);
    if (targets[i] !== null) {
      // The target as a tick on the same scale.
      const tick = el('span', 'target');
      tick.style.left = `${(200 * targets[i]) / max}px`;
      tick.title = `target ${targets[i]} ${unit}`;
      track.append(tick);
    }
    const shown = unit === '' ? values[i].toFixed(3) : values[i] >= 100 ? values[i].toFixed(0) : values[i].toFixed(1);
    const verdict = targets[i] === null ? '' : (field.startsWith('recall') ? values[i] >= targets[i] : values[i] <= targets[i]) ? ' ✓' : ` ✗ (target ${targets[i]})`;
    tr.append(el('th', null, `${s.name} · ${s.items.toLocaleString('en')}${s.vectors === 'synthetic' ? ' (synthetic)' : ''}`), track, el('td', null, shown + verdict));
    table.append(tr);
  });
  return table;
}

export async function showCatalogReport(container, url) {
  try {
    const response = await fetch(sameOriginUrl(url, 'catalogReport'));
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const report = await response.json();
    const sizes = [...report.sizes].sort((a, b) => a.items - b.items);
    container.replaceChildren(...MEASURES.map((m) => chart(sizes, m)).filter(Boolean));
    container.append(el('p', 'meta', `${report.machine ?? ''} · ${report.browser ?? ''} · ${report.command ?? ''}`));
  } catch (err) {
    container.replaceChildren(el('p', null, `no catalogue report at ${url} (${err.message}); ./build.sh bench-catalog writes it`));
  }
}

const container = document.getElementById('catalog-charts');
if (container) showCatalogReport(container, new URLSearchParams(location.search).get('catalogReport') ?? '../reports/catalog.json');
