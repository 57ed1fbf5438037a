// Bad input over HTTP: each gets an OpenAI-shaped error with the right status, and the server
// keeps serving everyone else. Also the queue limit (429 + Retry-After) and --api-key (401).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, waitFor, metric } from './lib/server.mjs';
import { assertError, post } from './lib/http.mjs';

describe('bad input', () => {
  let server;
  before(async () => { server = await startServer(['--max-model-len', '128', '--max-request-bytes', '8192']); });
  after(async () => { if (server) await server.stop(); });
  const completions = (body) => post(server.baseURL, '/v1/completions',
    typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
  const chat = (body) => post(server.baseURL, '/v1/chat/completions', JSON.stringify(body));
  const user = [{ role: 'user', content: 'hi' }];

  test('malformed JSON', async () => {
    assertError(await completions('{"prompt": "x",'), 400, { code: 'invalid_json' });
    assertError(await completions('not json at all'), 400, { code: 'invalid_json' });
    assertError(await completions('[1, 2]'), 400);
  });

  test('wrong types', async () => {
    assertError(await completions({ prompt: 'x', max_tokens: '5' }), 400, { param: 'max_tokens', code: 'invalid_type' });
    assertError(await completions({ prompt: 'x', temperature: 'warm' }), 400, { param: 'temperature' });
    assertError(await completions({ prompt: 5 }), 400, { param: 'prompt', code: 'invalid_type' });
    assertError(await chat({ messages: 'hi' }), 400, { param: 'messages', code: 'invalid_type' });
    assertError(await chat({ messages: [{ role: 'user', content: 7 }] }), 400, { param: 'messages[0].content' });
    assertError(await chat({ messages: user, stream: 'yes' }), 400, { param: 'stream' });
  });

  test('missing fields', async () => {
    assertError(await completions({ model: 'tiny' }), 400, { param: 'prompt', code: 'missing_required_parameter' });
    assertError(await chat({ model: 'tiny' }), 400, { param: 'messages', code: 'missing_required_parameter' });
    assertError(await chat({ messages: [{ content: 'x' }] }), 400, { param: 'messages[0].role' });
  });

  test('unknown model is 404', async () => {
    assertError(await chat({ model: 'gpt-4o', messages: user }), 404, { param: 'model', code: 'model_not_found' });
  });

  test('max_tokens <= 0 or past the context', async () => {
    assertError(await completions({ prompt: 'x', max_tokens: 0 }), 400, { param: 'max_tokens' });
    assertError(await completions({ prompt: 'x', max_tokens: -3 }), 400, { param: 'max_tokens' });
    assertError(await completions({ prompt: 'x', max_tokens: 1000 }), 400,
      { param: 'max_tokens', code: 'context_length_exceeded' });
    assertError(await chat({ messages: user, max_completion_tokens: 500 }), 400, { code: 'context_length_exceeded' });
  });

  test('prompt longer than max_model_len', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => 10 + (i % 50));
    assertError(await completions({ prompt: ids, max_tokens: 1 }), 400, { param: 'prompt', code: 'context_length_exceeded' });
    assertError(await chat({ messages: [{ role: 'user', content: 'word '.repeat(300) }] }), 400,
      { param: 'messages', code: 'context_length_exceeded' });
  });

  test('n out of range, and other ranges', async () => {
    assertError(await completions({ prompt: 'x', n: 0 }), 400, { param: 'n', code: 'integer_below_min_value' });
    assertError(await completions({ prompt: 'x', n: 129 }), 400, { param: 'n', code: 'integer_above_max_value' });
    assertError(await completions({ prompt: 'x', temperature: 2.5 }), 400, { param: 'temperature' });
    assertError(await completions({ prompt: 'x', top_p: 0 }), 400, { param: 'top_p' });
    assertError(await completions({ prompt: 'x', logprobs: 50 }), 400, { param: 'logprobs' });
    assertError(await completions({ prompt: [99999] }), 400, { param: 'prompt[0]' }); // past the vocabulary
  });

  test('invalid UTF-8', async () => {
    const bytes = Buffer.concat([Buffer.from('{"prompt": "caf'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    assertError(await completions(bytes), 400, { code: 'invalid_utf8' });
  });

  test('body over the size limit is 413', async () => {
    assertError(await completions({ prompt: 'a'.repeat(20000) }), 413, { code: 'request_too_large' });
  });

  test('the OpenAI client surfaces these errors with status, param and code', async () => {
    const client = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: 'x', maxRetries: 0 });
    await assert.rejects(client.completions.create({ model: 'tiny', prompt: 'x', n: 500 }), (err) => {
      assert.equal(err.status, 400);
      assert.equal(err.param, 'n');
      assert.equal(err.code, 'integer_above_max_value');
      return true;
    });
  });

  test('the server still serves after all of that', async () => {
    const r = await completions({ prompt: 'x', max_tokens: 3, ignore_eos: true });
    assert.equal(r.status, 200);
    assert.equal(r.json.usage.completion_tokens, 3);
    const status400 = await metric(server.baseURL,
      'actorserve:http_requests_total{endpoint="/v1/completions",method="POST",status="400"}');
    assert.ok(status400 >= 15, `http_requests_total 400: ${status400}`);
  });
});

describe('too many waiting requests', () => {
  let server;
  before(async () => {
    server = await startServer(['--max-num-seqs', '1', '--max-waiting-requests', '1', '--max-model-len', '2048'],
      { maxPosition: 2048 });
  });
  after(async () => { if (server) await server.stop(); });

  test('429 with Retry-After beyond the waiting limit; admitted requests are unaffected', async () => {
    const long = JSON.stringify({ prompt: 'x', max_tokens: 2000, ignore_eos: true, stream: true });
    const controllers = [new AbortController(), new AbortController()];
    const open = (c) => fetch(`${server.baseURL}/v1/completions`,
      { method: 'POST', body: long, signal: c.signal, headers: { 'Content-Type': 'application/json' } });
    // One at a time: two requests arriving together may both still be waiting when the second is
    // admitted, and then the second is (rightly) over the limit of one waiting request.
    const responses = [await open(controllers[0])];
    await waitFor(async () => (await metric(server.baseURL, 'actorserve:num_requests_running{model_name="tiny"}')) === 1,
      5000, 'the first request running');
    responses.push(await open(controllers[1]));
    responses.forEach((r) => assert.equal(r.status, 200));
    await waitFor(async () => (await metric(server.baseURL, 'actorserve:num_requests_waiting{model_name="tiny"}')) === 1,
      5000, 'one running and one waiting');
    const third = await post(server.baseURL, '/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: 2 }));
    assertError(third, 429);
    assert.ok(Number(third.headers.get('retry-after')) >= 1, 'Retry-After header');
    // The admitted stream is still producing.
    const reader = responses[0].body.getReader();
    const { value } = await reader.read();
    assert.ok(value.length > 0);
    controllers.forEach((c) => c.abort());
    await waitFor(async () => (await metric(server.baseURL, 'actorserve:num_requests_running{model_name="tiny"}')) === 0 &&
      (await metric(server.baseURL, 'actorserve:num_requests_waiting{model_name="tiny"}')) === 0, 5000, 'an idle engine');
    const after = await post(server.baseURL, '/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: 2 }));
    assert.equal(after.status, 200);
  });
});

describe('--api-key', () => {
  let server;
  before(async () => { server = await startServer(['--api-key', 'sk-test-123']); });
  after(async () => { if (server) await server.stop(); });

  test('401 without the right Bearer token on /v1, open health endpoints', async () => {
    const body = JSON.stringify({ prompt: 'x', max_tokens: 1 });
    assertError(await post(server.baseURL, '/v1/completions', body), 401, { code: 'invalid_api_key' });
    assertError(await post(server.baseURL, '/v1/completions', body, { Authorization: 'Bearer sk-test-12' }), 401);
    assertError(await post(server.baseURL, '/v1/completions', body, { Authorization: 'Bearer sk-test-1234' }), 401);
    assert.equal((await fetch(`${server.baseURL}/v1/models`)).status, 401);
    const ok = await post(server.baseURL, '/v1/completions', body, { Authorization: 'Bearer sk-test-123' });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await fetch(`${server.baseURL}/health`)).status, 200);
    assert.equal((await fetch(`${server.baseURL}/metrics`)).status, 200);
    const client = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: 'sk-test-123', maxRetries: 0 });
    const r = await client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 2, ignore_eos: true });
    assert.equal(r.usage.completion_tokens, 2);
    const wrong = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: 'nope', maxRetries: 0 });
    await assert.rejects(wrong.models.list(), (err) => err.status === 401);
  });
});
