import { RankletEncoder, cosine } from './ranklet.js';

const status = document.getElementById('status');
const out = document.getElementById('out');
let encoder = null;
let loadedBackend = null;

function say(text, isError = false) {
  status.textContent = text;
  status.className = isError ? 'err' : '';
}

async function ensureEncoder() {
  const backend = document.getElementById('backend').value;
  if (encoder && loadedBackend === backend) return encoder;
  encoder?.close();
  say('loading the model…');
  const t0 = performance.now();
  encoder = await RankletEncoder.load('../models/teacher/', { backend });
  loadedBackend = backend;
  say(`model ${encoder.name} on ${encoder.backend} (${encoder.backendReason}), loaded in ${Math.round(performance.now() - t0)} ms`);
  return encoder;
}

function cell(tag, text) {
  const el = document.createElement(tag);
  el.textContent = text; // never innerHTML: texts are the visitor's
  return el;
}

async function run() {
  const texts = document.getElementById('texts').value.split('\n').map((t) => t.trim()).filter(Boolean);
  if (texts.length === 0) { say('type at least one text', true); return; }
  try {
    const enc = await ensureEncoder();
    const t0 = performance.now();
    const vectors = await enc.embed(texts);
    const ms = performance.now() - t0;
    say(`${texts.length} texts embedded on ${enc.backend} in ${ms.toFixed(0)} ms (${(texts.length / ms * 1000).toFixed(1)} texts/s)`);
    const table = document.createElement('table');
    const head = document.createElement('tr');
    head.append(cell('th', 'cosine'), ...texts.map((t) => cell('th', t)));
    table.append(head);
    texts.forEach((t, i) => {
      const row = document.createElement('tr');
      row.append(cell('th', t), ...texts.map((_, j) => cell('td', cosine(vectors[i], vectors[j]).toFixed(3))));
      table.append(row);
    });
    const dims = document.createElement('pre');
    dims.textContent = texts.map((t, i) => `${t}\n  [${Array.from(vectors[i].slice(0, 6), (v) => v.toFixed(4)).join(', ')}, …] (${vectors[i].length} dims)`).join('\n');
    out.replaceChildren(table, dims);
  } catch (err) {
    say(`could not embed: ${err.message}`, true);
  }
}

document.getElementById('go').addEventListener('click', run);
ensureEncoder().then(run, (err) => say(`the model did not load: ${err.message}`, true));
