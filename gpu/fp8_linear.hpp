#pragma once
// Weight-only FP8 (E4M3, W8A16) for `--quantization fp8`: the decoder's linear weights are stored
// as E4M3 bytes [n, k] with one fp32 scale per output row (model/fp8.hpp is the CPU reference and
// defines the rounding). Quantized on the device at load; multiplied in the compute dtype:
//   m <= 16 rows (decode): launch_small_gemm_fp8 streams the E4M3 bytes (half of bf16's), widens
//     them to bf16/fp16 in registers (exact), tensor-core mma with fp32 accumulation, row scale
//     and bias in the epilogue;
//   larger m (prefill chunks, large batches) and fp32 compute: launch_dequantize_rows_e4m3 into a
//     scratch weight in the compute dtype, then the ordinary cuBLASLt GEMM.

#include "model/dtype.hpp"

#include <cuda_runtime_api.h>
#include <cstdint>

namespace actorserve::gpu {

/// q[r, c], scales[r] from the fp32 weight w [rows, cols], bit for bit as quantize_rows_e4m3:
/// scale = max |w[r, :]| / 448 (1 for an all-zero row), q = E4M3(w / scale), IEEE division,
/// round to nearest even, saturating.
void launch_quantize_rows_e4m3(uint8_t* q, float* scales, const float* w, int64_t rows, int64_t cols,
                               cudaStream_t stream);

/// out[r, c] = e4m3(q[r, c]) * scales[r] (an fp32 product, then rounded to `type`: f32, f16, bf16).
void launch_dequantize_rows_e4m3(void* out, const uint8_t* q, const float* scales, int64_t rows, int64_t cols,
                                 dtype type, cudaStream_t stream);

/// Whether launch_small_gemm_fp8 takes this shape: bf16/fp16, 1 <= m <= 16, n % 16 == 0,
/// k % 32 == 0, 16-byte aligned x and w.
bool small_gemm_fp8_supported(const void* x, const void* w, int64_t m, int64_t n, int64_t k, dtype type);

/// y[m, n] = (x[m, k] * e4m3(w)[n, k]^T) * scales[n] (+ bias[n]), y, x, bias in `type`. With
/// programmatic dependent launch (pdl.hpp): the first weight loads go out before the wait.
/// Throws std::invalid_argument for an unsupported shape.
void launch_small_gemm_fp8(void* y, const void* x, const uint8_t* w, const float* scales, const void* bias,
                           int64_t m, int64_t n, int64_t k, dtype type, cudaStream_t stream);

} // namespace actorserve::gpu
