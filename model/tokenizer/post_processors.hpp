#pragma once
// Post-processors of tokenizer.json, for one sequence: TemplateProcessing, RobertaProcessing,
// BertProcessing, ByteLevel (ids unchanged) and Sequence. They add the special tokens (BOS, ...)
// when the caller asks for add_special_tokens.

#include "model/tokenizer/json_fields.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace actorserve::tokenization {

class post_processor {
public:
  virtual ~post_processor() = default;
  /// Rewrites the ids of a single sequence with the special tokens added.
  virtual void process(std::vector<uint32_t>& ids) const = 0;
};

/// Builds the post-processor a tokenizer.json "post_processor" value describes; nullptr for null.
std::unique_ptr<post_processor> make_post_processor(const json& spec, const std::string& where);

} // namespace actorserve::tokenization
