#include "model/tokenizer/pre_tokenizers.hpp"

#include "model/tokenizer/byte_level.hpp"
#include "model/tokenizer/regex.hpp"
#include "model/tokenizer/unicode.hpp"

#include <algorithm>
#include <functional>

namespace actorserve::tokenization {

namespace {

enum class split_behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

split_behavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Removed")
    return split_behavior::removed;
  if (name == "Isolated")
    return split_behavior::isolated;
  if (name == "MergedWithPrevious")
    return split_behavior::merged_with_previous;
  if (name == "MergedWithNext")
    return split_behavior::merged_with_next;
  if (name == "Contiguous")
    return split_behavior::contiguous;
  field_error(where, "unknown split behavior \"" + name + "\"");
}

struct span {
  size_t begin, end;
  bool flag; // is a match (before behavior), or "remove" (after)
};

// The cover of `text` by matches and the gaps between them, as tokenizers' Pattern does: every
// byte is in exactly one span; empty matches give empty spans, which are dropped at the end.
void cover_from_matches(size_t text_size, const std::vector<std::pair<size_t, size_t>>& matches,
                        std::vector<span>& cover) {
  cover.clear();
  size_t prev = 0;
  for (auto [begin, end] : matches) {
    if (prev != begin)
      cover.push_back({prev, begin, false});
    cover.push_back({begin, end, true});
    prev = end;
  }
  if (prev != text_size)
    cover.push_back({prev, text_size, false});
}

// The same for a per-character predicate: each matching character is its own match.
void cover_from_predicate(std::string_view text, const std::function<bool(char32_t)>& is_match,
                          std::vector<span>& cover) {
  cover.clear();
  size_t last = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t start = pos;
    if (is_match(next_code_point(text, pos))) {
      if (last < start)
        cover.push_back({last, start, false});
      cover.push_back({start, pos, true});
      last = pos;
    }
  }
  if (last < text.size())
    cover.push_back({last, text.size(), false});
}

// Applies a split behavior to a cover (NormalizedString::split) and appends the resulting
// non-empty pieces of `p` to `out`.
void emit_split(const piece& p, std::vector<span>& cover, bool invert, split_behavior behavior,
                std::vector<piece>& out) {
  if (invert)
    for (auto& s : cover)
      s.flag = !s.flag;
  std::vector<span> parts;
  parts.reserve(cover.size());
  switch (behavior) {
  case split_behavior::isolated:
    for (auto s : cover)
      parts.push_back({s.begin, s.end, false});
    break;
  case split_behavior::removed:
    parts = cover;
    break;
  case split_behavior::contiguous: {
    bool previous_match = false;
    for (auto s : cover) {
      if (s.flag == previous_match && !parts.empty())
        parts.back().end = s.end;
      else
        parts.push_back({s.begin, s.end, false});
      previous_match = s.flag;
    }
    break;
  }
  case split_behavior::merged_with_previous: {
    bool previous_match = false;
    for (auto s : cover) {
      if (s.flag && !previous_match && !parts.empty())
        parts.back().end = s.end;
      else
        parts.push_back({s.begin, s.end, false});
      previous_match = s.flag;
    }
    break;
  }
  case split_behavior::merged_with_next: {
    bool previous_match = false;
    for (size_t i = cover.size(); i-- > 0;) {
      auto s = cover[i];
      if (s.flag && !previous_match && !parts.empty())
        parts.back().begin = s.begin;
      else
        parts.push_back({s.begin, s.end, false});
      previous_match = s.flag;
    }
    std::reverse(parts.begin(), parts.end());
    break;
  }
  }
  for (const auto& s : parts) {
    if (s.flag || s.begin == s.end)
      continue;
    out.push_back({p.text.substr(s.begin, s.end - s.begin), p.at_start && s.begin == 0});
  }
}

class split_pre_tokenizer final : public pre_tokenizer {
public:
  split_pre_tokenizer(const std::string& pattern, split_behavior behavior, bool invert)
      : regex_(pattern), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<piece>& pieces) const override {
    thread_local std::vector<std::pair<size_t, size_t>> matches;
    thread_local std::vector<span> cover;
    std::vector<piece> out;
    out.reserve(pieces.size() * 4);
    for (const auto& p : pieces) {
      regex_.find_all(p.text, matches);
      cover_from_matches(p.text.size(), matches, cover);
      emit_split(p, cover, invert_, behavior_, out);
    }
    pieces = std::move(out);
  }

private:
  regex regex_;
  split_behavior behavior_;
  bool invert_;
};

class predicate_pre_tokenizer final : public pre_tokenizer {
public:
  predicate_pre_tokenizer(std::function<bool(char32_t)> is_match, split_behavior behavior)
      : is_match_(std::move(is_match)), behavior_(behavior) {}
  void pre_tokenize(std::vector<piece>& pieces) const override {
    thread_local std::vector<span> cover;
    std::vector<piece> out;
    out.reserve(pieces.size() * 4);
    for (const auto& p : pieces) {
      cover_from_predicate(p.text, is_match_, cover);
      emit_split(p, cover, false, behavior_, out);
    }
    pieces = std::move(out);
  }

private:
  std::function<bool(char32_t)> is_match_;
  split_behavior behavior_;
};

// GPT-2's split pattern, as tokenizers' ByteLevel writes it (for Oniguruma).
constexpr const char* gpt2_pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class byte_level_pre_tokenizer final : public pre_tokenizer {
public:
  byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex)
      split_ = std::make_unique<split_pre_tokenizer>(translate_oniguruma_pattern(gpt2_pattern),
                                                     split_behavior::isolated, false);
  }
  void pre_tokenize(std::vector<piece>& pieces) const override {
    if (add_prefix_space_)
      for (auto& p : pieces)
        if (p.text.empty() || p.text[0] != ' ')
          p.text.insert(p.text.begin(), ' ');
    if (split_)
      split_->pre_tokenize(pieces);
    std::string mapped;
    for (auto& p : pieces) {
      mapped.clear();
      append_byte_level(mapped, p.text);
      p.text.swap(mapped);
    }
  }

private:
  bool add_prefix_space_;
  std::unique_ptr<split_pre_tokenizer> split_;
};

enum class prepend_scheme { always, first, never };

class metaspace_pre_tokenizer final : public pre_tokenizer {
public:
  metaspace_pre_tokenizer(std::string replacement, prepend_scheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<piece>& pieces) const override {
    std::vector<piece> out;
    out.reserve(pieces.size() * 4);
    std::vector<span> cover;
    for (auto& p : pieces) {
      std::string text;
      text.reserve(p.text.size() + replacement_.size());
      for (char c : p.text) {
        if (c == ' ')
          text.append(replacement_);
        else
          text.push_back(c);
      }
      bool starts = text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == prepend_scheme::always || (scheme_ == prepend_scheme::first && p.at_start)))
        text.insert(0, replacement_);
      piece rewritten{std::move(text), p.at_start};
      if (!split_) {
        if (!rewritten.text.empty())
          out.push_back(std::move(rewritten));
        continue;
      }
      cover.clear();
      size_t last = 0;
      for (size_t pos = rewritten.text.find(replacement_); pos != std::string::npos;
           pos = rewritten.text.find(replacement_, pos + replacement_.size())) {
        if (last < pos)
          cover.push_back({last, pos, false});
        cover.push_back({pos, pos + replacement_.size(), true});
        last = pos + replacement_.size();
      }
      if (last < rewritten.text.size())
        cover.push_back({last, rewritten.text.size(), false});
      emit_split(rewritten, cover, false, split_behavior::merged_with_next, out);
    }
    pieces = std::move(out);
  }

private:
  std::string replacement_;
  prepend_scheme scheme_;
  bool split_;
};

class sequence_pre_tokenizer final : public pre_tokenizer {
public:
  explicit sequence_pre_tokenizer(std::vector<std::unique_ptr<pre_tokenizer>> steps)
      : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<piece>& pieces) const override {
    for (const auto& step : steps_)
      step->pre_tokenize(pieces);
  }

private:
  std::vector<std::unique_ptr<pre_tokenizer>> steps_;
};

std::string single_char(const json& spec, const char* key, const std::string& where) {
  std::string s = string_field(spec, key, where);
  size_t pos = 0;
  if (s.empty() || find_invalid_utf8(s) != s.size() || (next_code_point(s, pos), pos != s.size()))
    field_error(where, std::string("\"") + key + "\" must be a single character");
  return s;
}

prepend_scheme metaspace_scheme(const json& spec, const std::string& where) {
  // Files written before prepend_scheme existed carry add_prefix_space instead.
  std::string scheme = string_or(spec, "prepend_scheme", "", where);
  if (scheme.empty())
    return bool_or(spec, "add_prefix_space", true, where) ? prepend_scheme::always : prepend_scheme::never;
  if (scheme == "always")
    return prepend_scheme::always;
  if (scheme == "first")
    return prepend_scheme::first;
  if (scheme == "never")
    return prepend_scheme::never;
  field_error(where, "unknown prepend_scheme \"" + scheme + "\"");
}

// Rust regex's \w and \s, for the Whitespace pre-tokenizer (tokenizers compiles it with `regex`).
constexpr const char* rust_word_class = R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D})";

} // namespace

std::unique_ptr<pre_tokenizer> make_pre_tokenizer(const json& spec, const std::string& where) {
  if (spec.is_null())
    return nullptr;
  std::string type = type_of(spec, where);
  std::string here = where + " (" + type + ")";
  if (type == "ByteLevel")
    return std::make_unique<byte_level_pre_tokenizer>(bool_or(spec, "add_prefix_space", true, here),
                                                      bool_or(spec, "use_regex", true, here));
  if (type == "Split")
    return std::make_unique<split_pre_tokenizer>(pattern_source(require(spec, "pattern", here), here),
                                                 parse_behavior(string_field(spec, "behavior", here), here),
                                                 bool_or(spec, "invert", false, here));
  if (type == "Digits")
    return std::make_unique<predicate_pre_tokenizer>(
        is_numeric, bool_or(spec, "individual_digits", false, here) ? split_behavior::isolated
                                                                     : split_behavior::contiguous);
  if (type == "Metaspace")
    return std::make_unique<metaspace_pre_tokenizer>(single_char(spec, "replacement", here),
                                                     metaspace_scheme(spec, here), bool_or(spec, "split", true, here));
  if (type == "WhitespaceSplit")
    return std::make_unique<predicate_pre_tokenizer>(is_whitespace, split_behavior::removed);
  if (type == "Whitespace") {
    std::string word = rust_word_class;
    std::string pattern = "[" + word + "]+|[^" + word + R"(\t-\r\x{85}\p{Z}]+)";
    auto keep_words = std::make_unique<split_pre_tokenizer>(pattern, split_behavior::removed, true);
    return keep_words;
  }
  if (type == "Punctuation")
    return std::make_unique<predicate_pre_tokenizer>(
        is_punctuation, parse_behavior(string_or(spec, "behavior", "Isolated", here), here));
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<pre_tokenizer>> steps;
    steps.push_back(std::make_unique<predicate_pre_tokenizer>(is_whitespace, split_behavior::removed));
    steps.push_back(std::make_unique<predicate_pre_tokenizer>(is_punctuation, split_behavior::isolated));
    return std::make_unique<sequence_pre_tokenizer>(std::move(steps));
  }
  if (type == "CharDelimiterSplit") {
    std::string delimiter = single_char(spec, "delimiter", here);
    size_t pos = 0;
    char32_t cp = next_code_point(delimiter, pos);
    return std::make_unique<predicate_pre_tokenizer>([cp](char32_t c) { return c == cp; },
                                                     split_behavior::removed);
  }
  if (type == "Sequence") {
    const json& list = require(spec, "pretokenizers", here);
    if (!list.is_array())
      field_error(here, "\"pretokenizers\" must be an array");
    std::vector<std::unique_ptr<pre_tokenizer>> steps;
    for (size_t i = 0; i < list.size(); ++i)
      if (auto step = make_pre_tokenizer(list[i], here + "[" + std::to_string(i) + "]"))
        steps.push_back(std::move(step));
    return std::make_unique<sequence_pre_tokenizer>(std::move(steps));
  }
  field_error(here, "unsupported pre-tokenizer type (supported: ByteLevel, Split, Digits, Metaspace, "
                    "Whitespace, WhitespaceSplit, Punctuation, BertPreTokenizer, CharDelimiterSplit, "
                    "Sequence)");
}

} // namespace actorserve::tokenization
