#pragma once
// The interface every backend (CPU reference, CUDA) implements: owns the weights and the KV
// cache, and executes steps (model/step.hpp).

#include "model/config.hpp"
#include "model/sampling.hpp"
#include "model/step.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace actorserve {

struct kv_cache_shape {
  int32_t num_blocks = 0;      // device (or CPU) KV blocks
  int32_t num_host_blocks = 0; // host swap blocks
  int32_t block_size = 16;     // tokens per block
};

/// How a backend lays out one sequence's KV entries for export and import (migration of a
/// running sequence to another node): [num_layers][2: k then v][num_tokens][num_kv_heads *
/// head_dim] elements of `dtype`, little-endian, token-major so the block size does not matter.
struct kv_transfer_layout {
  int32_t num_layers = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  std::string dtype;        // "f32", "f16", "bf16"
  int32_t element_bytes = 0;

  /// Bytes of one token's K and V over all layers.
  int64_t token_bytes() const { return int64_t(num_layers) * 2 * num_kv_heads * head_dim * element_bytes; }
  bool operator==(const kv_transfer_layout&) const = default;
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

  /// KV export/import for migration (optional): the layout, or nullopt when this backend
  /// cannot (the node then migrates by recomputation).
  virtual std::optional<kv_transfer_layout> kv_transfer() const { return std::nullopt; }
  /// Appends the K/V of positions [0, num_tokens) held in `block_table` to `out`, in the
  /// kv_transfer() layout. Throws model_error when unsupported or the table is too short.
  virtual void export_kv(const std::vector<int32_t>& block_table, int32_t num_tokens, std::string& out);
  /// Writes positions [0, num_tokens) of `data` (the layout, holding `data_tokens` >= num_tokens
  /// tokens) into the blocks of `block_table`. Throws model_error on a size mismatch.
  virtual void import_kv(const std::vector<int32_t>& block_table, int32_t num_tokens, int32_t data_tokens,
                         std::string_view data);
};

} // namespace actorserve
