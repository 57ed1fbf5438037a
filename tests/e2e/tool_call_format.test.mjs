// The OpenAI SDK reads the tool calls actorserve sends. The tiny test models never write a tool
// call, so the bytes come from `actorserve tool-calls`, which runs a model output through the
// server's own response assembly (the code /v1/chat/completions uses) with a --tool-call-parser;
// the SDK gets them through a fetch that returns them as the HTTP body.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assembled, clientAnswering } from './lib/assembled.mjs';

const served = (parser, output, options) => assembled(['--parser', parser], output, options);

const tools = [
  { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } },
];
const request = { model: 'model', messages: [{ role: 'user', content: 'Weather and time in Paris?' }], tools };

const outputs = {
  hermes: 'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>\n'
    + '<tool_call>\n{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}\n</tool_call>',
  llama3_json: '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris", "unit": "c"}}; '
    + '{"name": "get_time", "parameters": {"tz": "Europe/Paris"}}',
  mistral: 'Checking. [TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}, '
    + '{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}]',
  // Mistral tokenizers v11+ (Mistral-Small-3.2, Magistral, Devstral): the marker per call
  'mistral (v11)': 'Checking. [TOOL_CALLS]get_weather[ARGS]{"city": "Paris", "unit": "c"}'
    + '[TOOL_CALLS]get_time[ARGS]{"tz": "Europe/Paris"}',
};
const expectedCalls = [
  { name: 'get_weather', arguments: { city: 'Paris', unit: 'c' } },
  { name: 'get_time', arguments: { tz: 'Europe/Paris' } },
];

describe('tool call format', () => {
  for (const [label, output] of Object.entries(outputs)) {
    const parser = label.split(' ')[0];
    test(`${label}: chat.completions.create gets message.tool_calls`, async () => {
      const r = await clientAnswering(served(parser, output), 'application/json').chat.completions.create(request);
      const choice = r.choices[0];
      assert.equal(choice.finish_reason, 'tool_calls');
      assert.equal(choice.message.content, parser === 'llama3_json' ? null : 'Checking.');
      assert.deepEqual(choice.message.tool_calls.map((c) => ({ name: c.function.name, arguments: JSON.parse(c.function.arguments) })), expectedCalls);
      for (const c of choice.message.tool_calls) {
        assert.equal(c.type, 'function');
        assert.match(c.id, parser === 'mistral' ? /^[A-Za-z0-9]{9}$/ : /^chatcmpl-tool-[0-9a-f]{32}$/);
      }
      // The arguments keep the model's key order.
      assert.equal(choice.message.tool_calls[0].function.arguments, '{"city":"Paris","unit":"c"}');
    });

    test(`${label}: the SDK's stream helper assembles the streamed calls`, async () => {
      const sse = served(parser, output, { stream: true });
      const stream = clientAnswering(sse, 'text/event-stream').chat.completions.stream(request);
      const done = [];
      stream.on('tool_calls.function.arguments.done', (e) => done.push({ name: e.name, arguments: e.parsed_arguments ?? JSON.parse(e.arguments) }));
      const final = await stream.finalChatCompletion();
      const choice = final.choices[0];
      assert.equal(choice.finish_reason, 'tool_calls');
      assert.deepEqual(choice.message.tool_calls.map((c) => ({ name: c.function.name, arguments: JSON.parse(c.function.arguments) })), expectedCalls);
      assert.deepEqual(done, expectedCalls);
      assert.equal(choice.message.content ?? '', parser === 'llama3_json' ? '' : 'Checking.');
    });
  }

  test('malformed tool JSON reaches the SDK as plain content', async () => {
    const bad = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"\n</tool_call>';
    const r = await clientAnswering(served('hermes', bad), 'application/json').chat.completions.create(request);
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.choices[0].message.content, bad);
    assert.deepEqual(r.choices[0].message.tool_calls, []);
    const s = clientAnswering(served('hermes', bad, { stream: true }), 'text/event-stream').chat.completions.stream(request);
    const final = await s.finalChatCompletion();
    assert.equal(final.choices[0].message.content, bad);
    assert.equal(final.choices[0].finish_reason, 'stop');
  });
});
