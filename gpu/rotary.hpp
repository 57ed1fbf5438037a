#pragma once
// Rotary position embedding (neox style: rotate halves) applied in place to the query and key
// heads of the fused QKV activations, with the optional per-head RMSNorm of Qwen3 before it.

#include "model/dtype.hpp"

#include <cuda_runtime_api.h>
#include <cstdint>

namespace actorserve::gpu {

struct rotary_args {
  void* qkv = nullptr;              // [num_tokens, row_stride]: q heads at column 0, k heads after them
  int64_t row_stride = 0;           // elements between tokens
  const int32_t* positions = nullptr; // [num_tokens]
  const float* inv_freq = nullptr;  // [head_dim / 2], scaling (linear, llama3) already applied
  const void* q_norm_weight = nullptr; // [head_dim] or null (Qwen3 q_norm)
  const void* k_norm_weight = nullptr; // [head_dim] or null (Qwen3 k_norm)
  float norm_eps = 1e-6f;
  int64_t num_tokens = 0;
  int32_t num_q_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;             // even
  // Optional (all three set): also store the rotated k heads and the v heads (which follow the
  // k heads in a qkv row) into the paged cache, [num_slots, num_kv_heads * head_dim], token t
  // at slot slot_mapping[t] (negative: padding, skipped). Replaces a kv_cache_write launch.
  void* key_cache = nullptr;
  void* value_cache = nullptr;
  const int32_t* slot_mapping = nullptr;
};

/// cos/sin are computed in fp32 from position * inv_freq and rounded to the dtype, and each
/// product is rounded, as transformers does in bf16.
void launch_rotary(const rotary_args& args, dtype type, cudaStream_t stream);

} // namespace actorserve::gpu
