#pragma once
// Tool calls in model output, as vLLM's --tool-call-parser finds them:
//   hermes       <tool_call>{"name": ..., "arguments": {...}}</tool_call> (Qwen2.5, Qwen3, Hermes)
//   llama3_json  {"name": ..., "parameters"|"arguments": {...}} at the start of the output,
//                optionally after <|python_tag|>; several calls separated by ';' (Llama 3.1+)
//   mistral      [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...] (Mistral v3 tokenizers), or
//                [TOOL_CALLS]name[ARGS]{...}, the marker repeated for each call (v11+ tokenizers:
//                Mistral-Small-3.2, Magistral, Devstral)
//
// One parser per choice is fed the choice's text as it is generated and says what may be sent
// now: plain content, and whole tool calls. A call is released only once its JSON is complete
// and well formed, so output that merely looks like the start of a call is never lost: when it
// turns out malformed (or the output ends inside it) its text goes out as plain content. Text
// that could be the start of a marker (e.g. "<tool_c") is held back until it is decided.
// Non-streaming responses feed the whole text at once, so both modes give the same calls.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace actorserve::gateway {

enum class tool_parser_kind { hermes, llama3_json, mistral };

/// "hermes", "llama3_json", "mistral" -> the kind; nullopt for other names.
std::optional<tool_parser_kind> tool_parser_from_name(std::string_view name);
const char* tool_parser_name(tool_parser_kind kind);
/// The names accepted by --tool-call-parser, comma separated (for messages).
const char* tool_parser_names();
/// Whether the parser's marker is a special token that skip_special_tokens would remove from
/// the text (Mistral's [TOOL_CALLS]); requests then decode with skip_special_tokens off.
bool tool_parser_needs_special_tokens(tool_parser_kind kind);

/// A call found in the output. `arguments` is compact JSON text (an object, keys in the model's
/// order), what OpenAI's `function.arguments` carries.
struct tool_call {
  std::string id; // "chatcmpl-tool-<32 hex>", or 9 alphanumerics for mistral (its templates demand it)
  std::string name;
  std::string arguments;
};

/// A fresh id in the parser's format.
std::string make_tool_call_id(tool_parser_kind kind);

namespace detail {
/// Length of the longest suffix of `s` that is a proper prefix of `marker`: text that may still
/// become the marker and must be held back while streaming.
size_t partial_marker_suffix(std::string_view s, std::string_view marker);

/// Where the JSON object or array starting at s[at] ends, following brackets outside strings
/// only (enough to know when the text is worth parsing). Resumes where the previous call on the
/// same, grown, text stopped, so streaming a long call costs linear time; reset() after the
/// text's front changes.
struct json_end_scanner {
  enum class result { incomplete, complete, invalid };
  /// complete: `end` is one past the value's last byte.
  result scan(std::string_view s, size_t at, size_t& end);
  void reset() { *this = json_end_scanner{}; }

  size_t start = std::string_view::npos;
  size_t pos = 0;
  std::string closers;
  bool in_string = false;
  bool escape = false;
};
} // namespace detail

/// What a parser releases after some input: text to send as content, then new complete calls.
struct tool_parse_step {
  std::string content;
  std::vector<tool_call> calls;
};

class tool_call_parser {
public:
  explicit tool_call_parser(tool_parser_kind kind) : kind_(kind) {}

  /// Feeds the next piece of the choice's text.
  tool_parse_step add(std::string_view text);
  /// End of the choice: releases everything held back (an unfinished call as content).
  tool_parse_step finish();
  /// Calls released so far.
  int32_t num_calls() const { return num_calls_; }

private:
  enum class state { start, text, inside, after_calls, plain };
  void run(tool_parse_step& out, bool at_end);
  bool reach_marker(tool_parse_step& out, std::string_view marker, bool at_end);
  bool run_hermes(tool_parse_step& out, bool at_end);
  bool run_llama3(tool_parse_step& out, bool at_end);
  bool run_mistral(tool_parse_step& out, bool at_end);
  bool run_mistral_v11(tool_parse_step& out, size_t name_at, bool at_end);
  void emit_content(tool_parse_step& out, std::string_view text);
  void consume(size_t bytes); // drops released text from the front of pending_
  void add_call(tool_parse_step& out, tool_call call);

  tool_parser_kind kind_;
  state state_ = state::start;
  std::string pending_;   // text received and not yet released
  std::string held_space_; // whitespace released text ended with: sent once more content follows
  bool after_call_ = false; // leading whitespace of the next content is dropped
  detail::json_end_scanner scan_; // llama3_json, mistral: the call being received
  size_t close_searched_ = 0;    // hermes: pending_ holds no closing tag before this
  int32_t num_calls_ = 0;
};

/// The whole output at once (non-streaming responses).
struct tool_parse_result {
  std::string content; // text outside the calls (whitespace-only becomes empty when there are calls)
  std::vector<tool_call> calls;
};
tool_parse_result parse_tool_calls(tool_parser_kind kind, std::string_view text);

} // namespace actorserve::gateway
