// serve --chat-template through the real server: a file or the template text replaces the
// model's template (the prompt a chat completion counts and /tokenize renders both change),
// and a template that does not compile stops the start with a clear error.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { executable, startServer } from './lib/server.mjs';
import { post } from './lib/http.mjs';

const run = promisify(execFile);
const custom = "{{ bos_token }}{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}" +
  '{% if add_generation_prompt %}### answer:{% endif %}';
const messages = [{ role: 'user', content: 'hello there' }];

async function renderedPrompt(server) {
  const tokens = (await post(server.baseURL, '/tokenize', JSON.stringify({ messages }))).json.tokens;
  const text = (await post(server.baseURL, '/detokenize', JSON.stringify({ tokens }))).json.prompt;
  const client = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: 'unused', maxRetries: 0 });
  const chat = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 1 });
  assert.equal(chat.usage.prompt_tokens, tokens.length);
  return { text, promptTokens: chat.usage.prompt_tokens };
}

describe('--chat-template', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'actorserve-template-'));
  const file = path.join(dir, 'custom.jinja');
  fs.writeFileSync(file, custom);
  const servers = [];
  after(async () => {
    for (const s of servers) await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a file, and the same template given as text, replace the model template', async () => {
    servers.push(await startServer());
    servers.push(await startServer(['--chat-template', file]));
    servers.push(await startServer(['--chat-template', custom]));
    const [model, fromFile, fromText] = await Promise.all(servers.map(renderedPrompt));
    assert.equal(model.text, '<|bos|><|user|>\nhello there<|end|>\n<|assistant|>\n');
    assert.equal(fromFile.text, '<|bos|>### user: hello there\n### answer:');
    assert.deepEqual(fromText, fromFile);
    assert.notEqual(fromFile.promptTokens, model.promptTokens);
  });

  test('a template that does not compile fails the start', async () => {
    for (const arg of ['{% for m in messages %}{{ m.content }}', '/no/such/template.jinja']) {
      const started = Date.now();
      const err = await run(executable, ['serve', '--port', '0', '--chat-template', arg]).then(
        () => assert.fail('serve started'), (e) => e);
      assert.equal(err.code, 1);
      assert.match(err.stderr, /error: --chat-template/);
      assert.match(err.stderr, arg.startsWith('/') ? /no such file/ : /does not compile/);
      assert.ok(Date.now() - started < 10000);
    }
  });
});
