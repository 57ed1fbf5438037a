// Top-k raw logprobs: one block per row, k passes, each finding the best entry strictly after
// the previous one in (value desc, id asc) order. k is small (OpenAI caps it at 20), and each
// pass reads the row from L2.
#include "gpu/cuda_check.hpp"
#include "gpu/device_math.cuh"
#include "gpu/logprobs.hpp"

namespace actorserve::gpu {
namespace {

constexpr int kThreads = 512;

__device__ __forceinline__ bool ranks_before(float v, int32_t i, float w, int32_t j) {
  return v > w || (v == w && i < j);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) logprobs_kernel(logprobs_args a) {
  __shared__ float best_v[32];
  __shared__ int32_t best_i[32];
  const T* row = static_cast<const T*>(a.logits) + int64_t(a.rows[blockIdx.x]) * a.logits_stride;
  const float lse = a.log_normalizer[blockIdx.x];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, num_warps = kThreads / 32;
  float prev_v = INFINITY;
  int32_t prev_i = -1;
  for (int32_t r = 0; r < a.k; ++r) {
    float v = -INFINITY;
    int32_t idx = 0x7fffffff;
    for (int32_t i = threadIdx.x; i < a.vocab_size; i += kThreads) {
      const float x = to_float(row[i]);
      if (ranks_before(prev_v, prev_i, x, i) && ranks_before(x, i, v, idx))
        v = x, idx = i;
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      const float w = __shfl_xor_sync(0xffffffffu, v, offset);
      const int32_t j = __shfl_xor_sync(0xffffffffu, idx, offset);
      if (ranks_before(w, j, v, idx))
        v = w, idx = j;
    }
    if (lane == 0)
      best_v[warp] = v, best_i[warp] = idx;
    __syncthreads();
    v = lane < num_warps ? best_v[lane] : -INFINITY;
    idx = lane < num_warps ? best_i[lane] : 0x7fffffff;
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      const float w = __shfl_xor_sync(0xffffffffu, v, offset);
      const int32_t j = __shfl_xor_sync(0xffffffffu, idx, offset);
      if (ranks_before(w, j, v, idx))
        v = w, idx = j;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      a.out_ids[int64_t(blockIdx.x) * a.k + r] = idx;
      a.out_logprobs[int64_t(blockIdx.x) * a.k + r] = float(double(v) - double(lse));
    }
    prev_v = v;
    prev_i = idx;
  }
}

} // namespace

void launch_logprobs(const logprobs_args& args, dtype type, cudaStream_t stream) {
  if (args.num_rows <= 0 || args.k <= 0)
    return;
  ACTORSERVE_DISPATCH_FLOAT(type, "logprobs",
                            { logprobs_kernel<scalar_t><<<unsigned(args.num_rows), kThreads, 0, stream>>>(args); });
  ACTORSERVE_CUDA_CHECK_LAUNCH("logprobs_kernel");
}

} // namespace actorserve::gpu
