#pragma once
// The parts of a loaded tokenizer (internal; see tokenizer.hpp for the public interface).

#include "model/tokenizer/added_tokens.hpp"
#include "model/tokenizer/bpe.hpp"
#include "model/tokenizer/decoders.hpp"
#include "model/tokenizer/normalizers.hpp"
#include "model/tokenizer/post_processors.hpp"
#include "model/tokenizer/pre_tokenizers.hpp"

#include <memory>
#include <optional>
#include <vector>

namespace actorserve::tokenization {

struct tokenizer_state {
  std::unique_ptr<normalizer> norm;
  std::unique_ptr<pre_tokenizer> pre;
  std::unique_ptr<bpe_model> model;
  std::unique_ptr<post_processor> post;
  std::unique_ptr<decoder> dec;
  added_vocabulary added;
  size_t vocab_size = 0;               // one past the largest known id
  std::vector<uint8_t> special_by_id;  // [vocab_size]: 1 where decode(skip_special_tokens) skips

  /// The token string of an id (added tokens first, then the vocabulary); nullptr if unknown.
  const std::string* token_string(uint32_t id) const {
    if (const added_token* t = added.by_id(id))
      return &t->text;
    return model->id_to_token(id);
  }
  bool is_special(uint32_t id) const { return id < special_by_id.size() && special_by_id[id]; }
  /// Runs the decoder chain over token strings (the tokens joined by spaces when there is none).
  std::string decode_tokens(std::vector<std::string>& tokens) const;
};

} // namespace actorserve::tokenization
