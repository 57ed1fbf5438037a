#pragma once
// Device helpers shared by the kernels: element loads/stores for the three compute dtypes
// (bf16, fp16, fp32; arithmetic always in fp32), warp/block reductions, and the dtype switch
// used by every launch function. Only included from .cu files.

#include "model/dtype.hpp"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace actorserve::gpu {

template <typename T>
__device__ __forceinline__ float to_float(T v);
template <>
__device__ __forceinline__ float to_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

/// Rounds through T: what a torch op in dtype T stores between two operations. Used where
/// the kernels reproduce Hugging Face's rounding points (identity for fp32).
template <typename T>
__device__ __forceinline__ float round_to(float v) { return to_float<T>(from_float<T>(v)); }

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

/// Sum over the block; every thread gets the result. `scratch` holds 32 values.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, num_warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  T total = lane < num_warps ? scratch[lane] : T(0);
  return warp_sum(total);
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, num_warps = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  float total = lane < num_warps ? scratch[lane] : -INFINITY;
  return warp_max(total);
}

[[noreturn]] inline void unsupported_dtype(const char* kernel, dtype t) {
  throw std::invalid_argument(std::string(kernel) + ": unsupported dtype " + std::string(dtype_name(t)));
}

} // namespace actorserve::gpu

/// Runs BODY with `scalar_t` bound to the CUDA type of the actorserve dtype DT.
#define ACTORSERVE_DISPATCH_FLOAT(DT, NAME, ...)                                                                   \
  switch (DT) {                                                                                                    \
    case ::actorserve::dtype::f32: {                                                                               \
      using scalar_t = float;                                                                                      \
      __VA_ARGS__;                                                                                                 \
      break;                                                                                                       \
    }                                                                                                              \
    case ::actorserve::dtype::f16: {                                                                               \
      using scalar_t = __half;                                                                                     \
      __VA_ARGS__;                                                                                                 \
      break;                                                                                                       \
    }                                                                                                              \
    case ::actorserve::dtype::bf16: {                                                                              \
      using scalar_t = __nv_bfloat16;                                                                              \
      __VA_ARGS__;                                                                                                 \
      break;                                                                                                       \
    }                                                                                                              \
    default:                                                                                                       \
      ::actorserve::gpu::unsupported_dtype(NAME, DT);                                                              \
  }
