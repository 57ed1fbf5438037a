#pragma once
// Causal attention of a step's tokens over the paged KV cache (model/cpu_kv_cache.hpp).

#include "model/step.hpp"

#include <cstdint>

namespace actorserve {

class cpu_kv_cache;
class thread_pool;

struct attention_dims {
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0; // query head h reads kv head h / (num_heads / num_kv_heads)
  int64_t head_dim = 0;
  float scale = 1.0f;       // 1 / sqrt(head_dim)
};

/// Writes the k and v of every token of `step` into its slot of `layer`.
/// qkv: [num_tokens, qkv_stride] with q at column 0, k at q_size, v at q_size + kv_size.
void write_kv(const step_batch& step, const float* qkv, int64_t qkv_stride, const attention_dims& dims,
              cpu_kv_cache& cache, int32_t layer);

/// out[t, h * head_dim ...] = softmax(q_t,h . K / sqrt(d)) V over positions [0, positions[t]]
/// of token t's sequence, read through its block table (the new tokens' K/V written first by
/// write_kv). Each (token, head) is computed the same way whatever else is in the step.
/// out: [num_tokens, num_heads * head_dim].
void paged_attention(thread_pool& pool, const step_batch& step, const float* qkv, int64_t qkv_stride,
                     const attention_dims& dims, cpu_kv_cache& cache, int32_t layer, float* out);

} // namespace actorserve
