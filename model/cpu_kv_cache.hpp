#pragma once
// The paged KV cache of the CPU backend, plus host swap blocks of the same shape.
// Per layer, k and v are each [num_blocks, block_size, num_kv_heads, head_dim] fp32.
// The memory is allocated uninitialized, so pages that no sequence touches cost nothing.

#include "model/step.hpp"

#include <cstdint>
#include <memory>
#include <vector>

namespace actorserve {

class cpu_kv_cache {
public:
  cpu_kv_cache(int32_t num_layers, int32_t num_blocks, int32_t num_host_blocks, int32_t block_size,
               int32_t num_kv_heads, int32_t head_dim);

  int32_t num_blocks() const { return num_blocks_; }
  int32_t num_host_blocks() const { return num_host_blocks_; }
  int32_t block_size() const { return block_size_; }
  /// Floats per token per layer for k (or v): num_kv_heads * head_dim.
  int64_t token_stride() const { return token_floats_; }

  /// The k (or v) entries of `slot` in `block` of `layer`: [num_kv_heads, head_dim].
  float* k(int32_t layer, int32_t block, int32_t slot) { return at(device_.get(), num_blocks_, layer, 0, block, slot); }
  float* v(int32_t layer, int32_t block, int32_t slot) { return at(device_.get(), num_blocks_, layer, 1, block, slot); }

  /// Each throws model_error for a block id out of range, before copying anything.
  void copy_blocks(const std::vector<block_copy>& copies);
  void swap_out(const std::vector<block_copy>& copies); // src: device block, dst: host block
  void swap_in(const std::vector<block_copy>& copies);  // src: host block, dst: device block

private:
  float* at(float* base, int32_t blocks, int32_t layer, int32_t kv, int32_t block, int32_t slot) const {
    return base + ((int64_t(layer) * 2 + kv) * blocks + block) * block_floats_ + int64_t(slot) * token_floats_;
  }
  void copy(float* dst_base, int32_t dst_blocks, const float* src_base, int32_t src_blocks,
            const std::vector<block_copy>& copies, const char* what);

  int32_t num_layers_, num_blocks_, num_host_blocks_, block_size_;
  int64_t token_floats_, block_floats_;
  std::unique_ptr<float[]> device_; // [num_layers, 2, num_blocks, block_size, num_kv_heads, head_dim]
  std::unique_ptr<float[]> host_;   // [num_layers, 2, num_host_blocks, block_size, num_kv_heads, head_dim]
};

} // namespace actorserve
