// Paged KV cache write: one block per token, 16-byte copies when the row allows.
#include "gpu/cuda_check.hpp"
#include "gpu/kv_cache_write.hpp"

#include <cuda_runtime.h>

namespace actorserve::gpu {
namespace {

template <typename V>
__global__ void kv_cache_write_kernel(const V* __restrict__ key, const V* __restrict__ value, int64_t src_stride_vecs,
                                      V* __restrict__ key_cache, V* __restrict__ value_cache,
                                      const int32_t* __restrict__ slot_mapping, int64_t row_vecs) {
  const int64_t token = blockIdx.x;
  const int64_t slot = slot_mapping[token];
  if (slot < 0)
    return;
  const V* k = key + token * src_stride_vecs;
  const V* v = value + token * src_stride_vecs;
  V* kc = key_cache + slot * row_vecs;
  V* vc = value_cache + slot * row_vecs;
  for (int64_t i = threadIdx.x; i < row_vecs; i += blockDim.x) {
    kc[i] = k[i];
    vc[i] = v[i];
  }
}

template <typename V>
void launch_typed(const void* key, const void* value, int64_t src_stride_bytes, void* key_cache, void* value_cache,
                  const int32_t* slot_mapping, int64_t num_tokens, int64_t row_bytes, cudaStream_t stream) {
  const int64_t row_vecs = row_bytes / int64_t(sizeof(V));
  const int threads = int(row_vecs >= 256 ? 256 : ((row_vecs + 31) / 32) * 32);
  kv_cache_write_kernel<V><<<unsigned(num_tokens), threads, 0, stream>>>(
      static_cast<const V*>(key), static_cast<const V*>(value), src_stride_bytes / int64_t(sizeof(V)),
      static_cast<V*>(key_cache), static_cast<V*>(value_cache), slot_mapping, row_vecs);
  ACTORSERVE_CUDA_CHECK_LAUNCH("kv_cache_write_kernel");
}

bool aligned(const void* p, size_t n) { return reinterpret_cast<uintptr_t>(p) % n == 0; }

} // namespace

void launch_kv_cache_write(const void* key, const void* value, int64_t src_stride, void* key_cache,
                           void* value_cache, const int32_t* slot_mapping, int64_t num_tokens, int64_t kv_size,
                           dtype type, cudaStream_t stream) {
  if (num_tokens <= 0)
    return;
  const int64_t elem = int64_t(dtype_size(type));
  const int64_t row_bytes = kv_size * elem, stride_bytes = src_stride * elem;
  auto fits = [&](size_t n) {
    return row_bytes % int64_t(n) == 0 && stride_bytes % int64_t(n) == 0 && aligned(key, n) && aligned(value, n) &&
           aligned(key_cache, n) && aligned(value_cache, n);
  };
  if (fits(16))
    launch_typed<uint4>(key, value, stride_bytes, key_cache, value_cache, slot_mapping, num_tokens, row_bytes, stream);
  else if (fits(4))
    launch_typed<uint32_t>(key, value, stride_bytes, key_cache, value_cache, slot_mapping, num_tokens, row_bytes,
                           stream);
  else
    launch_typed<uint16_t>(key, value, stride_bytes, key_cache, value_cache, slot_mapping, num_tokens, row_bytes,
                           stream);
}

} // namespace actorserve::gpu
