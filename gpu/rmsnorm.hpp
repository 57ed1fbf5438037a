#pragma once
// RMSNorm fused with the residual add of a decoder layer.

#include "model/dtype.hpp"

#include <cuda_runtime_api.h>
#include <cstdint>

namespace actorserve::gpu {

/// For each of `rows` rows of `hidden` elements (all tensors of dtype `type`, row-major):
///   if delta: residual = residual + delta   (rounded to `type`, as torch adds in bf16)
///   out = weight * to_type(residual * rsqrt(mean(residual^2) + eps))
/// Statistics in fp32. `out` must not alias `residual`; `delta` may alias `out`.
void launch_fused_add_rmsnorm(void* residual, const void* delta, const void* weight, void* out, int64_t rows,
                              int64_t hidden, float eps, dtype type, cudaStream_t stream);

} // namespace actorserve::gpu
