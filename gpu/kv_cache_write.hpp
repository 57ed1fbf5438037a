#pragma once
// Writes the new tokens' keys and values into the paged KV cache.

#include "model/dtype.hpp"

#include <cuda_runtime_api.h>
#include <cstdint>

namespace actorserve::gpu {

/// key/value: token t's kv_size = num_kv_heads * head_dim elements at key + t * src_stride
/// (the k and v slices of the fused QKV activations). Caches: [num_slots, kv_size], i.e.
/// [num_blocks, block_size, num_kv_heads, head_dim]; token t goes to slot slot_mapping[t]
/// (block * block_size + offset); a negative slot (padding of a graph batch) is skipped.
void launch_kv_cache_write(const void* key, const void* value, int64_t src_stride, void* key_cache,
                           void* value_cache, const int32_t* slot_mapping, int64_t num_tokens, int64_t kv_size,
                           dtype type, cudaStream_t stream);

} // namespace actorserve::gpu
