// --reasoning-parser with the official OpenAI client. Through the real server: the tiny random
// model never writes </think>, so with deepseek_r1 its whole output is reasoning (content null),
// exactly the text a server without the parser returns as content, streamed and not; with
// qwen3 it is content, unless the rendered prompt ends inside <think> (a template that opens
// it on chat_template_kwargs.enable_thinking, as Qwen3-2507 thinking templates always do).
// Outputs with both parts come from `actorserve tool-calls --reasoning-parser`, which runs a
// given model output through the server's own response assembly; the SDK reads those bytes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { assembled, clientAnswering } from './lib/assembled.mjs';
import { executable, startServer } from './lib/server.mjs';

const template = `{{ bos_token }}{% for message in messages %}<|{{ message.role }}|>
{{ message.content }}<|end|>
{% endfor %}{% if add_generation_prompt %}<|assistant|>
{% if enable_thinking %}<think>
{% endif %}{% endif %}`;
const prepareModel = (dir) => fs.writeFileSync(path.join(dir, 'chat_template.jinja'), template);

let plain; // no parser
let r1;    // --reasoning-parser deepseek_r1
let qwen3; // --reasoning-parser qwen3
const connect = (s) => new OpenAI({ baseURL: `${s.baseURL}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });

before(async () => {
  [plain, r1, qwen3] = await Promise.all([
    startServer([], { prepareModel }),
    startServer(['--reasoning-parser', 'deepseek_r1'], { prepareModel }),
    startServer(['--reasoning-parser', 'qwen3'], { prepareModel }),
  ]);
});
after(async () => {
  await Promise.all([plain, r1, qwen3].filter(Boolean).map((s) => s.stop()));
});

const request = { model: 'tiny', messages: [{ role: 'user', content: 'What is 2 + 2?' }], temperature: 0, max_tokens: 12 };

// A streamed chat completion, its fields concatenated as a client reads them.
async function streamed(client, body) {
  const out = { reasoning_content: '', reasoning: '', content: '', finish: null, usage: null };
  const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  for await (const chunk of stream) {
    if (chunk.usage) out.usage = chunk.usage;
    for (const c of chunk.choices) {
      const d = c.delta;
      assert.equal(d.reasoning_content, d.reasoning); // both names, always together
      out.reasoning_content += d.reasoning_content ?? '';
      out.reasoning += d.reasoning ?? '';
      out.content += d.content ?? '';
      out.finish = c.finish_reason ?? out.finish;
    }
  }
  return out;
}

describe('reasoning parser through the server', () => {
  test('deepseek_r1: an output without </think> is all reasoning, streamed or not', async () => {
    const reference = await connect(plain).chat.completions.create(request);
    const text = reference.choices[0].message.content;
    assert.ok(text.length > 0);
    assert.ok(!text.includes('</think>'));
    assert.equal(reference.choices[0].message.reasoning_content, undefined); // no parser: no fields

    const r = await connect(r1).chat.completions.create(request);
    const message = r.choices[0].message;
    assert.equal(message.reasoning_content, text.replace(/^\n+/, '').replace(/\n+$/, ''));
    assert.equal(message.reasoning, message.reasoning_content);
    assert.equal(message.content, null);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, reference.usage.completion_tokens); // the reasoning's tokens count

    const s = await streamed(connect(r1), request);
    assert.equal(s.reasoning_content, message.reasoning_content);
    assert.equal(s.reasoning, message.reasoning_content);
    assert.equal(s.content, '');
    assert.equal(s.finish, 'length');
    assert.equal(s.usage.completion_tokens, r.usage.completion_tokens);
  });

  test('qwen3: content unless the prompt opens <think>', async () => {
    const client = connect(qwen3);
    const r = await client.chat.completions.create(request);
    const reference = await connect(plain).chat.completions.create(request);
    assert.equal(r.choices[0].message.content, reference.choices[0].message.content);
    assert.equal(r.choices[0].message.reasoning_content, null);
    assert.equal(r.choices[0].message.reasoning, null);
    const s = await streamed(client, request);
    assert.equal(s.content, r.choices[0].message.content);
    assert.equal(s.reasoning_content, '');

    const thinking = { ...request, chat_template_kwargs: { enable_thinking: true } };
    const t = await client.chat.completions.create(thinking);
    assert.equal(typeof t.choices[0].message.reasoning_content, 'string');
    assert.ok(t.choices[0].message.reasoning_content.length > 0);
    assert.equal(t.choices[0].message.content, null);
    const ts = await streamed(client, thinking);
    assert.equal(ts.reasoning_content, t.choices[0].message.reasoning_content);
    assert.equal(ts.content, '');
  });

  test('completions are untouched', async () => {
    const body = { model: 'tiny', prompt: 'Two plus two', temperature: 0, max_tokens: 8 };
    const a = await connect(r1).completions.create(body);
    const b = await connect(plain).completions.create(body);
    assert.equal(a.choices[0].text, b.choices[0].text);
    assert.equal(a.choices[0].reasoning_content, undefined);
  });

  test('an unknown parser name stops the server at start with the known names', () => {
    const r = spawnSync(executable, ['serve', '--reasoning-parser', 'deepseek', '--port', '0'], { timeout: 30000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr.toString(), /--reasoning-parser deepseek: unknown parser \(known: deepseek_r1, qwen3\)/);
  });
});

// The SDK reading responses with both parts (bytes from the server's response assembly).
const served = (parser, output, options) => assembled(['--reasoning-parser', parser], output, options);

describe('reasoning output format', () => {
  const cases = {
    deepseek_r1: ['Two and two.\nThat makes 4.\n</think>\n\nThe answer is **4**.', 'Two and two.\nThat makes 4.', 'The answer is **4**.'],
    qwen3: ['<think>\nTwo and two make 4.\n</think>\n\nIt is 4.', 'Two and two make 4.', 'It is 4.'],
  };
  for (const [parser, [output, reasoning, content]] of Object.entries(cases)) {
    test(`${parser}: reasoning_content, reasoning and content, streamed (pieces of 1 to 9 bytes) or not`, async () => {
      const r = await clientAnswering(served(parser, output), 'application/json').chat.completions.create(request);
      assert.equal(r.choices[0].message.reasoning_content, reasoning);
      assert.equal(r.choices[0].message.reasoning, reasoning);
      assert.equal(r.choices[0].message.content, content);
      for (let pieceBytes = 1; pieceBytes <= 9; ++pieceBytes) {
        const sse = served(parser, output, { stream: true, pieceBytes });
        assert.ok(!sse.includes('think>') && !sse.includes('<th') && !sse.includes('</'), sse);
        const s = await streamed(clientAnswering(sse, 'text/event-stream'), request);
        assert.deepEqual([s.reasoning_content, s.reasoning, s.content, s.finish], [reasoning, reasoning, content, 'stop']);
      }
    });
  }
});
