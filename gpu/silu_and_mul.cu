// SiLU-and-multiply over the fused gate_up activations; grid-stride, 2D grid (row, column chunk).
#include "gpu/cuda_check.hpp"
#include "gpu/device_math.cuh"
#include "gpu/pdl.cuh"
#include "gpu/silu_and_mul.hpp"

namespace actorserve::gpu {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads) silu_and_mul_kernel(T* __restrict__ out, const T* __restrict__ in,
                                                                int64_t width) {
  pdl_launch_dependents(); // the next kernel may launch; it waits for this one in its own pdl_wait
  pdl_wait();
  const int64_t row = blockIdx.y;
  const T* gate = in + row * 2 * width;
  const T* up = gate + width;
  T* o = out + row * width;
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < width; i += int64_t(gridDim.x) * kThreads) {
    const float g = to_float(gate[i]);
    const float silu = round_to<T>(g / (1.0f + expf(-g)));
    o[i] = from_float<T>(silu * to_float(up[i]));
  }
}

/// 16-byte loads and stores when the width allows: eight bf16 of gate and up per thread.
template <typename T>
__global__ void __launch_bounds__(kThreads) silu_and_mul_vec_kernel(T* __restrict__ out, const T* __restrict__ in,
                                                                    int64_t width) {
  constexpr int kVec = 16 / int(sizeof(T));
  pdl_launch_dependents(); // the next kernel may launch; it waits for this one in its own pdl_wait
  pdl_wait();
  const int64_t row = blockIdx.y, vecs = width / kVec;
  const uint4* gate = reinterpret_cast<const uint4*>(in + row * 2 * width);
  const uint4* up = reinterpret_cast<const uint4*>(in + row * 2 * width + width);
  uint4* o = reinterpret_cast<uint4*>(out + row * width);
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < vecs; i += int64_t(gridDim.x) * kThreads) {
    const uint4 g_raw = gate[i], u_raw = up[i];
    const T* g = reinterpret_cast<const T*>(&g_raw);
    const T* u = reinterpret_cast<const T*>(&u_raw);
    uint4 packed;
    T* p = reinterpret_cast<T*>(&packed);
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      const float gv = to_float(g[e]);
      p[e] = from_float<T>(round_to<T>(gv / (1.0f + expf(-gv))) * to_float(u[e]));
    }
    o[i] = packed;
  }
}

} // namespace

void launch_silu_and_mul(void* out, const void* in, int64_t rows, int64_t width, dtype type, cudaStream_t stream) {
  if (rows <= 0 || width <= 0)
    return;
  const int64_t chunks = (width + kThreads * 4 - 1) / (kThreads * 4); // ~4 elements per thread
  dim3 grid(unsigned(chunks < 1 ? 1 : chunks), unsigned(rows));
  const bool aligned = reinterpret_cast<uintptr_t>(out) % 16 == 0 && reinterpret_cast<uintptr_t>(in) % 16 == 0;
  ACTORSERVE_DISPATCH_FLOAT(type, "silu_and_mul", {
    constexpr int64_t kVec = 16 / int64_t(sizeof(scalar_t));
    if (aligned && width % kVec == 0) {
      const int64_t vec_blocks = (width / kVec + kThreads - 1) / kThreads; // one chunk per thread
      launch_pdl(silu_and_mul_vec_kernel<scalar_t>, dim3(unsigned(vec_blocks), unsigned(rows)), dim3(kThreads), 0,
                 stream, static_cast<scalar_t*>(out), static_cast<const scalar_t*>(in), width);
      break;
    }
    launch_pdl(silu_and_mul_kernel<scalar_t>, grid, dim3(kThreads), 0, stream, static_cast<scalar_t*>(out),
               static_cast<const scalar_t*>(in), width);
  });
  ACTORSERVE_CUDA_CHECK_LAUNCH("silu_and_mul_kernel");
}

} // namespace actorserve::gpu
