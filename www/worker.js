// The Web Worker that owns the wasm module and the models: all model work happens here, so
// the page's main thread never blocks. Messages: {id, op, args} → {id, ok, result | error}.
import init, { Encoder, productTitles } from './pkg/ranklet.js';

let ready = null;
const encoders = new Map();
let nextHandle = 1;

// Fetches one file of a bundle; errors name the file and the HTTP status.
async function fetchBytes(base, name) {
  const url = new URL(name, base);
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`model file ${name}: cannot fetch ${url.pathname} (${err.message})`);
  }
  if (!response.ok) throw new Error(`model file ${name}: HTTP ${response.status} for ${url.pathname}`);
  return new Uint8Array(await response.arrayBuffer());
}

function register(encoder) {
  const handle = nextHandle++;
  encoders.set(handle, encoder);
  return {
    handle,
    backend: encoder.backend,
    backendReason: encoder.backendReason,
    dim: encoder.dim,
    name: encoder.name,
  };
}

function encoderOf(handle) {
  const encoder = encoders.get(handle);
  if (!encoder) throw new Error(`no encoder with handle ${handle} (closed?)`);
  return encoder;
}

// "auto" takes WebGPU only on a real GPU: a CPU-emulated adapter (SwiftShader, or any the
// browser marks as a fallback) is far slower than the wasm CPU backend.
async function chooseBackend(preference) {
  if (preference !== 'auto') return { backend: preference, note: null };
  if (!self.navigator?.gpu) return { backend: 'cpu', note: 'auto: navigator.gpu is absent (no WebGPU here)' };
  let adapter = null;
  try {
    adapter = await self.navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    return { backend: 'cpu', note: `auto: requestAdapter failed (${err.message})` };
  }
  if (!adapter) return { backend: 'cpu', note: 'auto: no WebGPU adapter' };
  const info = adapter.info ?? {};
  const software = info.isFallbackAdapter || adapter.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|warp/i.test(`${info.architecture} ${info.description} ${info.vendor}`);
  if (software) {
    return { backend: 'cpu', note: `auto: the WebGPU adapter is CPU-emulated (${info.vendor ?? ''} ${info.architecture ?? ''}); the wasm CPU backend is faster` };
  }
  return { backend: 'webgpu', note: null };
}

function withNote(info, note) {
  if (note) info.backendReason = note;
  return info;
}

const ops = {
  // Loads a bundle from a folder URL on the page's origin: manifest.json, then the encoder files
  // it names; the wasm side checks every size and sha256 before parsing anything.
  async load({ url, backend }) {
    const base = url.endsWith('/') ? url : url + '/';
    if (new URL(base).origin !== self.location.origin) {
      throw new Error(`model ${url}: refusing to load a model from another origin`);
    }
    const manifestBytes = await fetchBytes(base, 'manifest.json');
    const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
    const names = [manifest.encoder?.config, manifest.encoder?.tokenizer, manifest.encoder?.weights];
    const files = {};
    await Promise.all(names.filter(Boolean).map(async (n) => { files[n] = await fetchBytes(base, n); }));
    const choice = await chooseBackend(backend);
    return withNote(register(await Encoder.load(manifestBytes, files, choice.backend)), choice.note);
  },
  async tiny({ seed, backend }) {
    const choice = await chooseBackend(backend);
    return withNote(register(await Encoder.tinyTestModel(seed, choice.backend)), choice.note);
  },
  async embed({ handle, texts }) {
    const flat = await encoderOf(handle).embed(texts);
    return { value: flat, transfer: [flat.buffer] };
  },
  async tokenize({ handle, text }) {
    return Array.from(encoderOf(handle).tokenize(text));
  },
  async titles({ n, seed }) {
    return productTitles(n, seed);
  },
  async close({ handle }) {
    encoders.get(handle)?.free();
    encoders.delete(handle);
    return true;
  },
};

self.onmessage = async (event) => {
  const { id, op, args } = event.data;
  try {
    ready ??= init();
    await ready;
    if (!ops[op]) throw new Error(`unknown operation ${op}`);
    const result = await ops[op](args ?? {});
    if (result && result.transfer) self.postMessage({ id, ok: true, result: result.value }, result.transfer);
    else self.postMessage({ id, ok: true, result });
  } catch (err) {
    self.postMessage({ id, ok: false, error: String(err?.message ?? err) });
  }
};
