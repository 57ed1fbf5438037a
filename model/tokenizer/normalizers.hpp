#pragma once
// Normalizers of tokenizer.json: NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, Replace,
// Prepend, Append, ByteLevel and Sequence. They rewrite one piece of text (the text between added
// tokens); offsets into the original text are not tracked because the engine never needs them.

#include "model/tokenizer/json_fields.hpp"

#include <memory>
#include <string>

namespace actorserve::tokenization {

class normalizer {
public:
  virtual ~normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

/// Builds the normalizer a tokenizer.json "normalizer" value describes; nullptr for null.
/// Throws model_error for unknown types and malformed fields.
std::unique_ptr<normalizer> make_normalizer(const json& spec, const std::string& where);

} // namespace actorserve::tokenization
