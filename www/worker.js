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
    return register(await Encoder.load(manifestBytes, files, backend));
  },
  async tiny({ seed, backend }) {
    return register(await Encoder.tinyTestModel(seed, backend));
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
