// Shared set-up of the browser tests: the project's own static server (`ranklet serve`) on a
// free port, and Debian's headless Chromium driven by playwright-core.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Starts `ranklet serve --port 0` on the repository root; resolves to {url, stop}. */
export function startServer(extraArgs = []) {
  const bin = process.env.RANKLET_BIN ?? path.join(ROOT, 'target/release/ranklet');
  const child = spawn(bin, ['serve', '--root', ROOT, '--port', '0', ...extraArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.on('error', (err) => reject(new Error(`cannot start ${bin}: ${err.message} (run ./build.sh test)`)));
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      const m = buffered.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) resolve({ url: m[0].replace(/\/$/, ''), stop: () => child.kill() });
    });
    child.on('exit', (code) => reject(new Error(`ranklet serve exited with ${code}`)));
  });
}

/** Headless Chromium with WebGPU allowed (a CPU-emulated SwiftShader adapter where no GPU). */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--enable-unsafe-webgpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

/** A page on the served origin, with its console forwarded to the test output. */
export async function openPage(browser, base, pagePath = '/www/blank.html') {
  const page = await browser.newPage();
  page.on('console', (msg) => { if (msg.type() === 'error') console.log(`[page] ${msg.text()}`); });
  page.on('pageerror', (err) => console.log(`[page error] ${err.message}`));
  await page.goto(base + pagePath);
  return page;
}
