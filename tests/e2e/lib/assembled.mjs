// Responses for model outputs the tiny test models never write (tool calls, reasoning): the
// bytes come from `actorserve tool-calls`, which runs a given output through the server's own
// response assembly (the code /v1/chat/completions uses), and reach the OpenAI SDK through a
// fetch that returns them as the HTTP body.
import { execFileSync } from 'node:child_process';
import OpenAI from 'openai';
import { executable } from './server.mjs';

/// The chat response (or with `stream` the SSE bytes) for `output`; `parserArgs` names the
/// parsers, e.g. ['--parser', 'hermes'] or ['--reasoning-parser', 'qwen3'].
export function assembled(parserArgs, output, { stream = false, pieceBytes = 3 } = {}) {
  const args = ['tool-calls', ...parserArgs, '--piece-bytes', String(pieceBytes)];
  if (stream) args.push('--stream');
  return execFileSync(executable, args, { input: output }).toString();
}

/// A client whose every request is answered with `body`.
export function clientAnswering(body, contentType) {
  return new OpenAI({
    baseURL: 'http://actorserve.invalid/v1',
    apiKey: 'unused',
    maxRetries: 0,
    fetch: async () => new Response(body, { status: 200, headers: { 'content-type': contentType } }),
  });
}
