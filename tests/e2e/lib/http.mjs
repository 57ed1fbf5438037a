// Plain HTTP helpers for the e2e tests: a JSON POST with its status, headers and parsed body,
// and the check of an OpenAI-shaped error body.
import assert from 'node:assert/strict';

export async function post(baseURL, path, body, headers = {}) {
  const res = await fetch(`${baseURL}${path}`, { method: 'POST', body,
    headers: { 'Content-Type': 'application/json', ...headers } });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* checked by the caller */ }
  return { status: res.status, headers: res.headers, json, text };
}

export function assertError(r, status, { param, code } = {}) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json && r.json.error, `not an OpenAI error body: ${r.text}`);
  const e = r.json.error;
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  assert.equal(typeof e.type, 'string');
  if (param !== undefined) assert.equal(e.param, param);
  if (code !== undefined) assert.equal(e.code, code);
}
