import { RankletEncoder } from './ranklet.js';

// Runs by itself on load; the result is shown, kept in window.benchResult and, when the page
// is driven by tests/browser/bench.mjs, saved to reports/.
const params = new URLSearchParams(location.search);
// `models=a,b` measures several bundles back to back in the same page (e.g. teacher and student).
const models = (params.get('models') ?? params.get('model') ?? '../models/teacher/').split(',');
const backends = (params.get('backends') ?? 'cpu,webgpu').split(',');
const nTexts = Number(params.get('texts') ?? 64);
const batches = (params.get('batches') ?? '1,32').split(',').map(Number);

async function bench() {
  const result = { page: 'www/bench.html', models, userAgent: navigator.userAgent, texts_per_run: nTexts, runs: [], skipped: [] };
  for (const model of models) for (const backend of backends) {
    const t0 = performance.now();
    let enc;
    try {
      enc = await RankletEncoder.load(model, { backend });
    } catch (err) {
      result.skipped.push({ model, backend, reason: err.message });
      continue;
    }
    if (enc.backend !== backend) {
      result.skipped.push({ model, backend, reason: enc.backendReason });
      enc.close();
      continue;
    }
    const coldMs = performance.now() - t0;
    const titles = await enc.productTitles(nTexts, 42);
    for (const batch of batches) {
      await enc.embed(titles.slice(0, batch)); // warm-up
      const start = performance.now();
      for (let i = 0; i < titles.length; i += batch) await enc.embed(titles.slice(i, i + batch));
      const seconds = (performance.now() - start) / 1000;
      const row = { model, backend, batch, texts: titles.length, seconds, texts_per_s: titles.length / seconds, load_ms: coldMs };
      result.runs.push(row);
      const tr = document.createElement('tr');
      for (const v of [model, backend, batch, row.texts_per_s.toFixed(1)]) {
        const td = document.createElement('td'); td.textContent = v; tr.append(td);
      }
      const bar = document.createElement('span'); bar.className = 'bar'; bar.style.width = `${Math.min(400, row.texts_per_s * 4)}px`;
      const td = document.createElement('td'); td.append(bar); tr.append(td);
      document.getElementById('table').append(tr);
    }
    enc.close();
  }
  return result;
}

bench().then((result) => {
  window.benchResult = result;
  document.getElementById('json').textContent = JSON.stringify(result, null, 2);
  document.getElementById('status').textContent = 'done';
}, (err) => {
  window.benchResult = { error: err.message };
  document.getElementById('status').textContent = `failed: ${err.message}`;
});
