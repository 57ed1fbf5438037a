#pragma once
// Errors of the model layer: a message a user can act on (which file, which field).

#include <stdexcept>
#include <string>

namespace actorserve {

/// Thrown for malformed or unsupported model files (config.json, safetensors, tokenizer files).
class model_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

} // namespace actorserve
