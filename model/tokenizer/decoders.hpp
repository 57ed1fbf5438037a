#pragma once
// Decoders of tokenizer.json: ByteLevel, ByteFallback, Metaspace, Replace, Strip, Fuse, BPEDecoder
// and Sequence. As in tokenizers, each one maps the list of token strings to a new list, and the
// decoded text is the concatenation of the last list.

#include "model/tokenizer/json_fields.hpp"

#include <memory>
#include <string>
#include <vector>

namespace actorserve::tokenization {

class decoder {
public:
  virtual ~decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
  /// True for ByteFallback, whose output for a run of byte tokens depends on the whole run.
  virtual bool groups_byte_tokens() const { return false; }
  /// True when the decoder changes text at the end of the sequence (Strip with stop > 0, the
  /// BPE suffix decoder), so a streaming decoder must keep the tail back.
  virtual bool edits_end() const { return false; }
};

/// Builds the decoder a tokenizer.json "decoder" value describes; nullptr for null.
std::unique_ptr<decoder> make_decoder(const json& spec, const std::string& where);

/// "<0xAB>" -> 0xAB, as tokenizers' ByteFallback reads it; -1 when the token is not one.
int byte_fallback_value(std::string_view token);

} // namespace actorserve::tokenization
