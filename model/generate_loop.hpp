#pragma once
// One sequence generated directly on a backend: the prompt prefilled in chunks, then one decode
// step per token. Used by `actorserve generate`, the CPU benchmark and tests; the engine's
// scheduler does the same for many sequences at once.

#include "model/backend.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace actorserve {

struct generation_options {
  int32_t max_tokens = 16;
  int32_t chunk_size = 512; // prompt tokens per prefill step
  bool ignore_eos = false;  // otherwise stop after any of the config's eos_token_ids
  sampling_params sampling;
};

struct generation_result {
  std::vector<int32_t> token_ids;
  std::vector<sampled_token> samples; // one per token: logprob and top logprobs
  std::string finish_reason;          // "length" or "stop"
  int32_t prefill_steps = 0;
  double prefill_seconds = 0.0;       // until the first token is sampled
  double decode_seconds = 0.0;        // the remaining tokens
};

/// Generates for `prompt` with blocks 0, 1, 2, ... of the backend's cache (the caller owns the
/// whole cache). Throws model_error when the prompt is empty, a token is outside the vocabulary
/// or prompt + max_tokens does not fit in the cache.
generation_result generate_sequence(backend& b, const std::vector<int32_t>& prompt, const generation_options& options);

} // namespace actorserve
