// vLLM's POST /tokenize and /detokenize through the real server: the chat form counts exactly
// the prompt tokens a chat completion reports, detokenize inverts tokenize, bad ids and models
// get OpenAI errors, and --api-key guards both routes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer } from './lib/server.mjs';
import { assertError, post } from './lib/http.mjs';

const messages = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'count to three' }];

describe('/tokenize and /detokenize', () => {
  let server;
  before(async () => { server = await startServer(['--max-model-len', '256']); });
  after(async () => { if (server) await server.stop(); });
  const call = (path, body) => post(server.baseURL, path, JSON.stringify(body));

  test('prompt form: ids, count, max_model_len; detokenize gives the text back', async () => {
    const r = await call('/tokenize', { model: 'tiny', prompt: 'hello world', add_special_tokens: false });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ['count', 'max_model_len', 'tokens', 'token_strs']);
    assert.equal(r.json.count, r.json.tokens.length);
    assert.equal(r.json.max_model_len, 256);
    assert.equal(r.json.token_strs, null);
    const withBos = await call('/tokenize', { prompt: 'hello world', return_token_strs: true });
    assert.deepEqual(withBos.json.tokens.slice(1), r.json.tokens);
    assert.equal(withBos.json.token_strs[0], '<|bos|>');
    const back = await call('/detokenize', { model: 'tiny', tokens: r.json.tokens });
    assert.equal(back.status, 200, back.text);
    assert.deepEqual(back.json, { prompt: 'hello world' });
  });

  test('messages form counts the prompt tokens a chat completion uses', async () => {
    const r = await call('/tokenize', { model: 'tiny', messages });
    assert.equal(r.status, 200, r.text);
    const client = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: 'unused', maxRetries: 0 });
    const chat = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 1 });
    assert.equal(r.json.count, chat.usage.prompt_tokens);
    const text = (await call('/detokenize', { tokens: r.json.tokens })).json.prompt;
    assert.equal(text, '<|bos|><|system|>\nbe brief<|end|>\n<|user|>\ncount to three<|end|>\n<|assistant|>\n');
    const noGen = await call('/tokenize', { messages, add_generation_prompt: false });
    assert.ok(noGen.json.count < r.json.count);
  });

  test('bad input: OpenAI-shaped errors', async () => {
    assertError(await call('/detokenize', { tokens: [1, 100000000] }), 400, { param: 'tokens[1]' });
    assertError(await call('/detokenize', { tokens: 'abc' }), 400, { param: 'tokens' });
    assertError(await call('/tokenize', { model: 'other', prompt: 'x' }), 404, { code: 'model_not_found' });
    assertError(await call('/tokenize', {}), 400, { param: 'prompt' });
    assertError(await post(server.baseURL, '/tokenize', '{"prompt":'), 400, { code: 'invalid_json' });
    assert.equal((await call('/tokenize', { prompt: 'still serving' })).status, 200);
  });
});

describe('/tokenize with --api-key', () => {
  let server;
  before(async () => { server = await startServer(['--api-key', 'sk-tok']); });
  after(async () => { if (server) await server.stop(); });

  test('both routes need the key', async () => {
    for (const [path, body] of [['/tokenize', { prompt: 'x' }], ['/detokenize', { tokens: [5] }]]) {
      assertError(await post(server.baseURL, path, JSON.stringify(body)), 401, { code: 'invalid_api_key' });
      const ok = await post(server.baseURL, path, JSON.stringify(body), { Authorization: 'Bearer sk-tok' });
      assert.equal(ok.status, 200, ok.text);
    }
  });
});
