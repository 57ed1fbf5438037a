// AVX2 + FMA versions of the dot-product kernels. Compiled for that target regardless of the
// build flags and only called when the CPU has it (see cpu_kernels.cpp).
#include "model/cpu_kernels_isa.hpp"

#if defined(__x86_64__)
#pragma GCC target("avx2,fma")
#include <immintrin.h>

namespace actorserve::cpu::detail {
namespace {

// Fixed reduction order: 8 lanes -> 4 -> 2 -> 1.
inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Lanes [0, n) set, for the tail of a row shorter than 8.
inline __m256i tail_mask(int64_t n) {
  alignas(32) static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - n));
}

// A tile of ROWS tokens x COLS weight rows. Each element: one 8-lane FMA accumulator over k
// (the tail through a masked load), then hsum8: the same arithmetic as dot_avx2.
template <int ROWS, int COLS>
void tile(const float* x, int64_t k_dim, const float* w, const float* bias, float* out, int64_t ld_out) {
  __m256 acc[ROWS][COLS];
  for (int r = 0; r < ROWS; ++r)
    for (int c = 0; c < COLS; ++c)
      acc[r][c] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= k_dim; k += 8) {
    __m256 wv[COLS];
    for (int c = 0; c < COLS; ++c)
      wv[c] = _mm256_loadu_ps(w + c * k_dim + k);
    for (int r = 0; r < ROWS; ++r) {
      __m256 xv = _mm256_loadu_ps(x + r * k_dim + k);
      for (int c = 0; c < COLS; ++c)
        acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
    }
  }
  if (k < k_dim) {
    const __m256i mask = tail_mask(k_dim - k);
    __m256 wv[COLS];
    for (int c = 0; c < COLS; ++c)
      wv[c] = _mm256_maskload_ps(w + c * k_dim + k, mask);
    for (int r = 0; r < ROWS; ++r) {
      __m256 xv = _mm256_maskload_ps(x + r * k_dim + k, mask);
      for (int c = 0; c < COLS; ++c)
        acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < ROWS; ++r)
    for (int c = 0; c < COLS; ++c)
      out[r * ld_out + c] = hsum8(acc[r][c]) + (bias ? bias[c] : 0.0f);
}

using tile_fn = void (*)(const float*, int64_t, const float*, const float*, float*, int64_t);

// Tiles up to 4 tokens x 4 weight rows; at most 12 accumulators so that they stay in the 16
// ymm registers.
constexpr tile_fn tiles[4][4] = {
    {tile<1, 1>, tile<1, 2>, tile<1, 3>, tile<1, 4>},
    {tile<2, 1>, tile<2, 2>, tile<2, 3>, tile<2, 4>},
    {tile<3, 1>, tile<3, 2>, tile<3, 3>, tile<3, 4>},
    {tile<4, 1>, tile<4, 2>, tile<4, 3>, tile<4, 3>},
};
constexpr int cols_per_tile[4] = {4, 4, 3, 3};

void matmul_cols(const float* x, int64_t num_rows, int64_t k_dim, const float* w, int64_t num_out,
                 const float* bias, float* out, int64_t col_begin, int64_t col_end) {
  // Weight rows in blocks that stay in L2 while every tile of tokens passes over them.
  const int64_t block_cols = 24;
  for (int64_t c0 = col_begin; c0 < col_end; c0 += block_cols) {
    const int64_t c1 = c0 + block_cols < col_end ? c0 + block_cols : col_end;
    for (int64_t r0 = 0; r0 < num_rows; r0 += 4) {
      const int rows = int(num_rows - r0 < 4 ? num_rows - r0 : 4);
      const int step = cols_per_tile[rows - 1];
      for (int64_t c = c0; c < c1; c += step) {
        const int cols = int(c1 - c < step ? c1 - c : step);
        tiles[rows - 1][cols - 1](x + r0 * k_dim, k_dim, w + c * k_dim, bias ? bias + c : nullptr,
                                  out + r0 * num_out + c, num_out);
      }
    }
  }
}

float dot(const float* a, const float* b, int64_t n) {
  float result;
  tile<1, 1>(a, n, b, nullptr, &result, 1);
  return result;
}

void axpy(float alpha, const float* x, float* y, int64_t n) {
  const __m256 av = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i)
    y[i] = __builtin_fmaf(alpha, x[i], y[i]);
}

} // namespace

const isa_kernels& avx2_kernels() {
  static const isa_kernels k{matmul_cols, dot, axpy};
  return k;
}

} // namespace actorserve::cpu::detail

#else

namespace actorserve::cpu::detail {
const isa_kernels& avx2_kernels() { return portable_kernels(); }
} // namespace actorserve::cpu::detail

#endif
