#pragma once
// Reasoning out of chat output, as vLLM's --reasoning-parser splits it: models such as the
// DeepSeek-R1 distills and Qwen3 write their chain of thought between <think> and </think>;
// the text before </think> goes to message.reasoning_content (and .reasoning), the rest to
// message.content. The tags appear in neither, nor do the newlines around them (Qwen3's
// template strips those too when it puts a reasoning back into the history; vLLM keeps them).
//   deepseek_r1  the output starts inside the reasoning (R1 templates put "<think>\n" into the
//                generation prompt; a leading <think> the model writes itself is dropped); it
//                ends at </think>, and an output without </think> is reasoning only.
//   qwen3        the output starts inside the reasoning only when it begins with <think>, or
//                when the rendered prompt ends with <think> (Qwen3-2507 thinking templates);
//                otherwise it is all content (enable_thinking=false, or a non-thinking model).
// Where vLLM decides from the whole text (a qwen3 output with <think> but no </think> is
// content there when not streamed, reasoning when streamed), this decides from the start of
// the output and the prompt, so that a stream never has to take back what it sent and both
// modes agree byte for byte: streamed pieces concatenate to the non-streamed fields.
//
// One splitter per choice is fed the choice's text as it is generated. Text that may still
// become a tag (e.g. "</th") is held back until it is decided, and released by finish().

#include <optional>
#include <string>
#include <string_view>

namespace actorserve::gateway {

enum class reasoning_parser_kind { deepseek_r1, qwen3 };

/// "deepseek_r1", "qwen3" -> the kind; nullopt for other names.
std::optional<reasoning_parser_kind> reasoning_parser_from_name(std::string_view name);
const char* reasoning_parser_name(reasoning_parser_kind kind);
/// The names accepted by --reasoning-parser, comma separated (for messages).
const char* reasoning_parser_names();

/// Whether a rendered chat prompt leaves the model inside an open <think> block (it ends with
/// <think> and optional whitespace), so the output starts with reasoning.
bool prompt_opens_reasoning(std::string_view prompt);

/// What a splitter releases after some input.
struct reasoning_step {
  std::string reasoning;
  std::string content;
};

class reasoning_splitter {
public:
  reasoning_splitter(reasoning_parser_kind kind, bool prompt_opened);

  /// Feeds the next piece of the choice's text.
  reasoning_step add(std::string_view text);
  /// End of the choice: releases what was held back.
  reasoning_step finish();
  /// Whether the output has a reasoning part (possibly empty, as in "<think></think>").
  bool has_reasoning() const { return has_reasoning_; }

private:
  enum class phase { start, reasoning, content };
  void run(reasoning_step& out, bool at_end);
  void emit_reasoning(reasoning_step& out, std::string_view text);

  reasoning_parser_kind kind_;
  bool prompt_opened_;
  phase phase_ = phase::start;
  bool has_reasoning_ = false;
  bool reasoning_started_ = false; // leading newlines of the reasoning are dropped until then
  bool content_started_ = false;   // leading newlines of the content (after </think>) likewise
  std::string held_newlines_;      // newlines the released reasoning ended with
  std::string pending_;            // text received and not yet released (a possible tag)
};

/// The whole output at once (non-streaming responses), by the same splitter.
struct reasoning_result {
  std::optional<std::string> reasoning; // nullopt: the output has no reasoning part
  std::string content;
};
reasoning_result split_reasoning(reasoning_parser_kind kind, bool prompt_opened, std::string_view text);

} // namespace actorserve::gateway
