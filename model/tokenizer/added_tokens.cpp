#include "model/tokenizer/added_tokens.hpp"

#include "model/tokenizer/bpe.hpp"
#include "model/tokenizer/normalizers.hpp"
#include "model/tokenizer/unicode.hpp"

#include <algorithm>

namespace actorserve::tokenization {

void token_matcher::add(std::string pattern, size_t token_index) {
  if (pattern.empty())
    return;
  uint32_t at = 0;
  for (char c : pattern) {
    auto byte = static_cast<unsigned char>(c);
    auto& children = nodes_[at].children;
    auto it = std::lower_bound(children.begin(), children.end(), byte,
                               [](const auto& child, unsigned char b) { return child.first < b; });
    if (it != children.end() && it->first == byte) {
      at = it->second;
      continue;
    }
    auto next = static_cast<uint32_t>(nodes_.size());
    children.insert(it, {byte, next});
    nodes_.emplace_back();
    at = next;
  }
  // The same pattern twice: the first token added keeps it.
  if (nodes_[at].token_index < 0)
    nodes_[at].token_index = static_cast<int64_t>(token_index);
  first_byte_[static_cast<unsigned char>(pattern[0])] = true;
}

bool token_matcher::find(std::string_view text, size_t from, size_t& begin, size_t& end,
                         size_t& token_index) const {
  if (empty())
    return false;
  for (size_t pos = from; pos < text.size(); ++pos) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])])
      continue;
    uint32_t at = 0;
    int64_t best = -1;
    size_t best_end = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      const auto& children = nodes_[at].children;
      auto byte = static_cast<unsigned char>(text[i]);
      auto it = std::lower_bound(children.begin(), children.end(), byte,
                                 [](const auto& child, unsigned char b) { return child.first < b; });
      if (it == children.end() || it->first != byte)
        break;
      at = it->second;
      if (nodes_[at].token_index >= 0) {
        best = nodes_[at].token_index;
        best_end = i + 1;
      }
    }
    if (best >= 0) {
      begin = pos;
      end = best_end;
      token_index = static_cast<size_t>(best);
      return true;
    }
  }
  return false;
}

added_vocabulary::added_vocabulary(const json& list, const bpe_model& model, const normalizer* norm) {
  if (list.is_null())
    return;
  if (!list.is_array())
    field_error("added_tokens", "must be an array");
  uint32_t max_added = 0;
  bool any_added = false;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = "added_tokens[" + std::to_string(i) + "]";
    const json& entry = list[i];
    added_token t;
    t.content = string_field(entry, "content", where);
    if (find_invalid_utf8(t.content) != t.content.size())
      field_error(where, "content is not valid UTF-8");
    t.special = bool_or(entry, "special", false, where);
    t.lstrip = bool_or(entry, "lstrip", false, where);
    t.rstrip = bool_or(entry, "rstrip", false, where);
    t.normalized = bool_or(entry, "normalized", !t.special, where);
    t.single_word = bool_or(entry, "single_word", false, where);
    token_id(require(entry, "id", where), where); // checked for type; the id is recomputed below
    if (t.content.empty())
      continue;
    if (auto it = index_by_content_.find(t.content); it != index_by_content_.end()) {
      // Same content again: tokenizers keeps the id and takes the new flags.
      added_token& old = tokens_[it->second];
      t.id = old.id;
      t.special = t.special || old.special;
      old = t;
      continue;
    }
    // tokenizers' rule: a token already in the model vocabulary keeps that id; a new one gets
    // the vocabulary size, or one past the largest added id once that is beyond it.
    if (auto id = model.token_to_id(t.content)) {
      t.id = *id;
    } else if (!any_added) {
      t.id = static_cast<uint32_t>(model.vocab_count());
    } else {
      size_t vocab = model.vocab_count();
      t.id = (max_added >= vocab || vocab == 0) ? max_added + 1 : static_cast<uint32_t>(vocab);
    }
    max_added = any_added ? std::max(max_added, t.id) : t.id;
    any_added = true;
    index_by_content_.emplace(t.content, tokens_.size());
    index_by_id_.emplace(t.id, tokens_.size());
    tokens_.push_back(t);
  }
  // tokenizers stores (and decodes) a normalized token in its normalized form.
  for (auto& t : tokens_) {
    t.text = t.content;
    if (t.normalized && norm)
      norm->normalize(t.text);
  }
  // tokenizers builds its matchers from the special tokens first, then the others.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < tokens_.size(); ++i) {
      const added_token& t = tokens_[i];
      if (t.special != (pass == 0))
        continue;
      if (t.special)
        special_contents_.push_back(t.content);
      if (!t.normalized)
        raw_matcher_.add(t.content, i);
      else
        normalized_matcher_.add(t.text, i);
    }
  }
}

namespace {

bool last_char_is_word(std::string_view text) {
  if (text.empty())
    return false;
  size_t start = text.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xc0) == 0x80)
    --start;
  return is_regex_word(next_code_point(text, start));
}

bool first_char_is_word(std::string_view text) {
  if (text.empty())
    return false;
  size_t pos = 0;
  return is_regex_word(next_code_point(text, pos));
}

} // namespace

void added_vocabulary::split(std::string_view text, bool normalized_kind, std::vector<text_segment>& out) const {
  out.clear();
  const token_matcher& matcher = normalized_kind ? normalized_matcher_ : raw_matcher_;
  size_t start_offset = 0;
  size_t from = 0, begin = 0, end = 0, index = 0;
  while (from < text.size() && matcher.find(text, from, begin, end, index)) {
    from = end; // the search goes on after the match itself, whatever lstrip/rstrip take
    const added_token& t = tokens_[index];
    size_t start = begin, stop = end;
    if (t.single_word) {
      bool start_space = start == 0 || !last_char_is_word(text.substr(0, start));
      bool stop_space = stop == text.size() || !first_char_is_word(text.substr(stop));
      if (!start_space || !stop_space)
        continue;
    }
    if (t.lstrip) {
      size_t left = start;
      while (left > 0) {
        size_t prev = left - 1;
        while (prev > 0 && (static_cast<unsigned char>(text[prev]) & 0xc0) == 0x80)
          --prev;
        size_t pos = prev;
        if (!is_whitespace(next_code_point(text, pos)))
          break;
        left = prev;
      }
      start = std::max(left, start_offset);
    }
    if (t.rstrip) {
      while (stop < text.size()) {
        size_t pos = stop;
        if (!is_whitespace(next_code_point(text, pos)))
          break;
        stop = pos;
      }
    }
    if (start_offset < start)
      out.push_back({start_offset, start, std::nullopt});
    out.push_back({start, stop, t.id});
    start_offset = stop;
  }
  if (start_offset < text.size())
    out.push_back({start_offset, text.size(), std::nullopt});
}

const added_token* added_vocabulary::by_id(uint32_t id) const {
  auto it = index_by_id_.find(id);
  return it == index_by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<uint32_t> added_vocabulary::id_of(std::string_view content) const {
  auto it = index_by_content_.find(content);
  if (it == index_by_content_.end())
    return std::nullopt;
  return tokens_[it->second].id;
}

bool added_vocabulary::is_special_content(std::string_view content) const {
  return std::find(special_contents_.begin(), special_contents_.end(), content) != special_contents_.end();
}

} // namespace actorserve::tokenization
