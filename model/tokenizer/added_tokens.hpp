#pragma once
// Added tokens (special or not) of tokenizer.json: ids assigned as tokenizers assigns them, and
// found in the text before the model sees it. Tokens with normalized=false are matched in the raw
// text, the others in the normalized pieces between those; at each position the leftmost longest
// token wins (tokenizers' Aho-Corasick with LeftmostLongest), with the lstrip / rstrip /
// single_word rules applied to each match.

#include "model/tokenizer/bpe.hpp"
#include "model/tokenizer/json_fields.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace actorserve::tokenization {

class normalizer;

struct added_token {
  std::string content;
  std::string text; // what decode shows: the content, normalized when `normalized` is set
  uint32_t id = 0;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool single_word = false;
};

/// A piece of input after added-token extraction: either an added token id or a text range.
struct text_segment {
  size_t begin = 0, end = 0;         // byte range in the searched text
  std::optional<uint32_t> token_id;  // set for an added token
};

/// Finds a set of patterns in text: leftmost match first, the longest one at that position.
class token_matcher {
public:
  void add(std::string pattern, size_t token_index);
  /// The next match starting at or after `from`: (begin, end, token index); false if none.
  bool find(std::string_view text, size_t from, size_t& begin, size_t& end, size_t& token_index) const;
  bool empty() const { return nodes_.size() <= 1; }

private:
  struct node {
    std::vector<std::pair<unsigned char, uint32_t>> children; // sorted by byte
    int64_t token_index = -1;
  };
  std::vector<node> nodes_{node{}};
  bool first_byte_[256] = {};
};

class added_vocabulary {
public:
  added_vocabulary() = default;
  /// Reads the "added_tokens" array and assigns ids exactly as tokenizers does: a token whose
  /// content is already in the vocabulary keeps that id, others get the next free id.
  added_vocabulary(const json& list, const bpe_model& model, const normalizer* norm);

  /// Splits `text` on the tokens of one kind (normalized or not), applying lstrip/rstrip/
  /// single_word; the segments cover the whole text in order.
  void split(std::string_view text, bool normalized_kind, std::vector<text_segment>& out) const;
  bool has_kind(bool normalized_kind) const {
    return !(normalized_kind ? normalized_matcher_ : raw_matcher_).empty();
  }

  const added_token* by_id(uint32_t id) const;
  std::optional<uint32_t> id_of(std::string_view content) const;
  bool is_special_content(std::string_view content) const;
  const std::vector<added_token>& tokens() const { return tokens_; }

private:
  std::vector<added_token> tokens_;         // in id-assignment order, unique content
  std::vector<std::string> special_contents_;
  string_map<size_t> index_by_content_;
  std::unordered_map<uint32_t, size_t> index_by_id_;
  token_matcher raw_matcher_, normalized_matcher_;
};

} // namespace actorserve::tokenization
