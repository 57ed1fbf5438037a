#include "model/tokenizer/regex.hpp"

#include "model/error.hpp"
#include "model/tokenizer/unicode.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace actorserve::tokenization {

namespace {

// Per-thread match state shared by all patterns: we only read the overall match, so one generic
// match data block fits every pattern; the JIT stack is larger than the default 32 KiB so that
// long runs (thousands of spaces) never hit PCRE2_ERROR_JIT_STACKLIMIT.
struct thread_match_state {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  thread_match_state() {
    if (context && jit_stack)
      pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~thread_match_state() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_data_free(data);
  }
};

thread_match_state& match_state() {
  thread_local thread_match_state state;
  return state;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof buffer);
  return reinterpret_cast<const char*>(buffer);
}

} // namespace

struct regex::impl {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~impl() { pcre2_code_free(code); }
};

regex::regex(const std::string& pattern) : pattern_(pattern), impl_(std::make_unique<impl>()) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!impl_->code)
    throw model_error("tokenizer: invalid regex at offset " + std::to_string(offset) + " (" +
                      pcre2_message(error) + "): " + pattern);
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

regex::~regex() = default;

void regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& matches) const {
  matches.clear();
  auto& state = match_state();
  if (!state.data)
    throw model_error("tokenizer: out of memory for regex match data");
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  size_t last_match_end = static_cast<size_t>(-1);
  while (start <= text.size()) {
    // The text was validated once up front, so skip PCRE2's per-call UTF check.
    int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK,
                                          state.data, state.context)
                        : pcre2_match(impl_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK,
                                      state.data, state.context);
    if (rc == PCRE2_ERROR_NOMATCH)
      return;
    if (rc < 0)
      throw model_error("tokenizer: regex match failed (" + pcre2_message(rc) + "): " + pattern_);
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
    size_t begin = ovector[0], end = ovector[1];
    if (begin == end && end == last_match_end) {
      // Oniguruma's iterator refuses an empty match right after the previous match: step one
      // character forward and search again.
      if (start >= text.size())
        return;
      start += utf8_length(static_cast<unsigned char>(text[start]));
      continue;
    }
    matches.emplace_back(begin, end);
    last_match_end = end;
    start = end;
  }
}

void regex::replace_all(std::string& text, std::string_view content) const {
  thread_local std::vector<std::pair<size_t, size_t>> matches;
  find_all(text, matches);
  if (matches.empty())
    return;
  std::string out;
  out.reserve(text.size());
  size_t last = 0;
  for (auto [begin, end] : matches) {
    out.append(text, last, begin - last);
    out.append(content);
    last = end;
  }
  out.append(text, last, std::string::npos);
  text = std::move(out);
}

std::string translate_oniguruma_pattern(std::string_view pattern) {
  static constexpr std::string_view space_set = "\\t-\\r\\x{85}\\p{Z}";
  static constexpr std::string_view word_set = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
  std::string out;
  out.reserve(pattern.size() + 16);
  int class_depth = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      char e = pattern[i + 1];
      ++i;
      bool in_class = class_depth > 0;
      if (e == 's' || e == 'w') {
        auto set = e == 's' ? space_set : word_set;
        if (in_class)
          out.append(set);
        else
          out.append("[").append(set).append("]");
      } else if ((e == 'S' || e == 'W') && !in_class) {
        out.append("[^").append(e == 'S' ? space_set : word_set).append("]");
      } else {
        out.push_back('\\');
        out.push_back(e);
      }
      continue;
    }
    if (c == '[') {
      ++class_depth;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') {
        out.push_back('^');
        ++i;
      }
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') {
        out.append("\\]");
        ++i;
      }
      continue;
    }
    if (c == ']' && class_depth > 0)
      --class_depth;
    out.push_back(c);
  }
  return out;
}

std::string quote_pattern(std::string_view literal) {
  std::string out;
  out.reserve(literal.size() * 2);
  for (char c : literal) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) { // control characters: spelled as \x{..}
      static constexpr char hex[] = "0123456789abcdef";
      out.append("\\x{").append(1, hex[u >> 4]).append(1, hex[u & 15]).append("}");
      continue;
    }
    bool plain = u >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!plain)
      out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

} // namespace actorserve::tokenization
