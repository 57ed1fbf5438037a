// SiLU-and-multiply over the fused gate_up activations; grid-stride, 2D grid (row, column chunk).
#include "gpu/cuda_check.hpp"
#include "gpu/device_math.cuh"
#include "gpu/silu_and_mul.hpp"

namespace actorserve::gpu {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads) silu_and_mul_kernel(T* __restrict__ out, const T* __restrict__ in,
                                                                int64_t width) {
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

} // namespace

void launch_silu_and_mul(void* out, const void* in, int64_t rows, int64_t width, dtype type, cudaStream_t stream) {
  if (rows <= 0 || width <= 0)
    return;
  const int64_t chunks = (width + kThreads * 4 - 1) / (kThreads * 4); // ~4 elements per thread
  dim3 grid(unsigned(chunks < 1 ? 1 : chunks), unsigned(rows));
  ACTORSERVE_DISPATCH_FLOAT(type, "silu_and_mul", {
    silu_and_mul_kernel<scalar_t><<<grid, kThreads, 0, stream>>>(static_cast<scalar_t*>(out),
                                                                 static_cast<const scalar_t*>(in), width);
  });
  ACTORSERVE_CUDA_CHECK_LAUNCH("silu_and_mul_kernel");
}

} // namespace actorserve::gpu
