#pragma once
// OpenAI request bodies -> native structs. Parsing checks every field's type and OpenAI's
// range and throws api_error (OpenAI-shaped, with the HTTP status) on the first problem. Only
// what needs the tokenizer is left for later: `check_context` after tokenization.
//
// JSON stays in the gateway: the engine gets a generate_request built from these structs.
// The chat fields the chat template consumes verbatim (tools, tool_choice, a message's
// tool_calls, chat_template_kwargs) are kept as validated JSON values for the template.

#include "gateway/api_error.hpp"
#include "gateway/tool_parser.hpp"
#include "model/sampling.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace actorserve::gateway {

/// What a request is checked against: the served model and the server's limits.
struct request_limits {
  std::vector<std::string> model_names; // accepted values of `model` (the first is the default)
  int64_t vocab_size = 0;               // token ids must be below this (0: unchecked)
  int32_t max_n = 128;                  // OpenAI's limit on `n`
  int32_t max_logprobs = 20;            // top alternatives per token (vLLM's default max_logprobs)
  size_t max_stop_strings = 16;
  size_t max_prompts = 256;             // prompts in one /v1/completions request
  sampling_params defaults;             // what a request does not set (the model's generation_config)
  std::optional<tool_parser_kind> tool_parser; // --tool-call-parser: tool calls can be returned
  bool enable_auto_tool_choice = false;        // --enable-auto-tool-choice: tool_choice "auto" allowed
  /// false: tools are only shown to the chat template, no output is parsed (POST /tokenize), so
  /// tool_choice is not held to the server's tool-call flags.
  bool check_tool_choice = true;
};

/// Parameters common to both APIs, in native form.
struct generation_params {
  std::string model;
  /// nullopt: as many as the context leaves (chat's default, and completions' explicit null).
  std::optional<int32_t> max_tokens;
  int32_t min_tokens = 0;
  int32_t n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a final chunk with usage
  sampling_params sampling;    // logprobs = -1: none; k >= 0: chosen token plus top k
  bool has_seed = false;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool include_stop_str_in_output = false;
  bool ignore_eos = false;
  bool skip_special_tokens = true;
  std::string user;

  bool wants_logprobs() const { return sampling.logprobs >= 0; }
};

/// One prompt of /v1/completions: text to tokenize, or token ids sent by the client.
struct prompt_input {
  bool is_tokens = false;
  std::string text;
  std::vector<int32_t> token_ids;
};

struct completion_request {
  generation_params params;
  std::vector<prompt_input> prompts; // choices are numbered prompt_index * n + choice
  bool echo = false;                 // prefix each choice's text with its prompt
};

struct chat_message {
  std::string role;         // system, developer, user, assistant, tool
  std::string content;      // text parts joined; empty when content was null
  bool has_content = true;  // false: content was null (an assistant message with tool_calls)
  std::string name;
  std::string tool_call_id;
  /// null, or the assistant's tool_calls array as sent, except that each call's `arguments`
  /// JSON string is parsed into an object (vLLM does the same for the chat template).
  nlohmann::ordered_json tool_calls;
  /// An assistant's earlier chain of thought as the client sends it back (`reasoning_content`
  /// or `reasoning`, what --reasoning-parser returned); templates such as Qwen3's re-emit it
  /// as <think>...</think> for the turns after the last user query.
  std::optional<std::string> reasoning;
};

struct chat_request {
  generation_params params;
  std::vector<chat_message> messages;
  nlohmann::ordered_json tools;        // null or an array of {"type":"function","function":{...}}
  nlohmann::ordered_json tool_choice;  // null, "none", "auto", "required" or {"type":"function",...}
  nlohmann::ordered_json chat_template_kwargs; // null or an object, passed to the template
  /// How the output is read for tool calls: set when the request has tools, tool_choice is not
  /// "none" and the server has a --tool-call-parser (vLLM's rules; see parse_chat_request).
  std::optional<tool_parser_kind> tool_parser;
  bool add_generation_prompt = true;
  bool continue_final_message = false;
};

/// Parses JSON text, keeping object keys in the order sent (see json_parse.hpp); malformed
/// JSON and invalid UTF-8 throw 400.
nlohmann::ordered_json parse_json_body(std::string_view body);

/// The request's `model` checked against the served names (404 model_not_found when unknown);
/// the first served name when absent.
std::string resolve_model(const nlohmann::ordered_json& body, const request_limits& limits);

completion_request parse_completion_request(const nlohmann::ordered_json& body, const request_limits& limits);
chat_request parse_chat_request(const nlohmann::ordered_json& body, const request_limits& limits);

/// After tokenization: the prompt must leave room in the context, and prompt + max_tokens must
/// fit in it. Returns the effective max_tokens (the rest of the context when not given).
/// `prompt_param` names the field in messages ("prompt" or "messages").
int32_t check_context(size_t num_prompt_tokens, std::optional<int32_t> max_tokens, int32_t max_model_len,
                      const char* prompt_param);

} // namespace actorserve::gateway
