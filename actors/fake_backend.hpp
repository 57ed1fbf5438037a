#pragma once
// A deterministic stand-in for a model, for tests, the embedding example and the scheduler
// benchmark. Its KV cache stores (token, position) per slot, and the logits of a sequence are a
// hash of the tokens it reads back from its cache through its block table, so a wrong block
// table, a lost swap or a missed copy-on-write changes the output (or fails the step when a
// slot holds the wrong position). Sampling uses the real sampler (model/sampling.hpp).

#include "model/backend.hpp"

#include <chrono>
#include <memory>

namespace actorserve {

struct fake_backend_options {
  int32_t vocab_size = 64;
  int32_t num_blocks = 256;
  int32_t num_host_blocks = 0;
  int32_t block_size = 16;
  int32_t max_position_embeddings = 4096;
  std::vector<int64_t> eos_token_ids = {1};
  float eos_logit_bias = -2.0f;   // makes EOS rarer than other tokens
  int32_t fail_on_token = -1;     // execute throws when a step's input holds this token
  std::chrono::microseconds step_delay{0}; // sleep per step (cancellation and timing tests)
};

std::unique_ptr<backend> make_fake_backend(const fake_backend_options& options = {});

} // namespace actorserve
