#pragma once
// FP8 E4M3 as NVIDIA's __nv_fp8_e4m3 and the OCP "e4m3fn" format define it: 1 sign bit, 4
// exponent bits (bias 7), 3 mantissa bits, subnormals, no infinities, NaN = 0x7f / 0xff, largest
// finite value 448. Used by `--quantization fp8` (weight-only: the decoder's linear layers are
// stored as E4M3 with one fp32 scale per output row, and multiplied in the compute dtype); the
// CPU functions here are the reference the CUDA kernels are tested against.

#include <cstdint>

namespace actorserve {

/// Rounds to the nearest E4M3 value (ties to the even mantissa), saturating at +-448, as
/// cvt.rn.satfinite.e4m3 does; NaN gives 0x7f.
uint8_t f32_to_e4m3(float v);
float e4m3_to_f32(uint8_t bits);

/// Largest finite E4M3 magnitude.
constexpr float e4m3_max = 448.0f;

/// Per-output-row quantization of a [rows, cols] weight: scale[r] = max |w[r, :]| / 448 (1 for an
/// all-zero row), q[r, c] = f32_to_e4m3(w[r, c] / scale[r]) with an IEEE fp32 division, so the
/// device computes the same bytes. The weight is q * scale.
void quantize_rows_e4m3(const float* w, int64_t rows, int64_t cols, uint8_t* q, float* scales);

/// w <- dequantized(quantized(w)) row by row: what the fp8 path multiplies with, in fp32.
void round_rows_to_e4m3(float* w, int64_t rows, int64_t cols);

} // namespace actorserve
