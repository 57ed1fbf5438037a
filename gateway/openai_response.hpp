#pragma once
// Response bodies and stream chunks exactly as OpenAI sends them, for /v1/completions
// ("text_completion") and /v1/chat/completions ("chat.completion", "chat.completion.chunk"),
// with both APIs' logprobs shapes. Everything returned is compact JSON text (one line).

#include "actors/engine.hpp"
#include "gateway/tool_parser.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace actorserve::gateway {

/// The fields every object of one response shares.
struct response_meta {
  std::string id;     // "cmpl-..." or "chatcmpl-..."
  int64_t created = 0; // unix seconds
  std::string model;
  bool include_usage = false; // streaming: every chunk carries "usage": null, the last one the totals
  /// Chat with a --reasoning-parser: every message has reasoning_content and reasoning (vLLM's
  /// newer name), null when the output has no reasoning part.
  bool reasoning_fields = false;
};

/// "<prefix>-" + 32 random hex digits.
std::string make_response_id(const char* prefix);
int64_t unix_now();

/// A token's text for the logprobs fields (its piece, decoded on its own).
using token_text_fn = std::function<std::string(int32_t token)>;

/// One choice's output: a whole choice (non-streaming) or the part one chunk carries.
struct choice_output {
  int32_t index = 0;
  std::string text;
  std::vector<token_logprob> logprobs; // one per token when logprobs were requested
  finish_reason finish = finish_reason::none;
  std::string stop_str;   // stop_reason: the stop string that ended the choice
  int32_t stop_token = -1; // or the stop token id
  /// Chat with a --reasoning-parser: the reasoning part (whole, or this chunk's piece); `text`
  /// is then the content after it. nullopt: no reasoning (a null field; no key in a chunk).
  std::optional<std::string> reasoning;
  std::vector<tool_call> tool_calls; // chat, non-streaming: the calls parsed out of the text
  bool tools_called = false; // chat: the model called tools, so a stop/length finish is "tool_calls"
};

struct usage_totals {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0; // prompt tokens served from the prefix cache
};

/// "stop", "length", "abort"; empty for none (serialized as null).
std::string finish_reason_text(finish_reason r);

// ---- /v1/completions ----

/// The whole response. `text_offset_base[i]` is where choice i's generated text starts in its
/// returned text (the prompt's length with echo, else 0).
std::string completion_response(const response_meta& meta, const std::vector<choice_output>& choices,
                                const usage_totals& usage, bool logprobs, const token_text_fn& token_text,
                                const std::vector<size_t>& text_offset_base = {});
/// One streamed chunk for one choice; `text_offset` is where this chunk's text starts.
std::string completion_chunk(const response_meta& meta, const choice_output& delta, bool logprobs,
                             const token_text_fn& token_text, size_t text_offset);

// ---- /v1/chat/completions ----

std::string chat_response(const response_meta& meta, const std::vector<choice_output>& choices,
                          const usage_totals& usage, bool logprobs, const token_text_fn& token_text);
/// The first chunk of a choice: delta {"role": "assistant", "content": ""}.
std::string chat_role_chunk(const response_meta& meta, int32_t index);
/// Content and/or finish: delta {"content": ...} (or {} on a finish-only chunk); a piece of
/// reasoning goes in "reasoning_content" and "reasoning" of the same delta.
std::string chat_chunk(const response_meta& meta, const choice_output& delta, bool logprobs,
                       const token_text_fn& token_text);
/// One streamed tool call of choice `index`, as OpenAI streams one: `header` gives the chunk
/// that opens call number `call_index` (id, type, name, empty arguments), else the chunk with
/// its arguments.
std::string chat_tool_call_chunk(const response_meta& meta, int32_t index, int32_t call_index, const tool_call& call,
                                 bool header);

// ---- both ----

/// The final chunk of stream_options.include_usage: "choices": [] and the totals.
/// `object` is "text_completion" or "chat.completion.chunk".
std::string usage_chunk(const response_meta& meta, const char* object, const usage_totals& usage);

/// GET /v1/models.
std::string models_response(const std::vector<std::string>& names, int64_t created, int32_t max_model_len,
                             const std::string& root);

} // namespace actorserve::gateway
