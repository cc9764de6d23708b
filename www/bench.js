import { Ranklet, RankletEncoder } from './ranklet.js';
import { parseCatalog } from './catalog.js';
import { webgpuUnusable } from './webgpu.js';

// Runs by itself on load; the result is shown, kept in window.benchResult and, when the page
// is driven by tests/browser/bench.mjs, saved to reports/.
const params = new URLSearchParams(location.search);
// `models=a,b` measures several bundles back to back in the same page (e.g. teacher and student).
const models = (params.get('models') ?? params.get('model') ?? '../models/teacher/').split(',');
const backends = (params.get('backends') ?? 'cpu,webgpu').split(',');
const nTexts = Number(params.get('texts') ?? 64);
const batches = (params.get('batches') ?? '1,32').split(',').map(Number);
// The texts: `textSource=catalog` (the catalogue's item texts: the student's vocabulary is the
// catalogue's) or `synthetic` (product titles, as `ranklet bench embed`).
const textSource = params.get('textSource') ?? 'catalog';
// The transformers.js peer (all-MiniLM-L6-v2 as ONNX, exported by ./build.sh bench-web):
// `peer=fp32,q8`, '' skips it.
const peerDtypes = (params.get('peer') ?? '').split(',').filter(Boolean);
// The recommender: `shop` is a bundle with one ('' skips this part), `catalog` the items whose
// texts a first visit embeds, `candidates` the catalogue sizes timed with pre-embedded items.
const shop = params.get('shop') ?? '../models/shop/';
const catalogUrl = params.get('catalog') ?? 'catalog/films-small.json';
const candidateSizes = (params.get('candidates') ?? '1000,10000').split(',').filter(Boolean).map(Number);
const historyLength = Number(params.get('history') ?? 50);
// Long histories: recommend() over the largest candidate set with these many events.
const historyLengths = (params.get('histories') ?? '50,1000,10000').split(',').filter(Boolean).map(Number);
const repeats = Number(params.get('repeats') ?? 30);

function row(cells) {
  const tr = document.createElement('tr');
  for (const v of cells) { const td = document.createElement('td'); td.textContent = v; tr.append(td); }
  return tr;
}

// A deterministic generator, so every run ranks the same random catalogue.
function random(seed) {
  let x = seed >>> 0;
  return () => { x = (x * 1664525 + 1013904223) >>> 0; return x / 2 ** 32; };
}

function unitVectors(n, dim, seed) {
  const next = random(seed);
  const v = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) { const x = next() - 0.5; v[i * dim + j] = x; norm += x * x; }
    norm = Math.sqrt(norm);
    for (let j = 0; j < dim; j++) v[i * dim + j] /= norm;
  }
  return v;
}

const median = (xs) => { const s = xs.slice().sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const p95 = (xs) => { const s = xs.slice().sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * 0.95))]; };

async function benchRecommender(result, backend) {
  const catalog = await (await fetch(catalogUrl)).text();
  const out = { model: shop, backend, catalog: catalogUrl };
  // First visit: download + init, embed the catalogue, first recommendation.
  let t0 = performance.now();
  let r = await Ranklet.load({ model: shop, backend });
  if (r.backend !== backend) { r.close(); return { model: shop, backend, skipped: r.backendReason }; }
  // (No forget(): this page must not wipe a visitor's history. In tests/browser/bench.mjs the
  // browser context is new, so the first visit really embeds.)
  const loadMs = performance.now() - t0;
  const indexed = await r.index(catalog);
  const indexMs = performance.now() - t0 - loadMs;
  const history = parseCatalog(catalog).slice(0, 5).map((it) => it.id);
  await r.recommend({ k: 10, history });
  Object.assign(out, { bundle_bytes: r.bytes, items: indexed.items, first_visit: { load_ms: loadMs, index_ms: indexMs, embedded: indexed.embedded, total_ms: performance.now() - t0 } });
  r.close();
  // Returning visit: the same, with the catalogue's vectors in IndexedDB (the cold start a
  // visitor sees on every later page view).
  t0 = performance.now();
  r = await Ranklet.load({ model: shop, backend });
  const load2 = performance.now() - t0;
  const again = await r.index(catalog);
  const index2 = performance.now() - t0 - load2;
  await r.recommend({ k: 10, history });
  out.cold_start = { load_ms: load2, index_ms: index2, reused: again.reused, embedded: again.embedded, total_ms: performance.now() - t0 };
  // recommend() latency over pre-embedded catalogues with a history of `historyLength` events.
  out.recommend = [];
  for (const n of candidateSizes) {
    const candidateIds = Array.from({ length: n }, (_, i) => `c${i}`);
    await r.indexVectors(candidateIds, unitVectors(n, r.dim, 7));
    const next = random(11);
    const hist = Array.from({ length: historyLength }, () => candidateIds[Math.floor(next() * n)]);
    for (let i = 0; i < 3; i++) await r.recommend({ k: 10, history: hist }); // warm-up
    // Interleaved with the same call without reasons (because: 0): what the model's
    // leave-one-out attribution of the two reasons per item costs.
    const times = [], bare = [];
    for (let i = 0; i < repeats; i++) {
      let s = performance.now();
      await r.recommend({ k: 10, history: hist });
      times.push(performance.now() - s);
      s = performance.now();
      await r.recommend({ k: 10, history: hist, because: 0 });
      bare.push(performance.now() - s);
    }
    out.recommend.push({ candidates: n, history: historyLength, k: 10, median_ms: median(times), p95_ms: p95(times),
      without_reasons_median_ms: median(bare), runs: repeats });
  }
  // Long histories (the model reads the newest events; the rest only leave their items out).
  out.recommend_by_history = [];
  const n = Math.max(...candidateSizes);
  if (Number.isFinite(n)) {
    const candidateIds = Array.from({ length: n }, (_, i) => `c${i}`);
    await r.indexVectors(candidateIds, unitVectors(n, r.dim, 7));
    // Interleaved rounds (50, 1 000, 10 000, 50, …): drift in the machine's speed then falls
    // on every length alike, and the ratios between them are fair.
    const hists = historyLengths.map((h) => {
      const next = random(13);
      return Array.from({ length: h }, () => candidateIds[Math.floor(next() * n)]);
    });
    const times = historyLengths.map(() => []);
    for (let round = -3; round < repeats; round++) {
      for (let j = 0; j < hists.length; j++) {
        const s = performance.now();
        await r.recommend({ k: 10, history: hists[j] });
        if (round >= 0) times[j].push(performance.now() - s); // three warm-up rounds
      }
    }
    historyLengths.forEach((h, j) => out.recommend_by_history.push({ candidates: n, history: h, k: 10,
      median_ms: median(times[j]), p95_ms: p95(times[j]), runs: repeats, interleaved: true }));
  }
  out.memory = await r.memory();
  r.close();
  return out;
}

// The same texts for every runtime in this page, and each runtime's vectors of them.
let benchTexts = null;
const vectorsOf = new Map();

function dot(a, b) {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += a[i] * b[i];
  return d;
}

// Cosine of every runtime's vectors to the teacher's (ranklet's teacher reproduces PyTorch's to
// ≥ 0.9999), so that speed is read beside what it costs.
function agreement() {
  const teacherKey = [...vectorsOf.keys()].find((k) => k.includes('teacher'));
  if (!teacherKey) return [];
  const teacher = vectorsOf.get(teacherKey);
  return [...vectorsOf.entries()].filter(([k]) => k !== teacherKey).map(([k, vs]) => {
    const cos = vs.map((v, i) => dot(v, teacher[i]) / Math.sqrt(dot(v, v) * dot(teacher[i], teacher[i])));
    return { runtime: k, against: teacherKey, texts: cos.length, mean_cosine: cos.reduce((a, b) => a + b, 0) / cos.length, min_cosine: Math.min(...cos) };
  });
}
async function textsFor(enc) {
  if (benchTexts) return benchTexts;
  if (textSource === 'synthetic') benchTexts = await enc.productTitles(nTexts, 42);
  else {
    const all = await enc.catalogTexts(await (await fetch(catalogUrl)).text());
    // Spread over the catalogue, repeated if it is small.
    benchTexts = Array.from({ length: nTexts }, (_, i) => all[Math.floor((i * all.length) / nTexts) % all.length]);
  }
  return benchTexts;
}

function addRow(runtime, backend, batch, textsPerS) {
  const tr = row([runtime, backend, batch, textsPerS.toFixed(1)]);
  const bar = document.createElement('span'); bar.className = 'bar'; bar.style.width = `${Math.min(400, textsPerS)}px`;
  const td = document.createElement('td'); td.append(bar); tr.append(td);
  document.getElementById('table').append(tr);
}

// transformers.js (ONNX Runtime Web, wasm, one thread) on the same texts, fp32 and q8.
async function benchPeer(result) {
  // Its self-contained build (ONNX Runtime Web inside), installed by ./build.sh bench-web under
  // .cache/peer/ and served under /peer/ (tests/browser/bench.mjs: `ranklet serve --mount`).
  const { pipeline, env } = await import('/peer/npm/node_modules/@huggingface/transformers/dist/transformers.js');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = '/peer/models/';
  env.backends.onnx.wasm.wasmPaths = new URL('/peer/npm/node_modules/onnxruntime-web/dist/', location.href).href;
  env.backends.onnx.wasm.numThreads = 1;
  result.peer = [];
  for (const dtype of peerDtypes) {
    const t0 = performance.now();
    const extractor = await pipeline('feature-extraction', 'all-MiniLM-L6-v2', { dtype, device: 'wasm' });
    const loadMs = performance.now() - t0;
    const texts = benchTexts;
    for (const batch of batches) {
      await extractor(texts.slice(0, batch), { pooling: 'mean', normalize: true }); // warm-up
      const start = performance.now();
      for (let i = 0; i < texts.length; i += batch) await extractor(texts.slice(i, i + batch), { pooling: 'mean', normalize: true });
      const seconds = (performance.now() - start) / 1000;
      result.peer.push({ runtime: `transformers.js ${dtype}`, model: 'all-MiniLM-L6-v2', backend: 'wasm', threads: 1, dtype, batch, texts: texts.length, seconds, texts_per_s: texts.length / seconds, load_ms: loadMs });
      addRow(`transformers.js ${dtype}`, 'wasm', batch, texts.length / seconds);
    }
    const all = await extractor(benchTexts, { pooling: 'mean', normalize: true });
    const dim = all.dims.at(-1);
    vectorsOf.set(`transformers.js ${dtype}`, benchTexts.map((_, i) => all.data.subarray(i * dim, (i + 1) * dim)));
    await extractor.dispose?.();
  }
}

// WebGPU speed means something only on a real GPU: without a hardware adapter the WebGPU runs
// are skipped, with the reason.
async function webgpuSkipReason() {
  const unusable = await webgpuUnusable();
  if (!unusable) return null;
  return unusable.emulated ? `${unusable.reason}: WebGPU speed is measured on a real GPU only` : unusable.reason;
}

async function bench() {
  const gpuSkip = backends.includes('webgpu') ? await webgpuSkipReason() : null;
  const result = { page: 'www/bench.html', models, userAgent: navigator.userAgent, texts_per_run: nTexts, text_source: textSource, runs: [], skipped: [] };
  for (const model of models) for (const backend of backends) {
    if (backend === 'webgpu' && gpuSkip) { result.skipped.push({ model, backend, reason: gpuSkip }); continue; }
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
    const titles = await textsFor(enc);
    for (const batch of batches) {
      await enc.embed(titles.slice(0, batch)); // warm-up
      const start = performance.now();
      for (let i = 0; i < titles.length; i += batch) await enc.embed(titles.slice(i, i + batch));
      const seconds = (performance.now() - start) / 1000;
      const row = { model, backend, batch, texts: titles.length, seconds, texts_per_s: titles.length / seconds, load_ms: coldMs };
      result.runs.push(row);
      addRow(model, backend, batch, row.texts_per_s);
    }
    vectorsOf.set(`${model} ${backend}`, await enc.embed(titles));
    enc.close();
  }
  if (peerDtypes.length && benchTexts) {
    try {
      await benchPeer(result);
    } catch (err) {
      result.skipped.push({ model: 'transformers.js', reason: err.message });
    }
  }
  result.cosine_to_teacher = agreement();
  if (shop) {
    result.recommender = [];
    for (const backend of backends) {
      let rec;
      if (backend === 'webgpu' && gpuSkip) { result.recommender.push({ model: shop, backend, skipped: gpuSkip }); continue; }
      try {
        rec = await benchRecommender(result, backend);
      } catch (err) {
        rec = { model: shop, backend, skipped: err.message };
      }
      result.recommender.push(rec);
      const table = document.getElementById('rec-table');
      if (rec.skipped) { table.append(row([backend, 'skipped', rec.skipped])); continue; }
      table.append(row([backend, 'first visit (embeds the catalogue)', `${rec.first_visit.total_ms.toFixed(0)} ms`]));
      table.append(row([backend, 'cold start (vectors cached)', `${rec.cold_start.total_ms.toFixed(0)} ms`]));
      for (const x of [...rec.recommend, ...rec.recommend_by_history]) table.append(row([backend, `recommend, ${x.candidates} candidates, ${x.history} events`,
        `${x.median_ms.toFixed(2)} ms (p95 ${x.p95_ms.toFixed(2)})` + (x.without_reasons_median_ms === undefined ? '' : `; without reasons ${x.without_reasons_median_ms.toFixed(2)} ms`)]));
      table.append(row([backend, 'wasm memory', `${(rec.memory.wasm_bytes / 1e6).toFixed(1)} MB`]));
    }
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
