// Raw SSE bytes with curl, probes, client disconnects, and SIGTERM: drain, then exit 0.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { metric, sleep, startServer, waitFor } from './lib/server.mjs';

const run = promisify(execFile);

describe('wire format and probes', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { if (server) await server.stop(); });

  test('curl sees exactly OpenAI SSE framing: data lines, blank lines, [DONE]', async () => {
    const body = JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5,
      ignore_eos: true, stream: true, stream_options: { include_usage: true } });
    const { stdout } = await run('curl', ['-sS', '-N', '-D', '-', '-H', 'Content-Type: application/json', '-d', body,
      `${server.baseURL}/v1/chat/completions`]);
    const split = stdout.indexOf('\r\n\r\n');
    const headers = stdout.slice(0, split).toLowerCase();
    const payload = stdout.slice(split + 4);
    assert.match(headers, /^http\/1\.1 200/);
    assert.match(headers, /content-type: text\/event-stream/);
    assert.match(headers, /cache-control: no-cache/);
    assert.match(payload, /^(data: [^\n]+\n\n)+$/); // nothing but data events (curl removed the chunking)
    const events = payload.split('\n\n').filter(Boolean).map((e) => e.slice('data: '.length));
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.deepEqual(Object.keys(chunks[0]), ['id', 'object', 'created', 'model', 'choices', 'usage']);
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
    assert.ok(chunks.every((c) => c.id === chunks[0].id));
    assert.equal(chunks.at(-2).choices[0].finish_reason, 'length');
    assert.deepEqual(chunks.at(-2).choices[0].delta, {});
    assert.equal(chunks.at(-1).usage.completion_tokens, 5);
    assert.equal(chunks.at(-1).usage.total_tokens, chunks.at(-1).usage.prompt_tokens + 5);
  });

  test('curl completions without stream gets one JSON object', async () => {
    const { stdout } = await run('curl', ['-sS', '-d', JSON.stringify({ prompt: 'x', max_tokens: 2, ignore_eos: true }),
      `${server.baseURL}/v1/completions`]);
    const r = JSON.parse(stdout);
    assert.equal(r.object, 'text_completion');
    assert.equal(r.usage.completion_tokens, 2);
  });

  test('/health, /ready, /version and /metrics names', async () => {
    assert.deepEqual(await (await fetch(`${server.baseURL}/health`)).json(), { status: 'ok' });
    assert.deepEqual(await (await fetch(`${server.baseURL}/ready`)).json(), { ready: true, status: 'ready' });
    assert.ok((await (await fetch(`${server.baseURL}/version`)).json()).version);
    const text = await (await fetch(`${server.baseURL}/metrics`)).text();
    for (const name of ['num_requests_running', 'num_requests_waiting', 'kv_cache_usage_perc',
      'prefix_cache_queries_total', 'prefix_cache_hits_total', 'num_preemptions_total',
      'time_to_first_token_seconds_bucket', 'inter_token_latency_seconds_bucket', 'e2e_request_latency_seconds_count',
      'request_queue_time_seconds_sum', 'prompt_tokens_total', 'generation_tokens_total']) {
      assert.match(text, new RegExp(`^actorserve:${name}\\{[^}]*model_name="tiny"[^}]*\\} `, 'm'), name);
    }
    assert.ok(await metric(server.baseURL, 'actorserve:prompt_tokens_total{model_name="tiny"}') > 0);
  });

  test('a non-streaming client that disconnects is cancelled too', async () => {
    const aborts = 'actorserve:request_success_total{finished_reason="abort",model_name="tiny"}';
    const before = await metric(server.baseURL, aborts);
    const controller = new AbortController();
    const pending = fetch(`${server.baseURL}/v1/completions`, { method: 'POST', signal: controller.signal,
      body: JSON.stringify({ prompt: 'x', max_tokens: 450, ignore_eos: true }) }).catch(() => null);
    await sleep(60);
    controller.abort();
    await pending;
    await waitFor(async () => (await metric(server.baseURL, aborts)) === before + 1, 3000, 'the abort in /metrics');
  });
});

describe('SIGTERM', () => {
  test('drains: /ready 503, new requests 503, the in-flight stream finishes, exit 0', async () => {
    const server = await startServer(['--shutdown-timeout', '20', '--max-model-len', '4096'], { maxPosition: 4096 });
    try {
      const res = await fetch(`${server.baseURL}/v1/completions`, { method: 'POST',
        body: JSON.stringify({ prompt: 'x', max_tokens: 1500, ignore_eos: true, stream: true,
          stream_options: { include_usage: true } }) });
      const reader = res.body.getReader();
      let text = new TextDecoder().decode((await reader.read()).value);
      server.proc.kill('SIGTERM');
      await waitFor(async () => (await fetch(`${server.baseURL}/ready`)).status === 503, 3000, '/ready 503');
      const refused = await fetch(`${server.baseURL}/v1/completions`, { method: 'POST',
        body: JSON.stringify({ prompt: 'x', max_tokens: 2 }) });
      assert.equal(refused.status, 503);
      assert.equal((await refused.json()).error.code, 'shutting_down');
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      assert.ok(text.endsWith('data: [DONE]\n\n'), 'the stream was cut');
      const usage = JSON.parse(text.split('\n\n').filter(Boolean).at(-2).slice(6)).usage;
      assert.equal(usage.completion_tokens, 1500);
      const { code, signal } = await server.exited;
      assert.equal(signal, null);
      assert.equal(code, 0);
    } finally {
      await server.stop();
    }
  });

  test('past --shutdown-timeout the rest is aborted and the process still exits 0', async () => {
    const server = await startServer(['--shutdown-timeout', '0.3', '--max-model-len', '8192'], { maxPosition: 8192 });
    try {
      const res = await fetch(`${server.baseURL}/v1/completions`, { method: 'POST',
        body: JSON.stringify({ prompt: 'x', max_tokens: 8000, ignore_eos: true, stream: true }) });
      const reader = res.body.getReader();
      await reader.read();
      const t0 = Date.now();
      server.proc.kill('SIGTERM');
      const { code } = await server.exited;
      assert.equal(code, 0);
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms to stop`);
      let text = '';
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ done: true }));
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      assert.ok(!text.includes('"finish_reason":"length"'), 'the long request was not cut short');
    } finally {
      await server.stop();
    }
  });
});
