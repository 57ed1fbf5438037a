// Tools through the real server with the official OpenAI client: tool_choice validation (vLLM's
// rules on --enable-auto-tool-choice / --tool-call-parser), the tools reaching the prompt in
// the client's key order (the prompt's token count equals that of `actorserve chat-template`
// + `actorserve tokenize` on the same conversation; the CLI is checked against Python's jinja2
// in tests/chat_template), and streams with tools that the SDK's helpers accept. The random
// tiny model never writes a tool call; the parsing of calls out of the output is covered by
// tests/gateway (scripted token streams) and by tool_call_format.test.mjs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { executable, startServer } from './lib/server.mjs';

// A Qwen-like template that prints each tool with tojson, and tool calls with their arguments.
const template = `{{ bos_token }}{% if tools %}<|system|>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}<|end|>
{% endif %}{% for message in messages %}<|{{ message.role }}|>
{% if message.content %}{{ message.content }}{% endif %}{% if message.tool_calls %}{% for call in message.tool_calls %}{{ {"name": call.function.name, "arguments": call.function.arguments} | tojson }}{% endfor %}{% endif %}<|end|>
{% endfor %}{% if add_generation_prompt %}<|assistant|>
{% endif %}`;
const prepareModel = (dir) => fs.writeFileSync(path.join(dir, 'chat_template.jinja'), template);

let tooling; // --enable-auto-tool-choice --tool-call-parser hermes
let plain;   // no tool flags
let client;
let plainClient;

const connect = (s) => new OpenAI({ baseURL: `${s.baseURL}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });

before(async () => {
  [tooling, plain] = await Promise.all([
    startServer(['--enable-auto-tool-choice', '--tool-call-parser', 'hermes'], { prepareModel }),
    startServer([], { prepareModel }),
  ]);
  client = connect(tooling);
  plainClient = connect(plain);
});
after(async () => {
  await Promise.all([tooling, plain].filter(Boolean).map((s) => s.stop()));
});

// Keys deliberately out of sorted order at every level.
const tools = [{
  function: {
    parameters: { type: 'object', required: ['city'], properties: { unit: { enum: ['c', 'f'], type: 'string' }, city: { type: 'string' } } },
    name: 'get_weather',
    description: 'Current weather.',
  },
  type: 'function',
}];
const messages = [
  { role: 'user', content: 'Weather in Paris?' },
  { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"unit": "c", "city": "Paris"}' } }] },
  { role: 'tool', tool_call_id: 'call_1', content: '21' },
  { role: 'user', content: 'And tomorrow?' },
];
const greedy = { model: 'tiny', temperature: 0, max_tokens: 3 };

// The prompt as the CLI renders it (tool call arguments as objects, which is what the server
// makes of OpenAI's JSON strings, as vLLM does), and its token count.
function cliPromptTokens(model, body) {
  const prompt = execFileSync(executable, ['chat-template', '--tokenizer', model, '--add-generation-prompt'],
    { input: JSON.stringify(body) }).toString();
  const ids = JSON.parse(execFileSync(executable, ['tokenize', '--tokenizer', model], { input: prompt }).toString());
  return { prompt, tokens: ids.length };
}
const withObjectArguments = (msgs) => msgs.map((m) => (m.tool_calls
  ? { ...m, tool_calls: m.tool_calls.map((c) => ({ ...c, function: { ...c.function, arguments: JSON.parse(c.function.arguments) } })) }
  : m));

describe('tools', () => {
  test('the rendered prompt holds the tools in the client key order, exactly as the CLI renders it', async () => {
    const r = await client.chat.completions.create({ ...greedy, messages, tools });
    const cli = cliPromptTokens(tooling.model, { messages: withObjectArguments(messages), tools });
    assert.ok(cli.prompt.includes('{"function": {"parameters": {"type": "object", "required": ["city"], "properties": {"unit"'), cli.prompt);
    assert.ok(cli.prompt.includes('{"name": "get_weather", "arguments": {"unit": "c", "city": "Paris"}}'), cli.prompt);
    assert.equal(r.usage.prompt_tokens, cli.tokens);
    // Without tools (or with tool_choice "none", which hides them) the prompt is shorter.
    const none = await plainClient.chat.completions.create({ ...greedy, messages, tools, tool_choice: 'none' });
    const bare = cliPromptTokens(plain.model, { messages: withObjectArguments(messages) });
    assert.equal(none.usage.prompt_tokens, bare.tokens);
    assert.ok(bare.tokens < cli.tokens);
  });

  test('a stream with tools completes through the SDK helper; no call, so finish_reason is not tool_calls', async () => {
    const stream = client.chat.completions.stream({ ...greedy, messages, tools, tool_choice: 'auto', max_tokens: 5 });
    const final = await stream.finalChatCompletion();
    assert.equal(final.choices[0].finish_reason, 'length');
    assert.equal(typeof final.choices[0].message.content, 'string');
    assert.ok(!final.choices[0].message.tool_calls || final.choices[0].message.tool_calls.length === 0);
  });

  const expect400 = async (c, body, param, pattern) => {
    await assert.rejects(c.chat.completions.create({ ...greedy, messages, ...body }), (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.param, param);
      if (pattern) assert.match(e.message, pattern);
      return true;
    });
  };

  test('tool_choice validation: clear 400s', async () => {
    await expect400(client, { tools, tool_choice: 'sometimes' }, 'tool_choice', /'none', 'auto', and 'required'/);
    await expect400(client, { tools, tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice', /no tool named 'nope'/);
    await expect400(client, { tool_choice: 'required' }, 'tool_choice', /needs 'tools'/);
    await expect400(client, { tools: { type: 'function' } }, 'tools', /expected an array/);
    await expect400(client, { tools: [{ type: 'function', function: { description: 'x' } }] }, 'tools[0].function.name');
    // The server without the flags: tools imply tool_choice "auto", which needs them.
    await expect400(plainClient, { tools }, 'tool_choice', /--enable-auto-tool-choice and --tool-call-parser/);
    await expect400(plainClient, { tools, tool_choice: 'required' }, 'tool_choice', /--tool-call-parser/);
    // With the flags every form is accepted.
    for (const tool_choice of ['auto', 'required', 'none', { type: 'function', function: { name: 'get_weather' } }]) {
      const r = await client.chat.completions.create({ ...greedy, messages, tools, tool_choice });
      assert.equal(r.choices[0].finish_reason, 'length', JSON.stringify(tool_choice));
    }
  });

  test('a tool call argument string that is not JSON is a 400', async () => {
    const bad = [messages[0], { ...messages[1], tool_calls: [{ ...messages[1].tool_calls[0], function: { name: 'get_weather', arguments: '{"city": ' } }] }];
    await assert.rejects(client.chat.completions.create({ ...greedy, messages: bad, tools }), (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.param, 'messages[1].tool_calls[0].function.arguments');
      return true;
    });
  });
});
