#include "gateway/tool_parser.hpp"

#include "gateway/json_parse.hpp"

#include <nlohmann/json.hpp>

#include <random>

namespace actorserve::gateway {
namespace {

using ojson = nlohmann::ordered_json;

constexpr std::string_view hermes_open = "<tool_call>";
constexpr std::string_view hermes_close = "</tool_call>";
constexpr std::string_view python_tag = "<|python_tag|>";
constexpr std::string_view mistral_marker = "[TOOL_CALLS]";
constexpr std::string_view mistral_args = "[ARGS]";
constexpr size_t max_function_name_bytes = 256; // longer: not a call name, stop holding it back

// Characters of a function name in Mistral's [TOOL_CALLS]name[ARGS] form (OpenAI's names are
// [a-zA-Z0-9_-]; dots are common in MCP-style names).
bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

size_t skip_space(std::string_view s, size_t at) {
  while (at < s.size() && is_space(s[at]))
    ++at;
  return at;
}

using scan_result = detail::json_end_scanner::result;

std::optional<ojson> parse_json(std::string_view text) {
  try {
    return parse_ordered_json(text);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

// {"name": "f", "arguments": {...}} (llama3_json also takes "parameters") -> a call; arguments
// sent as a JSON string holding an object are accepted too. Anything else is not a call.
std::optional<tool_call> call_from_json(const ojson& j, tool_parser_kind kind) {
  if (!j.is_object())
    return std::nullopt;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get_ref<const std::string&>().empty())
    return std::nullopt;
  auto args = j.find("arguments");
  if (args == j.end() && kind == tool_parser_kind::llama3_json)
    args = j.find("parameters");
  ojson arguments = ojson::object();
  if (args != j.end() && !args->is_null()) {
    if (args->is_object()) {
      arguments = *args;
    } else if (args->is_string()) {
      auto inner = parse_json(args->get_ref<const std::string&>());
      if (!inner || !inner->is_object())
        return std::nullopt;
      arguments = std::move(*inner);
    } else {
      return std::nullopt;
    }
  }
  tool_call call;
  call.id = make_tool_call_id(kind);
  call.name = name->get<std::string>();
  call.arguments = arguments.dump(-1, ' ', false, ojson::error_handler_t::replace);
  return call;
}

} // namespace

size_t detail::partial_marker_suffix(std::string_view s, std::string_view marker) {
  for (size_t n = std::min(s.size(), marker.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == marker.substr(0, n))
      return n;
  return 0;
}

detail::json_end_scanner::result detail::json_end_scanner::scan(std::string_view s, size_t at, size_t& end) {
  if (at != start) { // a new value (or the text moved): start over
    reset();
    start = at;
    pos = at;
  }
  if (pos >= s.size())
    return result::incomplete;
  if (pos == at && s[at] != '{' && s[at] != '[')
    return result::invalid;
  for (; pos < s.size(); ++pos) {
    const char c = s[pos];
    if (in_string) {
      if (escape)
        escape = false;
      else if (c == '\\')
        escape = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      closers.push_back(c == '{' ? '}' : ']');
    } else if (c == '}' || c == ']') {
      if (closers.empty() || closers.back() != c)
        return result::invalid;
      closers.pop_back();
      if (closers.empty()) {
        end = ++pos;
        return result::complete;
      }
    }
  }
  return result::incomplete;
}

std::optional<tool_parser_kind> tool_parser_from_name(std::string_view name) {
  if (name == "hermes")
    return tool_parser_kind::hermes;
  if (name == "llama3_json")
    return tool_parser_kind::llama3_json;
  if (name == "mistral")
    return tool_parser_kind::mistral;
  return std::nullopt;
}

const char* tool_parser_name(tool_parser_kind kind) {
  switch (kind) {
  case tool_parser_kind::hermes: return "hermes";
  case tool_parser_kind::llama3_json: return "llama3_json";
  case tool_parser_kind::mistral: return "mistral";
  }
  return "";
}

const char* tool_parser_names() { return "hermes, llama3_json, mistral"; }

bool tool_parser_needs_special_tokens(tool_parser_kind kind) { return kind == tool_parser_kind::mistral; }

std::string make_tool_call_id(tool_parser_kind kind) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  if (kind == tool_parser_kind::mistral) { // Mistral's templates accept only 9 alphanumerics
    static const char* alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::string id;
    for (int i = 0; i < 9; ++i)
      id += alnum[rng() % 62];
    return id;
  }
  static const char* hex = "0123456789abcdef";
  std::string id = "chatcmpl-tool-";
  for (int i = 0; i < 2; ++i) {
    uint64_t v = rng();
    for (int j = 0; j < 16; ++j, v >>= 4)
      id += hex[v & 15];
  }
  return id;
}

// Content goes out as it comes, except trailing whitespace, which waits for more content: the
// whitespace around tool calls (before, between, after them) is dropped.
void tool_call_parser::emit_content(tool_parse_step& out, std::string_view text) {
  if (after_call_) { // whitespace right after a call only separates it from what follows
    text.remove_prefix(skip_space(text, 0));
    if (text.empty())
      return;
    after_call_ = false;
  }
  size_t keep = text.size();
  while (keep > 0 && is_space(text[keep - 1]))
    --keep;
  if (keep == 0) {
    held_space_ += text;
    return;
  }
  out.content += held_space_;
  out.content += text.substr(0, keep);
  held_space_ = std::string(text.substr(keep));
}

void tool_call_parser::add_call(tool_parse_step& out, tool_call call) {
  held_space_.clear();
  after_call_ = true;
  out.calls.push_back(std::move(call));
  ++num_calls_;
}

void tool_call_parser::consume(size_t bytes) {
  if (bytes == 0)
    return;
  pending_.erase(0, bytes);
  scan_.reset();
  close_searched_ = 0;
}

tool_parse_step tool_call_parser::add(std::string_view text) {
  tool_parse_step out;
  pending_ += text;
  run(out, false);
  return out;
}

tool_parse_step tool_call_parser::finish() {
  tool_parse_step out;
  run(out, true);
  if (!pending_.empty()) { // nothing more can come: whatever is left is text
    emit_content(out, pending_);
    consume(pending_.size());
  }
  if (num_calls_ == 0)
    out.content += held_space_;
  held_space_.clear();
  return out;
}

void tool_call_parser::run(tool_parse_step& out, bool at_end) {
  bool progress = true;
  while (progress && !pending_.empty()) {
    switch (kind_) {
    case tool_parser_kind::hermes: progress = run_hermes(out, at_end); break;
    case tool_parser_kind::llama3_json: progress = run_llama3(out, at_end); break;
    case tool_parser_kind::mistral: progress = run_mistral(out, at_end); break;
    }
  }
}

// Outside a call: releases the text before `marker` and enters the call (true), or releases
// all but what may still become the marker (false).
bool tool_call_parser::reach_marker(tool_parse_step& out, std::string_view marker, bool at_end) {
  const size_t at = pending_.find(marker);
  const size_t hold = at_end ? 0 : detail::partial_marker_suffix(pending_, marker);
  const size_t text_end = at != std::string::npos ? at : pending_.size() - hold;
  emit_content(out, std::string_view(pending_).substr(0, text_end));
  consume(text_end);
  if (at == std::string::npos)
    return false;
  state_ = state::inside;
  return true;
}

// Each run_* returns whether it consumed something (and should be called again).
bool tool_call_parser::run_hermes(tool_parse_step& out, bool at_end) {
  if (state_ != state::inside && !reach_marker(out, hermes_open, at_end))
    return false;
  // pending_ starts with <tool_call>. vLLM also takes a last call whose closing tag never came.
  // Search only text not searched before (less a tag's length, for a tag split across pieces).
  const size_t from = std::max(hermes_open.size(),
                               close_searched_ > hermes_close.size() ? close_searched_ - hermes_close.size() : 0);
  const size_t close = pending_.find(hermes_close, from);
  if (close == std::string::npos && !at_end) {
    close_searched_ = pending_.size();
    return false;
  }
  const size_t body_end = close == std::string::npos ? pending_.size() : close;
  const size_t call_end = close == std::string::npos ? pending_.size() : close + hermes_close.size();
  std::optional<tool_call> call;
  if (auto j = parse_json(std::string_view(pending_).substr(hermes_open.size(), body_end - hermes_open.size())))
    call = call_from_json(*j, kind_);
  if (call)
    add_call(out, std::move(*call));
  else
    emit_content(out, std::string_view(pending_).substr(0, call_end));
  consume(call_end);
  state_ = state::text;
  return true;
}

bool tool_call_parser::run_llama3(tool_parse_step& out, bool at_end) {
  if (state_ == state::plain) {
    emit_content(out, pending_);
    consume(pending_.size());
    return false;
  }
  // start: optional whitespace and <|python_tag|>, then a JSON object, or this is plain text.
  // after_calls: whitespace and ';' separators, then the next object, or text.
  size_t at = skip_space(pending_, 0);
  if (state_ == state::start) {
    const std::string_view rest = std::string_view(pending_).substr(at);
    if (rest.substr(0, python_tag.size()) == python_tag)
      at = skip_space(pending_, at + python_tag.size());
    else if (!at_end && python_tag.substr(0, rest.size()) == rest)
      return false; // maybe the tag, not complete yet
  } else if (state_ == state::after_calls) {
    while (at < pending_.size() && (pending_[at] == ';' || is_space(pending_[at])))
      ++at;
  }
  if (at == pending_.size()) {
    if (at_end) {
      emit_content(out, pending_);
      consume(pending_.size());
    }
    return false;
  }
  if (pending_[at] != '{') {
    state_ = state::plain;
    return true;
  }
  size_t end = 0;
  const scan_result scanned = scan_.scan(pending_, at, end);
  if (scanned == scan_result::incomplete && !at_end)
    return false;
  std::optional<tool_call> call;
  if (scanned == scan_result::complete)
    if (auto j = parse_json(std::string_view(pending_).substr(at, end - at)))
      call = call_from_json(*j, kind_);
  if (!call) {
    state_ = state::plain;
    return true;
  }
  add_call(out, std::move(*call));
  consume(end);
  state_ = state::after_calls;
  return true;
}

bool tool_call_parser::run_mistral(tool_parse_step& out, bool at_end) {
  if (state_ != state::inside && !reach_marker(out, mistral_marker, at_end))
    return false;
  // pending_ starts with [TOOL_CALLS]: a JSON array of calls (or one call object) follows, or
  // in the v11+ form a function name.
  const size_t at = skip_space(pending_, mistral_marker.size());
  if (at == pending_.size() && !at_end)
    return false;
  if (at < pending_.size() && pending_[at] != '[' && pending_[at] != '{')
    return run_mistral_v11(out, at, at_end);
  size_t end = 0;
  const scan_result scanned = scan_.scan(pending_, at, end);
  if (scanned == scan_result::incomplete && !at_end)
    return false;
  std::vector<tool_call> calls;
  bool valid = false;
  if (scanned == scan_result::complete) {
    if (auto j = parse_json(std::string_view(pending_).substr(at, end - at))) {
      const ojson list = j->is_array() ? *j : ojson::array({*j});
      valid = !list.empty();
      for (const auto& item : list) {
        auto call = call_from_json(item, kind_);
        if (!call) {
          valid = false;
          break;
        }
        calls.push_back(std::move(*call));
      }
    }
  }
  if (valid) {
    for (auto& call : calls)
      add_call(out, std::move(call));
    consume(end);
  } else { // not calls: the marker and what follows it, up to where the JSON failed, are text
    // (an unbalanced bracket is found at the same byte however the text was split, so a later
    // call is read the same way streamed or not)
    const size_t text_end = scanned == scan_result::complete  ? end
                            : scanned == scan_result::invalid ? scan_.pos + 1
                                                              : pending_.size();
    emit_content(out, std::string_view(pending_).substr(0, text_end));
    consume(text_end);
  }
  state_ = state::text;
  return true;
}

// [TOOL_CALLS]name[ARGS]{arguments}, one marker per call (Mistral tokenizers v11+: Mistral-Small
// 3.2, Magistral, Devstral); `name_at` is where the name starts in pending_.
bool tool_call_parser::run_mistral_v11(tool_parse_step& out, size_t name_at, bool at_end) {
  size_t name_end = name_at;
  while (name_end < pending_.size() && is_name_char(pending_[name_end]))
    ++name_end;
  const std::string_view after_name = std::string_view(pending_).substr(name_end);
  if (!after_name.starts_with(mistral_args)) {
    if (!at_end && name_end - name_at <= max_function_name_bytes && mistral_args.starts_with(after_name))
      return false; // the name or the [ARGS] marker is still coming
    // Not a call: the marker and the would-be name are text; what follows is read afresh.
    emit_content(out, std::string_view(pending_).substr(0, name_end));
    consume(name_end);
    state_ = state::text;
    return true;
  }
  const size_t args_at = skip_space(pending_, name_end + mistral_args.size());
  if (args_at == pending_.size() && !at_end)
    return false;
  size_t end = 0;
  const scan_result scanned = scan_.scan(pending_, args_at, end);
  if (scanned == scan_result::incomplete && !at_end)
    return false;
  std::optional<tool_call> call;
  if (scanned == scan_result::complete)
    if (auto args = parse_json(std::string_view(pending_).substr(args_at, end - args_at)))
      call = call_from_json(ojson{{"name", pending_.substr(name_at, name_end - name_at)}, {"arguments", std::move(*args)}},
                            kind_);
  if (call) {
    add_call(out, std::move(*call));
    consume(end);
  } else { // not a call: the text up to the end of what was meant as its arguments is content
    const size_t text_end = scanned == scan_result::complete  ? end
                            : scanned == scan_result::invalid ? args_at
                                                              : pending_.size();
    emit_content(out, std::string_view(pending_).substr(0, text_end));
    consume(text_end);
  }
  state_ = state::text;
  return true;
}

tool_parse_result parse_tool_calls(tool_parser_kind kind, std::string_view text) {
  tool_call_parser parser(kind);
  tool_parse_step a = parser.add(text);
  tool_parse_step b = parser.finish();
  tool_parse_result r;
  r.content = std::move(a.content) + b.content;
  r.calls = std::move(a.calls);
  for (auto& c : b.calls)
    r.calls.push_back(std::move(c));
  return r;
}

} // namespace actorserve::gateway
