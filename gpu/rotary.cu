// Neox-style rotary embedding: one warp per (token, head), four heads per block, so a
// decode step's few heads spread over several multiprocessors instead of queueing in one. The
// optional Qwen3 per-head RMSNorm is fused in front so the head is read and written once, and
// the optional paged-cache store behind it (rotated k heads, plus warps that copy the v heads),
// so the layer needs no separate KV write launch.
#include "gpu/cuda_check.hpp"
#include "gpu/device_math.cuh"
#include "gpu/pdl.cuh"
#include "gpu/rotary.hpp"

namespace actorserve::gpu {
namespace {

constexpr int kThreads = 128;

template <typename T>
__global__ void __launch_bounds__(kThreads) rotary_kernel(rotary_args a) {
  pdl_launch_dependents(); // the next kernel may launch; it waits for this one in its own pdl_wait
  pdl_wait();
  const int64_t token = blockIdx.x;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  constexpr int kWarps = kThreads / 32;
  const int half = a.head_dim / 2;
  const float pos = float(a.positions[token]);
  T* row = static_cast<T*>(a.qkv) + token * a.row_stride;
  const bool to_cache = a.key_cache != nullptr;
  const int64_t slot = to_cache ? a.slot_mapping[token] : -1;
  const int64_t kv_row = int64_t(a.num_kv_heads) * a.head_dim;
  const int rotated_heads = a.num_q_heads + a.num_kv_heads;
  const int num_heads = rotated_heads + (to_cache ? a.num_kv_heads : 0);
  for (int head = blockIdx.y * kWarps + warp; head < num_heads; head += gridDim.y * kWarps) {
    T* x = row + int64_t(head) * a.head_dim;
    if (head >= rotated_heads) { // a v head: copied into the cache as is
      if (slot >= 0) {
        T* dst = static_cast<T*>(a.value_cache) + slot * kv_row + int64_t(head - rotated_heads) * a.head_dim;
        for (int i = lane; i < a.head_dim; i += 32)
          dst[i] = x[i];
      }
      continue;
    }
    T* k_dst = nullptr; // this k head's cache row, when it goes to the cache
    if (slot >= 0 && head >= a.num_q_heads)
      k_dst = static_cast<T*>(a.key_cache) + slot * kv_row + int64_t(head - a.num_q_heads) * a.head_dim;
    const T* norm_w = static_cast<const T*>(head < a.num_q_heads ? a.q_norm_weight : a.k_norm_weight);
    float inv_rms = 1.0f;
    if (norm_w) {
      float sum_sq = 0.0f;
      for (int i = lane; i < a.head_dim; i += 32) {
        const float v = to_float(x[i]);
        sum_sq += v * v;
      }
      inv_rms = rsqrtf(warp_sum(sum_sq) / float(a.head_dim) + a.norm_eps);
    }
    for (int i = lane; i < half; i += 32) {
      float x1 = to_float(x[i]), x2 = to_float(x[i + half]);
      if (norm_w) {
        x1 = round_to<T>(to_float(norm_w[i]) * round_to<T>(x1 * inv_rms));
        x2 = round_to<T>(to_float(norm_w[i + half]) * round_to<T>(x2 * inv_rms));
      }
      const float freq = pos * a.inv_freq[i];
      const float c = round_to<T>(cosf(freq)), s = round_to<T>(sinf(freq));
      const T lo = from_float<T>(round_to<T>(x1 * c) - round_to<T>(x2 * s));
      const T hi = from_float<T>(round_to<T>(x2 * c) + round_to<T>(x1 * s));
      x[i] = lo;
      x[i + half] = hi;
      if (k_dst) {
        k_dst[i] = lo;
        k_dst[i + half] = hi;
      }
    }
  }
}

} // namespace

void launch_rotary(const rotary_args& args, dtype type, cudaStream_t stream) {
  if (args.num_tokens <= 0)
    return;
  const int heads = args.num_q_heads + args.num_kv_heads * (args.key_cache ? 2 : 1);
  if ((args.key_cache == nullptr) != (args.value_cache == nullptr) ||
      (args.key_cache != nullptr && args.slot_mapping == nullptr))
    throw std::invalid_argument("rotary: key_cache, value_cache and slot_mapping go together");
  const dim3 grid(unsigned(args.num_tokens), unsigned((heads + kThreads / 32 - 1) / (kThreads / 32)));
  ACTORSERVE_DISPATCH_FLOAT(type, "rotary", { launch_pdl(rotary_kernel<scalar_t>, grid, dim3(kThreads), 0, stream, args); });
  ACTORSERVE_CUDA_CHECK_LAUNCH("rotary_kernel");
}

} // namespace actorserve::gpu
