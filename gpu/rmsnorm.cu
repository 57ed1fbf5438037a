// Fused residual add + RMSNorm, one block per row. The rounding points follow Hugging Face's
// LlamaRMSNorm (normalise in fp32, round to the model dtype, then multiply by the weight in
// the model dtype) so that bf16 results track transformers closely.
#include "gpu/cuda_check.hpp"
#include "gpu/device_math.cuh"
#include "gpu/rmsnorm.hpp"

namespace actorserve::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxCached = 16; // elements per thread kept in registers (hidden <= 4096)

template <typename T>
__global__ void __launch_bounds__(kThreads) fused_add_rmsnorm_kernel(T* __restrict__ residual, const T* delta,
                                                                     const T* __restrict__ weight, T* out,
                                                                     int64_t hidden, float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  T* res = residual + row * hidden;
  const T* del = delta ? delta + row * hidden : nullptr;
  float cached[kMaxCached];
  float sum_sq = 0.0f;
#pragma unroll
  for (int j = 0; j < kMaxCached; ++j) {
    const int64_t i = threadIdx.x + int64_t(j) * kThreads;
    float v = 0.0f;
    if (i < hidden) {
      v = to_float(res[i]);
      if (del) {
        v = round_to<T>(v + to_float(del[i]));
        res[i] = from_float<T>(v);
      }
    }
    cached[j] = v;
    sum_sq += v * v;
  }
  // Rows longer than the register cache: the rest goes through memory (L1/L2 resident).
  for (int64_t i = threadIdx.x + int64_t(kMaxCached) * kThreads; i < hidden; i += kThreads) {
    float v = to_float(res[i]);
    if (del) {
      v = round_to<T>(v + to_float(del[i]));
      res[i] = from_float<T>(v);
    }
    sum_sq += v * v;
  }
  const float total = block_sum(sum_sq, scratch);
  const float inv_rms = rsqrtf(total / float(hidden) + eps);
  T* o = out + row * hidden;
#pragma unroll
  for (int j = 0; j < kMaxCached; ++j) {
    const int64_t i = threadIdx.x + int64_t(j) * kThreads;
    if (i < hidden)
      o[i] = from_float<T>(to_float(weight[i]) * round_to<T>(cached[j] * inv_rms));
  }
  for (int64_t i = threadIdx.x + int64_t(kMaxCached) * kThreads; i < hidden; i += kThreads)
    o[i] = from_float<T>(to_float(weight[i]) * round_to<T>(to_float(res[i]) * inv_rms));
}

} // namespace

void launch_fused_add_rmsnorm(void* residual, const void* delta, const void* weight, void* out, int64_t rows,
                              int64_t hidden, float eps, dtype type, cudaStream_t stream) {
  if (rows <= 0)
    return;
  ACTORSERVE_DISPATCH_FLOAT(type, "fused_add_rmsnorm", {
    fused_add_rmsnorm_kernel<scalar_t><<<unsigned(rows), kThreads, 0, stream>>>(
        static_cast<scalar_t*>(residual), static_cast<const scalar_t*>(delta), static_cast<const scalar_t*>(weight),
        static_cast<scalar_t*>(out), hidden, eps);
  });
  ACTORSERVE_CUDA_CHECK_LAUNCH("fused_add_rmsnorm_kernel");
}

} // namespace actorserve::gpu
