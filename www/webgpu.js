// Whether this page or worker has a WebGPU adapter worth using. A CPU-emulated one (SwiftShader
// in headless Chromium, llvmpipe, WARP, or any the browser marks as a fallback) is far slower
// than the wasm CPU backend, so neither the worker's "auto" nor the bench uses it.

/** Resolves to null when a hardware adapter exists, else to {reason, emulated}. */
export async function webgpuUnusable() {
  const gpu = self.navigator?.gpu;
  if (!gpu) return { reason: 'navigator.gpu is absent', emulated: false };
  let adapter = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    return { reason: `requestAdapter failed (${err.message})`, emulated: false };
  }
  if (!adapter) return { reason: 'no WebGPU adapter', emulated: false };
  const info = adapter.info ?? {};
  if (info.isFallbackAdapter || adapter.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|warp/i.test(`${info.architecture} ${info.description} ${info.vendor}`)) {
    return { reason: `the WebGPU adapter is CPU-emulated (${info.vendor ?? ''} ${info.architecture ?? ''})`, emulated: true };
  }
  return null;
}
