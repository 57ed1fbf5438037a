#include "model/cpu_kv_cache.hpp"

#include "model/error.hpp"

#include <cstring>
#include <string>

namespace actorserve {

cpu_kv_cache::cpu_kv_cache(int32_t num_layers, int32_t num_blocks, int32_t num_host_blocks, int32_t block_size,
                           int32_t num_kv_heads, int32_t head_dim)
    : num_layers_(num_layers), num_blocks_(num_blocks), num_host_blocks_(num_host_blocks), block_size_(block_size),
      token_floats_(int64_t(num_kv_heads) * head_dim), block_floats_(int64_t(block_size) * token_floats_) {
  if (num_blocks <= 0 || block_size <= 0 || num_host_blocks < 0)
    throw model_error("KV cache needs num_blocks > 0 and block_size > 0 (got " + std::to_string(num_blocks) +
                      " blocks of " + std::to_string(block_size) + ")");
  // new float[] leaves the memory untouched: the OS commits pages when blocks are written.
  device_.reset(new float[size_t(num_layers) * 2 * size_t(num_blocks) * size_t(block_floats_)]);
  if (num_host_blocks > 0)
    host_.reset(new float[size_t(num_layers) * 2 * size_t(num_host_blocks) * size_t(block_floats_)]);
}

void cpu_kv_cache::copy(float* dst_base, int32_t dst_blocks, const float* src_base, int32_t src_blocks,
                        const std::vector<block_copy>& copies, const char* what) {
  for (const auto& c : copies)
    if (c.src < 0 || c.src >= src_blocks || c.dst < 0 || c.dst >= dst_blocks)
      throw model_error(std::string(what) + ": block copy " + std::to_string(c.src) + " -> " + std::to_string(c.dst) +
                        " is out of range (source has " + std::to_string(src_blocks) + " blocks, destination " +
                        std::to_string(dst_blocks) + ")");
  for (const auto& c : copies)
    for (int32_t layer = 0; layer < num_layers_; ++layer)
      for (int32_t kv = 0; kv < 2; ++kv)
        std::memmove(at(dst_base, dst_blocks, layer, kv, c.dst, 0),
                     at(const_cast<float*>(src_base), src_blocks, layer, kv, c.src, 0),
                     size_t(block_floats_) * sizeof(float));
}

void cpu_kv_cache::copy_blocks(const std::vector<block_copy>& copies) {
  copy(device_.get(), num_blocks_, device_.get(), num_blocks_, copies, "copy_blocks");
}

void cpu_kv_cache::swap_out(const std::vector<block_copy>& copies) {
  copy(host_.get(), num_host_blocks_, device_.get(), num_blocks_, copies, "swap_out");
}

void cpu_kv_cache::swap_in(const std::vector<block_copy>& copies) {
  copy(device_.get(), num_blocks_, host_.get(), num_host_blocks_, copies, "swap_in");
}

} // namespace actorserve
