// Fused residual add + RMSNorm, one block per row. The rounding points follow Hugging Face's
// LlamaRMSNorm (normalise in fp32, round to the model dtype, then multiply by the weight in
// the model dtype) so that bf16 results track transformers closely.
#include "gpu/cuda_check.hpp"
#include "gpu/device_math.cuh"
#include "gpu/pdl.cuh"
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
  pdl_launch_dependents(); // the next kernel may launch; it waits for this one in its own pdl_wait
  pdl_wait();
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

/// The same computation with 16-byte loads, every load of the row issued before the first
/// use: for the decode batch (a handful of rows) the kernel is one DRAM round trip plus the
/// reduction, instead of a chain of 2-byte loads. Rows of at most kMaxVecs * kThreads chunks.
constexpr int kMaxVecs = 4;

template <typename T>
__global__ void __launch_bounds__(kThreads) fused_add_rmsnorm_vec_kernel(T* __restrict__ residual,
                                                                         const T* delta, // may alias out
                                                                         const T* __restrict__ weight, T* out,
                                                                         int64_t hidden, float eps) {
  constexpr int kVec = 16 / int(sizeof(T));
  __shared__ float scratch[32];
  pdl_launch_dependents(); // the next kernel may launch; it waits for this one in its own pdl_wait
  pdl_wait();
  const int64_t row = blockIdx.x;
  const int num_vecs = int(hidden / kVec);
  uint4* res = reinterpret_cast<uint4*>(residual + row * hidden);
  const uint4* del = delta ? reinterpret_cast<const uint4*>(delta + row * hidden) : nullptr;
  const uint4* w = reinterpret_cast<const uint4*>(weight);
  uint4 r_raw[kMaxVecs], d_raw[kMaxVecs], w_raw[kMaxVecs];
#pragma unroll
  for (int j = 0; j < kMaxVecs; ++j) {
    const int i = threadIdx.x + j * kThreads;
    if (i < num_vecs) {
      r_raw[j] = res[i];
      w_raw[j] = __ldg(w + i);
      if (del)
        d_raw[j] = del[i];
    }
  }
  float v[kMaxVecs][kVec];
  float sum_sq = 0.0f;
#pragma unroll
  for (int j = 0; j < kMaxVecs; ++j) {
    const int i = threadIdx.x + j * kThreads;
    if (i >= num_vecs)
      continue;
    const T* r = reinterpret_cast<const T*>(&r_raw[j]);
    const T* d = reinterpret_cast<const T*>(&d_raw[j]);
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      v[j][e] = del ? round_to<T>(to_float(r[e]) + to_float(d[e])) : to_float(r[e]);
      sum_sq += v[j][e] * v[j][e];
    }
    if (del) {
      uint4 packed;
      T* p = reinterpret_cast<T*>(&packed);
#pragma unroll
      for (int e = 0; e < kVec; ++e)
        p[e] = from_float<T>(v[j][e]);
      res[i] = packed;
    }
  }
  const float total = block_sum(sum_sq, scratch);
  const float inv_rms = rsqrtf(total / float(hidden) + eps);
  uint4* o = reinterpret_cast<uint4*>(out + row * hidden);
#pragma unroll
  for (int j = 0; j < kMaxVecs; ++j) {
    const int i = threadIdx.x + j * kThreads;
    if (i >= num_vecs)
      continue;
    const T* wt = reinterpret_cast<const T*>(&w_raw[j]);
    uint4 packed;
    T* p = reinterpret_cast<T*>(&packed);
#pragma unroll
    for (int e = 0; e < kVec; ++e)
      p[e] = from_float<T>(to_float(wt[e]) * round_to<T>(v[j][e] * inv_rms));
    o[i] = packed;
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

} // namespace

void launch_fused_add_rmsnorm(void* residual, const void* delta, const void* weight, void* out, int64_t rows,
                              int64_t hidden, float eps, dtype type, cudaStream_t stream) {
  if (rows <= 0)
    return;
  ACTORSERVE_DISPATCH_FLOAT(type, "fused_add_rmsnorm", {
    constexpr int64_t kVec = 16 / int64_t(sizeof(scalar_t));
    if (hidden % kVec == 0 && hidden / kVec <= int64_t(kMaxVecs) * kThreads && aligned16(residual) &&
        aligned16(weight) && aligned16(out) && (delta == nullptr || aligned16(delta))) {
      launch_pdl(fused_add_rmsnorm_vec_kernel<scalar_t>, dim3(unsigned(rows)), dim3(kThreads), 0, stream,
                 static_cast<scalar_t*>(residual), static_cast<const scalar_t*>(delta),
                 static_cast<const scalar_t*>(weight), static_cast<scalar_t*>(out), hidden, eps);
      break;
    }
    launch_pdl(fused_add_rmsnorm_kernel<scalar_t>, dim3(unsigned(rows)), dim3(kThreads), 0, stream,
               static_cast<scalar_t*>(residual), static_cast<const scalar_t*>(delta),
               static_cast<const scalar_t*>(weight), static_cast<scalar_t*>(out), hidden, eps);
  });
  ACTORSERVE_CUDA_CHECK_LAUNCH("fused_add_rmsnorm_kernel");
}

} // namespace actorserve::gpu
