// The official OpenAI client for Node.js against the real server: completions, chat,
// streaming, n > 1, stop strings, logprobs, seeds, cancellation, 64 concurrent streams.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { metric, startServer, waitFor } from './lib/server.mjs';

let server;
let client;

before(async () => {
  server = await startServer(['--kv-cache-tokens', '16384', '--max-num-seqs', '64']);
  client = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
});
after(async () => {
  if (server) await server.stop();
});

const greedy = { model: 'tiny', temperature: 0, ignore_eos: true };

describe('openai client', () => {
  test('models.list names the served model', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['tiny']);
  });

  test('completions: exact token count, finish length, deterministic greedy text', async () => {
    const a = await client.completions.create({ ...greedy, prompt: 'Once upon a time', max_tokens: 9 });
    assert.match(a.id, /^cmpl-/);
    assert.equal(a.object, 'text_completion');
    assert.equal(a.choices.length, 1);
    assert.equal(a.choices[0].finish_reason, 'length');
    assert.equal(a.usage.completion_tokens, 9);
    assert.equal(a.usage.total_tokens, a.usage.prompt_tokens + 9);
    assert.ok(a.choices[0].text.length > 0);
    const b = await client.completions.create({ ...greedy, prompt: 'Once upon a time', max_tokens: 9 });
    assert.equal(b.choices[0].text, a.choices[0].text);
  });

  test('completions: token-id prompts and several prompts number their choices', async () => {
    const r = await client.completions.create({ ...greedy, prompt: [[10, 11, 12], [13, 14]], max_tokens: 3, n: 2 });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2, 3]);
    assert.equal(r.usage.prompt_tokens, 5);
    assert.equal(r.usage.completion_tokens, 12);
    assert.equal(r.choices[0].text, r.choices[1].text); // greedy: both choices of a prompt agree
  });

  test('chat: assistant message with usage', async () => {
    const r = await client.chat.completions.create({ ...greedy, max_tokens: 7,
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }] });
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(typeof r.choices[0].message.content, 'string');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 7);
    assert.ok(r.usage.prompt_tokens > 4); // the template's role markers are counted
  });

  test('chat streaming: role first, deltas add up to the non-streamed text, usage chunk last', async () => {
    const body = { ...greedy, max_tokens: 12, messages: [{ role: 'user', content: 'Tell me a fortune.' }] };
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({ ...body, stream: true,
      stream_options: { include_usage: true } });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks[0].object, 'chat.completion.chunk');
    const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join('');
    assert.equal(text, whole.choices[0].message.content);
    const finishes = chunks.flatMap((c) => c.choices.filter((ch) => ch.finish_reason).map((ch) => ch.finish_reason));
    assert.deepEqual(finishes, ['length']);
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, 12);
    assert.equal(last.usage.prompt_tokens, whole.usage.prompt_tokens);
    for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
  });

  test('completions streaming: chunks add up to the non-streamed text', async () => {
    const body = { ...greedy, prompt: 'The meaning of life is', max_tokens: 10 };
    const whole = await client.completions.create(body);
    let text = '';
    let finish = null;
    for await (const chunk of await client.completions.create({ ...body, stream: true })) {
      text += chunk.choices[0].text;
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    assert.equal(text, whole.choices[0].text);
    assert.equal(finish, 'length');
  });

  test('n > 1: every choice has its own index and tokens, streamed or not', async () => {
    const r = await client.chat.completions.create({ model: 'tiny', ignore_eos: true, n: 3, max_tokens: 5, seed: 11,
      temperature: 1, messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    assert.equal(r.usage.completion_tokens, 15);
    const perChoice = new Map();
    for await (const chunk of await client.completions.create({ model: 'tiny', ignore_eos: true, n: 2, max_tokens: 6,
      prompt: 'abc', stream: true, logprobs: 0 })) {
      for (const c of chunk.choices) {
        const s = perChoice.get(c.index) ?? { tokens: 0, finish: null };
        s.tokens += c.logprobs.tokens.length;
        s.finish = c.finish_reason ?? s.finish;
        perChoice.set(c.index, s);
      }
    }
    assert.deepEqual([...perChoice.keys()].sort(), [0, 1]);
    for (const s of perChoice.values()) assert.deepEqual(s, { tokens: 6, finish: 'length' });
  });

  test('stop strings end the text before the stop string, with finish_reason stop', async () => {
    const body = { ...greedy, prompt: 'It was a dark and stormy night', max_tokens: 40 };
    const free = (await client.completions.create(body)).choices[0].text;
    // A stop string taken from the middle of the free-running text, at its first occurrence.
    const probe = free.slice(Math.floor(free.length / 2), Math.floor(free.length / 2) + 3);
    const at = free.indexOf(probe);
    assert.ok(probe.length === 3 && at > 0, `unusable text ${JSON.stringify(free)}`);
    const r = await client.completions.create({ ...body, stop: [probe] });
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.choices[0].text, free.slice(0, at));
    assert.equal(r.choices[0].stop_reason, probe);
    assert.ok(r.usage.completion_tokens < 40);
  });

  test('logprobs: completions arrays and chat content entries, greedy picks the best', async () => {
    const c = await client.completions.create({ ...greedy, prompt: 'Hello', max_tokens: 6, logprobs: 2 });
    const lp = c.choices[0].logprobs;
    assert.equal(lp.tokens.length, 6);
    assert.equal(lp.token_logprobs.length, 6);
    assert.equal(lp.text_offset.length, 6);
    for (let i = 0; i < 6; i++) {
      assert.ok(lp.token_logprobs[i] <= 0);
      const alternatives = Object.values(lp.top_logprobs[i]);
      assert.ok(alternatives.length >= 1 && alternatives.length <= 3);
      assert.ok(Math.max(...alternatives) <= lp.token_logprobs[i] + 1e-6); // greedy: the chosen one is the best
    }
    const chat = await client.chat.completions.create({ ...greedy, max_tokens: 5, logprobs: true, top_logprobs: 3,
      messages: [{ role: 'user', content: 'Hello' }] });
    const content = chat.choices[0].logprobs.content;
    assert.equal(content.length, 5);
    for (const entry of content) {
      assert.equal(entry.top_logprobs.length, 3);
      assert.equal(entry.top_logprobs[0].token, entry.token);
      assert.ok(entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob);
      assert.deepEqual(entry.bytes, [...Buffer.from(entry.token, 'utf8')]);
    }
  });

  test('seed: the same seed gives the same sample, other seeds differ', async () => {
    const body = { model: 'tiny', prompt: 'Random words:', max_tokens: 16, temperature: 1, ignore_eos: true };
    const a = (await client.completions.create({ ...body, seed: 1234 })).choices[0].text;
    const b = (await client.completions.create({ ...body, seed: 1234 })).choices[0].text;
    assert.equal(a, b);
    const others = await Promise.all([1, 2, 3].map((seed) => client.completions.create({ ...body, seed })));
    assert.ok(others.some((o) => o.choices[0].text !== a), 'three other seeds all gave the same text');
  });

  test('cancel mid-stream: the request is aborted in the engine (visible in /metrics)', async () => {
    const aborts = `actorserve:request_success_total{finished_reason="abort",model_name="tiny"}`;
    const before = await metric(server.baseURL, aborts);
    const stream = await client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 450, ignore_eos: true,
      stream: true });
    let seen = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0].text && ++seen === 3) break; // leaving the loop aborts the HTTP request
    }
    await waitFor(async () => (await metric(server.baseURL, aborts)) === before + 1, 3000, 'the abort in /metrics');
    await waitFor(async () => (await metric(server.baseURL, 'actorserve:num_requests_running{model_name="tiny"}')) === 0,
      3000, 'no running requests');
    const generated = await metric(server.baseURL, 'actorserve:generation_tokens_total{model_name="tiny"}');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await metric(server.baseURL, 'actorserve:generation_tokens_total{model_name="tiny"}'), generated,
      'tokens are still being generated after the cancel');
  });

  test('64 concurrent streams all complete with the right token counts', async () => {
    const streams = Array.from({ length: 64 }, async (_, i) => {
      const maxTokens = 8 + (i % 9);
      const stream = await client.chat.completions.create({ model: 'tiny', ignore_eos: true, max_tokens: maxTokens,
        seed: i, logprobs: true, stream: true, stream_options: { include_usage: true },
        messages: [{ role: 'user', content: `request ${i}` }] });
      let tokens = 0;
      let finish = null;
      let usage = null;
      for await (const chunk of stream) {
        for (const c of chunk.choices) {
          tokens += c.logprobs?.content?.length ?? 0;
          finish = c.finish_reason ?? finish;
        }
        if (chunk.usage) usage = chunk.usage;
      }
      return { maxTokens, tokens, finish, usage };
    });
    const results = await Promise.all(streams);
    for (const r of results) {
      assert.equal(r.tokens, r.maxTokens);
      assert.equal(r.finish, 'length');
      assert.equal(r.usage.completion_tokens, r.maxTokens);
    }
  });
});
