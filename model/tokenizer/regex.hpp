#pragma once
// PCRE2 (UTF + Unicode properties, JIT-compiled) for the tokenizer's Split patterns. Hugging Face
// `tokenizers` runs these patterns with Oniguruma, so patterns are translated where the two
// engines disagree (see translate_oniguruma_pattern).

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace actorserve::tokenization {

/// A compiled pattern; immutable and safe to share between threads.
class regex {
public:
  /// Throws model_error with the position and PCRE2's message when the pattern is invalid.
  explicit regex(const std::string& pattern);
  ~regex();
  regex(const regex&) = delete;
  regex& operator=(const regex&) = delete;

  /// Byte ranges [begin, end) of the successive non-overlapping matches in text (valid UTF-8).
  /// An empty match advances by one character, as Oniguruma's iterator does.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& matches) const;

  /// Replaces every match in text by `content` (tokenizers' Replace normalizer and decoder).
  void replace_all(std::string& text, std::string_view content) const;

  const std::string& pattern() const { return pattern_; }

private:
  struct impl;
  std::string pattern_;
  std::unique_ptr<impl> impl_;
};

/// Rewrites the escapes whose meaning differs between Oniguruma (Unicode mode) and PCRE2 with
/// PCRE2_UCP: `\s`/`\S` (Oniguruma: White_Space; PCRE2 10.42 also counts U+180E) and `\w`/`\W`
/// (Oniguruma: letters, marks, decimal digits, connector punctuation).
std::string translate_oniguruma_pattern(std::string_view pattern);

/// Escapes a literal string for use as a pattern.
std::string quote_pattern(std::string_view literal);

} // namespace actorserve::tokenization
