// CORS through the real server (vLLM's --allowed-origins, --allowed-methods, --allowed-headers,
// --allow-credentials): preflights answered without the API key, the origin named on real
// responses (errors included), nothing for an origin not listed, and "*" by default.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';

const preflight = (baseURL, path, origin, method, headers) => fetch(`${baseURL}${path}`, {
  method: 'OPTIONS',
  headers: { Origin: origin, 'Access-Control-Request-Method': method,
    ...(headers ? { 'Access-Control-Request-Headers': headers } : {}) },
});

describe('CORS with listed origins, credentials and --api-key', () => {
  let server;
  before(async () => {
    server = await startServer(['--api-key', 'sk-cors', '--allowed-origins', '["https://a.example"]',
      '--allowed-methods', 'GET,POST', '--allowed-headers', '["Authorization", "Content-Type"]',
      '--allow-credentials']);
  });
  after(async () => { if (server) await server.stop(); });

  test('a preflight from a listed origin is answered without the key', async () => {
    const r = await preflight(server.baseURL, '/v1/chat/completions', 'https://a.example', 'POST',
      'authorization, content-type');
    assert.equal(r.status, 200, await r.text());
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://a.example');
    assert.equal(r.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(r.headers.get('access-control-allow-methods'), 'GET, POST');
    assert.match(r.headers.get('access-control-allow-headers'), /authorization/);
    assert.equal(r.headers.get('access-control-max-age'), '600');
    assert.equal(r.headers.get('vary'), 'Origin');
  });

  test('a preflight from another origin, or for another method, gets a 400 and no CORS headers', async () => {
    for (const [origin, method] of [['https://evil.example', 'POST'], ['https://a.example', 'DELETE']]) {
      const r = await preflight(server.baseURL, '/tokenize', origin, method);
      assert.equal(r.status, 400);
      assert.equal((await r.json()).error.code, 'cors_not_allowed');
      assert.equal(r.headers.get('access-control-allow-origin'), null);
    }
  });

  test('real requests: the listed origin is named (also on a 401), another origin gets nothing', async () => {
    const body = JSON.stringify({ prompt: 'hi' });
    const ok = await fetch(`${server.baseURL}/tokenize`, { method: 'POST', body,
      headers: { Origin: 'https://a.example', Authorization: 'Bearer sk-cors', 'Content-Type': 'application/json' } });
    assert.equal(ok.status, 200, await ok.text());
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://a.example');
    assert.equal(ok.headers.get('access-control-allow-credentials'), 'true');
    const noKey = await fetch(`${server.baseURL}/v1/models`, { headers: { Origin: 'https://a.example' } });
    assert.equal(noKey.status, 401);
    assert.equal(noKey.headers.get('access-control-allow-origin'), 'https://a.example');
    const other = await fetch(`${server.baseURL}/v1/models`, {
      headers: { Origin: 'https://evil.example', Authorization: 'Bearer sk-cors' } });
    assert.equal(other.status, 200);
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    const noOrigin = await fetch(`${server.baseURL}/health`);
    assert.equal(noOrigin.headers.get('access-control-allow-origin'), null);
  });
});

describe('CORS defaults', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { if (server) await server.stop(); });

  test('any origin gets *; a preflight to any route allows every method and the asked headers', async () => {
    const r = await fetch(`${server.baseURL}/v1/models`, { headers: { Origin: 'https://x.example' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    const p = await preflight(server.baseURL, '/no/such/route', 'https://x.example', 'PUT', 'x-custom');
    assert.equal(p.status, 200);
    assert.equal(p.headers.get('access-control-allow-origin'), '*');
    assert.match(p.headers.get('access-control-allow-methods'), /PUT/);
    assert.equal(p.headers.get('access-control-allow-headers'), 'x-custom');
  });
});
