#include "gateway/reasoning_parser.hpp"

#include "gateway/tool_parser.hpp"

namespace actorserve::gateway {
namespace {

constexpr std::string_view think_open = "<think>";
constexpr std::string_view think_close = "</think>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

size_t skip_space(std::string_view s, size_t at = 0) {
  while (at < s.size() && is_space(s[at]))
    ++at;
  return at;
}

size_t skip_newlines(std::string_view s) {
  size_t at = 0;
  while (at < s.size() && s[at] == '\n')
    ++at;
  return at;
}

} // namespace

std::optional<reasoning_parser_kind> reasoning_parser_from_name(std::string_view name) {
  if (name == "deepseek_r1")
    return reasoning_parser_kind::deepseek_r1;
  if (name == "qwen3")
    return reasoning_parser_kind::qwen3;
  return std::nullopt;
}

const char* reasoning_parser_name(reasoning_parser_kind kind) {
  switch (kind) {
  case reasoning_parser_kind::deepseek_r1: return "deepseek_r1";
  case reasoning_parser_kind::qwen3: return "qwen3";
  }
  return "";
}

const char* reasoning_parser_names() { return "deepseek_r1, qwen3"; }

bool prompt_opens_reasoning(std::string_view prompt) {
  size_t end = prompt.size();
  while (end > 0 && is_space(prompt[end - 1]))
    --end;
  return prompt.substr(0, end).ends_with(think_open);
}

reasoning_splitter::reasoning_splitter(reasoning_parser_kind kind, bool prompt_opened)
    : kind_(kind), prompt_opened_(prompt_opened) {}

// The newlines models write around the reasoning ("<think>\n...\n</think>\n\n") are dropped,
// as Qwen3's own template drops them when it puts a reasoning back into the history; newlines
// at the end of what came so far wait until more reasoning follows.
void reasoning_splitter::emit_reasoning(reasoning_step& out, std::string_view text) {
  if (!reasoning_started_) {
    text.remove_prefix(skip_newlines(text));
    if (text.empty())
      return;
    reasoning_started_ = true;
  }
  size_t keep = text.size();
  while (keep > 0 && text[keep - 1] == '\n')
    --keep;
  if (keep == 0) {
    held_newlines_ += text;
    return;
  }
  out.reasoning += held_newlines_;
  out.reasoning += text.substr(0, keep);
  held_newlines_ = std::string(text.substr(keep));
}

reasoning_step reasoning_splitter::add(std::string_view text) {
  reasoning_step out;
  pending_ += text;
  run(out, false);
  return out;
}

reasoning_step reasoning_splitter::finish() {
  reasoning_step out;
  run(out, true);
  return out;
}

void reasoning_splitter::run(reasoning_step& out, bool at_end) {
  if (phase_ == phase::start) {
    // Whitespace and a <think> the model writes first are dropped; until the first other byte
    // it is open whether the output starts with the tag.
    const size_t at = skip_space(pending_);
    const std::string_view rest = std::string_view(pending_).substr(at);
    if (rest.starts_with(think_open)) {
      pending_.erase(0, at + think_open.size());
      phase_ = phase::reasoning;
    } else if (!at_end && think_open.starts_with(rest)) {
      return;
    } else {
      phase_ = kind_ == reasoning_parser_kind::deepseek_r1 || prompt_opened_ ? phase::reasoning : phase::content;
      content_started_ = phase_ == phase::content; // no tag, so the content is the output verbatim
    }
    has_reasoning_ = phase_ == phase::reasoning;
  }
  if (phase_ == phase::reasoning) {
    const size_t close = pending_.find(think_close);
    if (close == std::string::npos) {
      const size_t hold = at_end ? 0 : detail::partial_marker_suffix(pending_, think_close);
      emit_reasoning(out, std::string_view(pending_).substr(0, pending_.size() - hold));
      pending_.erase(0, pending_.size() - hold);
      return;
    }
    emit_reasoning(out, std::string_view(pending_).substr(0, close));
    held_newlines_.clear();
    pending_.erase(0, close + think_close.size());
    phase_ = phase::content;
  }
  if (!content_started_) {
    pending_.erase(0, skip_newlines(pending_));
    if (pending_.empty())
      return;
    content_started_ = true;
  }
  out.content += pending_;
  pending_.clear();
}

reasoning_result split_reasoning(reasoning_parser_kind kind, bool prompt_opened, std::string_view text) {
  reasoning_splitter splitter(kind, prompt_opened);
  reasoning_step a = splitter.add(text);
  reasoning_step b = splitter.finish();
  reasoning_result r;
  if (splitter.has_reasoning())
    r.reasoning = std::move(a.reasoning) + b.reasoning;
  r.content = std::move(a.content) + b.content;
  return r;
}

} // namespace actorserve::gateway
