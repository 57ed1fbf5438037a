#pragma once
// The interface every backend (CPU reference, CUDA) implements: owns the weights and the KV
// cache, and executes steps (model/step.hpp).

#include "model/config.hpp"
#include "model/sampling.hpp"
#include "model/step.hpp"

#include <memory>
#include <vector>

namespace actorserve {

struct kv_cache_shape {
  int32_t num_blocks = 0;      // device (or CPU) KV blocks
  int32_t num_host_blocks = 0; // host swap blocks
  int32_t block_size = 16;     // tokens per block
};

class backend {
public:
  virtual ~backend() = default;

  virtual const model_config& config() const = 0;
  virtual kv_cache_shape kv_shape() const = 0;
  /// Human-readable name for logs ("cpu", "cuda:0").
  virtual std::string name() const = 0;

  /// Runs one step. `sampling` has one entry per sequence with needs_logits, in order; the
  /// sampled tokens come back in `out` in the same order. When `logits` is not null it receives
  /// the raw logits [num_logits, vocab_size] (for tests and logprob checks).
  virtual void execute(const step_batch& step, const std::vector<const sequence_sampling_state*>& sampling,
                       std::vector<sampled_token>& out, std::vector<float>* logits = nullptr) = 0;

  /// Copies whole KV blocks (all layers) device->device, before the next step.
  virtual void copy_blocks(const std::vector<block_copy>& copies) = 0;
  /// Moves blocks device->host (src device id, dst host id) and host->device.
  virtual void swap_out(const std::vector<block_copy>& copies) = 0;
  virtual void swap_in(const std::vector<block_copy>& copies) = 0;
};

} // namespace actorserve
