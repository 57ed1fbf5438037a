#pragma once
// Turns a request's engine events into what the client receives: SSE chunks as they come
// (streaming) or one JSON body at the end, for both APIs. Pure logic over `request_output`
// values, so the exact bytes are unit-tested without an engine or a socket.
//
// A /v1/completions request with several prompts runs as one engine request per prompt;
// prompt p's choice i is the response's choice p * n + i (OpenAI's numbering).

#include "gateway/api_error.hpp"
#include "gateway/openai_response.hpp"
#include "gateway/reasoning_parser.hpp"

#include <optional>
#include <string>
#include <vector>

namespace actorserve::gateway {

enum class api_kind { completion, chat };

struct assembler_options {
  api_kind kind = api_kind::completion;
  response_meta meta;
  bool stream = false;
  bool logprobs = false;
  int32_t n = 1;
  size_t num_prompts = 1;
  std::vector<std::string> echo_text; // completions with echo: each prompt's text (else empty)
  token_text_fn token_text;
  /// Chat: parse tool calls out of each choice's text (the request has tools and the server a
  /// --tool-call-parser); calls go out as tool_calls, the rest as content.
  std::optional<tool_parser_kind> tool_parser;
  /// Chat: split each choice's text into reasoning and content (--reasoning-parser); the tool
  /// parser then sees only the content.
  std::optional<reasoning_parser_kind> reasoning_parser;
  bool prompt_opens_reasoning = false; // the rendered prompt ends inside <think> (prompt_opens_reasoning)
};

/// The HTTP status and OpenAI error for a request the engine failed.
api_error engine_failure(engine_errc error, const std::string& message);

class response_assembler {
public:
  explicit response_assembler(assembler_options options);

  /// Bytes to send before any event: chat role chunks when streaming, else nothing.
  std::string start();
  /// One event of prompt `prompt`'s engine request; returns the SSE bytes to send now
  /// (empty when not streaming: the body comes from finish()).
  std::string on_event(size_t prompt, const request_output& event);
  /// True once every prompt's request has sent its final event.
  bool done() const { return num_finished_ == options_.num_prompts; }
  /// After done(): streaming: the usage chunk (with include_usage) and `data: [DONE]`;
  /// otherwise the whole JSON body (the error body if the request failed).
  std::string finish();

  const std::optional<api_error>& failure() const { return failure_; }
  usage_totals usage() const;
  /// The reason the request ended, for logs and metrics: "stop", "length", "abort" (any choice
  /// aborted), or "error".
  std::string summary_reason() const;

private:
  struct choice_state {
    choice_output output;     // accumulated (non-streaming) or the finish info (streaming)
    size_t text_offset = 0;   // completions logprobs: where the next text starts
    bool echoed = false;
    std::optional<tool_call_parser> tools; // streaming chat with a tool parser
    std::optional<reasoning_splitter> reasoning; // streaming chat with a reasoning parser
  };
  std::string stream_delta(size_t global_index, const choice_delta& d);

  assembler_options options_;
  std::vector<choice_state> choices_; // num_prompts * n
  std::vector<usage_counts> usage_;   // per prompt, the latest running totals
  std::vector<int32_t> cached_;       // per prompt, prefix-cache hits
  std::vector<bool> finished_;
  size_t num_finished_ = 0;
  std::optional<api_error> failure_;
};

} // namespace actorserve::gateway
