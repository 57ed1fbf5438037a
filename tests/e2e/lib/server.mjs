// Starts the real `actorserve serve` binary on a free port with a tiny random-weight model made
// by `actorserve make-model` (the demo model's tokenizer, so text is readable ASCII pieces).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const executable = process.env.ACTORSERVE_EXECUTABLE;
export const sourceDir = process.env.ACTORSERVE_SOURCE_DIR;
if (!executable || !sourceDir) throw new Error('set ACTORSERVE_EXECUTABLE and ACTORSERVE_SOURCE_DIR (ctest does)');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function makeTinyModel({ maxPosition = 512 } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'actorserve-e2e-'));
  const model = path.join(dir, 'tiny');
  execFileSync(executable, ['make-model', '--out', model, '--preset', 'tiny', '--tokenizer',
    path.join(sourceDir, 'models/demo'), '--max-position', String(maxPosition), '--seed', '7', '--quiet'], { stdio: 'pipe' });
  return { dir, model };
}

/// Starts a server; resolves once /ready answers 200. `prepareModel(modelDir)` may change the
/// model folder before the server reads it (e.g. add a chat_template.jinja).
export async function startServer(args = [], { maxPosition = 512, env = {}, prepareModel } = {}) {
  const { dir, model } = makeTinyModel({ maxPosition });
  if (prepareModel) prepareModel(model);
  const portFile = path.join(dir, 'port');
  const proc = spawn(executable, ['serve', '--model', model, '--served-model-name', 'tiny', '--host', '127.0.0.1',
    '--port', '0', '--port-file', portFile, '--cpu-threads', '1', ...args],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  let done = false;
  exited.then(() => { done = true; });

  const deadline = Date.now() + 30000;
  let port = 0;
  while (!port) {
    if (done || Date.now() > deadline) throw new Error(`server did not start:\n${log}`);
    if (fs.existsSync(portFile)) port = Number(fs.readFileSync(portFile, 'utf8').trim());
    else await sleep(20);
  }
  const baseURL = `http://127.0.0.1:${port}`;
  for (;;) {
    if (done || Date.now() > deadline) throw new Error(`server never became ready:\n${log}`);
    try {
      if ((await fetch(`${baseURL}/ready`)).status === 200) break;
    } catch { /* not listening yet */ }
    await sleep(20);
  }
  return {
    baseURL,
    port,
    model,
    proc,
    exited,
    log: () => log,
    async stop() {
      if (!done) {
        proc.kill('SIGKILL');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/// The value of one sample of /metrics (name with its labels, as printed), or NaN.
export async function metric(baseURL, series) {
  const text = await (await fetch(`${baseURL}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return NaN;
}

export async function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export { sleep };
