#pragma once
// Pre-tokenizers of tokenizer.json: ByteLevel, Split, Digits, Metaspace, Whitespace,
// WhitespaceSplit, Punctuation, BertPreTokenizer, CharDelimiterSplit and Sequence. Each one cuts
// every piece into smaller pieces (and may rewrite them); the model then encodes each piece alone.

#include "model/tokenizer/json_fields.hpp"

#include <memory>
#include <string>
#include <vector>

namespace actorserve::tokenization {

struct piece {
  std::string text;
  /// The piece begins at offset 0 of the whole input (Metaspace's prepend_scheme "first").
  bool at_start = false;
};

class pre_tokenizer {
public:
  virtual ~pre_tokenizer() = default;
  /// Replaces `pieces` with their split; pieces that become empty are dropped.
  virtual void pre_tokenize(std::vector<piece>& pieces) const = 0;
};

/// Builds the pre-tokenizer a tokenizer.json "pre_tokenizer" value describes; nullptr for null.
std::unique_ptr<pre_tokenizer> make_pre_tokenizer(const json& spec, const std::string& where);

} // namespace actorserve::tokenization
