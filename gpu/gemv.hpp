#pragma once
// Linear layers for decode-sized batches (at most 16 rows), where a GEMM is a stream over the
// weight matrix: y[m, n] = x[m, k] * w[n, k]^T (+ bias[n]), bf16/fp16, fp32 accumulation on tensor
// cores. cuBLASLt's kernels reach 2.2-2.6 TB/s on the narrow projections of an 8B model at batch 1;
// this one splits K over the warps of a block so that every layer shape keeps enough loads in
// flight to stream near the memory bandwidth. Launched with programmatic dependent launch where
// available (pdl.hpp): the first round of weight loads goes out before the dependency wait.

#include "model/dtype.hpp"

#include <cuda_runtime_api.h>
#include <cstdint>

namespace actorserve::gpu {

/// Whether launch_small_gemm takes this shape: bf16/fp16, m <= 16, n % 16 == 0, k % 32 == 0,
/// 16-byte aligned x and w.
bool small_gemm_supported(const void* x, const void* w, int64_t m, int64_t n, int64_t k, dtype type);

/// y = x * w^T (+ bias), rows as in gemm_runner::run. Throws std::invalid_argument when the shape
/// is not supported (check small_gemm_supported first).
void launch_small_gemm(void* y, const void* x, const void* w, const void* bias, int64_t m, int64_t n, int64_t k,
                       dtype type, cudaStream_t stream);

} // namespace actorserve::gpu
